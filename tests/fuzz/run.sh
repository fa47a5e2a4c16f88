#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs one for a given time:
#   tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]     TARGET: safetensors | xyz | config | all
# Needs Debian's clang and libclang-rt-14-dev. The seed corpus in tests/fuzz/corpus/TARGET is only read;
# new inputs go to $FUZZ_WORK/corpus-TARGET, crashes to $FUZZ_WORK/crashes-TARGET (FUZZ_WORK defaults
# to /tmp/hipmace-fuzz). Prints the number of executions; exits non-zero on a crash.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
target="${1:?usage: run.sh safetensors|xyz|config|all SECONDS [libFuzzer flags]}"
seconds="${2:?usage: run.sh TARGET SECONDS}"
shift 2
work="${FUZZ_WORK:-/tmp/hipmace-fuzz}"
mkdir -p "$work"

if ! command -v clang > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi

if [ "$target" = all ]; then
  rc=0
  for t in safetensors xyz config; do "$0" "$t" "$seconds" "$@" || rc=1; done
  exit $rc
fi
case "$target" in
  safetensors | xyz) lib=("$src"/src/io/*.c) ;;
  config) lib=("$src"/src/*/*.c) ;;
  *) echo "run.sh: unknown target '$target' (safetensors, xyz, config, all)" >&2; exit 2 ;;
esac

deps="PETSc SLEPc jansson ompi-c openblas scalapack-openmpi"
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -I"$src/include" -I"$src/src" $(pkg-config --cflags $deps) -DHM_FUZZ_DEFAULT_MODEL="\"$src/inputs/demo_hipmace.safetensors\"")
libs=($(pkg-config --libs $deps) -lm)
exe="$work/fuzz_$target"
# rebuild when any source is newer than the binary
if [ ! -x "$exe" ] || [ -n "$(find "$here" "$src/src" "$src/include" -newer "$exe" -name '*.[ch]' -print -quit)" ]; then
  echo "building $exe"
  wrap=()
  [ "$target" = config ] && wrap=(-Wl,--wrap=HMSafetensorsOpen,--wrap=HMSafetensorsClose)
  clang "${cflags[@]}" -fsanitize=fuzzer "$here/fuzz_$target.c" "${lib[@]}" -o "$exe" "${libs[@]}" "${wrap[@]}"
fi

mkdir -p "$work/corpus-$target" "$work/crashes-$target"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# MPI and PETSc keep what they allocate at start-up until exit: leaks are checked per input (libFuzzer's
# -detect_leaks), not at exit
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-leak_check_at_exit=0:suppressions=$here/lsan.supp:print_suppressions=0}"
log="$work/fuzz_$target.log"
set +e
"$exe" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$work/crashes-$target/" "$@" "$work/corpus-$target" "$here/corpus/$target" > "$log" 2>&1
rc=$?
set -e
execs=$(grep -E "^stat::number_of_executed_units" "$log" | head -1 | awk "{print \$2}")
echo "fuzz_$target: ${execs:-?} executions in ${seconds} s, exit $rc (log: $log)"
if [ $rc -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$log" | head -20 >&2
fi
exit $rc

#!/usr/bin/env bash
# CI: the test suite again under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build folder.
#   bash tests/sanitize.sh [--valgrind]
# --valgrind also runs one small end-to-end job under valgrind --error-exitcode=1 (a third build without
# -march=native, whose AVX-512 valgrind cannot decode). Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
build="${HM_SANITIZE_BUILD:-build-sanitize}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ ! -f "$build/build.ninja" ]; then
  # b_lundef=false: the sanitizer runtimes are linked into the executables, not into libhipmace.so
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized -Dwerror=true || exit 1
fi
ninja -C "$build" || exit 1
# MPI and PETSc allocate at start-up and never free, so leak checking would only report them; UBSan
# must fail the test (it only prints by default).
export ASAN_OPTIONS="detect_leaks=0:check_initialization_order=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# the 8-rank run (oversubscribed on 2 cores) is the slowest and covers nothing the 2-4 rank runs miss
skip="mpi_np8|forces_np8"
tests=$(meson test -C "$build" --list 2> /dev/null | sed 's|^.* / ||' | grep -vxE "$skip")
# shellcheck disable=SC2086
meson test -C "$build" --print-errorlogs --num-processes 1 --timeout-multiplier 3 $tests
rc=$?

if [ "${1:-}" = "--valgrind" ]; then
  vg="${HM_VALGRIND_BUILD:-build-valgrind}"
  command -v valgrind > /dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind; }
  [ -f "$vg/build.ninja" ] || meson setup "$vg" -Dnative=false -Dtests=false --buildtype=debugoptimized || exit 1
  ninja -C "$vg" drivers/hipmace || exit 1
  out=$(mktemp -d)
  if valgrind -q --error-exitcode=1 --suppressions=/usr/share/openmpi/openmpi-valgrind.supp "$vg/drivers/hipmace" \
    -structure inputs/default.xyz -model inputs/demo_hipmace.safetensors -modes lowest -summary "$out/s.json" -hessian_view "binary:$out/H.bin" > "$out/log" 2>&1; then
    echo "valgrind: clean"
  else
    echo "valgrind: errors (exit $?)"; cat "$out/log"; rc=1
  fi
  rm -rf "$out"
fi
exit $rc

#!/bin/sh
# The installed library as a user gets it: `meson install --destdir` into a temporary folder, then
# drivers/hipmace-example.c compiled against the installed headers with `pkg-config --cflags --libs
# hipmace` (hipmace.pc moved to the temporary prefix) and run; its energy must equal the build's.
#   sh tests/install_example.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
dest=$(mktemp -d /tmp/hm_install_XXXXXX)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet > "$dest/install.log" 2>&1 || { cat "$dest/install.log"; exit 1; }
pc=$(find "$dest" -name hipmace.pc | head -n 1)
[ -n "$pc" ] || { echo "install_example: hipmace.pc not installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
mkdir "$dest/pkgconfig"
# the same .pc with its prefix moved under the destdir (PETSc, SLEPc, jansson stay the system's)
sed "s|^prefix=.*|prefix=$dest$prefix|" "$pc" > "$dest/pkgconfig/hipmace.pc"
export PKG_CONFIG_PATH="$dest/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ -f "$dest$prefix/include/hipmace.h" ] || { echo "install_example: include/hipmace.h not installed"; exit 1; }
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -Werror -o "$dest/example" "$src/drivers/hipmace-example.c" $(pkg-config --cflags hipmace) $(pkg-config --libs hipmace)
libdir=$(pkg-config --variable=libdir hipmace)
cd "$src"
LD_LIBRARY_PATH="$libdir" "$dest/example" -nmodes 3 > "$dest/installed.txt"
"$build/drivers/hipmace-example" -nmodes 3 > "$dest/built.txt"
grep -q '^energy ' "$dest/installed.txt" || { echo "install_example: no energy line"; cat "$dest/installed.txt"; exit 1; }
if ! cmp -s "$dest/installed.txt" "$dest/built.txt"; then
  echo "install_example: the installed example's output differs from the built one"
  diff "$dest/installed.txt" "$dest/built.txt"
  exit 1
fi
# the installed library, not the build's, was the one loaded
ldd "$dest/example" | grep -q "$dest" || LD_LIBRARY_PATH="$libdir" ldd "$dest/example" | grep -q "$dest" || { echo "install_example: not linked against the installed library"; exit 1; }
echo "install_example: compiled against $dest$prefix/include with pkg-config; output identical to the build's"
cat "$dest/installed.txt"

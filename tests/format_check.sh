#!/bin/sh
# The C sources follow .clang-format (clang-format 14, Debian 12): any file that clang-format would change
# fails the test with clang-format's own report. Skipped (77) where clang-format is not installed.
src="$1"
command -v clang-format > /dev/null 2>&1 || { echo "clang-format not installed: skipped"; exit 77; }
cd "$src" || exit 1
find src include drivers tests -name '*.c' -o -name '*.h' | sort | xargs clang-format --dry-run --Werror

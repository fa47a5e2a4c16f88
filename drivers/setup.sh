#!/usr/bin/env bash
# Installs hipmace's Debian dependencies (needs root or sudo) and builds it in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="build-essential meson ninja-build pkg-config petsc-dev slepc-dev libscalapack-openmpi-dev
      libopenmpi-dev openmpi-bin libelpa-dev libcmocka-dev libjansson-dev zlib1g-dev libopenblas0-serial libopenblas-serial-dev gnuplot-nox python3-numpy openbabel python3-prody python3-ase python3-phonopy python3-h5py libhdf5-openmpi-dev clang-format"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dwerror=true
ninja -C build

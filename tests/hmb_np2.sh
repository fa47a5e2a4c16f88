#!/bin/sh
# The hmb binary input end to end on 2 ranks: hipmace-build's .hmb and hipmace-convert's (a parallel XYZ read,
# written collectively) are byte-identical; hipmace on the .hmb (read in parallel) gives the energy and the
# block count of the .xyz to every printed digit; .hmb back to .xyz gives the builder's XYZ bytes.
# Usage: hmb_np2.sh MPIEXEC BINDIR INPUTS_DIR
set -e
mpiexec=$1 bindir=$2 inputs=$3 dir=$(mktemp -d /tmp/hm_hmb_XXXXXX)
cd "$dir"
run() { env -u OMPI_COMM_WORLD_SIZE "$mpiexec" -n 2 --oversubscribe "$@" >> log 2>&1 || { cat log; exit 1; }; }
"$bindir/hipmace-build" -system water -atoms 600 -o w.xyz > log 2>&1
"$bindir/hipmace-build" -system water -atoms 600 -o w.hmb >> log 2>&1
run "$bindir/hipmace-convert" -structure w.xyz -o c.hmb
cmp w.hmb c.hmb || { echo "hipmace-convert's hmb differs from hipmace-build's"; exit 1; }
run "$bindir/hipmace-convert" -structure w.hmb -o back.xyz
cmp w.xyz back.xyz || { echo "hmb -> xyz differs from the builder's xyz"; exit 1; }
for f in w.xyz w.hmb; do
  run "$bindir/hipmace" -structure $f -model "$inputs/demo_hipmace.safetensors" -modes none -summary $f.json
done
e1=$(grep -E '"(energy|hessian_blocks|natoms)"' w.xyz.json)
e2=$(grep -E '"(energy|hessian_blocks|natoms)"' w.hmb.json)
[ "$e1" = "$e2" ] || { echo "xyz: $e1"; echo "hmb: $e2"; exit 1; }
echo "hmb: build = convert (cmp), hmb -> xyz = xyz (cmp), energy and blocks equal:"
echo "$e2"
cd /
rm -rf "$dir"

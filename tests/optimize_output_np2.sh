#!/bin/sh
# -optimize with -optimize_output on 2 ranks: the final structure is written once (rank 0 holds it), the
# run exits 0, and ASE reads the file back with the input's atom count and a lower energy in the summary.
# Usage: optimize_output_np2.sh MPIEXEC HIPMACE INPUTS_DIR
set -e
mpiexec=$1
bin=$2
inputs=$3
dir=$(mktemp -d /tmp/hm_optout_XXXXXX)
cd "$dir"
env -u OMPI_COMM_WORLD_SIZE "$mpiexec" -n 2 --oversubscribe "$bin" -structure "$inputs/default.xyz" \
  -model "$inputs/demo_hipmace.safetensors" -optimize min -optimize_max_steps 2 -optimize_output final.xyz \
  -modes none -summary s.json > log 2>&1 || { cat log; exit 1; }
test -s final.xyz || { echo "final.xyz missing"; cat log; exit 1; }
/usr/bin/python3 - "$inputs/default.xyz" <<'PY'
import json, sys
import ase.io
a = ase.io.read("final.xyz")
b = ase.io.read(sys.argv[1])
assert len(a) == len(b), (len(a), len(b))
assert list(a.get_chemical_symbols()) == list(b.get_chemical_symbols())
s = json.load(open("s.json"))["optimize"]
assert s["steps"] == 2 and s["energy_final"] < s["energy_initial"], s
PY
cd /
rm -rf "$dir"

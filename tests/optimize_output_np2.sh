#!/bin/sh
# -optimize with -optimize_output on 2 ranks: the final structure is written by both ranks (each its block of
# atoms), the run exits 0, and ASE reads the file back with the input's atom count and a lower energy in the
# summary. The same run with .pdb, .data and .hmb names writes those formats (the format by the name): ASE reads
# the PDB (1e-3 A) and the LAMMPS data file (to the bit) with the XYZ file's positions, Open Babel reads the PDB,
# and hipmace-convert turns the hmb file back into the same XYZ file. A PDB input minimised into a PDB file
# keeps its atom names, residues and chains (read with ProDy).
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
for f in final.pdb final.data final.hmb; do
  env -u OMPI_COMM_WORLD_SIZE "$mpiexec" -n 2 --oversubscribe "$bin" -structure "$inputs/default.xyz" \
    -model "$inputs/demo_hipmace.safetensors" -optimize min -optimize_max_steps 2 -optimize_output $f \
    -modes none > log_$f 2>&1 || { cat log_$f; exit 1; }
  test -s $f || { echo "$f missing"; cat log_$f; exit 1; }
done
/usr/bin/python3 - <<'PY'
import numpy as np
import ase.io
x = ase.io.read("final.xyz")
p = ase.io.read("final.pdb")
d = ase.io.read("final.data", format="lammps-data", style="atomic", units="metal")
assert len(p) == len(x) and len(d) == len(x)
assert list(p.get_chemical_symbols()) == list(x.get_chemical_symbols())
# PDB: 3 decimals; LAMMPS: %.17g, the same doubles (the open structure sits in a box shifted by its lower corner)
assert np.abs(p.positions - x.positions).max() <= 5.0e-4 + 1e-12, np.abs(p.positions - x.positions).max()
shift = d.positions[0] - x.positions[0]
assert np.abs(d.positions - shift - x.positions).max() < 1e-9, np.abs(d.positions - shift - x.positions).max()
assert np.allclose(d.get_masses(), x.get_masses(), atol=1e-3)
PY
n=$(obabel final.pdb -oxyz 2>/dev/null | head -1)
test "$n" = "$(head -1 final.xyz)" || { echo "Open Babel read $n atoms from final.pdb"; exit 1; }
"$(dirname "$bin")/hipmace-convert" -structure final.hmb -o back.xyz > log_conv 2>&1 || { cat log_conv; exit 1; }
cmp back.xyz final.xyz || { echo "final.hmb read back differs from final.xyz"; exit 1; }
# a PDB input (Open Babel's, with atom names and residues) minimised into a PDB file keeps its labels (ProDy)
obabel "$inputs/default.xyz" -opdb -O in.pdb > /dev/null 2>&1
env -u OMPI_COMM_WORLD_SIZE "$mpiexec" -n 2 --oversubscribe "$bin" -structure in.pdb \
  -model "$inputs/demo_hipmace.safetensors" -optimize min -optimize_max_steps 1 -optimize_output out.pdb \
  -modes none > log_pdb 2>&1 || { cat log_pdb; exit 1; }
/usr/bin/python3 - <<'PY'
import numpy as np
import prody
prody.confProDy(verbosity="none")
a, b = prody.parsePDB("in.pdb"), prody.parsePDB("out.pdb")
assert a.numAtoms() == b.numAtoms()
for get in ("getNames", "getResnames", "getResnums", "getChids", "getElements"):
    assert list(getattr(a, get)()) == list(getattr(b, get)()), get
d = np.abs(a.getCoords() - b.getCoords()).max()
assert 0 < d < 0.5, d  # one step moved the atoms, by less than the trust radius
PY
cd /
rm -rf "$dir"

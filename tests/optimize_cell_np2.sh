#!/bin/sh
# -optimize min -optimize_cell true with a real model (the bundled protein model) on a 96-atom periodic water box
# from hipmace-build, on 2 ranks and on 1: the energy goes down at every accepted step and the largest stress
# component by more than half; ASE reads every trajectory frame with its own cell (the cell changes), energies
# equal to the summary's; the final structure (-optimize_output) has the last frame's cell and positions; the summary's
# optimize object has the final cell and stress; the 1- and 2-rank runs take the same steps with the same energies
# (1e-9 relative); fmax per step is that of the frames' forces. The refusals: -optimize ts, a molecule, a slab (pbc T T F): a one-line error, non-zero exit.
# Usage: optimize_cell_np2.sh MPIEXEC HIPMACE INPUTS_DIR
set -e
mpiexec=$1
bin=$2
inputs=$3
dir=$(mktemp -d /tmp/hm_optcell_XXXXXX)
cd "$dir"
"$(dirname "$bin")/hipmace-build" -system water -atoms 96 -o w.xyz > log_build 2>&1 || { cat log_build; exit 1; }
for np in 2 1; do
  env -u OMPI_COMM_WORLD_SIZE "$mpiexec" -n $np --oversubscribe "$bin" -structure w.xyz \
    -model "$inputs/protein_demo.safetensors" -optimize min -optimize_cell true -optimize_max_steps 6 \
    -optimize_trajectory t$np.xyz -optimize_output f$np.xyz -summary s$np.json -modes none > log$np 2>&1 || { cat log$np; exit 1; }
done
/usr/bin/python3 - <<'PY'
import json
import numpy as np
import ase.io
s = json.load(open("s2.json"))
o = s["optimize"]
E, S = o["energies"], o["smax_per_step_GPa"]
assert len(E) == len(S) >= 3, o
assert all(b < a for a, b in zip(E, E[1:])), E  # min accepts only steps that lower the energy
assert S[-1] < 0.5 * S[0], S
assert abs(s["energy"] - o["energy_final"]) < 1e-9 * abs(o["energy_final"])  # the run goes on at the final cell
frames = ase.io.read("t2.xyz", ":")
assert len(frames) == len(E), (len(frames), len(E))
for a, e, fm in zip(frames, E, o["fmax_per_step"]):
    assert all(a.pbc) and abs(a.get_potential_energy() - e) < 1e-9 * abs(e)
    # the optimiser's fmax is that of the frame's forces (not of its own coordinates' gradient); fmax= is %.6e
    assert abs(a.info["fmax"] - fm) < 1e-6 * fm and abs(np.linalg.norm(a.get_forces(), axis=1).max() - fm) < 1e-9 * fm
cells = np.array([a.cell.array for a in frames])
assert np.abs(cells[-1] - cells[0]).max() > 1e-3, cells  # the cell moved
assert np.abs(np.array(o["cell"]) - cells[-1]).max() < 1e-12
f = ase.io.read("f2.xyz")
assert np.abs(f.cell.array - cells[-1]).max() < 1e-12 and np.abs(f.positions - frames[-1].positions).max() < 1e-12
st = np.array(o["stress"]) * 160.21766208
assert np.allclose(st, st.T) and abs(np.abs(st).max() - o["smax_GPa"]) < 1e-9 * o["smax_GPa"]
# one rank: the same steps and energies (reductions in another order)
o1 = json.load(open("s1.json"))["optimize"]
assert o1["steps"] == o["steps"] and len(o1["energies"]) == len(E), (o1["steps"], o["steps"])
assert max(abs(a - b) for a, b in zip(o1["energies"], E)) < 1e-9 * abs(E[0])
print("water box: E %.6f -> %.6f eV, largest stress %.4f -> %.4f GPa, %d steps; cell %s -> %s" % (E[0], E[-1], S[0], S[-1], o["steps"], frames[0].cell.lengths(), frames[-1].cell.lengths()))
PY
# refusals
sed '2s/pbc="T T T"/pbc="T T F"/' w.xyz > slab.xyz
check() { # expected message, then the arguments
  want=$1
  shift
  if "$bin" "$@" -modes none > log_r 2>&1; then echo "not refused: $*"; exit 1; fi
  grep -q "$want" log_r || { echo "wrong message for $*:"; cat log_r; exit 1; }
  test "$(grep -c 'hipmace: error' log_r)" = 1 || { cat log_r; exit 1; }
}
check "works with -optimize min only" -structure w.xyz -model "$inputs/protein_demo.safetensors" -optimize ts -optimize_cell true
check "needs a cell periodic along x, y and z: the structure has no cell" -structure "$inputs/default.xyz" -model "$inputs/demo_hipmace.safetensors" -optimize min -optimize_cell true
check 'periodic along x, y and z: the structure.s pbc is "T T F"' -structure slab.xyz -model "$inputs/protein_demo.safetensors" -optimize min -optimize_cell true
cd /
rm -rf "$dir"

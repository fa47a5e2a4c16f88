#!/usr/bin/env python3
"""The -forces_xyz file read back by ASE (python3-ase): the real driver with -forces on the default molecule
and on a small periodic cell (written by ASE itself as extended XYZ); ase.io.read must give the input
species and positions, the summary's energy and forces (to the 17 printed digits), sum F ~ 0 for the
molecule, and for the cell the pbc, lattice and stress (eV/A^3) matching the summary's stress_voigt_GPa.
On 3 ranks (each writes its block of atoms into both files, nobody gathers them) the forces file and the
summary's "forces" text are byte-identical to one rank's. Skips (exit 77) when ASE is not installed."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HIPMACE = os.environ.get("HIPMACE_BIN", os.path.join(HERE, "..", "build", "drivers", "hipmace"))
INPUTS = os.environ.get("HIPMACE_INPUTS_DIR", os.path.join(HERE, "..", "inputs"))
GOLDEN = os.environ.get("HIPMACE_GOLDEN_DIR", os.path.join(HERE, "..", "..", "shared", "golden"))
EV_A3_GPA = 160.21766208

try:
    import ase
    import ase.io
except ImportError:
    print("ASE is not installed (apt-get install python3-ase): skipped")
    sys.exit(77)


def run(structure, model, tmp, tag, ranks=1):
    xyz = os.path.join(tmp, tag + "_forces.xyz")
    js = os.path.join(tmp, tag + ".json")
    cmd = [HIPMACE, "-structure", structure, "-model", model, "-modes", "none", "-forces", "-forces_xyz", xyz, "-summary", js]
    if ranks > 1:
        cmd = ["mpiexec", "--oversubscribe", "-n", str(ranks)] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("hipmace failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    with open(js) as f:
        summary = json.load(f)
    return ase.io.read(xyz, format="extxyz"), summary


def same_files(structure, model, tmp, tag):
    """The forces file and the summary's forces text on 3 ranks, byte for byte those of 1 rank."""
    out = []
    for ranks in (1, 3):
        run(structure, model, tmp, "%s_np%d" % (tag, ranks), ranks)
        with open(os.path.join(tmp, "%s_np%d_forces.xyz" % (tag, ranks)), "rb") as f:
            xyz = f.read()
        with open(os.path.join(tmp, "%s_np%d.json" % (tag, ranks))) as f:
            text = f.read()
        out.append((xyz, text[text.index('"forces": ['):text.index('"fmax"')]))
    assert out[0][0] == out[1][0], tag + ": forces file on 3 ranks differs from 1 rank"
    assert out[0][1] == out[1][1], tag + ": summary forces on 3 ranks differ from 1 rank"
    print("%s: forces file (%d bytes) and summary forces identical on 1 and 3 ranks" % (tag, len(out[0][0])))


def check_common(atoms, inp, summary, tag):
    assert atoms.get_chemical_symbols() == inp.get_chemical_symbols(), tag + ": species differ"
    assert np.array_equal(atoms.get_positions(), inp.get_positions()), tag + ": positions differ"
    f = np.array(summary["forces"])
    assert f.shape == (len(inp), 3)
    assert np.array_equal(atoms.get_forces(), f), tag + ": forces differ from the summary"
    assert atoms.get_potential_energy() == summary["energy"], tag + ": energy differs"
    fmax = np.sqrt((f * f).sum(axis=1)).max()
    assert abs(summary["fmax"] - fmax) <= 1e-12 * max(1.0, fmax), tag + ": fmax"
    print("%s: %d atoms, energy %.10f eV, fmax %.6f eV/A" % (tag, len(atoms), summary["energy"], fmax))
    return f


with tempfile.TemporaryDirectory() as tmp:
    # a molecule: no cell, no stress, sum F = 0
    inp = ase.io.read(os.path.join(INPUTS, "default.xyz"))
    atoms, summary = run(os.path.join(INPUTS, "default.xyz"), os.path.join(INPUTS, "demo_hipmace.safetensors"), tmp, "molecule")
    f = check_common(atoms, inp, summary, "molecule")
    assert not atoms.pbc.any() and "stress" not in summary
    assert np.abs(f.sum(axis=0)).max() <= 1e-12 * len(f) * max(1.0, np.abs(f).max()), "sum F != 0"
    same_files(os.path.join(INPUTS, "default.xyz"), os.path.join(INPUTS, "demo_hipmace.safetensors"), tmp, "molecule")
    # a periodic cell written by ASE (thinner than twice the cutoff)
    rng = np.random.default_rng(7)
    cell = np.array([[5.0, 0.0, 0.0], [0.8, 5.2, 0.0], [-0.5, 0.6, 5.4]])
    pos = []
    while len(pos) < 8:
        p = rng.random(3) @ cell
        ok = True
        for q in pos:
            for s in np.ndindex(3, 3, 3):
                if np.linalg.norm(p - q + (np.array(s) - 1) @ cell) < 1.3:
                    ok = False
        if ok:
            pos.append(p)
    per = ase.Atoms("CHHONHCH", positions=pos, cell=cell, pbc=True)
    path = os.path.join(tmp, "cell.xyz")
    ase.io.write(path, per, format="extxyz")
    per = ase.io.read(path)  # as written (ASE rounds the positions)
    atoms, summary = run(path, os.path.join(GOLDEN, "model_small.safetensors"), tmp, "cell")
    check_common(atoms, per, summary, "cell")
    assert atoms.pbc.all() and np.array_equal(atoms.cell[:], per.cell[:]), "cell: lattice or pbc differ"
    st = np.array(summary["stress"])
    assert np.allclose(st, st.T, rtol=0, atol=1e-12), "stress not symmetric"
    voigt = np.array([st[0, 0], st[1, 1], st[2, 2], st[1, 2], st[0, 2], st[0, 1]])
    assert np.allclose(np.array(summary["stress_voigt_GPa"]) / EV_A3_GPA, voigt, rtol=1e-14, atol=0)
    assert np.allclose(atoms.get_stress(voigt=True), voigt, rtol=0, atol=1e-15), "stress read by ASE differs"
    print("cell: stress (Voigt, eV/A^3) %s" % np.array2string(voigt, precision=6))
    same_files(path, os.path.join(GOLDEN, "model_small.safetensors"), tmp, "cell")

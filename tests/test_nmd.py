#!/usr/bin/env python3
"""The NMD mode file read back by ProDy (python3-prody): the real driver on inputs/default.xyz with
-modes_nmd and -modes_xyz, the NMD file parsed by prody.parseNMD and compared with the input structure,
with the extended XYZ mode file (the same unit Cartesian displacements) and with the documented scale
factor (RMS amplitude of the mode, docs/FORMATS.md). Skips (exit 77) when ProDy is not installed."""
import math
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HIPMACE = os.environ.get("HIPMACE_BIN", os.path.join(HERE, "..", "build", "drivers", "hipmace"))
INPUTS = os.environ.get("HIPMACE_INPUTS_DIR", os.path.join(HERE, "..", "inputs"))
NMODES = 20

try:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import prody
except ImportError:
    print("ProDy is not installed (apt-get install python3-prody): skipped")
    sys.exit(77)
prody.confProDy(verbosity="none")

# hipmace's standard weights (src/io/elements.c) for the elements of inputs/default.xyz
MASS = {"H": 1.008, "C": 12.011, "O": 15.999}
# CODATA constants as in include/hipmace/eigen.h
E, AMU, C, H, KB = 1.602176634e-19, 1.66053906660e-27, 299792458.0, 6.62607015e-34, 1.380649e-23


def read_xyz_input(path):
    with open(path) as f:
        lines = f.read().splitlines()
    n = int(lines[0])
    sym = [l.split()[0] for l in lines[2 : 2 + n]]
    pos = np.array([[float(x) for x in l.split()[1:4]] for l in lines[2 : 2 + n]])
    return sym, pos


def read_modes_xyz(path):
    """[(eigenvalue, frequency, (N,3) unit displacement)] from hipmace's -modes_xyz file."""
    out = []
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        n = int(lines[i])
        info = dict(kv.split("=", 1) for kv in lines[i + 1].split() if "=" in kv and not kv.startswith('"'))
        d = np.array([[float(x) for x in l.split()[4:7]] for l in lines[i + 2 : i + 2 + n]])
        out.append((float(info["eigenvalue"]), float(info["frequency_cm1"]), d))
        i += 2 + n
    return out


def amplitude(lam, T, u, masses):
    """RMS Cartesian displacement (A) along a mode: sqrt(hbar/(2w) coth(hbar w/2kT)) / |M^1/2 u|."""
    f = 1e-2 / (2 * math.pi * C) * math.sqrt(E / (1e-20 * AMU))  # cm^-1 of a unit eigenvalue
    lam = max(abs(lam), 1.0 / f**2)
    w = math.sqrt(lam * E / (1e-20 * AMU))
    hbar = H / (2 * math.pi)
    q2 = hbar / (2 * w) / (1e-20 * AMU)
    if T > 0:
        q2 /= math.tanh(hbar * w / (2 * KB * T))
    return math.sqrt(q2) / math.sqrt(np.sum(masses[:, None] * u**2))


def check(tmp, temperature):
    nmd, xyz = os.path.join(tmp, "pep.nmd"), os.path.join(tmp, "pep.xyz")
    structure = os.path.join(INPUTS, "default.xyz")
    cmd = [HIPMACE, "-structure", structure, "-model", os.path.join(INPUTS, "demo_hipmace.safetensors"),
           "-modes", "lowest", "-nmodes", str(NMODES), "-temperature", str(temperature),
           "-modes_nmd", nmd, "-modes_xyz", xyz]
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    sym, pos = read_xyz_input(structure)
    masses = np.array([MASS[s] for s in sym])
    ref = read_modes_xyz(xyz)
    assert len(ref) == NMODES

    with open(nmd) as f:
        first = f.readline().split()
    assert first == ["nmwiz_load", os.path.abspath(nmd)], first

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nma, ag = prody.parseNMD(nmd)
    assert nma is not None, "ProDy found no modes"
    assert ag.getTitle() == "pep", ag.getTitle()
    assert ag.numAtoms() == len(sym) == 17, ag.numAtoms()
    assert nma.numAtoms() == len(sym) and nma.numModes() == NMODES, (nma.numAtoms(), nma.numModes())
    assert list(ag.getNames()) == sym
    assert list(ag.getResnames()) == ["MOL"] * len(sym)
    # coordinates are written with 10 decimals
    err = np.abs(ag.getCoords() - pos).max()
    assert err <= 1e-10, f"coordinates differ by {err}"
    # mode vectors: NMD writes 8 decimals, the XYZ file 10: equal within 1e-8 (half units of the last digits)
    V = nma.getArray()
    ev = nma.getEigvals()  # ProDy's NMA eigenvalue is 1/scale^2
    for j, (lam, cm1, u) in enumerate(ref):
        err = np.abs(V[:, j] - u.reshape(-1)).max()
        assert err <= 1e-8, f"mode {j + 1}: vector differs from the XYZ file by {err}"
        assert abs(np.linalg.norm(V[:, j]) - 1) <= 1e-6, f"mode {j + 1} is not a unit vector"
        scale = 1.0 / math.sqrt(ev[j])
        want = amplitude(lam, temperature, u, masses)
        assert math.isfinite(scale) and scale > 0
        # 10 decimals in the NMD file, 10 in the XYZ vectors that enter |M^1/2 u|: relative 1e-6
        assert abs(scale - want) <= 1e-6 * want, f"mode {j + 1}: scale {scale} != {want}"
    print(f"T={temperature}: {NMODES} modes of {len(sym)} atoms read back by ProDy {prody.__version__}; "
          f"scales {1 / math.sqrt(ev.max()):.4f}..{1 / math.sqrt(ev.min()):.4f} A")


def check_pdb_labels(tmp):
    """A PDB input's atom names, residue names and numbers and chain ids reach the NMD file (a blank
    chain as X), read back by ProDy; the coordinates are the PDB's (3 decimals)."""
    sym, pos = read_xyz_input(os.path.join(INPUTS, "default.xyz"))
    names, resn, resi, chain = [], [], [], []
    lines = []
    for i, (s, x) in enumerate(zip(sym, pos)):
        names.append(f"{s}{i % 7 + 1}")
        resn.append("ALA" if i < 9 else "GLY")
        resi.append(5 if i < 9 else 6)
        chain.append("A" if i < 12 else " ")
        lines.append("ATOM  %5d %-4s %3s %1s%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s" %
                     (i + 1, names[-1], resn[-1], chain[-1], resi[-1], x[0], x[1], x[2], s))
    pdb, nmd = os.path.join(tmp, "lab.pdb"), os.path.join(tmp, "lab.nmd")
    with open(pdb, "w") as f:
        f.write("\n".join(lines) + "\nEND\n")
    cmd = [HIPMACE, "-structure", pdb, "-model", os.path.join(INPUTS, "demo_hipmace.safetensors"),
           "-modes", "lowest", "-nmodes", "3", "-modes_nmd", nmd]
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nma, ag = prody.parseNMD(nmd)
    assert nma is not None and nma.numModes() == 3
    assert list(ag.getNames()) == names, ag.getNames()
    assert list(ag.getResnames()) == resn, ag.getResnames()
    assert list(ag.getResnums()) == resi, ag.getResnums()
    assert list(ag.getChids()) == [c if c != " " else "X" for c in chain], ag.getChids()
    err = np.abs(ag.getCoords() - np.round(pos, 3)).max()
    assert err <= 1e-9, f"coordinates differ by {err}"
    print(f"PDB labels: names, residues, numbers and chains of {len(sym)} atoms read back by ProDy")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check(tmp, 298.15)
        check(tmp, 0)  # zero-point amplitudes
        check_pdb_labels(tmp)
    print("ok")


if __name__ == "__main__":
    main()

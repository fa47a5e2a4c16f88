#!/usr/bin/env python3
"""Hessian files for other programs (docs/FORMATS.md), read back by the programs' own readers:
- a molecule (inputs/default.xyz): -ase_vib read by ase.vibrations.VibrationsData.read, -orca_hess parsed
  here; both hold the Hessian of -hessian_view binary:, and the frequencies equal hipmace's (-modes full);
- a diamond supercell (hipmace-build, 2x2x2 cubic cells) with -phonopy_fc FORCE_CONSTANTS / FILE.hdf5:
  phonopy.load reads them with phonopy_disp.yaml; the atoms of phonopy's own supercell carry the input atoms'
  Hessian blocks; phonopy's Gamma-point frequencies equal the Gamma-periodic modes of hipmace's supercell
  spectrum to 1e-6 cm^-1; a band structure and a DOS run. The 8-atom cubic cell as a supercell of the
  2-atom primitive cell (a non-diagonal matrix) likewise;
- every file identical on 1 and 2 ranks; structures that are not supercells of the matrix refused.
Skips (exit 77) without ASE or phonopy (python3-ase, python3-phonopy; h5py for the HDF5 file)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HIPMACE = os.environ.get("HIPMACE_BIN", os.path.join(HERE, "..", "build", "drivers", "hipmace"))
BUILD = os.path.join(os.path.dirname(HIPMACE), "hipmace-build")
INPUTS = os.environ.get("HIPMACE_INPUTS_DIR", os.path.join(HERE, "..", "inputs"))
MODELS = os.environ.get("HIPMACE_MODELS_DIR", os.path.join(HERE, "..", "..", "shared", "models"))
MODEL = os.path.join(MODELS, "demo_hipmace.safetensors")

try:
    import phonopy
    from ase.vibrations import VibrationsData
except ImportError:
    print("ASE or phonopy is not installed (apt-get install python3-ase python3-phonopy): skipped")
    sys.exit(77)
try:
    import h5py
except ImportError:
    h5py = None

# hipmace's conversion (CODATA 2018, include/hipmace/eigen.h): sqrt(eV/(A^2 amu)) -> cm^-1
E, AMU, C = 1.602176634e-19, 1.66053906660e-27, 299792458.0
TO_CM1 = np.sqrt(E / AMU) * 1e10 / (2 * np.pi * C * 100)
HARTREE_EV, BOHR = 27.211386245988, 0.529177210903
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(args, ranks=1, expect_fail=False):
    cmd = [HIPMACE, "-model", MODEL] + args
    if ranks > 1:
        cmd = ["mpiexec", "--oversubscribe", "-n", str(ranks)] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if expect_fail:
        return r
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit("hipmace failed: " + " ".join(cmd))
    return r


def read_petsc_binary(path):
    """A PETSc binary sparse matrix (MATBAIJ/AIJ layout on disk) as a dense array."""
    with open(path, "rb") as f:
        hdr = np.fromfile(f, ">i4", 4)
        assert hdr[0] == 1211216
        m, n, nz = hdr[1:]
        rl = np.fromfile(f, ">i4", m)
        cols = np.fromfile(f, ">i4", nz)
        vals = np.fromfile(f, ">f8", nz)
    A = np.zeros((m, n))
    rows = np.repeat(np.arange(m), rl)
    A[rows, cols] = vals
    return A


def read_modes_xyz(path):
    freqs, disp = [], []
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        n = int(lines[i])
        info = dict(kv.split("=", 1) for kv in lines[i + 1].split() if "=" in kv and not kv.startswith('"'))
        freqs.append(float(info["frequency_cm1"]))
        disp.append(np.array([[float(x) for x in l.split()[4:7]] for l in lines[i + 2 : i + 2 + n]]).ravel())
        i += 2 + n
    return np.array(freqs), np.array(disp)


def read_orca_matrix(lines, i, n):
    """ORCA's blocks of five columns from line i; returns (matrix, next line)."""
    A = np.zeros((n, n))
    c0 = 0
    while c0 < n:
        cols = [int(x) for x in lines[i].split()]
        for r in range(n):
            v = lines[i + 1 + r].split()
            assert int(v[0]) == r
            A[r, cols] = [float(x) for x in v[1:]]
        i += 1 + n
        c0 += len(cols)
    return A, i


def read_orca(path):
    lines = open(path).read().splitlines()
    out = {}
    i = 0
    while i < len(lines):
        key = lines[i].strip()
        if key == "$hessian":
            n = int(lines[i + 1])
            out["hessian"], i = read_orca_matrix(lines, i + 2, n)
            continue
        if key == "$vibrational_frequencies":
            n = int(lines[i + 1])
            out["freq"] = np.array([float(lines[i + 2 + k].split()[1]) for k in range(n)])
            i += 2 + n
            continue
        if key == "$normal_modes":
            n = int(lines[i + 1].split()[0])
            out["modes"], i = read_orca_matrix(lines, i + 2, n)
            continue
        if key == "$atoms":
            n = int(lines[i + 1])
            at = [lines[i + 2 + k].split() for k in range(n)]
            out["symbols"] = [a[0] for a in at]
            out["masses"] = np.array([float(a[1]) for a in at])
            out["pos_bohr"] = np.array([[float(x) for x in a[2:5]] for a in at])
            i += 2 + n
            continue
        i += 1
    return out


def same_files(d1, d2, names):
    for name in names:
        a, b = open(os.path.join(d1, name), "rb").read(), open(os.path.join(d2, name), "rb").read()
        check(a == b, f"{name}: identical on 1 and 2 ranks")


def molecule(tmp):
    xyz = os.path.join(INPUTS, "default.xyz")
    outs = {}
    for ranks in (1, 2):
        d = os.path.join(tmp, f"mol{ranks}")
        os.makedirs(d)
        run(["-structure", xyz, "-modes", "full", "-modes_xyz", f"{d}/modes.xyz", "-hessian_view", f"binary:{d}/H.bin",
             "-ase_vib", f"{d}/vib.json", "-orca_hess", f"{d}/mol.hess"], ranks)
        outs[ranks] = d
    same_files(outs[1], outs[2], ["vib.json", "mol.hess"])
    d = outs[1]
    H = read_petsc_binary(f"{d}/H.bin")
    freqs, _ = read_modes_xyz(f"{d}/modes.xyz")
    vib = VibrationsData.read(f"{d}/vib.json")
    atoms = vib.get_atoms()
    check(np.array_equal(vib.get_hessian_2d(), H), "ASE: the Hessian equals -hessian_view's, bitwise")
    n = len(atoms)
    lines = open(xyz).read().splitlines()
    pos = np.array([[float(x) for x in l.split()[1:4]] for l in lines[2 : 2 + n]])
    check(np.array_equal(atoms.get_positions(), pos), "ASE: positions equal the input")
    # hipmace's modes: the mass-weighted Hessian with translations and rotations projected out (Eckart)
    m = atoms.get_masses()
    sm = np.repeat(np.sqrt(m), 3)
    D = vib.get_hessian_2d() / np.outer(sm, sm)
    D = (D + D.T) / 2
    com = (m[:, None] * pos).sum(0) / m.sum()
    R = np.zeros((3 * n, 6))
    for a in range(3):
        R[a::3, a] = np.sqrt(m)
        e = np.zeros(3)
        e[a] = 1
        R[:, 3 + a] = (np.cross(e, pos - com) * np.sqrt(m)[:, None]).ravel()
    Q, _ = np.linalg.qr(R)
    P = np.eye(3 * n) - Q @ Q.T
    lam = np.linalg.eigvalsh(P @ D @ P)
    lam = np.delete(lam, np.argsort(np.abs(lam))[:6])
    cm1 = np.sign(lam) * np.sqrt(np.abs(lam)) * TO_CM1
    check(np.abs(np.sort(cm1) - np.sort(freqs)).max() < 1e-6, "ASE: frequencies of the Eckart-projected Hessian equal hipmace's to 1e-6 cm^-1 "
          f"(max {np.abs(np.sort(cm1) - np.sort(freqs)).max():.2e})")
    ase_f = vib.get_frequencies()
    ase_cm = np.where(np.iscomplex(ase_f), -np.abs(ase_f), ase_f.real)
    top = np.sort(ase_cm)[-10:]
    print(f"     ASE's own (unprojected) highest frequencies vs hipmace's: max diff {np.abs(top - np.sort(freqs)[-10:]).max():.3g} cm^-1")
    o = read_orca(f"{d}/mol.hess")
    conv = BOHR**2 / HARTREE_EV
    check(np.abs(o["hessian"] / conv - H).max() <= 1e-9 * np.abs(H).max(), "ORCA: $hessian (Hartree/Bohr^2) equals the Hessian to 10 digits")
    check(np.allclose(o["pos_bohr"] * BOHR, pos, atol=1e-10) and np.allclose(o["masses"], m, atol=1e-5), "ORCA: $atoms positions (Bohr) and masses")
    check(len(o["freq"]) == 3 * n and np.all(o["freq"][:6] == 0) and np.abs(o["freq"][6:] - freqs).max() < 1e-5, "ORCA: $vibrational_frequencies: 6 zeros, then hipmace's")
    X = o["modes"]
    check(np.allclose(np.linalg.norm(X[:, 6:], axis=0), 1, atol=1e-5) and np.all(X[:, :6] == 0), "ORCA: $normal_modes unit Cartesian displacements, rigid-body columns zero")


def gamma_periodic(freqs, disp, period_map, tol=1e-4):
    """Frequencies (with multiplicity) of the supercell modes periodic with the unit cell: in each degenerate
    group, the dimension of the subspace invariant under the lattice translations."""
    order = np.argsort(freqs)
    f, V = freqs[order], disp[order]
    out = []
    i = 0
    while i < len(f):
        j = i + 1
        while j < len(f) and f[j] - f[j - 1] < 1e-5:
            j += 1
        B = V[i:j].T  # columns: the group's displacements (orthonormal for equal masses)
        B, _ = np.linalg.qr(B)
        # average over the translations of the unit-cell lattice: the projector onto periodic displacements
        Pp = np.zeros((B.shape[0], B.shape[0]))
        for perm in period_map:
            idx = (3 * perm[:, None] + np.arange(3)).ravel()
            T = np.zeros_like(Pp)
            T[idx, np.arange(B.shape[0])] = 1
            Pp += T
        Pp /= len(period_map)
        k = int(round(np.trace(B.T @ Pp @ B)))
        out += [f[i:j].mean()] * k
        i = j
    return np.array(out)


def translations(pos, cell, lu_frac_shifts):
    """For each unit-cell lattice vector t (Cartesian), the permutation p with pos[p[i]] = pos[i] + t (mod cell)."""
    inv = np.linalg.inv(cell)
    f = pos @ inv
    maps = []
    for t in lu_frac_shifts:
        g = (pos + t) @ inv
        d = g[:, None, :] - f[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ cell, axis=2)
        maps.append(np.argmin(dist, axis=1))
        assert np.all(dist.min(axis=1) < 1e-6)
    return maps


def phonopy_case(tmp, tag, cells, matrix, npts_unit):
    xyz = os.path.join(tmp, f"{tag}.xyz")
    subprocess.run([BUILD, "-system", "diamond", "-cells", cells, "-o", xyz], check=True, capture_output=True)
    outs = {}
    for ranks, fc in ((1, "FORCE_CONSTANTS"), (2, "FORCE_CONSTANTS"), (2, "fc.hdf5")):
        d = os.path.join(tmp, f"{tag}{ranks}{fc[:2]}")
        os.makedirs(d)
        run(["-structure", xyz, "-modes", "full", "-modes_xyz", f"{d}/modes.xyz", "-hessian_view", f"binary:{d}/H.bin",
             "-phonopy_fc", f"{d}/{fc}", "-phonopy_supercell", matrix], ranks)
        outs[(ranks, fc)] = d
    d1, d2, dh = outs[(1, "FORCE_CONSTANTS")], outs[(2, "FORCE_CONSTANTS")], outs[(2, "fc.hdf5")]
    same_files(d1, d2, ["FORCE_CONSTANTS", "phonopy_disp.yaml"])
    H = read_petsc_binary(f"{d1}/H.bin")
    freqs, disp = read_modes_xyz(f"{d1}/modes.xyz")
    ph = phonopy.load(f"{d1}/phonopy_disp.yaml", force_constants_filename=f"{d1}/FORCE_CONSTANTS", symmetrize_fc=False, is_compact_fc=False, log_level=0)
    fc = ph.force_constants
    check(len(ph.primitive) == npts_unit and len(ph.supercell) == H.shape[0] // 3, f"{tag}: phonopy's unit cell {len(ph.primitive)} atoms, supercell {len(ph.supercell)}")
    # phonopy's supercell atom k is the input atom at the same position: its Hessian rows are fc[k]
    lines = open(xyz).read().splitlines()
    n = int(lines[0])
    pos = np.array([[float(x) for x in l.split()[1:4]] for l in lines[2 : 2 + n]])
    cell = np.array(lines[1].split('"')[1].split(), dtype=float).reshape(3, 3)
    inv = np.linalg.inv(cell)
    d = ph.supercell.positions @ inv
    d = d[:, None, :] - (pos @ inv)[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ cell, axis=2)
    p = np.argmin(dist, axis=1)
    check(dist.min(axis=1).max() < 1e-8 and len(set(p)) == n, f"{tag}: phonopy's supercell atoms sit on the input atoms")
    Hp = H.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)[np.ix_(p, p)]
    check(np.array_equal(fc, Hp), f"{tag}: FORCE_CONSTANTS holds the Hessian blocks of phonopy's own supercell order, bitwise")
    if h5py is not None:
        ph5 = phonopy.load(f"{dh}/phonopy_disp.yaml", force_constants_filename=f"{dh}/fc.hdf5", symmetrize_fc=False, is_compact_fc=False, log_level=0)
        check(np.array_equal(ph5.force_constants, fc), f"{tag}: fc.hdf5 (2 ranks) equals FORCE_CONSTANTS (1 rank), bitwise")
    else:
        print("     h5py not installed (apt-get install python3-h5py): fc.hdf5 not read back")
    # Gamma: phonopy (its THz from its own eV/amu constants) back to eigenvalues, then hipmace's cm^-1
    from phonopy import units

    ph.run_qpoints([[0, 0, 0]], with_eigenvectors=True)
    thz = ph.get_qpoints_dict()["frequencies"][0]
    lam = np.sign(thz) * (thz / units.VaspToTHz) ** 2
    gam = np.sort(np.sign(lam) * np.sqrt(np.abs(lam)) * TO_CM1)
    # hipmace's supercell modes periodic with phonopy's unit cell (translations by its lattice vectors)
    lu = ph.primitive.cell
    shifts = [i * lu[0] + j * lu[1] + k * lu[2] for i in range(-3, 4) for j in range(-3, 4) for k in range(-3, 4)]
    maps = {tuple(m) for m in translations(pos, cell, shifts)}
    hip = np.sort(gamma_periodic(freqs, disp, [np.array(m) for m in maps]))
    # the 3 acoustic modes: hipmace projects the uniform translations out (the model's Hessian does not sum
    # to zero over atoms, so phonopy's acoustic Gamma frequencies are not 0)
    check(len(hip) == len(gam) - 3, f"{tag}: {len(hip)} Gamma-periodic hipmace modes for {len(gam)} phonopy Gamma modes (3 acoustic)")
    if len(hip) == len(gam) - 3:
        # the acoustic triplet: the 3 phonopy modes with the largest uniform-translation component
        ev = ph.get_qpoints_dict()["eigenvectors"][0]
        trans = np.linalg.norm(ev.reshape(-1, 3, ev.shape[1]).sum(0), axis=0)
        opt = np.sort(np.delete(gam, np.argsort(-trans)[:3]))
        err = np.abs(opt - hip).max()
        check(err < 1e-6, f"{tag}: phonopy's Gamma frequencies equal hipmace's Gamma-periodic modes to 1e-6 cm^-1 (max {err:.2e}; {opt.min():.2f}-{opt.max():.2f} cm^-1)")
    path = [[[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.25, 0.75], [0.375, 0.375, 0.75], [0, 0, 0], [0.5, 0.5, 0.5]]]
    qpoints, connections = phonopy.phonon.band_structure.get_band_qpoints_and_path_connections(path, npoints=11)
    ph.run_band_structure(qpoints, path_connections=connections)
    bs = ph.get_band_structure_dict()
    check(np.all(np.isfinite(np.concatenate(bs["frequencies"]))), f"{tag}: band structure ({sum(len(q) for q in qpoints)} q-points)")
    ph.run_mesh([4, 4, 4])
    ph.run_total_dos()
    dos = ph.get_total_dos_dict()
    check(dos["total_dos"].sum() > 0 and np.all(np.isfinite(dos["total_dos"])), "total DOS on a 4x4x4 mesh")
    return xyz


def builder_formats(tmp):
    """hipmace-build writes the format its -o name gives; hipmace reads each back to the same energy."""
    energies = {}
    for system, size, names in (("diamond", ["-cells", "2,2,2"], ["d.xyz", "d.data", "data.d", "d.lmp", "d.pdb"]), ("peptide", ["-residues", "2"], ["p.xyz", "p.lmp", "p.pdb"])):
        for name in names:
            path = os.path.join(tmp, name)
            subprocess.run([BUILD, "-system", system] + size + ["-o", path], check=True, capture_output=True)
            first = open(path).readline()
            kind = "pdb" if name.endswith(".pdb") else "lammps" if "LAMMPS" in first else "xyz" if first.strip().isdigit() else "?"
            check(kind == ("pdb" if name.endswith("pdb") else "xyz" if name.endswith("xyz") else "lammps"), f"hipmace-build -o {name}: {kind}")
            out = run(["-structure", path, "-modes", "none"]).stdout
            energies[name] = float([l for l in out.splitlines() if l.strip().startswith("energy")][0].split()[1])
    for ref, names in (("d.xyz", ["d.data", "data.d", "d.lmp"]), ("p.xyz", ["p.lmp"])):
        check(all(energies[n] == energies[ref] for n in names), f"LAMMPS data from hipmace-build: the energy of {ref}, bitwise")
    check(abs(energies["d.pdb"] - energies["d.xyz"]) < 1e-2 and abs(energies["p.pdb"] - energies["p.xyz"]) < 1e-2, "PDB from hipmace-build (3 decimals): the energy to 1e-2 eV")
    r = subprocess.run([BUILD, "-system", "diamond", "-cells", "1,1,1", "-o", os.path.join(tmp, "d.cif")], capture_output=True, text=True)
    check(r.returncode != 0 and "unknown output format" in r.stderr and not os.path.exists(os.path.join(tmp, "d.cif")), "hipmace-build -o d.cif refused")


def main():
    tmp = tempfile.mkdtemp(prefix="hm_hessexport_")
    try:
        molecule(tmp)
        builder_formats(tmp)
        xyz = phonopy_case(tmp, "dia222", "2,2,2", "2,2,2", 8)
        # the cubic cell over the 2-atom FCC primitive cell: a non-diagonal supercell matrix
        phonopy_case(tmp, "dia111", "1,1,1", "-1,1,1,1,-1,1,1,1,-1", 2)
        r = run(["-structure", xyz, "-modes", "none", "-phonopy_fc", f"{tmp}/FC", "-phonopy_supercell", "3,3,3"], expect_fail=True)
        check(r.returncode != 0 and "not a multiple of det(M) = 27" in r.stderr and len(r.stderr.strip().splitlines()) == 1, "refused: 64 atoms as a 3x3x3 supercell (one line)")
        rattled = os.path.join(tmp, "rattled.xyz")
        subprocess.run([BUILD, "-system", "diamond", "-cells", "2,2,2", "-displacement", "0.05", "-o", rattled], check=True, capture_output=True)
        r = run(["-structure", rattled, "-modes", "none", "-phonopy_fc", f"{tmp}/FC", "-phonopy_supercell", "2,2,2"], expect_fail=True, ranks=2)
        check(r.returncode != 0 and "not a supercell" in r.stderr and not os.path.exists(f"{tmp}/FC"), f"refused on 2 ranks: a rattled 2x2x2 cell as a 2x2x2 supercell: {r.stderr.strip()}")
        r = run(["-structure", os.path.join(INPUTS, "default.xyz"), "-modes", "none", "-phonopy_fc", f"{tmp}/FC", "-phonopy_supercell", "1,1,1"], expect_fail=True)
        check(r.returncode != 0 and "periodic" in r.stderr, "refused: -phonopy_fc for a molecule")
        for bad, msg in ((["-phonopy_fc", f"{tmp}/FC"], "needs -phonopy_supercell"), (["-phonopy_fc", f"{tmp}/FC", "-phonopy_supercell", "2,2"], "expected three integers"),
                         (["-phonopy_fc", f"{tmp}/FC", "-phonopy_supercell", "1,0,0,0,1,0,0,0,-1"], "positive determinant"), (["-ase_vib", "/nonexistent/x.json"], "cannot create"),
                         (["-hessian_view", f"hdf5:{tmp}/H.h5"], "cannot write a sparse matrix")):
            r = run(["-structure", xyz, "-modes", "none"] + bad, expect_fail=True)
            check(r.returncode != 0 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, f"refused: {' '.join(bad)}: {r.stderr.strip()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()

/* hipmace-build: writes a water box, diamond supercell, molecular cluster or peptide of a chosen size. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hipmace.h>
#include "hmmain.h"

static const char help[] = "hipmace-build: test systems of any size for weak-scaling studies.\n\n"
                           "  hipmace-build -system water|diamond|cluster|peptide (-atoms N | size option) [-o OUT.xyz]\n\n"
                           "  -system KIND           water (liquid, 0.997 g/cm^3, periodic), diamond (carbon, periodic),\n"
                           "                         cluster (copies of -molecule, open), peptide (open chain)\n"
                           "  -atoms N               target atom count; sizes are chosen to come closest\n"
                           "  -molecules N           water: number of molecules (3 N atoms)\n"
                           "  -cells NX,NY,NZ        diamond: 8-atom cubic cells per axis\n"
                           "  -copies N              cluster: number of copies of the molecule\n"
                           "  -residues N            peptide: number of residues\n"
                           "  -molecule FILE.xyz     cluster: the molecule to copy (its cell is ignored)\n"
                           "  -gap G                 cluster: minimum distance between copies, A (default 3)\n"
                           "  -displacement D        diamond: random displacement radius per atom, A (default 0)\n"
                           "  -conformation helix|strand  peptide: alpha helix (default) or beta strand\n"
                           "  -residue ala|gly       peptide: alanine (default) or glycine\n"
                           "  -seed S                random seed, integer >= 0 (default 1); same seed, same system\n"
                           "  -o OUT                 output file, format by name: .xyz/.extxyz (extended XYZ), .pdb (PDB, 1e-3 A),\n"
                           "                         .data/.lmp/data.NAME (LAMMPS data, atom style atomic), .hmb (binary, read in\n"
                           "                         parallel: docs/FORMATS.md); without it only the summary\n\n";

static PetscErrorCode ParseSeed(const char str[], unsigned long *seed)
{
  char              *end;
  unsigned long long v;

  PetscFunctionBegin;
  errno = 0;
  v     = strtoull(str, &end, 10);
  PetscCheck(str[0] >= '0' && str[0] <= '9' && !*end && errno == 0 && v <= (unsigned long long)(unsigned long)-1, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-seed %s: expected an integer >= 0", str);
  *seed = (unsigned long)v;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A count >= 1 that fits a PetscInt. */
static PetscErrorCode ParseCount(const char opt[], const char str[], PetscInt *v)
{
  char     *end;
  long long x;

  PetscFunctionBegin;
  errno = 0;
  x     = strtoll(str, &end, 10);
  PetscCheck(end != str && !*end && errno == 0 && x >= 1 && x <= PETSC_MAX_INT, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "%s %s: expected an integer >= 1", opt, str);
  *v = (PetscInt)x;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ParseReal(const char opt[], const char str[], double *v)
{
  char *end;

  PetscFunctionBegin;
  errno = 0;
  *v    = strtod(str, &end);
  PetscCheck(end != str && !*end && errno == 0 && isfinite(*v), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "%s %s: expected a number", opt, str);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* "NX,NY,NZ" */
static PetscErrorCode ParseCells(const char str[], PetscInt cells[3])
{
  char        part[96];
  const char *p = str;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++) {
    const size_t len = strcspn(p, ",");

    PetscCheck(len > 0 && len < sizeof(part) && (d == 2 ? p[len] == 0 : p[len] == ','), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-cells %s: expected three counts NX,NY,NZ", str);
    memcpy(part, p, len);
    part[len] = 0;
    PetscCall(ParseCount("-cells", part, &cells[d]));
    p += len + 1;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Summary(HMSystem sys, const char kind[], const char detail[], const char out[])
{
  PetscInt      n;
  PetscBool     hascell, pbc[3];
  double        cell[9];
  const double *pos, *m;
  char          geo[256];

  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetCell(sys, &hascell, cell, pbc));
  if (hascell) {
    const double *a = cell, *b = cell + 3, *c = cell + 6;
    const double  V    = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
    double        mass = 0;

    PetscCall(HMSystemGetMasses(sys, &m));
    for (PetscInt i = 0; i < n; i++) mass += m[i];
    /* amu/A^3 -> g/cm^3 */
    PetscCall(PetscSNPrintf(geo, sizeof(geo), "cell %.4f x %.4f x %.4f A (pbc %c%c%c), density %.4f g/cm^3", sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]), sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]), sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]), pbc[0] ? 'T' : 'F', pbc[1] ? 'T' : 'F', pbc[2] ? 'T' : 'F', mass * 1.66053906660 / V));
  } else {
    double lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};

    PetscCall(HMSystemGetPositions(sys, &pos));
    for (PetscInt i = 0; i < n; i++)
      for (int d = 0; d < 3; d++) {
        lo[d] = PetscMin(lo[d], pos[3 * i + d]);
        hi[d] = PetscMax(hi[d], pos[3 * i + d]);
      }
    PetscCall(PetscSNPrintf(geo, sizeof(geo), "open, extent %.3f x %.3f x %.3f A", hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]));
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace-build: %s, %" PetscInt_FMT " atoms (%s), %s%s%s\n", kind, n, detail, geo, out[0] ? " -> " : " (not written; give -o FILE.xyz)", out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Rejects an option that belongs to another -system. */
static PetscErrorCode OnlyFor(PetscBool set, const char opt[], const char kind[], const char want[])
{
  PetscFunctionBegin;
  PetscCheck(!set || !strcmp(kind, want), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "%s applies to -system %s only (got -system %s)", opt, want, kind);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Run(void)
{
  char          kind[32] = "", out[PETSC_MAX_PATH_LEN] = "", molfile[PETSC_MAX_PATH_LEN] = "", seedstr[64] = "1", conf[16] = "helix", res[8] = "ala", detail[PETSC_MAX_PATH_LEN + 128];
  PetscBool     has_kind, has_out, has_mol, has_atoms, has_molecules, has_cells, has_copies, has_residues, has_gap, has_disp, has_conf, has_res, help_asked;
  char          s_atoms[64] = "", s_mol[64] = "", s_cells[96] = "", s_copies[64] = "", s_res[64] = "", s_gap[64] = "3", s_disp[64] = "0";
  PetscInt      atoms = 0, nmol = 0, cells[3] = {0, 0, 0}, copies = 0, nres = 0, nsize;
  double        gap = 3.0, disp = 0.0;
  unsigned long seed;
  HMSystem      sys = NULL;

  PetscFunctionBegin;
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace-build options", NULL);
  PetscCall(PetscOptionsString("-system", "water, diamond, cluster or peptide", NULL, kind, kind, sizeof(kind), &has_kind));
  /* numbers are read as text and parsed here, so a bad value gets a message naming its option */
  PetscCall(PetscOptionsString("-atoms", "target atom count", NULL, s_atoms, s_atoms, sizeof(s_atoms), &has_atoms));
  PetscCall(PetscOptionsString("-molecules", "water: number of molecules", NULL, s_mol, s_mol, sizeof(s_mol), &has_molecules));
  PetscCall(PetscOptionsString("-cells", "diamond: cells nx,ny,nz", NULL, s_cells, s_cells, sizeof(s_cells), &has_cells));
  PetscCall(PetscOptionsString("-copies", "cluster: number of copies", NULL, s_copies, s_copies, sizeof(s_copies), &has_copies));
  PetscCall(PetscOptionsString("-residues", "peptide: number of residues", NULL, s_res, s_res, sizeof(s_res), &has_residues));
  PetscCall(PetscOptionsString("-molecule", "cluster: molecule file (XYZ)", NULL, molfile, molfile, sizeof(molfile), &has_mol));
  PetscCall(PetscOptionsString("-gap", "cluster: minimum distance between copies (A)", NULL, s_gap, s_gap, sizeof(s_gap), &has_gap));
  PetscCall(PetscOptionsString("-displacement", "diamond: random displacement radius (A)", NULL, s_disp, s_disp, sizeof(s_disp), &has_disp));
  PetscCall(PetscOptionsString("-conformation", "peptide: helix or strand", NULL, conf, conf, sizeof(conf), &has_conf));
  PetscCall(PetscOptionsString("-residue", "peptide: ala or gly", NULL, res, res, sizeof(res), &has_res));
  PetscCall(PetscOptionsString("-seed", "random seed (integer >= 0)", NULL, seedstr, seedstr, sizeof(seedstr), NULL));
  PetscCall(PetscOptionsString("-o", "output file: .xyz/.extxyz, .pdb, .data/.lmp/data.NAME or .hmb", NULL, out, out, sizeof(out), &has_out));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help_asked));
  if (help_asked) PetscFunctionReturn(PETSC_SUCCESS);

  PetscCheck(has_kind, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -system water|diamond|cluster|peptide (see -help)");
  PetscCheck(!strcmp(kind, "water") || !strcmp(kind, "diamond") || !strcmp(kind, "cluster") || !strcmp(kind, "peptide"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-system %s: expected water, diamond, cluster or peptide", kind);
  if (has_out) {
    PetscBool named;

    (void)HMOutputFormatFromName(out, &named);
    PetscCheck(named, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-o %s: unknown output format; name it .xyz/.extxyz (extended XYZ), .pdb (PDB), .data/.lmp/data.NAME (LAMMPS data) or .hmb (binary)", out);
  }
  PetscCall(ParseSeed(seedstr, &seed));
  if (has_atoms) PetscCall(ParseCount("-atoms", s_atoms, &atoms));
  if (has_molecules) PetscCall(ParseCount("-molecules", s_mol, &nmol));
  if (has_copies) PetscCall(ParseCount("-copies", s_copies, &copies));
  if (has_residues) PetscCall(ParseCount("-residues", s_res, &nres));
  if (has_cells) PetscCall(ParseCells(s_cells, cells));
  PetscCall(ParseReal("-gap", s_gap, &gap));
  PetscCall(ParseReal("-displacement", s_disp, &disp));
  PetscCall(OnlyFor(has_molecules, "-molecules", kind, "water"));
  PetscCall(OnlyFor(has_cells, "-cells", kind, "diamond"));
  PetscCall(OnlyFor(has_disp, "-displacement", kind, "diamond"));
  PetscCall(OnlyFor(has_copies, "-copies", kind, "cluster"));
  PetscCall(OnlyFor(has_mol, "-molecule", kind, "cluster"));
  PetscCall(OnlyFor(has_gap, "-gap", kind, "cluster"));
  PetscCall(OnlyFor(has_residues, "-residues", kind, "peptide"));
  PetscCall(OnlyFor(has_conf, "-conformation", kind, "peptide"));
  PetscCall(OnlyFor(has_res, "-residue", kind, "peptide"));
  nsize = (PetscInt)has_molecules + (PetscInt)has_cells + (PetscInt)has_copies + (PetscInt)has_residues;
  PetscCheck(!(has_atoms && nsize), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "give either -atoms or an explicit size (-molecules, -cells, -copies, -residues), not both");
  PetscCheck(has_atoms || nsize, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing size: -atoms N or the -system's own size option (see -help)");
  PetscCheck(!strcmp(conf, "helix") || !strcmp(conf, "strand"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-conformation %s: expected helix or strand", conf);
  PetscCheck(!strcmp(res, "ala") || !strcmp(res, "gly"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-residue %s: expected ala or gly", res);

  if (!strcmp(kind, "water")) {
    if (has_atoms) PetscCall(HMBuildWaterSize(atoms, &nmol));
    PetscCall(HMBuildWaterBox(PETSC_COMM_WORLD, nmol, seed, &sys));
    snprintf(detail, sizeof(detail), "%" PetscInt_FMT " molecules, seed %lu", nmol, seed);
  } else if (!strcmp(kind, "diamond")) {
    if (has_atoms) PetscCall(HMBuildDiamondSize(atoms, cells));
    PetscCheck(disp >= 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-displacement %s: must be >= 0", s_disp);
    PetscCall(HMBuildDiamond(PETSC_COMM_WORLD, cells[0], cells[1], cells[2], disp, seed, &sys));
    snprintf(detail, sizeof(detail), "%" PetscInt_FMT "x%" PetscInt_FMT "x%" PetscInt_FMT " cells, displacement %g A, seed %lu", cells[0], cells[1], cells[2], disp, seed);
  } else if (!strcmp(kind, "cluster")) {
    HMSystem mol;
    PetscInt m;

    PetscCheck(has_mol, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-system cluster needs -molecule FILE.xyz");
    PetscCheck(gap > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-gap %s: must be > 0", s_gap);
    PetscCall(HMSystemLoad(PETSC_COMM_WORLD, molfile, &mol));
    PetscCall(HMSystemGetSize(mol, &m));
    if (has_atoms) PetscCall(HMBuildClusterSize(atoms, m, &copies));
    PetscCall(HMBuildCluster(PETSC_COMM_WORLD, mol, copies, gap, seed, &sys));
    PetscCall(HMSystemDestroy(&mol));
    snprintf(detail, sizeof(detail), "%" PetscInt_FMT " copies of %s, gap %g A, seed %lu", copies, molfile, gap, seed);
  } else {
    const PetscBool ala = (PetscBool)!strcmp(res, "ala");

    if (has_atoms) PetscCall(HMBuildPeptideSize(atoms, ala, &nres));
    PetscCall(HMBuildPeptide(PETSC_COMM_WORLD, nres, conf, ala, &sys));
    snprintf(detail, sizeof(detail), "%" PetscInt_FMT " %s residues, %s", nres, ala ? "alanine" : "glycine", conf);
  }
  if (has_out) PetscCall(HMSystemWrite(sys, out));
  PetscCall(Summary(sys, kind, detail, has_out ? out : ""));
  PetscCall(HMSystemDestroy(&sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  return HMDriverMain(argc, argv, help, "hipmace-build", Run);
}

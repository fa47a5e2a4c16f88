/* The Hessian for other programs: phonopy force constants (FORCE_CONSTANTS, force_constants.hdf5 and the
   phonopy_disp.yaml phonopy reads with them), ORCA's .hess file and ASE's VibrationsData JSON. The Hessian is
   gathered densely on rank 0 (molecules and small cells: at most HM_EXPORT_MAX_ATOMS atoms). */
#include <hipmace/app.h>
#include <hipmace/eigen.h>
#include <hipmace/io.h>
#include "sys/sysimpl.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(HM_HAVE_HDF5)
  #include <hdf5.h>
#endif

#define HM_HARTREE_EV 27.211386245988 /* CODATA 2018 */

typedef struct {
  char      fc[PETSC_MAX_PATH_LEN], yaml[PETSC_MAX_PATH_LEN], orca[PETSC_MAX_PATH_LEN], ase[PETSC_MAX_PATH_LEN], sc[256];
  PetscBool has_fc, has_yaml, has_orca, has_ase, has_sc;
  int       M[9]; /* supercell matrix, rows as phonopy's supercell_matrix */
} HMExportOptions;

static PetscBool HasSuffix(const char s[], const char suf[])
{
  size_t n = strlen(s), k = strlen(suf);
  return (PetscBool)(n >= k && !strcmp(s + n - k, suf));
}

/* "A,B,C" (diagonal) or nine integers "a11,a12,...,a33" (rows). */
static PetscErrorCode ParseSupercell(const char s[], int M[9])
{
  long        v[9];
  int         n = 0;
  const char *p = s;

  PetscFunctionBegin;
  while (*p && n < 10) {
    char *end;
    long  x = strtol(p, &end, 10);
    PetscCheck(end != p && (*end == ',' || *end == 0) && labs(x) < 1000, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-phonopy_supercell %s: expected three integers NA,NB,NC or nine (the 3x3 matrix by rows)", s);
    if (n < 9) v[n] = x;
    n++;
    p = *end ? end + 1 : end;
  }
  PetscCheck(n == 3 || n == 9, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-phonopy_supercell %s: expected three integers NA,NB,NC or nine (the 3x3 matrix by rows)", s);
  for (int k = 0; k < 9; k++) M[k] = 0;
  if (n == 3)
    for (int k = 0; k < 3; k++) M[4 * k] = (int)v[k];
  else
    for (int k = 0; k < 9; k++) M[k] = (int)v[k];
  {
    const long det = (long)M[0] * (M[4] * M[8] - M[5] * M[7]) - (long)M[1] * (M[3] * M[8] - M[5] * M[6]) + (long)M[2] * (M[3] * M[7] - M[4] * M[6]);
    PetscCheck(det > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-phonopy_supercell %s: the matrix must have a positive determinant (got %ld)", s, det);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GetExportOptions(MPI_Comm comm, HMExportOptions *o)
{
  PetscMPIInt rank;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(o, sizeof(*o)));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscOptionsBegin(comm, NULL, "Hessian export options (docs/FORMATS.md)", NULL);
  PetscCall(PetscOptionsString("-phonopy_fc", "phonopy force constants of a periodic supercell: FORCE_CONSTANTS text, or HDF5 if the name ends in .hdf5", NULL, o->fc, o->fc, sizeof(o->fc), &o->has_fc));
  PetscCall(PetscOptionsString("-phonopy_supercell", "supercell matrix of the structure over its unit cell: NA,NB,NC or nine integers by rows", NULL, o->sc, o->sc, sizeof(o->sc), &o->has_sc));
  PetscCall(PetscOptionsString("-phonopy_yaml", "phonopy structure file written with -phonopy_fc (default: phonopy_disp.yaml next to it)", NULL, o->yaml, o->yaml, sizeof(o->yaml), &o->has_yaml));
  PetscCall(PetscOptionsString("-orca_hess", "ORCA-style .hess file (Hartree/Bohr^2) of a molecule", NULL, o->orca, o->orca, sizeof(o->orca), &o->has_orca));
  PetscCall(PetscOptionsString("-ase_vib", "ASE VibrationsData JSON file (eV/A^2)", NULL, o->ase, o->ase, sizeof(o->ase), &o->has_ase));
  PetscOptionsEnd();
  PetscCheck(!o->has_sc || o->has_fc, comm, PETSC_ERR_USER_INPUT, "-phonopy_supercell needs -phonopy_fc FILE");
  PetscCheck(!o->has_yaml || o->has_fc, comm, PETSC_ERR_USER_INPUT, "-phonopy_yaml needs -phonopy_fc FILE");
  PetscCheck(!o->has_fc || o->has_sc, comm, PETSC_ERR_USER_INPUT, "-phonopy_fc needs -phonopy_supercell NA,NB,NC (or the 3x3 matrix by rows, nine integers)");
  for (int k = 0; k < 4; k++) {
    const PetscBool has[] = {o->has_fc, o->has_yaml, o->has_orca, o->has_ase};
    const char     *val[] = {o->fc, o->yaml, o->orca, o->ase}, *opt[] = {"-phonopy_fc", "-phonopy_yaml", "-orca_hess", "-ase_vib"};
    PetscCheck(!has[k] || val[k][0], comm, PETSC_ERR_USER_INPUT, "%s: missing file name", opt[k]);
  }
#if !defined(HM_HAVE_HDF5)
  PetscCheck(!o->has_fc || !HasSuffix(o->fc, ".hdf5"), comm, PETSC_ERR_SUP, "-phonopy_fc %s: this build has no HDF5 (write FORCE_CONSTANTS text instead)", o->fc);
#endif
  if (o->has_sc) PetscCall(ParseSupercell(o->sc, o->M));
  if (o->has_fc && !o->has_yaml) {
    const char *slash = strrchr(o->fc, '/');
    if (slash) PetscCall(PetscSNPrintf(o->yaml, sizeof(o->yaml), "%.*sphonopy_disp.yaml", (int)(slash - o->fc + 1), o->fc));
    else PetscCall(PetscStrncpy(o->yaml, "phonopy_disp.yaml", sizeof(o->yaml)));
  }
  if (rank == 0) {
    if (o->has_fc) PetscCall(HMFileCheckWritable("-phonopy_fc", o->fc));
    if (o->has_fc) PetscCall(HMFileCheckWritable("-phonopy_yaml", o->yaml));
    if (o->has_orca) PetscCall(HMFileCheckWritable("-orca_hess", o->orca));
    if (o->has_ase) PetscCall(HMFileCheckWritable("-ase_vib", o->ase));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMExportCheckOptions(MPI_Comm comm, PetscBool *any)
{
  HMExportOptions o;

  PetscFunctionBegin;
  PetscCall(GetExportOptions(comm, &o));
  *any = (PetscBool)(o.has_fc || o.has_orca || o.has_ase);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The whole Hessian, dense and row-major (3N x 3N), on rank 0 (NULL elsewhere). Collective. */
static PetscErrorCode GatherDense(Mat H, double **out)
{
  MPI_Comm    comm = PetscObjectComm((PetscObject)H);
  PetscInt    n, rs, re;
  PetscBool   sbaij;
  PetscMPIInt size, rank, cnt, *cnts = NULL, *disp = NULL;
  double     *mine, *all = NULL;
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(MatGetSize(H, &n, NULL));
  PetscCall(MatGetOwnershipRange(H, &rs, &re));
  PetscCall(PetscObjectTypeCompareAny((PetscObject)H, &sbaij, MATSEQSBAIJ, MATMPISBAIJ, ""));
  PetscCall(PetscCalloc1((re - rs) * n + 1, &mine));
  if (sbaij) PetscCall(MatGetRowUpperTriangular(H));
  for (PetscInt i = rs; i < re; i++) {
    PetscInt           nc;
    const PetscInt    *c;
    const PetscScalar *v;
    PetscCall(MatGetRow(H, i, &nc, &c, &v));
    for (PetscInt k = 0; k < nc; k++) mine[(i - rs) * n + c[k]] = PetscRealPart(v[k]);
    PetscCall(MatRestoreRow(H, i, &nc, &c, &v));
  }
  if (sbaij) PetscCall(MatRestoreRowUpperTriangular(H));
  PetscCall(PetscMPIIntCast((re - rs) * n, &cnt));
  if (rank == 0) PetscCall(PetscMalloc2(size, &cnts, size, &disp));
  if (rank == 0) PetscCall(PetscMalloc1(n * n, &all));
  PetscCallMPI(MPI_Gather(&cnt, 1, MPI_INT, cnts, 1, MPI_INT, 0, comm));
  if (rank == 0) {
    disp[0] = 0;
    for (PetscMPIInt r = 1; r < size; r++) disp[r] = disp[r - 1] + cnts[r - 1];
  }
  PetscCallMPI(MPI_Gatherv(mine, cnt, MPI_DOUBLE, all, cnts, disp, MPI_DOUBLE, 0, comm));
  PetscCall(PetscFree(mine));
  if (rank == 0) {
    if (sbaij) /* only the upper triangle is stored */
      for (PetscInt i = 0; i < n; i++)
        for (PetscInt j = i + 1; j < n; j++) all[j * n + i] = all[i * n + j];
    *out = all;
    PetscCall(PetscFree2(cnts, disp));
  } else *out = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Rank 0's structure: positions, atomic numbers, masses, cell. */
typedef struct {
  PetscInt      n;
  const double *pos, *mass;
  const int    *Z;
  PetscBool     hascell, pbc[3];
  double        cell[9];
} HMExportAtoms;

static PetscErrorCode GetAtoms(HMSystem sys, HMExportAtoms *a)
{
  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &a->n));
  PetscCall(HMSystemGetPositions(sys, &a->pos));
  PetscCall(HMSystemGetMasses(sys, &a->mass));
  PetscCall(HMSystemGetAtomicNumbers(sys, &a->Z));
  PetscCall(HMSystemGetCell(sys, &a->hascell, a->cell, a->pbc));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static void WriteArray(FILE *fp, const char dtype[], PetscInt nshape, const PetscInt shape[], PetscInt len, const double *x, const int *iz)
{
  fprintf(fp, "{\"__ndarray__\": [[");
  for (PetscInt k = 0; k < nshape; k++) fprintf(fp, "%s%" PetscInt_FMT, k ? ", " : "", shape[k]);
  fprintf(fp, "], \"%s\", [", dtype);
  for (PetscInt k = 0; k < len; k++) {
    if (iz) fprintf(fp, "%s%d", k ? ", " : "", iz[k]);
    else fprintf(fp, "%s%.17g", k ? ", " : "", x[k]);
  }
  fprintf(fp, "]]}");
}

/* ASE's VibrationsData.write layout (ase.io.jsonio): the atoms and the Hessian as an (N,3,N,3) array, eV/A^2. */
static PetscErrorCode WriteASE(const char path[], const HMExportAtoms *a, const double *H)
{
  FILE        *fp;
  HMAtomicFile h;
  double       cell[9] = {0};
  PetscInt     sh[4]   = {a->n, 3, a->n, 3};

  PetscFunctionBegin;
  PetscCall(HMFileOpenAtomic(PETSC_COMM_SELF, path, &fp, &h));
  if (a->hascell) PetscCall(PetscArraycpy(cell, a->cell, 9));
  fprintf(fp, "{\"atoms\": {\"numbers\": ");
  WriteArray(fp, "int64", 1, sh, a->n, NULL, a->Z);
  fprintf(fp, ", \"positions\": ");
  sh[1] = 3;
  WriteArray(fp, "float64", 2, sh, 3 * a->n, a->pos, NULL);
  fprintf(fp, ", \"masses\": ");
  WriteArray(fp, "float64", 1, sh, a->n, a->mass, NULL);
  fprintf(fp, ", \"cell\": {\"__ndarray__\": [[3, 3], \"float64\", [");
  for (int k = 0; k < 9; k++) fprintf(fp, "%s%.17g", k ? ", " : "", cell[k]);
  fprintf(fp, "]]}, \"pbc\": {\"__ndarray__\": [[3], \"bool\", [%s, %s, %s]]}, \"__ase_objtype__\": \"atoms\"}, \"hessian\": ", a->hascell && a->pbc[0] ? "true" : "false", a->hascell && a->pbc[1] ? "true" : "false", a->hascell && a->pbc[2] ? "true" : "false");
  WriteArray(fp, "float64", 4, sh, 9 * a->n * a->n, H, NULL);
  fprintf(fp, ", \"indices\": null, \"__ase_objtype__\": \"vibrationsdata\"}\n");
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A 3N x 3N matrix (row-major) in ORCA's blocks of five columns: 11 digits (Hessian) or 6 decimals (modes). */
static void WriteOrcaMatrix(FILE *fp, PetscInt n, const double *A, double scale, PetscBool fixed)
{
  for (PetscInt c0 = 0; c0 < n; c0 += 5) {
    const PetscInt c1 = PetscMin(n, c0 + 5);
    fprintf(fp, "        ");
    for (PetscInt c = c0; c < c1; c++) fprintf(fp, "%19" PetscInt_FMT, c);
    fprintf(fp, "\n");
    for (PetscInt r = 0; r < n; r++) {
      fprintf(fp, "%6" PetscInt_FMT "  ", r);
      for (PetscInt c = c0; c < c1; c++) fprintf(fp, fixed ? "%19.6f" : "%19.10E", A[r * n + c] * scale);
      fprintf(fp, "\n");
    }
  }
}

/* ORCA's .hess layout: Hessian in Hartree/Bohr^2, frequencies (cm^-1, imaginary negative, rigid-body modes 0),
   normal modes as normalised Cartesian displacements by columns, atoms with masses and Bohr coordinates.
   modes_x: 3N x 3N row-major displacements (NULL: frequencies and modes left out). */
static PetscErrorCode WriteOrca(const char path[], const HMExportAtoms *a, const double *H, const double *freq, const double *modes_x)
{
  FILE          *fp;
  HMAtomicFile   h;
  const PetscInt n  = 3 * a->n;
  const double   cf = HM_BOHR_ANG * HM_BOHR_ANG / HM_HARTREE_EV; /* eV/A^2 -> Hartree/Bohr^2 */

  PetscFunctionBegin;
  PetscCall(HMFileOpenAtomic(PETSC_COMM_SELF, path, &fp, &h));
  fprintf(fp, "\n$orca_hessian_file\n\n$act_atom\n  0\n\n$act_coord\n  0\n\n$act_energy\n        0.000000\n\n");
  fprintf(fp, "# written by hipmace: Hessian in Hartree/Bohr^2 (1 eV/A^2 = %.15e Hartree/Bohr^2, CODATA 2018)\n", cf);
  fprintf(fp, "$hessian\n%" PetscInt_FMT "\n", n);
  WriteOrcaMatrix(fp, n, H, cf, PETSC_FALSE);
  if (freq) {
    fprintf(fp, "\n$vibrational_frequencies\n%" PetscInt_FMT "\n", n);
    for (PetscInt k = 0; k < n; k++) fprintf(fp, "%5" PetscInt_FMT "   %16.6f\n", k, freq[k]);
    fprintf(fp, "\n$normal_modes\n%" PetscInt_FMT " %" PetscInt_FMT "\n", n, n);
    WriteOrcaMatrix(fp, n, modes_x, 1.0, PETSC_TRUE); /* 6 decimals as ORCA: the same on any rank count */
  }
  fprintf(fp, "\n#\n# The atoms: label  mass(amu)  coordinates (Bohr)\n#\n$atoms\n%" PetscInt_FMT "\n", a->n);
  for (PetscInt i = 0; i < a->n; i++) fprintf(fp, " %-3s %12.5f %20.12f %20.12f %20.12f\n", HMElementSymbol(a->Z[i]), a->mass[i], a->pos[3 * i] / HM_BOHR_ANG, a->pos[3 * i + 1] / HM_BOHR_ANG, a->pos[3 * i + 2] / HM_BOHR_ANG);
  fprintf(fp, "\n$actual_temperature\n  0.000000\n\n$end\n\n");
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The mode analysis on rank 0 as ORCA lists it: all 3N frequencies (rigid-body modes first, as zeros) and the
   normalised Cartesian displacements by columns. Only when the whole spectrum is known (-modes full);
   *freq = NULL otherwise. Collective. */
static PetscErrorCode GatherModes(HMModes modes, const HMExportAtoms *a, PetscInt ndof, double **freq, double **X)
{
  PetscInt      n = 0, nrigid = 0;
  const double *lambda, *cm1;
  Mat           V;
  Vec           col0 = NULL;
  VecScatter    sc   = NULL;
  PetscMPIInt   rank;

  PetscFunctionBegin;
  *freq = *X = NULL;
  if (!modes) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMModesGetEigenvalues(modes, &n, &lambda, &cm1));
  PetscCall(HMModesGetNumRigid(modes, &nrigid));
  if (n + nrigid != ndof) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMModesGetVectors(modes, &V));
  PetscCallMPI(MPI_Comm_rank(PetscObjectComm((PetscObject)V), &rank));
  if (rank == 0) PetscCall(PetscCalloc2(ndof, freq, ndof * ndof, X));
  for (PetscInt j = 0; j < n; j++) {
    Vec x;
    PetscCall(MatDenseGetColumnVecRead(V, j, &x));
    if (!sc) PetscCall(VecScatterCreateToZero(x, &sc, &col0));
    PetscCall(VecScatterBegin(sc, x, col0, INSERT_VALUES, SCATTER_FORWARD));
    PetscCall(VecScatterEnd(sc, x, col0, INSERT_VALUES, SCATTER_FORWARD));
    PetscCall(MatDenseRestoreColumnVecRead(V, j, &x));
    if (rank == 0) {
      const double *d;
      double        nrm = 0, big = 0;
      PetscInt      rbig = 0;
      PetscCall(VecGetArrayRead(col0, &d));
      for (PetscInt r = 0; r < ndof; r++) nrm += d[r] * d[r] / a->mass[r / 3];
      /* the sign: the largest displacement positive (the first one within 1e-6 of it), whatever the solver gave */
      for (PetscInt r = 0; r < ndof; r++) big = PetscMax(big, fabs(d[r]) / sqrt(a->mass[r / 3]));
      for (PetscInt r = ndof - 1; r >= 0; r--)
        if (fabs(d[r]) / sqrt(a->mass[r / 3]) >= big * (1 - 1e-6)) rbig = r;
      nrm = sqrt(nrm);
      for (PetscInt r = 0; r < ndof; r++) (*X)[r * ndof + nrigid + j] = nrm > 0 ? (d[rbig] < 0 ? -1 : 1) * d[r] / sqrt(a->mass[r / 3]) / nrm : 0;
      PetscCall(VecRestoreArrayRead(col0, &d));
      (*freq)[nrigid + j] = cm1[j];
    }
  }
  PetscCall(VecScatterDestroy(&sc));
  PetscCall(VecDestroy(&col0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* row vector x times 3x3 A (row-major) */
static void RowTimes(const double x[3], const double A[9], double y[3])
{
  for (int j = 0; j < 3; j++) y[j] = x[0] * A[j] + x[1] * A[3 + j] + x[2] * A[6 + j];
}

/* distance (A) between fractional positions f and g of lattice L, modulo the lattice */
static double PeriodicDistance(const double f[3], const double g[3], const double L[9])
{
  double d[3], c[3];
  for (int k = 0; k < 3; k++) d[k] = f[k] - g[k] - nearbyint(f[k] - g[k]);
  RowTimes(d, L, c);
  return sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
}

static double Wrap(double x)
{
  double r = x - floor(x);
  return r >= 1.0 - 1e-12 ? 0.0 : r;
}

#define HM_PHONOPY_TOL 1e-4 /* A: positions of the supercell and of the unit cell's images must agree to this */

/* Rank 0. The unit cell of the supercell (lattice rows Lu = M^-T Ls, its atoms in the order they first appear
   in the input, fractional uf[nu][3]) and perm[k] = the input atom at position k of phonopy's supercell: for
   each unit atom, the lattice points of the frame surrounding M (a fastest, then b, then c), each image kept
   the first time its position (modulo the supercell) appears, as phonopy's Supercell builds it. msg: why the
   structure is not a supercell of M (empty when it is). */
static PetscErrorCode PhonopyMap(const HMExportAtoms *a, const int M[9], double Lu[9], PetscInt *nu, PetscInt uatom[], double uf[], PetscInt perm[], char msg[], size_t len)
{
  double   Ls[9], Lsi[9], MT[9], MTi[9], *fs;
  PetscInt N = a->n, det, *cls, nk = 0;
  int      frame[3];

  PetscFunctionBegin;
  msg[0] = 0;
  det    = (PetscInt)M[0] * (M[4] * M[8] - M[5] * M[7]) - (PetscInt)M[1] * (M[3] * M[8] - M[5] * M[6]) + (PetscInt)M[2] * (M[3] * M[7] - M[4] * M[6]);
  if (!a->hascell || !a->pbc[0] || !a->pbc[1] || !a->pbc[2]) {
    PetscCall(PetscSNPrintf(msg, len, "-phonopy_fc needs a structure periodic along a, b and c"));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  if (N % det) {
    PetscCall(PetscSNPrintf(msg, len, "-phonopy_supercell: %" PetscInt_FMT " atoms are not a multiple of det(M) = %" PetscInt_FMT ": the structure is not a supercell of that matrix", N, det));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscArraycpy(Ls, a->cell, 9));
  HMMat3Inverse(Ls, Lsi);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) MT[3 * i + j] = M[3 * j + i];
  HMMat3Inverse(MT, MTi);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) Lu[3 * i + j] = MTi[3 * i] * Ls[j] + MTi[3 * i + 1] * Ls[3 + j] + MTi[3 * i + 2] * Ls[6 + j];
  PetscCall(PetscMalloc2(3 * N, &fs, N, &cls));
  /* unit-cell classes in order of first appearance */
  *nu = 0;
  for (PetscInt i = 0; i < N; i++) {
    double f[3], fu[3];
    RowTimes(a->pos + 3 * i, Lsi, f);
    for (int k = 0; k < 3; k++) fs[3 * i + k] = Wrap(f[k]);
    RowTimes(f, MT, fu);
    for (int k = 0; k < 3; k++) fu[k] = Wrap(fu[k]);
    cls[i] = -1;
    for (PetscInt u = 0; u < *nu && cls[i] < 0; u++)
      if (PeriodicDistance(fu, uf + 3 * u, Lu) < HM_PHONOPY_TOL) cls[i] = u;
    if (cls[i] < 0) {
      if (*nu == N / det) {
        PetscCall(PetscSNPrintf(msg, len, "-phonopy_supercell: atom %" PetscInt_FMT " (from 1) is at no site of the first %" PetscInt_FMT " unit-cell sites: the structure is not a supercell of that matrix (tolerance %g A)", i + 1, N / det, HM_PHONOPY_TOL));
        PetscCall(PetscFree2(fs, cls));
        PetscFunctionReturn(PETSC_SUCCESS);
      }
      for (int k = 0; k < 3; k++) uf[3 * *nu + k] = fu[k];
      uatom[*nu] = i;
      cls[i]     = (*nu)++;
    } else if (a->Z[i] != a->Z[uatom[cls[i]]]) {
      PetscCall(PetscSNPrintf(msg, len, "-phonopy_supercell: atoms %" PetscInt_FMT " (%s) and %" PetscInt_FMT " (%s) share a unit-cell site: the structure is not a supercell of that matrix", i + 1, HMElementSymbol(a->Z[i]), uatom[cls[i]] + 1, HMElementSymbol(a->Z[uatom[cls[i]]])));
      PetscCall(PetscFree2(fs, cls));
      PetscFunctionReturn(PETSC_SUCCESS);
    }
  }
  /* phonopy's frame surrounding the supercell */
  for (int k = 0; k < 3; k++) {
    const int c[8] = {0, M[3 * k], M[3 * k + 1], M[3 * k + 2], M[3 * k + 1] + M[3 * k + 2], M[3 * k + 2] + M[3 * k], M[3 * k] + M[3 * k + 1], M[3 * k] + M[3 * k + 1] + M[3 * k + 2]};
    int       lo = 0, hi = 0;
    for (int j = 0; j < 8; j++) {
      lo = PetscMin(lo, c[j]);
      hi = PetscMax(hi, c[j]);
    }
    frame[k] = hi - lo;
  }
  for (PetscInt i = 0; i < N; i++) cls[i] = 0; /* now: taken */
  for (PetscInt u = 0; u < *nu; u++)
    for (int lc = 0; lc < frame[2]; lc++)
      for (int lb = 0; lb < frame[1]; lb++)
        for (int la = 0; la < frame[0]; la++) {
          const double p[3] = {uf[3 * u] + la, uf[3 * u + 1] + lb, uf[3 * u + 2] + lc};
          double       f[3];
          PetscInt     hit = -1;
          RowTimes(p, MTi, f);
          for (PetscInt j = 0; j < N && hit < 0; j++)
            if (PeriodicDistance(f, fs + 3 * j, Ls) < HM_PHONOPY_TOL) hit = j;
          if (hit < 0) {
            PetscCall(PetscSNPrintf(msg, len, "-phonopy_supercell: no atom of the structure at an image of unit-cell atom %" PetscInt_FMT " (input atom %" PetscInt_FMT "): the structure is not a supercell of that matrix (tolerance %g A)", u + 1, uatom[u] + 1, HM_PHONOPY_TOL));
            PetscCall(PetscFree2(fs, cls));
            PetscFunctionReturn(PETSC_SUCCESS);
          }
          if (!cls[hit]) {
            cls[hit]   = 1;
            perm[nk++] = hit;
          }
        }
  PetscCall(PetscFree2(fs, cls));
  if (nk != N) PetscCall(PetscSNPrintf(msg, len, "-phonopy_supercell: the images of the unit cell cover %" PetscInt_FMT " of %" PetscInt_FMT " atoms: the structure is not a supercell of that matrix", nk, N));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode WritePhonopyYaml(const char path[], const HMExportAtoms *a, const int M[9], const double Lu[9], PetscInt nu, const PetscInt uatom[], const double uf[], const char fcname[])
{
  FILE        *fp;
  HMAtomicFile h;

  PetscFunctionBegin;
  PetscCall(HMFileOpenAtomic(PETSC_COMM_SELF, path, &fp, &h));
  fprintf(fp, "# hipmace: unit cell and supercell matrix of the Hessian in %s (force constants in eV/A^2, no displacements:\n", fcname);
  fprintf(fp, "# phonopy --readfc, or phonopy.load(\"%s\", force_constants_filename=...)\n", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
  fprintf(fp, "phonopy:\n  version: \"2.17.1\"\n  calculator: vasp\nphysical_unit:\n  atomic_mass: \"AMU\"\n  length: \"angstrom\"\n  force_constants: \"eV/angstrom^2\"\n\n");
  fprintf(fp, "supercell_matrix:\n");
  for (int i = 0; i < 3; i++) fprintf(fp, "- [ %3d, %3d, %3d ]\n", M[3 * i], M[3 * i + 1], M[3 * i + 2]);
  fprintf(fp, "\nunit_cell:\n  lattice:\n");
  for (int i = 0; i < 3; i++) fprintf(fp, "  - [ %23.16e, %23.16e, %23.16e ] # %c\n", Lu[3 * i], Lu[3 * i + 1], Lu[3 * i + 2], 'a' + i);
  fprintf(fp, "  points:\n");
  for (PetscInt u = 0; u < nu; u++) {
    const PetscInt i = uatom[u];
    fprintf(fp, "  - symbol: %-2s # %" PetscInt_FMT " (input atom %" PetscInt_FMT ")\n    coordinates: [ %20.16f, %20.16f, %20.16f ]\n    mass: %.10f\n", HMElementSymbol(a->Z[i]), u + 1, i + 1, uf[3 * u], uf[3 * u + 1], uf[3 * u + 2], a->mass[i]);
  }
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* fc: N x N x 3 x 3 in phonopy's order */
static PetscErrorCode PhonopyFC(const double *H, PetscInt N, const PetscInt perm[], double *fc)
{
  PetscFunctionBegin;
  for (PetscInt i = 0; i < N; i++)
    for (PetscInt j = 0; j < N; j++)
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) fc[((i * N + j) * 3 + a) * 3 + b] = H[(3 * perm[i] + a) * 3 * N + 3 * perm[j] + b];
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode WriteForceConstantsText(const char path[], PetscInt N, const double *fc)
{
  FILE        *fp;
  HMAtomicFile h;

  PetscFunctionBegin;
  PetscCall(HMFileOpenAtomic(PETSC_COMM_SELF, path, &fp, &h));
  fprintf(fp, "%5" PetscInt_FMT " %5" PetscInt_FMT "\n", N, N);
  for (PetscInt i = 0; i < N; i++)
    for (PetscInt j = 0; j < N; j++) {
      const double *b = fc + (i * N + j) * 9;
      fprintf(fp, "%" PetscInt_FMT " %" PetscInt_FMT "\n", i + 1, j + 1);
      for (int r = 0; r < 3; r++) fprintf(fp, "%24.16e %24.16e %24.16e\n", b[3 * r], b[3 * r + 1], b[3 * r + 2]);
    }
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

#if defined(HM_HAVE_HDF5)
/* force_constants (N,N,3,3) float64 and physical_unit, as phonopy's write_force_constants_to_hdf5 */
static PetscErrorCode WriteForceConstantsHDF5(const char path[], PetscInt N, const double *fc)
{
  char       tmp[PETSC_MAX_PATH_LEN + 32];
  hid_t      f, sp, ds, st;
  hsize_t    dims[4] = {(hsize_t)N, (hsize_t)N, 3, 3}, one = 1;
  herr_t     e      = 0;
  const char unit[] = "eV/angstrom^2";

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp", path));
  f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(f >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-phonopy_fc %s: cannot create the HDF5 file", path);
  sp = H5Screate_simple(4, dims, NULL);
  ds = H5Dcreate2(f, "force_constants", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  e |= H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, fc);
  e |= H5Dclose(ds);
  e |= H5Sclose(sp);
  st = H5Tcopy(H5T_C_S1);
  e |= H5Tset_size(st, sizeof(unit) - 1);
  sp = H5Screate_simple(1, &one, NULL);
  ds = H5Dcreate2(f, "physical_unit", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  e |= H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, unit);
  e |= H5Dclose(ds);
  e |= H5Sclose(sp);
  e |= H5Tclose(st);
  e |= H5Fclose(f);
  PetscCheck(e >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "-phonopy_fc %s: cannot write the HDF5 file", path);
  PetscCheck(!rename(tmp, path), PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "-phonopy_fc %s: cannot rename %s", path, tmp);
  PetscFunctionReturn(PETSC_SUCCESS);
}
#endif

PetscErrorCode HMExportFromOptions(Mat H, HMSystem sys, HMModes modes)
{
  MPI_Comm        comm = PetscObjectComm((PetscObject)H);
  HMExportOptions o;
  HMExportAtoms   a;
  HMSystem        whole = NULL;
  PetscInt        ndof, natoms;
  PetscMPIInt     rank;
  double         *Hd = NULL, *freq = NULL, *X = NULL;
  char            msg[512] = "";

  PetscFunctionBegin;
  PetscCall(GetExportOptions(comm, &o));
  if (!(o.has_fc || o.has_orca || o.has_ase)) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(MatGetSize(H, &ndof, NULL));
  natoms = ndof / 3;
  PetscCheck(natoms <= HM_EXPORT_MAX_ATOMS, comm, PETSC_ERR_SUP, "-phonopy_fc/-orca_hess/-ase_vib: %" PetscInt_FMT " atoms; these files hold the dense Hessian, gathered on rank 0, up to %d atoms (use -hessian_view hdf5:FILE or binary:FILE)", natoms, HM_EXPORT_MAX_ATOMS);
  {
    /* the files need every atom on rank 0: a distributed system (the Hessian's row layout) is gathered there */
    PetscBool dist = PETSC_TRUE;
    if (rank == 0 && sys) PetscCall(HMSystemGetDistribution(sys, &dist, NULL, NULL));
    PetscCallMPI(MPI_Bcast(&dist, 1, MPIU_BOOL, 0, comm));
    if (dist) PetscCall(HMSystemRedistribute(comm, sys, 0, rank == 0 ? natoms : 0, &whole));
  }
  if (rank == 0) PetscCall(GetAtoms(whole ? whole : sys, &a));
  PetscCall(GatherDense(H, &Hd));
  if (o.has_orca) PetscCall(GatherModes(modes, &a, ndof, &freq, &X));
  if (rank == 0) {
    if (o.has_ase) PetscCall(WriteASE(o.ase, &a, Hd));
    if (o.has_orca) PetscCall(WriteOrca(o.orca, &a, Hd, freq, X));
    if (o.has_fc) {
      double    Lu[9], *uf, *fc;
      PetscInt *perm, *uatom, nu = 0;
      PetscCall(PetscMalloc3(natoms, &perm, natoms, &uatom, 3 * natoms, &uf));
      PetscCall(PhonopyMap(&a, o.M, Lu, &nu, uatom, uf, perm, msg, sizeof(msg)));
      if (!msg[0]) {
        PetscCall(PetscMalloc1(9 * natoms * natoms, &fc));
        PetscCall(PhonopyFC(Hd, natoms, perm, fc));
#if defined(HM_HAVE_HDF5)
        if (HasSuffix(o.fc, ".hdf5")) PetscCall(WriteForceConstantsHDF5(o.fc, natoms, fc));
        else
#endif
          PetscCall(WriteForceConstantsText(o.fc, natoms, fc));
        PetscCall(PetscFree(fc));
        PetscCall(WritePhonopyYaml(o.yaml, &a, o.M, Lu, nu, uatom, uf, strrchr(o.fc, '/') ? strrchr(o.fc, '/') + 1 : o.fc));
        PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace: phonopy force constants %s (%" PetscInt_FMT " atoms, unit cell of %" PetscInt_FMT ", eV/A^2) and %s\n", o.fc, natoms, nu, o.yaml));
      }
      PetscCall(PetscFree3(perm, uatom, uf));
    }
    if (o.has_orca && !freq) PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace: %s without $vibrational_frequencies/$normal_modes (they need the whole spectrum: -modes full)\n", o.orca));
  }
  PetscCallMPI(MPI_Bcast(msg, sizeof(msg), MPI_CHAR, 0, comm));
  PetscCheck(!msg[0], comm, PETSC_ERR_USER_INPUT, "%s", msg);
  if (rank == 0) PetscCall(PetscFree(Hd));
  if (freq) PetscCall(PetscFree2(freq, X));
  PetscCall(HMSystemDestroy(&whole));
  PetscFunctionReturn(PETSC_SUCCESS);
}

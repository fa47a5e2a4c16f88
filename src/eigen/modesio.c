/* Mode files (Molden, NMD, extended XYZ, text table): streamed one mode at a time through rank 0, written atomically. */
#include "eigenimpl.h"
#include <ctype.h>
#include <string.h>

/* Streams per-atom data to rank 0 through one scatter: only this rank's atoms are read from the system, so the
   writers keep working once the system is distributed. */
typedef struct {
  HMModes            m;
  Vec                scale; /* 1/sqrt(m) per row */
  Vec                d, d0; /* work vector (X's row layout) and its copy on rank 0 */
  VecScatter         sc;
  double            *pos0; /* rank 0: positions (3N) */
  int               *Z0;   /* rank 0: atomic numbers (N) */
  const HMAtomLabel *lab0; /* rank 0: the input's atom labels (PDB), NULL when it has none */
} HMModeStream;

static PetscErrorCode HMModeStreamGather_Private(HMModeStream *s, double *out)
{
  const double *a;
  PetscInt      n;

  PetscFunctionBegin;
  PetscCall(VecScatterBegin(s->sc, s->d, s->d0, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(s->sc, s->d, s->d0, INSERT_VALUES, SCATTER_FORWARD));
  if (out) {
    PetscCall(VecGetLocalSize(s->d0, &n));
    PetscCall(VecGetArrayRead(s->d0, &a));
    PetscCall(PetscArraycpy(out, a, n));
    PetscCall(VecRestoreArrayRead(s->d0, &a));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMModeStreamCreate_Private(HMModes m, HMSystem sys, HMModeStream *s)
{
  const double *mass, *pos;
  const int    *Z;
  PetscInt      rs, re, natoms;
  double       *sa, *da, *zz = NULL;
  PetscMPIInt   rank;

  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  PetscCall(HMSystemGetSize(sys, &natoms));
  PetscCheck(3 * natoms == m->ndof, m->comm, PETSC_ERR_ARG_WRONG, "system has %" PetscInt_FMT " atoms but the modes were computed for %" PetscInt_FMT, natoms, m->ndof / 3);
  PetscCallMPI(MPI_Comm_rank(m->comm, &rank));
  PetscCall(PetscMemzero(s, sizeof(*s)));
  s->m = m;
  PetscCall(MatCreateVecs(m->X, NULL, &s->d));
  PetscCall(VecDuplicate(s->d, &s->scale));
  PetscCall(VecScatterCreateToZero(s->d, &s->sc, &s->d0));
  PetscCall(HMSystemGetMasses(sys, &mass));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomicNumbers(sys, &Z));
  PetscCall(VecGetOwnershipRange(s->d, &rs, &re));
  PetscCall(VecGetArray(s->scale, &sa));
  for (PetscInt i = rs; i < re; i++) sa[i - rs] = 1.0 / PetscSqrtReal(mass[i / 3]);
  PetscCall(VecRestoreArray(s->scale, &sa));
  if (rank == 0) {
    PetscCall(PetscMalloc2(m->ndof, &s->pos0, natoms, &s->Z0));
    PetscCall(PetscMalloc1(m->ndof, &zz));
  }
  PetscCall(VecGetArray(s->d, &da));
  for (PetscInt i = rs; i < re; i++) da[i - rs] = pos[i];
  PetscCall(VecRestoreArray(s->d, &da));
  PetscCall(HMModeStreamGather_Private(s, s->pos0));
  PetscCall(VecGetArray(s->d, &da));
  for (PetscInt i = rs; i < re; i++) da[i - rs] = (double)Z[i / 3];
  PetscCall(VecRestoreArray(s->d, &da));
  PetscCall(HMModeStreamGather_Private(s, zz));
  if (rank == 0)
    for (PetscInt a = 0; a < natoms; a++) s->Z0[a] = (int)zz[3 * a];
  if (rank == 0) PetscCall(PetscFree(zz));
  if (rank == 0) PetscCall(HMSystemGetAtomLabels(sys, &s->lab0)); /* the writing rank holds the whole system */
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Rank 0 gets the normalised Cartesian displacement M^-1/2 x of mode j in *d (NULL elsewhere); *len (optional,
   every rank) is |M^-1/2 x| before the normalisation, in amu^-1/2. Collective. */
static PetscErrorCode HMModeStreamGet_Private(HMModeStream *s, PetscInt j, const double **d, PetscReal *len)
{
  Vec       x;
  PetscReal nrm;

  PetscFunctionBegin;
  PetscCall(MatDenseGetColumnVecRead(s->m->X, j, &x));
  PetscCall(VecPointwiseMult(s->d, x, s->scale));
  PetscCall(MatDenseRestoreColumnVecRead(s->m->X, j, &x));
  PetscCall(VecNorm(s->d, NORM_2, &nrm));
  if (nrm > 0) PetscCall(VecScale(s->d, 1.0 / nrm));
  if (len) *len = nrm;
  PetscCall(HMModeStreamGather_Private(s, NULL));
  PetscCall(VecGetArrayRead(s->d0, d));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMModeStreamRestore_Private(HMModeStream *s, const double **d)
{
  PetscFunctionBegin;
  PetscCall(VecRestoreArrayRead(s->d0, d));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMModeStreamDestroy_Private(HMModeStream *s)
{
  PetscFunctionBegin;
  PetscCall(VecScatterDestroy(&s->sc));
  PetscCall(VecDestroy(&s->d0));
  PetscCall(VecDestroy(&s->d));
  PetscCall(VecDestroy(&s->scale));
  if (s->pos0) PetscCall(PetscFree2(s->pos0, s->Z0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteMolden(HMModes m, HMSystem sys, const char path[])
{
  HMModeStream s;
  FILE        *fp;
  HMAtomicFile h;
  PetscInt     na = m->ndof / 3;

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  PetscCall(HMFileOpenAtomic(m->comm, path, &fp, &h));
  if (fp) {
    fprintf(fp, "[Molden Format]\n[Title]\n hipmace normal modes: %s\n[Atoms] Angs\n", m->method);
    for (PetscInt a = 0; a < na; a++) fprintf(fp, "%-3s %6" PetscInt_FMT " %3d %22.14f %22.14f %22.14f\n", HMElementSymbol(s.Z0[a]), a + 1, s.Z0[a], s.pos0[3 * a], s.pos0[3 * a + 1], s.pos0[3 * a + 2]);
    fprintf(fp, "[FREQ]\n");
    for (PetscInt j = 0; j < m->n; j++) fprintf(fp, "%16.6f\n", m->cm1[j]);
    fprintf(fp, "[FR-COORD]\n");
    for (PetscInt a = 0; a < na; a++) fprintf(fp, "%-3s %22.14f %22.14f %22.14f\n", HMElementSymbol(s.Z0[a]), s.pos0[3 * a] / HM_BOHR_ANG, s.pos0[3 * a + 1] / HM_BOHR_ANG, s.pos0[3 * a + 2] / HM_BOHR_ANG);
    fprintf(fp, "[FR-NORM-COORD]\n");
  }
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, NULL));
    if (fp) {
      fprintf(fp, " vibration %" PetscInt_FMT "\n", j + 1);
      for (PetscInt a = 0; a < na; a++) fprintf(fp, "%14.8f %14.8f %14.8f\n", d[3 * a], d[3 * a + 1], d[3 * a + 2]);
    }
    PetscCall(HMModeStreamRestore_Private(&s, &d));
  }
  PetscCall(HMFileCommitAtomic(&h));
  PetscCall(HMModeStreamDestroy_Private(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* RMS displacement (A) along mode j of a harmonic oscillator at temperature T, quantum (zero-point at T = 0,
   kT/lambda in the classical limit): <q^2> = hbar/(2 w) coth(hbar w/(2 kT)) in the mass-weighted coordinate,
   times len = |M^-1/2 x| for the Cartesian displacement. |lambda| is used (imaginary modes get the amplitude of
   their mirror image) and floored at the eigenvalue of 1 cm^-1, so near-zero modes stay finite. */
static double HMModeAmplitude_Private(double lambda, double T, PetscReal len)
{
  const double hbar = HM_CODATA_H / (2.0 * PETSC_PI), f = HMModesWavenumberFactor();
  double       lam = PetscMax(PetscAbsReal(lambda), 1.0 / (f * f));
  double       w   = PetscSqrtReal(lam * HM_CODATA_E_CHARGE / (1e-20 * HM_CODATA_AMU)); /* rad/s */
  double       q2  = hbar / (2.0 * w) / (1e-20 * HM_CODATA_AMU);                        /* amu A^2 */
  if (T > 0) q2 /= PetscTanhReal(hbar * w / (2.0 * HM_CODATA_KB * T));
  return PetscSqrtReal(q2) * len;
}

/* NMD name: the structure file's base name without extension (the NMD file's when the system was built in memory), letters, digits and '_' only, at most 30
   characters (what ProDy's own writer produces), "hipmace_modes" when nothing is left. */
static PetscErrorCode HMNMDName_Private(HMSystem sys, const char path[], char name[31])
{
  const char *src, *b, *dot;
  size_t      k = 0;

  PetscFunctionBegin;
  PetscCall(HMSystemGetSource(sys, &src));
  if (!strcmp(src, "(memory)")) src = path;
  b   = strrchr(src, '/');
  b   = b ? b + 1 : src;
  dot = strchr(b, '.');
  for (const char *c = b; *c && c != dot && k < 30; c++) name[k++] = (isalnum((unsigned char)*c) || *c == '_') ? *c : '_';
  name[k] = 0;
  if (!k) PetscCall(PetscStrncpy(name, "hipmace_modes", 31));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteNMD(HMModes m, HMSystem sys, const char path[])
{
  HMModeStream s;
  FILE        *fp;
  HMAtomicFile h;
  PetscInt     na = m->ndof / 3;
  char         full[PETSC_MAX_PATH_LEN], name[31];

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  PetscCall(PetscGetFullPath(path, full, sizeof(full)));
  PetscCall(HMNMDName_Private(sys, path, name));
  PetscCall(HMFileOpenAtomic(m->comm, path, &fp, &h));
  if (fp) {
    /* ProDy's parseNMD needs the name line; NMWiz (vmd -e FILE) runs the nmwiz_load line */
    fprintf(fp, "nmwiz_load %s\nname %s\n", full, name);
    /* a PDB input's atom names, residues and chains (a blank chain as X, an empty name as the element);
       otherwise the element, MOL and 1 */
    fprintf(fp, "atomnames");
    for (PetscInt a = 0; a < na; a++) fprintf(fp, " %s", s.lab0 && s.lab0[a].name[0] ? s.lab0[a].name : HMElementSymbol(s.Z0[a]));
    fprintf(fp, "\nresnames");
    for (PetscInt a = 0; a < na; a++) fprintf(fp, " %s", s.lab0 && s.lab0[a].resname[0] ? s.lab0[a].resname : "MOL");
    fprintf(fp, "\nresids");
    for (PetscInt a = 0; a < na; a++) fprintf(fp, " %" PetscInt_FMT, s.lab0 ? s.lab0[a].resid : (PetscInt)1);
    if (s.lab0) {
      fprintf(fp, "\nchainids");
      for (PetscInt a = 0; a < na; a++) fprintf(fp, " %c", isgraph((unsigned char)s.lab0[a].chain) ? s.lab0[a].chain : 'X');
    }
    fprintf(fp, "\ncoordinates");
    for (PetscInt i = 0; i < 3 * na; i++) fprintf(fp, " %.10f", s.pos0[i]);
    fprintf(fp, "\n# hipmace: mode <index> <RMS amplitude in A at %g K> <unit Cartesian displacement, 3N>\n# frequencies_cm1 (negative: imaginary)", m->temperature);
    for (PetscInt j = 0; j < m->n; j++) fprintf(fp, " %.4f", m->cm1[j]);
    fprintf(fp, "\n");
  }
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscReal     len;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, &len));
    if (fp) {
      /* ProDy's convention: index, then a decimal scale factor (sqrt of the variance), then the unit vector */
      fprintf(fp, "mode %" PetscInt_FMT " %.10f", j + 1, HMModeAmplitude_Private(m->lambda[j], m->temperature, len));
      for (PetscInt i = 0; i < 3 * na; i++) fprintf(fp, " %.8f", d[i]);
      fprintf(fp, "\n");
    }
    PetscCall(HMModeStreamRestore_Private(&s, &d));
  }
  PetscCall(HMFileCommitAtomic(&h));
  PetscCall(HMModeStreamDestroy_Private(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteXYZ(HMModes m, HMSystem sys, const char path[])
{
  HMModeStream s;
  FILE        *fp;
  HMAtomicFile h;
  char         lattice[512] = "";
  PetscInt     na           = m->ndof / 3;
  PetscBool    hascell, pbc[3];
  double       cell[9];

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  PetscCall(HMSystemGetCell(sys, &hascell, cell, pbc));
  if (hascell) PetscCall(PetscSNPrintf(lattice, sizeof(lattice), "Lattice=\"%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\" ", cell[0], cell[1], cell[2], cell[3], cell[4], cell[5], cell[6], cell[7], cell[8]));
  PetscCall(HMFileOpenAtomic(m->comm, path, &fp, &h));
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, NULL));
    if (fp) {
      fprintf(fp, "%" PetscInt_FMT "\n%sProperties=species:S:1:pos:R:3:mode:R:3 pbc=\"%c %c %c\" mode_index=%" PetscInt_FMT " eigenvalue=%.17g frequency_cm1=%.10f imaginary=%c\n", na, lattice, pbc[0] ? 'T' : 'F', pbc[1] ? 'T' : 'F', pbc[2] ? 'T' : 'F', j + 1, m->lambda[j], m->cm1[j], m->lambda[j] < 0 ? 'T' : 'F');
      for (PetscInt a = 0; a < na; a++) fprintf(fp, "%-3s %22.14f %22.14f %22.14f %16.10f %16.10f %16.10f\n", HMElementSymbol(s.Z0[a]), s.pos0[3 * a], s.pos0[3 * a + 1], s.pos0[3 * a + 2], d[3 * a], d[3 * a + 1], d[3 * a + 2]);
    }
    PetscCall(HMModeStreamRestore_Private(&s, &d));
  }
  PetscCall(HMFileCommitAtomic(&h));
  PetscCall(HMModeStreamDestroy_Private(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteTable(HMModes m, const char path[])
{
  HMAtomicFile h;
  FILE        *fp;

  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  PetscCall(HMFileOpenAtomic(m->comm, path, &fp, &h));
  if (fp) {
    /* numpy.loadtxt reads the rows (the # lines are comments): imaginary modes as negative wavenumbers */
    fprintf(fp, "# hipmace normal modes: %s\n", m->method);
    fprintf(fp, "# %" PetscInt_FMT " atoms, %" PetscInt_FMT " rigid-body directions projected out, %" PetscInt_FMT " modes; %s%" PetscInt_FMT " imaginary in the whole spectrum\n", m->natoms, m->nrigid, m->n, m->nimag_exact ? "" : "at least ", m->nimag);
    fprintf(fp, "# mode  eigenvalue/(eV/A^2/amu)  wavenumber/cm-1 (negative: imaginary)  residual\n");
    for (PetscInt i = 0; i < m->n; i++) fprintf(fp, "%6" PetscInt_FMT " %22.12e %16.4f %12.3e\n", i + 1, m->lambda[i], m->cm1[i], m->resid[i]);
  }
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteFiles(HMModes m, HMSystem sys)
{
  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  if (m->table[0]) PetscCall(HMModesWriteTable(m, m->table));
  if (m->molden[0]) PetscCall(HMModesWriteMolden(m, sys, m->molden));
  if (m->nmd[0]) PetscCall(HMModesWriteNMD(m, sys, m->nmd));
  if (m->xyz[0]) PetscCall(HMModesWriteXYZ(m, sys, m->xyz));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Mode files, atomic: Molden, NMD and extended XYZ written collectively (each rank its atoms' lines); the table by rank 0. */
#include "eigenimpl.h"
#include <ctype.h>
#include <string.h>

/* Every rank formats its own atoms (the rows of H it holds) and the file is written collectively, segment by
   segment (HMFileOrderedOpen): a header in rank 0's part, then every rank's atoms in input order. No rank holds
   more than its atoms and one mode's displacements. */
typedef struct {
  HMModes      m;
  HMModesAtoms at;    /* this rank's atoms, in X's row layout */
  Vec          scale; /* 1/sqrt(m) per row */
  Vec          d;     /* work vector, X's row layout */
  PetscMPIInt  rank;
} HMModeStream;

static PetscErrorCode HMModeStreamCreate_Private(HMModes m, HMSystem sys, HMModeStream *s)
{
  PetscInt rs, re;
  double  *sa;

  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  PetscCall(PetscMemzero(s, sizeof(*s)));
  s->m = m;
  PetscCallMPI(MPI_Comm_rank(m->comm, &s->rank));
  PetscCall(HMModesAtomsGet_Private(m->X, sys, &s->at));
  PetscCall(MatCreateVecs(m->X, NULL, &s->d));
  PetscCall(VecDuplicate(s->d, &s->scale));
  PetscCall(VecGetOwnershipRange(s->d, &rs, &re));
  PetscCall(VecGetArray(s->scale, &sa));
  for (PetscInt i = 0; i < re - rs; i++) sa[i] = 1.0 / PetscSqrtReal(s->at.mass[i / 3]);
  PetscCall(VecRestoreArray(s->scale, &sa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* This rank's rows of the normalised Cartesian displacement M^-1/2 x of mode j in *d; *len (optional) is
   |M^-1/2 x| before the normalisation, in amu^-1/2. Collective. */
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
  PetscCall(VecGetArrayRead(s->d, d));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMModeStreamRestore_Private(HMModeStream *s, const double **d)
{
  PetscFunctionBegin;
  PetscCall(VecRestoreArrayRead(s->d, d));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMModeStreamDestroy_Private(HMModeStream *s)
{
  PetscFunctionBegin;
  PetscCall(VecDestroy(&s->d));
  PetscCall(VecDestroy(&s->scale));
  PetscCall(HMModesAtomsRestore_Private(&s->at));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteMolden(HMModes m, HMSystem sys, const char path[])
{
  HMModeStream  s;
  HMOrderedFile f;
  const double *pos;
  const int    *Z;
  PetscInt      na, a0;

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  pos = s.at.pos;
  Z   = s.at.Z;
  na  = s.at.na;
  a0  = s.at.a0;
  PetscCall(HMFileOrderedOpen(m->comm, path, &f));
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "[Molden Format]\n[Title]\n hipmace normal modes: %s\n[Atoms] Angs\n", m->method));
  for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, "%-3s %6" PetscInt_FMT " %3d %22.14f %22.14f %22.14f\n", HMElementSymbol(Z[a]), a0 + a + 1, Z[a], pos[3 * a], pos[3 * a + 1], pos[3 * a + 2]));
  PetscCall(HMFileOrderedEndSegment(f));
  if (!s.rank) {
    PetscCall(HMFileOrderedPrintf(f, "[FREQ]\n"));
    for (PetscInt j = 0; j < m->n; j++) PetscCall(HMFileOrderedPrintf(f, "%16.6f\n", m->cm1[j]));
    PetscCall(HMFileOrderedPrintf(f, "[FR-COORD]\n"));
  }
  for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, "%-3s %22.14f %22.14f %22.14f\n", HMElementSymbol(Z[a]), pos[3 * a] / HM_BOHR_ANG, pos[3 * a + 1] / HM_BOHR_ANG, pos[3 * a + 2] / HM_BOHR_ANG));
  PetscCall(HMFileOrderedEndSegment(f));
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "[FR-NORM-COORD]\n"));
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, NULL));
    if (!s.rank) PetscCall(HMFileOrderedPrintf(f, " vibration %" PetscInt_FMT "\n", j + 1));
    for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, "%14.8f %14.8f %14.8f\n", d[3 * a], d[3 * a + 1], d[3 * a + 2]));
    PetscCall(HMModeStreamRestore_Private(&s, &d));
    PetscCall(HMFileOrderedEndSegment(f));
  }
  PetscCall(HMFileOrderedCommit(&f));
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

/* NMD name: the NMD file's base name without extension (what the driver has always written; the structure's source name
   is not used, so the file does not depend on how the system reached the writer), letters, digits and '_' only, at most 30
   characters (what ProDy's own writer produces), "hipmace_modes" when nothing is left. */
static PetscErrorCode HMNMDName_Private(const char path[], char name[31])
{
  const char *src, *b, *dot;
  size_t      k = 0;

  PetscFunctionBegin;
  src = path;
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
  HMModeStream       s;
  HMOrderedFile      f;
  const HMAtomLabel *lab;
  const int         *Z;
  PetscInt           na;
  char               full[PETSC_MAX_PATH_LEN], name[31];

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  lab = s.at.lab;
  Z   = s.at.Z;
  na  = s.at.na;
  PetscCall(PetscGetFullPath(path, full, sizeof(full)));
  PetscCall(HMNMDName_Private(path, name));
  PetscCall(HMFileOrderedOpen(m->comm, path, &f));
  /* ProDy's parseNMD needs the name line; NMWiz (vmd -e FILE) runs the nmwiz_load line. A PDB input's atom names,
     residues and chains (a blank chain as X, an empty name as the element); otherwise the element, MOL and 1. One
     segment per line: rank 0 starts it, every rank adds its atoms' fields. */
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "nmwiz_load %s\nname %s\natomnames", full, name));
  for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, " %s", lab && lab[a].name[0] ? lab[a].name : HMElementSymbol(Z[a])));
  PetscCall(HMFileOrderedEndSegment(f));
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "\nresnames"));
  for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, " %s", lab && lab[a].resname[0] ? lab[a].resname : "MOL"));
  PetscCall(HMFileOrderedEndSegment(f));
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "\nresids"));
  for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, " %" PetscInt_FMT, lab ? lab[a].resid : (PetscInt)1));
  PetscCall(HMFileOrderedEndSegment(f));
  if (lab) { /* labels are present on every rank or on none */
    if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "\nchainids"));
    for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, " %c", isgraph((unsigned char)lab[a].chain) ? lab[a].chain : 'X'));
    PetscCall(HMFileOrderedEndSegment(f));
  }
  if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "\ncoordinates"));
  for (PetscInt i = 0; i < 3 * na; i++) PetscCall(HMFileOrderedPrintf(f, " %.10f", s.at.pos[i]));
  PetscCall(HMFileOrderedEndSegment(f));
  if (!s.rank) {
    PetscCall(HMFileOrderedPrintf(f, "\n# hipmace: mode <index> <RMS amplitude in A at %g K> <unit Cartesian displacement, 3N>\n# frequencies_cm1 (negative: imaginary)", m->temperature));
    for (PetscInt j = 0; j < m->n; j++) PetscCall(HMFileOrderedPrintf(f, " %.4f", m->cm1[j]));
    PetscCall(HMFileOrderedPrintf(f, "\n"));
  }
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscReal     len;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, &len));
    /* ProDy's convention: index, then a decimal scale factor (sqrt of the variance), then the unit vector */
    if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "mode %" PetscInt_FMT " %.10f", j + 1, HMModeAmplitude_Private(m->lambda[j], m->temperature, len)));
    for (PetscInt i = 0; i < 3 * na; i++) PetscCall(HMFileOrderedPrintf(f, " %.8f", d[i]));
    PetscCall(HMModeStreamRestore_Private(&s, &d));
    PetscCall(HMFileOrderedEndSegment(f));
    if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "\n")); /* ends the line, in the next segment (or the commit's) */
  }
  PetscCall(HMFileOrderedCommit(&f));
  PetscCall(HMModeStreamDestroy_Private(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesWriteXYZ(HMModes m, HMSystem sys, const char path[])
{
  HMModeStream     s;
  HMOrderedFile    f;
  char             lattice[512] = "";
  const double    *pos, *cell;
  const int       *Z;
  const PetscBool *pbc;
  PetscInt         na;

  PetscFunctionBegin;
  PetscCall(HMModeStreamCreate_Private(m, sys, &s));
  pos  = s.at.pos;
  Z    = s.at.Z;
  na   = s.at.na;
  cell = s.at.cell;
  pbc  = s.at.pbc;
  if (s.at.hascell) HMXYZLatticeField(cell, lattice, sizeof(lattice));
  PetscCall(HMFileOrderedOpen(m->comm, path, &f));
  for (PetscInt j = 0; j < m->n; j++) {
    const double *d;
    PetscCall(HMModeStreamGet_Private(&s, j, &d, NULL));
    if (!s.rank) PetscCall(HMFileOrderedPrintf(f, "%" PetscInt_FMT "\n%sProperties=species:S:1:pos:R:3:mode:R:3 pbc=\"%c %c %c\" mode_index=%" PetscInt_FMT " eigenvalue=%.17g frequency_cm1=%.10f imaginary=%c\n", s.at.N, lattice, pbc[0] ? 'T' : 'F', pbc[1] ? 'T' : 'F', pbc[2] ? 'T' : 'F', j + 1, m->lambda[j], m->cm1[j], m->lambda[j] < 0 ? 'T' : 'F'));
    for (PetscInt a = 0; a < na; a++) PetscCall(HMFileOrderedPrintf(f, "%-3s %22.14f %22.14f %22.14f %16.10f %16.10f %16.10f\n", HMElementSymbol(Z[a]), pos[3 * a], pos[3 * a + 1], pos[3 * a + 2], d[3 * a], d[3 * a + 1], d[3 * a + 2]));
    PetscCall(HMModeStreamRestore_Private(&s, &d));
    PetscCall(HMFileOrderedEndSegment(f));
  }
  PetscCall(HMFileOrderedCommit(&f));
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

/* Mass-weighted Hessian, rigid-body (Eckart) basis and the projected operators built on them, all matrix-free in P. */
#include "eigenimpl.h"
#include <petscblaslapack.h>

/* Rotations whose principal moment of inertia is at most this fraction of the largest are absent (a linear
   molecule). Scale-aware: the ratio is (distance of the atoms from the axis / length)^2 in order of magnitude, so
   1e-5 takes a triatomic bent by up to ~0.7 degrees as linear (CO2 at 179.8 degrees: 8.3e-7, at 179: 2.1e-5); the rotation about the
   long axis of such a molecule is a bending motion, and projecting it out would drop a bending mode. Between
   this and HM_NEARLY_LINEAR the molecule is treated as non-linear with a warning. The ratio alone would also take a
   long object whose atoms lie far off its axis (a 10,000-residue helix, 1.5 um long: 2.6e-7) as linear, although the
   rotation about its axis moves every atom by its ~2 A radius: a molecule is linear only if, besides, its atoms lie
   within HM_LINEAR_RMS of the axis (mass-weighted root mean square; CO2 bent by 0.7 degrees: 0.003 A). */
#define HM_LINEAR_TOL    1e-5
#define HM_NEARLY_LINEAR 1e-3
#define HM_LINEAR_RMS    0.05 /* A */

static PetscErrorCode HMProjSymmetrize_Private(Mat H, Mat *Ht)
{
  PetscBool sbaij;
  Mat       T;

  PetscFunctionBegin;
  PetscCall(PetscObjectTypeCompareAny((PetscObject)H, &sbaij, MATSBAIJ, MATSEQSBAIJ, MATMPISBAIJ, ""));
  /* SBAIJ stores one triangle: converting mirrors it, so the copy is symmetric by construction. */
  PetscCall(MatConvert(H, MATAIJ, MAT_INITIAL_MATRIX, Ht));
  if (!sbaij) {
    /* the HIP Hessian is symmetric up to round-off; the symmetric solvers must see an exactly symmetric matrix */
    PetscCall(MatTranspose(*Ht, MAT_INITIAL_MATRIX, &T));
    /* the HIP graph is symmetric, so H^T has H's pattern: added in place, row by row (y + x, the same bits as into a
       new matrix), which saves the third copy (at 5·10^5 atoms per rank 3 GB); an entry outside the pattern is
       still added, by allocation */
    PetscCall(MatSetOption(*Ht, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
    PetscCall(MatAXPY(*Ht, 1.0, T, SUBSET_NONZERO_PATTERN));
    PetscCall(MatScale(*Ht, 0.5));
    PetscCall(MatDestroy(&T));
  }
  PetscCall(MatSetOption(*Ht, MAT_SYMMETRIC, PETSC_TRUE));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjOrthonormalize_Private(HMProj *p, const char why[])
{
  PetscFunctionBegin;
  for (PetscInt pass = 0; pass < 2; pass++) {
    for (PetscInt j = 0; j < p->k; j++) {
      double *vj = p->V + j * p->nloc, nrm;
      for (PetscInt i = 0; i < j; i++) {
        const double *vi = p->V + i * p->nloc;
        double        d  = 0;
        for (PetscInt r = 0; r < p->nloc; r++) d += vi[r] * vj[r];
        PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &d, 1, MPI_DOUBLE, MPI_SUM, p->comm));
        for (PetscInt r = 0; r < p->nloc; r++) vj[r] -= d * vi[r];
      }
      nrm = 0;
      for (PetscInt r = 0; r < p->nloc; r++) nrm += vj[r] * vj[r];
      PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &nrm, 1, MPI_DOUBLE, MPI_SUM, p->comm));
      PetscCheck(nrm > 0, p->comm, PETSC_ERR_PLIB, "rigid-body direction %" PetscInt_FMT " %s", j, why);
      nrm = 1.0 / PetscSqrtReal(nrm);
      for (PetscInt r = 0; r < p->nloc; r++) vj[r] *= nrm;
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesAtomsGet_Private(Mat H, HMSystem sys, HMModesAtoms *at)
{
  MPI_Comm  comm = PetscObjectComm((PetscObject)H);
  PetscInt  M, Nc, rs, re, N = -1, rstart = 0, n = 0, ok[4];
  PetscBool dist = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(at, sizeof(*at)));
  PetscCall(MatGetSize(H, &M, &Nc));
  PetscCall(MatGetOwnershipRange(H, &rs, &re));
  PetscCheck(rs % 3 == 0 && re % 3 == 0, comm, PETSC_ERR_ARG_WRONG, "Hessian rows [%" PetscInt_FMT ", %" PetscInt_FMT ") of this rank do not hold whole atoms", rs, re);
  at->a0 = rs / 3;
  at->na = (re - rs) / 3;
  if (sys) {
    PetscCall(HMSystemGetDistribution(sys, &dist, &N, &rstart));
    PetscCall(HMSystemGetSize(sys, &n));
  }
  /* ok[0]: the rank holds its rows' atoms where they are (whole, or distributed in H's layout); ok[1]: -N */
  ok[0] = sys && (!dist || (rstart == at->a0 && n == at->na));
  ok[1] = -N;
  if (sys) PetscCall(HMSystemGetAtomLabels(sys, &at->lab));
  ok[2] = at->lab != NULL;
  ok[3] = -ok[2];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, ok, 4, MPIU_INT, MPI_MIN, comm));
  at->N = -ok[1];
  if (ok[2] != -ok[3]) ok[0] = 0; /* labels on some ranks only (e.g. rank 0's copy): redistributed from the first */
  PetscCheck(M == 3 * at->N, comm, PETSC_ERR_ARG_WRONG, "%s is %" PetscInt_FMT " x %" PetscInt_FMT " but the system has %" PetscInt_FMT " atoms (expected %" PetscInt_FMT " rows)", M == Nc ? "Hessian" : "mode matrix", M, Nc, at->N, 3 * at->N);
  at->sys = sys;
  if (!ok[0]) { /* O(n) per rank: this rank's atoms, wherever they are */
    PetscCall(HMSystemRedistribute(comm, sys, at->a0, at->na, &at->own));
    at->sys = at->own;
  }
  PetscCall(HMSystemGetDistribution(at->sys, &dist, NULL, NULL));
  {
    const PetscInt off = dist ? 0 : at->a0;
    PetscCall(HMSystemGetPositions(at->sys, &at->pos));
    PetscCall(HMSystemGetMasses(at->sys, &at->mass));
    PetscCall(HMSystemGetAtomicNumbers(at->sys, &at->Z));
    PetscCall(HMSystemGetAtomLabels(at->sys, &at->lab));
    PetscCall(HMSystemGetCell(at->sys, &at->hascell, at->cell, at->pbc));
    at->pos += 3 * off;
    at->mass += off;
    at->Z += off;
    if (at->lab) at->lab += off;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesAtomsRestore_Private(HMModesAtoms *at)
{
  PetscFunctionBegin;
  PetscCall(HMSystemDestroy(&at->own));
  PetscCall(PetscMemzero(at, sizeof(*at)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Translations and rotations about the principal axes through the centre of mass, mass-weighted. */
static PetscErrorCode HMProjRigidBody_Private(HMProj *p, const HMModesAtoms *at)
{
  const double *pos = at->pos, *mass = at->mass;
  double        s[4] = {0, 0, 0, 0}, Iten[9], In[6] = {0, 0, 0, 0, 0, 0}, mom[3], work[16], Mtot, com[3], axes[3][3];
  PetscInt      na = p->nloc / 3, nrot = 0;
  PetscBLASInt  three = 3, lwork = 16, info;

  PetscFunctionBegin;
  p->periodic = (PetscBool)(at->hascell && (at->pbc[0] || at->pbc[1] || at->pbc[2]));
  /* the rank's own atoms, then one reduction: the same sums in the same order as with the whole structure */
  for (PetscInt a = 0; a < na; a++) {
    s[3] += mass[a];
    for (PetscInt d = 0; d < 3; d++) s[d] += mass[a] * pos[3 * a + d];
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, s, 4, MPI_DOUBLE, MPI_SUM, p->comm));
  Mtot = s[3];
  for (PetscInt d = 0; d < 3; d++) com[d] = s[d] / Mtot;
  for (PetscInt a = 0; a < na; a++) {
    double r[3] = {pos[3 * a] - com[0], pos[3 * a + 1] - com[1], pos[3 * a + 2] - com[2]}, r2 = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
    In[0] += mass[a] * (r2 - r[0] * r[0]);
    In[1] += mass[a] * (r2 - r[1] * r[1]);
    In[2] += mass[a] * (r2 - r[2] * r[2]);
    In[3] -= mass[a] * r[0] * r[1];
    In[4] -= mass[a] * r[0] * r[2];
    In[5] -= mass[a] * r[1] * r[2];
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, In, 6, MPI_DOUBLE, MPI_SUM, p->comm));
  Iten[0] = In[0];
  Iten[4] = In[1];
  Iten[8] = In[2];
  Iten[1] = Iten[3] = In[3];
  Iten[2] = Iten[6] = In[4];
  Iten[5] = Iten[7] = In[5];
  PetscCallBLAS("LAPACKsyev", LAPACKsyev_("V", "U", &three, Iten, &three, mom, work, &lwork, &info));
  PetscCheck(info == 0, p->comm, PETSC_ERR_LIB, "LAPACK dsyev failed on the inertia tensor (info %d)", (int)info);
  for (PetscInt d = 0; d < 3; d++) {
    p->com[d]  = com[d];
    p->axis[d] = Iten[d]; /* ascending moments: the first is about the longest axis */
  }
  if (!p->periodic) {
    for (PetscInt q = 0; q < 3; q++)
      if (mom[q] > HM_LINEAR_TOL * mom[2] || mom[q] > HM_LINEAR_RMS * HM_LINEAR_RMS * Mtot) {
        for (PetscInt d = 0; d < 3; d++) axes[nrot][d] = Iten[3 * q + d] / PetscSqrtReal(mom[q]);
        nrot++;
      }
  }
  p->linear = (PetscBool)(!p->periodic && nrot == 2);
  if (!p->periodic && mom[2] > 0) {
    const double ratio = PetscMax(mom[0], 0.0) / mom[2], rms = PetscSqrtReal(PetscMax(mom[0], 0.0) / Mtot);
    if (p->linear && ratio > 1e-12) PetscCall(PetscPrintf(p->comm, "hipmace: note: nearly linear molecule (smallest/largest principal moment of inertia %.2e <= %g): treated as linear, 5 rigid-body directions projected out\n", ratio, HM_LINEAR_TOL));
    else if (!p->linear && ratio <= HM_NEARLY_LINEAR && rms > 10 * HM_LINEAR_RMS) PetscCall(PetscPrintf(p->comm, "hipmace: note: elongated molecule (smallest/largest principal moment of inertia %.2e) with its atoms %.2f A (rms) off its long axis: not linear, 6 rigid-body directions projected out\n", ratio, rms));
    else if (!p->linear && ratio <= HM_NEARLY_LINEAR) PetscCall(PetscPrintf(p->comm, "hipmace: warning: nearly linear molecule (smallest/largest principal moment of inertia %.2e, above the %g of a linear one): treated as non-linear; the rotation about its long axis is close to a bending motion, check the lowest modes\n", ratio, HM_LINEAR_TOL));
  }
  p->k = PetscMin(3 + nrot, p->ndof);
  PetscCall(PetscCalloc1(p->nloc * p->k + 1, &p->V));
  for (PetscInt a = 0; a < na; a++) {
    PetscInt A    = a;
    double   sm   = PetscSqrtReal(mass[A]);
    double   r[3] = {pos[3 * A] - com[0], pos[3 * A + 1] - com[1], pos[3 * A + 2] - com[2]};
    for (PetscInt d = 0; d < 3 && d < p->k; d++) p->V[3 * a + d + d * p->nloc] = sm / PetscSqrtReal(Mtot);
    for (PetscInt q = 0; q < nrot; q++) {
      const double *e   = axes[q];
      double       *col = p->V + (3 + q) * p->nloc + 3 * a;
      col[0]            = sm * (e[1] * r[2] - e[2] * r[1]);
      col[1]            = sm * (e[2] * r[0] - e[0] * r[2]);
      col[2]            = sm * (e[0] * r[1] - e[1] * r[0]);
    }
  }
  PetscCall(HMProjOrthonormalize_Private(p, "vanished during orthonormalisation"));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The size of a vertex separator of Ht's graph that a nested-dissection ordering would find first: cut the atoms by
   the plane through their centre of mass normal to their longest principal axis (both from HMProjRigidBody_Private),
   and count the rows on one side coupled to the other (one product of Ht with the other side's indicator, weights
   kept away from cancelling). A chain or fibre has a separator of a few hundred rows at any length, a bulk of N^(2/3)
   rows: what a sparse Cholesky factor costs grows with it (-modes_solver auto). */
static PetscErrorCode HMProjSeparator_Private(HMProj *p, const HMModesAtoms *at)
{
  const double *c = p->com, *v = p->axis;
  double       *sa;
  Vec           s, y;
  PetscInt      n = 0;

  PetscFunctionBegin;
  PetscCall(MatCreateVecs(p->Ht, &s, &y));
  PetscCall(VecGetArray(s, &sa));
  for (PetscInt i = 0; i < p->nloc; i++) {
    const double *x    = at->pos + 3 * (i / 3);
    double        side = (x[0] - c[0]) * v[0] + (x[1] - c[1]) * v[1] + (x[2] - c[2]) * v[2];
    sa[i]              = side >= 0 ? 1.0 + 0.1 * (double)((p->rstart + i) % 7) : 0.0;
  }
  PetscCall(VecRestoreArray(s, &sa));
  PetscCall(MatMult(p->Ht, s, y));
  {
    const double *ya, *ss;
    PetscCall(VecGetArrayRead(y, &ya));
    PetscCall(VecGetArrayRead(s, &ss));
    for (PetscInt i = 0; i < p->nloc; i++) n += (ss[i] == 0 && ya[i] != 0);
    PetscCall(VecRestoreArrayRead(s, &ss));
    PetscCall(VecRestoreArrayRead(y, &ya));
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPIU_INT, MPI_SUM, p->comm));
  p->nsep = n;
  PetscCall(VecDestroy(&s));
  PetscCall(VecDestroy(&y));
  PetscCall(PetscInfo(p->Ht, "graph separator across the longest axis (%.3f %.3f %.3f): %" PetscInt_FMT " of %" PetscInt_FMT " rows\n", v[0], v[1], v[2], n, p->ndof));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjCreate(Mat H, const HMModesAtoms *at, HMProj **out)
{
  HMProj       *p;
  PetscInt      M, N, rend;
  const double *mass = at->mass;
  Vec           sv;
  double       *sa;

  PetscFunctionBegin;
  PetscCall(PetscNew(&p));
  p->comm    = PetscObjectComm((PetscObject)H);
  p->icntl14 = -1;
  PetscCall(MatGetSize(H, &M, &N));
  PetscCheck(M == N, p->comm, PETSC_ERR_ARG_WRONG, "Hessian is %" PetscInt_FMT " x %" PetscInt_FMT ": not square", M, N);
  p->ndof = M;
  PetscCall(MatGetOwnershipRange(H, &p->rstart, &rend));
  p->nloc = rend - p->rstart;
  for (PetscInt a = 0; a < at->na; a++) PetscCheck(mass[a] > 0 && PetscIsNormalReal(mass[a]), p->comm, PETSC_ERR_ARG_OUTOFRANGE, "atom %" PetscInt_FMT " has mass %g amu: normal modes need positive masses", at->a0 + a + 1, mass[a]);

  PetscCall(HMProjSymmetrize_Private(H, &p->Ht));
  PetscCall(PetscMalloc1(p->nloc + 1, &p->minv_sqrt));
  PetscCall(MatCreateVecs(p->Ht, &sv, NULL));
  PetscCall(VecGetArray(sv, &sa));
  for (PetscInt i = 0; i < p->nloc; i++) sa[i] = p->minv_sqrt[i] = 1.0 / PetscSqrtReal(mass[i / 3]);
  PetscCall(VecRestoreArray(sv, &sa));
  PetscCall(MatDiagonalScale(p->Ht, sv, sv));
  PetscCall(VecDestroy(&sv));
  PetscCall(MatCreateVecs(p->Ht, &p->wx, &p->wy));

  /* Gershgorin: every eigenvalue of Ht, hence (Cauchy interlacing) of its compression, lies in [lb, ub]. */
  PetscCall(HMProjSetBounds_Private(p, p->Ht));

  PetscCall(HMProjRigidBody_Private(p, at));
  PetscCall(HMProjSeparator_Private(p, at));
  PetscCall(PetscMalloc1(p->nloc * p->k + 1, &p->W));
  PetscCall(HMProjSetGram_Private(p, p->Ht));
  {
    /* ||Ht V||_F is zero for an exact acoustic sum rule; its size says how much the projection matters */
    double w2 = 0;
    for (PetscInt r = 0; r < p->nloc * p->k; r++) w2 += p->W[r] * p->W[r];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &w2, 1, MPI_DOUBLE, MPI_SUM, p->comm));
    PetscCall(PetscInfo(H, "normal modes: %" PetscInt_FMT " rigid-body directions, Gershgorin [%g, %g], ||Ht V||_F %g\n", p->k, p->lb, p->ub, PetscSqrtReal(w2)));
  }
  *out = p;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjSetBounds_Private(HMProj *p, Mat A)
{
  double             bnd[2] = {PETSC_MAX_REAL, PETSC_MAX_REAL}; /* min of (d - r) and of -(d + r) */
  PetscInt           ncols;
  const PetscInt    *cols;
  const PetscScalar *vals;

  PetscFunctionBegin;
  for (PetscInt i = p->rstart; i < p->rstart + p->nloc; i++) {
    double dg = 0, off = 0;
    PetscCall(MatGetRow(A, i, &ncols, &cols, &vals));
    for (PetscInt c = 0; c < ncols; c++) {
      if (cols[c] == i) dg = PetscRealPart(vals[c]);
      else off += PetscAbsScalar(vals[c]);
    }
    PetscCall(MatRestoreRow(A, i, &ncols, &cols, &vals));
    bnd[0] = PetscMin(bnd[0], dg - off);
    bnd[1] = PetscMin(bnd[1], -(dg + off));
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bnd, 2, MPI_DOUBLE, MPI_MIN, p->comm));
  p->lb    = bnd[0];
  p->ub    = -bnd[1];
  p->alpha = p->ub + PetscMax(0.5 * (p->ub - p->lb), 1e-3);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjGetColumn_Private(HMProj *p, PetscInt j, Vec x)
{
  double *xa;

  PetscFunctionBegin;
  PetscCall(VecGetArray(x, &xa));
  PetscCall(PetscArraycpy(xa, p->V + j * p->nloc, p->nloc));
  PetscCall(VecRestoreArray(x, &xa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMVecCopyToArray_Private(Vec x, double a[])
{
  const double *xa;
  PetscInt      n;

  PetscFunctionBegin;
  PetscCall(VecGetLocalSize(x, &n));
  PetscCall(VecGetArrayRead(x, &xa));
  PetscCall(PetscArraycpy(a, xa, n));
  PetscCall(VecRestoreArrayRead(x, &xa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjSetGram_Private(HMProj *p, Mat A)
{
  PetscFunctionBegin;
  for (PetscInt j = 0; j < p->k; j++) {
    PetscCall(HMProjGetColumn_Private(p, j, p->wx));
    PetscCall(MatMult(A, p->wx, p->wy));
    PetscCall(HMVecCopyToArray_Private(p->wy, p->W + j * p->nloc));
  }
  for (PetscInt i = 0; i < p->k; i++)
    for (PetscInt j = 0; j < p->k; j++) {
      double d = 0;
      for (PetscInt r = 0; r < p->nloc; r++) d += p->V[r + i * p->nloc] * p->W[r + j * p->nloc];
      p->C[i + j * p->k] = d;
    }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, p->C, (PetscMPIInt)(p->k * p->k), MPI_DOUBLE, MPI_SUM, p->comm));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjDestroy(HMProj **pp)
{
  HMProj *p = *pp;

  PetscFunctionBegin;
  if (!p) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(MatDestroy(&p->Ht));
  PetscCall(VecDestroy(&p->wx));
  PetscCall(VecDestroy(&p->wy));
  PetscCall(PetscFree(p->V));
  PetscCall(PetscFree(p->W));
  PetscCall(PetscFree(p->minv_sqrt));
  PetscCall(PetscFree(*pp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjVtx(HMProj *p, Vec x, double c[])
{
  const double *xa;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(x, &xa));
  for (PetscInt j = 0; j < p->k; j++) {
    const double *v = p->V + j * p->nloc;
    double        d = 0;
    for (PetscInt r = 0; r < p->nloc; r++) d += v[r] * xa[r];
    c[j] = d;
  }
  PetscCall(VecRestoreArrayRead(x, &xa));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, c, (PetscMPIInt)p->k, MPI_DOUBLE, MPI_SUM, p->comm));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* x <- x + V coef */
static PetscErrorCode HMProjAddV_Private(HMProj *p, Vec x, const double coef[])
{
  double *xa;

  PetscFunctionBegin;
  PetscCall(VecGetArray(x, &xa));
  for (PetscInt j = 0; j < p->k; j++) {
    const double *v = p->V + j * p->nloc;
    for (PetscInt r = 0; r < p->nloc; r++) xa[r] += coef[j] * v[r];
  }
  PetscCall(VecRestoreArray(x, &xa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjProject(HMProj *p, Vec x)
{
  double c[HM_MAX_RIGID];

  PetscFunctionBegin;
  PetscCall(HMProjVtx(p, x, c));
  for (PetscInt j = 0; j < p->k; j++) c[j] = -c[j];
  PetscCall(HMProjAddV_Private(p, x, c));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjGetRigidVecs(HMProj *p, Vec **dv)
{
  PetscFunctionBegin;
  PetscCall(VecDuplicateVecs(p->wx, p->k, dv));
  for (PetscInt j = 0; j < p->k; j++) {
    double *da;
    PetscCall(VecGetArray((*dv)[j], &da));
    PetscCall(PetscArraycpy(da, p->V + j * p->nloc, p->nloc));
    PetscCall(VecRestoreArray((*dv)[j], &da));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

typedef struct {
  HMProj *p;
  double  alpha;
} HMShellCtx;

static PetscErrorCode HMProjShellMult_Private(Mat A, Vec x, Vec y)
{
  HMShellCtx *ctx;
  HMProj     *p;
  double      c[HM_MAX_RIGID], d[HM_MAX_RIGID];

  PetscFunctionBegin;
  PetscCall(MatShellGetContext(A, &ctx));
  p = ctx->p;
  p->nmatvec++;
  PetscCall(HMProjVtx(p, x, c));
  PetscCall(VecCopy(x, p->wx));
  for (PetscInt j = 0; j < p->k; j++) d[j] = -c[j];
  PetscCall(HMProjAddV_Private(p, p->wx, d));
  PetscCall(MatMult(p->Ht, p->wx, y));
  if (p->hshift != 0) PetscCall(VecAXPY(y, -p->hshift, p->wx)); /* Ht holds Ht + hshift I while a preconditioner uses it */
  PetscCall(HMProjVtx(p, y, d));
  for (PetscInt j = 0; j < p->k; j++) d[j] = ctx->alpha * c[j] - d[j];
  PetscCall(HMProjAddV_Private(p, y, d));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* diag(P Ht P + alpha V V^T) = diag(Ht) - 2 diag(V W^T) + diag(V C V^T) + alpha diag(V V^T) */
static PetscErrorCode HMProjShellDiagonal_Private(Mat A, Vec dg)
{
  HMShellCtx *ctx;
  HMProj     *p;
  double     *da;

  PetscFunctionBegin;
  PetscCall(MatShellGetContext(A, &ctx));
  p = ctx->p;
  PetscCall(MatGetDiagonal(p->Ht, dg));
  if (p->hshift != 0) PetscCall(VecShift(dg, -p->hshift));
  PetscCall(VecGetArray(dg, &da));
  for (PetscInt r = 0; r < p->nloc; r++) {
    double s = 0;
    for (PetscInt i = 0; i < p->k; i++) {
      double vi = p->V[r + i * p->nloc];
      s += -2.0 * vi * p->W[r + i * p->nloc] + ctx->alpha * vi * vi;
      for (PetscInt j = 0; j < p->k; j++) s += vi * p->C[i + j * p->k] * p->V[r + j * p->nloc];
    }
    da[r] += s;
  }
  PetscCall(VecRestoreArray(dg, &da));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMProjShellDestroyCtx_Private(void *ctx)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(ctx));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjCreateShell(HMProj *p, double alpha, Mat *A)
{
  HMShellCtx *ctx;

  PetscFunctionBegin;
  PetscCall(PetscNew(&ctx));
  ctx->p     = p;
  ctx->alpha = alpha;
  PetscCall(MatCreateShell(p->comm, p->nloc, p->nloc, p->ndof, p->ndof, ctx, A));
  PetscCall(MatShellSetContextDestroy(*A, HMProjShellDestroyCtx_Private));
  PetscCall(MatShellSetOperation(*A, MATOP_MULT, (void (*)(void))HMProjShellMult_Private));
  PetscCall(MatShellSetOperation(*A, MATOP_MULT_TRANSPOSE, (void (*)(void))HMProjShellMult_Private));
  PetscCall(MatShellSetOperation(*A, MATOP_GET_DIAGONAL, (void (*)(void))HMProjShellDiagonal_Private));
  PetscCall(MatSetOption(*A, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(MatSetOption(*A, MAT_SYMMETRY_ETERNAL, PETSC_TRUE));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The mass matrix of the bordered pencil: identity on the ndof physical rows, zero on the k border rows. */
static PetscErrorCode HMProjBorderedMass_Private(HMProj *p, PetscInt nl, PetscInt n, Mat *Bout)
{
  PetscInt rs, re;
  Mat      B;

  PetscFunctionBegin;
  PetscCall(MatCreate(p->comm, &B));
  PetscCall(MatSetSizes(B, nl, nl, n, n));
  PetscCall(MatSetType(B, MATAIJ));
  PetscCall(MatSeqAIJSetPreallocation(B, 1, NULL));
  PetscCall(MatMPIAIJSetPreallocation(B, 1, NULL, 0, NULL));
  PetscCall(MatGetOwnershipRange(B, &rs, &re));
  for (PetscInt i = rs; i < re; i++) PetscCall(MatSetValue(B, i, i, i < p->ndof ? 1.0 : 0.0, INSERT_VALUES));
  PetscCall(MatAssemblyBegin(B, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(B, MAT_FINAL_ASSEMBLY));
  PetscCall(MatSetOption(B, MAT_SYMMETRIC, PETSC_TRUE));
  *Bout = B;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjCreateBordered(HMProj *p, Mat *Kout, Mat *Bout)
{
  PetscMPIInt        rank, size;
  PetscInt           nl, n = p->ndof + p->k, rs, re, *dnz, *onz, ncols, maxc = 0, *cbuf, k = p->k;
  const PetscInt    *cols;
  const PetscScalar *vals;
  PetscScalar       *vbuf;
  double             s = 0;
  Mat                K;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  nl = p->nloc + (rank == size - 1 ? k : 0);
  /* the border columns are scaled to the size of the diagonal so that pivoting sees balanced entries */
  for (PetscInt i = p->rstart; i < p->rstart + p->nloc; i++) {
    PetscCall(MatGetRow(p->Ht, i, &ncols, &cols, &vals));
    maxc = PetscMax(maxc, ncols);
    for (PetscInt c = 0; c < ncols; c++)
      if (cols[c] == i) s = PetscMax(s, PetscAbsScalar(vals[c]));
    PetscCall(MatRestoreRow(p->Ht, i, &ncols, &cols, &vals));
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, p->comm));
  if (!(s > 0)) s = 1.0;

  PetscCall(MatCreate(p->comm, &K));
  PetscCall(MatSetSizes(K, nl, nl, n, n));
  PetscCall(MatSetType(K, MATAIJ));
  PetscCall(MatGetOwnershipRangeColumn(p->Ht, &rs, &re));
  if (rank == size - 1) re += k;
  PetscCall(PetscMalloc2(nl + 1, &dnz, nl + 1, &onz));
  for (PetscInt i = 0; i < p->nloc; i++) {
    PetscInt  d = 0, o = 0;
    PetscBool hasdiag = PETSC_FALSE;
    PetscCall(MatGetRow(p->Ht, p->rstart + i, &ncols, &cols, &vals));
    for (PetscInt c = 0; c < ncols; c++) {
      if (cols[c] >= rs && cols[c] < re) d++;
      else o++;
      if (cols[c] == p->rstart + i) hasdiag = PETSC_TRUE;
    }
    PetscCall(MatRestoreRow(p->Ht, p->rstart + i, &ncols, &cols, &vals));
    if (!hasdiag) d++;
    if (rank == size - 1) d += k;
    else o += k;
    dnz[i] = d;
    onz[i] = o;
  }
  for (PetscInt j = 0; j < (rank == size - 1 ? k : 0); j++) {
    dnz[p->nloc + j] = re - rs;
    onz[p->nloc + j] = p->ndof - (re - rs - k);
  }
  PetscCall(MatSeqAIJSetPreallocation(K, 0, dnz));
  PetscCall(MatMPIAIJSetPreallocation(K, 0, dnz, 0, onz));
  PetscCall(PetscFree2(dnz, onz));

  PetscCall(PetscMalloc2(maxc + k + 1, &cbuf, maxc + k + 1, &vbuf));
  for (PetscInt i = 0; i < p->nloc; i++) {
    PetscInt  row = p->rstart + i, nc = 0;
    PetscBool hasdiag = PETSC_FALSE;
    PetscCall(MatGetRow(p->Ht, row, &ncols, &cols, &vals));
    for (PetscInt c = 0; c < ncols; c++) {
      cbuf[nc]   = cols[c];
      vbuf[nc++] = vals[c];
      if (cols[c] == row) hasdiag = PETSC_TRUE;
    }
    PetscCall(MatRestoreRow(p->Ht, row, &ncols, &cols, &vals));
    if (!hasdiag) {
      cbuf[nc]   = row;
      vbuf[nc++] = 0.0;
    }
    for (PetscInt j = 0; j < k; j++) {
      cbuf[nc]   = p->ndof + j;
      vbuf[nc++] = s * p->V[i + j * p->nloc];
    }
    PetscCall(MatSetValues(K, 1, &row, nc, cbuf, vbuf, INSERT_VALUES));
    for (PetscInt j = 0; j < k; j++) {
      PetscInt    brow = p->ndof + j;
      PetscScalar v    = s * p->V[i + j * p->nloc];
      PetscCall(MatSetValues(K, 1, &brow, 1, &row, &v, INSERT_VALUES));
    }
  }
  if (rank == size - 1)
    for (PetscInt j = 0; j < k; j++) PetscCall(MatSetValue(K, p->ndof + j, p->ndof + j, 0.0, INSERT_VALUES));
  PetscCall(PetscFree2(cbuf, vbuf));
  PetscCall(MatAssemblyBegin(K, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(K, MAT_FINAL_ASSEMBLY));
  PetscCall(MatSetOption(K, MAT_SYMMETRIC, PETSC_TRUE));

  PetscCall(HMProjBorderedMass_Private(p, nl, n, Bout));
  *Kout = K;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* MUMPS sizes its numerical workspace from the analysis estimate plus ICNTL(14) percent. Delayed pivots of the
   indefinite bordered matrix (more of them on more ranks) can outgrow it: INFO(1) = -8 / -9 (-11, -17 for the
   parallel buffers). Then enlarge ICNTL(14) and factor again; p->icntl14 remembers what worked so that later
   factorisations of the same pattern (the eigensolver's) start there. */
#define HM_MUMPS_MAX_RETRY 6

static PetscBool HMMumpsWorkspaceError(PetscInt infog1)
{
  return (PetscBool)(infog1 == -8 || infog1 == -9 || infog1 == -11 || infog1 == -17);
}

PetscErrorCode HMProjMumpsPrepare(HMProj *p, Mat F)
{
  PetscFunctionBegin;
  /* ICNTL(13)=1 keeps the root node off ScaLAPACK so the pivot signs (inertia) are exact in parallel;
     ICNTL(24)=1 turns exact singularity (sigma on an eigenvalue) into counted null pivots instead of a failure. */
  PetscCall(MatMumpsSetIcntl(F, 13, 1));
  PetscCall(MatMumpsSetIcntl(F, 24, 1));
  if (p->icntl14 >= 0) PetscCall(MatMumpsSetIcntl(F, 14, p->icntl14));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjMumpsCheck(HMProj *p, Mat F, PetscBool *retry)
{
  PetscInt infog1, infog2, i14;

  PetscFunctionBegin;
  *retry = PETSC_FALSE;
  PetscCall(MatMumpsGetInfog(F, 1, &infog1));
  if (infog1 >= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(MatMumpsGetInfog(F, 2, &infog2));
  PetscCall(MatMumpsGetIcntl(F, 14, &i14));
  PetscCheck(HMMumpsWorkspaceError(infog1), p->comm, PETSC_ERR_LIB, "MUMPS factorisation of the bordered Hessian failed: INFOG(1)=%" PetscInt_FMT ", INFOG(2)=%" PetscInt_FMT, infog1, infog2);
  PetscCheck(p->nretry < HM_MUMPS_MAX_RETRY && i14 < 100000, p->comm, PETSC_ERR_MEM, "MUMPS workspace still too small after %" PetscInt_FMT " enlargements (INFOG(1)=%" PetscInt_FMT ", ICNTL(14)=%" PetscInt_FMT "); raise -mat_mumps_icntl_14 or use -modes_solver iterative", p->nretry, infog1, i14);
  p->icntl14 = PetscMax(2 * i14, PetscMax(p->icntl14, 40));
  p->nretry++;
  PetscCall(PetscInfo(F, "MUMPS INFOG(1)=%" PetscInt_FMT " (workspace): factoring again with ICNTL(14)=%" PetscInt_FMT "\n", infog1, p->icntl14));
  *retry = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProjFactorShift(HMProj *p, Mat K, Mat B, double sigma, HMShiftFactor *f, PetscInt *count)
{
  Mat       F;
  PetscInt  nneg, nzero, npos;
  PetscBool retry = PETSC_TRUE;

  PetscFunctionBegin;
  /* the same pattern at every shift: MUMPS analyses it once, later shifts are numerical factorisations only */
  if (!f->T) PetscCall(MatDuplicate(K, MAT_COPY_VALUES, &f->T));
  else PetscCall(MatCopy(K, f->T, SAME_NONZERO_PATTERN));
  PetscCall(MatAXPY(f->T, -sigma, B, SUBSET_NONZERO_PATTERN));
  while (retry) {
    if (!f->pc) {
      PetscCall(PCCreate(p->comm, &f->pc));
      PetscCall(PCSetOperators(f->pc, f->T, f->T));
      PetscCall(PCSetType(f->pc, PCCHOLESKY));
      PetscCall(PCFactorSetMatSolverType(f->pc, MATSOLVERMUMPS));
      PetscCall(PCFactorSetUpMatSolverType(f->pc));
      PetscCall(PCFactorGetMatrix(f->pc, &F));
      PetscCall(HMProjMumpsPrepare(p, F));
    }
    PetscCall(PCSetUp(f->pc));
    PetscCall(PCFactorGetMatrix(f->pc, &F));
    PetscCall(HMProjMumpsCheck(p, F, &retry));
    if (retry) PetscCall(PCDestroy(&f->pc)); /* a new analysis with the larger workspace */
  }
  PetscCall(MatGetInertia(F, &nneg, &nzero, &npos));
  f->sigma = sigma;
  *count   = nneg - p->k;
  PetscCall(PetscInfo(K, "inertia at %g: %" PetscInt_FMT " negative, %" PetscInt_FMT " zero, %" PetscInt_FMT " positive\n", sigma, nneg, nzero, npos));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMShiftFactorDestroy(HMShiftFactor *f)
{
  PetscFunctionBegin;
  PetscCall(PCDestroy(&f->pc));
  PetscCall(MatDestroy(&f->T));
  PetscFunctionReturn(PETSC_SUCCESS);
}

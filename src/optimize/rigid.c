/* Rigid-body directions of a set of positions and the projected operator P B P that every step works with. */
#include "optimize/optimizeimpl.h"

/* all local entries but the cell's (HMOptimizerSetCell) on the last rank */
PetscErrorCode HMOptimizerLocalAtomEntries_Private(HMOptimizer o, Vec v, PetscInt *n)
{
  PetscMPIInt rank, size;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(o->comm, &rank));
  PetscCallMPI(MPI_Comm_size(o->comm, &size));
  PetscCall(VecGetLocalSize(v, n));
  if (rank == size - 1) *n -= o->ncell;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Translations, then rotations about the centroid; modified Gram-Schmidt twice, dropping directions that are
   (nearly) dependent, so a linear molecule gets 5 and a single atom 3. Over the atoms only: the cell's entries
   (HMOptimizerSetCell) are zero in every direction. */
PetscErrorCode HMOptimizerRigidBasis_Private(HMOptimizer o, Vec x)
{
  PetscInt           n, nat, ncand;
  const PetscScalar *xa;
  double             c[3] = {0, 0, 0}, cs[3], natg;
  Vec                cand[6];

  PetscFunctionBegin;
  for (PetscInt k = 0; k < o->nrb; k++) PetscCall(VecDestroy(&o->rb[k]));
  o->nrb = 0;
  if (o->rigid == HM_OPTIMIZER_RIGID_NONE) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMOptimizerLocalAtomEntries_Private(o, x, &n));
  nat = n / 3;
  PetscCall(VecGetArrayRead(x, &xa));
  for (PetscInt i = 0; i < nat; i++)
    for (int a = 0; a < 3; a++) c[a] += xa[3 * i + a];
  PetscCall(MPIU_Allreduce(c, cs, 3, MPI_DOUBLE, MPI_SUM, o->comm));
  {
    PetscInt N;
    PetscCall(VecGetSize(x, &N));
    natg = (double)((N - o->ncell) / 3);
  }
  for (int a = 0; a < 3; a++) c[a] = cs[a] / natg;
  ncand = o->rigid == HM_OPTIMIZER_RIGID_ALL ? 6 : 3;
  for (PetscInt k = 0; k < ncand; k++) {
    PetscScalar *v;
    PetscCall(VecDuplicate(x, &cand[k]));
    PetscCall(VecSet(cand[k], 0.0));
    PetscCall(VecGetArray(cand[k], &v));
    for (PetscInt i = 0; i < nat; i++) {
      double r[3] = {xa[3 * i] - c[0], xa[3 * i + 1] - c[1], xa[3 * i + 2] - c[2]};
      if (k < 3) {
        for (int a = 0; a < 3; a++) v[3 * i + a] = (a == k);
      } else { /* e_(k-3) x r */
        int    ax    = (int)k - 3;
        double e[3]  = {ax == 0, ax == 1, ax == 2};
        v[3 * i + 0] = e[1] * r[2] - e[2] * r[1];
        v[3 * i + 1] = e[2] * r[0] - e[0] * r[2];
        v[3 * i + 2] = e[0] * r[1] - e[1] * r[0];
      }
    }
    PetscCall(VecRestoreArray(cand[k], &v));
  }
  PetscCall(VecRestoreArrayRead(x, &xa));
  for (PetscInt k = 0; k < ncand; k++) {
    double nrm0, nrm;
    PetscCall(VecNorm(cand[k], NORM_2, &nrm0));
    for (int pass = 0; pass < 2; pass++)
      for (PetscInt j = 0; j < o->nrb; j++) {
        PetscScalar d;
        PetscCall(VecDot(cand[k], o->rb[j], &d));
        PetscCall(VecAXPY(cand[k], -d, o->rb[j]));
      }
    PetscCall(VecNorm(cand[k], NORM_2, &nrm));
    if (nrm0 > 0 && nrm > 1e-6 * nrm0) {
      PetscCall(VecScale(cand[k], 1.0 / nrm));
      o->rb[o->nrb++] = cand[k];
    } else PetscCall(VecDestroy(&cand[k]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* v <- P v (and minus the followed mode when proj_mode is set) */
PetscErrorCode HMOptimizerProject_Private(HMOptimizer o, Vec v)
{
  PetscFunctionBegin;
  for (PetscInt j = 0; j < o->nrb; j++) {
    PetscScalar d;
    PetscCall(VecDot(v, o->rb[j], &d));
    PetscCall(VecAXPY(v, -d, o->rb[j]));
  }
  if (o->proj_mode && o->mode) {
    PetscScalar d;
    PetscCall(VecDot(v, o->mode, &d));
    PetscCall(VecAXPY(v, -d, o->mode));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Steihaug-Toint CG on the shell operator: the step of the quadratic model within |s| <= R. */
PetscErrorCode HMOptimizerTRStep_Private(HMOptimizer o, Vec rhs, double R, Vec s)
{
  PetscFunctionBegin;
  PetscCall(KSPCGSetRadius(o->ksp, R));
  PetscCall(KSPSolve(o->ksp, rhs, s));
  PetscCall(HMOptimizerProject_Private(o, s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

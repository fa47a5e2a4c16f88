/* Storage of the computed modes (eigenvalues, wavenumbers, residuals, vectors), filled by every solver. */
#include "eigenimpl.h"

/* Room for n modes with the projector's row layout; what was stored before is freed. */
PetscErrorCode HMModesAllocate_Private(HMModes m, HMProj *p, PetscInt n)
{
  PetscFunctionBegin;
  PetscCall(PetscFree3(m->lambda, m->cm1, m->resid));
  PetscCall(MatDestroy(&m->X));
  m->n = n;
  PetscCall(PetscCalloc3(n + 1, &m->lambda, n + 1, &m->cm1, n + 1, &m->resid));
  PetscCall(MatCreateDense(p->comm, p->nloc, PETSC_DECIDE, p->ndof, n, NULL, &m->X));
  PetscCall(MatAssemblyBegin(m->X, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(m->X, MAT_FINAL_ASSEMBLY));
  PetscFunctionReturn(PETSC_SUCCESS);
}

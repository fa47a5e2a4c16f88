/* Tabulated HIP edge kernel: the folded kernel with the hidden radial layers read from a table (hessian/radtable.h). */
#include "hessian/hessianimpl.h"

/* Every rank reads the same options: the check is collective. */
static PetscErrorCode CheckTolerance(HMHessian h)
{
  PetscFunctionBegin;
  PetscCheck(PetscIsNormalReal(h->table_tol) && h->table_tol >= 1e-13, h->model->comm, PETSC_ERR_USER_INPUT, "-hessian_table_tol %g: expected a number >= 1e-13 (below that the round-off of the exact radial network dominates)", h->table_tol);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* -hessian_table_tol is read by HMHessianSetFromOptions (listed in -help whatever the kernel); a bad
   value is refused as soon as the options are read, before any work. */
static PetscErrorCode SetFromOptions_Tabulated(HMHessian h, PetscOptionItems *PetscOptionsObject)
{
  PetscFunctionBegin;
  (void)PetscOptionsObject;
  PetscCall(CheckTolerance(h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Prepare_Tabulated(HMHessian h)
{
  PetscFunctionBegin;
  PetscCall(CheckTolerance(h));
  PetscCall(HMHessianFoldedPrepare(h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCreate_Tabulated(HMHessian h)
{
  PetscFunctionBegin;
  PetscCall(HMHessianFoldedSetUp(h, PETSC_TRUE));
  h->ops->setfromoptions = SetFromOptions_Tabulated;
  h->ops->prepare        = Prepare_Tabulated;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* HMHessian: the object, its kernel registry and options, and the checked, timed calls into the edge kernel. */
#include "hessian/hessianimpl.h"
#include <hipmace/log.h>
#include "sys/sysimpl.h"

static HMRegistry HMHessianKernels; /* the edge kernels by name, in registration order */

/* The built-in kernels, one line each (HMHessianRegister() adds others). */
static const HMRegistryEntry HMHessianBuiltins[] = {
    {HMHESSIANDIRECT,    (PetscVoidFunction)HMHessianCreate_Direct   },
    {HMHESSIANFOLDED,    (PetscVoidFunction)HMHessianCreate_Folded   },
    {HMHESSIANTABULATED, (PetscVoidFunction)HMHessianCreate_Tabulated},
};
#define HMHessianRegisterAll() HMRegistryBegin(&HMHessianKernels, PETSC_STATIC_ARRAY_LENGTH(HMHessianBuiltins), HMHessianBuiltins)

PetscErrorCode HMHessianRegister(const char name[], PetscErrorCode (*create)(HMHessian))
{
  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  PetscCall(HMRegistryAdd(&HMHessianKernels, name, create));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetKernelTypes(PetscInt *n, const char *const **names)
{
  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  if (n) *n = HMHessianKernels.n;
  if (names) *names = (const char *const *)HMHessianKernels.names;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCreate(HMEval ev, HMHessian *hp)
{
  HMHessian h;

  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  PetscCall(PetscNew(&h));
  h->ev        = ev;
  h->prune     = PETSC_TRUE;
  h->table_tol = 1e-10;
  PetscCall(HMEvalGetModel(ev, &h->model));
  PetscCall(PetscStrncpy(h->mattype, MATBAIJ, sizeof(h->mattype)));
  PetscCall(HMHessianSetType(h, HMHESSIANFOLDED));
  *hp = h;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode KernelDestroy(HMHessian h)
{
  PetscFunctionBegin;
  if (h->ops->destroy) PetscCall((*h->ops->destroy)(h));
  PetscCall(PetscMemzero(h->ops, sizeof(struct _HMHessianKernelOps)));
  h->data  = NULL;
  h->setup = PETSC_FALSE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianDestroy(HMHessian *hp)
{
  HMHessian h = *hp;
  PetscFunctionBegin;
  if (!h) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(KernelDestroy(h));
  PetscCall(PetscFree(h->type_name));
  PetscCall(PetscFree(h->prefix));
  PetscCall(PetscFree(h));
  *hp = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianSetType(HMHessian h, HMHessianKernelType type)
{
  PetscErrorCode (*create)(HMHessian);

  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  PetscCall(HMRegistrySwitch(&HMHessianKernels, h->model->comm, "-hessian_kernel", &h->type_name, type, &create));
  if (!create) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(KernelDestroy(h));
  PetscCall((*create)(h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMHessian, Type, HMHessianKernelType, type_name)

PetscErrorCode HMHessianSetPrune(HMHessian h, PetscBool prune)
{
  double rhess = 0;
  PetscFunctionBegin;
  if (!prune) PetscCall(HMModelGetCutoffs(h->model, NULL, &rhess, NULL));
  /* 0 restores the default, the effective cutoff */
  PetscCall(HMEvalSetHessianCutoff(h->ev, rhess));
  h->prune = prune;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMHessian, Prune, PetscBool, prune)

HM_ACCESSOR_SET(HMHessian, TableTolerance, double, table_tol)

HM_ACCESSOR_GET(HMHessian, TableTolerance, double, table_tol)

PetscErrorCode HMHessianSetMatType(HMHessian h, MatType type)
{
  const char *ok[]  = {MATBAIJ, MATSBAIJ, MATSEQBAIJ, MATMPIBAIJ, MATSEQSBAIJ, MATMPISBAIJ};
  PetscBool   match = PETSC_FALSE;
  PetscFunctionBegin;
  for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]) && !match; k++) PetscCall(PetscStrcmp(type, ok[k], &match));
  PetscCheck(match, h->model->comm, PETSC_ERR_USER_INPUT, "-hessian_type %s: expected baij or sbaij", type);
  PetscCall(PetscStrncpy(h->mattype, type, sizeof(h->mattype)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMHessian, MatType, MatType, mattype)

HM_ACCESSOR_PREFIX(HMHessian)

PetscErrorCode HMHessianSetFromOptions(HMHessian h)
{
  char      kernel[64], mtype[64];
  PetscBool set, prune = h->prune;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(kernel, h->type_name, sizeof(kernel)));
  PetscCall(PetscStrncpy(mtype, h->mattype, sizeof(mtype)));
  PetscOptionsBegin(h->model->comm, h->prefix, "HIP-MACE Hessian options", "HMHessian");
  PetscCall(PetscOptionsFList("-hessian_kernel", "HIP edge kernel (folded: exact to round-off; tabulated: radial features interpolated)", "HMHessianSetType", HMHessianKernels.list, kernel, kernel, sizeof(kernel), &set));
  if (set) PetscCall(HMHessianSetType(h, kernel));
  PetscCall(PetscOptionsBool("-hessian_prune", "leave out Hessian edges beyond the effective cutoff, which are exactly zero (false: build them up to hessian_r_max)", "HMHessianSetPrune", prune, &prune, &set));
  if (set) PetscCall(HMHessianSetPrune(h, prune));
  PetscCall(PetscOptionsString("-hessian_type", "storage of the Hessian: baij, or sbaij (upper triangle)", "HMHessianSetMatType", mtype, mtype, sizeof(mtype), &set));
  if (set) PetscCall(HMHessianSetMatType(h, mtype));
  PetscCall(PetscOptionsReal("-hessian_table_tol", "tabulated kernel: bound on |z_table - z| per radial feature (>= 1e-13)", "HMHessianSetTableTolerance", h->table_tol, &h->table_tol, NULL));
  if (h->ops->setfromoptions) PetscCall((*h->ops->setfromoptions)(h, PetscOptionsObject));
  PetscOptionsEnd();
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianSetUp(HMHessian h)
{
  PetscFunctionBegin;
  if (h->setup) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMEvalForward(h->ev));
  PetscCall((*h->ops->prepare)(h));
  h->setup = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianEdgeBlocks(HMHessian h, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[])
{
  double tstart;
  PetscFunctionBegin;
  PetscCall(HMHessianSetUp(h));
  PetscCall(PetscLogEventBegin(HMLog.edge_kernel, 0, 0, 0, 0));
  tstart = MPI_Wtime();
  PetscCall((*h->ops->edgeblocks)(h, ne, sender, vec, e9, M));
  h->edge_seconds += MPI_Wtime() - tstart;
  PetscCall(PetscLogEventEnd(HMLog.edge_kernel, 0, 0, 0, 0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianEdgeBlockPairs(HMHessian h, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[])
{
  double tstart;
  PetscFunctionBegin;
  PetscCall(HMHessianSetUp(h));
  PetscCall(PetscLogEventBegin(HMLog.edge_kernel, 0, 0, 0, 0));
  tstart = MPI_Wtime();
  PetscCall((*h->ops->pairs)(h, np, s1, s2, v, M12, M21));
  h->edge_seconds += MPI_Wtime() - tstart;
  PetscCall(PetscLogEventEnd(HMLog.edge_kernel, 0, 0, 0, 0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetKernelStats(HMHessian h, const char **name, PetscInt64 *evals, double *seconds, double *flops)
{
  PetscFunctionBegin;
  if (name) *name = h->type_name;
  if (evals) *evals = h->edge_evals;
  if (seconds) *seconds = h->edge_seconds;
  if (flops) *flops = h->edge_flops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetHaloWidth(HMHessian h, PetscInt *width)
{
  PetscFunctionBegin;
  /* before set-up: every used layer's hessian_interaction.linear_up features (the direct kernel's) */
  if (h->setup) PetscCall((*h->ops->halowidth)(h, width));
  else *width = h->model->hnl * h->model->dimH;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianView(HMHessian h, PetscViewer viewer)
{
  double    hcut, per_edge = 0, per_pair = 0;
  PetscInt  width;
  PetscBool iascii;

  PetscFunctionBegin;
  if (!viewer) viewer = PETSC_VIEWER_STDOUT_(h->model->comm);
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &iascii));
  if (!iascii) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMEvalGetHessianCutoff(h->ev, &hcut));
  PetscCall(HMHessianGetHaloWidth(h, &width));
  if (h->setup) PetscCall((*h->ops->flops)(h, &per_edge, &per_pair));
  PetscCall(PetscViewerASCIIPrintf(viewer, "HMHessian: kernel %s, storage %s, Hessian graph cutoff %g A (%s)\n", h->type_name, h->mattype, hcut, h->prune ? "pruned" : "hessian_r_max"));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  halo width %" PetscInt_FMT " doubles per ghost; table tolerance %g\n", width, h->table_tol));
  if (h->setup) PetscCall(PetscViewerASCIIPrintf(viewer, "  flops per directed edge %.0f, per pair %.0f\n", per_edge, per_pair));
  PetscFunctionReturn(PETSC_SUCCESS);
}

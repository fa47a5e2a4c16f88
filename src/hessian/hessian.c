/* HMHessian: the object, its kernel registry and options, and the checked, timed calls into the edge kernel. */
#include "hessian/hessianimpl.h"
#include <hipmace/log.h>

static PetscFunctionList HMHessianList       = NULL;
static PetscBool         HMHessianRegistered = PETSC_FALSE;
#define HM_MAX_KERNELS 32
static char    *HMHessianNames[HM_MAX_KERNELS]; /* registration order */
static PetscInt HMHessianNumNames = 0;

static PetscErrorCode HMHessianFinalizePackage(void)
{
  PetscFunctionBegin;
  PetscCall(PetscFunctionListDestroy(&HMHessianList));
  for (PetscInt k = 0; k < HMHessianNumNames; k++) PetscCall(PetscFree(HMHessianNames[k]));
  HMHessianNumNames   = 0;
  HMHessianRegistered = PETSC_FALSE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The built-in kernels: one line each. */
static PetscErrorCode HMHessianRegisterAll(void)
{
  PetscFunctionBegin;
  if (HMHessianRegistered) PetscFunctionReturn(PETSC_SUCCESS);
  HMHessianRegistered = PETSC_TRUE;
  PetscCall(PetscRegisterFinalize(HMHessianFinalizePackage));
  PetscCall(HMHessianRegister(HMHESSIANDIRECT, HMHessianCreate_Direct));
  PetscCall(HMHessianRegister(HMHESSIANFOLDED, HMHessianCreate_Folded));
  PetscCall(HMHessianRegister(HMHESSIANTABULATED, HMHessianCreate_Tabulated));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianRegister(const char name[], PetscErrorCode (*create)(HMHessian))
{
  PetscBool known = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  PetscCall(PetscFunctionListAdd(&HMHessianList, name, create));
  for (PetscInt k = 0; k < HMHessianNumNames && !known; k++) PetscCall(PetscStrcmp(HMHessianNames[k], name, &known));
  if (!known) {
    PetscCheck(HMHessianNumNames < HM_MAX_KERNELS, PETSC_COMM_SELF, PETSC_ERR_SUP, "more than %d edge kernels registered", HM_MAX_KERNELS);
    PetscCall(PetscStrallocpy(name, &HMHessianNames[HMHessianNumNames++]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetKernelTypes(PetscInt *n, const char *const **names)
{
  PetscFunctionBegin;
  PetscCall(HMHessianRegisterAll());
  if (n) *n = HMHessianNumNames;
  if (names) *names = (const char *const *)HMHessianNames;
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
  PetscBool same;

  PetscFunctionBegin;
  PetscCall(PetscStrcmp(h->type_name, type, &same));
  if (same) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFunctionListFind(HMHessianList, type, &create));
  PetscCheck(create, h->model->comm, PETSC_ERR_USER_INPUT, "-hessian_kernel %s: unknown edge kernel (registered: direct, folded, tabulated and HMHessianRegister's)", type);
  PetscCall(KernelDestroy(h));
  PetscCall(PetscFree(h->type_name));
  PetscCall(PetscStrallocpy(type, &h->type_name));
  PetscCall((*create)(h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetType(HMHessian h, HMHessianKernelType *type)
{
  PetscFunctionBegin;
  *type = h->type_name;
  PetscFunctionReturn(PETSC_SUCCESS);
}

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

PetscErrorCode HMHessianGetPrune(HMHessian h, PetscBool *prune)
{
  PetscFunctionBegin;
  *prune = h->prune;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianSetTableTolerance(HMHessian h, double tol)
{
  PetscFunctionBegin;
  h->table_tol = tol;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianGetTableTolerance(HMHessian h, double *tol)
{
  PetscFunctionBegin;
  *tol = h->table_tol;
  PetscFunctionReturn(PETSC_SUCCESS);
}

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

PetscErrorCode HMHessianGetMatType(HMHessian h, MatType *type)
{
  PetscFunctionBegin;
  *type = h->mattype;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianSetOptionsPrefix(HMHessian h, const char prefix[])
{
  PetscFunctionBegin;
  PetscCall(PetscFree(h->prefix));
  if (prefix) PetscCall(PetscStrallocpy(prefix, &h->prefix));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianSetFromOptions(HMHessian h)
{
  char      kernel[64], mtype[64];
  PetscBool set, prune = h->prune;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(kernel, h->type_name, sizeof(kernel)));
  PetscCall(PetscStrncpy(mtype, h->mattype, sizeof(mtype)));
  PetscOptionsBegin(h->model->comm, h->prefix, "HIP-MACE Hessian options", "HMHessian");
  PetscCall(PetscOptionsFList("-hessian_kernel", "HIP edge kernel (folded: exact to round-off; tabulated: radial features interpolated)", "HMHessianSetType", HMHessianList, kernel, kernel, sizeof(kernel), &set));
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

/* HMOptimizer: the object, its method registry and options, and the trust-region loop shared by min and ts. */
#include "optimize/optimizeimpl.h"
#include <hipmace/sys.h>
#include "sys/sysimpl.h"

const char *const HMOptimizerHessians[] = {"predicted", "none", "HMOptimizerHessian", "HM_OPTIMIZER_HESSIAN_", NULL};
const char *const HMOptimizerRigids[]   = {"none", "translations", "all", "HMOptimizerRigid", "HM_OPTIMIZER_RIGID_", NULL};

static HMRegistry HMOptimizers; /* the methods by name */

static const HMRegistryEntry HMOptimizerBuiltins[] = {
    {HMOPTIMIZERMIN, (PetscVoidFunction)HMOptimizerCreate_Builtin},
    {HMOPTIMIZERTS,  (PetscVoidFunction)HMOptimizerCreate_Builtin},
};
#define HMOptimizerRegisterAll() HMRegistryBegin(&HMOptimizers, PETSC_STATIC_ARRAY_LENGTH(HMOptimizerBuiltins), HMOptimizerBuiltins)

PetscErrorCode HMOptimizerRegister(const char name[], PetscErrorCode (*create)(HMOptimizer))
{
  PetscFunctionBegin;
  PetscCall(HMOptimizerRegisterAll());
  PetscCall(HMRegistryAdd(&HMOptimizers, name, create));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerCreate(MPI_Comm comm, HMOptimizer *op)
{
  HMOptimizer o;

  PetscFunctionBegin;
  PetscCall(HMSlepcInitialize_Private());
  PetscCall(HMOptimizerRegisterAll());
  PetscCall(PetscNew(&o));
  o->comm       = comm;
  o->fmax_tol   = 1e-3;
  o->max_steps  = 200;
  o->hess_every = 1;
  o->min_curv   = 0.1;
  o->check_tol  = 0.01;
  o->hessian    = HM_OPTIMIZER_HESSIAN_PREDICTED;
  o->rigid      = HM_OPTIMIZER_RIGID_NONE;
  /* unset: min at fixed cell switches both by the Hessians' secant error (SecantError): they converged the most test
     molecules of both demo models and slow down an exact Hessian (docs/OPTIMIZE.md); ts: neither helped, both off */
  o->keep_history_opt  = PETSC_BOOL3_UNKNOWN;
  o->scale_hessian_opt = PETSC_BOOL3_UNKNOWN;
  PetscCall(HMOptimizerSetType(o, HMOPTIMIZERMIN));
  *op = o;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ResetState(HMOptimizer o)
{
  PetscFunctionBegin;
  PetscCall(MatDestroy(&o->H));
  PetscCall(MatDestroy(&o->B));
  PetscCall(MatDestroy(&o->Pop));
  for (PetscInt k = 0; k < o->nrb; k++) PetscCall(VecDestroy(&o->rb[k]));
  o->nrb = 0;
  PetscCall(VecDestroy(&o->mode));
  PetscCall(VecDestroy(&o->w1));
  PetscCall(VecDestroy(&o->w2));
  PetscCall(KSPDestroy(&o->ksp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerDestroy(HMOptimizer *op)
{
  HMOptimizer o = *op;

  PetscFunctionBegin;
  if (!o) PetscFunctionReturn(PETSC_SUCCESS);
  if (o->ops.destroy) PetscCall((*o->ops.destroy)(o));
  PetscCall(ResetState(o));
  PetscCall(PetscFree(o->hE));
  PetscCall(PetscFree(o->hF));
  PetscCall(PetscFree(o->hS));
  PetscCall(PetscFree(o->prefix));
  PetscCall(PetscFree(o->type_name));
  PetscCall(PetscFree(o));
  *op = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetType(HMOptimizer o, HMOptimizerType type)
{
  PetscErrorCode (*create)(HMOptimizer);

  PetscFunctionBegin;
  PetscCall(HMOptimizerRegisterAll());
  PetscCall(HMRegistrySwitch(&HMOptimizers, o->comm, "-optimize", &o->type_name, type, &create));
  if (!create) PetscFunctionReturn(PETSC_SUCCESS);
  if (o->ops.destroy) PetscCall((*o->ops.destroy)(o));
  PetscCall(PetscMemzero(&o->ops, sizeof(o->ops)));
  o->data = NULL;
  PetscCall((*create)(o));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMOptimizer, Type, HMOptimizerType, type_name)

PetscErrorCode HMOptimizerSetObjective(HMOptimizer o, HMOptimizerObjectiveFn f, void *ctx)
{
  PetscFunctionBegin;
  o->obj    = f;
  o->objctx = ctx;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetMonitor(HMOptimizer o, HMOptimizerMonitorFn f, void *ctx)
{
  PetscFunctionBegin;
  o->mon    = f;
  o->monctx = ctx;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetTolerances(HMOptimizer o, double fmax, PetscInt max_steps)
{
  PetscFunctionBegin;
  PetscCheck(fmax > 0, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_fmax %g: must be positive (eV/A)", fmax);
  PetscCheck(max_steps >= 0, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_max_steps %" PetscInt_FMT ": must be >= 0", max_steps);
  o->fmax_tol  = fmax;
  o->max_steps = max_steps;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetHessian(HMOptimizer o, HMOptimizerHessian h, PetscInt every)
{
  PetscFunctionBegin;
  PetscCheck(every >= 1, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_hessian_every %" PetscInt_FMT ": must be >= 1", every);
  o->hessian    = h;
  o->hess_every = every;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET(HMOptimizer, Rigid, HMOptimizerRigid, rigid)

PetscErrorCode HMOptimizerSetTrustRadius(HMOptimizer o, double r0, double rmax)
{
  PetscFunctionBegin;
  PetscCheck(r0 >= 0 && rmax >= 0, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_trust_radius %g / -optimize_trust_max %g: must be >= 0 (0 = default)", r0, rmax);
  o->radius0    = r0;
  o->radius_max = rmax;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_PREFIX(HMOptimizer)

PetscErrorCode HMOptimizerSetCell(HMOptimizer o, PetscInt ncell, double pressure, HMOptimizerCellFn fn, void *ctx)
{
  PetscFunctionBegin;
  PetscCheck(ncell >= 0 && ncell % 3 == 0 && (ncell == 0 || fn), o->comm, PETSC_ERR_ARG_OUTOFRANGE, "HMOptimizerSetCell: %" PetscInt_FMT " cell coordinates: need a multiple of 3 and a function", ncell);
  o->ncell    = ncell;
  o->pressure = pressure;
  o->cellfn   = fn;
  o->cellctx  = ctx;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetStressTolerance(HMOptimizer o, double smax_gpa)
{
  PetscFunctionBegin;
  o->smax_gpa = smax_gpa;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSetFromOptions(HMOptimizer o)
{
  char      type[64];
  PetscBool set;
  double    fmax = o->fmax_tol, r0 = o->radius0, rmax = o->radius_max;
  PetscInt  steps = o->max_steps, every = o->hess_every;
  PetscEnum h = (PetscEnum)o->hessian, r = (PetscEnum)o->rigid;

  PetscFunctionBegin;
  PetscCall(HMOptimizerRegisterAll());
  PetscOptionsBegin(o->comm, o->prefix, "Geometry optimisation and transition-state search", "HMOptimizer");
  PetscCall(PetscOptionsFList("-optimize", "Method: min (minimum) or ts (first-order saddle)", "HMOptimizerSetType", HMOptimizers.list, o->type_name, type, sizeof(type), &set));
  if (set) PetscCall(HMOptimizerSetType(o, type));
  PetscCall(PetscOptionsReal("-optimize_fmax", "Converged when the largest atomic force is at most this (eV/A)", "HMOptimizerSetTolerances", fmax, &fmax, NULL));
  PetscCall(PetscOptionsInt("-optimize_max_steps", "Most iterations (objective evaluations)", "HMOptimizerSetTolerances", steps, &steps, NULL));
  PetscCall(HMOptimizerSetTolerances(o, fmax, steps));
  PetscCall(PetscOptionsEnum("-optimize_hessian", "Use the predicted Hessian, or quasi-Newton from a scaled identity", "HMOptimizerSetHessian", HMOptimizerHessians, h, &h, NULL));
  PetscCall(PetscOptionsInt("-optimize_hessian_every", "Recompute the predicted Hessian every K accepted steps (quasi-Newton in between)", "HMOptimizerSetHessian", every, &every, NULL));
  PetscCall(HMOptimizerSetHessian(o, (HMOptimizerHessian)h, every));
  PetscCall(PetscOptionsEnum("-optimize_rigid", "Rigid-body directions projected out of the steps", "HMOptimizerSetRigid", HMOptimizerRigids, r, &r, NULL));
  o->rigid = (HMOptimizerRigid)r;
  PetscCall(PetscOptionsReal("-optimize_trust_radius", "Initial trust radius, A (2-norm of the step; 0 = 0.3)", "HMOptimizerSetTrustRadius", r0, &r0, NULL));
  PetscCall(PetscOptionsReal("-optimize_trust_max", "Largest trust radius, A (0 = max(1, 0.1 sqrt(atoms)))", "HMOptimizerSetTrustRadius", rmax, &rmax, NULL));
  PetscCall(HMOptimizerSetTrustRadius(o, r0, rmax));
  {
    PetscBool sh = (PetscBool)(o->scale_hessian_opt == PETSC_BOOL3_TRUE), kh = (PetscBool)(o->keep_history_opt == PETSC_BOOL3_TRUE), set;
    PetscCall(PetscOptionsBool("-optimize_scale_hessian", "Scale each new predicted Hessian by a factor learnt from the curvature the steps meet (moved by sqrt(s.y / s.H s) per step, clipped to [0.1, 10]): corrects a Hessian whose scale is off (default: min at fixed cell with neither option given switches both on while the Hessians mispredict the steps, docs/OPTIMIZE.md; else false)", "", sh, &sh, &set));
    if (set) o->scale_hessian_opt = PetscBoolToBool3(sh);
    PetscCall(PetscOptionsBool("-optimize_keep_history", "Keep the quasi-Newton corrections when a new Hessian arrives: they correct its error (default: min at fixed cell with neither option given switches both on while the Hessians mispredict the steps, docs/OPTIMIZE.md; else false)", "", kh, &kh, &set));
    if (set) o->keep_history_opt = PetscBoolToBool3(kh);
  }
  PetscCall(PetscOptionsReal("-optimize_smax", "With a variable cell: converged when also the largest |stress_ij + P delta_ij| is at most this (GPa; <= 0: fmax N / V of the start cell)", "HMOptimizerSetStressTolerance", o->smax_gpa, &o->smax_gpa, NULL));
  PetscCall(PetscOptionsReal("-optimize_check_curvature", "At the converged point, the objective's Hessian's eigenvalues below -this (eV/A^2) are checked against the energy's curvature along their vectors (central differences of the gradient); min escapes from a confirmed saddle (0: no check)", "", o->check_tol, &o->check_tol, NULL));
  PetscCall(PetscOptionsReal("-optimize_min_curvature", "min: with negative curvature, the step's model is shifted so that its lowest curvature is this (eV/A^2)", "", o->min_curv, &o->min_curv, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the largest atomic norm over the first n local entries of g */
static PetscErrorCode MaxAtomNorm(Vec g, PetscInt n, double *fmax)
{
  const PetscScalar *ga;
  double             m = 0, mg;
  MPI_Comm           comm;

  PetscFunctionBegin;
  PetscCall(PetscObjectGetComm((PetscObject)g, &comm));
  PetscCheck(n % 3 == 0, comm, PETSC_ERR_ARG_SIZ, "optimiser: %" PetscInt_FMT " local coordinates, not whole atoms (3 per atom)", n);
  PetscCall(VecGetArrayRead(g, &ga));
  for (PetscInt i = 0; i < n; i += 3) m = PetscMax(m, ga[i] * ga[i] + ga[i + 1] * ga[i + 1] + ga[i + 2] * ga[i + 2]);
  PetscCall(VecRestoreArrayRead(g, &ga));
  PetscCall(MPIU_Allreduce(&m, &mg, 1, MPI_DOUBLE, MPI_MAX, comm));
  *fmax = PetscSqrtReal(mg);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerMaxAtomNorm(Vec g, double *fmax)
{
  PetscInt n;

  PetscFunctionBegin;
  PetscCall(VecGetLocalSize(g, &n));
  PetscCall(MaxAtomNorm(g, n, fmax));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* fmax over the atoms and, with a variable cell, the cell's state and stress measure at the point (x, g) */
static PetscErrorCode Measure(HMOptimizer o, Vec x, Vec g)
{
  PetscInt n;

  PetscFunctionBegin;
  PetscCall(HMOptimizerLocalAtomEntries_Private(o, g, &n));
  if (o->ncell) PetscCall((*o->cellfn)(o, x, g, o->cell, o->stress, &o->smax, &o->fmax, o->cellctx));
  else PetscCall(MaxAtomNorm(g, n, &o->fmax));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscBool Converged(HMOptimizer o)
{
  return (PetscBool)(o->fmax <= o->fmax_tol && (!o->ncell || o->smax <= o->smax_tol));
}

static PetscErrorCode ShellMult(Mat A, Vec x, Vec y)
{
  HMOptimizer o;

  PetscFunctionBegin;
  PetscCall(MatShellGetContext(A, &o));
  PetscCall(VecCopy(x, o->w1));
  PetscCall(HMOptimizerProject_Private(o, o->w1));
  if (o->nupd == 0 && o->H) PetscCall(MatMult(o->H, o->w1, y)); /* B == H exactly: skip the LMVM layer */
  else PetscCall(MatMult(o->B, o->w1, y));
  if (o->shift != 0) PetscCall(VecAXPY(y, o->shift, o->w1));
  PetscCall(HMOptimizerProject_Private(o, y));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Record(HMOptimizer o)
{
  PetscFunctionBegin;
  if (o->nh == o->hcap) {
    o->hcap = PetscMax(16, 2 * o->hcap);
    PetscCall(PetscRealloc(sizeof(double) * o->hcap, &o->hE));
    PetscCall(PetscRealloc(sizeof(double) * o->hcap, &o->hF));
    PetscCall(PetscRealloc(sizeof(double) * o->hcap, &o->hS));
  }
  o->hE[o->nh] = o->E;
  o->hF[o->nh] = o->fmax;
  o->hS[o->nh] = o->smax;
  o->nh++;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The curvature the accepted step s met, s.y (y = gn - g), against the current model's, s.H s: the predicted Hessian's
   scale error along s. The factor the next Hessian carries moves by the square root of that ratio (one direction's
   ratio is noisy: the undamped ratio converged fewer test molecules, docs/OPTIMIZE.md), clipped to [0.1, 10]; a step
   with non-positive curvature on either side leaves it. */
static PetscErrorCode SecantScale(HMOptimizer o, Vec s, Vec g, Vec gn)
{
  PetscScalar sy, sg, sHs;

  PetscFunctionBegin;
  PetscCall(VecDot(s, gn, &sy));
  PetscCall(VecDot(s, g, &sg));
  sy -= sg;
  PetscCall(MatMult(o->H, s, o->w1));
  PetscCall(VecDot(s, o->w1, &sHs));
  sHs *= o->hscale / o->hcur; /* the curvature of the Hessian scaled by the factor learnt so far */
  if (sy > 0 && sHs > 0) o->hscale = PetscMin(10.0, PetscMax(0.1, o->hscale * PetscSqrtReal(sy / sHs)));
  PetscCall(PetscInfo(NULL, "secant scale: s.y %.4e, s.H s %.4e, next Hessian x %.4f\n", (double)sy, (double)sHs, o->hscale));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* min's automatic corrections: the error of the Hessians (unscaled) in predicting the gradient change of the step
   from x to x + s, y, by the trapezoid rule between the Hessians at both ends, |P(y - (H(x) + H(x + s)) s / 2)| / |P y|:
   for the Hessian of the energy O(|s|^2) (0.005-0.2 on the model problems' steps, one of 0.6 on the Mueller-Brown
   surface), for a Hessian that disagrees with its energy about its own size (0.8-3.8 on a demo model test molecule). Its running mean (halved per step) below
   HM_OPTIMIZER_TRUST_ERR trusts the Hessian: each new one is taken as it is and the quasi-Newton pairs restart on it
   (Newton, as with -optimize_keep_history false); above, the pairs are kept across Hessians and correct them, and the
   learnt secant factor scales them. Until the first measurement the Hessian is trusted.
   Measured where both ends have a Hessian (every step at -optimize_hessian_every 1). */
static PetscErrorCode SecantError(HMOptimizer o, Vec s, Vec g, Vec gn, Mat Hn)
{
  double ny, nr, err;

  PetscFunctionBegin;
  PetscCall(MatMult(o->H, s, o->w1));
  PetscCall(VecScale(o->w1, 0.5 / o->hcur));
  PetscCall(MatMult(Hn, s, o->w2));
  PetscCall(VecAXPY(o->w1, 0.5, o->w2));
  PetscCall(VecWAXPY(o->w2, -1.0, g, gn));
  PetscCall(HMOptimizerProject_Private(o, o->w2));
  PetscCall(HMOptimizerProject_Private(o, o->w1));
  PetscCall(VecNorm(o->w2, NORM_2, &ny));
  PetscCall(VecAXPY(o->w1, -1.0, o->w2));
  PetscCall(VecNorm(o->w1, NORM_2, &nr));
  if (ny <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  err      = nr / ny;
  o->herr  = o->herr < 0 ? err : 0.5 * o->herr + 0.5 * err;
  o->trust = (PetscBool)(o->herr < HM_OPTIMIZER_TRUST_ERR);
  PetscCall(PetscInfo(NULL, "secant error of the Hessian %.4f, mean %.4f: %s\n", err, o->herr, o->trust ? "trusted" : "corrected"));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A new Hessian at the current point: the quasi-Newton history restarts on top of it. */
static PetscErrorCode TakeHessian(HMOptimizer o, Mat Hn, Vec x, Vec g)
{
  PetscFunctionBegin;
  if (Hn) {
    o->hcur = (o->auto_corr && o->trust) ? 1.0 : o->hscale;
    if (o->hcur != 1.0) PetscCall(MatScale(Hn, o->hcur));
    PetscCall(MatDestroy(&o->H));
    o->H = Hn;
    o->nhess++;
    if (!o->keep_history || (o->auto_corr && o->trust)) { /* a trusted Hessian starts afresh */
      PetscCall(MatLMVMReset(o->B, PETSC_FALSE));
      o->nupd = 0;
    }
    PetscCall(MatLMVMSetJ0(o->B, o->H));
  }
  PetscCall(MatLMVMUpdate(o->B, x, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Setup(HMOptimizer o, Vec x)
{
  PetscInt  n, N;
  PetscBool ts;

  PetscFunctionBegin;
  PetscCall(ResetState(o));
  PetscCall(VecGetLocalSize(x, &n));
  PetscCall(VecGetSize(x, &N));
  PetscCheck(n % 3 == 0, o->comm, PETSC_ERR_ARG_SIZ, "optimiser: %" PetscInt_FMT " local coordinates, not whole atoms (3 per atom)", n);
  PetscCall(PetscStrcmp(o->type_name, HMOPTIMIZERTS, &ts));
  /* automatic at fixed cell (a variable cell's Hessian columns are differences of the gradient: measured with H alone) */
  o->auto_corr     = (PetscBool)(!ts && !o->ncell && o->keep_history_opt == PETSC_BOOL3_UNKNOWN && o->scale_hessian_opt == PETSC_BOOL3_UNKNOWN);
  o->keep_history  = o->auto_corr ? PETSC_TRUE : PetscBool3ToBool(o->keep_history_opt);
  o->scale_hessian = o->auto_corr ? PETSC_TRUE : PetscBool3ToBool(o->scale_hessian_opt);
  o->herr          = -1; /* no step measured yet */
  o->trust         = PETSC_TRUE;
  o->hcur          = 1.0;
  PetscCheck(!ts || !o->ncell, o->comm, PETSC_ERR_SUP, "-optimize_cell true works with -optimize min only: a saddle search (-optimize ts) over the cell is not implemented");
  if (o->ncell) {
    PetscInt na;
    PetscCall(HMOptimizerLocalAtomEntries_Private(o, x, &na));
    PetscCheck(na >= 0 && na % 3 == 0, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "optimiser: the %" PetscInt_FMT " cell coordinates are not the last entries of the last rank", o->ncell);
  }
  PetscCall(VecDuplicate(x, &o->w1));
  PetscCall(VecDuplicate(x, &o->w2));
  PetscCall(KSPInitializePackage()); /* registers the MatLMVM types (MatCreateLMVMSR1 does not) */
  /* BFGS keeps B positive definite (right for a minimum); SR1 can carry the negative curvature of a saddle. Created
     without MatCreateLMVMBFGS/SR1, which set the matrix up with PETSc's history size (5): in PETSc 3.18 a size read
     from the options afterwards (-optimize_mat_lmvm_hist_size) overruns the arrays allocated for 5 */
  PetscCall(MatCreate(o->comm, &o->B));
  PetscCall(MatSetSizes(o->B, n, n, N, N));
  PetscCall(MatSetType(o->B, ts ? MATLMVMSR1 : MATLMVMBFGS));
  /* the scalar J0 scaling (y.y / s.y) of the model problems' tests converges where PETSc's diagonal default stalls */
  if (!ts) PetscCall(MatLMVMSymBroydenSetScaleType(o->B, MAT_LMVM_SYMBROYDEN_SCALE_SCALAR));
  PetscCall(MatSetOptionsPrefix(o->B, o->prefix));
  PetscCall(MatAppendOptionsPrefix(o->B, "optimize_"));
  PetscCall(MatSetFromOptions(o->B));
  PetscCall(MatLMVMAllocate(o->B, x, x));
  PetscCall(MatCreateShell(o->comm, n, n, N, N, o, &o->Pop));
  PetscCall(MatShellSetOperation(o->Pop, MATOP_MULT, (void (*)(void))ShellMult));
  PetscCall(MatSetOption(o->Pop, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(KSPCreate(o->comm, &o->ksp));
  PetscCall(KSPSetOptionsPrefix(o->ksp, o->prefix));
  PetscCall(KSPAppendOptionsPrefix(o->ksp, "optimize_"));
  PetscCall(KSPSetType(o->ksp, KSPSTCG));
  PetscCall(KSPSetOperators(o->ksp, o->Pop, o->Pop));
  {
    PC pc;
    PetscCall(KSPGetPC(o->ksp, &pc));
    PetscCall(PCSetType(pc, PCNONE));
  }
  PetscCall(KSPSetTolerances(o->ksp, 1e-10, 1e-30, PETSC_DEFAULT, PetscMax(100, 2 * N)));
  PetscCall(KSPSetFromOptions(o->ksp));
  o->radius = o->radius0 > 0 ? o->radius0 : 0.3;
  if (o->radius_max <= 0) o->radius_max = PetscMax(1.0, 0.1 * PetscSqrtReal((double)((N - o->ncell) / 3)));
  o->radius    = PetscMin(o->radius, o->radius_max);
  o->converged = PETSC_FALSE;
  o->steps     = 0;
  o->rejected  = 0;
  o->nhess     = 0;
  o->nupd      = 0;
  o->hscale    = 1.0;
  o->nh        = 0;
  o->mode_eig  = 0;
  o->proj_mode = PETSC_FALSE;
  o->shift     = 0;
  o->smax      = 0;
  o->nchk      = 0;
  o->escapes   = 0;
  o->chk_evals = 0;
  o->chk_done  = PETSC_FALSE;
  o->chk_more  = PETSC_FALSE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The stress tolerance once the start cell is known: the user's, or ASE's UnitCellFilter criterion |V stress / N| <= fmax
   (its cell "forces" are the virial over the atom count) as a stress, fmax N / V */
static PetscErrorCode StressTolerance(HMOptimizer o, Vec x)
{
  const double *c = o->cell;
  double        V;
  PetscInt      N;

  PetscFunctionBegin;
  if (!o->ncell) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(VecGetSize(x, &N));
  V = PetscAbsReal(HMMat3Det(c));
  PetscCheck(V > 0, o->comm, PETSC_ERR_ARG_WRONG, "optimiser: the cell has zero volume");
  o->smax_tol = o->smax_gpa > 0 ? o->smax_gpa / HM_EV_A3_GPA : o->fmax_tol * (double)((N - o->ncell) / 3) / V;
  PetscFunctionReturn(PETSC_SUCCESS);
}

typedef struct {
  HMOptimizer o;
  Mat         H;
  Vec         w;
} CheckShell;

static PetscErrorCode CheckMult(Mat A, Vec x, Vec y)
{
  CheckShell *c;

  PetscFunctionBegin;
  PetscCall(MatShellGetContext(A, &c));
  PetscCall(VecCopy(x, c->w));
  PetscCall(HMOptimizerProject_Private(c->o, c->w));
  PetscCall(MatMult(c->H, c->w, y));
  PetscCall(HMOptimizerProject_Private(c->o, y));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The lowest HM_OPTIMIZER_CHECK_MAX eigenpairs of P H P (rigid directions deflated), to an absolute residual of 1e-4
   eV/A^2; the vectors (projected, unit) of those below -tol in v[], their eigenvalues in lam[]. */
static PetscErrorCode NegativePairs(HMOptimizer o, Mat H, Vec x, double tol, PetscInt *n, double lam[], Vec v[], PetscBool *more)
{
  CheckShell c = {o, H, NULL};
  Mat        S;
  EPS        eps;
  PetscInt   nl, N, nconv, nev;

  PetscFunctionBegin;
  *n    = 0;
  *more = PETSC_FALSE;
  PetscCall(VecGetLocalSize(x, &nl));
  PetscCall(VecGetSize(x, &N));
  nev = PetscMin(HM_OPTIMIZER_CHECK_MAX, N - o->nrb);
  if (nev < 1) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(VecDuplicate(x, &c.w));
  PetscCall(MatCreateShell(o->comm, nl, nl, N, N, &c, &S));
  PetscCall(MatShellSetOperation(S, MATOP_MULT, (void (*)(void))CheckMult));
  PetscCall(MatSetOption(S, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(HMOptimizerLowestPairs_Private(o, S, nev, PETSC_TRUE, 1e-4, NULL, PETSC_FALSE, &eps));
  PetscCall(EPSGetConverged(eps, &nconv));
  if (nconv < nev) PetscCall(PetscInfo(NULL, "curvature check: %" PetscInt_FMT " of the lowest %" PetscInt_FMT " eigenpairs converged\n", nconv, nev));
  for (PetscInt k = 0; k < PetscMin(nconv, nev); k++) {
    PetscScalar l, nrm;
    PetscCall(EPSGetEigenvalue(eps, k, &l, NULL));
    if (l >= -tol) break;
    PetscCall(VecDuplicate(x, &v[*n]));
    PetscCall(EPSGetEigenvector(eps, k, v[*n], NULL));
    PetscCall(HMOptimizerProject_Private(o, v[*n]));
    PetscCall(VecNorm(v[*n], NORM_2, &nrm));
    PetscCall(VecScale(v[*n], 1.0 / nrm));
    lam[(*n)++] = l;
  }
  *more = (PetscBool)((*n == nev && nev == HM_OPTIMIZER_CHECK_MAX) || nconv < nev); /* more may lie below -tol */
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&S));
  PetscCall(VecDestroy(&c.w));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* At a converged point (x, g, o->E): the objective's Hessian there, its eigenvalues below -check_tol, and the curvature
   of the energy itself along each of their vectors v, v.(g(x + h v) - g(x - h v)) / 2h. A predicted Hessian can
   disagree with its model's energy: a negative eigenvalue the energy does not share is reported, not acted on. Where
   the energy also curves down (below -check_tol), min is at a saddle of the energy, not a minimum: it steps along the
   most negative such direction, downhill (0.1 A, else 0.025 A), and *escaped says to go on minimising from there. */
static PetscErrorCode CurvatureCheck(HMOptimizer o, Vec x, Vec g, PetscBool *escaped)
{
  Mat       Hc                        = NULL;
  Vec       v[HM_OPTIMIZER_CHECK_MAX] = {NULL}, xt, gt;
  PetscInt  n, worst = -1;
  double    Et, side[HM_OPTIMIZER_CHECK_MAX], h = HM_OPTIMIZER_CHECK_STEP;
  PetscBool mono = o->ops.monotone;

  PetscFunctionBegin;
  *escaped = PETSC_FALSE;
  PetscCall(VecDuplicate(x, &xt));
  PetscCall(VecDuplicate(x, &gt));
  PetscCall((*o->obj)(o, x, PETSC_TRUE, &Et, gt, &Hc, o->objctx));
  o->chk_evals++;
  o->chk_done = PETSC_TRUE;
  o->nchk     = 0;
  if (!Hc) goto done; /* the objective has no Hessian */
  o->nhess++;
  PetscCall(HMOptimizerRigidBasis_Private(o, x));
  PetscCall(NegativePairs(o, Hc, x, o->check_tol, &n, o->chk_lam, v, &o->chk_more));
  o->nchk = n;
  for (PetscInt k = 0; k < n; k++) {
    double      Ep, Em;
    PetscScalar cp, cm;
    Mat         none = NULL;
    PetscCall(VecWAXPY(xt, h, v[k], x));
    PetscCall((*o->obj)(o, xt, PETSC_FALSE, &Ep, gt, &none, o->objctx));
    PetscCall(VecDot(v[k], gt, &cp));
    PetscCall(VecWAXPY(xt, -h, v[k], x));
    PetscCall((*o->obj)(o, xt, PETSC_FALSE, &Em, gt, &none, o->objctx));
    PetscCall(VecDot(v[k], gt, &cm));
    o->chk_evals += 2;
    o->chk_c[k] = (cp - cm) / (2 * h);
    side[k]     = Ep <= Em ? 1.0 : -1.0;
    PetscCall(PetscInfo(NULL, "curvature check: Hessian eigenvalue %.4e, energy curvature %.4e eV/A^2\n", o->chk_lam[k], o->chk_c[k]));
    if (o->chk_c[k] < -o->check_tol && (worst < 0 || o->chk_c[k] < o->chk_c[worst])) worst = k;
  }
  if (mono && worst >= 0 && o->escapes < HM_OPTIMIZER_CHECK_ESCAPES && o->steps < o->max_steps) {
    PetscBool want = o->hessian == HM_OPTIMIZER_HESSIAN_PREDICTED;
    for (int t = 0; t < 2 && !*escaped && o->steps < o->max_steps; t++) {
      Mat    Hn = NULL;
      double En;
      PetscCall(VecWAXPY(xt, side[worst] * (t ? 0.025 : 0.1), v[worst], x));
      PetscCall((*o->obj)(o, xt, want, &En, gt, &Hn, o->objctx));
      o->steps++;
      if (En < o->E - 1e-11 * PetscMax(1.0, PetscAbsReal(o->E))) {
        PetscCall(PetscInfo(NULL, "curvature check: escaping the saddle of the energy, dE %.4e eV\n", En - o->E));
        PetscCall(VecCopy(xt, x));
        PetscCall(VecCopy(gt, g));
        o->E = En;
        PetscCall(Measure(o, x, g));
        /* a fresh start at the new point: the quasi-Newton pairs of the old basin do not describe this one */
        PetscCall(MatLMVMReset(o->B, PETSC_FALSE));
        o->nupd = 0;
        PetscCall(TakeHessian(o, Hn, x, g));
        o->radius = PetscMin(o->radius0 > 0 ? o->radius0 : 0.3, o->radius_max);
        o->escapes++;
        *escaped = PETSC_TRUE;
        PetscCall(Record(o));
        if (o->mon) PetscCall((*o->mon)(o, o->nh - 1, x, o->E, g, o->monctx));
      } else {
        o->rejected++;
        PetscCall(MatDestroy(&Hn));
      }
    }
  }
  for (PetscInt k = 0; k < n; k++) PetscCall(VecDestroy(&v[k]));
done:
  PetscCall(MatDestroy(&Hc));
  PetscCall(VecDestroy(&xt));
  PetscCall(VecDestroy(&gt));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerSolve(HMOptimizer o, Vec x)
{
  Vec       g, gn, xn, s, Pg;
  Mat       Hn    = NULL;
  PetscBool want  = o->hessian == HM_OPTIMIZER_HESSIAN_PREDICTED;
  PetscInt  since = 0; /* accepted steps since the last Hessian */
  double    last  = 0;

  PetscFunctionBegin;
  PetscCheck(o->obj, o->comm, PETSC_ERR_ORDER, "HMOptimizerSolve: no objective (HMOptimizerSetObjective)");
  PetscCall(Setup(o, x));
  PetscCall(VecDuplicate(x, &g));
  PetscCall(VecDuplicate(x, &gn));
  PetscCall(VecDuplicate(x, &xn));
  PetscCall(VecDuplicate(x, &s));
  PetscCall(VecDuplicate(x, &Pg));
  PetscCall((*o->obj)(o, x, want, &o->E, g, &Hn, o->objctx));
  PetscCall(TakeHessian(o, Hn, x, g));
  Hn    = NULL;
  o->E0 = o->E;
  PetscCall(Measure(o, x, g));
  PetscCall(StressTolerance(o, x));
  PetscCall(Record(o));
  if (o->mon) PetscCall((*o->mon)(o, 0, x, o->E, g, o->monctx));
again:
  while (!Converged(o) && o->steps < o->max_steps) {
    double    En, pred, dE, snorm;
    PetscBool ask = (PetscBool)(want && since + 1 >= o->hess_every), accept, h_here = (PetscBool)(since == 0);

    PetscCall(HMOptimizerRigidBasis_Private(o, x));
    PetscCall(VecCopy(g, Pg));
    o->proj_mode = PETSC_FALSE;
    PetscCall(HMOptimizerProject_Private(o, Pg));
    PetscCall((*o->ops.step)(o, Pg, s, &pred));
    PetscCall(VecNorm(s, NORM_2, &snorm));
    PetscCall(VecWAXPY(xn, 1.0, s, x));
    PetscCall((*o->obj)(o, xn, ask, &En, gn, &Hn, o->objctx));
    o->steps++;
    dE = En - o->E;
    PetscCall(PetscInfo(NULL, "optimize step %" PetscInt_FMT ": |s| %.3e (radius %.3e), dE %.6e, predicted %.6e, fmax %.3e, smax %.3e, lowest/followed eigenvalue %.4e\n", o->steps, snorm, o->radius, dE, pred, o->fmax, o->smax, o->mode_eig));
    accept = (PetscBool)(!o->ops.monotone || dE <= 1e-11 * PetscMax(1.0, PetscAbsReal(o->E)));
    if (accept) {
      double rho = pred < 0 ? dE / pred : 1.0;

      if (o->auto_corr && o->H && Hn && h_here) PetscCall(SecantError(o, s, g, gn, Hn));
      if (o->scale_hessian && Hn) PetscCall(SecantScale(o, s, g, gn));
      PetscCall(VecCopy(xn, x));
      PetscCall(VecCopy(gn, g));
      o->E = En;
      PetscCall(Measure(o, x, g));
      if (Hn) since = 0;
      else since++;
      o->nupd++; /* TakeHessian clears it with a new Hessian, unless its corrections are kept */
      PetscCall(TakeHessian(o, Hn, x, g));
      Hn = NULL;
      /* a poor model shrinks the radius, a good one that reached the boundary grows it; ts steps are judged by
         how well the quadratic model predicted the change in either direction */
      if (PetscAbsReal(pred) > 1e-10) {
        if (rho < 0.25 || (!o->ops.monotone && rho > 4)) o->radius = PetscMax(0.25 * snorm, 1e-3 * o->radius);
        else if (rho > 0.75 && (o->ops.monotone || rho < 1.5) && snorm > 0.9 * o->radius) o->radius = PetscMin(2 * o->radius, o->radius_max);
      }
      PetscCall(Record(o));
      if (o->mon) PetscCall((*o->mon)(o, o->nh - 1, x, o->E, g, o->monctx));
    } else {
      o->rejected++;
      PetscCall(MatDestroy(&Hn));
      o->radius = 0.25 * snorm;
    }
    PetscCall(HMProgress(o->comm, "optimize", (double)o->steps, (double)o->max_steps, &last));
    if (o->radius < 1e-10) break; /* no step left that lowers the energy: round-off level */
  }
  if (Converged(o) && o->check_tol > 0 && !o->ncell) {
    PetscBool escaped;
    PetscCall(CurvatureCheck(o, x, g, &escaped));
    if (escaped) {
      since = 0;
      goto again;
    }
  }
  o->converged = Converged(o);
  PetscCall(VecDestroy(&g));
  PetscCall(VecDestroy(&gn));
  PetscCall(VecDestroy(&xn));
  PetscCall(VecDestroy(&s));
  PetscCall(VecDestroy(&Pg));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The curvature check's lines: each negative eigenvalue of the Hessian with the energy's curvature along its vector */
PetscErrorCode HMOptimizerCheckView_Private(HMOptimizer o, PetscViewer v)
{
  PetscInt nsad = 0;

  PetscFunctionBegin;
  if (!o->chk_done) PetscFunctionReturn(PETSC_SUCCESS);
  if (o->escapes) PetscCall(PetscViewerASCIIPrintf(v, "  escaped %" PetscInt_FMT " time(s) from a saddle of the energy (the curvature check below) and minimised again\n", o->escapes));
  if (!o->nchk) {
    if (o->chk_more) PetscCall(PetscViewerASCIIPrintf(v, "  curvature check: the Hessian's lowest eigenpairs did not converge at the final point: not checked\n"));
    else PetscCall(PetscViewerASCIIPrintf(v, "  curvature check: the Hessian has no eigenvalue below -%g eV/A^2 at the final point (rigid directions removed)\n", o->check_tol));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscViewerASCIIPrintf(v, "  curvature check at the final point: %" PetscInt_FMT "%s eigenvalue(s) of the Hessian below -%g eV/A^2 (not mass-weighted), against the curvature of the model's energy along each vector (central differences of the gradient, %g A):\n", o->nchk, o->chk_more ? " or more" : "", o->check_tol, HM_OPTIMIZER_CHECK_STEP));
  for (PetscInt k = 0; k < o->nchk; k++) {
    PetscBool down = (PetscBool)(o->chk_c[k] < -o->check_tol);
    nsad += down;
    PetscCall(PetscViewerASCIIPrintf(v, "    Hessian %.4e, energy %+.4e eV/A^2: %s\n", o->chk_lam[k], o->chk_c[k], down ? "the energy curves down too" : "the energy does not curve down: the Hessian disagrees with the model's own energy along this direction"));
  }
  if (o->ops.monotone && nsad) PetscCall(PetscPrintf(o->comm, "hipmace: WARNING: -optimize min ended at a saddle of the model's energy (%" PetscInt_FMT " direction(s) of negative curvature, confirmed by the energy; escapes %" PetscInt_FMT " of at most %d or the step limit), not a minimum\n", nsad, o->escapes, HM_OPTIMIZER_CHECK_ESCAPES));
  if (!o->ops.monotone && nsad != 1) PetscCall(PetscPrintf(o->comm, "hipmace: WARNING: -optimize ts: the model's energy curves down along %" PetscInt_FMT " of the Hessian's negative directions at the final point, not exactly one\n", nsad));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerGetInfo(HMOptimizer o, HMOptimizerInfo *info)
{
  PetscFunctionBegin;
  info->converged           = o->converged;
  info->steps               = o->steps;
  info->rejected            = o->rejected;
  info->hessian_evaluations = o->nhess;
  info->energy_initial      = o->E0;
  info->energy_final        = o->E;
  info->fmax                = o->fmax;
  info->mode_eigenvalue     = o->mode_eig;
  info->nhistory            = o->nh;
  info->energies            = o->hE;
  info->fmax_history        = o->hF;
  info->has_cell            = (PetscBool)(o->ncell > 0);
  info->smax                = o->smax;
  info->smax_tolerance      = o->smax_tol;
  info->pressure            = o->pressure;
  info->smax_history        = o->hS;
  info->curvature_checked   = o->chk_done;
  info->ncurvature          = o->nchk;
  info->escapes             = o->escapes;
  info->hessian_eigenvalues = o->chk_lam;
  info->energy_curvatures   = o->chk_c;
  for (int k = 0; k < 9; k++) {
    info->cell[k]   = o->cell[k];
    info->stress[k] = o->stress[k];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizerView(HMOptimizer o, PetscViewer v)
{
  PetscBool ascii;

  PetscFunctionBegin;
  if (!v) PetscCall(PetscViewerASCIIGetStdout(o->comm, &v));
  PetscCall(PetscObjectTypeCompare((PetscObject)v, PETSCVIEWERASCII, &ascii));
  if (!ascii) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscViewerASCIIPrintf(v, "HMOptimizer %s: hessian %s (every %" PetscInt_FMT "%s%s), rigid %s, fmax <= %g eV/A in %" PetscInt_FMT " steps\n", o->type_name, HMOptimizerHessians[o->hessian], o->hess_every, o->keep_history ? ", history kept" : "", o->scale_hessian ? ", secant scale" : "", HMOptimizerRigids[o->rigid], o->fmax_tol, o->max_steps));
  if (o->nh) {
    PetscCall(PetscViewerASCIIPrintf(v, "  %s after %" PetscInt_FMT " steps (%" PetscInt_FMT " rejected), %" PetscInt_FMT " Hessians: fmax %.3e eV/A, E %.10f -> %.10f eV\n", o->converged ? "converged" : "NOT converged", o->steps, o->rejected, o->nhess, o->fmax, o->E0, o->E));
    if (o->ncell) {
      const double *c = o->cell;
      PetscCall(PetscViewerASCIIPrintf(v, "  cell optimised: largest |stress + P| %.3e GPa (tolerance %.3e GPa); cell a (%.6f %.6f %.6f) b (%.6f %.6f %.6f) c (%.6f %.6f %.6f) A\n", o->smax * HM_EV_A3_GPA, o->smax_tol * HM_EV_A3_GPA, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]));
    }
    if (o->mode != NULL) PetscCall(PetscViewerASCIIPrintf(v, "  followed mode eigenvalue %.6e eV/A^2\n", o->mode_eig));
    PetscCall(HMOptimizerCheckView_Private(o, v));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The methods' steps: trust-region Newton (min) and partitioned RFO along a followed mode (ts). */
#include "optimize/optimizeimpl.h"

/* g.s + s.B.s / 2 with B the projected operator (mode not removed) */
static PetscErrorCode ModelChange(HMOptimizer o, Vec Pg, Vec s, double *pred)
{
  PetscScalar gs, sBs;
  PetscBool   pm = o->proj_mode;

  PetscFunctionBegin;
  o->proj_mode = PETSC_FALSE;
  PetscCall(MatMult(o->Pop, s, o->w2));
  o->proj_mode = pm;
  PetscCall(VecDot(Pg, s, &gs));
  PetscCall(VecDot(s, o->w2, &sBs));
  *pred = gs + 0.5 * sBs;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode FollowMode(HMOptimizer, PetscBool);

/* Where B has negative curvature (a predicted Hessian away from a minimum often has), the step is taken with
   B + sigma I, sigma = c - lambda_min (c = -optimize_min_curvature), as the rational-function step's
   shift would: downhill along every mode, the trust region bounding its length. lambda_min from SLEPc whenever B
   changed, to an absolute residual of 1e-3 eV/A^2 (a hundredth of c's default: the shift needs no more, and the
   lowest eigenvalue of a floppy 5,000-atom peptide to 1e-9 relative took 12,800 products per step). */
static PetscErrorCode StepMin(HMOptimizer o, Vec Pg, Vec s, double *pred)
{
  Vec rhs;

  PetscFunctionBegin;
  o->shift = 0;
  if (o->H || o->nupd) {
    PetscCall(VecDestroy(&o->mode));
    PetscCall(FollowMode(o, PETSC_TRUE));
    if (o->mode_eig < 0) o->shift = o->min_curv - o->mode_eig; /* small positive curvature keeps its Newton step */
  }
  PetscCall(VecDuplicate(Pg, &rhs));
  PetscCall(VecAXPBY(rhs, -1.0, 0.0, Pg));
  PetscCall(HMOptimizerTRStep_Private(o, rhs, o->radius, s));
  o->shift = 0; /* the model's change is judged with B itself */
  PetscCall(VecDestroy(&rhs));
  PetscCall(ModelChange(o, Pg, s, pred));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Krylov-Schur for the nev smallest eigenpairs of the symmetric operator A (rigid directions deflated), to an absolute
   residual tol (abs) or a relative one, from init when given; with options, -[prefix]optimize_eps_* apply. Solved. */
PetscErrorCode HMOptimizerLowestPairs_Private(HMOptimizer o, Mat A, PetscInt nev, PetscBool abs, double tol, Vec init, PetscBool options, EPS *eps)
{
  PetscInt N;

  PetscFunctionBegin;
  PetscCall(MatGetSize(A, &N, NULL));
  PetscCall(EPSCreate(o->comm, eps));
  if (options) {
    PetscCall(EPSSetOptionsPrefix(*eps, o->prefix));
    PetscCall(EPSAppendOptionsPrefix(*eps, "optimize_"));
  }
  PetscCall(EPSSetOperators(*eps, A, NULL));
  PetscCall(EPSSetProblemType(*eps, EPS_HEP));
  PetscCall(EPSSetType(*eps, EPSKRYLOVSCHUR));
  PetscCall(EPSSetWhichEigenpairs(*eps, EPS_SMALLEST_REAL));
  PetscCall(EPSSetDimensions(*eps, nev, PetscMin(N - o->nrb, PetscMax(2 * nev + 8, 24)), PETSC_DEFAULT));
  if (abs) PetscCall(EPSSetConvergenceTest(*eps, EPS_CONV_ABS));
  PetscCall(EPSSetTolerances(*eps, tol, 10000));
  if (o->nrb) PetscCall(EPSSetDeflationSpace(*eps, o->nrb, o->rb));
  if (init) PetscCall(EPSSetInitialSpace(*eps, 1, &init));
  if (options) PetscCall(EPSSetFromOptions(*eps));
  PetscCall(EPSSolve(*eps));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The lowest few eigenpairs of P B P (rigid directions deflated) from SLEPc; the one to follow is the lowest at the
   first step, afterwards the one with the largest overlap with the previous mode (sign kept continuous). With
   lowest_only (min's shift), the lowest eigenvalue alone, to an absolute residual of 1e-3 eV/A^2. */
static PetscErrorCode FollowMode(HMOptimizer o, PetscBool lowest_only)
{
  EPS      eps;
  PetscInt N, nconv, nev, best = 0;
  double   bestov = -1;
  Vec      xr;

  PetscFunctionBegin;
  PetscCall(VecGetSize(o->w1, &N));
  nev = PetscMin(lowest_only ? 1 : 4, N - o->nrb);
  PetscCheck(nev >= 1, o->comm, PETSC_ERR_ARG_SIZ, "optimize ts: no degree of freedom left after the rigid-body directions");
  o->proj_mode = PETSC_FALSE;
  PetscCall(HMOptimizerLowestPairs_Private(o, o->Pop, nev, lowest_only, lowest_only ? 1e-3 : 1e-9, o->mode, PETSC_TRUE, &eps));
  PetscCall(EPSGetConverged(eps, &nconv));
  PetscCheck(nconv >= 1, o->comm, PETSC_ERR_NOT_CONVERGED, "optimize: the lowest eigenpair of the Hessian did not converge (try -optimize_eps_max_it)");
  PetscCall(VecDuplicate(o->w1, &xr));
  for (PetscInt k = 0; k < PetscMin(nconv, nev); k++) {
    PetscScalar ov;
    if (!o->mode) break;
    PetscCall(EPSGetEigenvector(eps, k, xr, NULL));
    PetscCall(VecDot(xr, o->mode, &ov));
    if (PetscAbsReal(ov) > bestov + 1e-12) {
      bestov = PetscAbsReal(ov);
      best   = k;
    }
  }
  {
    PetscScalar lr, ov = 1, nrm;
    PetscCall(EPSGetEigenpair(eps, best, &lr, NULL, xr, NULL));
    PetscCall(HMOptimizerProject_Private(o, xr));
    PetscCall(VecNorm(xr, NORM_2, &nrm));
    PetscCall(VecScale(xr, 1.0 / nrm));
    if (o->mode) PetscCall(VecDot(xr, o->mode, &ov));
    if (ov < 0) PetscCall(VecScale(xr, -1.0));
    PetscCall(VecDestroy(&o->mode));
    o->mode     = xr;
    o->mode_eig = lr;
  }
  PetscCall(EPSDestroy(&eps));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode StepTs(HMOptimizer o, Vec Pg, Vec s, double *pred)
{
  Vec         rhs;
  PetscScalar gv;
  double      b, lp, hv, nrm;

  PetscFunctionBegin;
  PetscCall(FollowMode(o, PETSC_FALSE));
  b = o->mode_eig;
  PetscCall(VecDot(Pg, o->mode, &gv));
  /* P-RFO along the mode: the larger root of the 2x2 augmented Hessian [[b, gv], [gv, 0]] maximises */
  lp = 0.5 * b + 0.5 * PetscSqrtReal(b * b + 4 * gv * gv);
  hv = (lp - b) > 0 ? gv / (lp - b) : 0;
  if (PetscAbsReal(hv) > o->radius) hv = PetscSign(hv) * o->radius;
  /* the rest: trust-region Newton (minimising) in the complement of the mode */
  PetscCall(VecDuplicate(Pg, &rhs));
  PetscCall(VecCopy(Pg, rhs));
  o->proj_mode = PETSC_TRUE;
  PetscCall(HMOptimizerProject_Private(o, rhs));
  PetscCall(VecScale(rhs, -1.0));
  PetscCall(HMOptimizerTRStep_Private(o, rhs, o->radius, s));
  o->proj_mode = PETSC_FALSE;
  PetscCall(VecDestroy(&rhs));
  PetscCall(VecAXPY(s, hv, o->mode));
  PetscCall(VecNorm(s, NORM_2, &nrm));
  if (nrm > o->radius) PetscCall(VecScale(s, o->radius / nrm));
  PetscCall(ModelChange(o, Pg, s, pred));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The built-in methods: the step and whether a step that raises the energy is rejected (a saddle search climbs). */
static const struct {
  const char *name;
  PetscErrorCode (*step)(HMOptimizer, Vec, Vec, double *);
  PetscBool monotone;
} HMOptimizerMethods[] = {
    {HMOPTIMIZERMIN, StepMin, PETSC_TRUE },
    {HMOPTIMIZERTS,  StepTs,  PETSC_FALSE},
};

PetscErrorCode HMOptimizerCreate_Builtin(HMOptimizer o)
{
  PetscBool same = PETSC_FALSE;

  PetscFunctionBegin;
  for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(HMOptimizerMethods) && !same; k++) {
    PetscCall(PetscStrcmp(o->type_name, HMOptimizerMethods[k].name, &same));
    if (same) {
      o->ops.step     = HMOptimizerMethods[k].step;
      o->ops.monotone = HMOptimizerMethods[k].monotone;
    }
  }
  PetscCheck(same, o->comm, PETSC_ERR_PLIB, "no built-in optimizer method '%s'", o->type_name);
  PetscFunctionReturn(PETSC_SUCCESS);
}

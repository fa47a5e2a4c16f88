/* Lowest modes (shift-and-invert Krylov-Schur on the bordered pencil, or LOBPCG on the projected shell) and window slicing. */
#include "eigenimpl.h"
#include <slepceps.h>

/* Copies the first nloc entries of v (Ht's part of a bordered vector, or a plain vector) into column j of X,
   projects out the rigid-body directions left by round-off and normalises. */
static PetscErrorCode HMModesStoreVector_Private(HMModes m, HMProj *p, Vec v, PetscInt j)
{
  Vec           col;
  const double *va;
  double       *ca;
  PetscReal     nrm;

  PetscFunctionBegin;
  PetscCall(MatDenseGetColumnVecWrite(m->X, j, &col));
  PetscCall(VecGetArrayRead(v, &va));
  PetscCall(VecGetArray(col, &ca));
  PetscCall(PetscArraycpy(ca, va, p->nloc));
  PetscCall(VecRestoreArray(col, &ca));
  PetscCall(VecRestoreArrayRead(v, &va));
  PetscCall(HMProjProject(p, col));
  PetscCall(VecNorm(col, NORM_2, &nrm));
  PetscCheck(nrm > 0, p->comm, PETSC_ERR_PLIB, "eigenvector %" PetscInt_FMT " lies in the rigid-body space", j);
  PetscCall(VecScale(col, 1.0 / nrm));
  PetscCall(MatDenseRestoreColumnVecWrite(m->X, j, &col));
  PetscFunctionReturn(PETSC_SUCCESS);
}

typedef struct {
  double   lambda;
  PetscInt idx;
} HMPair;

static int HMPairCompare(const void *a, const void *b)
{
  double x = ((const HMPair *)a)->lambda, y = ((const HMPair *)b)->lambda;
  return (x > y) - (x < y);
}

/* Takes the nkeep lowest of the converged eigenpairs of eps; xr has the layout of eps's operators. */
PetscErrorCode HMModesCollect_Private(HMModes m, HMProj *p, EPS eps, PetscInt nkeep)
{
  PetscInt nconv;
  HMPair  *pairs;
  Vec      xr;
  Mat      A;

  PetscFunctionBegin;
  PetscCall(EPSGetConverged(eps, &nconv));
  PetscCheck(nconv >= nkeep, p->comm, PETSC_ERR_NOT_CONVERGED, "eigensolver converged %" PetscInt_FMT " of the %" PetscInt_FMT " modes asked for (try -eps_ncv, -eps_max_it or -modes_tol)", nconv, nkeep);
  PetscCall(PetscMalloc1(nconv + 1, &pairs));
  for (PetscInt i = 0; i < nconv; i++) {
    PetscScalar kr;
    PetscCall(EPSGetEigenvalue(eps, i, &kr, NULL));
    pairs[i].lambda = PetscRealPart(kr);
    pairs[i].idx    = i;
  }
  qsort(pairs, (size_t)nconv, sizeof(HMPair), HMPairCompare);
  PetscCall(HMModesAllocate_Private(m, p, nkeep));
  PetscCall(EPSGetOperators(eps, &A, NULL));
  PetscCall(MatCreateVecs(A, &xr, NULL));
  for (PetscInt i = 0; i < nkeep; i++) {
    m->lambda[i] = pairs[i].lambda;
    PetscCall(EPSGetEigenvector(eps, pairs[i].idx, xr, NULL));
    PetscCall(HMModesStoreVector_Private(m, p, xr, i));
  }
  PetscCall(VecDestroy(&xr));
  PetscCall(PetscFree(pairs));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A rough lowest eigenvalue of P Ht P (rigid directions parked at alpha): a few Lanczos steps, no factorisation. */
PetscErrorCode HMModesEstimateLowest_Private(HMProj *p, double *lmin, double *err)
{
  Mat         A;
  EPS         eps;
  PetscInt    nconv;
  PetscScalar kr;

  PetscFunctionBegin;
  PetscCall(HMProjCreateShell(p, p->alpha, &A));
  PetscCall(EPSCreate(p->comm, &eps));
  PetscCall(EPSSetOptionsPrefix(eps, "modes_estimate_"));
  PetscCall(EPSSetOperators(eps, A, NULL));
  PetscCall(EPSSetProblemType(eps, EPS_HEP));
  PetscCall(EPSSetType(eps, EPSKRYLOVSCHUR));
  PetscCall(EPSSetWhichEigenpairs(eps, EPS_SMALLEST_REAL));
  PetscCall(EPSSetDimensions(eps, 1, PetscMin(p->ndof, 24), PETSC_DEFAULT));
  PetscCall(EPSSetTolerances(eps, 1e-6, 2000));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(EPSSolve(eps));
  PetscCall(EPSGetConverged(eps, &nconv));
  if (nconv > 0) {
    PetscReal e;
    PetscCall(EPSGetEigenvalue(eps, 0, &kr, NULL));
    PetscCall(EPSComputeError(eps, 0, EPS_ERROR_ABSOLUTE, &e));
    *lmin = PetscRealPart(kr);
    *err  = e;
  } else {
    *lmin = p->lb;
    *err  = 0;
  }
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&A));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Spectrum slicing: shift-and-invert with exact sparse Cholesky factors (MUMPS) of K - sigma B in Krylov-Schur's slices. */
static PetscErrorCode ShiftInvertCholesky(EPS eps, ST *st, KSP *ksp, PC *pc)
{
  PetscFunctionBegin;
  PetscCall(EPSGetST(eps, st));
  PetscCall(STSetType(*st, STSINVERT));
  PetscCall(STSetMatStructure(*st, SUBSET_NONZERO_PATTERN));
  PetscCall(EPSKrylovSchurGetKSP(eps, ksp));
  PetscCall(KSPSetType(*ksp, KSPPREONLY));
  PetscCall(KSPGetPC(*ksp, pc));
  PetscCall(PCSetType(*pc, PCCHOLESKY));
  PetscCall(PCFactorSetMatSolverType(*pc, MATSOLVERMUMPS));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The nearest unconverged Ritz value of a stage (shift-and-invert: theta = 1/(lambda - sigma)) and its error estimate
   relative to |theta|, as the last restart left them. */
typedef struct {
  PetscBool have;
  double    theta, err;
} HMStageRitz;

static PetscErrorCode HMStageMonitor(EPS eps, PetscInt its, PetscInt nconv, PetscScalar *eigr, PetscScalar *eigi, PetscReal *errest, PetscInt nest, void *ctx)
{
  HMStageRitz *r = (HMStageRitz *)ctx;

  PetscFunctionBegin;
  (void)eps;
  (void)its;
  (void)eigi;
  r->have = nconv < nest;
  if (r->have) {
    r->theta = PetscRealPart(eigr[nconv]);
    r->err   = errest[nconv];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMFactorApply(PC pc, Vec x, Vec y)
{
  PC fac;

  PetscFunctionBegin;
  PetscCall(PCShellGetContext(pc, &fac));
  PetscCall(PCApply(fac, x, y));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One stage: the nev modes of (K, B) nearest sigma B-orthogonal to the nlock locked eigenvectors, at most maxit restarts
   (PETSC_DEFAULT: SLEPc's). Appends the converged ones (at most nev) to lam/lock. */
static PetscErrorCode HMModesStage_Private(HMModes m, HMProj *p, Mat K, Mat B, double sigma, PC fac, PetscInt nev, PetscInt maxit, PetscInt *nlock, double lam[], Vec lock[], HMStageRitz *ritz)
{
  PetscInt nvib = p->ndof - p->k, ncv, nconv, its;
  EPS      eps;
  ST       st;
  KSP      ksp;
  PC       pc;

  PetscFunctionBegin;
  PetscCall(EPSCreate(p->comm, &eps));
  PetscCall(EPSSetOperators(eps, K, B));
  PetscCall(EPSSetProblemType(eps, EPS_GHEP));
  PetscCall(EPSSetType(eps, EPSKRYLOVSCHUR));
  /* the solves use the factor of K - sigma B that the inertia check made (one factorisation per shift) */
  PetscCall(EPSGetST(eps, &st));
  PetscCall(STSetType(st, STSINVERT));
  PetscCall(STSetMatStructure(st, SUBSET_NONZERO_PATTERN));
  PetscCall(STGetKSP(st, &ksp));
  PetscCall(KSPSetType(ksp, KSPPREONLY));
  PetscCall(KSPGetPC(ksp, &pc));
  PetscCall(PCSetType(pc, PCSHELL));
  PetscCall(PCShellSetContext(pc, fac));
  PetscCall(PCShellSetApply(pc, HMFactorApply));
  PetscCall(PCShellSetName(pc, "MUMPS Cholesky factor of K - sigma B (bordered Eckart pencil)"));
  PetscCall(EPSSetTarget(eps, sigma));
  PetscCall(EPSSetWhichEigenpairs(eps, EPS_TARGET_MAGNITUDE));
  /* the pencil has only nvib finite eigenvalues, nlock of them deflated: the Krylov space cannot grow beyond the rest */
  ncv = PetscMin(nvib - *nlock, PetscMax(2 * nev, nev + 15));
  PetscCall(EPSSetDimensions(eps, nev, ncv, PETSC_DEFAULT));
  PetscCall(EPSSetTolerances(eps, m->tol, maxit));
  if (*nlock > 0) PetscCall(EPSSetDeflationSpace(eps, *nlock, lock));
  ritz->have = PETSC_FALSE;
  PetscCall(EPSMonitorSet(eps, HMStageMonitor, ritz, NULL));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(EPSSolve(eps));
  PetscCall(EPSGetIterationNumber(eps, &its));
  m->stats.iterations += its;
  PetscCall(EPSGetConverged(eps, &nconv));
  /* sorted by distance to sigma; no mode outside the deflated space lies below sigma, so these are the lowest ones */
  for (PetscInt i = 0; i < PetscMin(nconv, nev); i++) {
    PetscScalar kr;
    PetscCall(MatCreateVecs(K, &lock[*nlock], NULL));
    PetscCall(EPSGetEigenpair(eps, i, &kr, NULL, lock[*nlock], NULL));
    lam[(*nlock)++] = PetscRealPart(kr);
  }
  PetscCall(EPSDestroy(&eps));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The next stage's shift: just below the nearest unconverged Ritz value lnext of the last stage (back-transformed), by
   max(2 x its error, 5% of its distance to the highest locked mode); accepted when the factor's inertia counts exactly
   the locked modes below it (no unlocked mode is), else moved down x4 (8 tries, never below the current shift). On
   return *sigma is the shift (unchanged when no candidate passed) and f holds the factor at it. */
static PetscErrorCode HMModesNextShift_Private(HMProj *p, Mat K, Mat B, const HMStageRitz *ritz, PetscInt nlock, const double lam[], double width, double *sigma, HMShiftFactor *f)
{
  const double lnext = *sigma + 1.0 / ritz->theta, enext = ritz->err * PetscAbsReal(lnext - *sigma);
  const double lo = nlock > 0 ? lam[nlock - 1] : *sigma;
  double       d  = PetscMax(PetscMax(2 * enext, 0.05 * PetscMax(lnext - lo, 0)), 1e-10 * width);
  PetscInt     count;

  PetscFunctionBegin;
  PetscCall(PetscInfo(K, "next Ritz value %g +- %g\n", lnext, enext));
  for (PetscInt it = 0; it < 8; it++, d *= 4) {
    const double s      = lnext - d;
    PetscInt     nbelow = 0;
    if (!(s > *sigma)) break;
    PetscCall(HMProjFactorShift(p, K, B, s, f, &count));
    for (PetscInt i = 0; i < nlock; i++) nbelow += lam[i] < s;
    if (count == nbelow) {
      *sigma = s;
      PetscFunctionReturn(PETSC_SUCCESS);
    }
  }
  if (f->sigma != *sigma) PetscCall(HMProjFactorShift(p, K, B, *sigma, f, &count)); /* every candidate failed */
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveKrylovSchur_Private(HMModes m, HMProj *p)
{
  PetscInt      nvib = p->ndof - p->k, nev = PetscMin(m->nreq, nvib), count, nlock = 0, nstage = 0, maxit;
  double        width = PetscMax(p->ub - p->lb, PETSC_SMALL), sigma, sigma0, lest = 0, lerr = 0, d, *lam;
  Mat           K, B;
  Vec          *lock;
  HMStageRitz   ritz;
  HMPair       *pairs;
  HMShiftFactor f = {0}; /* factor of K - sigma B at the last shift tried */

  PetscFunctionBegin;
  if (nev >= nvib) {
    /* every mode asked for: a Krylov space cannot exceed the nvib finite eigenvalues of the pencil */
    PetscCall(HMModesSolveDense_Private(m, p));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMProjCreateBordered(p, &K, &B));
  /* Shift-and-invert returns the modes nearest the target; they are the lowest only if no mode lies below it.
     Start just below zero (a minimum has no imaginary mode) and verify with the inertia of the bordered pencil. */
  sigma = -1e-6 * width;
  PetscCall(HMProjFactorShift(p, K, B, sigma, &f, &count));
  if (count > 0) {
    PetscCall(HMModesEstimateLowest_Private(p, &lest, &lerr));
    /* as close below the lowest mode as the estimate allows: Krylov-Schur converges on the shifted and inverted
       spectrum, where a distant shift squeezes the wanted modes together (a 5,003-atom helix with 207 imaginary modes,
       lowest 20: 649 solves at 0.01 of the spectrum's width below, 330 at 5% of |lowest| below). The inertia check
       below moves the shift down (x4) until no mode is below it. */
    d = PetscMax(PetscMax(2 * lerr, 0.05 * PetscAbsReal(lest)), 1e-4 * width);
    for (PetscInt it = 0; it < 40 && count > 0; it++, d *= 4) {
      sigma = PetscMin(lest - d, sigma);
      if (sigma <= p->lb) sigma = p->lb - 1e-3 * width; /* below the Gershgorin bound: nothing can be lower */
      PetscCall(HMProjFactorShift(p, K, B, sigma, &f, &count));
      if (sigma < p->lb) break;
    }
    PetscCheck(count == 0, p->comm, PETSC_ERR_PLIB, "could not place a shift below the lowest mode (%" PetscInt_FMT " below %g)", count, sigma);
  }
  sigma0 = sigma;
  PetscCall(PetscInfo(K, "lowest modes: target %g\n", sigma));

  /* Stages. A band of close modes far above the shift converges slowly (the helix: the wanted band's transformed
     eigenvalues 1/(lambda - sigma) crowd together as the chain grows). A stage stops after m->stage_its restarts;
     its converged modes are locked (deflated) and the next stage shifts to just below the nearest unconverged Ritz
     value, checked by inertia: the number of modes below the new shift must be the number of locked ones below it. */
  PetscCall(PetscMalloc2(nev, &lam, nev, &lock));
  m->stats.iterations = 0;
  maxit               = m->stage_its > 0 ? m->stage_its : PETSC_DEFAULT;
  while (nlock < nev) {
    PetscInt before = nlock;
    double   sold   = sigma;
    PetscCall(HMModesStage_Private(m, p, K, B, sigma, f.pc, nev - nlock, maxit, &nlock, lam, lock, &ritz));
    nstage++;
    if (nlock == nev) break;
    PetscCheck(ritz.have && ritz.theta != 0, p->comm, PETSC_ERR_NOT_CONVERGED, "eigensolver converged %" PetscInt_FMT " of the %" PetscInt_FMT " modes asked for (try -eps_ncv, -eps_max_it or -modes_tol)", nlock, nev);
    PetscCall(HMModesNextShift_Private(p, K, B, &ritz, nlock, lam, width, &sigma, &f));
    PetscCall(PetscInfo(K, "stage %" PetscInt_FMT ": %" PetscInt_FMT " locked, shift now %g\n", nstage, nlock, sigma));
    /* no better shift and no progress: let the next stage run to convergence */
    if (sigma == sold && nlock == before) maxit = PETSC_DEFAULT;
  }
  PetscCall(PetscMalloc1(nev, &pairs));
  for (PetscInt i = 0; i < nev; i++) {
    pairs[i].lambda = lam[i];
    pairs[i].idx    = i;
  }
  qsort(pairs, (size_t)nev, sizeof(HMPair), HMPairCompare);
  PetscCall(HMModesAllocate_Private(m, p, nev));
  for (PetscInt i = 0; i < nev; i++) {
    m->lambda[i] = pairs[i].lambda;
    PetscCall(HMModesStoreVector_Private(m, p, lock[pairs[i].idx], i));
  }
  PetscCall(PetscFree(pairs));
  if (m->lambda[nev - 1] < 0) {
    /* every reported mode is imaginary: the pencil's inertia at 0 counts the ones beyond them */
    PetscInt n0;
    PetscCall(HMProjFactorShift(p, K, B, 0.0, &f, &n0));
    m->nimag = n0;
  }
  if (nstage == 1) PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", Krylov-Schur shift-and-invert (MUMPS, bordered Eckart pencil, target %.3g)", nev, sigma));
  else PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", Krylov-Schur shift-and-invert (MUMPS, bordered Eckart pencil, %" PetscInt_FMT " stages, targets %.3g ... %.3g)", nev, nstage, sigma0, sigma));
  PetscCall(HMShiftFactorDestroy(&f));
  for (PetscInt i = 0; i < nlock; i++) PetscCall(VecDestroy(&lock[i]));
  PetscCall(PetscFree2(lam, lock));
  PetscCall(MatDestroy(&K));
  PetscCall(MatDestroy(&B));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscInt HMModesLOBPCGBlockSize_Private(HMProj *p, PetscInt nev)
{
  PetscInt nvib = p->ndof - p->k;

  /* guard vectors: with a block of exactly nev, a cluster split by the block's edge makes LOBPCG stagnate (seen on
     3 ranks with nev = 3); the search space [X R P] must fit beside the locked modes in the nvib-dimensional space,
     and SLEPc asks for nvib >= 5 bs */
  return PetscMin(PetscMin(nev + PetscMax(2, nev / 2), 16), PetscMin((nvib - nev) / 3, nvib / 5));
}

PetscErrorCode HMModesShellEPSCreate_Private(HMModes m, HMProj *p, EPSType type, PetscInt nev, EPS *out, Mat *A, PC *pc)
{
  EPS  eps;
  ST   st;
  KSP  ksp;
  Vec *dv;

  PetscFunctionBegin;
  /* rigid directions parked above the spectrum: the operator is regular on them and they are never the lowest */
  PetscCall(HMProjCreateShell(p, p->alpha, A));
  PetscCall(EPSCreate(p->comm, &eps));
  PetscCall(EPSSetOperators(eps, *A, NULL));
  PetscCall(EPSSetProblemType(eps, EPS_HEP));
  PetscCall(EPSSetType(eps, type));
  PetscCall(EPSSetWhichEigenpairs(eps, EPS_SMALLEST_REAL));
  PetscCall(EPSGetST(eps, &st));
  PetscCall(STSetType(st, STPRECOND));
  PetscCall(STGetKSP(st, &ksp));
  PetscCall(KSPSetType(ksp, KSPPREONLY));
  PetscCall(KSPGetPC(ksp, pc));
  PetscCall(EPSSetDimensions(eps, nev, PETSC_DEFAULT, PETSC_DEFAULT));
  /* the iterates stay orthogonal to the deflation space V: the Rayleigh-Ritz steps see exactly P Ht P on range(P)
     and never spend search directions on the rigid-body space */
  PetscCall(HMProjGetRigidVecs(p, &dv));
  PetscCall(EPSSetDeflationSpace(eps, p->k, dv));
  PetscCall(VecDestroyVecs(p->k, &dv));
  if (m->ninit > 0) PetscCall(EPSSetInitialSpace(eps, m->ninit, m->init)); /* RTB refinement (rtb.c) */
  /* residuals relative to the operator scale: relative to |lambda| the near-zero modes would ask for residuals
     below round-off, and the Gram matrices then lose definiteness */
  PetscCall(EPSSetConvergenceTest(eps, EPS_CONV_ABS));
  PetscCall(EPSSetTolerances(eps, m->tol * PetscMax(PETSC_SMALL, PetscMax(PetscAbsReal(p->lb), PetscAbsReal(p->ub))), 100000));
  *out = eps;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesShellEPSSolve_Private(HMModes m, HMProj *p, EPS eps, PetscInt nev)
{
  PetscFunctionBegin;
  PetscCall(EPSSolve(eps));
  PetscCall(EPSGetIterationNumber(eps, &m->stats.iterations));
  PetscCall(HMModesCollect_Private(m, p, eps, nev));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveLOBPCG_Private(HMModes m, HMProj *p)
{
  PetscInt nvib = p->ndof - p->k, nev = PetscMin(m->nreq, nvib), bs;
  Mat      A;
  EPS      eps;
  PC       pc;

  PetscFunctionBegin;
  /* when the search space cannot fit, every mode is wanted anyway: go dense */
  bs = HMModesLOBPCGBlockSize_Private(p, nev);
  if (bs < 1) {
    PetscCall(HMModesSolveDense_Private(m, p));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMModesShellEPSCreate_Private(m, p, EPSLOBPCG, nev, &eps, &A, &pc));
  PetscCall(PCSetType(pc, PCNONE));
  PetscCall(EPSLOBPCGSetBlockSize(eps, bs));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(HMModesShellEPSSolve_Private(m, p, eps, nev));
  PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", LOBPCG on the projected operator", nev));
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&A));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveWindow_Private(HMModes m, HMProj *p)
{
  Mat      K, B, F;
  EPS      eps;
  ST       st;
  KSP      ksp;
  PC       pc;
  PetscInt nconv, nvib = p->ndof - p->k;

  PetscFunctionBegin;
  PetscCheck(m->win_set, m->comm, PETSC_ERR_ARG_WRONG, "-modes window needs -window_cm1 LO,HI (or -window_eigenvalue LO,HI)");
  PetscCheck(m->win[0] < m->win[1], m->comm, PETSC_ERR_ARG_OUTOFRANGE, "empty window [%g, %g] eV/(A^2 amu)", m->win[0], m->win[1]);
  if (nvib <= 0) {
    PetscCall(HMModesAllocate_Private(m, p, 0));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMProjCreateBordered(p, &K, &B));
  PetscCall(EPSCreate(p->comm, &eps));
  PetscCall(EPSSetOperators(eps, K, B));
  PetscCall(EPSSetProblemType(eps, EPS_GHEP));
  PetscCall(EPSSetType(eps, EPSKRYLOVSCHUR));
  PetscCall(EPSSetInterval(eps, m->win[0], m->win[1]));
  PetscCall(EPSSetWhichEigenpairs(eps, EPS_ALL));
  PetscCall(EPSSetTolerances(eps, m->tol, PETSC_DEFAULT));
  PetscCall(ShiftInvertCholesky(eps, &st, &ksp, &pc));
  PetscCall(EPSKrylovSchurSetDetectZeros(eps, PETSC_TRUE));
  /* slicing counts eigenvalues with the factor's inertia: exact in parallel only with ICNTL(13)=1 (no ScaLAPACK
     root), and an end of the window on an eigenvalue needs null pivots detected (ICNTL(24)=1) */
  PetscCall(PCFactorSetUpMatSolverType(pc));
  PetscCall(PCFactorGetMatrix(pc, &F));
  PetscCall(HMProjMumpsPrepare(p, F));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(EPSSolve(eps));
  PetscCall(EPSGetIterationNumber(eps, &m->stats.iterations));
  PetscCall(EPSGetConverged(eps, &nconv));
  {
    PetscInt i13, i24;
    /* the factor the slices actually used (the solver may have rebuilt it) */
    PetscCall(EPSKrylovSchurGetKSP(eps, &ksp));
    PetscCall(KSPGetPC(ksp, &pc));
    PetscCall(PCFactorGetMatrix(pc, &F));
    PetscCall(MatMumpsGetIcntl(F, 13, &i13));
    PetscCall(MatMumpsGetIcntl(F, 24, &i24));
    PetscCall(PetscInfo(K, "window: %" PetscInt_FMT " modes, MUMPS ICNTL(13)=%" PetscInt_FMT " ICNTL(24)=%" PetscInt_FMT "\n", nconv, i13, i24));
  }
  PetscCall(HMModesCollect_Private(m, p, eps, nconv));
  PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "window [%.6g, %.6g] eV/(A^2 amu), Krylov-Schur spectrum slicing (MUMPS inertia)", m->win[0], m->win[1]));
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&K));
  PetscCall(MatDestroy(&B));
  PetscFunctionReturn(PETSC_SUCCESS);
}

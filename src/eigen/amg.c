/* Factorisation-free lowest modes: LOBPCG on the exactly projected shell, preconditioned by algebraic multigrid. */
#include "eigenimpl.h"
#include <slepceps.h>

/*
  The operator is the matrix-free P Ht P + alpha V V^T of the LOBPCG route (rigid directions parked above the
  spectrum, V also LOBPCG's deflation space), so the Rayleigh-Ritz steps see exactly the projected spectrum.
  The preconditioner is one GAMG V-cycle on Ht + mu I, an assembled sparse matrix with Ht's layout (memory O(N/P)):
  mu makes it positive definite when the structure is unrelaxed (imaginary modes, estimated by a few Lanczos steps
  on the shell) and keeps it regular on the near-null rigid-body space; the mass-weighted rigid-body vectors V are
  GAMG's near-null space, which is what smoothed aggregation for elasticity needs to coarsen well.
  Options: -modes_amg_shift MU (default: chosen as above); the inner solver reads -modes_amg_ksp_* / -modes_amg_pc_*
  (e.g. -modes_amg_pc_gamg_threshold, or -modes_amg_pc_type hypre); the eigensolver reads -eps_*.
*/
#define HM_ITERATIVE_MIN_DOF 600

typedef struct {
  HMProj *p;
  KSP     amg; /* one GAMG V-cycle on Ht + mu I */
} HMAMGCtx;

/* y = P (Ht + mu I)^-1 P x: without the projections the near-null rigid-body directions, amplified by 1/mu, would
   swamp the preconditioned residuals and LOBPCG's Gram matrices would lose definiteness */
static PetscErrorCode HMAMGApply_Private(PC pc, Vec x, Vec y)
{
  HMAMGCtx *ctx;

  PetscFunctionBegin;
  PetscCall(PCShellGetContext(pc, &ctx));
  ctx->p->npcapply++;
  PetscCall(VecCopy(x, ctx->p->wx));
  PetscCall(HMProjProject(ctx->p, ctx->p->wx));
  PetscCall(KSPSolve(ctx->amg, ctx->p->wx, y));
  PetscCall(HMProjProject(ctx->p, y));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Keeps the lowest nev of the modes a solver returned. */
static PetscErrorCode HMModesTruncate_Private(HMModes m, HMProj *p, PetscInt nev)
{
  Mat                X;
  const PetscScalar *a;
  PetscScalar       *b;
  PetscInt           la, lb;

  PetscFunctionBegin;
  if (m->n <= nev) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(MatCreateDense(p->comm, p->nloc, PETSC_DECIDE, p->ndof, nev, NULL, &X));
  PetscCall(MatDenseGetLDA(m->X, &la));
  PetscCall(MatDenseGetLDA(X, &lb));
  PetscCall(MatDenseGetArrayRead(m->X, &a));
  PetscCall(MatDenseGetArrayWrite(X, &b));
  for (PetscInt j = 0; j < nev; j++) PetscCall(PetscArraycpy(b + j * lb, a + j * la, p->nloc));
  PetscCall(MatDenseRestoreArrayWrite(X, &b));
  PetscCall(MatDenseRestoreArrayRead(m->X, &a));
  PetscCall(MatAssemblyBegin(X, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(X, MAT_FINAL_ASSEMBLY));
  PetscCall(MatDestroy(&m->X));
  m->X = X;
  m->n = nev;
  PetscCall(PetscStrlcat(m->method, ", lowest modes kept (too small for the iterative route)", sizeof(m->method)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveIterative_Private(HMModes m, HMProj *p)
{
  HMAMGCtx     actx;
  PC           ipc;
  PetscInt     nvib = p->ndof - p->k, nev = PetscMin(m->nreq, nvib), bs, its;
  double       width = PetscMax(p->ub - p->lb, PETSC_SMALL), lest = 0, lerr = 0, mu;
  Vec         *dv;
  Mat          A, Pm;
  MatNullSpace nsp;
  EPS          eps;
  ST           st;
  KSP          ksp;
  PC           pc;

  PetscFunctionBegin;
  if (nev <= 0) {
    PetscCall(HMModesAllocate_Private(m, p, 0));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  bs = PetscMin(PetscMin(nev, 16), (nvib - nev) / 3);
  /* tiny systems: multigrid is then a near-exact solve, LOBPCG's preconditioned residuals fall into its search space
     and its Gram matrices lose definiteness (seen on 10-30 atom molecules); the dense route is cheaper there anyway */
  if (bs < 1 || nvib < HM_ITERATIVE_MIN_DOF) {
    PetscCall(HMModesSolveDense_Private(m, p));
    PetscCall(HMModesTruncate_Private(m, p, nev));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMModesEstimateLowest_Private(p, &lest, &lerr));
  /* a small positive floor keeps near-zero (relaxed) spectra away from a singular preconditioner */
  mu = PetscMax(0.0, -lest + 2 * lerr) + 1e-3 * width;
  if (m->amg_shift_set) mu = m->amg_shift;
  PetscCall(MatDuplicate(p->Ht, MAT_COPY_VALUES, &Pm));
  PetscCall(MatShift(Pm, mu));
  PetscCall(MatSetBlockSize(Pm, 3));
  PetscCall(MatSetOption(Pm, MAT_SPD, PETSC_TRUE));
  PetscCall(VecDuplicateVecs(p->wx, p->k, &dv));
  for (PetscInt j = 0; j < p->k; j++) {
    double *da;
    PetscCall(VecGetArray(dv[j], &da));
    PetscCall(PetscArraycpy(da, p->V + j * p->nloc, p->nloc));
    PetscCall(VecRestoreArray(dv[j], &da));
  }
  PetscCall(MatNullSpaceCreate(p->comm, PETSC_FALSE, p->k, dv, &nsp));
  PetscCall(MatSetNearNullSpace(Pm, nsp));
  PetscCall(MatNullSpaceDestroy(&nsp));

  PetscCall(HMProjCreateShell(p, p->alpha, &A));
  PetscCall(EPSCreate(p->comm, &eps));
  PetscCall(EPSSetOperators(eps, A, NULL));
  PetscCall(EPSSetProblemType(eps, EPS_HEP));
  PetscCall(EPSSetType(eps, EPSLOBPCG));
  PetscCall(EPSSetWhichEigenpairs(eps, EPS_SMALLEST_REAL));
  PetscCall(EPSGetST(eps, &st));
  PetscCall(STSetType(st, STPRECOND));
  PetscCall(STGetKSP(st, &ksp));
  PetscCall(KSPSetType(ksp, KSPPREONLY));
  PetscCall(KSPGetPC(ksp, &pc));
  PetscCall(PCSetType(pc, PCSHELL));
  actx.p = p;
  PetscCall(KSPCreate(p->comm, &actx.amg));
  PetscCall(KSPSetOptionsPrefix(actx.amg, "modes_amg_"));
  PetscCall(KSPSetOperators(actx.amg, Pm, Pm));
  PetscCall(KSPSetType(actx.amg, KSPPREONLY));
  PetscCall(KSPGetPC(actx.amg, &ipc));
  PetscCall(PCSetType(ipc, PCGAMG));
  PetscCall(KSPSetFromOptions(actx.amg));
  {
    double t0 = MPI_Wtime();
    PetscCall(KSPSetUp(actx.amg));
    m->stats.setup_seconds = MPI_Wtime() - t0;
  }
  PetscCall(PCShellSetContext(pc, &actx));
  PetscCall(PCShellSetApply(pc, HMAMGApply_Private));
  PetscCall(PCShellSetName(pc, "P (GAMG on Ht + mu I) P"));
  PetscCall(EPSSetDimensions(eps, nev, PETSC_DEFAULT, PETSC_DEFAULT));
  PetscCall(EPSSetDeflationSpace(eps, p->k, dv));
  if (m->ninit > 0) PetscCall(EPSSetInitialSpace(eps, m->ninit, m->init)); /* RTB refinement (rtb.c) */
  PetscCall(VecDestroyVecs(p->k, &dv));
  PetscCall(EPSLOBPCGSetBlockSize(eps, bs));
  PetscCall(EPSSetConvergenceTest(eps, EPS_CONV_ABS));
  PetscCall(EPSSetTolerances(eps, m->tol * PetscMax(PETSC_SMALL, PetscMax(PetscAbsReal(p->lb), PetscAbsReal(p->ub))), 100000));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(EPSSolve(eps));
  PetscCall(EPSGetIterationNumber(eps, &its));
  m->stats.iterations = its;
  PetscCall(HMModesCollect_Private(m, p, eps, nev));
  PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", LOBPCG with GAMG (shift %.3g, %" PetscInt_FMT " iterations)", nev, mu, its));
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&A));
  PetscCall(KSPDestroy(&actx.amg));
  PetscCall(MatDestroy(&Pm));
  PetscFunctionReturn(PETSC_SUCCESS);
}

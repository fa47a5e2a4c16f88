/* Factorisation-free lowest modes: generalised Davidson on the exactly projected shell, preconditioned by an incomplete
   Cholesky factor (or algebraic multigrid) of the shifted mass-weighted Hessian. */
#include "eigenimpl.h"
#include <slepceps.h>

/*
  The operator is the matrix-free P Ht P + alpha V V^T of the LOBPCG route (rigid directions parked above the
  spectrum, V also the eigensolver's deflation space), so the Rayleigh-Ritz steps see exactly the projected spectrum.
  The preconditioner is P (Ht + mu I)^-1 P, approximated by the inner solver "modes_amg_" on Ht + mu I: by default
  ICC(0) on each rank's diagonal block (block Jacobi over ranks), or one GAMG V-cycle (-modes_amg_pc_type gamg, with
  the mass-weighted rigid-body vectors V as near-null space). mu makes the matrix positive definite when the structure
  is unrelaxed (imaginary modes, estimated by a few Lanczos steps on the shell) and keeps it regular on the near-null
  rigid-body space. Ht itself is shifted in place for the duration of the solve (no second copy; the shell subtracts
  the shift, and the diagonal is restored bit for bit afterwards).
  The eigensolver is SLEPc's generalised Davidson (block 4), which needs one operator product and one preconditioner
  application per new search direction; -eps_type lobpcg (block with guard vectors), -eps_gd_*, -eps_* apply.
  Measurements: docs/MODES.md.
*/
#define HM_ITERATIVE_MIN_DOF 600
#define HM_GD_BLOCK          4

typedef struct {
  HMProj   *p;
  KSP       amg;      /* the inner solver on Ht + mu I */
  Vec       diag;     /* Ht's diagonal before the shift */
  char      desc[64]; /* the inner solver, for the method line */
  PetscBool gamg;     /* Ht carries GAMG's near-null space and the SPD flag */
} HMAMGCtx;

/* y = P (Ht + mu I)^-1 P x: without the projections the near-null rigid-body directions, amplified by 1/mu, would
   swamp the preconditioned residuals and the eigensolver's Gram matrices would lose definiteness */
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

/* Ht (AIJ, block size 3) as BAIJ with the same values, preallocated from its 3 x 3 block pattern; replaces Ht (one copy
   at a time apart from this transient; MatConvert's generic path is several times slower in parallel). */
static PetscErrorCode HMProjToBAIJ_Private(HMProj *p)
{
  PetscInt           nb = p->nloc / 3, cs, ce, maxc = 0, ncols, *dnz, *onz, *buf;
  const PetscInt    *cols;
  const PetscScalar *vals;
  Mat                B;

  PetscFunctionBegin;
  PetscCall(MatGetOwnershipRangeColumn(p->Ht, &cs, &ce));
  for (PetscInt r = p->rstart; r < p->rstart + p->nloc; r++) {
    PetscCall(MatGetRow(p->Ht, r, &ncols, NULL, NULL));
    maxc = PetscMax(maxc, ncols);
    PetscCall(MatRestoreRow(p->Ht, r, &ncols, NULL, NULL));
  }
  PetscCall(PetscMalloc3(nb + 1, &dnz, nb + 1, &onz, 3 * maxc + 1, &buf));
  for (PetscInt ib = 0; ib < nb; ib++) {
    PetscInt n = 0;
    for (PetscInt d = 0; d < 3; d++) {
      PetscCall(MatGetRow(p->Ht, p->rstart + 3 * ib + d, &ncols, &cols, NULL));
      for (PetscInt c = 0; c < ncols; c++) buf[n++] = cols[c] / 3;
      PetscCall(MatRestoreRow(p->Ht, p->rstart + 3 * ib + d, &ncols, &cols, NULL));
    }
    PetscCall(PetscSortRemoveDupsInt(&n, buf));
    dnz[ib] = onz[ib] = 0;
    for (PetscInt c = 0; c < n; c++) {
      if (buf[c] >= cs / 3 && buf[c] < ce / 3) dnz[ib]++;
      else onz[ib]++;
    }
  }
  PetscCall(MatCreateBAIJ(p->comm, 3, p->nloc, p->nloc, p->ndof, p->ndof, 0, dnz, 0, onz, &B));
  for (PetscInt r = p->rstart; r < p->rstart + p->nloc; r++) {
    PetscCall(MatGetRow(p->Ht, r, &ncols, &cols, &vals));
    PetscCall(MatSetValues(B, 1, &r, ncols, cols, vals, INSERT_VALUES));
    PetscCall(MatRestoreRow(p->Ht, r, &ncols, &cols, &vals));
  }
  PetscCall(MatAssemblyBegin(B, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(B, MAT_FINAL_ASSEMBLY));
  PetscCall(MatSetOption(B, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(PetscFree3(dnz, onz, buf));
  PetscCall(MatDestroy(&p->Ht));
  p->Ht = B;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Shifts Ht by mu in place and sets up the inner solver on it (prefix modes_amg_). */
static PetscErrorCode HMAMGSetUp_Private(HMModes m, HMProj *p, double mu, HMAMGCtx *ctx)
{
  PC        ipc;
  PetscBool isbjacobi, isgamg, subset;
  PetscInt  bs;
  double    t0 = MPI_Wtime();

  PetscFunctionBegin;
  ctx->p = p;
  PetscCall(KSPCreate(p->comm, &ctx->amg));
  PetscCall(KSPSetOptionsPrefix(ctx->amg, "modes_amg_"));
  PetscCall(KSPSetType(ctx->amg, KSPPREONLY));
  PetscCall(KSPGetPC(ctx->amg, &ipc));
  PetscCall(PCSetType(ipc, PCBJACOBI));
  PetscCall(KSPSetFromOptions(ctx->amg));
  PetscCall(PetscObjectTypeCompare((PetscObject)ipc, PCGAMG, &isgamg));
  ctx->gamg = isgamg;
  PetscCall(PetscObjectTypeCompare((PetscObject)ipc, PCBJACOBI, &isbjacobi));
  PetscCall(MatGetBlockSize(p->Ht, &bs));
  if (isbjacobi && bs == 3) {
    /* 3 x 3 blocks (atoms): products and triangular solves about 1.3-1.7x faster than AIJ with inodes; converted in
       place, so Ht stays the only copy (the operator and the residuals use it in this form from here on) */
    PetscCall(HMProjToBAIJ_Private(p));
  }
  PetscCall(MatCreateVecs(p->Ht, &ctx->diag, NULL));
  PetscCall(MatGetDiagonal(p->Ht, ctx->diag));
  PetscCall(MatShift(p->Ht, mu));
  p->hshift = mu;
  PetscCall(KSPSetOperators(ctx->amg, p->Ht, p->Ht));
  if (isgamg) {
    Vec         *dv;
    MatNullSpace nsp;
    /* smoothed aggregation for elasticity: the rigid-body vectors are the near-null space */
    if (bs != 3) PetscCall(MatSetBlockSize(p->Ht, 3));
    PetscCall(MatSetOption(p->Ht, MAT_SPD, PETSC_TRUE));
    PetscCall(HMProjGetRigidVecs(p, &dv));
    PetscCall(MatNullSpaceCreate(p->comm, PETSC_FALSE, p->k, dv, &nsp));
    PetscCall(MatSetNearNullSpace(p->Ht, nsp));
    PetscCall(MatNullSpaceDestroy(&nsp));
    PetscCall(VecDestroyVecs(p->k, &dv));
  }
  PetscCall(KSPSetUp(ctx->amg));
  PetscCall(PetscOptionsHasName(NULL, "modes_amg_sub_", "-pc_type", &subset));
  if (isbjacobi && !subset) {
    KSP     *sub;
    PetscInt nl;
    PetscCall(PCBJacobiGetSubKSP(ipc, &nl, NULL, &sub));
    for (PetscInt i = 0; i < nl; i++) {
      PC spc;
      PetscCall(KSPGetPC(sub[i], &spc));
      PetscCall(PCSetType(spc, PCICC));
    }
  }
  PetscCall(KSPSetUpOnBlocks(ctx->amg));
  {
    PCType t, st = NULL;
    PetscCall(PCGetType(ipc, &t));
    if (isbjacobi) {
      KSP     *sub;
      PetscInt nl;
      PC       spc;
      PetscCall(PCBJacobiGetSubKSP(ipc, &nl, NULL, &sub));
      if (nl > 0) {
        PetscCall(KSPGetPC(sub[0], &spc));
        PetscCall(PCGetType(spc, &st));
      }
    }
    PetscCall(PetscSNPrintf(ctx->desc, sizeof(ctx->desc), "%s%s%s", t, st ? "/" : "", st ? st : ""));
  }
  m->stats.setup_seconds = MPI_Wtime() - t0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Frees the inner solver and gives Ht back its diagonal, bit for bit. */
static PetscErrorCode HMAMGReset_Private(HMAMGCtx *ctx)
{
  HMProj *p = ctx->p;

  PetscFunctionBegin;
  PetscCall(KSPDestroy(&ctx->amg));
  PetscCall(MatDiagonalSet(p->Ht, ctx->diag, INSERT_VALUES));
  PetscCall(VecDestroy(&ctx->diag));
  if (ctx->gamg) {
    PetscCall(MatSetNearNullSpace(p->Ht, NULL));
    PetscCall(MatSetOption(p->Ht, MAT_SPD, PETSC_FALSE));
  }
  p->hshift = 0;
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
  HMAMGCtx  actx;
  PetscInt  nvib = p->ndof - p->k, nev = PetscMin(m->nreq, nvib), bs;
  double    width = PetscMax(p->ub - p->lb, PETSC_SMALL), lest = 0, lerr = 0, mu;
  Mat       A;
  EPS       eps;
  PC        pc;
  PetscBool islobpcg, bsset;
  EPSType   type;

  PetscFunctionBegin;
  bs = HMModesLOBPCGBlockSize_Private(p, nev);
  /* tiny systems: the preconditioner is then a near-exact solve, the preconditioned residuals fall into the search
     space and the Gram matrices lose definiteness (seen on 10-30 atom molecules); the dense route is cheaper there */
  if (bs < 1 || nvib < HM_ITERATIVE_MIN_DOF) {
    PetscCall(HMModesSolveDense_Private(m, p));
    PetscCall(HMModesTruncate_Private(m, p, nev));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMModesEstimateLowest_Private(p, &lest, &lerr));
  /* a small positive floor keeps near-zero (relaxed) spectra away from a singular preconditioner */
  mu = PetscMax(0.0, -lest + 2 * lerr) + 1e-3 * width;
  if (m->amg_shift_set) mu = m->amg_shift;
  PetscCall(HMAMGSetUp_Private(m, p, mu, &actx));

  PetscCall(HMModesShellEPSCreate_Private(m, p, EPSGD, nev, &eps, &A, &pc));
  PetscCall(PCSetType(pc, PCSHELL));
  PetscCall(PCShellSetContext(pc, &actx));
  PetscCall(PCShellSetApply(pc, HMAMGApply_Private));
  PetscCall(PCShellSetName(pc, "P (Ht + mu I)^-1 P, approximated by the modes_amg_ solver"));
  PetscCall(EPSGDSetBlockSize(eps, HM_GD_BLOCK));
  PetscCall(EPSSetFromOptions(eps));
  PetscCall(PetscObjectTypeCompare((PetscObject)eps, EPSLOBPCG, &islobpcg));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-eps_lobpcg_blocksize", &bsset));
  if (islobpcg && !bsset) PetscCall(EPSLOBPCGSetBlockSize(eps, bs));
  PetscCall(HMModesShellEPSSolve_Private(m, p, eps, nev));
  PetscCall(EPSGetType(eps, &type));
  PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", %s + P (Ht + mu I)^-1 P by %s (shift %.3g, %" PetscInt_FMT " iterations)", nev, islobpcg ? "LOBPCG" : (strcmp(type, EPSGD) ? type : "Davidson"), actx.desc, mu, m->stats.iterations));
  PetscCall(EPSDestroy(&eps));
  PetscCall(MatDestroy(&A));
  PetscCall(HMAMGReset_Private(&actx));
  PetscFunctionReturn(PETSC_SUCCESS);
}

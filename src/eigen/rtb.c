/* Rigid-block (RTB) reduction of the lowest-mode problem (-modes_basis rtb). */
#include "eigenimpl.h"
#include "sys/sysimpl.h"
#include <petscblaslapack.h>

/*
  The atoms are split into blocks: the residues of a PDB file (chain, residue number and insertion code of the atom
  labels; a run of consecutive atoms with the same three is one block), otherwise the cells of a grid laid over the
  periodic cell (fractional coordinates) or over the bounding box, sized for about -modes_block_size atoms per cell.
  Both depend on the input alone, not on the rank count. Each block contributes its rigid-body motions in
  mass-weighted coordinates: 3 translations and the rotations about its principal axes through its centre of mass
  (positions unwrapped by the minimum image from the block's first atom), orthonormal by construction; 1 atom gives
  3 vectors, a collinear block 5. The blocks are disjoint, so the columns of the sparse projector P (3N x nb) are
  orthonormal, and the mass-weighted Hessian reduces to Hr = P^T Ht P (MatPtAP). The global rigid-body directions
  are combinations of block vectors (G = P^T V); the reduced problem is the Eckart-projected Hr with G in the
  place of V, solved by the direct lowest-mode solver (or -modes_solver krylovschur|lobpcg). Its Ritz vectors are
  prolonged with P. Ritz values are upper bounds of the exact eigenvalues (Cauchy interlacing), so the negative
  ones count the imaginary modes from below. With -modes_rtb_refine the prolonged vectors start the iterative
  full-space solver (EPSSetInitialSpace), whose modes are then exact.
*/
#include "rtbimpl.h"

/* The reduced problem as an HMProj: Hr = P^T Ht P (symmetrised), G = P^T V orthonormalised in place of V. */
static PetscErrorCode HMRTBReduce_Private(HMProj *p, Mat P, HMProj **out)
{
  HMProj  *q;
  Mat      Hr, T;
  Vec      g;
  PetscInt rend;

  PetscFunctionBegin;
  PetscCall(MatPtAP(p->Ht, P, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &Hr));
  PetscCall(MatTranspose(Hr, MAT_INITIAL_MATRIX, &T));
  PetscCall(MatAXPY(Hr, 1.0, T, DIFFERENT_NONZERO_PATTERN));
  PetscCall(MatScale(Hr, 0.5));
  PetscCall(MatDestroy(&T));
  PetscCall(MatSetOption(Hr, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(PetscNew(&q));
  q->comm     = p->comm;
  q->Ht       = Hr;
  q->icntl14  = p->icntl14;
  q->linear   = p->linear;
  q->periodic = p->periodic;
  PetscCall(MatGetSize(Hr, &q->ndof, NULL));
  PetscCall(MatGetOwnershipRange(Hr, &q->rstart, &rend));
  q->nloc = rend - q->rstart;
  q->k    = PetscMin(p->k, q->ndof);
  PetscCall(MatCreateVecs(Hr, &q->wx, &q->wy));
  PetscCall(PetscMalloc1(q->nloc + 1, &q->minv_sqrt));
  for (PetscInt i = 0; i < q->nloc; i++) q->minv_sqrt[i] = 1.0;
  PetscCall(HMProjSetBounds_Private(q, Hr));
  /* G = P^T V: exact combinations of block vectors when every block keeps its rotations */
  PetscCall(PetscCalloc1(q->nloc * q->k + 1, &q->V));
  PetscCall(PetscMalloc1(q->nloc * q->k + 1, &q->W));
  PetscCall(VecDuplicate(q->wx, &g));
  for (PetscInt j = 0; j < q->k; j++) {
    PetscCall(HMProjGetColumn_Private(p, j, p->wx));
    PetscCall(MatMultTranspose(P, p->wx, g));
    PetscCall(HMVecCopyToArray_Private(g, q->V + j * q->nloc));
  }
  PetscCall(VecDestroy(&g));
  PetscCall(HMProjOrthonormalize_Private(q, "has no component in the RTB basis"));
  PetscCall(HMProjSetGram_Private(q, Hr));
  *out = q;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET(HMModes, Basis, HMModesBasis, basis)

PetscErrorCode HMModesSetBlockSize(HMModes m, PetscInt n)
{
  PetscFunctionBegin;
  PetscCheck(n >= 1, m->comm, PETSC_ERR_ARG_OUTOFRANGE, "-modes_block_size must be positive, got %" PetscInt_FMT, n);
  m->block_size = n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET(HMModes, RTBRefine, PetscBool, rtb_refine)

PetscErrorCode HMModesSolveRTB_Private(HMModes m, HMProj *p, const HMModesAtoms *at)
{
  HMSystem    sys = at->sys;
  PetscBool   dist, residue;
  HMProj     *q = NULL;
  HMModes     r;
  Mat         P, Xf;
  PetscInt    n, nr, its, nb;
  char        what[64];
  const char *rsolver;

  PetscFunctionBegin;
  /* a distributed system (each rank the atoms of its rows): blocks and projector built without gathering it */
  PetscCall(HMSystemGetDistribution(sys, &dist, NULL, NULL));
  if (dist) PetscCall(HMRTBProjectorDistributed_Private(p, sys, at->N, m->block_size, &P, &nb, &residue));
  else {
    HMBlocks B;

    PetscCall(HMBlocksBuild_Private(sys, m->block_size, &B));
    PetscCall(HMRTBProjector_Private(p, sys, &B, &P));
    nb      = B.nb;
    residue = B.residue;
    PetscCall(HMBlocksDestroy_Private(&B));
  }
  PetscCall(HMRTBReduce_Private(p, P, &q));
  nr = q->ndof;
  PetscCall(PetscSNPrintf(what, sizeof(what), "%" PetscInt_FMT " %s", nb, residue ? "residues" : "spatial blocks"));
  PetscCall(PetscInfo(P, "RTB: %s, %" PetscInt_FMT " reduced dof\n", what, nr));
  /* the reduced problem with an existing lowest-mode solver: direct unless krylovschur/lobpcg is asked for (GAMG
     needs 3 dof per node, which 3/5/6 vectors per block do not give) */
  PetscCall(HMModesCreate(m->comm, &r));
  r->nreq    = m->nreq;
  r->tol     = m->tol;
  r->icntl14 = m->icntl14;
  r->solver  = (m->solver == HM_MODES_SOLVER_KRYLOVSCHUR || m->solver == HM_MODES_SOLVER_LOBPCG) ? m->solver : HM_MODES_SOLVER_DIRECT;
  r->nimag   = -1;
  rsolver    = HMModesSolvers[r->solver];
  PetscCall(HMModesSolveLowest_Private(r, q));
  its = r->stats.iterations;
  n   = r->n;
  PetscCall(MatMatMult(P, r->X, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &Xf));
  PetscCall(HMModesAllocate_Private(m, p, n));
  for (PetscInt j = 0; j < n; j++) {
    Vec       xs, xd;
    PetscReal nrm;
    m->lambda[j] = r->lambda[j];
    PetscCall(MatDenseGetColumnVecRead(Xf, j, &xs));
    PetscCall(MatDenseGetColumnVecWrite(m->X, j, &xd));
    PetscCall(VecCopy(xs, xd));
    PetscCall(MatDenseRestoreColumnVecRead(Xf, j, &xs));
    /* a block that dropped a near-degenerate rotation leaves a trace of the rigid-body space: project it out */
    PetscCall(HMProjProject(p, xd));
    PetscCall(VecNorm(xd, NORM_2, &nrm));
    PetscCheck(nrm > 0, p->comm, PETSC_ERR_PLIB, "RTB mode %" PetscInt_FMT " lies in the rigid-body space", j);
    PetscCall(VecScale(xd, 1.0 / nrm));
    PetscCall(MatDenseRestoreColumnVecWrite(m->X, j, &xd));
  }
  PetscCall(MatDestroy(&Xf));
  PetscCall(HMModesDestroy(&r));
  PetscCall(HMProjDestroy(&q));
  PetscCall(MatDestroy(&P));
  if (m->rtb_refine) {
    /* the prolonged vectors start the full-space iterative solver: its modes are exact */
    if (n > 0) PetscCall(VecDuplicateVecs(p->wx, n, &m->init));
    m->ninit = n;
    for (PetscInt j = 0; j < n; j++) {
      Vec x;
      PetscCall(MatDenseGetColumnVecRead(m->X, j, &x));
      PetscCall(VecCopy(x, m->init[j]));
      PetscCall(MatDenseRestoreColumnVecRead(m->X, j, &x));
    }
    PetscCall(HMModesSolveWith_Private(m, p, HMModesSolveIterative_Private));
    if (n > 0) PetscCall(VecDestroyVecs(m->ninit, &m->init));
    m->ninit = 0;
    PetscCall(PetscStrlcat(m->method, ", started from RTB (", sizeof(m->method)));
    PetscCall(PetscStrlcat(m->method, what, sizeof(m->method)));
    PetscCall(PetscStrlcat(m->method, ")", sizeof(m->method)));
  } else {
    m->approx           = PETSC_TRUE;
    m->stats.iterations = its;
    PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "lowest %" PetscInt_FMT ", RTB, approximate (%s, %" PetscInt_FMT " reduced dof, %s)", n, what, nr, rsolver));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

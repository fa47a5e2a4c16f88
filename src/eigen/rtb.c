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
#define HM_RTB_LINEAR_TOL 1e-5 /* a block rotation with a principal moment below this fraction of the largest is absent */

typedef struct {
  PetscInt  n, nb;   /* atoms, blocks */
  PetscInt *start;   /* nb + 1 offsets into atoms */
  PetscInt *atoms;   /* members of each block in ascending order; blocks ordered by their first atom */
  PetscBool residue; /* blocks are PDB residues */
} HMBlocks;

static PetscErrorCode HMBlocksDestroy_Private(HMBlocks *b)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(b->start));
  PetscCall(PetscFree(b->atoms));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static void HMCellInverse(const double c[9], double inv[9])
{
  const double *a = c, *b = c + 3, *d = c + 6;
  double        det = a[0] * (b[1] * d[2] - b[2] * d[1]) - a[1] * (b[0] * d[2] - b[2] * d[0]) + a[2] * (b[0] * d[1] - b[1] * d[0]);
  /* s = x inv: the columns of inv are the reciprocal vectors */
  inv[0] = (b[1] * d[2] - b[2] * d[1]) / det;
  inv[3] = (b[2] * d[0] - b[0] * d[2]) / det;
  inv[6] = (b[0] * d[1] - b[1] * d[0]) / det;
  inv[1] = (d[1] * a[2] - d[2] * a[1]) / det;
  inv[4] = (d[2] * a[0] - d[0] * a[2]) / det;
  inv[7] = (d[0] * a[1] - d[1] * a[0]) / det;
  inv[2] = (a[1] * b[2] - a[2] * b[1]) / det;
  inv[5] = (a[2] * b[0] - a[0] * b[2]) / det;
  inv[8] = (a[0] * b[1] - a[1] * b[0]) / det;
}

/* blk[i] = block of atom i, numbered in the order of the blocks' first atoms; then the member lists. */
static PetscErrorCode HMBlocksBuild_Private(HMSystem sys, PetscInt bsz, HMBlocks *B)
{
  const HMAtomLabel *lab;
  const double      *pos;
  PetscInt           n, *blk, *cnt;
  PetscBool          hascell, pbc[3], periodic;
  double             cell[9], inv[9];

  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomLabels(sys, &lab));
  PetscCall(HMSystemGetCell(sys, &hascell, cell, pbc));
  periodic = (PetscBool)(hascell && (pbc[0] || pbc[1] || pbc[2]));
  PetscCall(PetscMalloc1(n + 1, &blk));
  B->n       = n;
  B->nb      = 0;
  B->residue = (PetscBool)(lab != NULL);
  if (lab) {
    for (PetscInt i = 0; i < n; i++) {
      if (i == 0 || lab[i].chain != lab[i - 1].chain || lab[i].resid != lab[i - 1].resid || lab[i].icode != lab[i - 1].icode) B->nb++;
      blk[i] = B->nb - 1;
    }
  } else {
    double     lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL}, L[3], scale[3] = {1, 1, 1}, vol = 1, side;
    PetscInt   ng[3], *map;
    PetscInt64 ncell;

    if (periodic) {
      HMCellInverse(cell, inv);
      for (PetscInt d = 0; d < 3; d++) scale[d] = PetscSqrtReal(cell[3 * d] * cell[3 * d] + cell[3 * d + 1] * cell[3 * d + 1] + cell[3 * d + 2] * cell[3 * d + 2]);
    }
    /* coordinate s: fractional in a periodic cell (wrapped along periodic axes), else Cartesian */
#define HM_RTB_COORD(i, d) (periodic ? pos[3 * (i)] * inv[(d)] + pos[3 * (i) + 1] * inv[3 + (d)] + pos[3 * (i) + 2] * inv[6 + (d)] : pos[3 * (i) + (d)])
    for (PetscInt i = 0; i < n; i++)
      for (PetscInt d = 0; d < 3; d++) {
        double s = HM_RTB_COORD(i, d);
        lo[d]    = PetscMin(lo[d], s);
        hi[d]    = PetscMax(hi[d], s);
      }
    for (PetscInt d = 0; d < 3; d++) {
      if (periodic && pbc[d]) lo[d] = 0, hi[d] = 1;
      L[d] = (hi[d] - lo[d]) * scale[d];
      vol *= PetscMax(L[d], 1.0);
    }
    side  = PetscCbrtReal(vol * (double)bsz / (double)PetscMax(n, 1));
    ncell = 1;
    for (PetscInt d = 0; d < 3; d++) {
      ng[d] = PetscMax(1, (PetscInt)PetscFloorReal(L[d] / side + 0.5));
      ncell *= ng[d];
    }
    PetscCheck(ncell <= 4 * (PetscInt64)n + 8, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB grid of %" PetscInt64_FMT " cells for %" PetscInt_FMT " atoms", ncell, n);
    PetscCall(PetscMalloc1(ncell, &map));
    for (PetscInt64 c = 0; c < ncell; c++) map[c] = -1;
    for (PetscInt i = 0; i < n; i++) {
      PetscInt64 c = 0;
      for (PetscInt d = 0; d < 3; d++) {
        double   s = HM_RTB_COORD(i, d), u;
        PetscInt g;
        if (periodic && pbc[d]) u = s - PetscFloorReal(s);
        else u = hi[d] > lo[d] ? (s - lo[d]) / (hi[d] - lo[d]) : 0.0;
        g = PetscMin(ng[d] - 1, PetscMax(0, (PetscInt)(u * ng[d])));
        c = c * ng[d] + g;
      }
#undef HM_RTB_COORD
      if (map[c] < 0) map[c] = B->nb++;
      blk[i] = map[c];
    }
    PetscCall(PetscFree(map));
  }
  PetscCall(PetscCalloc1(B->nb + 1, &B->start));
  PetscCall(PetscMalloc1(n + 1, &B->atoms));
  for (PetscInt i = 0; i < n; i++) B->start[blk[i] + 1]++;
  for (PetscInt b = 0; b < B->nb; b++) B->start[b + 1] += B->start[b];
  PetscCall(PetscMalloc1(B->nb + 1, &cnt));
  for (PetscInt b = 0; b < B->nb; b++) cnt[b] = B->start[b];
  for (PetscInt i = 0; i < n; i++) B->atoms[cnt[blk[i]]++] = i;
  PetscCall(PetscFree(cnt));
  PetscCall(PetscFree(blk));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Rigid-body frame of block b: minimum-image positions relative to its centre of mass (r, 3 per member), and the
   principal axes whose moments count (axes[q] scaled by 1/sqrt(moment)). Returns the number of vectors, 3 + nrot. */
static PetscErrorCode HMBlockFrame_Private(HMBlocks *B, PetscInt b, const double pos[], const double mass[], PetscBool periodic, const PetscBool pbc[], const double cell[], const double inv[], double r[], double *Mtot, double axes[3][3], PetscInt *nvec)
{
  PetscInt     na = B->start[b + 1] - B->start[b], a0 = B->atoms[B->start[b]], nrot = 0;
  double       com[3] = {0, 0, 0}, M = 0, Iten[9] = {0}, mom[3], work[16];
  PetscBLASInt three = 3, lwork = 16, info;

  PetscFunctionBegin;
  for (PetscInt j = 0; j < na; j++) {
    PetscInt a = B->atoms[B->start[b] + j];
    double  *x = r + 3 * j;
    for (PetscInt d = 0; d < 3; d++) x[d] = pos[3 * a + d] - pos[3 * a0 + d];
    if (periodic) {
      double s[3];
      for (PetscInt d = 0; d < 3; d++) s[d] = x[0] * inv[d] + x[1] * inv[3 + d] + x[2] * inv[6 + d];
      for (PetscInt d = 0; d < 3; d++)
        if (pbc[d]) s[d] -= PetscFloorReal(s[d] + 0.5);
      for (PetscInt d = 0; d < 3; d++) x[d] = s[0] * cell[d] + s[1] * cell[3 + d] + s[2] * cell[6 + d];
    }
    M += mass[a];
    for (PetscInt d = 0; d < 3; d++) com[d] += mass[a] * x[d];
  }
  for (PetscInt d = 0; d < 3; d++) com[d] /= M;
  for (PetscInt j = 0; j < na; j++) {
    PetscInt a = B->atoms[B->start[b] + j];
    double  *x = r + 3 * j, r2;
    for (PetscInt d = 0; d < 3; d++) x[d] -= com[d];
    r2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2];
    for (PetscInt d = 0; d < 3; d++)
      for (PetscInt e = 0; e < 3; e++) Iten[3 * d + e] += mass[a] * ((d == e ? r2 : 0.0) - x[d] * x[e]);
  }
  *Mtot = M;
  if (na > 1) {
    PetscCallBLAS("LAPACKsyev", LAPACKsyev_("V", "U", &three, Iten, &three, mom, work, &lwork, &info));
    PetscCheck(info == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "LAPACK dsyev failed on the inertia tensor of a block (info %d)", (int)info);
    for (PetscInt q = 0; q < 3; q++)
      if (mom[q] > HM_RTB_LINEAR_TOL * mom[2] && mom[q] > 0) {
        for (PetscInt d = 0; d < 3; d++) axes[nrot][d] = Iten[3 * q + d] / PetscSqrtReal(mom[q]);
        nrot++;
      }
  }
  *nvec = 3 + nrot;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The projector P: rows with Ht's layout, the columns of a block owned by the rank of its first atom. */
static PetscErrorCode HMRTBProjector_Private(HMProj *p, HMSystem sys, HMBlocks *B, Mat *Pout)
{
  const double *pos, *mass;
  PetscBool     hascell, pbc[3], periodic;
  double        cell[9], inv[9] = {0}, *r, axes[3][3], M;
  PetscInt      a0 = p->rstart / 3, a1 = (p->rstart + p->nloc) / 3, *off, ncloc = 0, maxna = 0, nv;
  Mat           P;

  PetscFunctionBegin;
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetMasses(sys, &mass));
  PetscCall(HMSystemGetCell(sys, &hascell, cell, pbc));
  periodic = (PetscBool)(hascell && (pbc[0] || pbc[1] || pbc[2]));
  if (periodic) HMCellInverse(cell, inv);
  for (PetscInt b = 0; b < B->nb; b++) maxna = PetscMax(maxna, B->start[b + 1] - B->start[b]);
  PetscCall(PetscMalloc1(3 * maxna + 3, &r));
  PetscCall(PetscMalloc1(B->nb + 1, &off));
  off[0] = 0;
  for (PetscInt b = 0; b < B->nb; b++) {
    PetscInt first = B->atoms[B->start[b]];
    PetscCall(HMBlockFrame_Private(B, b, pos, mass, periodic, pbc, cell, inv, r, &M, axes, &nv));
    off[b + 1] = off[b] + nv;
    if (first >= a0 && first < a1) ncloc += nv;
  }
  PetscCall(MatCreateAIJ(p->comm, p->nloc, ncloc, p->ndof, off[B->nb], 6, NULL, 6, NULL, &P));
  PetscCall(MatSetOption(P, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_TRUE));
  for (PetscInt b = 0; b < B->nb; b++) {
    PetscInt  na    = B->start[b + 1] - B->start[b], cols[6];
    PetscBool touch = PETSC_FALSE;
    for (PetscInt j = 0; j < na && !touch; j++) touch = (PetscBool)(B->atoms[B->start[b] + j] >= a0 && B->atoms[B->start[b] + j] < a1);
    if (!touch) continue;
    PetscCall(HMBlockFrame_Private(B, b, pos, mass, periodic, pbc, cell, inv, r, &M, axes, &nv));
    for (PetscInt c = 0; c < nv; c++) cols[c] = off[b] + c;
    for (PetscInt j = 0; j < na; j++) {
      PetscInt a  = B->atoms[B->start[b] + j];
      double   sm = PetscSqrtReal(mass[a]), *x = r + 3 * j, v[3][6];
      if (a < a0 || a >= a1) continue;
      for (PetscInt d = 0; d < 3; d++)
        for (PetscInt c = 0; c < 3; c++) v[d][c] = d == c ? sm / PetscSqrtReal(M) : 0.0;
      for (PetscInt q = 0; q < nv - 3; q++) {
        const double *e = axes[q];
        v[0][3 + q]     = sm * (e[1] * x[2] - e[2] * x[1]);
        v[1][3 + q]     = sm * (e[2] * x[0] - e[0] * x[2]);
        v[2][3 + q]     = sm * (e[0] * x[1] - e[1] * x[0]);
      }
      for (PetscInt d = 0; d < 3; d++) {
        PetscInt row = 3 * a + d;
        PetscCall(MatSetValues(P, 1, &row, nv, cols, v[d], INSERT_VALUES));
      }
    }
  }
  PetscCall(MatAssemblyBegin(P, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(P, MAT_FINAL_ASSEMBLY));
  PetscCall(PetscFree(off));
  PetscCall(PetscFree(r));
  *Pout = P;
  PetscFunctionReturn(PETSC_SUCCESS);
}

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
  HMSystem    sys = at->sys, whole = NULL;
  PetscBool   dist;
  HMBlocks    B;
  HMProj     *q = NULL;
  HMModes     r;
  Mat         P, Xf;
  PetscInt    n, nr, its;
  char        what[64];
  const char *rsolver;

  PetscFunctionBegin;
  /* the blocks (residues, spatial cells) need every atom: a distributed system is gathered on every rank here */
  PetscCall(HMSystemGetDistribution(sys, &dist, NULL, NULL));
  if (dist) PetscCall(HMSystemRedistribute(m->comm, sys, 0, at->N, &whole));
  if (whole) sys = whole;
  PetscCall(HMBlocksBuild_Private(sys, m->block_size, &B));
  PetscCall(HMRTBProjector_Private(p, sys, &B, &P));
  PetscCall(HMSystemDestroy(&whole));
  PetscCall(HMRTBReduce_Private(p, P, &q));
  nr = q->ndof;
  PetscCall(PetscSNPrintf(what, sizeof(what), "%" PetscInt_FMT " %s", B.nb, B.residue ? "residues" : "spatial blocks"));
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
  PetscCall(HMBlocksDestroy_Private(&B));
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

/* The blocks of the rigid-block (RTB) reduction and the projector onto their rigid-body motions (rtb.c). */
#include "rtbimpl.h"
#include "sys/sysimpl.h"
#include <petscblaslapack.h>
#include <stdint.h>

#define HM_RTB_LINEAR_TOL 1e-5 /* a block rotation with a principal moment below this fraction of the largest is absent */

PetscErrorCode HMBlocksDestroy_Private(HMBlocks *b)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(b->start));
  PetscCall(PetscFree(b->atoms));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The grid of spatial blocks: fractional coordinates in a periodic cell (wrapped along its periodic axes), else
   Cartesian ones; about bsz atoms per cell of the bounding box. */
typedef struct {
  PetscBool  periodic, pbc[3];
  double     cell[9], inv[9], scale[3], lo[3], hi[3];
  PetscInt   ng[3];
  PetscInt64 ncell;
} HMGrid;

static void GridInit(HMSystem sys, HMGrid *g)
{
  PetscBool hascell;

  (void)HMSystemGetCell(sys, &hascell, g->cell, g->pbc);
  g->periodic = (PetscBool)(hascell && (g->pbc[0] || g->pbc[1] || g->pbc[2]));
  for (int d = 0; d < 3; d++) {
    g->scale[d] = 1;
    g->lo[d]    = PETSC_MAX_REAL;
    g->hi[d]    = -PETSC_MAX_REAL;
  }
  if (g->periodic) {
    HMMat3Inverse(g->cell, g->inv);
    for (int d = 0; d < 3; d++) g->scale[d] = PetscSqrtReal(g->cell[3 * d] * g->cell[3 * d] + g->cell[3 * d + 1] * g->cell[3 * d + 1] + g->cell[3 * d + 2] * g->cell[3 * d + 2]);
  }
}

static double GridCoord(const HMGrid *g, const double x[3], int d)
{
  return g->periodic ? x[0] * g->inv[d] + x[1] * g->inv[3 + d] + x[2] * g->inv[6 + d] : x[d];
}

static void GridBounds(HMGrid *g, PetscInt n, const double pos[])
{
  for (PetscInt i = 0; i < n; i++)
    for (int d = 0; d < 3; d++) {
      const double s = GridCoord(g, pos + 3 * i, d);

      g->lo[d] = PetscMin(g->lo[d], s);
      g->hi[d] = PetscMax(g->hi[d], s);
    }
}

/* The cell counts from the bounds of all N atoms. */
static PetscErrorCode GridFinish(HMGrid *g, PetscInt N, PetscInt bsz)
{
  double L[3], vol = 1, side;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++) {
    if (g->periodic && g->pbc[d]) g->lo[d] = 0, g->hi[d] = 1;
    L[d] = (g->hi[d] - g->lo[d]) * g->scale[d];
    vol *= PetscMax(L[d], 1.0);
  }
  side     = PetscCbrtReal(vol * (double)bsz / (double)PetscMax(N, 1));
  g->ncell = 1;
  for (int d = 0; d < 3; d++) {
    g->ng[d] = PetscMax(1, (PetscInt)PetscFloorReal(L[d] / side + 0.5));
    g->ncell *= g->ng[d];
  }
  PetscCheck(g->ncell <= 4 * (PetscInt64)N + 8, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB grid of %" PetscInt64_FMT " cells for %" PetscInt_FMT " atoms", g->ncell, N);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscInt64 GridCell(const HMGrid *g, const double x[3])
{
  PetscInt64 c = 0;

  for (int d = 0; d < 3; d++) {
    const double s = GridCoord(g, x, d);
    double       u;
    PetscInt     k;

    if (g->periodic && g->pbc[d]) u = s - PetscFloorReal(s);
    else u = g->hi[d] > g->lo[d] ? (s - g->lo[d]) / (g->hi[d] - g->lo[d]) : 0.0;
    k = PetscMin(g->ng[d] - 1, PetscMax(0, (PetscInt)(u * g->ng[d])));
    c = c * g->ng[d] + k;
  }
  return c;
}

/* A new residue starts at b after a (different chain, residue number or insertion code). */
static PetscBool NewResidue(const HMAtomLabel *a, const HMAtomLabel *b)
{
  return (PetscBool)(a->chain != b->chain || a->resid != b->resid || a->icode != b->icode);
}

/* blk[i] = block of atom i, numbered in the order of the blocks' first atoms; then the member lists. */
PetscErrorCode HMBlocksBuild_Private(HMSystem sys, PetscInt bsz, HMBlocks *B)
{
  const HMAtomLabel *lab;
  const double      *pos;
  PetscInt           n, *blk, *cnt;

  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomLabels(sys, &lab));
  PetscCall(PetscMalloc1(n + 1, &blk));
  B->n       = n;
  B->nb      = 0;
  B->residue = (PetscBool)(lab != NULL);
  if (lab) {
    for (PetscInt i = 0; i < n; i++) {
      if (i == 0 || NewResidue(&lab[i - 1], &lab[i])) B->nb++;
      blk[i] = B->nb - 1;
    }
  } else {
    HMGrid    g;
    PetscInt *map;

    GridInit(sys, &g);
    GridBounds(&g, n, pos);
    PetscCall(GridFinish(&g, n, bsz));
    PetscCall(PetscMalloc1(g.ncell, &map));
    for (PetscInt64 c = 0; c < g.ncell; c++) map[c] = -1;
    for (PetscInt i = 0; i < n; i++) {
      const PetscInt64 c = GridCell(&g, pos + 3 * i);

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

/* The rows of one atom (mass m, position x relative to its block's centre of mass) in its block's nv columns:
   the mass-weighted unit translations and rotations about the principal axes. */
static void BlockRows(double m, double M, const double axes[3][3], PetscInt nv, const double x[3], double v[3][6])
{
  const double sm = PetscSqrtReal(m);

  for (PetscInt d = 0; d < 3; d++)
    for (PetscInt c = 0; c < 3; c++) v[d][c] = d == c ? sm / PetscSqrtReal(M) : 0.0;
  for (PetscInt q = 0; q < nv - 3; q++) {
    const double *e = axes[q];
    v[0][3 + q]     = sm * (e[1] * x[2] - e[2] * x[1]);
    v[1][3 + q]     = sm * (e[2] * x[0] - e[0] * x[2]);
    v[2][3 + q]     = sm * (e[0] * x[1] - e[1] * x[0]);
  }
}

/* The projector P: rows with Ht's layout, the columns of a block owned by the rank of its first atom. */
PetscErrorCode HMRTBProjector_Private(HMProj *p, HMSystem sys, HMBlocks *B, Mat *Pout)
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
  if (periodic) HMMat3Inverse(cell, inv);
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
      PetscInt a = B->atoms[B->start[b] + j];
      double   v[3][6];
      if (a < a0 || a >= a1) continue;
      BlockRows(mass[a], M, axes, nv, r + 3 * j, v);
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

/* ---------------------------------------------------------------- distributed structure */
/* Records of rec bytes to the ranks dest[] (one all-to-all); *rbuf: the records received, ordered by source rank,
   *rfrom: the source of each. */
static PetscErrorCode Exchange(MPI_Comm comm, size_t rec, PetscInt n, const void *buf, const PetscMPIInt dest[], PetscInt *nr, void **rbuf, PetscMPIInt **rfrom)
{
  PetscMPIInt size, brec;
  PetscInt   *cnt, *next;
  char       *sbuf;
  HMExchange  x;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(PetscMPIIntCast((PetscInt64)rec, &brec));
  PetscCall(PetscCalloc2(size, &cnt, size, &next));
  for (PetscInt k = 0; k < n; k++) cnt[dest[k]]++;
  PetscCall(HMExchangeCreate(comm, cnt, &x));
  PetscCall(PetscMalloc1(n * rec + 1, &sbuf));
  for (PetscMPIInt r = 0; r < size; r++) next[r] = x.sdisp[r];
  for (PetscInt k = 0; k < n; k++) PetscCall(PetscMemcpy(sbuf + rec * (size_t)next[dest[k]]++, (const char *)buf + rec * (size_t)k, rec));
  *nr = x.nrecv;
  PetscCall(PetscMalloc1(x.nrecv * rec + 1, (char **)rbuf));
  PetscCall(PetscMalloc1(x.nrecv + 1, rfrom));
  PetscCall(HMExchangeForward(&x, MPI_BYTE, brec, sbuf, *rbuf));
  for (PetscMPIInt r = 0; r < size; r++)
    for (PetscInt k = x.rdisp[r]; k < x.rdisp[r + 1]; k++) (*rfrom)[k] = r;
  PetscCall(PetscFree(sbuf));
  PetscCall(PetscFree2(cnt, next));
  PetscCall(HMExchangeDestroy(&x));
  PetscFunctionReturn(PETSC_SUCCESS);
}

typedef struct {
  PetscInt64 key, val; /* a cell and an atom, or a cell and a block */
} KeyVal;

static int CompareKeyVal(const void *pa, const void *pb)
{
  const KeyVal *a = (const KeyVal *)pa, *b = (const KeyVal *)pb;

  if (a->key != b->key) return (a->key > b->key) - (a->key < b->key);
  return (a->val > b->val) - (a->val < b->val);
}

/* The value stored for key in a list sorted by key (one entry per key). */
static PetscInt64 LookUp(const KeyVal *kv, PetscInt n, PetscInt64 key)
{
  PetscInt lo = 0, hi = n - 1;

  while (lo < hi) {
    const PetscInt mid = lo + (hi - lo) / 2;

    if (kv[mid].key < key) lo = mid + 1;
    else hi = mid;
  }
  return kv[lo].val;
}

/* q[] (sorted by key, distinct keys on this rank): each key goes to the rank key % P, which answers with the smallest
   val any rank sent for it; on return q[k].val is that minimum. Two all-to-alls, O(nq) per rank. */
static PetscErrorCode ReduceMinByKey(MPI_Comm comm, KeyVal *q, PetscInt nq)
{
  PetscMPIInt size, *dest, *from, *from2;
  KeyVal     *got, *tab, *back;
  PetscInt    ngot, nback, ntab = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(PetscMalloc1(nq + 1, &dest));
  for (PetscInt k = 0; k < nq; k++) dest[k] = (PetscMPIInt)(q[k].key % size);
  PetscCall(Exchange(comm, sizeof(KeyVal), nq, q, dest, &ngot, (void **)&got, &from));
  PetscCall(PetscMalloc1(ngot + 1, &tab));
  PetscCall(PetscArraycpy(tab, got, ngot));
  qsort(tab, (size_t)ngot, sizeof(KeyVal), CompareKeyVal);
  for (PetscInt k = 0; k < ngot; k++) /* the first (smallest) entry of each key */
    if (!ntab || tab[ntab - 1].key != tab[k].key) tab[ntab++] = tab[k];
  for (PetscInt k = 0; k < ngot; k++) got[k].val = LookUp(tab, ntab, got[k].key);
  PetscCall(Exchange(comm, sizeof(KeyVal), ngot, got, from, &nback, (void **)&back, &from2));
  PetscCheck(nback == nq, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB blocks: %" PetscInt_FMT " answers to %" PetscInt_FMT " questions", nback, nq);
  qsort(back, (size_t)nback, sizeof(KeyVal), CompareKeyVal); /* grouped by owner: back in key order */
  for (PetscInt k = 0; k < nq; k++) q[k].val = back[k].val;
  PetscCall(PetscFree(dest));
  PetscCall(PetscFree(tab));
  PetscCall(PetscFree(got));
  PetscCall(PetscFree(from));
  PetscCall(PetscFree(back));
  PetscCall(PetscFree(from2));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The block of each of this rank's atoms (a0 .. a0 + nl - 1), numbered in the order of the blocks' first atoms as
   HMBlocksBuild_Private numbers them; *nf: blocks whose first atom is here, *base: the number of the first of them. */
static PetscErrorCode LocalBlocks(MPI_Comm comm, HMSystem sys, PetscInt N, PetscInt bsz, PetscInt a0, PetscInt nl, PetscInt64 blk[], PetscInt *nf, PetscInt64 *base, PetscBool *residue)
{
  const HMAtomLabel *lab;
  const double      *pos;
  PetscMPIInt        rank, size;
  PetscInt64         nf64 = 0, cnt = 0;
  PetscBool         *first;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomLabels(sys, &lab));
  *residue = (PetscBool)(lab != NULL);
  PetscCall(PetscMalloc1(nl + 1, &first));
  if (lab) {
    struct {
      int         has;
      HMAtomLabel last;
    } mine, *all;
    const HMAtomLabel *prev = NULL;

    PetscCall(PetscMemzero(&mine, sizeof(mine)));
    mine.has = nl > 0;
    if (nl) mine.last = lab[nl - 1];
    PetscCall(PetscMalloc1(size, &all));
    PetscCallMPI(MPI_Allgather(&mine, (PetscMPIInt)sizeof(mine), MPI_BYTE, all, (PetscMPIInt)sizeof(mine), MPI_BYTE, comm));
    for (PetscMPIInt r = 0; r < rank; r++)
      if (all[r].has) prev = &all[r].last;
    for (PetscInt k = 0; k < nl; k++) {
      first[k] = (PetscBool)(k ? NewResidue(&lab[k - 1], &lab[k]) : !prev || NewResidue(prev, &lab[0]));
      nf64 += first[k];
    }
    PetscCallMPI(MPI_Exscan(&nf64, base, 1, MPI_INT64_T, MPI_SUM, comm));
    if (!rank) *base = 0;
    for (PetscInt k = 0; k < nl; k++) {
      cnt += first[k];
      blk[k] = *base + cnt - 1;
    }
    PetscCall(PetscFree(all));
  } else {
    HMGrid      g;
    KeyVal     *q;
    PetscInt    nq = 0;
    PetscInt64 *c, *num;

    GridInit(sys, &g);
    GridBounds(&g, nl, pos);
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, g.lo, 3, MPI_DOUBLE, MPI_MIN, comm));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, g.hi, 3, MPI_DOUBLE, MPI_MAX, comm));
    PetscCall(GridFinish(&g, N, bsz));
    PetscCall(PetscMalloc3(nl + 1, &c, nl + 1, &num, nl + 1, &q));
    for (PetscInt k = 0; k < nl; k++) {
      c[k]     = GridCell(&g, pos + 3 * k);
      q[k].key = c[k];
      q[k].val = a0 + k;
    }
    qsort(q, (size_t)nl, sizeof(KeyVal), CompareKeyVal);
    for (PetscInt k = 0; k < nl; k++) /* each cell once, with its first atom here */
      if (!nq || q[nq - 1].key != q[k].key) q[nq++] = q[k];
    PetscCall(ReduceMinByKey(comm, q, nq)); /* the first atom of each cell anywhere */
    for (PetscInt k = 0; k < nl; k++) {
      first[k] = (PetscBool)(LookUp(q, nq, c[k]) == a0 + k);
      nf64 += first[k];
    }
    PetscCallMPI(MPI_Exscan(&nf64, base, 1, MPI_INT64_T, MPI_SUM, comm));
    if (!rank) *base = 0;
    for (PetscInt k = 0; k < nl; k++) num[k] = first[k] ? *base + cnt++ : INT64_MAX;
    /* the number of each cell's block: from the rank holding its first atom, the smallest of the values sent */
    for (PetscInt k = 0; k < nq; k++) q[k].val = q[k].val >= a0 && q[k].val < a0 + nl ? num[q[k].val - a0] : INT64_MAX;
    PetscCall(ReduceMinByKey(comm, q, nq));
    for (PetscInt k = 0; k < nl; k++) blk[k] = LookUp(q, nq, c[k]);
    PetscCall(PetscFree3(c, num, q));
  }
  *nf = (PetscInt)nf64;
  PetscCall(PetscFree(first));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* An atom sent to the owner of its block, and its rows sent back. */
typedef struct {
  PetscInt64 b, i, src; /* block, atom, the rank that sent it (its owner) */
  double     x[3], m;
} Member;

typedef struct {
  PetscInt64 i, col, nv;
  double     v[3][6];
} Rows;

static int CompareMember(const void *pa, const void *pb)
{
  const Member *a = (const Member *)pa, *b = (const Member *)pb;

  if (a->b != b->b) return (a->b > b->b) - (a->b < b->b);
  return (a->i > b->i) - (a->i < b->i);
}

/* The rank of the block numbered b: the largest owner whose first block number is at most b. */
static PetscMPIInt BlockOwner(const PetscInt64 bases[], const PetscMPIInt owner[], PetscInt nown, PetscInt64 b)
{
  PetscInt lo = 0, hi = nown - 1;

  while (lo < hi) {
    const PetscInt mid = lo + (hi - lo + 1) / 2;

    if (bases[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  return owner[lo];
}

PetscErrorCode HMRTBProjectorDistributed_Private(HMProj *p, HMSystem sys, PetscInt N, PetscInt bsz, Mat *Pout, PetscInt *nb, PetscBool *residue)
{
  const PetscInt a0 = p->rstart / 3, nl = p->nloc / 3;
  const double  *pos, *mass;
  PetscMPIInt    size, *dest, *from, *from2, *owner;
  PetscInt       nf = 0, n, ngot, nback, nown = 0, nrows = 0, maxna = 1;
  PetscInt64     base = 0, ncloc = 0, colbase = 0, ncol = 0, *bases, nb64 = 0, *blk;
  Member        *mem, *got;
  Rows          *rows, *back;
  HMGrid         g;
  Mat            P;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCheck(n == nl, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "RTB: %" PetscInt_FMT " atoms here for %" PetscInt_FMT " rows of the Hessian", n, p->nloc);
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetMasses(sys, &mass));
  PetscCall(PetscMalloc1(nl + 1, &blk));
  PetscCall(LocalBlocks(p->comm, sys, N, bsz, a0, nl, blk, &nf, &base, residue));
  /* the owner of a block is the rank of its first atom: every rank's first block number and count (O(P)) */
  PetscCall(PetscMalloc2(size, &bases, size, &owner));
  {
    PetscInt64 mine[2] = {base, nf}, *all;

    PetscCall(PetscMalloc1(2 * size, &all));
    PetscCallMPI(MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, p->comm));
    for (PetscMPIInt r = 0; r < size; r++) {
      nb64 += all[2 * r + 1];
      if (all[2 * r + 1] > 0) {
        bases[nown]   = all[2 * r];
        owner[nown++] = r;
      }
    }
    PetscCall(PetscFree(all));
  }
  /* every atom to the owner of its block */
  PetscCall(PetscMalloc2(nl + 1, &mem, nl + 1, &dest));
  for (PetscInt k = 0; k < nl; k++) {
    mem[k].b = blk[k];
    mem[k].i = a0 + k;
    for (int d = 0; d < 3; d++) mem[k].x[d] = pos[3 * k + d];
    mem[k].m = mass[k];
    dest[k]  = BlockOwner(bases, owner, nown, blk[k]);
  }
  PetscCall(Exchange(p->comm, sizeof(Member), nl, mem, dest, &ngot, (void **)&got, &from));
  PetscCall(PetscFree2(mem, dest));
  PetscCall(PetscFree(blk));
  /* the owner: each block's frame from its members in atom order (the arithmetic of the whole-structure route),
     and the rows of every member, sent back to the member's rank (from[], reordered with got) */
  for (PetscInt k = 0; k < ngot; k++) got[k].src = from[k];
  qsort(got, (size_t)ngot, sizeof(Member), CompareMember);
  for (PetscInt k = 0; k < ngot; k++) from[k] = (PetscMPIInt)got[k].src;
  for (PetscInt k = 0, k0 = 0; k <= ngot; k++)
    if (k == ngot || got[k].b != got[k0].b) {
      maxna = PetscMax(maxna, k - k0);
      k0    = k;
    }
  GridInit(sys, &g);
  PetscCall(PetscMalloc1(ngot + 1, &rows));
  {
    double  *px, *pm, *r, axes[3][3], M;
    PetscInt nv, start[2] = {0, 0}, *idx, blocks = 0;
    HMBlocks Bv;

    PetscCall(PetscMalloc4(3 * maxna, &px, maxna, &pm, 3 * maxna, &r, maxna, &idx));
    for (PetscInt j = 0; j < maxna; j++) idx[j] = j;
    Bv.n     = maxna;
    Bv.nb    = 1;
    Bv.start = start;
    Bv.atoms = idx;
    for (PetscInt k0 = 0; k0 < ngot;) {
      PetscInt k1 = k0;

      while (k1 < ngot && got[k1].b == got[k0].b) k1++;
      start[1] = k1 - k0;
      for (PetscInt j = 0; j < k1 - k0; j++) {
        for (int d = 0; d < 3; d++) px[3 * j + d] = got[k0 + j].x[d];
        pm[j] = got[k0 + j].m;
      }
      PetscCall(HMBlockFrame_Private(&Bv, 0, px, pm, g.periodic, g.pbc, g.cell, g.inv, r, &M, axes, &nv));
      for (PetscInt j = 0; j < k1 - k0; j++) {
        Rows *w = &rows[nrows++];

        w->i   = got[k0 + j].i;
        w->col = ncloc;
        w->nv  = nv;
        PetscCall(PetscMemzero(w->v, sizeof(w->v)));
        BlockRows(pm[j], M, axes, nv, r + 3 * j, w->v);
      }
      ncloc += nv;
      blocks++;
      k0 = k1;
    }
    PetscCheck(blocks == nf, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB: %" PetscInt_FMT " blocks arrived at their owner, %" PetscInt_FMT " expected", blocks, nf);
    PetscCall(PetscFree4(px, pm, r, idx));
  }
  PetscCallMPI(MPI_Exscan(&ncloc, &colbase, 1, MPI_INT64_T, MPI_SUM, p->comm));
  {
    PetscMPIInt rank;

    PetscCallMPI(MPI_Comm_rank(p->comm, &rank));
    if (!rank) colbase = 0; /* MPI_Exscan leaves rank 0's result undefined */
  }
  PetscCallMPI(MPI_Allreduce(&ncloc, &ncol, 1, MPI_INT64_T, MPI_SUM, p->comm));
  for (PetscInt k = 0; k < nrows; k++) rows[k].col += colbase;
  PetscCall(Exchange(p->comm, sizeof(Rows), nrows, rows, from, &nback, (void **)&back, &from2));
  PetscCheck(nback == nl, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB: rows of %" PetscInt_FMT " atoms came back for %" PetscInt_FMT, nback, nl);
  for (PetscInt k = 0; k < nback; k++) PetscCheck(back[k].i >= a0 && back[k].i < a0 + nl, PETSC_COMM_SELF, PETSC_ERR_PLIB, "RTB: the rows of atom %" PetscInt64_FMT " came back to a rank that holds atoms %" PetscInt_FMT " .. %" PetscInt_FMT, back[k].i, a0, a0 + nl - 1);
  PetscCall(MatCreateAIJ(p->comm, p->nloc, (PetscInt)ncloc, p->ndof, (PetscInt)ncol, 6, NULL, 6, NULL, &P));
  PetscCall(MatSetOption(P, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_TRUE));
  for (PetscInt k = 0; k < nback; k++) {
    PetscInt cols[6];

    for (PetscInt c = 0; c < back[k].nv; c++) cols[c] = (PetscInt)(back[k].col + c);
    for (PetscInt d = 0; d < 3; d++) {
      const PetscInt row = (PetscInt)(3 * back[k].i + d);

      PetscCall(MatSetValues(P, 1, &row, (PetscInt)back[k].nv, cols, back[k].v[d], INSERT_VALUES));
    }
  }
  PetscCall(MatAssemblyBegin(P, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(P, MAT_FINAL_ASSEMBLY));
  PetscCall(PetscFree(got));
  PetscCall(PetscFree(from));
  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(back));
  PetscCall(PetscFree(from2));
  PetscCall(PetscFree2(bases, owner));
  *nb   = (PetscInt)nb64;
  *Pout = P;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* MACE symmetric contraction with the generalised Clebsch-Gordan U matrices stored sparse. */
#include "nn/nnimpl.h"
#include <stdlib.h>
#include <stdint.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Nodes per batch and channels per block of the contraction (see ContractBlock); the portable kernel
   goes through a batch HM_SC_PT nodes at a time, whose accumulators fit in the registers of SSE/AVX2. */
#define HM_SC_BATCH 8
#define HM_SC_CW    16
#define HM_SC_PT    2

static PetscInt Ipow(PetscInt b, int e)
{
  PetscInt r = 1;
  while (e-- > 0) r *= b;
  return r;
}

/* The runs of rows sharing (M, q1..q_{nu-1}) (consecutive rows, flattened index r = prow / Q). */
static PetscErrorCode BuildRuns(HMContraction *c, int nu)
{
  const PetscInt Q = c->Q, *prow = c->prow[nu];
  PetscInt       ng = 0;

  PetscFunctionBegin;
  for (PetscInt p = 0; p < c->npair[nu]; p++)
    if (p == 0 || prow[p] / Q != prow[p - 1] / Q) ng++;
  c->ngroup[nu] = ng;
  PetscCall(PetscMalloc1(ng + 1, &c->gstart[nu]));
  ng = 0;
  for (PetscInt p = 0; p < c->npair[nu]; p++)
    if (p == 0 || prow[p] / Q != prow[p - 1] / Q) c->gstart[nu][ng++] = p;
  c->gstart[nu][ng] = c->npair[nu];
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The monomial X[q1] ... X[q_nu] of a row does not depend on the order of its indices (channel by channel
   the features multiply element-wise), and U_nu, symmetric in them, has a row for every permutation. The rows
   of one (M, multiset {q}) are merged into one, with q1 <= ... <= q_nu and the sum of their Uw (in the order
   of the rows): up to nu! times fewer rows and runs. Arrays of c for this nu are replaced. */
typedef struct {
  PetscInt64 key; /* M and the sorted indices, flattened */
  PetscInt   p;   /* the row before merging */
} RowKey;

static int CompareRowKey(const void *a, const void *b)
{
  const RowKey *x = (const RowKey *)a, *y = (const RowKey *)b;

  if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
  return (x->p > y->p) - (x->p < y->p);
}

static PetscErrorCode MergePermutedRows(HMContraction *c, int nu)
{
  const PetscInt np = c->npair[nu], Q = c->Q, C = c->C;
  RowKey        *rk;
  PetscInt       np2 = 0, *prow2;
  int           *pM2, *pq2;
  double        *mem2, *Uw2;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(np + 1, &rk));
  for (PetscInt p = 0; p < np; p++) {
    int        q[8];
    PetscInt64 key = c->pM[nu][p];

    for (int i = 0; i < nu; i++) q[i] = c->pq[nu][p * nu + i];
    for (int i = 1; i < nu; i++) /* insertion sort, nu <= 7 */
      for (int j = i; j > 0 && q[j - 1] > q[j]; j--) {
        const int t = q[j];
        q[j]        = q[j - 1];
        q[j - 1]    = t;
      }
    for (int i = 0; i < nu; i++) key = key * Q + q[i];
    rk[p].key = key;
    rk[p].p   = p;
  }
  qsort(rk, (size_t)np, sizeof(RowKey), CompareRowKey);
  for (PetscInt t = 0; t < np; t++)
    if (t == 0 || rk[t].key != rk[t - 1].key) np2++;
  PetscCall(PetscMalloc1(np2 + 1, &prow2));
  PetscCall(PetscMalloc1(np2 + 1, &pM2));
  PetscCall(PetscMalloc1(nu * np2 + 1, &pq2));
  PetscCall(PetscCalloc1(c->nel * np2 * C + 8, &mem2));
  Uw2 = (double *)(((uintptr_t)mem2 + 63) & ~(uintptr_t)63);
  for (PetscInt t = 0, p2 = -1; t < np; t++) {
    const PetscInt p = rk[t].p;
    if (t == 0 || rk[t].key != rk[t - 1].key) {
      PetscInt64 key = rk[t].key;
      p2++;
      prow2[p2] = (PetscInt)key;
      for (int i = nu - 1; i >= 0; i--) {
        pq2[p2 * nu + i] = (int)(key % Q);
        key /= Q;
      }
      pM2[p2] = (int)key;
    }
    for (int e = 0; e < c->nel; e++)
      for (PetscInt c0 = 0; c0 < C; c0 += HM_SC_CW) {
        const PetscInt cw = PetscMin(HM_SC_CW, C - c0);
        const double  *u  = c->Uw[nu] + (PetscInt)e * np * C + c0 * np + p * cw;
        double        *u2 = Uw2 + (PetscInt)e * np2 * C + c0 * np2 + p2 * cw;
        for (PetscInt cc = 0; cc < cw; cc++) u2[cc] += u[cc];
      }
  }
  PetscCall(PetscFree(rk));
  PetscCall(PetscFree(c->prow[nu]));
  PetscCall(PetscFree(c->pM[nu]));
  PetscCall(PetscFree(c->pq[nu]));
  PetscCall(PetscFree(c->Uwmem[nu]));
  PetscCall(PetscFree(c->gstart[nu]));
  c->npair[nu] = np2;
  c->prow[nu]  = prow2;
  c->pM[nu]    = pM2;
  c->pq[nu]    = pq2;
  c->Uwmem[nu] = mem2;
  c->Uw[nu]    = Uw2;
  PetscCall(BuildRuns(c, nu));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSymContractionSetUp(HMSymContraction *sc, HMSafetensors st, const char prefix[], const HMIrreps *target, const HMIrreps *hidden, int corr, int nel)
{
  const char *path;
  PetscInt    C = target->b[0].mul, Q = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(sc, sizeof(*sc)));
  PetscCall(HMSafetensorsGetPath(st, &path));
  PetscCheck(corr >= 1 && corr <= 7, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: correlation %d is not supported (1..7)", path, corr);
  for (int k = 0; k < target->n; k++) {
    PetscCheck(target->b[k].mul == C, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %s: all blocks of the interaction irreps must have the same multiplicity", path, prefix);
    Q += 2 * target->b[k].l + 1;
  }
  for (int k = 0; k < hidden->n; k++) PetscCheck(hidden->b[k].mul == C, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: hidden_irreps must have equal multiplicities (MACE requirement)", path);
  sc->C    = C;
  sc->Q    = Q;
  sc->out  = *hidden;
  sc->nout = hidden->n;
  PetscCall(PetscCalloc1(hidden->n, &sc->c));
  sc->maxstate = 0;
  for (int k = 0; k < hidden->n; k++) {
    HMContraction *c = &sc->c[k];
    const int      L = hidden->b[k].l, d = 2 * L + 1;
    c->L    = L;
    c->corr = corr;
    c->nel  = nel;
    c->C    = C;
    c->Q    = Q;
    for (int nu = 1; nu <= corr; nu++) {
      char                name[256];
      const HMTensorInfo *info;
      PetscInt64          shape[10];
      int                 nd = 0;
      const double       *U, *W;
      PetscInt            rows, cnt = 0;

      PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.U_matrix_%d", prefix, k, nu));
      PetscCall(HMSafetensorsGetInfo(st, name, HM_DTYPE_F64, &info));
      if (L > 0) shape[nd++] = d;
      for (int q = 0; q < nu; q++) shape[nd++] = Q;
      shape[nd++] = -1;
      PetscCall(HMSafetensorsGetF64(st, name, nd, shape, &U));
      c->K[nu] = (PetscInt)info->shape[nd - 1];
      rows     = d * Ipow(Q, nu);
      for (PetscInt t = 0; t < rows * c->K[nu]; t++)
        if (U[t] != 0.0) cnt++;
      c->nnz[nu] = cnt;
      PetscCall(PetscMalloc3(cnt + 1, &c->row[nu], cnt + 1, &c->kk[nu], cnt + 1, &c->val[nu]));
      cnt = 0;
      for (PetscInt t = 0; t < rows * c->K[nu]; t++)
        if (U[t] != 0.0) {
          c->row[nu][cnt] = t / c->K[nu];
          c->kk[nu][cnt]  = (int)(t % c->K[nu]);
          c->val[nu][cnt] = U[t];
          cnt++;
        }
      if (nu == corr) PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.weights_max", prefix, k));
      else PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.weights.%d", prefix, k, corr - 1 - nu));
      {
        PetscInt64 ws[3] = {nel, c->K[nu], C};
        PetscCall(HMSafetensorsGetF64(st, name, 3, ws, &W));
      }
      c->W[nu] = W;
      /* fold the weights into U per element: distinct rows are runs, since the non-zeros come in
         increasing flat index (row-major over r, then k) */
      {
        PetscInt np = 0;
        for (PetscInt t = 0; t < c->nnz[nu]; t++)
          if (t == 0 || c->row[nu][t] != c->row[nu][t - 1]) np++;
        c->npair[nu] = np;
        PetscCall(PetscMalloc1(np + 1, &c->prow[nu]));
        PetscCall(PetscMalloc1(np + 1, &c->pM[nu]));
        PetscCall(PetscMalloc1(nu * np + 1, &c->pq[nu]));
        /* 64-byte aligned, so that the vector loads of a row never straddle cache lines */
        PetscCall(PetscCalloc1(nel * np * C + 8, &c->Uwmem[nu]));
        c->Uw[nu] = (double *)(((uintptr_t)c->Uwmem[nu] + 63) & ~(uintptr_t)63);
        np        = -1;
        for (PetscInt t = 0; t < c->nnz[nu]; t++) {
          /* (rows of one run share everything but the last index q_nu: their sum over q_nu is one
             multiply per entry, the shared prefix product is applied once per run) */
          if (t == 0 || c->row[nu][t] != c->row[nu][t - 1]) {
            PetscInt r        = c->row[nu][t];
            c->prow[nu][++np] = r;
            for (int i = nu - 1; i >= 0; i--) {
              c->pq[nu][np * nu + i] = (int)(r % Q);
              r /= Q;
            }
            c->pM[nu][np] = (int)r;
          }
          for (int e = 0; e < nel; e++) {
            const double *w = W + ((PetscInt)e * c->K[nu] + c->kk[nu][t]) * C;
            for (PetscInt c0 = 0; c0 < C; c0 += HM_SC_CW) {
              const PetscInt cw = PetscMin(HM_SC_CW, C - c0);
              double        *u  = c->Uw[nu] + (PetscInt)e * c->npair[nu] * C + c0 * c->npair[nu] + np * cw;
              for (PetscInt cc = 0; cc < cw; cc++) u[cc] += c->val[nu][t] * w[c0 + cc];
            }
          }
        }
        PetscCall(BuildRuns(c, nu));
        if (nu >= 2) PetscCall(MergePermutedRows(c, nu));
      }
    }
    c->maxstate  = d * Ipow(Q, corr - 1);
    sc->maxstate = PetscMax(sc->maxstate, c->maxstate);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSymContractionDestroy(HMSymContraction *sc)
{
  PetscFunctionBegin;
  for (int k = 0; k < sc->nout; k++)
    for (int nu = 1; nu <= sc->c[k].corr; nu++) {
      PetscCall(PetscFree3(sc->c[k].row[nu], sc->c[k].kk[nu], sc->c[k].val[nu]));
      PetscCall(PetscFree(sc->c[k].prow[nu]));
      PetscCall(PetscFree(sc->c[k].pM[nu]));
      PetscCall(PetscFree(sc->c[k].pq[nu]));
      PetscCall(PetscFree(sc->c[k].gstart[nu]));
      PetscCall(PetscFree(sc->c[k].Uwmem[nu]));
    }
  PetscCall(PetscFree(sc->c));
  PetscCall(PetscMemzero(sc, sizeof(*sc)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Batching. Node by node, the contraction streams all of Uw[e] (4 MB per element for 128 channels at
   correlation 3, far beyond L2) for a few flops per loaded double, so it is bound by the memory
   bandwidth. Instead the nodes go in batches of up to HM_SC_BATCH nodes of one element (gathered
   element by element over the call's nodes), and a batch is contracted one block of HM_SC_CW channels
   at a time: every vector of Uw[e] is loaded once per batch and multiplied into the accumulators of
   all its nodes, held in registers, while the block's features of the batch, Xt[q][b][c] (Q
   HM_SC_BATCH HM_SC_CW doubles, 16 KB), stay in L1. Uw is stored block by block so that this stream
   is contiguous, and Uw, Xt and acc are 64-byte aligned, so that no vector load straddles two cache
   lines (misaligned, the kernel ran 1.5 times slower).

   Bitwise reproducibility. hipmace must give the same bits on any number of ranks, so a node's result
   must not depend on which nodes share its batch. Channels never mix, and for each (node, channel)
   the operations are exactly those of the node-by-node loop, in the same order: per run s = 0, then
   s += Uw[p] X[q_nu(p)] over the run in ascending p, s *= X[q1], ..., X[q_{nu-1}], acc[M] += s over the
   runs in ascending nu and g, acc starting at 0; one rounding each (no FMA, in the vector kernel as
   in the portable one). Only loops across nodes and channel blocks are reordered. The padding nodes
   of a short batch have their own accumulators, which are never stored. */

/* The portable kernel: batch of B nodes, channels c0 .. c0 + cw - 1, output acc[M][b][c]. */
static inline __attribute__((always_inline)) void ContractBlock(const int B, const PetscInt cw, const HMContraction *ct, int e, PetscInt c0, const double *Xt, double *acc)
{
  const PetscInt C = ct->C, ldq = HM_SC_BATCH * HM_SC_CW;

  for (PetscInt q = 0; q < (2 * ct->L + 1) * ldq; q++) acc[q] = 0.0;
  for (int nu = 1; nu <= ct->corr; nu++) {
    const PetscInt np = ct->npair[nu];
    const double  *Uw = ct->Uw[nu] + (PetscInt)e * np * C + c0 * np;
    const int     *pq = ct->pq[nu];
    for (PetscInt g = 0; g < ct->ngroup[nu]; g++) {
      const PetscInt p0 = ct->gstart[nu][g], p1 = ct->gstart[nu][g + 1];
      const int     *q = pq + p0 * nu;
      double        *a = acc + (PetscInt)ct->pM[nu][p0] * ldq;

      for (int b0 = 0; b0 < B; b0 += HM_SC_PT) {
        const int BT = PetscMin(HM_SC_PT, B - b0);
        double    s[HM_SC_PT][HM_SC_CW];
        for (int b = 0; b < BT; b++)
          for (PetscInt c = 0; c < cw; c++) s[b][c] = 0.0;
        for (PetscInt p = p0; p < p1; p++) {
          const double *u = Uw + p * cw, *xl = Xt + (PetscInt)pq[p * nu + nu - 1] * ldq + b0 * HM_SC_CW;
          for (int b = 0; b < BT; b++)
            for (PetscInt c = 0; c < cw; c++) s[b][c] += u[c] * xl[b * HM_SC_CW + c];
        }
        for (int i = 0; i < nu - 1; i++) {
          const double *xi = Xt + (PetscInt)q[i] * ldq + b0 * HM_SC_CW;
          for (int b = 0; b < BT; b++)
            for (PetscInt c = 0; c < cw; c++) s[b][c] *= xi[b * HM_SC_CW + c];
        }
        for (int b = 0; b < BT; b++)
          for (PetscInt c = 0; c < cw; c++) a[(b0 + b) * HM_SC_CW + c] += s[b][c];
      }
    }
  }
}

#if defined(__AVX512F__)
/* ContractBlock for blocks of NV vectors of 8 channels with the accumulators in registers (B x NV <=
   16 of them): the same multiplies and adds, one rounding each (no FMA), so the same bits. */
static inline __attribute__((always_inline)) void ContractBlockAvx512(const int B, const int NV, const HMContraction *ct, int e, PetscInt c0, const double *Xt, double *acc)
{
  const PetscInt C = ct->C, ldq = HM_SC_BATCH * HM_SC_CW;

  for (PetscInt q = 0; q < (2 * ct->L + 1) * ldq; q++) acc[q] = 0.0;
  for (int nu = 1; nu <= ct->corr; nu++) {
    const PetscInt np = ct->npair[nu];
    const double  *Uw = ct->Uw[nu] + (PetscInt)e * np * C + c0 * np;
    const int     *pq = ct->pq[nu];
    for (PetscInt g = 0; g < ct->ngroup[nu]; g++) {
      const PetscInt p0 = ct->gstart[nu][g], p1 = ct->gstart[nu][g + 1];
      const int     *q = pq + p0 * nu;
      double        *a = acc + (PetscInt)ct->pM[nu][p0] * ldq;
      __m512d        s[HM_SC_BATCH][HM_SC_CW / 8];

      for (int b = 0; b < B; b++)
        for (int v = 0; v < NV; v++) s[b][v] = _mm512_setzero_pd();
      for (PetscInt p = p0; p < p1; p++) {
        const double *u = Uw + p * 8 * NV, *xl = Xt + (PetscInt)pq[p * nu + nu - 1] * ldq;
        __m512d       uv[HM_SC_CW / 8];
        for (int v = 0; v < NV; v++) uv[v] = _mm512_loadu_pd(u + 8 * v);
        for (int b = 0; b < B; b++)
          for (int v = 0; v < NV; v++) s[b][v] = _mm512_add_pd(s[b][v], _mm512_mul_pd(uv[v], _mm512_loadu_pd(xl + b * HM_SC_CW + 8 * v)));
      }
      for (int i = 0; i < nu - 1; i++) {
        const double *xi = Xt + (PetscInt)q[i] * ldq;
        for (int b = 0; b < B; b++)
          for (int v = 0; v < NV; v++) s[b][v] = _mm512_mul_pd(s[b][v], _mm512_loadu_pd(xi + b * HM_SC_CW + 8 * v));
      }
      for (int b = 0; b < B; b++)
        for (int v = 0; v < NV; v++) _mm512_storeu_pd(a + b * HM_SC_CW + 8 * v, _mm512_add_pd(_mm512_loadu_pd(a + b * HM_SC_CW + 8 * v), s[b][v]));
    }
  }
}

  /* full blocks as 2 vectors, blocks of 8 channels (C = 8) as 1, anything else portably */
  #define HM_SC_KERNEL(B, cw, ct, e, c0, Xt, acc)                                   \
    do {                                                                            \
      if (cw == HM_SC_CW) ContractBlockAvx512(B, HM_SC_CW / 8, ct, e, c0, Xt, acc); \
      else if (cw == 8) ContractBlockAvx512(B, 1, ct, e, c0, Xt, acc);              \
      else ContractBlock(B, cw, ct, e, c0, Xt, acc);                                \
    } while (0)
#else
  #define HM_SC_KERNEL(B, cw, ct, e, c0, Xt, acc)                         \
    do {                                                                  \
      if (cw == HM_SC_CW) ContractBlock(B, HM_SC_CW, ct, e, c0, Xt, acc); \
      else if (cw == 8) ContractBlock(B, 8, ct, e, c0, Xt, acc);          \
      else ContractBlock(B, cw, ct, e, c0, Xt, acc);                      \
    } while (0)
#endif

/* The kernels with the batch size and the (full) block width as compile-time constants, so that the
   accumulators of a run stay in registers. A batch of another size is padded up to the next of 1, 2,
   4, 8 with nodes of zero features, whose results are computed and dropped. */
#define HM_SC_BATCH_KERNEL(B)                                                                                             \
  static void contract_block_##B(PetscInt cw, const HMContraction *ct, int e, PetscInt c0, const double *Xt, double *acc) \
  {                                                                                                                       \
    HM_SC_KERNEL(B, cw, ct, e, c0, Xt, acc);                                                                              \
  }
HM_SC_BATCH_KERNEL(1)
HM_SC_BATCH_KERNEL(2)
HM_SC_BATCH_KERNEL(4)
HM_SC_BATCH_KERNEL(8)

typedef void (*ContractFn)(PetscInt, const HMContraction *, int, PetscInt, const double *, double *);

static int PaddedBatch(int B, ContractFn *f)
{
  static const ContractFn fn[] = {contract_block_1, contract_block_2, contract_block_4, contract_block_8};
  int                     i    = 0;

  while ((1 << i) < B) i++;
  *f = fn[i];
  return 1 << i;
}

static PetscInt MaxOutDim(const HMSymContraction *sc)
{
  PetscInt d = 1;
  for (int k = 0; k < sc->nout; k++) d = PetscMax(d, 2 * sc->c[k].L + 1);
  return d;
}

PetscInt HMSymContractionWorkSize(const HMSymContraction *sc)
{
  const PetscInt nblk = (sc->C + HM_SC_CW - 1) / HM_SC_CW;
  /* Xt and acc of a batch, plus room to align them to 64 bytes */
  return HM_SC_BATCH * HM_SC_CW * (nblk * sc->Q + MaxOutDim(sc)) + 8;
}

void HMSymContractionGatherNodes(const HMIrreps *target, PetscInt C, PetscInt Q, int cw, PetscInt ldq, int B, const PetscInt zb[], const double *X, PetscInt ldx, PetscBool xT, double *Xt)
{
  for (int b = 0; b < B; b++) {
    const double *x  = X + zb[b] * ldx;
    PetscInt      q0 = 0, xo = 0;
    for (int k = 0; k < target->n; k++) {
      const int d = 2 * target->b[k].l + 1;
      if (xT) {
        for (int m = 0; m < d; m++)
          for (PetscInt c = 0; c < C; c++) Xt[(c / cw) * Q * ldq + (q0 + m) * ldq + b * cw + c % cw] = x[xo + m * C + c];
      } else
        for (PetscInt c = 0; c < C; c++) {
          double *xt = Xt + (c / cw) * Q * ldq + b * cw + c % cw;
          for (int m = 0; m < d; m++) xt[(q0 + m) * ldq] = x[xo + c * d + m];
        }
      q0 += d;
      xo += C * d;
    }
  }
}

/* The nodes zb[0..B-1] (all of element e): features to Xt[block][q][b][c], then block by block. */
static void ContractNodes(const HMSymContraction *sc, const HMIrreps *target, int B, const PetscInt zb[], int e, const double *X, PetscInt ldx, PetscBool xT, double *out, PetscInt ldo, double *work)
{
  const PetscInt C = sc->C, Q = sc->Q, ldq = HM_SC_BATCH * HM_SC_CW, nblk = (C + HM_SC_CW - 1) / HM_SC_CW;
  double        *Xt = (double *)(((uintptr_t)work + 63) & ~(uintptr_t)63), *acc = Xt + nblk * Q * ldq;
  ContractFn     f;
  const int      Bp = PaddedBatch(B, &f);

  HMSymContractionGatherNodes(target, C, Q, HM_SC_CW, ldq, B, zb, X, ldx, xT, Xt);
  for (PetscInt r = 0; r < nblk * Q; r++)
    for (PetscInt c = B * HM_SC_CW; c < Bp * HM_SC_CW; c++) Xt[r * ldq + c] = 0.0;
  for (PetscInt c0 = 0; c0 < C; c0 += HM_SC_CW) {
    const PetscInt cw = PetscMin(HM_SC_CW, C - c0);
    const double  *xt = Xt + (c0 / HM_SC_CW) * Q * ldq;
    PetscInt       oo = 0;
    for (int k = 0; k < sc->nout; k++) {
      const HMContraction *ct = &sc->c[k];
      const int            d  = 2 * ct->L + 1;
      f(cw, ct, e, c0, xt, acc);
      /* out[c d + M] = acc[M][c] (e3nn channel-major layout of the block) */
      for (int b = 0; b < B; b++)
        for (PetscInt c = 0; c < cw; c++)
          for (int M = 0; M < d; M++) out[zb[b] * ldo + oo + (c0 + c) * d + M] = acc[M * ldq + b * HM_SC_CW + c];
      oo += C * d;
    }
  }
}

void HMSymContractionApply(const HMSymContraction *sc, const HMIrreps *target, PetscInt n, const int elem[], const double *X, PetscInt ldx, PetscBool xT, double *out, PetscInt ldo, double *work)
{
  const int nel = sc->nout > 0 ? sc->c[0].nel : 0;

  /* batches of nodes of one element, element by element */
  for (int e = 0; e < nel; e++) {
    PetscInt zb[HM_SC_BATCH];
    int      B = 0;
    for (PetscInt z = 0; z < n; z++) {
      if (elem[z] != e) continue;
      zb[B++] = z;
      if (B == HM_SC_BATCH) {
        ContractNodes(sc, target, B, zb, e, X, ldx, xT, out, ldo, work);
        B = 0;
      }
    }
    if (B > 0) ContractNodes(sc, target, B, zb, e, X, ldx, xT, out, ldo, work);
  }
}

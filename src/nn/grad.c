/* Backward (vector-Jacobian) kernels of the MACE blocks, for analytic forces: linear maps, skip tensor
   product, radial basis and MLP, convolution tensor product, symmetric contraction. Every kernel's
   result for one row (node, edge) depends on that row's inputs only, in a fixed order of operations,
   so the gradients are as rank-count invariant as the forward. */
#include "nn/nnimpl.h"
#include <stdint.h>
#include <stdlib.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Nodes per batch and channels per block of the symmetric contraction's backward (as the forward) */
#define HM_SCB_BATCH 8
#define HM_SCB_CW    16

static void ZeroRows(PetscInt n, PetscInt dim, double *y, PetscInt ldy)
{
  for (PetscInt z = 0; z < n; z++) memset(y + z * ldy, 0, (size_t)dim * sizeof(double));
}

/* dx_z[u, m] += alpha sum_w W[u, w] dy_z[w, m] for the rows z of zlist (or 0 .. nz-1), with WT = W^T
   ([w][u], row stride ma): as the forward's apply_block, the rows (z, m) are copied out transposed so
   that the product is one HMGemmRows over all of them (row-independent arithmetic). */
static void TransposeBlock(PetscInt nz, const PetscInt *zlist, int d, int ma, int mb, double alpha, const double *WT, const double *dy, PetscInt ldy, double *dx, PetscInt ldx)
{
  const PetscInt wide = (PetscInt)d * PetscMax(ma, mb);

  if (d == 1 && !zlist) {
    HMGemmRows(nz, ma, mb, alpha, dy, ldy, WT, ma, 1.0, dx, ldx);
    return;
  }
  if (wide > HM_LIN_BUF) {
    /* (not met by MACE's widths) row by row, the same sums */
    double yt[HM_LIN_BUF], xt[HM_LIN_BUF];

    for (PetscInt i = 0; i < nz; i++) {
      const PetscInt z = zlist ? zlist[i] : i;
      for (int mm = 0; mm < d; mm++) {
        for (int w = 0; w < mb; w++) yt[w] = dy[z * ldy + w * d + mm];
        HMGemmRows(1, ma, mb, alpha, yt, mb, WT, ma, 0.0, xt, ma);
        for (int u = 0; u < ma; u++) dx[z * ldx + u * d + mm] += xt[u];
      }
    }
    return;
  }
  HMLinearChunked_Private(nz, zlist, d, mb, ma, alpha, WT, ma, NULL, dy, ldy, dx, ldx);
}

/* WT[w][u] = W[u][w] (W row stride ldw); malloc'ed, NULL if out of memory */
static double *TransposeWeight(int ma, int mb, const double *W, PetscInt ldw)
{
  double *WT = malloc(sizeof(double) * (size_t)ma * (size_t)mb + 1);
  if (!WT) return NULL;
  for (int u = 0; u < ma; u++)
    for (int w = 0; w < mb; w++) WT[(PetscInt)w * ma + u] = W[(PetscInt)u * ldw + w];
  return WT;
}

/* Rows per scan of HMSkipTPApplyTranspose's grouping by element */
#define HM_SKIPB_ROWS 256

void HMLinearApplyTranspose(const HMLinear *lin, PetscInt n, const double *dy, PetscInt ldy, double beta, double *dx, PetscInt ldx)
{
  if (beta == 0.0) ZeroRows(n, lin->dim_in, dx, ldx);
  for (int k = 0; k < lin->ninstr; k++) {
    const HMIrrep *a = &lin->in.b[lin->ia[k]], *b = &lin->out.b[lin->ib[k]];
    double        *WT;
    if (a->mul == 0 || b->mul == 0 || n == 0) continue;
    WT = TransposeWeight(a->mul, b->mul, lin->W + lin->woff[k], b->mul);
    PetscCheckAbort(WT, PETSC_COMM_SELF, PETSC_ERR_MEM, "linear map backward: out of memory for a %d x %d weight", a->mul, b->mul);
    TransposeBlock(n, NULL, 2 * a->l + 1, a->mul, b->mul, lin->alpha[k], WT, dy + HMIrrepsOffset(&lin->out, lin->ib[k]), ldy, dx + HMIrrepsOffset(&lin->in, lin->ia[k]), ldx);
    free(WT);
  }
}

void HMSkipTPApplyTranspose(const HMSkipTP *s, PetscInt n, const int elem[], const double *dy, PetscInt ldy, double beta, double *dx, PetscInt ldx)
{
  if (beta == 0.0) ZeroRows(n, s->dim_in, dx, ldx);
  for (int k = 0; k < s->ninstr; k++) {
    const HMIrrep *a = &s->in.b[s->ia[k]], *b = &s->out.b[s->ib[k]];
    const PetscInt xo = HMIrrepsOffset(&s->in, s->ia[k]), yo = HMIrrepsOffset(&s->out, s->ib[k]);
    const int      ldw = s->nel * b->mul; /* W[u, e, w] */
    if (a->mul == 0 || b->mul == 0 || n == 0) continue;
    for (int el = 0; el < s->nel; el++) {
      double *WT = NULL;
      for (PetscInt z0 = 0; z0 < n; z0 += HM_SKIPB_ROWS) {
        const PetscInt nc = PetscMin(HM_SKIPB_ROWS, n - z0);
        PetscInt       zl[HM_SKIPB_ROWS], nl = 0;
        for (PetscInt i = 0; i < nc; i++)
          if (elem[z0 + i] == el) zl[nl++] = z0 + i;
        if (!nl) continue;
        if (!WT) {
          WT = TransposeWeight(a->mul, b->mul, s->W + s->woff[k] + (PetscInt)el * b->mul, ldw);
          PetscCheckAbort(WT, PETSC_COMM_SELF, PETSC_ERR_MEM, "skip tensor product backward: out of memory for a %d x %d weight", a->mul, b->mul);
        }
        TransposeBlock(nl, zl, 2 * a->l + 1, a->mul, b->mul, s->alpha[k], WT, dy + yo, ldy, dx + xo, ldx);
      }
      free(WT);
    }
  }
}

void HMRadialBasisEvalDeriv(const HMRadialBasis *rb, double d, double val[], double dval[])
{
  const double env  = HMPolynomialCutoff(d, rb->rc, rb->p);
  const int    p    = rb->p;
  double       denv = 0.0;

  /* env = 1 - a t^p + b t^(p+1) - c t^(p+2), t = d / rc */
  if (d < rb->rc) {
    const double t = d / rb->rc, tp1 = PetscPowRealInt(t, p - 1);
    const double a = (p + 1.0) * (p + 2.0) / 2.0, b = p * (p + 2.0), c = p * (p + 1.0) / 2.0;
    denv = (-a * p * tp1 + b * (p + 1.0) * tp1 * t - c * (p + 2.0) * tp1 * t * t) / rb->rc;
  }
  for (int k = 0; k < rb->nbessel; k++) {
    const double f = rb->freq[k], sn = PetscSinReal(f * d), cs = PetscCosReal(f * d);
    val[k]  = rb->prefactor * (sn / d) * env;
    dval[k] = rb->prefactor * (((f * cs - sn / d) / d) * env + (sn / d) * denv);
  }
}

PetscInt HMRadialMLPBackwardWorkSize(const HMRadialMLP *mlp, PetscInt n)
{
  PetscInt hid = 0;
  for (int i = 1; i < mlp->nlayers; i++) hid += mlp->h[i];
  /* pre-activations and activations of the hidden layers, two gradient buffers, a transposed weight */
  return 2 * n * hid + 2 * n * mlp->maxw + mlp->maxw * mlp->maxw + 1;
}

/* hidden layer i >= 1: its pre-activations z_i and activations a_i in the work array */
static double *MlpPre(const HMRadialMLP *mlp, PetscInt n, int i, double *work)
{
  PetscInt off = 0;
  for (int j = 1; j < i; j++) off += 2 * n * mlp->h[j];
  return work + off;
}

void HMRadialMLPBackward(const HMRadialMLP *mlp, PetscInt n, const double *x, const double *dout, double *dx, double *work)
{
  const int     L = mlp->nlayers;
  double       *g[2], *WT;
  const double *cur = x, *gin;

  if (n == 0) return;
  g[0] = MlpPre(mlp, n, L, work);
  g[1] = g[0] + n * mlp->maxw;
  WT   = g[1] + n * mlp->maxw;
  /* forward, keeping the hidden pre-activations z_i and activations a_i = silu_n(z_i) (the bits of
     HMRadialMLPApply: the same products and the same vectorised SiLU) */
  for (int i = 1; i < L; i++) {
    double *pre = MlpPre(mlp, n, i, work), *act = pre + n * mlp->h[i];
    HMGemmRowsPacked(n, 1.0, cur, mlp->h[i - 1], &mlp->Wp[i - 1], 0.0, pre, mlp->h[i]);
    memcpy(act, pre, (size_t)(n * mlp->h[i]) * sizeof(double));
    HMSiLUNormArray(n * mlp->h[i], act);
    cur = act;
  }
  /* backward: g_i = (g_{i+1} W_i^T) * silu_n'(z_i), the last product into dx */
  gin = dout;
  for (int i = L - 1; i >= 0; i--) {
    const PetscInt hi = mlp->h[i], ho = mlp->h[i + 1];
    double        *dst = i == 0 ? dx : g[i % 2];
    for (PetscInt u = 0; u < hi; u++)
      for (PetscInt w = 0; w < ho; w++) WT[w * hi + u] = mlp->W[i][u * ho + w];
    HMGemmRows(n, hi, ho, 1.0, gin, ho, WT, hi, 0.0, dst, hi);
    if (i > 0) {
      const double *pre = MlpPre(mlp, n, i, work);
      for (PetscInt k = 0; k < n * hi; k++) dst[k] *= HMSiLUNormDeriv(pre[k]);
    }
    gin = dst;
  }
}

static PetscInt TpMaxmul(const HMConvTP *tp)
{
  PetscInt m = 0;
  for (int i = 0; i < tp->in1.n; i++) m = PetscMax(m, tp->in1.b[i].mul);
  return m;
}

PetscInt HMConvTPBackwardWorkSize(const HMConvTP *tp)
{
  return 2 * tp->maxcy + 2 * TpMaxmul(tp) + 1;
}

/* cy[a][c] = sum_b C_k[a][b][c] y[b] over the non-zero entries (as the forward's contract_y) */
static inline void TpContractY(const HMConvTP *tp, int k, int nslot, const double *y, double *cy)
{
  for (int q = 0; q < nslot; q++) cy[q] = 0.0;
  for (PetscInt i = tp->cnz_off[k]; i < tp->cnz_off[k + 1]; i++) cy[tp->cnz_slot[i]] += tp->cnz_val[i] * y[tp->cnz_b[i]];
}

/* dy[b] += sum_{a,c} C_k[a][b][c] T[a][c] */
static inline void TpContractYTranspose(const HMConvTP *tp, int k, const double *T, double *dy)
{
  for (PetscInt i = tp->cnz_off[k]; i < tp->cnz_off[k + 1]; i++) dy[tp->cnz_b[i]] += tp->cnz_val[i] * T[tp->cnz_slot[i]];
}

/* Forward per instruction k: cy = C_k y, mid[u][c] = pw w[u] sum_a x1[u][a] cy[a][c]. Backward:
   dw[u] = pw sum_c dmid[u][c] sum_a x1[u][a] cy[a][c], dx1[u][a] += pw w[u] sum_c dmid[u][c] cy[a][c],
   dx2 += C_k^T T with T[a][c] = sum_u pw w[u] x1[u][a] dmid[u][c]. */
void HMConvTPBackward(const HMConvTP *tp, const double *x1, const double *x2, const double *w, const double *dmid, double *dx1, double *dx2, double *dw, double *work)
{
  double  *cy = work, *T = work + tp->maxcy;
  PetscInt mo = 0;

  if (dx2) memset(dx2, 0, (size_t)tp->dim_in2 * sizeof(double));
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const int      d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1;
    const double  *xa = x1 + tp->x1off[k];
    const double  *wk = w + tp->woff[k];
    const double  *g  = dmid + mo;
    const double   pw = tp->pw[k];

    TpContractY(tp, k, d1 * dO, x2 + tp->x2off[k], cy);
    if (dx2)
      for (int q = 0; q < d1 * dO; q++) T[q] = 0.0;
    for (int u = 0; u < a->mul; u++) {
      const double *xu = xa + u * d1, *gu = g + u * dO;
      const double  f = pw * wk[u];
      if (dw) {
        double s = 0.0;
        for (int c = 0; c < dO; c++) {
          double t = 0.0;
          for (int ia = 0; ia < d1; ia++) t += xu[ia] * cy[ia * dO + c];
          s += gu[c] * t;
        }
        dw[tp->woff[k] + u] = pw * s;
      }
      if (dx1) {
        double *du = dx1 + tp->x1off[k] + u * d1;
        for (int ia = 0; ia < d1; ia++) {
          double t = 0.0;
          for (int c = 0; c < dO; c++) t += gu[c] * cy[ia * dO + c];
          du[ia] += f * t;
        }
      }
      if (dx2)
        for (int ia = 0; ia < d1; ia++)
          for (int c = 0; c < dO; c++) T[ia * dO + c] += f * xu[ia] * gu[c];
    }
    if (dx2) TpContractYTranspose(tp, k, T, dx2 + tp->x2off[k]);
    mo += (PetscInt)a->mul * dO;
  }
}

void HMConvTPBackwardT(const HMConvTP *tp, const double *x1T, const double *x2, const double *w, const double *dmidT, double *dx1T, double *dx2, double *dw, double *work)
{
  const PetscInt mm = TpMaxmul(tp);
  double        *cy = work, *T = work + tp->maxcy, *fu = T + tp->maxcy, *t = fu + mm;
  PetscInt       mo = 0;

  if (dx2) memset(dx2, 0, (size_t)tp->dim_in2 * sizeof(double));
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const int      d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1, mul = a->mul;
    const double  *xa = x1T + tp->x1off[k];
    const double  *wk = w + tp->woff[k];
    const double  *g  = dmidT + mo;
    const double   pw = tp->pw[k];

    TpContractY(tp, k, d1 * dO, x2 + tp->x2off[k], cy);
    for (int u = 0; u < mul; u++) fu[u] = pw * wk[u];
    if (dw) {
      double *dwk = dw + tp->woff[k];
      for (int u = 0; u < mul; u++) dwk[u] = 0.0;
      for (int c = 0; c < dO; c++) {
        const double *gc = g + c * mul;
        for (int u = 0; u < mul; u++) t[u] = 0.0;
        for (int ia = 0; ia < d1; ia++) {
          const double  f  = cy[ia * dO + c];
          const double *xr = xa + ia * mul;
          for (int u = 0; u < mul; u++) t[u] += xr[u] * f;
        }
        for (int u = 0; u < mul; u++) dwk[u] += gc[u] * t[u];
      }
      for (int u = 0; u < mul; u++) dwk[u] *= pw;
    }
    if (dx1T)
      for (int ia = 0; ia < d1; ia++) {
        double *dr = dx1T + tp->x1off[k] + ia * mul;
        for (int u = 0; u < mul; u++) t[u] = 0.0;
        for (int c = 0; c < dO; c++) {
          const double  f  = cy[ia * dO + c];
          const double *gc = g + c * mul;
          for (int u = 0; u < mul; u++) t[u] += gc[u] * f;
        }
        for (int u = 0; u < mul; u++) dr[u] += fu[u] * t[u];
      }
    if (dx2) {
      for (int ia = 0; ia < d1; ia++) {
        const double *xr = xa + ia * mul;
        for (int u = 0; u < mul; u++) t[u] = fu[u] * xr[u];
        for (int c = 0; c < dO; c++) {
          const double *gc = g + c * mul;
          double        s  = 0.0;
          for (int u = 0; u < mul; u++) s += t[u] * gc[u];
          T[ia * dO + c] = s;
        }
      }
      TpContractYTranspose(tp, k, T, dx2 + tp->x2off[k]);
    }
    mo += (PetscInt)mul * dO;
  }
}

/* ---- symmetric contraction ----
   Per channel, out[M] = sum_nu sum_runs s P with s = sum_{p in run} Uw[p] X[q_nu(p)] and P the product
   of the run's shared factors X[q_1] ... X[q_{nu-1}]. With G = dout[M]:
     dX[q_nu(p)] += G P Uw[p] for every p of the run, dX[q_i] += G s prod_{j != i} X[q_j].
   Nodes go in batches of one element and channels in blocks, as the forward, so that each vector of
   Uw is loaded once per batch. */

static PetscInt ScbMaxOutDim(const HMSymContraction *sc)
{
  PetscInt d = 1;
  for (int k = 0; k < sc->nout; k++) d = PetscMax(d, 2 * sc->c[k].L + 1);
  return d;
}

PetscInt HMSymContractionBackwardWorkSize(const HMSymContraction *sc)
{
  const PetscInt nblk = (sc->C + HM_SCB_CW - 1) / HM_SCB_CW, ldq = HM_SCB_BATCH * HM_SCB_CW;
  /* Xt and dXt of a batch (all blocks), G of one block and output, plus alignment */
  return ldq * (2 * nblk * sc->Q + ScbMaxOutDim(sc)) + 8;
}

/* One contraction ct, channel block c0 (width cw), batch of B nodes: dXt[q][b][c] += ... (B and cw
   compile-time constants in the instances below, so that the loops over a batch's channels vectorise) */
static inline __attribute__((always_inline)) void ScbBlock(const int B, const PetscInt cw, const HMContraction *ct, int e, PetscInt c0, const double *restrict Xt, const double *restrict Gt, double *restrict dXt)
{
  const PetscInt C = ct->C, ldq = HM_SCB_BATCH * HM_SCB_CW;

  for (int nu = 1; nu <= ct->corr; nu++) {
    const PetscInt np = ct->npair[nu];
    const double  *Uw = ct->Uw[nu] + (PetscInt)e * np * C + c0 * np;
    const int     *pq = ct->pq[nu];
    for (PetscInt g = 0; g < ct->ngroup[nu]; g++) {
      const PetscInt p0 = ct->gstart[nu][g], p1 = ct->gstart[nu][g + 1];
      const int     *q = pq + p0 * nu;
      const double  *G = Gt + (PetscInt)ct->pM[nu][p0] * ldq;
      double         s[HM_SCB_BATCH * HM_SCB_CW], P[HM_SCB_BATCH * HM_SCB_CW], t[HM_SCB_BATCH * HM_SCB_CW];

      for (int i = 0; i < B * HM_SCB_CW; i++) {
        s[i] = 0.0;
        P[i] = G[i];
      }
      /* P = G X[q_1] ... X[q_{nu-1}] */
      for (int i = 0; i < nu - 1; i++) {
        const double *xi = Xt + (PetscInt)q[i] * ldq;
        for (int b = 0; b < B; b++)
          for (PetscInt c = 0; c < cw; c++) P[b * HM_SCB_CW + c] *= xi[b * HM_SCB_CW + c];
      }
      /* one pass over the run's Uw: s += Uw X[q_nu], dX[q_nu] += P Uw */
      for (PetscInt p = p0; p < p1; p++) {
        const PetscInt qn = pq[p * nu + nu - 1];
        const double  *u = Uw + p * cw, *xl = Xt + qn * ldq;
        double        *dl = dXt + qn * ldq;
        for (int b = 0; b < B; b++)
          for (PetscInt c = 0; c < cw; c++) {
            s[b * HM_SCB_CW + c] += u[c] * xl[b * HM_SCB_CW + c];
            dl[b * HM_SCB_CW + c] += P[b * HM_SCB_CW + c] * u[c];
          }
      }
      /* the shared factors: G s prod_{j != i} X[q_j] */
      for (int i = 0; i < nu - 1; i++) {
        double *di = dXt + (PetscInt)q[i] * ldq;
        for (int b = 0; b < B; b++)
          for (PetscInt c = 0; c < cw; c++) t[b * HM_SCB_CW + c] = G[b * HM_SCB_CW + c] * s[b * HM_SCB_CW + c];
        for (int j = 0; j < nu - 1; j++) {
          const double *xj = Xt + (PetscInt)q[j] * ldq;
          if (j == i) continue;
          for (int b = 0; b < B; b++)
            for (PetscInt c = 0; c < cw; c++) t[b * HM_SCB_CW + c] *= xj[b * HM_SCB_CW + c];
        }
        for (int b = 0; b < B; b++)
          for (PetscInt c = 0; c < cw; c++) di[b * HM_SCB_CW + c] += t[b * HM_SCB_CW + c];
      }
    }
  }
}

#if defined(__AVX512F__)
/* Nodes per register tile of the AVX-512 backward: s and P of a tile (2 x 4 x 2 vectors) and a row of
   Uw stay in registers (a whole batch of 8 would need more than the 32 vector registers) */
  #define HM_SCB_TILE 4

/* ScbBlock for blocks of NV vectors of 8 channels, the batch in tiles of up to HM_SCB_TILE nodes
   (inside each run, so that the run's Uw rows are loaded from L1 by the second tile) */
static inline __attribute__((always_inline)) void ScbBlockAvx512(const int B, const int NV, const HMContraction *ct, int e, PetscInt c0, const double *restrict Xt, const double *restrict Gt, double *restrict dXt)
{
  const PetscInt C = ct->C, ldq = HM_SCB_BATCH * HM_SCB_CW;
  const int      BT = B < HM_SCB_TILE ? B : HM_SCB_TILE;

  for (int nu = 1; nu <= ct->corr; nu++) {
    const PetscInt np = ct->npair[nu];
    const double  *Uw = ct->Uw[nu] + (PetscInt)e * np * C + c0 * np;
    const int     *pq = ct->pq[nu];
    for (PetscInt g = 0; g < ct->ngroup[nu]; g++) {
      const PetscInt p0 = ct->gstart[nu][g], p1 = ct->gstart[nu][g + 1];
      const int     *q  = pq + p0 * nu;
      const double  *G0 = Gt + (PetscInt)ct->pM[nu][p0] * ldq;
      for (int t0 = 0; t0 < B; t0 += BT) {
        const PetscInt to = (PetscInt)t0 * HM_SCB_CW;
        const double  *G  = G0 + to;
        __m512d        s[HM_SCB_TILE][HM_SCB_CW / 8], P[HM_SCB_TILE][HM_SCB_CW / 8];

        for (int b = 0; b < BT; b++)
          for (int v = 0; v < NV; v++) {
            s[b][v] = _mm512_setzero_pd();
            P[b][v] = _mm512_loadu_pd(G + b * HM_SCB_CW + 8 * v);
          }
        for (int i = 0; i < nu - 1; i++) {
          const double *xi = Xt + (PetscInt)q[i] * ldq + to;
          for (int b = 0; b < BT; b++)
            for (int v = 0; v < NV; v++) P[b][v] = _mm512_mul_pd(P[b][v], _mm512_loadu_pd(xi + b * HM_SCB_CW + 8 * v));
        }
        for (PetscInt p = p0; p < p1; p++) {
          const PetscInt qn = pq[p * nu + nu - 1];
          const double  *u = Uw + p * 8 * NV, *xl = Xt + qn * ldq + to;
          double        *dl = dXt + qn * ldq + to;
          __m512d        uv[HM_SCB_CW / 8];
          for (int v = 0; v < NV; v++) uv[v] = _mm512_loadu_pd(u + 8 * v);
          for (int b = 0; b < BT; b++)
            for (int v = 0; v < NV; v++) {
              s[b][v] = _mm512_fmadd_pd(uv[v], _mm512_loadu_pd(xl + b * HM_SCB_CW + 8 * v), s[b][v]);
              _mm512_storeu_pd(dl + b * HM_SCB_CW + 8 * v, _mm512_fmadd_pd(P[b][v], uv[v], _mm512_loadu_pd(dl + b * HM_SCB_CW + 8 * v)));
            }
        }
        if (nu < 2) continue;
        /* G s, then the shared factors' gradients */
        for (int b = 0; b < BT; b++)
          for (int v = 0; v < NV; v++) s[b][v] = _mm512_mul_pd(s[b][v], _mm512_loadu_pd(G + b * HM_SCB_CW + 8 * v));
        for (int i = 0; i < nu - 1; i++) {
          double *di = dXt + (PetscInt)q[i] * ldq + to;
          for (int b = 0; b < BT; b++)
            for (int v = 0; v < NV; v++) {
              __m512d t = s[b][v];
              for (int j = 0; j < nu - 1; j++)
                if (j != i) t = _mm512_mul_pd(t, _mm512_loadu_pd(Xt + (PetscInt)q[j] * ldq + to + b * HM_SCB_CW + 8 * v));
              _mm512_storeu_pd(di + b * HM_SCB_CW + 8 * v, _mm512_add_pd(_mm512_loadu_pd(di + b * HM_SCB_CW + 8 * v), t));
            }
        }
      }
    }
  }
}
  #define HM_SCB_KERNEL(B, cw, ct, e, c0, Xt, Gt, dXt)                               \
    do {                                                                             \
      if (cw == HM_SCB_CW) ScbBlockAvx512(B, HM_SCB_CW / 8, ct, e, c0, Xt, Gt, dXt); \
      else if (cw == 8) ScbBlockAvx512(B, 1, ct, e, c0, Xt, Gt, dXt);                \
      else ScbBlock(B, cw, ct, e, c0, Xt, Gt, dXt);                                  \
    } while (0)
#else
  #define HM_SCB_KERNEL(B, cw, ct, e, c0, Xt, Gt, dXt)                     \
    do {                                                                   \
      if (cw == HM_SCB_CW) ScbBlock(B, HM_SCB_CW, ct, e, c0, Xt, Gt, dXt); \
      else if (cw == 8) ScbBlock(B, 8, ct, e, c0, Xt, Gt, dXt);            \
      else ScbBlock(B, cw, ct, e, c0, Xt, Gt, dXt);                        \
    } while (0)
#endif

#define HM_SCB_INSTANCE(B)                                                                                                             \
  static void scb_block_##B(PetscInt cw, const HMContraction *ct, int e, PetscInt c0, const double *Xt, const double *Gt, double *dXt) \
  {                                                                                                                                    \
    HM_SCB_KERNEL(B, cw, ct, e, c0, Xt, Gt, dXt);                                                                                      \
  }
HM_SCB_INSTANCE(1)
HM_SCB_INSTANCE(2)
HM_SCB_INSTANCE(4)
HM_SCB_INSTANCE(8)

typedef void (*SCBFn)(PetscInt, const HMContraction *, int, PetscInt, const double *, const double *, double *);

/* a batch of B nodes is padded up to 1, 2, 4 or 8 nodes of zero features and zero output gradient */
static int ScbPadded(int B, SCBFn *f)
{
  static const SCBFn fn[] = {scb_block_1, scb_block_2, scb_block_4, scb_block_8};
  int                i    = 0;
  while ((1 << i) < B) i++;
  *f = fn[i];
  return 1 << i;
}

static void ScbNodes(const HMSymContraction *sc, const HMIrreps *target, int B, const PetscInt zb[], int e, const double *X, PetscInt ldx, const double *dout, PetscInt ldo, double *dX, double *work)
{
  const PetscInt C = sc->C, Q = sc->Q, ldq = HM_SCB_BATCH * HM_SCB_CW, nblk = (C + HM_SCB_CW - 1) / HM_SCB_CW;
  double        *Xt = (double *)(((uintptr_t)work + 63) & ~(uintptr_t)63), *dXt = Xt + nblk * Q * ldq, *Gt = dXt + nblk * Q * ldq;
  SCBFn          f;
  const int      Bp = ScbPadded(B, &f);

  /* the padding nodes: zero features and zero output gradient (their dX is computed and dropped) */
  memset(dXt, 0, sizeof(double) * (size_t)(nblk * Q * ldq));
  for (PetscInt r = 0; r < nblk * Q; r++)
    for (PetscInt c = B * HM_SCB_CW; c < Bp * HM_SCB_CW; c++) Xt[r * ldq + c] = 0.0;
  for (PetscInt r = 0; r < ScbMaxOutDim(sc); r++)
    for (PetscInt c = B * HM_SCB_CW; c < Bp * HM_SCB_CW; c++) Gt[r * ldq + c] = 0.0;
  HMSymContractionGatherNodes(target, C, Q, HM_SCB_CW, ldq, B, zb, X, ldx, PETSC_FALSE, Xt);
  for (PetscInt c0 = 0; c0 < C; c0 += HM_SCB_CW) {
    const PetscInt cw = PetscMin(HM_SCB_CW, C - c0);
    PetscInt       oo = 0;
    for (int k = 0; k < sc->nout; k++) {
      const HMContraction *ct = &sc->c[k];
      const int            d  = 2 * ct->L + 1;
      for (int b = 0; b < B; b++)
        for (PetscInt c = 0; c < cw; c++)
          for (int M = 0; M < d; M++) Gt[M * ldq + b * HM_SCB_CW + c] = dout[zb[b] * ldo + oo + (c0 + c) * d + M];
      f(cw, ct, e, c0, Xt + (c0 / HM_SCB_CW) * Q * ldq, Gt, dXt + (c0 / HM_SCB_CW) * Q * ldq);
      oo += C * d;
    }
  }
  for (int b = 0; b < B; b++) {
    double  *dx = dX + zb[b] * ldx;
    PetscInt q0 = 0, xo = 0;
    for (int k = 0; k < target->n; k++) {
      const int d = 2 * target->b[k].l + 1;
      for (PetscInt c = 0; c < C; c++) {
        const double *dxt = dXt + (c / HM_SCB_CW) * Q * ldq + b * HM_SCB_CW + c % HM_SCB_CW;
        for (int m = 0; m < d; m++) dx[xo + c * d + m] = dxt[(q0 + m) * ldq];
      }
      q0 += d;
      xo += C * d;
    }
  }
}

void HMSymContractionBackward(const HMSymContraction *sc, const HMIrreps *target, PetscInt n, const int elem[], const double *X, PetscInt ldx, const double *dout, PetscInt ldo, double *dX, double *work)
{
  const int nel = sc->nout > 0 ? sc->c[0].nel : 0;

  ZeroRows(n, HMIrrepsDim(target), dX, ldx);
  for (int e = 0; e < nel; e++) {
    PetscInt zb[HM_SCB_BATCH];
    int      B = 0;
    for (PetscInt z = 0; z < n; z++) {
      if (elem[z] != e) continue;
      zb[B++] = z;
      if (B == HM_SCB_BATCH) {
        ScbNodes(sc, target, B, zb, e, X, ldx, dout, ldo, dX, work);
        B = 0;
      }
    }
    if (B > 0) ScbNodes(sc, target, B, zb, e, X, ldx, dout, ldo, dX, work);
  }
}

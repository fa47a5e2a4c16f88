/* The "uvu" convolution tensor product of MACE with per-edge weights (one 3j contraction per path). */
#include "nn/nnimpl.h"
#include <math.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Sparse copy of the 3j tensors: summing only the non-zero terms in the same order gives the same
   bits as the dense loop for finite y (the skipped terms are +-0 and cannot change a sum that starts
   at +0), at a fraction of the cost when the channels are few */
static PetscErrorCode TpSparse3j(HMConvTP *tp)
{
  const HMIrreps *in1 = &tp->in1, *in2 = &tp->in2;
  const int       n   = tp->ninstr;
  PetscInt        nnz = 0;

  PetscFunctionBegin;
  for (int k = 0; k < n; k++) {
    const int d1 = 2 * in1->b[tp->i1[k]].l + 1, d2 = 2 * in2->b[tp->i2[k]].l + 1, dO = 2 * tp->mid.b[k].l + 1;
    for (int q = 0; q < d1 * d2 * dO; q++)
      if (tp->C[k][q] != 0.0) nnz++;
  }
  PetscCall(PetscMalloc4(n + 1, &tp->cnz_off, nnz + 1, &tp->cnz_slot, nnz + 1, &tp->cnz_b, nnz + 1, &tp->cnz_val));
  nnz = 0;
  for (int k = 0; k < n; k++) {
    const int d1 = 2 * in1->b[tp->i1[k]].l + 1, d2 = 2 * in2->b[tp->i2[k]].l + 1, dO = 2 * tp->mid.b[k].l + 1;
    tp->cnz_off[k] = nnz;
    for (int ia = 0; ia < d1; ia++)
      for (int c = 0; c < dO; c++)
        for (int b = 0; b < d2; b++) {
          const double v = tp->C[k][(ia * d2 + b) * dO + c];
          if (v == 0.0) continue;
          tp->cnz_slot[nnz] = ia * dO + c;
          tp->cnz_b[nnz]    = b;
          tp->cnz_val[nnz]  = v;
          nnz++;
        }
  }
  tp->cnz_off[n] = nnz;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMConvTPSetUp(HMConvTP *tp, const HMIrreps *in1, const HMIrreps *in2, const HMIrreps *target, HMSafetensors st, const char prefix[])
{
  HMIrreps lst;
  int      i1[HM_MAX_IRREP_BLOCKS], i2[HM_MAX_IRREP_BLOCKS], perm[HM_MAX_IRREP_BLOCKS], inv[HM_MAX_IRREP_BLOCKS];
  int      n   = 0;
  PetscInt off = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(tp, sizeof(*tp)));
  tp->in1 = *in1;
  tp->in2 = *in2;
  lst.n   = 0;
  for (int i = 0; i < in1->n; i++)
    for (int j = 0; j < in2->n; j++) {
      const int l1 = in1->b[i].l, l2 = in2->b[j].l, p = in1->b[i].p * in2->b[j].p;
      for (int l = PetscAbsInt(l1 - l2); l <= l1 + l2; l++)
        if (HMIrrepsContains(target, l, p)) {
          PetscCheck(n < HM_MAX_IRREP_BLOCKS, PETSC_COMM_SELF, PETSC_ERR_SUP, "tensor product has more than %d paths", HM_MAX_IRREP_BLOCKS);
          PetscCheck(l <= HM_LMAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "tensor product path to l = %d > %d", l, HM_LMAX);
          lst.b[n].mul = in1->b[i].mul;
          lst.b[n].l   = l;
          lst.b[n].p   = p;
          i1[n]        = i;
          i2[n]        = j;
          n++;
          lst.n = n;
        }
    }
  HMIrrepsSort(&lst, &tp->mid, perm);
  for (int k = 0; k < n; k++) inv[perm[k]] = k;
  tp->ninstr = n;
  PetscCall(PetscMalloc6(n + 1, &tp->i1, n + 1, &tp->i2, n + 1, &tp->io, n + 1, &tp->woff, n + 1, &tp->pw, n + 1, &tp->C));
  /* instructions sorted by output index, i.e. in sorted order: instruction k has output block k */
  for (int k = 0; k < n; k++) {
    const int old = perm[k];
    tp->i1[k]     = i1[old];
    tp->i2[k]     = i2[old];
    tp->io[k]     = k;
    (void)inv;
  }
  tp->maxcy = 0;
  for (int k = 0; k < n; k++) {
    const int l1 = in1->b[tp->i1[k]].l, l2 = in2->b[tp->i2[k]].l, lo = tp->mid.b[k].l;
    tp->woff[k] = off;
    off += in1->b[tp->i1[k]].mul;
    tp->pw[k] = PetscSqrtReal(2.0 * lo + 1.0);
    PetscCall(HMWigner3jGet(l1, l2, lo, &tp->C[k]));
    if (st && prefix) {
      char                name[256];
      const HMTensorInfo *info;
      PetscCall(PetscSNPrintf(name, sizeof(name), "%s._compiled_main_left_right._w3j_%d_%d_%d", prefix, l1, l2, lo));
      PetscCall(HMSafetensorsFind(st, name, &info));
      if (info) {
        const PetscInt64 shape[3] = {2 * l1 + 1, 2 * l2 + 1, 2 * lo + 1};
        const double    *Cf;
        const char      *path;
        PetscCall(HMSafetensorsGetF64(st, name, 3, shape, &Cf));
        PetscCall(HMSafetensorsGetPath(st, &path));
        /* single-precision training rounds these to ~1e-8; anything larger is not a 3j symbol */
        for (PetscInt q = 0; q < shape[0] * shape[1] * shape[2]; q++)
          PetscCheck(PetscAbsReal(Cf[q] - tp->C[k][q]) <= 1e-6, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' is not the Wigner 3j symbol (entry %" PetscInt_FMT " differs by %g)", path, name, q, PetscAbsReal(Cf[q] - tp->C[k][q]));
        tp->C[k] = Cf;
      }
    }
    tp->maxcy = PetscMax(tp->maxcy, (PetscInt)(2 * l1 + 1) * (2 * lo + 1));
  }
  PetscCall(TpSparse3j(tp));
  PetscCall(PetscMalloc2(n + 1, &tp->x1off, n + 1, &tp->x2off));
  for (int k = 0; k < n; k++) {
    tp->x1off[k] = HMIrrepsOffset(in1, tp->i1[k]);
    tp->x2off[k] = HMIrrepsOffset(in2, tp->i2[k]);
  }
  tp->weight_numel = off;
  tp->dim_in1      = HMIrrepsDim(in1);
  tp->dim_in2      = HMIrrepsDim(in2);
  tp->dim_mid      = HMIrrepsDim(&tp->mid);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* cy[a][c] = sum_b C_k[a][b][c] y[b] over the non-zero entries, in the order of b */
static inline void ContractY(const HMConvTP *tp, int k, int nslot, const double *y, double *cy)
{
  const PetscInt end = tp->cnz_off[k + 1];
  PetscInt       i   = tp->cnz_off[k];

  for (int q = 0; q < nslot; q++) cy[q] = 0.0;
  /* the entries of a slot are consecutive (sorted by slot, then b): each slot's sum in a register, in the
     same order as adding them to cy[slot] one by one (a store and reload per term was a latency chain) */
  while (i < end) {
    const int slot = tp->cnz_slot[i];
    double    s    = 0.0;
    for (; i < end && tp->cnz_slot[i] == slot; i++) s += tp->cnz_val[i] * y[tp->cnz_b[i]];
    cy[slot] = s;
  }
}

/* ContractY rounded to float once per slot (the single-precision tensor product). */
static inline void ContractYS(const HMConvTP *tp, int k, int nslot, const double *y, float *cy)
{
  const PetscInt end = tp->cnz_off[k + 1];
  PetscInt       i   = tp->cnz_off[k];

  for (int q = 0; q < nslot; q++) cy[q] = 0.0f;
  while (i < end) {
    const int slot = tp->cnz_slot[i];
    double    s    = 0.0;
    for (; i < end && tp->cnz_slot[i] == slot; i++) s += tp->cnz_val[i] * y[tp->cnz_b[i]];
    cy[slot] = (float)s;
  }
}

PetscErrorCode HMConvTPDestroy(HMConvTP *tp)
{
  PetscFunctionBegin;
  PetscCall(PetscFree6(tp->i1, tp->i2, tp->io, tp->woff, tp->pw, tp->C));
  PetscCall(PetscFree4(tp->cnz_off, tp->cnz_slot, tp->cnz_b, tp->cnz_val));
  PetscCall(PetscFree2(tp->x1off, tp->x2off));
  PetscCall(PetscMemzero(tp, sizeof(*tp)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

void HMConvTPApply(const HMConvTP *tp, const double *x1, const double *x2, const double *w, double beta, double *mid, double *cy)
{
  PetscInt mo = 0;
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const int      d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1;
    const double  *xa = x1 + tp->x1off[k];
    const double  *y  = x2 + tp->x2off[k];
    const double  *wk = w + tp->woff[k];
    double        *o  = mid + mo;

    ContractY(tp, k, d1 * dO, y, cy);
    for (int u = 0; u < a->mul; u++) {
      const double  f  = tp->pw[k] * wk[u];
      const double *xu = xa + u * d1;
      for (int c = 0; c < dO; c++) {
        double s = 0;
        for (int ia = 0; ia < d1; ia++) s += xu[ia] * cy[ia * dO + c];
        if (beta == 0.0) o[u * dO + c] = f * s;
        else o[u * dO + c] += f * s;
      }
    }
    mo += (PetscInt)a->mul * dO;
  }
}

/* Blocks b[0..nb-1] of a feature vector between [u][m] (a) and [m][u] (aT) layouts: toT copies a into aT,
   else aT into a. */
static inline void BlocksTranspose(int nb, const HMIrrep b[], PetscBool toT, double *a, double *aT)
{
  PetscInt off = 0;
  for (int k = 0; k < nb; k++) {
    const int mul = b[k].mul, d = 2 * b[k].l + 1;
    for (int u = 0; u < mul; u++)
      for (int m = 0; m < d; m++) {
        if (toT) aT[off + m * mul + u] = a[off + u * d + m];
        else a[off + u * d + m] = aT[off + m * mul + u];
      }
    off += (PetscInt)mul * d;
  }
}

void HMConvTPTransposeIn(const HMConvTP *tp, const double *x, double *xT)
{
  BlocksTranspose(tp->in1.n, tp->in1.b, PETSC_TRUE, (double *)x, xT);
}

void HMConvTPTransposeInBack(const HMConvTP *tp, const double *xT, double *x)
{
  BlocksTranspose(tp->in1.n, tp->in1.b, PETSC_FALSE, x, (double *)xT);
}

void HMConvTPTransposeOut(const HMConvTP *tp, const double *midT, double *mid)
{
  BlocksTranspose(tp->ninstr, tp->mid.b, PETSC_FALSE, mid, (double *)midT);
}

void HMConvTPTransposeOutBack(const HMConvTP *tp, const double *mid, double *midT)
{
  BlocksTranspose(tp->ninstr, tp->mid.b, PETSC_TRUE, (double *)mid, midT);
}

#if defined(__AVX512F__)
/* Output components c0 .. c0 + NC - 1 of channels u0 .. u0 + 8 NV - 1: t[c] = sum_ia x[ia][u] cy[ia][c] in
   ascending ia (a multiply and an add, no FMA), then o[c][u] += (pw w[u]) t[c]. The NC x NV partial sums are
   independent chains (one component alone is a chain of dependent adds, latency-bound) and share each load of
   x; every element sees the same operations in the same order whatever NC is, so the same bits. */
static inline __attribute__((always_inline)) void ChannelsAvx512(const int NC, const int NV, int u0, int mul, int d1, int dO, int c0, const double *cy, const double *xa, const double *wk, __m512d vp, double *o)
{
  __m512d t[4][4];
  for (int c = 0; c < NC; c++)
    for (int v = 0; v < NV; v++) t[c][v] = _mm512_setzero_pd();
  for (int ia = 0; ia < d1; ia++) {
    const double *xr = xa + ia * mul + u0;
    __m512d       xv[4];
    for (int v = 0; v < NV; v++) xv[v] = _mm512_loadu_pd(xr + 8 * v);
    for (int c = 0; c < NC; c++) {
      const __m512d f = _mm512_set1_pd(cy[ia * dO + c0 + c]);
      for (int v = 0; v < NV; v++) t[c][v] = _mm512_add_pd(t[c][v], _mm512_mul_pd(xv[v], f));
    }
  }
  for (int c = 0; c < NC; c++) {
    double *oc = o + (c0 + c) * mul + u0;
    for (int v = 0; v < NV; v++) _mm512_storeu_pd(oc + 8 * v, _mm512_add_pd(_mm512_loadu_pd(oc + 8 * v), _mm512_mul_pd(_mm512_mul_pd(vp, _mm512_loadu_pd(wk + u0 + 8 * v)), t[c][v])));
  }
}

/* All dO components of channels u0 .. u0 + 8 NV - 1, up to 4 at a time. */
static inline __attribute__((always_inline)) void ComponentsAvx512(const int NV, int u0, int mul, int d1, int dO, const double *cy, const double *xa, const double *wk, __m512d vp, double *o)
{
  int c0 = 0;
  for (; c0 + 4 <= dO; c0 += 4) ChannelsAvx512(4, NV, u0, mul, d1, dO, c0, cy, xa, wk, vp, o);
  switch (dO - c0) {
  case 3:
    ChannelsAvx512(3, NV, u0, mul, d1, dO, c0, cy, xa, wk, vp, o);
    break;
  case 2:
    ChannelsAvx512(2, NV, u0, mul, d1, dO, c0, cy, xa, wk, vp, o);
    break;
  case 1:
    ChannelsAvx512(1, NV, u0, mul, d1, dO, c0, cy, xa, wk, vp, o);
    break;
  default:
    break;
  }
}
#endif

void HMConvTPApplyT(const HMConvTP *tp, const double *x1T, const double *x2, const double *w, double *midT, double *work)
{
  double  *cy = work, *t = work + tp->maxcy;
  PetscInt mo = 0;
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const int      d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1, mul = a->mul;
    const double  *xa = x1T + tp->x1off[k];
    const double  *y  = x2 + tp->x2off[k];
    const double  *wk = w + tp->woff[k];
    const double   pw = tp->pw[k];
    double        *o  = midT + mo;

    ContractY(tp, k, d1 * dO, y, cy);
#if defined(__AVX512F__)
    /* channels in whole vectors, blocks of 32 (then single vectors), components up to 4 at a time: the
       partial sums stay in registers; the same multiplies and adds per element as the loops below, so the same bits */
    if (mul % 8 == 0) {
      const __m512d vp = _mm512_set1_pd(pw);
      int           u0 = 0;
      for (; u0 + 32 <= mul; u0 += 32) ComponentsAvx512(4, u0, mul, d1, dO, cy, xa, wk, vp, o);
      for (; u0 < mul; u0 += 8) ComponentsAvx512(1, u0, mul, d1, dO, cy, xa, wk, vp, o);
      mo += (PetscInt)mul * dO;
      continue;
    }
#endif
    for (int c = 0; c < dO; c++) {
      double *oc = o + c * mul;
      for (int u = 0; u < mul; u++) t[u] = 0.0;
      for (int ia = 0; ia < d1; ia++) {
        const double  f  = cy[ia * dO + c];
        const double *xr = xa + ia * mul;
        for (int u = 0; u < mul; u++) t[u] += xr[u] * f;
      }
      for (int u = 0; u < mul; u++) oc[u] += (pw * wk[u]) * t[u];
    }
    mo += (PetscInt)mul * dO;
  }
}

#if defined(__AVX512F__)
/* Single precision: components c0 .. c0 + NC - 1 of channels u0 .. u0 + 16 NV - 1 (as ChannelsAvx512), t[c] =
   sum_ia x[ia][u] cy[ia][c] by FMAs in ascending ia, then o[c][u] += (pw w[u]) t[c]. */
static inline __attribute__((always_inline)) void ChannelsAvx512S(const int NC, const int NV, int u0, int mul, int d1, int dO, int c0, const float *cy, const float *xa, const float *wk, __m512 vp, float *o)
{
  __m512 t[4][4];
  for (int c = 0; c < NC; c++)
    for (int v = 0; v < NV; v++) t[c][v] = _mm512_setzero_ps();
  for (int ia = 0; ia < d1; ia++) {
    const float *xr = xa + ia * mul + u0;
    __m512       xv[4];
    for (int v = 0; v < NV; v++) xv[v] = _mm512_loadu_ps(xr + 16 * v);
    for (int c = 0; c < NC; c++) {
      const __m512 f = _mm512_set1_ps(cy[ia * dO + c0 + c]);
      for (int v = 0; v < NV; v++) t[c][v] = _mm512_fmadd_ps(xv[v], f, t[c][v]);
    }
  }
  for (int c = 0; c < NC; c++) {
    float *oc = o + (c0 + c) * mul + u0;
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(oc + 16 * v, _mm512_fmadd_ps(_mm512_mul_ps(vp, _mm512_loadu_ps(wk + u0 + 16 * v)), t[c][v], _mm512_loadu_ps(oc + 16 * v)));
  }
}

/* The same for a last block of 8 channels, in 256-bit vectors (masked 512-bit loads and stores were slower
   than the float64 kernel on this block). */
static inline __attribute__((always_inline)) void Channels8S(const int NC, int u0, int mul, int d1, int dO, int c0, const float *cy, const float *xa, const float *wk, float pw, float *o)
{
  __m256 t[4];
  for (int c = 0; c < NC; c++) t[c] = _mm256_setzero_ps();
  for (int ia = 0; ia < d1; ia++) {
    const __m256 xv = _mm256_loadu_ps(xa + ia * mul + u0);
    for (int c = 0; c < NC; c++) t[c] = _mm256_fmadd_ps(xv, _mm256_set1_ps(cy[ia * dO + c0 + c]), t[c]);
  }
  for (int c = 0; c < NC; c++) {
    float *oc = o + (c0 + c) * mul + u0;
    _mm256_storeu_ps(oc, _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(pw), _mm256_loadu_ps(wk + u0)), t[c], _mm256_loadu_ps(oc)));
  }
}

/* All dO components of channels u0 .. u0 + 16 NV - 1 (NV = 0: the 8 channels u0 .. u0 + 7), up to 4 at a time. */
static inline __attribute__((always_inline)) void ComponentsAvx512S(const int NV, int u0, int mul, int d1, int dO, const float *cy, const float *xa, const float *wk, float pw, float *o)
{
  const __m512 vp = _mm512_set1_ps(pw);
  for (int c0 = 0; c0 < dO; c0 += 4) {
    const int nc = PetscMin(4, dO - c0);
  #define HM_TPS_CASE(NC)                                                    \
  case NC:                                                                   \
    if (NV) ChannelsAvx512S(NC, NV, u0, mul, d1, dO, c0, cy, xa, wk, vp, o); \
    else Channels8S(NC, u0, mul, d1, dO, c0, cy, xa, wk, pw, o);             \
    break;
    switch (nc) {
      HM_TPS_CASE(4)
      HM_TPS_CASE(3)
      HM_TPS_CASE(2)
      HM_TPS_CASE(1)
    default:
      break;
    }
  #undef HM_TPS_CASE
  }
}
#endif

void HMConvTPApplyTS(const HMConvTP *tp, const float *x1T, const double *x2, const float *w, float *midT, double *work, float *cys)
{
  (void)work; /* the 3j contraction is rounded to float as it is formed (ContractYS) */
  PetscInt mo = 0;
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const int      d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1, mul = a->mul;
    const float   *xa = x1T + tp->x1off[k];
    const float   *wk = w + tp->woff[k];
    const float    pw = (float)tp->pw[k];
    float         *o  = midT + mo;

    ContractYS(tp, k, d1 * dO, x2 + tp->x2off[k], cys);
#if defined(__AVX512F__)
    /* multiplicities that are multiples of 8: blocks of 64 and 16 channels, then one of 8 */
    if (mul % 8 == 0) {
      int u0 = 0;
      for (; u0 + 64 <= mul; u0 += 64) ComponentsAvx512S(4, u0, mul, d1, dO, cys, xa, wk, pw, o);
      for (; u0 + 16 <= mul; u0 += 16) ComponentsAvx512S(1, u0, mul, d1, dO, cys, xa, wk, pw, o);
      if (u0 < mul) ComponentsAvx512S(0, u0, mul, d1, dO, cys, xa, wk, pw, o);
      mo += (PetscInt)mul * dO;
      continue;
    }
#endif
    for (int c = 0; c < dO; c++) {
      float *oc = o + c * mul;
      for (int u = 0; u < mul; u++) {
        float t = 0.0f;
        for (int ia = 0; ia < d1; ia++) t = fmaf(xa[ia * mul + u], cys[ia * dO + c], t);
        oc[u] = fmaf(pw * wk[u], t, oc[u]);
      }
    }
    mo += (PetscInt)mul * dO;
  }
}

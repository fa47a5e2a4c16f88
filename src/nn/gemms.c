/* Single-precision row-wise product with packed weights (the -precision single path of the layers). Like
   HMGemmRows, a row's result never depends on the other rows: each element is alpha s (+ beta c) with s a
   chain of fused multiply-adds in ascending k, whichever tile, row group or column tail it falls in, so
   the single-precision path keeps the bitwise rank-count invariance. */
#include "nn/nnimpl.h"
#include <math.h>
#include <stdint.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Columns per packed block: 4 vectors of 16 floats (the double kernel's block is 4 vectors of 8). */
#define HM_SB 64

PetscErrorCode HMGemmPackS(PetscInt n, PetscInt k, const double *B, PetscInt ldb, HMGemmPackedS *P)
{
  const PetscInt np = (n + HM_SB - 1) / HM_SB;

  PetscFunctionBegin;
  P->n = n;
  P->k = k;
  PetscCall(PetscCalloc1(np * k * HM_SB + 16, &P->mem));
  P->B = (float *)(((uintptr_t)P->mem + 63) & ~(uintptr_t)63);
  for (PetscInt j0 = 0; j0 < n; j0 += HM_SB) {
    const PetscInt nj  = PetscMin(HM_SB, n - j0);
    float         *dst = P->B + (j0 / HM_SB) * k * HM_SB;
    for (PetscInt p = 0; p < k; p++)
      for (PetscInt j = 0; j < nj; j++) dst[HM_SB * p + j] = (float)B[p * ldb + j0 + j];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGemmPackedSDestroy(HMGemmPackedS *P)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(P->mem));
  P->B = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

#if defined(__AVX512F__)
/* R rows x NV vectors of 16 columns, the last vector masked by ml; B's block has row stride HM_SB. */
static inline __attribute__((always_inline)) void TileS(const int R, const int NV, const float *const *ar, float *const *cr, PetscInt k, const float *b, PetscInt ldb, __mmask16 ml, float alpha, float beta)
{
  __m512       acc[4][4];
  const float *a0 = ar[0], *a1 = R > 1 ? ar[1] : ar[0], *a2 = R > 2 ? ar[2] : ar[0], *a3 = R > 3 ? ar[3] : ar[0];

  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  for (PetscInt p = 0; p < k; p++, b += ldb) {
    __m512 bv[4];
    for (int v = 0; v < NV; v++) bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(ml, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
    {
      const __m512 x = _mm512_set1_ps(a0[p]);
      for (int v = 0; v < NV; v++) acc[0][v] = _mm512_fmadd_ps(x, bv[v], acc[0][v]);
    }
    if (R > 1) {
      const __m512 x = _mm512_set1_ps(a1[p]);
      for (int v = 0; v < NV; v++) acc[1][v] = _mm512_fmadd_ps(x, bv[v], acc[1][v]);
    }
    if (R > 2) {
      const __m512 x = _mm512_set1_ps(a2[p]);
      for (int v = 0; v < NV; v++) acc[2][v] = _mm512_fmadd_ps(x, bv[v], acc[2][v]);
    }
    if (R > 3) {
      const __m512 x = _mm512_set1_ps(a3[p]);
      for (int v = 0; v < NV; v++) acc[3][v] = _mm512_fmadd_ps(x, bv[v], acc[3][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      const __mmask16 mk = v == NV - 1 ? ml : (__mmask16)0xffff;
      __m512          y  = alpha == 1.0f ? acc[r][v] : _mm512_mul_ps(_mm512_set1_ps(alpha), acc[r][v]);
      if (beta != 0.0f) y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mk, cr[r] + 16 * v)));
      _mm512_mask_storeu_ps(cr[r] + 16 * v, mk, y);
    }
}

static inline __attribute__((always_inline)) void BlockS(const int NV, PetscInt m, const PetscInt *rows, PetscInt k, float alpha, const float *A, PetscInt lda, const float *b, PetscInt ldb, float beta, float *C, PetscInt ldc, __mmask16 ml)
{
  for (PetscInt i0 = 0; i0 < m; i0 += 4) {
    const int    R = (int)PetscMin(4, m - i0);
    const float *ar[4];
    float       *cr[4];
    for (int r = 0; r < R; r++) {
      const PetscInt i = rows ? rows[i0 + r] : i0 + r;
      ar[r]            = A + i * lda;
      cr[r]            = C + i * ldc;
    }
    if (R == 4) TileS(4, NV, ar, cr, k, b, ldb, ml, alpha, beta);
    else
      for (int r = 0; r < R; r++) TileS(1, NV, ar + r, cr + r, k, b, ldb, ml, alpha, beta);
  }
}

static void PanelS(PetscInt m, const PetscInt *rows, PetscInt nj, PetscInt k, float alpha, const float *A, PetscInt lda, const float *b, PetscInt ldb, float beta, float *C, PetscInt ldc)
{
  const PetscInt  nv = (nj + 15) / 16, c = nj - 16 * (nv - 1);
  const __mmask16 ml = (__mmask16)(c >= 16 ? 0xffffu : (1u << c) - 1u);

  switch (nv) {
  case 4:
    BlockS(4, m, rows, k, alpha, A, lda, b, ldb, beta, C, ldc, ml);
    break;
  case 3:
    BlockS(3, m, rows, k, alpha, A, lda, b, ldb, beta, C, ldc, ml);
    break;
  case 2:
    BlockS(2, m, rows, k, alpha, A, lda, b, ldb, beta, C, ldc, ml);
    break;
  default:
    BlockS(1, m, rows, k, alpha, A, lda, b, ldb, beta, C, ldc, ml);
  }
}
#else
/* Portable: the same chain of fused multiply-adds per element (fmaf), one row at a time. */
static void PanelS(PetscInt m, const PetscInt *rows, PetscInt nj, PetscInt k, float alpha, const float *A, PetscInt lda, const float *b, PetscInt ldb, float beta, float *C, PetscInt ldc)
{
  for (PetscInt i0 = 0; i0 < m; i0++) {
    const PetscInt i  = rows ? rows[i0] : i0;
    const float   *ai = A + i * lda;
    float         *ci = C + i * ldc;
    for (PetscInt j = 0; j < nj; j++) {
      float s = 0.0f, y;
      for (PetscInt p = 0; p < k; p++) s = fmaf(ai[p], b[p * ldb + j], s);
      y     = alpha == 1.0f ? s : alpha * s;
      ci[j] = beta != 0.0f ? y + beta * ci[j] : y;
    }
  }
}
#endif

void HMGemmRowsPackedS(PetscInt m, const PetscInt rows[], float alpha, const float *A, PetscInt lda, const HMGemmPackedS *P, float beta, float *C, PetscInt ldc)
{
  for (PetscInt j0 = 0; j0 < P->n; j0 += HM_SB) PanelS(m, rows, PetscMin(HM_SB, P->n - j0), P->k, alpha, A, lda, P->B + (j0 / HM_SB) * P->k * HM_SB, HM_SB, beta, C + j0, ldc);
}

void HMGemmRowsS(PetscInt m, const PetscInt rows[], PetscInt n, PetscInt k, const float *A, PetscInt lda, const float *B, PetscInt ldb, float *C, PetscInt ldc)
{
  for (PetscInt j0 = 0; j0 < n; j0 += HM_SB) PanelS(m, rows, PetscMin(HM_SB, n - j0), k, 1.0f, A, lda, B + j0, ldb, 0.0f, C + j0, ldc);
}

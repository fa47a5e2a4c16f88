/* Row-wise matrix product whose result for a row never depends on the other rows: the rank-count
   invariance of hipmace (bitwise) rests on it, since edge and atom batches differ between partitions. */
#include "nn/nnimpl.h"
#include "nn/simd.h"
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Every element is computed as alpha * s (+ beta * c) with s = fma(a[k-1], b[k-1], ... fma(a[0], b[0], 0)),
   the sum over p in ascending order with fused multiply-adds, whichever Tile, row group, column tail or
   code path (AVX-512 or portable) it falls in. So a row's result is independent of the batch and of
   the row's position in it (BLAS libraries give no such guarantee: their edge tiles use other code). */

#if defined(__AVX512F__)
/* Tiles of R rows x NV vectors of 8 columns (the last one masked when the block is narrower). With R = 4
   and NV = 4 (16 accumulators in registers) each p costs 4 loads of B, 4 broadcasts of A and 16 FMAs,
   so the FMA units are the limit. rows == NULL: rows i0 .. i0 + R - 1, else rows[i0 + r]. */
static inline __attribute__((always_inline)) void Tile(const int R, const int NV, PetscInt i0, const PetscInt *rows, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc, const __mmask8 mk[4])
{
  __m512d       acc[4][4];
  const double *a[4];
  double       *c[4];
  const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);

  for (int r = 0; r < R; r++) {
    const PetscInt i = rows ? rows[i0 + r] : i0 + r;
    a[r]             = A + i * lda;
    c[r]             = C + i * ldc;
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_pd();
  }
  for (PetscInt p = 0; p < k; p++) {
    const double *b = B + p * ldb;
    __m512d       bv[4];
    for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_pd(mk[v], b + 8 * v);
    for (int r = 0; r < R; r++) {
      const __m512d x = _mm512_set1_pd(a[r][p]);
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_pd(x, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      /* alpha = 1 leaves every value unchanged bit for bit (also -0, inf, NaN): skip the multiply */
      __m512d y = alpha == 1.0 ? acc[r][v] : _mm512_mul_pd(va, acc[r][v]);
      if (beta != 0.0) y = _mm512_add_pd(y, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(mk[v], c[r] + 8 * v)));
      _mm512_mask_storeu_pd(c[r] + 8 * v, mk[v], y);
    }
}

  /* Rows in tiles of 4 (then single rows) for one column block of NV vectors. */
  #define HM_GEMM_BLOCK(NV)                                                                                     \
    do {                                                                                                        \
      PetscInt i0 = 0;                                                                                          \
      for (; i0 + 4 <= m; i0 += 4) Tile(4, NV, i0, rows, k, alpha, A, lda, B + j0, ldb, beta, C + j0, ldc, mk); \
      for (; i0 < m; i0++) Tile(1, NV, i0, rows, k, alpha, A, lda, B + j0, ldb, beta, C + j0, ldc, mk);         \
    } while (0)

static void Gemm(PetscInt m, const PetscInt *rows, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  for (PetscInt j0 = 0; j0 < n; j0 += 32) {
    /* a block of up to 32 columns; the last vector of a narrower block is masked */
    const PetscInt nj = PetscMin(32, n - j0), nv = (nj + 7) / 8;
    __mmask8       mk[4];
    for (int v = 0; v < 4; v++) {
      const PetscInt c = nj - 8 * v;
      mk[v]            = (__mmask8)(c >= 8 ? 0xffu : c > 0 ? (1u << c) - 1u :
                                                             0u);
    }
    switch (nv) {
    case 4:
      HM_GEMM_BLOCK(4);
      break;
    case 3:
      HM_GEMM_BLOCK(3);
      break;
    case 2:
      HM_GEMM_BLOCK(2);
      break;
    default:
      HM_GEMM_BLOCK(1);
    }
  }
}
#else
  /* Portable version: the same operations per element (HM_FMA is exactly rounded where the hardware has
   FMA, so it gives the same bits as the vector units). Blocked over HM_GR rows x HM_GC columns for register reuse. */
  #define HM_GR 4
  #define HM_GC 16

static void Gemm(PetscInt m, const PetscInt *rows, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  for (PetscInt i0 = 0; i0 < m; i0 += HM_GR) {
    const PetscInt nr = PetscMin(HM_GR, m - i0);
    const double  *a[HM_GR];
    double        *c[HM_GR];
    for (PetscInt r = 0; r < nr; r++) {
      const PetscInt i = rows ? rows[i0 + r] : i0 + r;
      a[r]             = A + i * lda;
      c[r]             = C + i * ldc;
    }
    for (PetscInt j0 = 0; j0 < n; j0 += HM_GC) {
      const PetscInt nj = PetscMin(HM_GC, n - j0);
      double         acc[HM_GR][HM_GC];
      for (PetscInt r = 0; r < HM_GR; r++)
        for (PetscInt j = 0; j < HM_GC; j++) acc[r][j] = 0.0;
      for (PetscInt p = 0; p < k; p++) {
        const double *b = B + p * ldb + j0;
        for (PetscInt r = 0; r < nr; r++) {
          const double x = a[r][p];
          for (PetscInt j = 0; j < nj; j++) acc[r][j] = HM_FMA(x, b[j], acc[r][j]);
        }
      }
      for (PetscInt r = 0; r < nr; r++) {
        double *cr = c[r] + j0;
        if (beta == 0.0)
          for (PetscInt j = 0; j < nj; j++) cr[j] = alpha * acc[r][j];
        else
          for (PetscInt j = 0; j < nj; j++) cr[j] = alpha * acc[r][j] + beta * cr[j];
      }
    }
  }
}
#endif

void HMGemmRows(PetscInt m, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  Gemm(m, NULL, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void HMGemmRowsIndexed(PetscInt m, const PetscInt rows[], PetscInt n, PetscInt k, const double *A, PetscInt lda, const double *B, PetscInt ldb, double *C, PetscInt ldc)
{
  Gemm(m, rows, n, k, 1.0, A, lda, B, ldb, 0.0, C, ldc);
}

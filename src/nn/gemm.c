/* Row-wise matrix product whose result for a row never depends on the other rows: the rank-count
   invariance of hipmace (bitwise) rests on it, since edge and atom batches differ between partitions. */
#include "nn/nnimpl.h"
#include "nn/simd.h"
#include <stdint.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Every element is computed as alpha * s (+ beta * c) with s = fma(a[k-1], b[k-1], ... fma(a[0], b[0], 0)),
   the sum over p in ascending order with fused multiply-adds, whichever Tile, row group, column tail or
   code path (AVX-512 or portable) it falls in. So a row's result is independent of the batch and of
   the row's position in it (BLAS libraries give no such guarantee: their edge tiles use other code). */

/* Columns j0 .. j0 + nj - 1 (nj <= 32) of the k rows of B, row stride ldb, into a block with row stride 32. */
static void PackBlock(PetscInt k, PetscInt nj, const double *B, PetscInt ldb, double *dst)
{
  for (PetscInt p = 0; p < k; p++)
    for (PetscInt j = 0; j < nj; j++) dst[32 * p + j] = B[p * ldb + j];
}

#if defined(__AVX512F__)
/* One tile: R rows x NV vectors of 8 columns, the last vector masked by ml (0xff for a full block). The
   row pointers advance with p, and alpha and beta are applied after the loop: in the loop only the R x NV
   accumulators, NV vectors of B and one broadcast are live (with R = 4, NV = 4: 21 of the 32 vector
   registers), so the compiler keeps them all in registers. */
static inline __attribute__((always_inline)) void Tile(const int R, const int NV, const double *const *ar, double *const *cr, PetscInt k, const double *b, PetscInt ldb, __mmask8 ml, double alpha, double beta)
{
  __m512d       acc[4][4];
  const double *a0 = ar[0], *a1 = R > 1 ? ar[1] : ar[0], *a2 = R > 2 ? ar[2] : ar[0], *a3 = R > 3 ? ar[3] : ar[0];

  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_pd();
  for (PetscInt p = 0; p < k; p++, b += ldb) {
    __m512d bv[4];
    for (int v = 0; v < NV; v++) bv[v] = v == NV - 1 ? _mm512_maskz_loadu_pd(ml, b + 8 * v) : _mm512_loadu_pd(b + 8 * v);
    {
      const __m512d x = _mm512_set1_pd(a0[p]);
      for (int v = 0; v < NV; v++) acc[0][v] = _mm512_fmadd_pd(x, bv[v], acc[0][v]);
    }
    if (R > 1) {
      const __m512d x = _mm512_set1_pd(a1[p]);
      for (int v = 0; v < NV; v++) acc[1][v] = _mm512_fmadd_pd(x, bv[v], acc[1][v]);
    }
    if (R > 2) {
      const __m512d x = _mm512_set1_pd(a2[p]);
      for (int v = 0; v < NV; v++) acc[2][v] = _mm512_fmadd_pd(x, bv[v], acc[2][v]);
    }
    if (R > 3) {
      const __m512d x = _mm512_set1_pd(a3[p]);
      for (int v = 0; v < NV; v++) acc[3][v] = _mm512_fmadd_pd(x, bv[v], acc[3][v]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      const __mmask8 mk = v == NV - 1 ? ml : (__mmask8)0xff;
      /* alpha = 1 leaves every value unchanged bit for bit (also -0, inf, NaN): skip the multiply */
      __m512d y = alpha == 1.0 ? acc[r][v] : _mm512_mul_pd(_mm512_set1_pd(alpha), acc[r][v]);
      if (beta != 0.0) y = _mm512_add_pd(y, _mm512_mul_pd(_mm512_set1_pd(beta), _mm512_maskz_loadu_pd(mk, cr[r] + 8 * v)));
      _mm512_mask_storeu_pd(cr[r] + 8 * v, mk, y);
    }
}

/* Rows in tiles of 4 (then single rows) for one column block of NV vectors. */
static inline __attribute__((always_inline)) void Block(const int NV, PetscInt m, const PetscInt *rows, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc, __mmask8 ml)
{
  PetscInt i0 = 0;
  for (; i0 < m; i0 += 4) {
    const int     R = (int)PetscMin(4, m - i0);
    const double *ar[4];
    double       *cr[4];
    for (int r = 0; r < R; r++) {
      const PetscInt i = rows ? rows[i0 + r] : i0 + r;
      ar[r]            = A + i * lda;
      cr[r]            = C + i * ldc;
    }
    if (R == 4) Tile(4, NV, ar, cr, k, B, ldb, ml, alpha, beta);
    else
      for (int r = 0; r < R; r++) Tile(1, NV, ar + r, cr + r, k, B, ldb, ml, alpha, beta);
  }
}

  /* A column block of B is read once per tile of 4 rows. Rows of B lie ldb doubles apart, which for the
   layers' widths (ldb = 128, 2176, ...) puts the block's lines in a few L1 sets that evict each other, and
   B need not be 64-byte aligned (two lines per vector load). With enough rows the block is first copied
   into an aligned contiguous buffer of HM_GEMM_PACK_K x 32 doubles (same values, same FMA chain). */
  #define HM_GEMM_PACK_K 256

/* One column block of nj <= 32 columns, B's block at b with row stride lb. */
static void Panel(PetscInt m, const PetscInt *rows, PetscInt nj, PetscInt k, double alpha, const double *A, PetscInt lda, const double *b, PetscInt lb, double beta, double *C, PetscInt ldc)
{
  /* the last vector of a narrower block is masked */
  const PetscInt nv = (nj + 7) / 8, c = nj - 8 * (nv - 1);
  const __mmask8 ml = (__mmask8)(c >= 8 ? 0xffu : (1u << c) - 1u);

  switch (nv) {
  case 4:
    Block(4, m, rows, k, alpha, A, lda, b, lb, beta, C, ldc, ml);
    break;
  case 3:
    Block(3, m, rows, k, alpha, A, lda, b, lb, beta, C, ldc, ml);
    break;
  case 2:
    Block(2, m, rows, k, alpha, A, lda, b, lb, beta, C, ldc, ml);
    break;
  default:
    Block(1, m, rows, k, alpha, A, lda, b, lb, beta, C, ldc, ml);
  }
}

static void Gemm(PetscInt m, const PetscInt *rows, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  double          pack[HM_GEMM_PACK_K * 32] __attribute__((aligned(64)));
  const PetscBool packed = (PetscBool)(m >= 8 && k <= HM_GEMM_PACK_K);

  for (PetscInt j0 = 0; j0 < n; j0 += 32) {
    const PetscInt nj = PetscMin(32, n - j0);

    if (packed) {
      PackBlock(k, nj, B + j0, ldb, pack);
      Panel(m, rows, nj, k, alpha, A, lda, pack, 32, beta, C + j0, ldc);
    } else Panel(m, rows, nj, k, alpha, A, lda, B + j0, ldb, beta, C + j0, ldc);
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

PetscErrorCode HMGemmPack(PetscInt n, PetscInt k, const double *B, PetscInt ldb, HMGemmPacked *P)
{
  const PetscInt np = (n + 31) / 32;

  PetscFunctionBegin;
  P->n = n;
  P->k = k;
  PetscCall(PetscCalloc1(np * k * 32 + 8, &P->mem));
  P->B = (double *)(((uintptr_t)P->mem + 63) & ~(uintptr_t)63);
  for (PetscInt j0 = 0; j0 < n; j0 += 32) PackBlock(k, PetscMin(32, n - j0), B + j0, ldb, P->B + (j0 / 32) * k * 32);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGemmPackedDestroy(HMGemmPacked *P)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(P->mem));
  P->B = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

void HMGemmRowsPackedIndexed(PetscInt m, const PetscInt rows[], double alpha, const double *A, PetscInt lda, const HMGemmPacked *P, double beta, double *C, PetscInt ldc)
{
  for (PetscInt j0 = 0; j0 < P->n; j0 += 32) {
    const double *b = P->B + (j0 / 32) * P->k * 32;
#if defined(__AVX512F__)
    Panel(m, rows, PetscMin(32, P->n - j0), P->k, alpha, A, lda, b, 32, beta, C + j0, ldc);
#else
    Gemm(m, rows, PetscMin(32, P->n - j0), P->k, alpha, A, lda, b, 32, beta, C + j0, ldc);
#endif
  }
}

void HMGemmRowsPacked(PetscInt m, double alpha, const double *A, PetscInt lda, const HMGemmPacked *P, double beta, double *C, PetscInt ldc)
{
  HMGemmRowsPackedIndexed(m, NULL, alpha, A, lda, P, beta, C, ldc);
}

/* Matrix product whose result for a row never depends on the other rows: the rank-count invariance of
   hipmace (bitwise) rests on it, since edge and atom batches differ between partitions. */
#include <hipmace/nn.h>
#include <cblas.h>

/* Every row goes through a BLAS call of exactly HM_GEMM_ROWS rows (the remainder is padded with zero
   rows), so the kernel path, the blocking and the accumulation order of a row are always the same
   whatever batch it belongs to. A plain dgemm over m rows does not guarantee that: its edge tiles for
   the last m mod tile rows use other code. */
#define HM_GEMM_ROWS 32

static double  *padA = NULL, *padC = NULL;
static PetscInt padA_n = 0, padC_n = 0;

static void free_pads(void)
{
  free(padA);
  free(padC);
  padA = padC = NULL;
  padA_n = padC_n = 0;
}

void HMGemmRows(PetscInt m, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  const PetscInt full = (m / HM_GEMM_ROWS) * HM_GEMM_ROWS, rem = m - full;
  if (n == 0 || m == 0) return;
  if (k == 0) {
    for (PetscInt i = 0; i < m; i++)
      for (PetscInt j = 0; j < n; j++) C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
    return;
  }
  for (PetscInt i0 = 0; i0 < full; i0 += HM_GEMM_ROWS) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, HM_GEMM_ROWS, (int)n, (int)k, alpha, A + i0 * lda, (int)lda, B, (int)ldb, beta, C + i0 * ldc, (int)ldc);
  if (rem) {
    if (padA_n < HM_GEMM_ROWS * k || padC_n < HM_GEMM_ROWS * n) {
      static int registered = 0;
      if (!registered) {
        atexit(free_pads);
        registered = 1;
      }
      if (padA_n < HM_GEMM_ROWS * k) {
        free(padA);
        padA_n = HM_GEMM_ROWS * k;
        padA   = (double *)malloc(sizeof(double) * (size_t)padA_n);
      }
      if (padC_n < HM_GEMM_ROWS * n) {
        free(padC);
        padC_n = HM_GEMM_ROWS * n;
        padC   = (double *)malloc(sizeof(double) * (size_t)padC_n);
      }
      if (!padA || !padC) abort(); /* out of memory for a few kB: nothing sensible left to do */
    }
    memset(padA, 0, sizeof(double) * (size_t)(HM_GEMM_ROWS * k));
    memset(padC, 0, sizeof(double) * (size_t)(HM_GEMM_ROWS * n));
    for (PetscInt i = 0; i < rem; i++) {
      memcpy(padA + i * k, A + (full + i) * lda, sizeof(double) * (size_t)k);
      if (beta != 0.0) memcpy(padC + i * n, C + (full + i) * ldc, sizeof(double) * (size_t)n);
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, HM_GEMM_ROWS, (int)n, (int)k, alpha, padA, (int)k, B, (int)ldb, beta, padC, (int)n);
    for (PetscInt i = 0; i < rem; i++) memcpy(C + (full + i) * ldc, padC + i * n, sizeof(double) * (size_t)n);
  }
}

/* Row-wise matrix product whose result for a row never depends on the other rows: the rank-count
   invariance of hipmace (bitwise) rests on it, since edge and atom batches differ between partitions. */
#include <hipmace/nn.h>

/* Register-blocked over HM_GR rows x HM_GC columns. Every element is computed as
   alpha * (sum over p in ascending order of a[p] * b[p]) (+ beta * c), with the same operations
   whichever block, row group or remainder it falls in, so a row's result is independent of the batch.
   (BLAS libraries give no such guarantee: their edge tiles use other code.) */
#define HM_GR 4
#define HM_GC 32

void HMGemmRows(PetscInt m, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  for (PetscInt i0 = 0; i0 < m; i0 += HM_GR) {
    const PetscInt nr = PetscMin(HM_GR, m - i0);
    for (PetscInt j0 = 0; j0 < n; j0 += HM_GC) {
      const PetscInt nj = PetscMin(HM_GC, n - j0);
      double         acc[HM_GR][HM_GC];
      for (PetscInt r = 0; r < HM_GR; r++)
        for (PetscInt j = 0; j < HM_GC; j++) acc[r][j] = 0.0;
      if (nr == HM_GR && nj == HM_GC) {
        for (PetscInt p = 0; p < k; p++) {
          const double *b = B + p * ldb + j0;
          for (PetscInt r = 0; r < HM_GR; r++) {
            const double a = A[(i0 + r) * lda + p];
            for (PetscInt j = 0; j < HM_GC; j++) acc[r][j] += a * b[j];
          }
        }
      } else {
        for (PetscInt p = 0; p < k; p++) {
          const double *b = B + p * ldb + j0;
          for (PetscInt r = 0; r < nr; r++) {
            const double a = A[(i0 + r) * lda + p];
            for (PetscInt j = 0; j < nj; j++) acc[r][j] += a * b[j];
          }
        }
      }
      for (PetscInt r = 0; r < nr; r++) {
        double *c = C + (i0 + r) * ldc + j0;
        if (beta == 0.0)
          for (PetscInt j = 0; j < nj; j++) c[j] = alpha * acc[r][j];
        else
          for (PetscInt j = 0; j < nj; j++) c[j] = alpha * acc[r][j] + beta * c[j];
      }
    }
  }
}

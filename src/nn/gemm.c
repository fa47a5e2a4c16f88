/* Row-wise matrix product whose result for a row never depends on the other rows: the rank-count
   invariance of hipmace (bitwise) rests on it, since edge and atom batches differ between partitions. */
#include <hipmace/nn.h>

void HMGemmRows(PetscInt m, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc)
{
  for (PetscInt i = 0; i < m; i++) {
    double       *c = C + i * ldc;
    const double *a = A + i * lda;
    if (beta == 0.0)
      for (PetscInt j = 0; j < n; j++) c[j] = 0.0;
    else if (beta != 1.0)
      for (PetscInt j = 0; j < n; j++) c[j] *= beta;
    if (alpha == 1.0) {
      for (PetscInt p = 0; p < k; p++) {
        const double  ap = a[p];
        const double *b  = B + p * ldb;
        for (PetscInt j = 0; j < n; j++) c[j] += ap * b[j];
      }
    } else {
      /* alpha applied to the row sum, as BLAS does: c += alpha (a.B) */
      double t[512];
      for (PetscInt j0 = 0; j0 < n; j0 += 512) {
        const PetscInt nj = PetscMin(512, n - j0);
        for (PetscInt j = 0; j < nj; j++) t[j] = 0.0;
        for (PetscInt p = 0; p < k; p++) {
          const double  ap = a[p];
          const double *b  = B + p * ldb + j0;
          for (PetscInt j = 0; j < nj; j++) t[j] += ap * b[j];
        }
        for (PetscInt j = 0; j < nj; j++) c[j0 + j] += alpha * t[j];
      }
    }
  }
}

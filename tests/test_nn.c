/* Radial basis, envelope and SiLU against primitives.safetensors; the batch independence of HMGemmRows. */
#include "hmtest.h"
#include "nn/nnimpl.h"

static void test_radial(void **state)
{
  char          p[PETSC_MAX_PATH_LEN];
  HMSafetensors st;
  const int     rcs[4] = {5, 6, 7, 16};
  (void)state;
  hm_golden_path("primitives.safetensors", p, sizeof(p));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, p, &st));
  for (int k = 0; k < 4; k++) {
    char          nr[64], nb[64], nc[64];
    const double *r, *B, *env;
    PetscInt64    s1[2] = {60, 1}, s8[2] = {60, 8};
    double        freq[8], out[8], err = 0;
    HMRadialBasis rb;
    snprintf(nr, sizeof(nr), "radial_r_rmax%d", rcs[k]);
    snprintf(nb, sizeof(nb), "bessel_n8_rmax%d", rcs[k]);
    snprintf(nc, sizeof(nc), "polycutoff_p5_rmax%d", rcs[k]);
    HM_T(HMSafetensorsGetF64(st, nr, 2, s1, &r));
    HM_T(HMSafetensorsGetF64(st, nb, 2, s8, &B));
    HM_T(HMSafetensorsGetF64(st, nc, 2, s1, &env));
    /* the model files carry (pi / rc)(k + 1) and sqrt(2 / rc) as buffers; computed here the same way */
    for (int q = 0; q < 8; q++) freq[q] = (PETSC_PI / rcs[k]) * (q + 1);
    rb.nbessel   = 8;
    rb.p         = 5;
    rb.rc        = rcs[k];
    rb.prefactor = PetscSqrtReal(2.0 / rcs[k]);
    rb.freq      = freq;
    for (int i = 0; i < 60; i++) {
      const double e = HMPolynomialCutoff(r[i], rcs[k], 5);
      err            = PetscMax(err, PetscAbsReal(e - env[i]));
      HMRadialBasisEval(&rb, r[i], out);
      /* the basis of the model is Bessel x envelope */
      for (int q = 0; q < 8; q++) err = PetscMax(err, PetscAbsReal(out[q] - B[8 * i + q] * env[i]));
    }
    print_message("rc = %d: max error %.1e\n", rcs[k], err);
    /* values are O(1); 1e-14 leaves room for the order of the sine argument's rounding */
    assert_true(err <= 1e-14);
    /* beyond the cutoff the envelope is exactly zero, which makes pruned Hessian edges exactly zero */
    assert_true(HMPolynomialCutoff(rcs[k], rcs[k], 5) == 0.0 && HMPolynomialCutoff(rcs[k] * 1.5, rcs[k], 5) == 0.0);
  }
  {
    const double *c;
    PetscInt64    s[1] = {1};
    HM_T(HMSafetensorsGetF64(st, "silu_normalize2mom_cst", 1, s, &c));
    assert_true(c[0] == HM_SILU_NORM);
    assert_true(HMSiLUNorm(0.0) == 0.0);
    assert_true(PetscAbsReal(HMSiLUNorm(1.0) - HM_SILU_NORM / (1.0 + exp(-1.0))) < 1e-15);
  }
  HM_T(HMSafetensorsClose(&st));
}

/* A row of HMGemmRows must come out bit-identical whatever rows surround it: the rank-count invariance
   of the engine depends on it. Also checked against a plain triple loop (to 1e-13 relative). */
static void test_gemm_rows(void **state)
{
  const PetscInt m = 37, n = 45, k = 23;
  double        *A = malloc(sizeof(double) * m * k), *B = malloc(sizeof(double) * k * n), *C = malloc(sizeof(double) * m * n), *D = malloc(sizeof(double) * m * n), *row = malloc(sizeof(double) * n);
  uint64_t       s = 12345;
  (void)state;
  for (PetscInt i = 0; i < m * k; i++) A[i] = (double)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 11) / 9007199254740992.0 - 0.5;
  for (PetscInt i = 0; i < k * n; i++) B[i] = (double)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 11) / 9007199254740992.0 - 0.5;
  for (PetscInt i = 0; i < m * n; i++) C[i] = D[i] = 0.25;
  HMGemmRows(m, n, k, 0.7, A, k, B, n, 1.0, C, n);
  for (PetscInt i = 0; i < m; i++)
    for (PetscInt j = 0; j < n; j++) {
      double t = 0;
      for (PetscInt p = 0; p < k; p++) t += A[i * k + p] * B[p * n + j];
      assert_true(PetscAbsReal(C[i * n + j] - (0.7 * t + 0.25)) <= 1e-13);
    }
  /* every row alone, and in batches of every size starting anywhere: identical bits */
  for (PetscInt i = 0; i < m; i++) {
    for (PetscInt j = 0; j < n; j++) row[j] = 0.25;
    HMGemmRows(1, n, k, 0.7, A + i * k, k, B, n, 1.0, row, n);
    for (PetscInt j = 0; j < n; j++) assert_true(row[j] == C[i * n + j]);
  }
  for (PetscInt b = 1; b <= 9; b++)
    for (PetscInt i0 = 0; i0 + b <= m; i0 += 3) {
      for (PetscInt i = 0; i < b * n; i++) D[i] = 0.25;
      HMGemmRows(b, n, k, 0.7, A + i0 * k, k, B, n, 1.0, D, n);
      for (PetscInt i = 0; i < b * n; i++) assert_true(D[i] == C[i0 * n + i]);
    }
  free(A);
  free(B);
  free(C);
  free(D);
  free(row);
}

/* Weights packed once (HMGemmPack) give the bits of HMGemmRows on the same B, for any number of rows, a
   column count that is not a multiple of the 32-column blocks, a B inside a wider array (ldb > n), depths
   below and above the per-call packing limit (HM_GEMM_PACK_K = 256), and alpha/beta = (1, 0) and (0.7, 1). */
static void test_gemm_packed(void **state)
{
  const PetscInt ks[2] = {23, 300}, m = 13, n = 45, ldb = 50;
  uint64_t       s = 977;
  (void)state;
  for (int ik = 0; ik < 2; ik++) {
    const PetscInt k = ks[ik];
    double        *A = malloc(sizeof(double) * m * k), *B = malloc(sizeof(double) * k * ldb), *C = malloc(sizeof(double) * m * n), *D = malloc(sizeof(double) * m * n);
    HMGemmPacked   P;

    for (PetscInt i = 0; i < m * k; i++) A[i] = (double)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 11) / 9007199254740992.0 - 0.5;
    for (PetscInt i = 0; i < k * ldb; i++) B[i] = (double)((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 11) / 9007199254740992.0 - 0.5;
    HM_T(HMGemmPack(n, k, B, ldb, &P));
    for (PetscInt r = 1; r <= m; r++)
      for (int ab = 0; ab < 2; ab++) {
        const double alpha = ab ? 0.7 : 1.0, beta = ab ? 1.0 : 0.0;
        for (PetscInt i = 0; i < r * n; i++) C[i] = D[i] = 0.25 + 1e-3 * (double)i;
        HMGemmRows(r, n, k, alpha, A, k, B, ldb, beta, C, n);
        HMGemmRowsPacked(r, alpha, A, k, &P, beta, D, n);
        for (PetscInt i = 0; i < r * n; i++) assert_true(C[i] == D[i]);
      }
    HM_T(HMGemmPackedDestroy(&P));
    free(A);
    free(B);
    free(C);
    free(D);
  }
}

HM_TEST_MAIN_OF(test_radial, test_gemm_rows, test_gemm_packed)

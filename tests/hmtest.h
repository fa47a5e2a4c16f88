/* Shared helpers for the cmocka test programs: PETSc start-up, golden-data paths, comparisons. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <cmocka.h>
#include <hipmace/model.h>
#include <petscmat.h>

/* A library call inside a test: any PETSc error code fails the test (PETSc prints the trace). */
#define HM_T(call) \
  do { \
    PetscErrorCode hm_t_ierr_ = (call); \
    if (hm_t_ierr_) fail_msg("%s returned PETSc error %d", #call, (int)hm_t_ierr_); \
  } while (0)

/* Folder of the shared golden data: $HIPMACE_GOLDEN_DIR (set by meson test). */
static inline const char *hm_golden_dir(void)
{
  const char *d = getenv("HIPMACE_GOLDEN_DIR");
  return d ? d : "../shared/golden";
}

static inline void hm_golden_path(const char *name, char *buf, size_t len)
{
  snprintf(buf, len, "%s/%s", hm_golden_dir(), name);
}

/* Folder of the shared demo model (../shared/models): $HIPMACE_MODELS_DIR. */
static inline const char *hm_models_dir(void)
{
  const char *d = getenv("HIPMACE_MODELS_DIR");
  return d ? d : "../shared/models";
}

/* max |a-b| over n entries */
static inline double hm_max_abs_diff(PetscInt n, const double *a, const double *b)
{
  double m = 0;
  for (PetscInt i = 0; i < n; i++) m = PetscMax(m, PetscAbsReal(a[i] - b[i]));
  return m;
}

static inline double hm_max_abs(PetscInt n, const double *a)
{
  double m = 0;
  for (PetscInt i = 0; i < n; i++) m = PetscMax(m, PetscAbsReal(a[i]));
  return m;
}

/* Dense row-major copy (N3 x N3) of an assembled Hessian of any supported storage type. */
static inline double *hm_dense_of(Mat H, PetscInt N3)
{
  Mat                Ha, Hd;
  const PetscScalar *a;
  double            *out = malloc(sizeof(double) * (size_t)(N3 * N3));
  HM_T(MatConvert(H, MATAIJ, MAT_INITIAL_MATRIX, &Ha));
  HM_T(MatConvert(Ha, MATDENSE, MAT_INITIAL_MATRIX, &Hd));
  HM_T(MatDenseGetArrayRead(Hd, &a));
  /* PETSc dense is column-major */
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) out[i * N3 + j] = a[j * N3 + i];
  HM_T(MatDenseRestoreArrayRead(Hd, &a));
  HM_T(MatDestroy(&Hd));
  HM_T(MatDestroy(&Ha));
  return out;
}

/* Energy and dense Hessian of a structure on one rank (cell/pbc may be NULL). */
static inline double *hm_hessian_dense(HMModel m, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc, double *E)
{
  HMSystem sys;
  HMEval   ev;
  Mat      H;
  double  *out;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  HM_T(HMEvalCreate(m, sys, &ev));
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMEvalAssembleHessian(ev, MATBAIJ, &H));
  out = hm_dense_of(H, 3 * n);
  HM_T(MatDestroy(&H));
  HM_T(HMEvalDestroy(&ev));
  HM_T(HMSystemDestroy(&sys));
  return out;
}

/* Runs a cmocka group inside PetscInitialize/PetscFinalize; returns the number of failures. */
#define HM_TEST_MAIN(tests) \
  int main(int argc, char **argv) \
  { \
    int hm_fail; \
    if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1; \
    hm_fail = cmocka_run_group_tests(tests, NULL, NULL); \
    if (PetscFinalize()) return 1; \
    return hm_fail; \
  }

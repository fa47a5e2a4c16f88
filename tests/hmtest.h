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
#include <hipmace/sys.h>

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

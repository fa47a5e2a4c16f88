/* hipmace's allocation routines for PETSc (src/sys/memory.c), installed by HMInitialize: large arrays (16 MB and
   more, -memory_return true, the default) are 2 MB-aligned mappings that go back to the system when freed; their
   contents survive PetscRealloc in both directions (mapping <-> heap); PetscCalloc gives zeros. */
#include "hmtest.h"
#include <hipmace/app.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
  #define HM_TEST_ASAN 1 /* the allocator is not installed under AddressSanitizer */
#elif defined(__has_feature)
  #if __has_feature(address_sanitizer)
    #define HM_TEST_ASAN 1
  #endif
#endif

#define MB ((size_t)1 << 20)

static double pattern(size_t i)
{
  return (double)(i % 1000003) * 0.5 + 1.0;
}

static void test_large_realloc(void **state)
{
  const size_t n1 = 24 * MB / sizeof(double), n2 = 48 * MB / sizeof(double), n3 = MB / sizeof(double);
  double      *a;
  (void)state;

  HM_T(PetscMalloc1(n1, &a));
  /* PETSc's alignment always; the mapping's 2 MB alignment (the 16-byte header sits in front of the array) where
     hipmace's routines are in place */
  assert_int_equal((uintptr_t)a % 16, 0);
#if defined(__linux__) && !defined(HM_TEST_ASAN)
  assert_int_equal(((uintptr_t)a - 16) % (2 * MB), 0);
#endif
  for (size_t i = 0; i < n1; i++) a[i] = pattern(i);
  HM_T(PetscRealloc(n2 * sizeof(double), &a)); /* mapping -> larger mapping */
  for (size_t i = 0; i < n1; i++)
    if (a[i] != pattern(i)) fail_msg("entry %zu lost growing 24 -> 48 MB", i);
  HM_T(PetscRealloc(n3 * sizeof(double), &a)); /* mapping -> heap */
  for (size_t i = 0; i < n3; i++)
    if (a[i] != pattern(i)) fail_msg("entry %zu lost shrinking 48 -> 1 MB", i);
  HM_T(PetscRealloc(n1 * sizeof(double), &a)); /* heap -> mapping */
  for (size_t i = 0; i < n3; i++)
    if (a[i] != pattern(i)) fail_msg("entry %zu lost growing 1 -> 24 MB", i);
  HM_T(PetscFree(a));
}

static void test_large_calloc(void **state)
{
  const size_t n = 20 * MB / sizeof(double);
  double      *a, *b;
  (void)state;

  /* a mapping freed and taken again must still read as zeros through PetscCalloc */
  HM_T(PetscMalloc1(n, &a));
  for (size_t i = 0; i < n; i++) a[i] = 1.0;
  HM_T(PetscFree(a));
  HM_T(PetscCalloc1(n, &b));
  for (size_t i = 0; i < n; i++)
    if (b[i] != 0.0) fail_msg("PetscCalloc1 of 20 MB: entry %zu is %g", i, b[i]);
  HM_T(PetscFree(b));
}

static void test_large_returned(void **state)
{
  const size_t n = 64 * MB / sizeof(double);
  double      *a, before, touched, after;
  (void)state;

#if defined(HM_TEST_ASAN)
  skip(); /* AddressSanitizer keeps freed memory in its quarantine */
#endif
  before = HMMemoryRSS(PETSC_FALSE);
  if (before <= 0) skip(); /* no /proc */
  HM_T(PetscMalloc1(n, &a));
  for (size_t i = 0; i < n; i++) a[i] = (double)i;
  touched = HMMemoryRSS(PETSC_FALSE);
  HM_T(PetscFree(a));
  after = HMMemoryRSS(PETSC_FALSE);
  print_message("RSS %.1f MB, with 64 MB touched %.1f MB, freed %.1f MB\n", before / MB, touched / MB, after / MB);
  /* 64 MB touched must show, and leave again when freed (-memory_return): 48 MB either way leaves room for the
     process's other pages coming and going */
  assert_true(touched - before > 48.0 * MB);
  assert_true(touched - after > 48.0 * MB);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_large_realloc),
      cmocka_unit_test(test_large_calloc),
      cmocka_unit_test(test_large_returned),
  };
  int fail;

  if (HMInitialize(&argc, &argv, NULL, NULL)) return 1;
  fail = cmocka_run_group_tests(tests, NULL, NULL);
  if (HMFinalize()) return 1;
  return fail;
}

/* The checks of the MPI test programs without cmocka (test_pario, test_exchange): CHECK(condition, format, ...)
   prints a failed condition with the rank and counts it. The program defines int failures and grank (its rank in
   the world), sums failures over the ranks at the end and exits non-zero if any. */
#pragma once

#include <stdio.h>

#define CHECK(c, ...)                                         \
  do {                                                        \
    if (!(c)) {                                               \
      failures++;                                             \
      printf("[%d] FAIL %s:%d: ", grank, __FILE__, __LINE__); \
      printf(__VA_ARGS__);                                    \
      printf("\n");                                           \
    }                                                         \
  } while (0)

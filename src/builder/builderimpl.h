/* Private to src/builder: the units, limits and small helpers every builder file shares. */
#pragma once

#include <hipmace/builder.h>

#define DEG (PETSC_PI / 180.0)

/* The engine stores 3 n coordinates in PetscInt-indexed arrays. */
#define MAX_ATOMS ((PetscInt64)PETSC_MAX_INT / 3)

static inline void MatVec(const double R[9], const double x[3], double y[3])
{
  for (int d = 0; d < 3; d++) y[d] = R[3 * d] * x[0] + R[3 * d + 1] * x[1] + R[3 * d + 2] * x[2];
}

static inline PetscErrorCode CheckCount(MPI_Comm comm, const char who[], PetscInt64 natoms)
{
  PetscFunctionBegin;
  PetscCheck(natoms <= MAX_ATOMS, comm, PETSC_ERR_ARG_OUTOFRANGE, "%s: %lld atoms exceed the limit %lld of this build (32-bit PetscInt)", who, (long long)natoms, (long long)MAX_ATOMS);
  PetscFunctionReturn(PETSC_SUCCESS);
}

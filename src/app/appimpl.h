/* Private to src/app: shared between the per-atom outputs. */
#pragma once
#include <hipmace/summary.h>

/* Collective: this rank's block of input order, atoms [lo, lo + nb) with lo = floor(N r / P), as [nb][8]
   records (input index, Z, position, force) sorted by input index, sent all-to-all from the ranks owning
   the atoms (src/app/forcesout.c). */
PETSC_INTERN PetscErrorCode HMForcesToBlocks_Private(HMEval, PetscInt *N, PetscInt *lo, PetscInt *nb, double **blk);
/* Appends printf output to a growing buffer *buf of capacity *cap holding *len characters (and a NUL). */
PETSC_INTERN PetscErrorCode HMBufferAppendf_Private(char **buf, size_t *len, size_t *cap, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(4, 5);

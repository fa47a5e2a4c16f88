/* Tabulated hidden radial features z(r) of the HIP head, for the folded edge kernel (private to the library). */
#pragma once

#include "nn/nnimpl.h"

/* z(r) in R^K is the output of the hidden layers of a radial network: the basis b(r) (HMRadialBasisEval)
   followed by layers i = 0 .. nlayers-2 of the MLP, each a product with W[i] and a normalised SiLU;
   K = h[nlayers-1] (the basis itself when the MLP has one layer). The last layer is not part of z.

   The table is a piecewise quintic Hermite interpolant: z, dz/dr and d2z/dr2 (forward mode through the
   basis, the envelope and every SiLU) at the knots, on 32 equal segments of [rmin, rc], each with its
   own uniform spacing, refined per segment until the check below passes.

   Guarantee. tol is an absolute bound on every component of z (z is O(1)): |z_table(r) - z_exact(r)|
   <= tol for every r in [rmin, rc) and every component, z_exact being the result of
   HMRadialTableEvalExact; for r >= rc both are exactly 0.0. How it is established: the table is
   accepted only when at 7 check points per interval (t = 1/8, ..., 7/8 of it, midpoint included)
   every component is within tol / 4, evaluated through HMRadialTableEval itself. Between check points
   the error is h^6 t^3 (1-t)^3 z^(6)(xi) / 720 for some xi in the interval: the factor t^3 (1-t)^3
   peaks at the checked midpoint, and z^(6) varies little across one interval once the error is small
   (measured on the golden and demo models at tol 1e-8 .. 1e-12: the largest error on 64 points per
   interval exceeds that of the check points by at most 0.6%), so the safety factor 4 covers what lies
   between check points with a wide margin. Verified on a dense set and argued, not proven; the tests
   confirm it on 150,000 random distances per model. tol must be >= 1e-13: below that the round-off of
   z_exact itself (~1e-15) is no longer negligible. The table is read-only once built, so threads may
   share it. */
typedef struct _p_HMRadialTable *HMRadialTable;

/* Builds the table on [rmin, rb->rc] (0 < rmin < rc) with the guarantee above. PETSC_ERR_NOT_CONVERGED
   if more than 65,536 intervals would be needed. Deterministic: every rank builds the same bits. */
PETSC_EXTERN PetscErrorCode HMRadialTableCreate(const HMRadialBasis *rb, const HMRadialMLP *mlp, double rmin, double tol, HMRadialTable *);
PETSC_EXTERN PetscErrorCode HMRadialTableDestroy(HMRadialTable *);
/* z[n][K] for n distances; r >= rc gives exact zeros (0.0); r < rmin (or NaN) is an error
   (PETSC_ERR_ARG_OUTOFRANGE naming r and rmin). O(1) per distance (one block of 6 K contiguous
   doubles), no allocation, and a distance's result does not depend on the others in the batch. */
PETSC_EXTERN PetscErrorCode HMRadialTableEval(HMRadialTable, PetscInt n, const double r[], double z[]);
/* What a table is (like MatGetInfo): nknots counts distinct knots (intervals + 1); bytes is the whole object;
   maxerr is the largest check-point error of the accepted table (<= tol / 4); [rmin, rc) its domain. */
typedef struct {
  PetscInt K, nknots;
  size_t   bytes;
  double   tol, maxerr, rmin, rc;
} HMRadialTableInfo;
PETSC_EXTERN PetscErrorCode HMRadialTableGetInfo(HMRadialTable, HMRadialTableInfo *);

/* Reference path: exact z[n][K] (HMRadialBasisEval, HMGemmRows, HMSiLUNorm with libm exp), r > 0.
   Bitwise the values the table holds at its knots. Exposed for tests. */
PETSC_EXTERN PetscErrorCode HMRadialTableEvalExact(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double z[]);
/* z and its first and second derivatives in r, each [n][K] (dz, d2z may be NULL), r > 0: the knot data
   of the table (z bitwise as HMRadialTableEvalExact). Exposed for tests. */
PETSC_EXTERN PetscErrorCode HMRadialTableEvalExactDerivatives(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double z[], double dz[], double d2z[]);

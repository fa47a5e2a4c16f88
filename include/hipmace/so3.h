/* SO(3) primitives in the e3nn 0.4.4 conventions: irreps, real spherical harmonics, Wigner 3j. */
#pragma once

#include <hipmace/sys.h>

/* Real spherical harmonics of the normalised vectors vec[n][3] (F.normalize with eps 1e-12),
   component normalisation (|Y_l|^2 = 2l+1), all l = 0..lmax concatenated: Y[n][(lmax+1)^2].
   lmax <= HM_LMAX. l = 1 is (x, y, z). */
PETSC_EXTERN PetscErrorCode HMSphericalHarmonics(PetscInt lmax, PetscInt n, const double vec[], double Y[]);
/* The same Y (bitwise) and its gradient with respect to the unnormalised vector: dY[n][(lmax+1)^2][3],
   dY[e][k][j] = d Y[e][k] / d vec[e][j] (the normalisation's derivative included; below the eps 1e-12
   the clamped normalisation v / 1e-12 is differentiated). */
PETSC_EXTERN PetscErrorCode HMSphericalHarmonicsGrad(PetscInt lmax, PetscInt n, const double vec[], double Y[], double dY[]);

/* Largest l accepted by HMWigner3j / HMWigner3jGet (the features themselves stop at HM_LMAX). */
#define HM_W3J_LMAX 6

/* Wigner 3j tensor C[2l1+1][2l2+1][2l3+1] in the e3nn real basis, Frobenius norm 1, e3nn sign rule.
   Computed (not tabulated); l1, l2, l3 <= HM_W3J_LMAX and triangle-allowed, else an error. */
PETSC_EXTERN PetscErrorCode HMWigner3j(int l1, int l2, int l3, double C[]);
/* Same tensor from a process-wide cache filled on first use (not thread safe); *C stays valid
   until HMSO3Finalize(), which PetscFinalize() calls. */
PETSC_EXTERN PetscErrorCode HMWigner3jGet(int l1, int l2, int l3, const double **C);
/* Frees the 3j cache; safe to call more than once. */
PETSC_EXTERN PetscErrorCode HMSO3Finalize(void);

/* 9-vector (1x0e + 1x1e + 1x2e) -> Cartesian 3x3 block B[a][b] (row-major), e3nn irreps_to_cartesian. */
PETSC_EXTERN void HMIrreps9ToCartesian(const double z[9], double B[9]);

/* Normalised SiLU of e3nn (normalize2mom constant). */
#define HM_SILU_NORM 1.6791767923989418
static inline double HMSiLUNorm(double x)
{
  return HM_SILU_NORM * x / (1.0 + exp(-x));
}
/* d/dx HMSiLUNorm(x) = K sigma(x) (1 + x (1 - sigma(x))), sigma(x) = 1 / (1 + exp(-x)). */
static inline double HMSiLUNormDeriv(double x)
{
  const double sg = 1.0 / (1.0 + exp(-x));
  return HM_SILU_NORM * sg * (1.0 + x * (1.0 - sg));
}

/* ---- irreps ---- */
#define HM_MAX_IRREP_BLOCKS 64
typedef struct {
  int mul, l, p; /* p = +1 (e) or -1 (o) */
} HMIrrep;

typedef struct {
  int     n;
  HMIrrep b[HM_MAX_IRREP_BLOCKS];
} HMIrreps;

/* Parse "8x0e+8x1o+8x2e"; error names the string. */
PETSC_EXTERN PetscErrorCode HMIrrepsParse(const char s[], HMIrreps *);
PETSC_EXTERN PetscInt       HMIrrepsDim(const HMIrreps *);
PETSC_EXTERN PetscInt       HMIrrepsOffset(const HMIrreps *, int block);
/* Stable sort by (l, parity odd first); perm[new] = old (perm may be NULL). */
PETSC_EXTERN void      HMIrrepsSort(const HMIrreps *in, HMIrreps *out, int perm[]);
PETSC_EXTERN void      HMIrrepsSimplify(const HMIrreps *in, HMIrreps *out);
PETSC_EXTERN PetscBool HMIrrepsContains(const HMIrreps *, int l, int p);
PETSC_EXTERN void      HMIrrepsToString(const HMIrreps *, char buf[], size_t len);

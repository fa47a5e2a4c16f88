/* Real spherical harmonics of edge vectors, e3nn 0.4.4 polynomials with component normalisation. */
#include <hipmace/so3.h>

/* highest degree written out below (e3nn has more; the engine caps features at HM_LMAX) */
#define SH_LMAX 4

/* Evaluates one vector. lmax is a compile-time constant at every call site (always inlined into a
   loop specialised per lmax), so the degree tests below vanish from the per-vector code. The
   arithmetic mirrors e3nn's order of operations (unnormalised polynomial of degree l, then times
   sqrt(2l+1)) so results agree with the reference to a few ulps. */
static inline __attribute__((always_inline)) void ShOne(const int lmax, const double v[3], double Y[])
{
  /* torch.nn.functional.normalize: v / max(|v|, eps); division, not a reciprocal product, as torch */
  const double r = PetscMax(sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), 1e-12);
  const double x = v[0] / r, y = v[1] / r, z = v[2] / r;
  const double s3 = sqrt(3.0), s5 = sqrt(5.0), s7 = sqrt(7.0), s9 = 3.0;
  double       y2, x2z2, a0, a1, a2, a3, a4, b0, b1, b2, b3, b4, b5, b6;

  Y[0] = 1.0;
  if (lmax < 1) return;
  Y[1] = s3 * x;
  Y[2] = s3 * y;
  Y[3] = s3 * z;
  if (lmax < 2) return;
  y2   = y * y;
  x2z2 = x * x + z * z;
  a0   = s3 * x * z;
  a1   = s3 * x * y;
  a2   = y2 - 0.5 * x2z2;
  a3   = s3 * y * z;
  a4   = s3 / 2.0 * (z * z - x * x);
  {
    const double a[5] = {a0, a1, a2, a3, a4};
    for (int k = 0; k < 5; k++) Y[4 + k] = s5 * a[k];
  }
  if (lmax < 3) return;
  b0 = sqrt(5.0 / 6.0) * (a0 * z + a4 * x);
  b1 = sqrt(5.0) * a0 * y;
  b2 = sqrt(3.0 / 8.0) * (4.0 * y2 - x2z2) * x;
  b3 = 0.5 * y * (2.0 * y2 - 3.0 * x2z2);
  b4 = sqrt(3.0 / 8.0) * z * (4.0 * y2 - x2z2);
  b5 = sqrt(5.0) * a4 * y;
  b6 = sqrt(5.0 / 6.0) * (a4 * z - a0 * x);
  {
    const double b[7] = {b0, b1, b2, b3, b4, b5, b6};
    for (int k = 0; k < 7; k++) Y[9 + k] = s7 * b[k];
  }
  if (lmax < 4) return;
  /* e3nn 0.4.4 hard-codes l = 4 with 15-significant-digit literals (not exact square roots);
     the reference values carry that rounding, so the literals are kept as they are. */
  Y[16] = s9 * (0.935414346693485 * b0 * z + 0.935414346693485 * b6 * x);
  Y[17] = s9 * (0.661437827766148 * b0 * y + 0.810092587300982 * b1 * z + 0.810092587300983 * b5 * x);
  Y[18] = s9 * (-0.176776695296637 * b0 * z + 0.866025403784439 * b1 * y + 0.684653196881458 * b2 * z + 0.684653196881457 * b4 * x + 0.176776695296637 * b6 * x);
  Y[19] = s9 * (-0.306186217847897 * b1 * z + 0.968245836551855 * b2 * y + 0.790569415042095 * b3 * x + 0.306186217847897 * b5 * x);
  Y[20] = s9 * (-0.612372435695795 * b2 * x + b3 * y - 0.612372435695795 * b4 * z);
  Y[21] = s9 * (-0.306186217847897 * b1 * x + 0.790569415042096 * b3 * z + 0.968245836551854 * b4 * y - 0.306186217847897 * b5 * z);
  Y[22] = s9 * (-0.176776695296637 * b0 * x - 0.684653196881457 * b2 * x + 0.684653196881457 * b4 * z + 0.866025403784439 * b5 * y - 0.176776695296637 * b6 * z);
  Y[23] = s9 * (-0.810092587300982 * b1 * x + 0.810092587300982 * b5 * z + 0.661437827766148 * b6 * y);
  Y[24] = s9 * (-0.935414346693485 * b0 * x + 0.935414346693486 * b6 * z);
}

PetscErrorCode HMSphericalHarmonics(PetscInt lmax, PetscInt n, const double vec[], double Y[])
{
  PetscFunctionBegin;
  PetscCheck(lmax >= 0 && lmax <= SH_LMAX && lmax <= HM_LMAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "spherical harmonics: lmax %" PetscInt_FMT " outside 0..%d", lmax, PetscMin(SH_LMAX, HM_LMAX));
  PetscCheck(n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "spherical harmonics: negative vector count %" PetscInt_FMT, n);
  PetscCheck(n == 0 || (vec && Y), PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "spherical harmonics: NULL vector or output array");
  switch (lmax) {
  case 0:
    for (PetscInt e = 0; e < n; e++) ShOne(0, &vec[3 * e], &Y[e]);
    break;
  case 1:
    for (PetscInt e = 0; e < n; e++) ShOne(1, &vec[3 * e], &Y[4 * e]);
    break;
  case 2:
    for (PetscInt e = 0; e < n; e++) ShOne(2, &vec[3 * e], &Y[9 * e]);
    break;
  case 3:
    for (PetscInt e = 0; e < n; e++) ShOne(3, &vec[3 * e], &Y[16 * e]);
    break;
  default:
    for (PetscInt e = 0; e < n; e++) ShOne(4, &vec[3 * e], &Y[25 * e]);
    break;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

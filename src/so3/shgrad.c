/* Gradient of the real spherical harmonics with respect to the (unnormalised) edge vector. */
#include <hipmace/so3.h>

#define SHG_LMAX 4

/* a value and its partial derivatives with respect to the unit vector's (x, y, z) */
typedef struct {
  double v, d[3];
} Dual;

static inline Dual Dv(double v, int j)
{
  Dual r = {
      v, {0.0, 0.0, 0.0}
  };
  if (j >= 0) r.d[j] = 1.0;
  return r;
}
static inline Dual Dadd(Dual a, Dual b)
{
  Dual r = {
      a.v + b.v, {a.d[0] + b.d[0], a.d[1] + b.d[1], a.d[2] + b.d[2]}
  };
  return r;
}
static inline Dual Dsub(Dual a, Dual b)
{
  Dual r = {
      a.v - b.v, {a.d[0] - b.d[0], a.d[1] - b.d[1], a.d[2] - b.d[2]}
  };
  return r;
}
static inline Dual Dscl(double s, Dual a)
{
  Dual r = {
      s * a.v, {s * a.d[0], s * a.d[1], s * a.d[2]}
  };
  return r;
}
static inline Dual Dmul(Dual a, Dual b)
{
  Dual r = {
      a.v * b.v, {a.d[0] * b.v + a.v * b.d[0], a.d[1] * b.v + a.v * b.d[1], a.d[2] * b.v + a.v * b.d[2]}
  };
  return r;
}

/* dY/du for the unit vector u (polynomials of sh.c, differentiated term by term): g[k][3] */
static void ShGradUnit(int lmax, const double u[3], double g[][3])
{
  const Dual   x = Dv(u[0], 0), y = Dv(u[1], 1), z = Dv(u[2], 2);
  const double s3 = sqrt(3.0), s5 = sqrt(5.0), s7 = sqrt(7.0), s9 = 3.0;
  Dual         Y[25], y2, x2z2, a[5], b[7];
  const int    nsh = (lmax + 1) * (lmax + 1);

  Y[0] = Dv(1.0, -1);
  if (lmax >= 1) {
    Y[1] = Dscl(s3, x);
    Y[2] = Dscl(s3, y);
    Y[3] = Dscl(s3, z);
  }
  if (lmax >= 2) {
    y2   = Dmul(y, y);
    x2z2 = Dadd(Dmul(x, x), Dmul(z, z));
    a[0] = Dscl(s3, Dmul(x, z));
    a[1] = Dscl(s3, Dmul(x, y));
    a[2] = Dsub(y2, Dscl(0.5, x2z2));
    a[3] = Dscl(s3, Dmul(y, z));
    a[4] = Dscl(s3 / 2.0, Dsub(Dmul(z, z), Dmul(x, x)));
    for (int k = 0; k < 5; k++) Y[4 + k] = Dscl(s5, a[k]);
  }
  if (lmax >= 3) {
    const Dual w = Dsub(Dscl(4.0, y2), x2z2);
    b[0]         = Dscl(sqrt(5.0 / 6.0), Dadd(Dmul(a[0], z), Dmul(a[4], x)));
    b[1]         = Dscl(sqrt(5.0), Dmul(a[0], y));
    b[2]         = Dscl(sqrt(3.0 / 8.0), Dmul(w, x));
    b[3]         = Dscl(0.5, Dmul(y, Dsub(Dscl(2.0, y2), Dscl(3.0, x2z2))));
    b[4]         = Dscl(sqrt(3.0 / 8.0), Dmul(z, w));
    b[5]         = Dscl(sqrt(5.0), Dmul(a[4], y));
    b[6]         = Dscl(sqrt(5.0 / 6.0), Dsub(Dmul(a[4], z), Dmul(a[0], x)));
    for (int k = 0; k < 7; k++) Y[9 + k] = Dscl(s7, b[k]);
  }
  if (lmax >= 4) {
    /* the literals of sh.c (e3nn's 15-digit constants) */
    Y[16] = Dscl(s9, Dadd(Dscl(0.935414346693485, Dmul(b[0], z)), Dscl(0.935414346693485, Dmul(b[6], x))));
    Y[17] = Dscl(s9, Dadd(Dadd(Dscl(0.661437827766148, Dmul(b[0], y)), Dscl(0.810092587300982, Dmul(b[1], z))), Dscl(0.810092587300983, Dmul(b[5], x))));
    Y[18] = Dscl(s9, Dadd(Dadd(Dadd(Dadd(Dscl(-0.176776695296637, Dmul(b[0], z)), Dscl(0.866025403784439, Dmul(b[1], y))), Dscl(0.684653196881458, Dmul(b[2], z))), Dscl(0.684653196881457, Dmul(b[4], x))), Dscl(0.176776695296637, Dmul(b[6], x))));
    Y[19] = Dscl(s9, Dadd(Dadd(Dadd(Dscl(-0.306186217847897, Dmul(b[1], z)), Dscl(0.968245836551855, Dmul(b[2], y))), Dscl(0.790569415042095, Dmul(b[3], x))), Dscl(0.306186217847897, Dmul(b[5], x))));
    Y[20] = Dscl(s9, Dadd(Dadd(Dscl(-0.612372435695795, Dmul(b[2], x)), Dmul(b[3], y)), Dscl(-0.612372435695795, Dmul(b[4], z))));
    Y[21] = Dscl(s9, Dadd(Dadd(Dadd(Dscl(-0.306186217847897, Dmul(b[1], x)), Dscl(0.790569415042096, Dmul(b[3], z))), Dscl(0.968245836551854, Dmul(b[4], y))), Dscl(-0.306186217847897, Dmul(b[5], z))));
    Y[22] = Dscl(s9, Dadd(Dadd(Dadd(Dadd(Dscl(-0.176776695296637, Dmul(b[0], x)), Dscl(-0.684653196881457, Dmul(b[2], x))), Dscl(0.684653196881457, Dmul(b[4], z))), Dscl(0.866025403784439, Dmul(b[5], y))), Dscl(-0.176776695296637, Dmul(b[6], z))));
    Y[23] = Dscl(s9, Dadd(Dadd(Dscl(-0.810092587300982, Dmul(b[1], x)), Dscl(0.810092587300982, Dmul(b[5], z))), Dscl(0.661437827766148, Dmul(b[6], y))));
    Y[24] = Dscl(s9, Dadd(Dscl(-0.935414346693485, Dmul(b[0], x)), Dscl(0.935414346693486, Dmul(b[6], z))));
  }
  for (int k = 0; k < nsh; k++)
    for (int j = 0; j < 3; j++) g[k][j] = Y[k].d[j];
}

PetscErrorCode HMSphericalHarmonicsGrad(PetscInt lmax, PetscInt n, const double vec[], double Y[], double dY[])
{
  const int nsh = (int)((lmax + 1) * (lmax + 1));

  PetscFunctionBegin;
  PetscCheck(lmax >= 0 && lmax <= SHG_LMAX && lmax <= HM_LMAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "spherical harmonics gradient: lmax %" PetscInt_FMT " outside 0..%d", lmax, PetscMin(SHG_LMAX, HM_LMAX));
  PetscCheck(n == 0 || dY, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "spherical harmonics gradient: NULL gradient array");
  /* the values are those of HMSphericalHarmonics itself */
  PetscCall(HMSphericalHarmonics(lmax, n, vec, Y));
  for (PetscInt e = 0; e < n; e++) {
    const double *v  = vec + 3 * e;
    const double  r0 = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), r = PetscMax(r0, 1e-12);
    const double  u[3] = {v[0] / r, v[1] / r, v[2] / r};
    double        g[25][3], *dy = dY + (PetscInt)e * nsh * 3;

    ShGradUnit((int)lmax, u, g);
    /* u = v / |v|: du/Dv = (I - u u^T) / |v|; below the clamp u = v / 1e-12, du/Dv = I / 1e-12 */
    for (int k = 0; k < nsh; k++) {
      const double gu = r0 > 1e-12 ? g[k][0] * u[0] + g[k][1] * u[1] + g[k][2] * u[2] : 0.0;
      for (int j = 0; j < 3; j++) dy[3 * k + j] = (g[k][j] - gu * u[j]) / r;
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Gradient of the real spherical harmonics with respect to the (unnormalised) edge vector. */
#include <hipmace/so3.h>

#define SHG_LMAX 4

/* a value and its partial derivatives with respect to the unit vector's (x, y, z) */
typedef struct {
  double v, d[3];
} Dual;

static inline Dual dv(double v, int j)
{
  Dual r = {v, {0.0, 0.0, 0.0}};
  if (j >= 0) r.d[j] = 1.0;
  return r;
}
static inline Dual dadd(Dual a, Dual b)
{
  Dual r = {a.v + b.v, {a.d[0] + b.d[0], a.d[1] + b.d[1], a.d[2] + b.d[2]}};
  return r;
}
static inline Dual dsub(Dual a, Dual b)
{
  Dual r = {a.v - b.v, {a.d[0] - b.d[0], a.d[1] - b.d[1], a.d[2] - b.d[2]}};
  return r;
}
static inline Dual dscl(double s, Dual a)
{
  Dual r = {s * a.v, {s * a.d[0], s * a.d[1], s * a.d[2]}};
  return r;
}
static inline Dual dmul(Dual a, Dual b)
{
  Dual r = {a.v * b.v, {a.d[0] * b.v + a.v * b.d[0], a.d[1] * b.v + a.v * b.d[1], a.d[2] * b.v + a.v * b.d[2]}};
  return r;
}

/* dY/du for the unit vector u (polynomials of sh.c, differentiated term by term): g[k][3] */
static void sh_grad_unit(int lmax, const double u[3], double g[][3])
{
  const Dual   x = dv(u[0], 0), y = dv(u[1], 1), z = dv(u[2], 2);
  const double s3 = sqrt(3.0), s5 = sqrt(5.0), s7 = sqrt(7.0), s9 = 3.0;
  Dual         Y[25], y2, x2z2, a0, a1, a2, a3, a4, b0, b1, b2, b3, b4, b5, b6;
  const int    nsh = (lmax + 1) * (lmax + 1);

  Y[0] = dv(1.0, -1);
  if (lmax >= 1) {
    Y[1] = dscl(s3, x);
    Y[2] = dscl(s3, y);
    Y[3] = dscl(s3, z);
  }
  if (lmax >= 2) {
    y2   = dmul(y, y);
    x2z2 = dadd(dmul(x, x), dmul(z, z));
    a0   = dscl(s3, dmul(x, z));
    a1   = dscl(s3, dmul(x, y));
    a2   = dsub(y2, dscl(0.5, x2z2));
    a3   = dscl(s3, dmul(y, z));
    a4   = dscl(s3 / 2.0, dsub(dmul(z, z), dmul(x, x)));
    Y[4] = dscl(s5, a0);
    Y[5] = dscl(s5, a1);
    Y[6] = dscl(s5, a2);
    Y[7] = dscl(s5, a3);
    Y[8] = dscl(s5, a4);
  }
  if (lmax >= 3) {
    const Dual w = dsub(dscl(4.0, y2), x2z2);
    b0           = dscl(sqrt(5.0 / 6.0), dadd(dmul(a0, z), dmul(a4, x)));
    b1           = dscl(sqrt(5.0), dmul(a0, y));
    b2           = dscl(sqrt(3.0 / 8.0), dmul(w, x));
    b3           = dscl(0.5, dmul(y, dsub(dscl(2.0, y2), dscl(3.0, x2z2))));
    b4           = dscl(sqrt(3.0 / 8.0), dmul(z, w));
    b5           = dscl(sqrt(5.0), dmul(a4, y));
    b6           = dscl(sqrt(5.0 / 6.0), dsub(dmul(a4, z), dmul(a0, x)));
    Y[9]         = dscl(s7, b0);
    Y[10]        = dscl(s7, b1);
    Y[11]        = dscl(s7, b2);
    Y[12]        = dscl(s7, b3);
    Y[13]        = dscl(s7, b4);
    Y[14]        = dscl(s7, b5);
    Y[15]        = dscl(s7, b6);
  }
  if (lmax >= 4) {
    /* the literals of sh.c (e3nn's 15-digit constants) */
    Y[16] = dscl(s9, dadd(dscl(0.935414346693485, dmul(b0, z)), dscl(0.935414346693485, dmul(b6, x))));
    Y[17] = dscl(s9, dadd(dadd(dscl(0.661437827766148, dmul(b0, y)), dscl(0.810092587300982, dmul(b1, z))), dscl(0.810092587300983, dmul(b5, x))));
    Y[18] = dscl(s9, dadd(dadd(dadd(dadd(dscl(-0.176776695296637, dmul(b0, z)), dscl(0.866025403784439, dmul(b1, y))), dscl(0.684653196881458, dmul(b2, z))), dscl(0.684653196881457, dmul(b4, x))), dscl(0.176776695296637, dmul(b6, x))));
    Y[19] = dscl(s9, dadd(dadd(dadd(dscl(-0.306186217847897, dmul(b1, z)), dscl(0.968245836551855, dmul(b2, y))), dscl(0.790569415042095, dmul(b3, x))), dscl(0.306186217847897, dmul(b5, x))));
    Y[20] = dscl(s9, dadd(dadd(dscl(-0.612372435695795, dmul(b2, x)), dmul(b3, y)), dscl(-0.612372435695795, dmul(b4, z))));
    Y[21] = dscl(s9, dadd(dadd(dadd(dscl(-0.306186217847897, dmul(b1, x)), dscl(0.790569415042096, dmul(b3, z))), dscl(0.968245836551854, dmul(b4, y))), dscl(-0.306186217847897, dmul(b5, z))));
    Y[22] = dscl(s9, dadd(dadd(dadd(dadd(dscl(-0.176776695296637, dmul(b0, x)), dscl(-0.684653196881457, dmul(b2, x))), dscl(0.684653196881457, dmul(b4, z))), dscl(0.866025403784439, dmul(b5, y))), dscl(-0.176776695296637, dmul(b6, z))));
    Y[23] = dscl(s9, dadd(dadd(dscl(-0.810092587300982, dmul(b1, x)), dscl(0.810092587300982, dmul(b5, z))), dscl(0.661437827766148, dmul(b6, y))));
    Y[24] = dscl(s9, dadd(dscl(-0.935414346693485, dmul(b0, x)), dscl(0.935414346693486, dmul(b6, z))));
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

    sh_grad_unit((int)lmax, u, g);
    /* u = v / |v|: du/dv = (I - u u^T) / |v|; below the clamp u = v / 1e-12, du/dv = I / 1e-12 */
    for (int k = 0; k < nsh; k++) {
      const double gu = r0 > 1e-12 ? g[k][0] * u[0] + g[k][1] * u[1] + g[k][2] * u[2] : 0.0;
      for (int j = 0; j < 3; j++) dy[3 * k + j] = (g[k][j] - gu * u[j]) / r;
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

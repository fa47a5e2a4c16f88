/* 1x0e+1x1e+1x2e 9-vectors to Cartesian 3x3 blocks (e3nn irreps_to_cartesian of the HIP head). */
#include <hipmace/so3.h>

/* B = C(1,1,0) z0 + C(1,1,1) z[1:4] + C(1,1,2) z[4:9] written out with the closed forms of these
   three tensors (tested against HMWigner3j): delta/sqrt3, epsilon/sqrt6 and the symmetric
   traceless basis of C(1,1,2) with entries 1/sqrt10, -1/sqrt30, 2/sqrt30. It runs per HIP edge,
   so there is no table lookup and no loop. */
void HMIrreps9ToCartesian(const double z[9], double B[9])
{
  const double c0 = 1.0 / sqrt(3.0), c1 = 1.0 / sqrt(6.0), c2 = 1.0 / sqrt(10.0), c2d = 1.0 / sqrt(30.0);
  const double s  = c0 * z[0];
  const double ax = c1 * z[1], ay = c1 * z[2], az = c1 * z[3];
  const double xz = c2 * z[4], xy = c2 * z[5], yz = c2 * z[7], d = c2d * z[6], zzxx = c2 * z[8];

  B[0] = s - d - zzxx; /* xx */
  B[1] = xy + az;      /* xy: epsilon_xyz = +1 */
  B[2] = xz - ay;      /* xz: epsilon_xzy = -1 */
  B[3] = xy - az;      /* yx */
  B[4] = s + 2.0 * d;  /* yy */
  B[5] = yz + ax;      /* yz: epsilon_yzx = +1 */
  B[6] = xz + ay;      /* zx */
  B[7] = yz - ax;      /* zy */
  B[8] = s - d + zzxx; /* zz */
}

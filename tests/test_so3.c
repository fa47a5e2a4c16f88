/* Tests of the SO(3) primitives: spherical harmonics, Wigner 3j and irreps -> Cartesian blocks,
   against the e3nn reference data and against properties that hold without any reference. */
#include "hmtest.h"
#include <hipmace/so3.h>
#include <hipmace/io.h>
#include <string.h>

/* Reference tensors through the io module (shape-checked, memory mapped). */
static HMSafetensors ref_open(const char *name)
{
  char          path[PETSC_MAX_PATH_LEN];
  HMSafetensors st = NULL;

  hm_golden_path(name, path, sizeof(path));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &st));
  return st;
}

static const double *ref_get(HMSafetensors st, const char *name, int ndim, PetscInt64 d0, PetscInt64 d1, PetscInt64 d2)
{
  const PetscInt64 shape[3] = {d0, d1, d2};
  const double    *data     = NULL;

  HM_T(HMSafetensorsGetF64(st, name, ndim, shape, &data));
  return data;
}

/* ---------------------------------------------------------------------------------------------
   Helpers: deterministic random numbers, rotations, Wigner D matrices fitted from the SH. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double rng_uniform(void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return ((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void)
{
  double u1 = rng_uniform(), u2 = rng_uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * PETSC_PI * u2);
}

/* Uniformly random proper rotation from a random unit quaternion. */
static void random_rotation(double R[9])
{
  double q[4], n = 0;
  for (int i = 0; i < 4; i++) {
    q[i] = rng_normal();
    n += q[i] * q[i];
  }
  n = sqrt(n);
  for (int i = 0; i < 4; i++) q[i] /= n;
  const double w = q[0], v[3] = {q[1], q[2], q[3]};
  /* row a: the diagonal, then the two off-diagonal entries in cyclic order (a, b, c) */
  for (int a = 0; a < 3; a++) {
    const int b = (a + 1) % 3, c = (a + 2) % 3;
    R[4 * a]     = 1 - 2 * (v[b] * v[b] + v[c] * v[c]);
    R[3 * a + b] = 2 * (v[a] * v[b] - w * v[c]);
    R[3 * a + c] = 2 * (v[a] * v[c] + w * v[b]);
  }
}

static void matvec3(const double R[9], const double v[3], double w[3])
{
  for (int a = 0; a < 3; a++) w[a] = R[3 * a] * v[0] + R[3 * a + 1] * v[1] + R[3 * a + 2] * v[2];
}

/* Block l (2l+1 values) of the SH of one vector. */
static void sh_block(int l, const double v[3], double y[])
{
  double Y[25];
  HM_T(HMSphericalHarmonics(l, 1, v, Y));
  for (int m = 0; m < 2 * l + 1; m++) y[m] = Y[l * l + m];
}

/* Solves A X = B in place (A n x n, B n x k, row-major) by Gaussian elimination with pivoting. */
static void solve(int n, int k, double A[], double B[])
{
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
    assert_true(fabs(A[p * n + c]) > 1e-8);
    for (int j = 0; j < n; j++) {
      double t     = A[c * n + j];
      A[c * n + j] = A[p * n + j];
      A[p * n + j] = t;
    }
    for (int j = 0; j < k; j++) {
      double t     = B[c * k + j];
      B[c * k + j] = B[p * k + j];
      B[p * k + j] = t;
    }
    for (int r = 0; r < n; r++) {
      double f;
      if (r == c) continue;
      f = A[r * n + c] / A[c * n + c];
      for (int j = 0; j < n; j++) A[r * n + j] -= f * A[c * n + j];
      for (int j = 0; j < k; j++) B[r * k + j] -= f * B[c * k + j];
    }
  }
  for (int r = 0; r < n; r++)
    for (int j = 0; j < k; j++) B[r * k + j] /= A[r * n + r];
}

#define NFIT 64

/* D_l(R) as the least-squares solution of Y_l(R u_i) = D Y_l(u_i) over NFIT random u_i
   (normal equations; E[Y Y^T] = I for component normalisation, so they are well conditioned).
   The fit is only a means to get D: equivariance is then checked on fresh points. */
static void fit_wigner_D(int l, const double R[9], double D[])
{
  const int n     = 2 * l + 1;
  double    A[81] = {0}, BT[81] = {0}, u[3], Ru[3], y[9], yr[9];

  for (int s = 0; s < NFIT; s++) {
    for (int a = 0; a < 3; a++) u[a] = rng_normal();
    matvec3(R, u, Ru);
    sh_block(l, u, y);
    sh_block(l, Ru, yr);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        A[i * n + j] += y[i] * y[j];
        BT[i * n + j] += y[i] * yr[j]; /* (sum yr y^T)^T */
      }
  }
  solve(n, n, A, BT); /* BT <- A^{-1} (sum y yr^T) = D^T */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) D[i * n + j] = BT[j * n + i];
}

/* max |D D^T - I| */
static double orthogonality_defect(int n, const double D[])
{
  double m = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += D[i * n + k] * D[j * n + k];
      m = PetscMax(m, fabs(s - (i == j)));
    }
  return m;
}

#define LMAX_SH  4
#define W3J_MAXN ((2 * HM_W3J_LMAX + 1) * (2 * HM_W3J_LMAX + 1) * (2 * HM_W3J_LMAX + 1))

/* out = in with the (n[ax] x n[ax]) matrix D applied along axis ax of the row-major n[0] x n[1] x n[2] tensor */
static void apply_axis(const int n[3], int ax, const double *D, const double *in, double *out)
{
  for (int a = 0; a < n[0]; a++)
    for (int b = 0; b < n[1]; b++)
      for (int c = 0; c < n[2]; c++) {
        const int i[3] = {a, b, c};
        double    s    = 0;
        for (int k = 0; k < n[ax]; k++) {
          int j[3] = {a, b, c};
          j[ax]    = k;
          s += D[i[ax] * n[ax] + k] * in[(j[0] * n[1] + j[1]) * n[2] + j[2]];
        }
        out[(a * n[1] + b) * n[2] + c] = s;
      }
}

/* max |(D1 x D2 x D3) C - C| */
static double w3j_invariance_defect(int l1, int l2, int l3, const double *D1, const double *D2, const double *D3)
{
  const int n[3] = {2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1};
  double    C[W3J_MAXN], T1[W3J_MAXN], T2[W3J_MAXN], T3[W3J_MAXN];

  HM_T(HMWigner3j(l1, l2, l3, C));
  apply_axis(n, 2, D3, C, T1);
  apply_axis(n, 1, D2, T1, T2);
  apply_axis(n, 0, D1, T2, T3);
  return hm_max_abs_diff(n[0] * n[1] * n[2], T3, C);
}

/* ---------------------------------------------------------------------------------------------
   Spherical harmonics */

/* Reference: e3nn 0.4.4 on 20 vectors. Same formulas evaluated in double in a possibly different
   operation order (torch fuses and vectorises): differences are a few ulps of values <= 3, so
   1e-14 absolute leaves a 10x margin while any wrong coefficient or sign shows up at >= 1e-3. */
static void test_sh_reference(void **state)
{
  HMSafetensors st  = ref_open("primitives.safetensors");
  const double *vec = ref_get(st, "sh_vectors", 2, 20, 3, 0), *all = ref_get(st, "sh_all_l0to4", 2, 20, 25, 0);
  double        Y[20 * 25];
  (void)state;

  HM_T(HMSphericalHarmonics(4, 20, vec, Y));
  assert_true(hm_max_abs_diff(20 * 25, Y, all) <= 1e-14);
  for (int l = 0; l <= LMAX_SH; l++) {
    char          name[32];
    double        Yl[20 * 25];
    const double *ref;
    const int     d = (l + 1) * (l + 1);

    snprintf(name, sizeof(name), "sh_l%d", l);
    ref = ref_get(st, name, 2, 20, 2 * l + 1, 0);
    /* the lmax = l code path gives the leading columns, bit for bit (same arithmetic) */
    HM_T(HMSphericalHarmonics(l, 20, vec, Yl));
    for (int e = 0; e < 20; e++) {
      for (int k = 0; k < d; k++) assert_true(Yl[e * d + k] == Y[e * 25 + k]);
      for (int m = 0; m < 2 * l + 1; m++) assert_true(fabs(Yl[e * d + l * l + m] - ref[e * (2 * l + 1) + m]) <= 1e-14);
    }
  }
  HM_T(HMSafetensorsClose(&st));
}

/* Properties without reference data: |Y_l|^2 = 2l+1 on the sphere, scale invariance, explicit
   l <= 2 forms, the zero vector. Tolerances: a few ulps of O(1) quantities (1e-13 for sums of up to
   9 squares of values <= 3, which also absorbs the 15-digit literals of l = 4 at ~1e-15). */
static void test_sh_properties(void **state)
{
  double       v[3], w[3], Y[25], Yw[25], Z[25];
  const double zero[3] = {0, 0, 0};
  (void)state;

  for (int s = 0; s < 200; s++) {
    double r = 0, u[3];
    for (int a = 0; a < 3; a++) {
      v[a] = rng_normal();
      r += v[a] * v[a];
    }
    r = sqrt(r);
    for (int a = 0; a < 3; a++) {
      u[a] = v[a] / r;
      w[a] = 7.25 * v[a];
    }
    HM_T(HMSphericalHarmonics(4, 1, v, Y));
    HM_T(HMSphericalHarmonics(4, 1, w, Yw));
    assert_true(Y[0] == 1.0);
    for (int l = 0; l <= 4; l++) {
      double n2 = 0;
      for (int m = 0; m < 2 * l + 1; m++) n2 += Y[l * l + m] * Y[l * l + m];
      assert_true(fabs(n2 - (2 * l + 1)) <= 1e-13);
    }
    assert_true(hm_max_abs_diff(25, Y, Yw) <= 1e-13);
    /* l = 1 is sqrt3 (x, y, z); l = 2 the polynomials of MODEL_FORMAT 4.1 times sqrt5 */
    for (int a = 0; a < 3; a++) assert_true(fabs(Y[1 + a] - sqrt(3.0) * u[a]) <= 1e-14);
    assert_true(fabs(Y[4] - sqrt(15.0) * u[0] * u[2]) <= 1e-14);
    assert_true(fabs(Y[5] - sqrt(15.0) * u[0] * u[1]) <= 1e-14);
    assert_true(fabs(Y[6] - sqrt(5.0) * (u[1] * u[1] - 0.5 * (u[0] * u[0] + u[2] * u[2]))) <= 1e-14);
    assert_true(fabs(Y[7] - sqrt(15.0) * u[1] * u[2]) <= 1e-14);
    assert_true(fabs(Y[8] - sqrt(15.0) / 2 * (u[2] * u[2] - u[0] * u[0])) <= 1e-14);
  }
  /* zero vector: F.normalize gives 0, hence Y0 = 1 and everything else exactly 0 (no NaN) */
  HM_T(HMSphericalHarmonics(4, 1, zero, Z));
  assert_true(Z[0] == 1.0);
  for (int k = 1; k < 25; k++) assert_true(Z[k] == 0.0);
  /* tiny vectors: normalised as long as |v| > 1e-12 ... */
  {
    const double t[3] = {3e-9, -4e-9, 12e-9}, t1[3] = {3, -4, 12};
    HM_T(HMSphericalHarmonics(4, 1, t, Y));
    HM_T(HMSphericalHarmonics(4, 1, t1, Yw));
    assert_true(hm_max_abs_diff(25, Y, Yw) <= 1e-14);
  }
  /* ... below that divided by 1e-12 (torch F.normalize), so not unit: Y1 = sqrt3 v / 1e-12 */
  {
    const double t[3] = {6e-14, 8e-14, 0};
    HM_T(HMSphericalHarmonics(1, 1, t, Y));
    assert_true(fabs(Y[1] - sqrt(3.0) * 0.06) <= 1e-15 && fabs(Y[2] - sqrt(3.0) * 0.08) <= 1e-15 && Y[3] == 0.0);
  }
  /* n = 0 with NULL arrays is allowed */
  HM_T(HMSphericalHarmonics(3, 0, NULL, NULL));
}

/* Y_l(R u) = D_l(R) Y_l(u): D fitted on NFIT points, then checked on 50 fresh points; D must be
   orthogonal and for l = 1 equal to R (e3nn's basis with wigner_D(1, R) == R). The fit and the
   check are O(1) computations in double: 1e-13 is far below any real violation (O(1)). */
static void test_sh_equivariance(void **state)
{
  (void)state;
  for (int t = 0; t < 5; t++) {
    double R[9];
    random_rotation(R);
    for (int l = 0; l <= LMAX_SH; l++) {
      const int n = 2 * l + 1;
      double    D[81], u[3], Ru[3], y[9], yr[9];

      fit_wigner_D(l, R, D);
      assert_true(orthogonality_defect(n, D) <= 1e-13);
      if (l == 1) assert_true(hm_max_abs_diff(9, D, R) <= 1e-13);
      for (int s = 0; s < 50; s++) {
        for (int a = 0; a < 3; a++) u[a] = rng_normal();
        matvec3(R, u, Ru);
        sh_block(l, u, y);
        sh_block(l, Ru, yr);
        for (int i = 0; i < n; i++) {
          double p = 0;
          for (int j = 0; j < n; j++) p += D[i * n + j] * y[j];
          assert_true(fabs(p - yr[i]) <= 1e-13);
        }
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------
   Wigner 3j */

/* Every wigner_3j_* of primitives.safetensors and every _w3j_ buffer of the two shared models.
   The reference comes from exact CG coefficients; ours from double-precision Racah sums, which are
   accurate to ~1e-16 for l <= 4 (measured 2e-16). 1e-14 absolute: 50x margin, while a wrong sign,
   basis or normalisation is an O(0.1) error. */
static void check_w3j_file(const char *file, const char *marker, PetscInt expect)
{
  HMSafetensors st = ref_open(file);
  PetscInt      nt, count = 0;

  HM_T(HMSafetensorsGetNumTensors(st, &nt));
  for (PetscInt i = 0; i < nt; i++) {
    const HMTensorInfo *t;
    const char         *p;
    const double       *ref;
    int                 l1, l2, l3, n;
    double              C[W3J_MAXN], d;

    HM_T(HMSafetensorsGetTensorByIndex(st, i, &t));
    if (!(p = strstr(t->name, marker))) continue;
    if (sscanf(p + strlen(marker), "%d_%d_%d", &l1, &l2, &l3) != 3) fail_msg("%s: cannot parse tensor name '%s'", file, t->name);
    n   = (2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1);
    ref = ref_get(st, t->name, 3, 2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    HM_T(HMWigner3j(l1, l2, l3, C));
    d = hm_max_abs_diff(n, C, ref);
    if (d > 1e-14) fail_msg("%s: %s differs by %g", file, t->name, d);
    count++;
  }
  HM_T(HMSafetensorsClose(&st));
  /* make sure the loop saw every tensor it should have (a renamed key would skip silently) */
  if (count != expect) fail_msg("%s: %d tensors matched '%s', expected %d", file, (int)count, marker, (int)expect);
}

static void test_w3j_reference(void **state)
{
  (void)state;
  check_w3j_file("primitives.safetensors", "wigner_3j_", 65); /* all triangle-allowed l <= 4 */
  check_w3j_file("model_small.safetensors", "._w3j_", 15);
  check_w3j_file("model_default.safetensors", "._w3j_", 15);
}

/* Closed forms of MODEL_FORMAT 4.2 (exact up to rounding of the constants: 1e-15). */
static void test_w3j_identities(void **state)
{
  double       C[W3J_MAXN];
  const double eps[27] = {0, 0, 0, 0, 0, 1, 0, -1, 0, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 1, 0, -1, 0, 0, 0, 0, 0};
  (void)state;

  for (int l = 0; l <= HM_W3J_LMAX; l++) {
    const int n = 2 * l + 1;
    HM_T(HMWigner3j(0, l, l, C));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) assert_true(fabs(C[i * n + j] - (i == j) / sqrt(n)) <= 1e-15);
  }
  HM_T(HMWigner3j(1, 1, 0, C));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) assert_true(fabs(C[i * 3 + j] - (i == j) / sqrt(3.0)) <= 1e-15);
  HM_T(HMWigner3j(1, 1, 1, C));
  for (int k = 0; k < 27; k++) assert_true(fabs(C[k] - eps[k] / sqrt(6.0)) <= 1e-15);
  HM_T(HMWigner3j(1, 1, 2, C));
  {
    /* {m=0: xz+zx, m=1: xy+yx, m=2: diag(-1,2,-1)/sqrt3, m=3: yz+zy, m=4: zz-xx} / sqrt10 */
    double       E[45]     = {0};
    const double s3        = sqrt(3.0);
    E[(0 * 3 + 2) * 5 + 0] = E[(2 * 3 + 0) * 5 + 0] = 1;
    E[(0 * 3 + 1) * 5 + 1] = E[(1 * 3 + 0) * 5 + 1] = 1;
    E[(0 * 3 + 0) * 5 + 2] = E[(2 * 3 + 2) * 5 + 2] = -1 / s3;
    E[(1 * 3 + 1) * 5 + 2]                          = 2 / s3;
    E[(1 * 3 + 2) * 5 + 3] = E[(2 * 3 + 1) * 5 + 3] = 1;
    E[(2 * 3 + 2) * 5 + 4]                          = 1;
    E[(0 * 3 + 0) * 5 + 4]                          = -1;
    for (int k = 0; k < 45; k++) {
      assert_true(fabs(C[k] - E[k] / sqrt(10.0)) <= 1e-15);
      /* cancellation residue is cleaned to exact zeros, so callers can rely on the sparsity */
      if (E[k] == 0.0) assert_true(C[k] == 0.0);
    }
  }
}

/* Structure for every triangle-allowed triple up to HM_W3J_LMAX: Frobenius norm 1; orthogonality
   sum_ab C(l1,l2,L)[a,b,c] C(l1,l2,L')[a,b,c'] = delta_LL' delta_cc' / (2L+1) (Schur); the e3nn sign
   rule on sorted triples; the transposition rule for the other orders. All O(1) sums of at most
   2197 products: 1e-14. */
static void test_w3j_structure(void **state)
{
  static double C[W3J_MAXN], C2[W3J_MAXN];
  (void)state;

  for (int l1 = 0; l1 <= HM_W3J_LMAX; l1++)
    for (int l2 = 0; l2 <= HM_W3J_LMAX; l2++)
      for (int l3 = abs(l1 - l2); l3 <= PetscMin(l1 + l2, HM_W3J_LMAX); l3++) {
        const int n1 = 2 * l1 + 1, n2 = 2 * l2 + 1, n3 = 2 * l3 + 1, n = n1 * n2 * n3;
        const int par = ((l1 + l2 + l3) & 1) ? -1 : 1;
        double    s   = 0;

        HM_T(HMWigner3j(l1, l2, l3, C));
        for (int i = 0; i < n; i++) s += C[i] * C[i];
        assert_true(fabs(s - 1.0) <= 1e-14);

        for (int L = abs(l1 - l2); L <= PetscMin(l1 + l2, HM_W3J_LMAX); L++) {
          const int nL = 2 * L + 1;
          HM_T(HMWigner3j(l1, l2, L, C2));
          for (int c = 0; c < n3; c++)
            for (int d = 0; d < nL; d++) {
              double g = 0;
              for (int ab = 0; ab < n1 * n2; ab++) g += C[ab * n3 + c] * C2[ab * nL + d];
              assert_true(fabs(g - ((L == l3 && c == d) ? 1.0 / n3 : 0.0)) <= 1e-14);
            }
        }

        if (l1 <= l2 && l2 <= l3) {
          double pivot = C[(l1 * n2 + l2) * n3 + l3];
          for (int i = 0; fabs(pivot) <= 1e-15 && i < n; i++) pivot = C[i];
          assert_true(pivot > 1e-15);
        }

        /* swap of the first two axes: sign (-1)^(l1+l2+l3) */
        HM_T(HMWigner3j(l2, l1, l3, C2));
        for (int a = 0; a < n1; a++)
          for (int b = 0; b < n2; b++)
            for (int c = 0; c < n3; c++) assert_true(C2[(b * n1 + a) * n3 + c] == par * C[(a * n2 + b) * n3 + c]);
        /* cyclic shift: no sign */
        HM_T(HMWigner3j(l2, l3, l1, C2));
        for (int a = 0; a < n1; a++)
          for (int b = 0; b < n2; b++)
            for (int c = 0; c < n3; c++) assert_true(C2[(b * n3 + c) * n1 + a] == C[(a * n2 + b) * n3 + c]);
      }
}

/* Invariance (D1 x D2 x D3) C = C for random rotations. For l <= 4 the D come from the SH fit,
   which ties the 3j basis to the SH basis; D_5 and D_6 are built from C(1,4,5) and C(1,5,6)
   (D_L[c,c'] = (2L+1) <C[:,:,c], (D_1 x D_{L-1}) C[:,:,c']>): they must come out orthogonal and
   every other 3j with l = 5, 6 must be invariant under them. O(1) contractions of fitted matrices:
   1e-13. */
static void test_w3j_invariance(void **state)
{
  (void)state;
  for (int t = 0; t < 3; t++) {
    static double D[HM_W3J_LMAX + 1][(2 * HM_W3J_LMAX + 1) * (2 * HM_W3J_LMAX + 1)];
    static double C[W3J_MAXN];
    double        R[9];

    random_rotation(R);
    for (int l = 0; l <= LMAX_SH; l++) fit_wigner_D(l, R, D[l]);
    for (int L = LMAX_SH + 1; L <= HM_W3J_LMAX; L++) {
      const int n2 = 2 * L - 1, nL = 2 * L + 1;
      HM_T(HMWigner3j(1, L - 1, L, C));
      for (int c = 0; c < nL; c++)
        for (int cp = 0; cp < nL; cp++) {
          double g = 0;
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < n2; b++) {
              double v = 0;
              for (int ap = 0; ap < 3; ap++)
                for (int bp = 0; bp < n2; bp++) v += D[1][a * 3 + ap] * D[L - 1][b * n2 + bp] * C[(ap * n2 + bp) * nL + cp];
              g += C[(a * n2 + b) * nL + c] * v;
            }
          D[L][c * nL + cp] = nL * g;
        }
      assert_true(orthogonality_defect(nL, D[L]) <= 1e-13);
    }
    for (int l1 = 0; l1 <= HM_W3J_LMAX; l1++)
      for (int l2 = 0; l2 <= HM_W3J_LMAX; l2++)
        for (int l3 = abs(l1 - l2); l3 <= PetscMin(l1 + l2, HM_W3J_LMAX); l3++) {
          double d = w3j_invariance_defect(l1, l2, l3, D[l1], D[l2], D[l3]);
          if (d > 1e-13) fail_msg("3j (%d,%d,%d) not invariant: %g", l1, l2, l3, d);
        }
  }
}

static void test_w3j_errors_and_cache(void **state)
{
  double        C[W3J_MAXN], Y[32];
  const double *p, *q;
  const double  v[3] = {1, 2, 3};
  (void)state;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  assert_true(HMWigner3j(1, 1, 3, C) != 0);  /* not a triangle */
  assert_true(HMWigner3j(2, 0, 1, C) != 0);  /* not a triangle */
  assert_true(HMWigner3j(-1, 0, 1, C) != 0); /* negative */
  assert_true(HMWigner3j(HM_W3J_LMAX + 1, HM_W3J_LMAX + 1, 0, C) != 0);
  assert_true(HMWigner3jGet(0, 0, 1, &p) != 0);
  assert_true(HMSphericalHarmonics(5, 1, v, Y) != 0);
  assert_true(HMSphericalHarmonics(-1, 1, v, Y) != 0);
  PetscPopErrorHandler();

  HM_T(HMWigner3jGet(2, 3, 1, &p));
  HM_T(HMWigner3jGet(2, 3, 1, &q));
  assert_ptr_equal(p, q);
  HM_T(HMWigner3j(2, 3, 1, C));
  for (int i = 0; i < 5 * 7 * 3; i++) assert_true(p[i] == C[i]);
  HM_T(HMSO3Finalize());
  HM_T(HMSO3Finalize());
  HM_T(HMWigner3jGet(2, 3, 1, &q));
  for (int i = 0; i < 5 * 7 * 3; i++) assert_true(q[i] == C[i]);
  HM_T(HMWigner3jGet(6, 6, 6, &q)); /* left for PetscFinalize to free (checked by -malloc_debug) */
}

/* ---------------------------------------------------------------------------------------------
   irreps -> Cartesian */

/* Reference (hip irreps_to_cartesian_matrix on 10 random 9-vectors): O(1) sums of 9 products,
   few-ulp differences from the summation order: 1e-14. The same against the definition with our
   own 3j tensors, and equivariance B(D9 z) = R B(z) R^T with D9 = 1 + R + D_2 (fit): 1e-13. */
static void test_cartesian(void **state)
{
  HMSafetensors st  = ref_open("primitives.safetensors");
  const double *zin = ref_get(st, "irreps9_in", 2, 10, 9, 0), *Bref = ref_get(st, "irreps9_cartesian", 3, 10, 3, 3);
  double        B[9], C0[9], C1[27], C2[45];
  (void)state;

  HM_T(HMWigner3j(1, 1, 0, C0));
  HM_T(HMWigner3j(1, 1, 1, C1));
  HM_T(HMWigner3j(1, 1, 2, C2));
  for (int s = 0; s < 10; s++) {
    const double *z = &zin[9 * s];
    HMIrreps9ToCartesian(z, B);
    assert_true(hm_max_abs_diff(9, B, &Bref[9 * s]) <= 1e-14);
    for (int ab = 0; ab < 9; ab++) {
      double d = C0[ab] * z[0];
      for (int k = 0; k < 3; k++) d += C1[ab * 3 + k] * z[1 + k];
      for (int k = 0; k < 5; k++) d += C2[ab * 5 + k] * z[4 + k];
      assert_true(fabs(d - B[ab]) <= 1e-14);
    }
  }
  HM_T(HMSafetensorsClose(&st));

  for (int t = 0; t < 5; t++) {
    double R[9], D2[25], z[9], zr[9], Br[9], RBRt[9];
    random_rotation(R);
    fit_wigner_D(2, R, D2);
    for (int k = 0; k < 9; k++) z[k] = rng_normal();
    zr[0] = z[0];
    matvec3(R, &z[1], &zr[1]);
    for (int i = 0; i < 5; i++) {
      zr[4 + i] = 0;
      for (int j = 0; j < 5; j++) zr[4 + i] += D2[i * 5 + j] * z[4 + j];
    }
    HMIrreps9ToCartesian(z, B);
    HMIrreps9ToCartesian(zr, Br);
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) {
        double s = 0;
        for (int c = 0; c < 3; c++)
          for (int d = 0; d < 3; d++) s += R[a * 3 + c] * B[c * 3 + d] * R[b * 3 + d];
        RBRt[a * 3 + b] = s;
      }
    assert_true(hm_max_abs_diff(9, Br, RBRt) <= 1e-13);
  }
}

HM_TEST_MAIN_OF(test_sh_reference, test_sh_properties, test_sh_equivariance, test_w3j_reference, test_w3j_identities, test_w3j_structure, test_w3j_invariance, test_w3j_errors_and_cache, test_cartesian)

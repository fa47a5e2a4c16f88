/* The tabulated radial features z(r) meet their tolerance against the exact hidden radial layers. */
#include "nn/simd.h"
#include "hmtest.h"
#include <hipmace/model.h>
#include <hipmace/so3.h>
#include "model/modelimpl.h"
#include "hessian/radtable.h"
#include <string.h>

/* Table domain used by the engine: no two atoms come closer than 0.1 A. */
#define RMIN 0.1
/* Random distances per model on top of the construction's check points: uniform in [rmin, rc) (where
   edges are) and log-uniform (crowding the short distances, where z is hardest to tabulate). */
#define NUNIFORM 100000
#define NLOG     50000
/* Exact path against the independent evaluation in this file: both sum the products of a layer in
   ascending order with HM_FMA (fused where the build targets FMA hardware, as HMGemmRows) and form t^p by binary powering
   (as PetscPowRealInt does), so they agree bitwise (measured: 0 on all three models); 1e-15 absolute,
   a few ulps of z = O(1), allows only for a libm or compiler rounding one operation differently. The
   order has to match: unfused products alone already move z by 1.3e-15 (small model). */
#define TOL_INDEP 1e-15
/* Analytic derivatives against 4th-order central differences with step 1e-4: the truncation error
   step^4 |z^(5)| / 30 (largest in the demo network near 0.5 A, ~1e-10 there; it falls as step^4, checked
   down from 1e-2) and the round-off ~1e-16 |z| / step (~1e-11) stay below 1e-8 of the scale of the
   derivatives (their largest magnitude for the model, at least 1), while a wrong term of the chain rule
   errs by O(1) of that scale. */
#define FD_STEP 1e-4
#define TOL_FD  1e-8

static const char *model_names[] = {"default", "small", "demo"};

static void model_path(int i, char *buf, size_t len)
{
  if (i < 2) {
    char name[64];
    snprintf(name, sizeof(name), "model_%s.safetensors", model_names[i]);
    hm_golden_path(name, buf, len);
  } else snprintf(buf, len, "%s/demo_hipmace.safetensors", getenv("HIPMACE_INPUTS_DIR") ? getenv("HIPMACE_INPUTS_DIR") : "inputs");
}

/* xorshift64: the same distances on every platform */
static unsigned long long rng_state;
static double             urand(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* n doubles, uninitialised (the tests fill them before reading) */
static double *dalloc(PetscInt n)
{
  return malloc(sizeof(double) * (size_t)n);
}

static PetscInt zdim(const HMRadialMLP *mlp)
{
  return mlp->h[mlp->nlayers - 1];
}

/* Loads model i; its Hessian radial basis and MLP, and the width K of the radial output z. */
static void load_radial(int i, HMModel *m, const HMRadialBasis **rb, const HMRadialMLP **mlp, PetscInt *K)
{
  char path[PETSC_MAX_PATH_LEN];

  model_path(i, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, m));
  *rb  = &(*m)->hradial;
  *mlp = &(*m)->hi_mlp;
  *K   = zdim(*mlp);
}

/* check(mi, ...) on the Hessian radial network of each of the three models */
static void each_radial_model(void (*check)(int mi, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt K))
{
  for (int mi = 0; mi < 3; mi++) {
    HMModel              m;
    const HMRadialBasis *rb;
    const HMRadialMLP   *mlp;
    PetscInt             K;

    load_radial(mi, &m, &rb, &mlp, &K);
    check(mi, rb, mlp, K);
    HM_T(HMModelDestroy(&m));
  }
}

/* z(r) written out from the definition: Bessel basis, envelope, hidden layers, normalised SiLU. */
static void z_independent(const HMRadialBasis *rb, const HMRadialMLP *mlp, double r, double z[])
{
  double   *a = dalloc(mlp->maxw), *b = dalloc(mlp->maxw);
  const int p = rb->p;

  for (int k = 0; k < rb->nbessel; k++) {
    double env = 0.0;
    if (r < rb->rc) {
      const double t  = r / rb->rc;
      double       tp = 1.0, sq = t;
      /* t^p by binary powering (see TOL_INDEP) */
      for (int e = p; e; e >>= 1, sq *= sq)
        if (e & 1) tp *= sq;
      env = 1.0 - (p + 1.0) * (p + 2.0) / 2.0 * tp + p * (p + 2.0) * tp * t - p * (p + 1.0) / 2.0 * tp * t * t;
    }
    a[k] = rb->prefactor * (sin(rb->freq[k] * r) / r) * env;
  }
  for (int l = 0; l < mlp->nlayers - 1; l++) {
    const PetscInt hi = mlp->h[l], ho = mlp->h[l + 1];
    for (PetscInt j = 0; j < ho; j++) {
      double s = 0.0;
      for (PetscInt i = 0; i < hi; i++) s = HM_FMA(a[i], mlp->W[l][i * ho + j], s);
      b[j] = 1.6791767923989418 * s / (1.0 + exp(-s));
    }
    memcpy(a, b, sizeof(double) * (size_t)ho);
  }
  memcpy(z, a, sizeof(double) * (size_t)zdim(mlp));
  free(a);
  free(b);
}

static void check_exact_independent(int mi, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt K)
{
  const PetscInt n = 2000;
  double        *r, *z, *zi, err = 0.0;

  r         = dalloc(n);
  z         = dalloc(n * K);
  zi        = dalloc(n * K);
  rng_state = 0x9E3779B97F4A7C15ULL + (unsigned long long)mi;
  for (PetscInt i = 0; i < n; i++) r[i] = 0.01 + urand() * 1.2 * rb->rc;
  r[0] = RMIN;
  r[1] = rb->rc;
  r[2] = nextafter(rb->rc, 0.0);
  HM_T(HMRadialTableEvalExact(rb, mlp, n, r, z));
  for (PetscInt i = 0; i < n; i++) z_independent(rb, mlp, r[i], zi + i * K);
  err = hm_max_abs_diff(n * K, z, zi);
  print_message("%s: K %d, exact path vs independent evaluation %.3g (max |z| %.3g)\n", model_names[mi], (int)K, err, hm_max_abs(n * K, zi));
  assert_true(err <= TOL_INDEP);
  /* beyond the cutoff the exact path is exactly zero, which the table must keep */
  for (PetscInt i = 0; i < n; i++)
    if (r[i] >= rb->rc)
      for (PetscInt k = 0; k < K; k++) assert_true(z[i * K + k] == 0.0);
  free(r);
  free(z);
  free(zi);
}

static void test_exact_independent(void **state)
{
  (void)state;
  each_radial_model(check_exact_independent);
}

/* 4th-order central difference of f (n points, [n][K] each evaluated at r + j step) */
static double fd_err(PetscInt n, PetscInt K, double step, const double *fm2, const double *fm1, const double *fp1, const double *fp2, const double *d)
{
  double e = 0.0;
  for (PetscInt i = 0; i < n * K; i++) e = PetscMax(e, PetscAbsReal((fm2[i] - 8.0 * fm1[i] + 8.0 * fp1[i] - fp2[i]) / (12.0 * step) - d[i]));
  return e;
}

static void check_derivatives(int mi, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt K)
{
  const PetscInt n  = 600;
  PetscInt       np = 0;
  double        *r, *rs, *z, *dz, *d2z, *zs[4], *dzs[4], e1, e2, scale;

  r   = dalloc(n);
  rs  = dalloc(n);
  z   = dalloc(n * K);
  dz  = dalloc(n * K);
  d2z = dalloc(n * K);
  for (int j = 0; j < 4; j++) {
    zs[j]  = dalloc(n * K);
    dzs[j] = dalloc(n * K);
  }
  /* both branches of the sinc derivatives and their seam at f r = 1, then random distances */
  for (int k = 0; k < rb->nbessel; k++) {
    const double x1 = 1.0 / rb->freq[k];
    if (x1 > RMIN && x1 < rb->rc - 0.01) {
      r[np++] = x1;
      r[np++] = nextafter(x1, 0.0);
    }
  }
  rng_state = 0xD1B54A32D192ED03ULL + (unsigned long long)mi;
  while (np < n) r[np++] = RMIN + urand() * (rb->rc - 0.01 - RMIN);
  HM_T(HMRadialTableEvalExactDerivatives(rb, mlp, n, r, z, dz, d2z));
  HM_T(HMRadialTableEvalExact(rb, mlp, n, r, zs[0]));
  assert_memory_equal(z, zs[0], sizeof(double) * (size_t)(n * K));
  for (int j = 0; j < 4; j++) {
    const double off[4] = {-2.0, -1.0, 1.0, 2.0};
    for (PetscInt i = 0; i < n; i++) rs[i] = r[i] + off[j] * FD_STEP;
    HM_T(HMRadialTableEvalExactDerivatives(rb, mlp, n, rs, zs[j], dzs[j], NULL));
  }
  scale = PetscMax(1.0, PetscMax(hm_max_abs(n * K, z), PetscMax(hm_max_abs(n * K, dz), hm_max_abs(n * K, d2z))));
  e1    = fd_err(n, K, FD_STEP, zs[0], zs[1], zs[2], zs[3], dz);
  e2    = fd_err(n, K, FD_STEP, dzs[0], dzs[1], dzs[2], dzs[3], d2z);
  print_message("%s: derivatives vs finite differences: dz %.3g, d2z %.3g (scale %.3g)\n", model_names[mi], e1, e2, scale);
  assert_true(e1 <= TOL_FD * scale);
  assert_true(e2 <= TOL_FD * scale);
  for (int j = 0; j < 4; j++) {
    free(zs[j]);
    free(dzs[j]);
  }
  free(r);
  free(rs);
  free(z);
  free(dz);
  free(d2z);
}

static void test_derivatives(void **state)
{
  (void)state;
  each_radial_model(check_derivatives);
}

/* max |table - exact| over n distances; also checks that evaluating one at a time gives the same bits */
static double table_error(HMRadialTable t, PetscInt K, PetscInt n, const double *r, const double *zex)
{
  double *z = dalloc(n * K), err;
  HM_T(HMRadialTableEval(t, n, r, z));
  err = hm_max_abs_diff(n * K, z, zex);
  for (PetscInt i = 0; i < PetscMin(n, 500); i++) {
    double zi[512];
    HM_T(HMRadialTableEval(t, 1, r + i * 97 % n, zi));
    assert_memory_equal(zi, z + (i * 97 % n) * K, sizeof(double) * (size_t)K);
  }
  free(z);
  return err;
}

static void check_accuracy(int mi, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt K)
{
  const double   tols[2] = {1e-8, 1e-10};
  const PetscInt n       = NUNIFORM + NLOG;
  double        *r, *zex;

  r         = dalloc(n);
  zex       = dalloc(n * K);
  rng_state = 0x2545F4914F6CDD1DULL + (unsigned long long)mi;
  for (PetscInt i = 0; i < NUNIFORM; i++) r[i] = RMIN + urand() * (rb->rc - RMIN);
  for (PetscInt i = NUNIFORM; i < n; i++) r[i] = RMIN * exp(urand() * log(rb->rc / RMIN));
  for (PetscInt i = 0; i < n; i++)
    if (!(r[i] < rb->rc)) r[i] = RMIN; /* rounding at the top end: rc itself is tested elsewhere */
  HM_T(HMRadialTableEvalExact(rb, mlp, n, r, zex));
  for (int ti = 0; ti < 2; ti++) {
    HMRadialTable     t;
    HMRadialTableInfo in;
    double            err, t0, t1;
    HM_T(PetscTime(&t0));
    HM_T(HMRadialTableCreate(rb, mlp, RMIN, tols[ti], &t));
    HM_T(PetscTime(&t1));
    HM_T(HMRadialTableGetInfo(t, &in));
    err = table_error(t, K, n, r, zex);
    print_message("%s tol %.0e: K %d, %d knots, %.3f MB, built in %.4f s; check-point error %.3g, error at %d random distances %.3g\n", model_names[mi], tols[ti], (int)in.K, (int)in.nknots, in.bytes / 1048576.0, t1 - t0, in.maxerr, (int)n, err);
    assert_int_equal(in.K, K);
    assert_true(in.tol == tols[ti]);
    assert_true(in.maxerr <= in.tol / 4.0); /* the construction's own acceptance test (safety factor 4) */
    assert_true(err <= in.tol);             /* the guarantee of radtable.h */
    HM_T(HMRadialTableDestroy(&t));
  }
  free(r);
  free(zex);
}

static void test_accuracy(void **state)
{
  (void)state;
  each_radial_model(check_accuracy);
}

static char err_msg[HM_ERRMSG_LEN];

static void test_domain(void **state)
{
  HMModel              m;
  const HMRadialBasis *rb;
  const HMRadialMLP   *mlp;
  HMRadialTable        t = NULL;
  PetscInt             K;
  PetscErrorCode       ierr;
  double               r[6], *z, zex[512], rmin, rc;

  (void)state;
  load_radial(0, &m, &rb, &mlp, &K);
  z = dalloc(6 * K);
  HM_T(HMRadialTableCreate(rb, mlp, RMIN, 1e-10, &t));
  {
    HMRadialTableInfo info;
    HM_T(HMRadialTableGetInfo(t, &info));
    rmin = info.rmin;
    rc   = info.rc;
  }
  assert_true(rmin == RMIN && rc == rb->rc);

  /* at and beyond rc: +0.0 exactly, as the exact path, so pruning of zero edges still works */
  r[0] = rb->rc;
  r[1] = nextafter(rb->rc, INFINITY);
  r[2] = 2.0 * rb->rc;
  r[3] = 1e300;
  r[4] = INFINITY;
  r[5] = nextafter(rb->rc, 0.0);
  for (PetscInt i = 0; i < 6 * K; i++) z[i] = 1.0;
  HM_T(HMRadialTableEval(t, 6, r, z));
  for (PetscInt i = 0; i < 5 * K; i++) assert_true(z[i] == 0.0 && !signbit(z[i]));
  /* just below rc the table is continuous with the zeros (z and its first two derivatives vanish) */
  assert_true(hm_max_abs(K, z + 5 * K) <= 1e-10);

  /* rmin itself is inside; anything below (and NaN) is an error naming r and rmin */
  r[0] = RMIN;
  HM_T(HMRadialTableEval(t, 1, r, z));
  HM_T(HMRadialTableEvalExact(rb, mlp, 1, r, zex));
  assert_true(hm_max_abs_diff(K, z, zex) <= 1e-10);
  r[0] = 1.0;
  r[1] = nextafter(RMIN, 0.0);
  HM_T(PetscPushErrorHandler(hm_capture_error, err_msg));
  err_msg[0] = '\0';
  ierr       = HMRadialTableEval(t, 2, r, z);
  HM_T(PetscPopErrorHandler());
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  print_message("r < rmin: %s\n", err_msg);
  assert_non_null(strstr(err_msg, "rmin = 0.1"));
  assert_non_null(strstr(err_msg, "r = 0.0999999"));
  r[1] = NAN;
  HM_T(PetscPushErrorHandler(hm_capture_error, err_msg));
  ierr = HMRadialTableEval(t, 2, r, z);
  HM_T(PetscPopErrorHandler());
  assert_int_equal(ierr, PETSC_ERR_ARG_OUTOFRANGE);
  HM_T(HMRadialTableDestroy(&t));
  assert_null(t);

  /* bad construction arguments */
  HM_T(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  assert_int_equal(HMRadialTableCreate(rb, mlp, 0.0, 1e-10, &t), PETSC_ERR_ARG_OUTOFRANGE);
  assert_int_equal(HMRadialTableCreate(rb, mlp, rb->rc, 1e-10, &t), PETSC_ERR_ARG_OUTOFRANGE);
  assert_int_equal(HMRadialTableCreate(rb, mlp, RMIN, 1e-14, &t), PETSC_ERR_ARG_OUTOFRANGE);
  assert_int_equal(HMRadialTableCreate(rb, mlp, RMIN, NAN, &t), PETSC_ERR_ARG_OUTOFRANGE);
  HM_T(PetscPopErrorHandler());
  assert_null(t);
  free(z);
  HM_T(HMModelDestroy(&m));
}

/* A network without hidden layers: z is the basis itself (K = nbessel). */
static void test_basis_only(void **state)
{
  char                 path[PETSC_MAX_PATH_LEN];
  HMModel              m;
  HMRadialMLP          one;
  PetscInt             h[2];
  HMRadialTable        t;
  const PetscInt       n = 20000;
  double              *r, *z, *zex, err, maxerr;
  const HMRadialBasis *rb;

  (void)state;
  model_path(2, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  rb          = &m->hradial;
  h[0]        = rb->nbessel;
  h[1]        = 3;
  one.nlayers = 1;
  one.h       = h;
  one.W       = m->hi_mlp.W; /* never read: the only layer is the last one */
  one.Wp      = m->hi_mlp.Wp;
  one.maxw    = h[0];
  r           = dalloc(n);
  z           = dalloc(n * h[0]);
  zex         = dalloc(n * h[0]);
  rng_state   = 0x853C49E6748FEA9BULL;
  for (PetscInt i = 0; i < n; i++) r[i] = RMIN + urand() * (rb->rc - RMIN);
  HM_T(HMRadialTableCreate(rb, &one, RMIN, 1e-10, &t));
  {
    HMRadialTableInfo info;
    HM_T(HMRadialTableGetInfo(t, &info));
    maxerr = info.maxerr;
  }
  HM_T(HMRadialTableEval(t, n, r, z));
  HM_T(HMRadialTableEvalExact(rb, &one, n, r, zex));
  for (PetscInt i = 0; i < n; i++) {
    double b[64];
    HMRadialBasisEval(rb, r[i], b);
    assert_memory_equal(b, zex + i * h[0], sizeof(double) * (size_t)h[0]);
  }
  err = hm_max_abs_diff(n * h[0], z, zex);
  print_message("basis only: check-point error %.3g, random %.3g\n", maxerr, err);
  assert_true(err <= 1e-10);
  HM_T(HMRadialTableDestroy(&t));
  free(r);
  free(z);
  free(zex);
  HM_T(HMModelDestroy(&m));
}

HM_TEST_MAIN_OF(test_exact_independent, test_derivatives, test_accuracy, test_domain, test_basis_only)

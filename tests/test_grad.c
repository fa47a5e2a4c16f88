/* The backward (vector-Jacobian) kernels of src/nn/grad.c and src/so3/shgrad.c against central finite
   differences of <dy, f(x)>, on the golden models' real blocks (every layer of the default, small and
   hoextra models) with random inputs and random dy. */
#include "hmtest.h"
#include <petsctime.h>
#include <hipmace/so3.h>
#include "model/modelimpl.h"

/* Central differences with h = 1e-5 on O(1) inputs: the truncation error is h^2/6 |f'''| ~ 2e-11 |f'''|
   and the rounding error eps |<dy, f>| / h ~ 2e-11 |<dy, f>|; with |f'''| and |<dy, f>| at most O(10-100)
   here, both stay below ~1e-8 of the gradient's scale, so 1e-7 relative to max(1, max |gradient|) has
   margin while a dropped term or wrong factor (an O(1) relative error in some component) fails. */
#define FD_H   1e-5
#define FD_TOL 1e-7

static const char *models[] = {"model_default", "model_small", "model_hoextra"};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double   urand(void) /* uniform in [-1, 1) */
{
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return 2.0 * ((double)(rng_state >> 11) / 9007199254740992.0) - 1.0;
}
static void fill(PetscInt n, double *x, double s)
{
  for (PetscInt i = 0; i < n; i++) x[i] = s * urand();
}
static double dot(PetscInt n, const double *a, const double *b)
{
  double s = 0;
  for (PetscInt i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* objective <dy, f(x)> of an input vector x[N] */
typedef double (*ObjFn)(void *ctx, const double *x);

/* Compares grad[N] with central differences of f at x: every stride-th coordinate and 3 random
   directions. Returns the largest error relative to max(1, max |grad|). */
static double check_grad(const char *label, ObjFn f, void *ctx, PetscInt N, const double *x, const double *grad, PetscInt stride)
{
  double *xp = malloc(sizeof(double) * (size_t)N), *v = malloc(sizeof(double) * (size_t)N), err = 0;
  double  scale = PetscMax(1.0, hm_max_abs(N, grad));

  memcpy(xp, x, sizeof(double) * (size_t)N);
  for (PetscInt i = 0; i < N; i += stride) {
    double fp, fm, fd;
    xp[i] = x[i] + FD_H;
    fp    = f(ctx, xp);
    xp[i] = x[i] - FD_H;
    fm    = f(ctx, xp);
    xp[i] = x[i];
    fd    = (fp - fm) / (2 * FD_H);
    err   = PetscMax(err, PetscAbsReal(fd - grad[i]) / scale);
  }
  for (int k = 0; k < 3; k++) {
    double fp, fm, fd, vn;
    fill(N, v, 1.0);
    vn = PetscSqrtReal(dot(N, v, v));
    for (PetscInt i = 0; i < N; i++) xp[i] = x[i] + FD_H * v[i] / vn;
    fp = f(ctx, xp);
    for (PetscInt i = 0; i < N; i++) xp[i] = x[i] - FD_H * v[i] / vn;
    fm = f(ctx, xp);
    fd = (fp - fm) / (2 * FD_H);
    /* a directional derivative of a unit direction is at most |grad|_2 <= sqrt(N) max|grad| */
    err = PetscMax(err, PetscAbsReal(fd - dot(N, grad, v) / vn) / (scale * PetscSqrtReal((double)N)));
  }
  if (label) print_message("  %-40s N = %5" PetscInt_FMT ": max rel. error %.1e\n", label, N, err);
  free(xp);
  free(v);
  return err;
}

/* Coordinates checked one by one: all of them up to ~target, else an odd stride (so that every row,
   block and channel class is still visited; the random directions cover all coordinates at once).
   Keeps the test to seconds, and to minutes under the sanitizers. */
static PetscInt fd_stride(PetscInt N, PetscInt target)
{
  return N <= target ? 1 : (N / target) | 1;
}

/* ---- linear maps and the skip tensor product ---- */
typedef struct {
  const HMLinear *lin;
  const HMSkipTP *skip;
  PetscInt        n;
  const int      *elem;
  const double   *dy;
  double         *y;
} LinCtx;

static double lin_obj(void *c, const double *x)
{
  LinCtx *k = c;
  if (k->lin) {
    HMLinearApply(k->lin, k->n, x, k->lin->dim_in, 0.0, k->y, k->lin->dim_out);
    return dot(k->n * k->lin->dim_out, k->dy, k->y);
  }
  HMSkipTPApply(k->skip, k->n, k->elem, x, k->skip->dim_in, 0.0, k->y, k->skip->dim_out);
  return dot(k->n * k->skip->dim_out, k->dy, k->y);
}

static void check_linear(const char *label, const HMLinear *lin, const HMSkipTP *skip, int nel)
{
  const PetscInt n = 3, din = lin ? lin->dim_in : skip->dim_in, dout = lin ? lin->dim_out : skip->dim_out;
  double        *x = malloc(sizeof(double) * n * din), *dx = malloc(sizeof(double) * n * din), *dx1 = malloc(sizeof(double) * n * din);
  double        *dy = malloc(sizeof(double) * n * dout), *y = malloc(sizeof(double) * n * dout);
  int            elem[3] = {0, nel - 1, nel > 2 ? 1 : 0};
  LinCtx         ctx     = {lin, skip, n, elem, dy, y};

  fill(n * din, x, 1.0);
  fill(n * dout, dy, 1.0);
  for (PetscInt i = 0; i < n * din; i++) dx1[i] = 0.5;
  if (lin) {
    HMLinearApplyTranspose(lin, n, dy, dout, 0.0, dx, din);
    HMLinearApplyTranspose(lin, n, dy, dout, 1.0, dx1, din);
  } else {
    HMSkipTPApplyTranspose(skip, n, elem, dy, dout, 0.0, dx, din);
    HMSkipTPApplyTranspose(skip, n, elem, dy, dout, 1.0, dx1, din);
  }
  /* the map is linear: differences are exact up to rounding */
  assert_true(check_grad(label, lin_obj, &ctx, n * din, x, dx, fd_stride(n * din, 1000)) <= FD_TOL);
  for (PetscInt i = 0; i < n * din; i++) assert_true(PetscAbsReal(dx1[i] - 0.5 - dx[i]) <= 1e-14 * PetscMax(1.0, PetscAbsReal(dx[i])));
  free(x);
  free(dx);
  free(dx1);
  free(dy);
  free(y);
}

/* ---- radial MLP ---- */
typedef struct {
  const HMRadialMLP *mlp;
  PetscInt           n;
  const double      *dy;
  double            *y, *work;
} MLPCtx;

static double mlp_obj(void *c, const double *x)
{
  MLPCtx *k = c;
  HMRadialMLPApply(k->mlp, k->n, x, k->y, k->work);
  return dot(k->n * k->mlp->h[k->mlp->nlayers], k->dy, k->y);
}

static void check_mlp(const char *label, const HMRadialMLP *mlp, const HMRadialBasis *rb)
{
  /* inputs: the radial basis at distances near 0, in the middle and near the cutoff, and random */
  const PetscInt n = 6, h0 = mlp->h[0], hl = mlp->h[mlp->nlayers];
  const double   ds[4] = {1e-3, 0.37 * rb->rc, 0.81 * rb->rc, rb->rc * (1 - 1e-4)};
  double        *x = malloc(sizeof(double) * n * h0), *dx = malloc(sizeof(double) * n * h0), *dy = malloc(sizeof(double) * n * hl), *y = malloc(sizeof(double) * n * hl);
  double        *work  = malloc(sizeof(double) * 2 * n * mlp->maxw);
  double        *bwork = malloc(sizeof(double) * HMRadialMLPBackwardWorkSize(mlp, n));
  MLPCtx         ctx   = {mlp, n, dy, y, work};

  PetscCheckAbort(rb->nbessel == h0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "basis and MLP widths differ");
  for (int i = 0; i < 4; i++) HMRadialBasisEval(rb, ds[i], x + i * h0);
  fill(2 * h0, x + 4 * h0, 1.0);
  fill(n * hl, dy, 1.0);
  HMRadialMLPBackward(mlp, n, x, dy, dx, bwork);
  assert_true(check_grad(label, mlp_obj, &ctx, n * h0, x, dx, 1) <= FD_TOL);
  free(x);
  free(dx);
  free(dy);
  free(y);
  free(work);
  free(bwork);
}

/* ---- convolution tensor product ---- */
typedef struct {
  const HMConvTP *tp;
  const double   *dmid;
  double         *mid, *work;
} TPCtx;

static double tp_obj(void *c, const double *z)
{
  TPCtx          *k  = c;
  const HMConvTP *tp = k->tp;
  HMConvTPApply(tp, z, z + tp->dim_in1, z + tp->dim_in1 + tp->dim_in2, 0.0, k->mid, k->work);
  return dot(tp->dim_mid, k->dmid, k->mid);
}

static void check_tp(const char *label, const HMConvTP *tp, PetscInt lmax)
{
  const PetscInt N1 = tp->dim_in1, N2 = tp->dim_in2, NW = tp->weight_numel, N = N1 + N2 + NW;
  double        *z = malloc(sizeof(double) * N), *g = malloc(sizeof(double) * N), *dmid = malloc(sizeof(double) * tp->dim_mid), *mid = malloc(sizeof(double) * tp->dim_mid);
  double        *work = malloc(sizeof(double) * (tp->maxcy + 1)), *bwork = malloc(sizeof(double) * HMConvTPBackwardWorkSize(tp));
  double        *x1T = malloc(sizeof(double) * N1), *dmidT = malloc(sizeof(double) * tp->dim_mid), *dx1T = malloc(sizeof(double) * N1), *gT = malloc(sizeof(double) * N);
  double         v[3];
  TPCtx          ctx = {tp, dmid, mid, work};
  char           lab[256];

  PetscCheckAbort(N2 == (lmax + 1) * (lmax + 1), PETSC_COMM_SELF, PETSC_ERR_PLIB, "unexpected second input");
  fill(N1, z, 1.0);
  fill(3, v, 1.0);
  HM_T(HMSphericalHarmonics(lmax, 1, v, z + N1));
  for (PetscInt i = 0; i < NW; i++) z[N1 + N2 + i] = urand();
  fill(tp->dim_mid, dmid, 1.0);
  /* dx1 accumulates: start from 0.25 and remove it */
  for (PetscInt i = 0; i < N1; i++) g[i] = 0.25;
  HMConvTPBackward(tp, z, z + N1, z + N1 + N2, dmid, g, g + N1, g + N1 + N2, bwork);
  for (PetscInt i = 0; i < N1; i++) g[i] -= 0.25;
  assert_true(check_grad(label, tp_obj, &ctx, N, z, g, fd_stride(N, 2000)) <= FD_TOL);
  /* parts skipped with NULL, the others unchanged */
  {
    double *h = malloc(sizeof(double) * N);
    for (PetscInt i = 0; i < N; i++) h[i] = -7.0;
    HMConvTPBackward(tp, z, z + N1, z + N1 + N2, dmid, NULL, h + N1, NULL, bwork);
    for (PetscInt i = 0; i < N1; i++) assert_true(h[i] == -7.0);
    for (PetscInt i = 0; i < N2; i++) assert_true(h[N1 + i] == g[N1 + i]);
    for (PetscInt i = 0; i < NW; i++) assert_true(h[N1 + N2 + i] == -7.0);
    for (PetscInt i = 0; i < N1; i++) h[i] = 0.0;
    HMConvTPBackward(tp, z, z + N1, z + N1 + N2, dmid, h, NULL, h + N1 + N2, bwork);
    for (PetscInt i = 0; i < N2; i++) assert_true(h[N1 + i] == g[N1 + i]);
    /* (g's first part went through + 0.25 - 0.25) */
    assert_true(hm_max_abs_diff(N1, h, g) <= 1e-15 && hm_max_abs_diff(NW, h + N1 + N2, g + N1 + N2) <= 0.0);
    free(h);
  }
  /* the channel-innermost variant: the same gradient to round-off */
  HMConvTPTransposeIn(tp, z, x1T);
  HMConvTPTransposeOutBack(tp, dmid, dmidT);
  for (PetscInt i = 0; i < N1; i++) dx1T[i] = 0.0;
  HMConvTPBackwardT(tp, x1T, z + N1, z + N1 + N2, dmidT, dx1T, gT + N1, gT + N1 + N2, bwork);
  HMConvTPTransposeInBack(tp, dx1T, gT);
  {
    const double d = hm_max_abs_diff(N, g, gT) / PetscMax(1.0, hm_max_abs(N, g));
    snprintf(lab, sizeof(lab), "%s (T layout vs plain)", label);
    print_message("  %-40s N = %5" PetscInt_FMT ": max rel. difference %.1e\n", lab, N, d);
    assert_true(d <= 1e-13);
  }
  free(z);
  free(g);
  free(dmid);
  free(mid);
  free(work);
  free(bwork);
  free(x1T);
  free(dmidT);
  free(dx1T);
  free(gT);
}

/* ---- symmetric contraction ---- */
typedef struct {
  const HMSymContraction *sc;
  const HMIrreps         *target;
  PetscInt                n, dout_dim;
  const int              *elem;
  const double           *dout;
  double                 *out, *work;
} SCCtx;

static double sc_obj(void *c, const double *X)
{
  SCCtx         *k   = c;
  const PetscInt dtg = HMIrrepsDim(k->target);
  HMSymContractionApply(k->sc, k->target, k->n, k->elem, X, dtg, PETSC_FALSE, k->out, k->dout_dim, k->work);
  return dot(k->n * k->dout_dim, k->dout, k->out);
}

static void check_symcon(const char *label, const HMSymContraction *sc, const HMIrreps *target, int nel, PetscInt dimH)
{
  /* two nodes of every element (the batches of the backward see several nodes of one element) */
  const PetscInt n = 2 * nel, dtg = HMIrrepsDim(target), N = n * dtg;
  double        *X = malloc(sizeof(double) * N), *dX = malloc(sizeof(double) * N), *dout = malloc(sizeof(double) * n * dimH), *out = malloc(sizeof(double) * n * dimH);
  double        *work = malloc(sizeof(double) * HMSymContractionWorkSize(sc)), *bwork = malloc(sizeof(double) * HMSymContractionBackwardWorkSize(sc));
  int           *elem = malloc(sizeof(int) * n);
  SCCtx          ctx  = {sc, target, n, dimH, elem, dout, out, work};

  for (PetscInt i = 0; i < n; i++) elem[i] = (int)((i * 7 + 3) % nel); /* every element twice, interleaved */
  fill(N, X, 1.0);
  fill(n * dimH, dout, 1.0);
  HMSymContractionBackward(sc, target, n, elem, X, dtg, dout, dimH, dX, bwork);
  /* all coordinates on the small models, a strided subset on the big one */
  assert_true(check_grad(label, sc_obj, &ctx, N, X, dX, fd_stride(N, 800)) <= FD_TOL);
  free(X);
  free(dX);
  free(dout);
  free(out);
  free(work);
  free(bwork);
  free(elem);
}

/* ---- SiLU, radial basis, spherical harmonics (model-independent parts) ---- */
static double silu_obj(void *c, const double *x)
{
  (void)c;
  return HMSiLUNorm(x[0]);
}

static void test_silu(void **state)
{
  (void)state;
  for (int i = -40; i <= 40; i++) {
    const double x = 0.25 * i + 0.01, g = HMSiLUNormDeriv(x);
    assert_true(check_grad(i == 0 ? "silu_n'" : NULL, silu_obj, NULL, 1, &x, &g, 1) <= FD_TOL);
  }
  /* far tails: 0 and K */
  assert_true(HMSiLUNormDeriv(-800.0) == 0.0 && PetscAbsReal(HMSiLUNormDeriv(800.0) - HM_SILU_NORM) < 1e-15);
}

typedef struct {
  const HMRadialBasis *rb;
  const double        *dy;
  double              *val;
} RBCtx;

static double rb_obj(void *c, const double *d)
{
  RBCtx *k = c;
  HMRadialBasisEval(k->rb, d[0], k->val);
  return dot(k->rb->nbessel, k->dy, k->val);
}

static void check_basis(const char *label, const HMRadialBasis *rb)
{
  double val[32], ref[32], dval[32], dy[32], g;
  RBCtx  ctx = {rb, dy, ref};
  char   lab[256];

  for (int i = 0; i <= 40; i++) {
    /* near 0, across the range and up to the cutoff (where the envelope's derivative vanishes) */
    const double d = i == 0 ? 1e-3 : (i == 40 ? rb->rc * (1 - 1e-6) : rb->rc * i / 40.0);
    fill(rb->nbessel, dy, 1.0);
    HMRadialBasisEvalDeriv(rb, d, val, dval);
    HMRadialBasisEval(rb, d, ref);
    for (int k = 0; k < rb->nbessel; k++) assert_true(val[k] == ref[k]);
    g = dot(rb->nbessel, dy, dval);
    snprintf(lab, sizeof(lab), "%s d = %.4g", label, d);
    if (i == 0 || i >= 39) assert_true(check_grad(lab, rb_obj, &ctx, 1, &d, &g, 1) <= FD_TOL);
    else {
      double fp, fm, dd = d + FD_H;
      fp = rb_obj(&ctx, &dd);
      dd = d - FD_H;
      fm = rb_obj(&ctx, &dd);
      assert_true(PetscAbsReal((fp - fm) / (2 * FD_H) - g) <= FD_TOL * PetscMax(1.0, PetscAbsReal(g)));
    }
  }
  /* at and beyond the cutoff: zero values and zero derivatives */
  HMRadialBasisEvalDeriv(rb, rb->rc, val, dval);
  for (int k = 0; k < rb->nbessel; k++) assert_true(val[k] == 0.0 && dval[k] == 0.0);
  HMRadialBasisEvalDeriv(rb, 1.5 * rb->rc, val, dval);
  for (int k = 0; k < rb->nbessel; k++) assert_true(val[k] == 0.0 && dval[k] == 0.0);
}

typedef struct {
  PetscInt      lmax, n;
  const double *dy;
  double       *Y;
} SHCtx;

static double sh_obj(void *c, const double *v)
{
  SHCtx *k = c;
  HM_T(HMSphericalHarmonics(k->lmax, k->n, v, k->Y));
  return dot(k->n * (k->lmax + 1) * (k->lmax + 1), k->dy, k->Y);
}

static void test_sh_grad(void **state)
{
  /* random directions at lengths 0.5-2.5, the axes, near the poles (x = y = 0) and near the axes */
  const double fixed[][3] = {
      {0,    0,    1   },
      {0,    0,    -1.3},
      {1,    0,    0   },
      {0,    -0.7, 0   },
      {1e-9, 0,    1   },
      {0,    2e-8, -1  },
      {1,    1e-7, 0   },
      {0.6,  0,    0.8 },
      {0,    0.6,  0.8 },
      {1.1,  -0.2, 0.3 },
  };
  const PetscInt nf = 10, nr = 20, n = nf + nr;
  (void)state;
  for (PetscInt lmax = 0; lmax <= HM_LMAX; lmax++) {
    const PetscInt nsh = (lmax + 1) * (lmax + 1);
    double        *v = malloc(sizeof(double) * 3 * n), *Y = malloc(sizeof(double) * n * nsh), *Y0 = malloc(sizeof(double) * n * nsh), *dY = malloc(sizeof(double) * n * nsh * 3);
    double        *dy = malloc(sizeof(double) * n * nsh), *g = malloc(sizeof(double) * 3 * n);
    SHCtx          ctx = {lmax, n, dy, Y0};
    char           lab[64];

    for (PetscInt e = 0; e < nf; e++)
      for (int j = 0; j < 3; j++) v[3 * e + j] = fixed[e][j];
    for (PetscInt e = nf; e < n; e++) {
      double r = 0;
      fill(3, v + 3 * e, 1.0);
      r = PetscSqrtReal(dot(3, v + 3 * e, v + 3 * e));
      for (int j = 0; j < 3; j++) v[3 * e + j] *= (0.5 + 2.0 * (e - nf) / nr) / r;
    }
    fill(n * nsh, dy, 1.0);
    HM_T(HMSphericalHarmonicsGrad(lmax, n, v, Y, dY));
    HM_T(HMSphericalHarmonics(lmax, n, v, Y0));
    for (PetscInt i = 0; i < n * nsh; i++) assert_true(Y[i] == Y0[i]);
    for (PetscInt e = 0; e < n; e++)
      for (int j = 0; j < 3; j++) {
        g[3 * e + j] = 0;
        for (PetscInt k = 0; k < nsh; k++) g[3 * e + j] += dy[e * nsh + k] * dY[(e * nsh + k) * 3 + j];
      }
    snprintf(lab, sizeof(lab), "spherical harmonics lmax %d", (int)lmax);
    assert_true(check_grad(lab, sh_obj, &ctx, 3 * n, v, g, 1) <= FD_TOL);
    /* each component of Y alone on the fixed vectors (the weighted sum could hide a cancellation) */
    for (PetscInt k = 0; k < nsh; k++) {
      for (PetscInt i = 0; i < n * nsh; i++) dy[i] = (i % nsh == k) ? 1.0 : 0.0;
      for (PetscInt e = 0; e < n; e++)
        for (int j = 0; j < 3; j++) g[3 * e + j] = dY[(e * nsh + k) * 3 + j];
      for (PetscInt e = 0; e < nf; e++) {
        /* one vector at a time */
        SHCtx c1 = {lmax, 1, dy, Y0};
        assert_true(check_grad(NULL, sh_obj, &c1, 3, v + 3 * e, g + 3 * e, 1) <= FD_TOL);
      }
    }
    /* rotation invariance of |grad|: dY . v = 0 (Y of a normalised vector does not change along v) */
    for (PetscInt e = 0; e < n; e++)
      for (PetscInt k = 0; k < nsh; k++) assert_true(PetscAbsReal(dot(3, dY + (e * nsh + k) * 3, v + 3 * e)) <= 1e-12 * (1 + hm_max_abs(3, dY + (e * nsh + k) * 3)));
    free(v);
    free(Y);
    free(Y0);
    free(dY);
    free(dy);
    free(g);
  }
}

/* ---- every block of every layer of the golden models ---- */
static void check_layer(const char *mname, const char *lname, HMModel m, const HMLayer *L, const HMRadialBasis *rb)
{
  char lab[160];
  snprintf(lab, sizeof(lab), "%s %s linear_up", mname, lname);
  check_linear(lab, &L->linear_up, NULL, m->nel);
  snprintf(lab, sizeof(lab), "%s %s linear", mname, lname);
  check_linear(lab, &L->linear, NULL, m->nel);
  snprintf(lab, sizeof(lab), "%s %s prod_linear", mname, lname);
  check_linear(lab, &L->prod_linear, NULL, m->nel);
  if (L->readout.ninstr) {
    snprintf(lab, sizeof(lab), "%s %s readout", mname, lname);
    check_linear(lab, &L->readout, NULL, m->nel);
  }
  snprintf(lab, sizeof(lab), "%s %s skip_tp", mname, lname);
  check_linear(lab, NULL, &L->skip, m->nel);
  snprintf(lab, sizeof(lab), "%s %s radial MLP", mname, lname);
  check_mlp(lab, &L->mlp, rb);
  snprintf(lab, sizeof(lab), "%s %s conv_tp", mname, lname);
  check_tp(lab, &L->tp, m->max_ell);
  snprintf(lab, sizeof(lab), "%s %s symmetric contraction (corr %d)", mname, lname, L->corr);
  check_symcon(lab, &L->prod, &L->target, m->nel, m->dimH);
}

static void test_model_blocks(void **state)
{
  (void)state;
  for (int i = 0; i < 3; i++) {
    char    path[PETSC_MAX_PATH_LEN], nm[64];
    HMModel m;
    snprintf(nm, sizeof(nm), "%s.safetensors", models[i]);
    hm_golden_path(nm, path, sizeof(path));
    HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
    print_message("%s: %d layers, %d extra Hessian layers, %d elements\n", models[i], m->nlayers, m->nhx, m->nel);
    check_basis(models[i], &m->radial);
    if (m->separate_radial) check_basis(models[i], &m->hradial);
    for (int t = 0; t < m->nlayers; t++) {
      char ln[32];
      snprintf(ln, sizeof(ln), "layer %d", t);
      check_layer(models[i], ln, m, &m->layer[t], &m->radial);
    }
    for (int t = 0; t < m->nhx; t++) {
      char ln[32];
      snprintf(ln, sizeof(ln), "hessian layer %d", t);
      check_layer(models[i], ln, m, &m->hx[t], &m->hradial);
    }
    HM_T(HMModelDestroy(&m));
  }
}

/* Not asserted: the backward kernels' cost relative to their forward on the default model's first
   layer (the machine is shared; medians of a few repetitions). */
static double median3(double a, double b, double c)
{
  return PetscMax(PetscMin(a, b), PetscMin(PetscMax(a, b), c));
}

static void test_timing(void **state)
{
  char           path[PETSC_MAX_PATH_LEN];
  HMModel        m;
  const HMLayer *L;
  const PetscInt ne = 256, nn = 64;
  (void)state;
  hm_golden_path("model_default.safetensors", path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  L = &m->layer[0];
  {
    const HMConvTP *tp  = &L->tp;
    double         *x1T = malloc(sizeof(double) * ne * tp->dim_in1), *x2 = malloc(sizeof(double) * ne * tp->dim_in2), *w = malloc(sizeof(double) * ne * tp->weight_numel);
    double         *midT = calloc((size_t)(ne * tp->dim_mid), sizeof(double)), *dx1T = calloc((size_t)(ne * tp->dim_in1), sizeof(double)), *dx2 = malloc(sizeof(double) * ne * tp->dim_in2), *dw = malloc(sizeof(double) * ne * tp->weight_numel);
    double         *work = malloc(sizeof(double) * HMConvTPBackwardWorkSize(tp)), tf[3], tb[3], tbp[3];
    fill(ne * tp->dim_in1, x1T, 1.0);
    fill(ne * tp->dim_in2, x2, 1.0);
    fill(ne * tp->weight_numel, w, 1.0);
    for (int r = 0; r < 3; r++) {
      PetscLogDouble t0, t1, t2, t3;
      HM_T(PetscTime(&t0));
      for (PetscInt k = 0; k < ne; k++) HMConvTPApplyT(tp, x1T + k * tp->dim_in1, x2 + k * tp->dim_in2, w + k * tp->weight_numel, midT + k * tp->dim_mid, work);
      HM_T(PetscTime(&t1));
      for (PetscInt k = 0; k < ne; k++) HMConvTPBackwardT(tp, x1T + k * tp->dim_in1, x2 + k * tp->dim_in2, w + k * tp->weight_numel, midT + k * tp->dim_mid, dx1T + k * tp->dim_in1, dx2 + k * tp->dim_in2, dw + k * tp->weight_numel, work);
      HM_T(PetscTime(&t2));
      for (PetscInt k = 0; k < ne; k++) HMConvTPBackward(tp, x1T + k * tp->dim_in1, x2 + k * tp->dim_in2, w + k * tp->weight_numel, midT + k * tp->dim_mid, dx1T + k * tp->dim_in1, dx2 + k * tp->dim_in2, dw + k * tp->weight_numel, work);
      HM_T(PetscTime(&t3));
      tf[r]  = t1 - t0;
      tb[r]  = t2 - t1;
      tbp[r] = t3 - t2;
    }
    print_message("conv_tp, %d edges: forward (T) %.3g ms, backward T %.3g ms (%.2fx), backward plain %.3g ms (%.2fx)\n", (int)ne, 1e3 * median3(tf[0], tf[1], tf[2]), 1e3 * median3(tb[0], tb[1], tb[2]), median3(tb[0], tb[1], tb[2]) / median3(tf[0], tf[1], tf[2]), 1e3 * median3(tbp[0], tbp[1], tbp[2]),
                  median3(tbp[0], tbp[1], tbp[2]) / median3(tf[0], tf[1], tf[2]));
    free(x1T);
    free(x2);
    free(w);
    free(midT);
    free(dx1T);
    free(dx2);
    free(dw);
    free(work);
  }
  {
    const HMRadialMLP *mlp = &L->mlp;
    double            *x = malloc(sizeof(double) * ne * mlp->h[0]), *dx = malloc(sizeof(double) * ne * mlp->h[0]), *o = malloc(sizeof(double) * ne * mlp->h[mlp->nlayers]);
    double            *work = malloc(sizeof(double) * 2 * ne * mlp->maxw), *bwork = malloc(sizeof(double) * HMRadialMLPBackwardWorkSize(mlp, ne)), tf[3], tb[3];
    fill(ne * mlp->h[0], x, 1.0);
    for (int r = 0; r < 3; r++) {
      PetscLogDouble t0, t1, t2;
      HM_T(PetscTime(&t0));
      HMRadialMLPApply(mlp, ne, x, o, work);
      HM_T(PetscTime(&t1));
      HMRadialMLPBackward(mlp, ne, x, o, dx, bwork);
      HM_T(PetscTime(&t2));
      tf[r] = t1 - t0;
      tb[r] = t2 - t1;
    }
    print_message("radial MLP, %d edges: forward %.3g ms, backward %.3g ms (%.2fx)\n", (int)ne, 1e3 * median3(tf[0], tf[1], tf[2]), 1e3 * median3(tb[0], tb[1], tb[2]), median3(tb[0], tb[1], tb[2]) / median3(tf[0], tf[1], tf[2]));
    free(x);
    free(dx);
    free(o);
    free(work);
    free(bwork);
  }
  {
    const PetscInt dtg = HMIrrepsDim(&L->target), dH = m->dimH;
    double        *X = malloc(sizeof(double) * nn * dtg), *dX = malloc(sizeof(double) * nn * dtg), *o = malloc(sizeof(double) * nn * dH);
    double        *work = malloc(sizeof(double) * HMSymContractionWorkSize(&L->prod)), *bwork = malloc(sizeof(double) * HMSymContractionBackwardWorkSize(&L->prod)), tf[3], tb[3];
    int           *elem = malloc(sizeof(int) * nn);
    for (PetscInt i = 0; i < nn; i++) elem[i] = (int)(i % m->nel);
    fill(nn * dtg, X, 1.0);
    for (int r = 0; r < 3; r++) {
      PetscLogDouble t0, t1, t2;
      HM_T(PetscTime(&t0));
      HMSymContractionApply(&L->prod, &L->target, nn, elem, X, dtg, PETSC_FALSE, o, dH, work);
      HM_T(PetscTime(&t1));
      HMSymContractionBackward(&L->prod, &L->target, nn, elem, X, dtg, o, dH, dX, bwork);
      HM_T(PetscTime(&t2));
      tf[r] = t1 - t0;
      tb[r] = t2 - t1;
    }
    print_message("symmetric contraction, %d nodes: forward %.3g ms, backward %.3g ms (%.2fx)\n", (int)nn, 1e3 * median3(tf[0], tf[1], tf[2]), 1e3 * median3(tb[0], tb[1], tb[2]), median3(tb[0], tb[1], tb[2]) / median3(tf[0], tf[1], tf[2]));
    free(X);
    free(dX);
    free(o);
    free(work);
    free(bwork);
    free(elem);
  }
  {
    const HMLinear *lin = &L->linear_up;
    double         *x = malloc(sizeof(double) * nn * 4 * lin->dim_in), *y = malloc(sizeof(double) * nn * 4 * lin->dim_out), tf[3], tb[3];
    fill(nn * 4 * lin->dim_in, x, 1.0);
    fill(nn * 4 * lin->dim_out, y, 1.0);
    for (int r = 0; r < 3; r++) {
      PetscLogDouble t0, t1, t2;
      HM_T(PetscTime(&t0));
      HMLinearApply(lin, nn * 4, x, lin->dim_in, 0.0, y, lin->dim_out);
      HM_T(PetscTime(&t1));
      HMLinearApplyTranspose(lin, nn * 4, y, lin->dim_out, 0.0, x, lin->dim_in);
      HM_T(PetscTime(&t2));
      tf[r] = t1 - t0;
      tb[r] = t2 - t1;
    }
    print_message("linear_up, %d nodes: forward %.3g ms, transpose %.3g ms (%.2fx)\n", (int)nn * 4, 1e3 * median3(tf[0], tf[1], tf[2]), 1e3 * median3(tb[0], tb[1], tb[2]), median3(tb[0], tb[1], tb[2]) / median3(tf[0], tf[1], tf[2]));
    free(x);
    free(y);
  }
  HM_T(HMModelDestroy(&m));
}

HM_TEST_MAIN_OF(test_silu, test_sh_grad, test_model_blocks, test_timing)

/* Tabulated hidden radial features z(r): quintic Hermite pieces on adaptively refined uniform segments. */
#include "hessian/radtable.h"
#include <hipmace/so3.h>
#include <string.h>

/* Coefficients per interval and component: z(x_j + t h) = sum_m c_m t^m, t in [0, 1]. Quintic Hermite
   (z, z', z'' at both ends) reaches 1e-10 with ~10x fewer knots than cubic, and its error term
   t^3 (1-t)^3 h^6 z^(6) / 720 has a known shape to check against. */
#define RT_NCOEF 6
/* Equal segments of [rmin, rc], each with its own spacing: the lookup stays two multiplies and two
   truncations, while the spacing follows how hard z is in each region. */
#define RT_NSEG 32
/* Intervals per segment to start from; a segment's count grows from its measured error. */
#define RT_NINIT 4
/* Check points per interval (t = c / (RT_NCHECK + 1)) and the safety factor of the guarantee (radtable.h). */
#define RT_NCHECK 7
#define RT_SAFETY 4.0
/* Largest table accepted (intervals): 200 MB at K = 64, far beyond any sane network. */
#define RT_MAXINT 65536
/* Points per batch of the network evaluations (bounds the work arrays). */
#define RT_CHUNK 256

/* The per-distance loop is compiled for AVX-512, AVX2 and the baseline and picked at load time, as the
   folded kernel's loops are; C11 mode does not contract into FMAs, so all versions give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  #define RT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
  #define RT_CLONES
#endif

struct _p_HMRadialTable {
  PetscInt  K, nseg, nint;
  double    rmin, rc, invseg;
  double   *x0;   /* [nseg] first knot of each segment */
  double   *h;    /* [nseg] spacing */
  double   *invh; /* [nseg] */
  PetscInt *n;    /* [nseg] intervals */
  PetscInt *off;  /* [nseg + 1] first interval of each segment */
  double   *coef; /* [nint][RT_NCOEF][K] */
  double    tol, maxerr;
  size_t    bytes;
};

/* Interval of x in [rmin, rc) and the local coordinate t. Rounding can put x an ulp outside the interval
   found, which only extrapolates the polynomial by as much. */
static inline PetscInt RtLocate(const struct _p_HMRadialTable *t, double x, double *tt)
{
  PetscInt s = (PetscInt)((x - t->rmin) * t->invseg), j;
  double   u;

  if (s > t->nseg - 1) s = t->nseg - 1;
  u = (x - t->x0[s]) * t->invh[s];
  j = (PetscInt)u;
  if (j > t->n[s] - 1) j = t->n[s] - 1;
  *tt = u - (double)j;
  return t->off[s] + j;
}

/* Returns the index of the first distance below rmin (or NaN), else -1. */
RT_CLONES static PetscInt rt_eval(const struct _p_HMRadialTable *t, PetscInt n, const double r[], double *restrict z)
{
  const PetscInt K = t->K;

  for (PetscInt i = 0; i < n; i++) {
    const double x  = r[i];
    double      *zi = z + i * K;
    double       s;

    if (!(x >= t->rmin)) return i;
    if (x >= t->rc) {
      for (PetscInt k = 0; k < K; k++) zi[k] = 0.0;
      continue;
    }
    {
      const double *restrict c0 = t->coef + RtLocate(t, x, &s) * RT_NCOEF * K;
      const double *restrict c1 = c0 + K, *restrict c2 = c1 + K, *restrict c3 = c2 + K, *restrict c4 = c3 + K, *restrict c5 = c4 + K;
      for (PetscInt k = 0; k < K; k++) zi[k] = c0[k] + s * (c1[k] + s * (c2[k] + s * (c3[k] + s * (c4[k] + s * c5[k]))));
    }
  }
  return -1;
}

PetscErrorCode HMRadialTableEval(HMRadialTable t, PetscInt n, const double r[], double z[])
{
  PetscInt bad;

  PetscFunctionBegin;
  bad = rt_eval(t, n, r, z);
  PetscCheck(bad < 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "radial table: distance r = %.17g (entry %" PetscInt_FMT ") is below the table's rmin = %.17g", bad >= 0 ? r[bad] : 0.0, bad, t->rmin);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* g1 = sinc'(x), g2 = sinc''(x), sinc(x) = sin(x)/x. The closed forms cancel to O(x^3) of O(x) terms
   near 0, so there the term-by-term derivatives of the Taylor series are used. */
static void SincDerivatives(double x, double *g1, double *g2)
{
  if (PetscAbsReal(x) < 1.0) {
    /* c_n = (-1)^n x^(2n-2) / (2n+1)!; g1 = sum 2n x c_n, g2 = sum 2n (2n-1) c_n; c_13 < 1e-26 */
    double c = -1.0 / 6.0, s1 = 0.0, s2 = 0.0;
    for (int nn = 1; nn <= 12; nn++) {
      s1 += 2.0 * nn * c;
      s2 += 2.0 * nn * (2.0 * nn - 1.0) * c;
      c *= -x * x / ((2.0 * nn + 2.0) * (2.0 * nn + 3.0));
    }
    *g1 = s1 * x;
    *g2 = s2;
  } else {
    const double sx = PetscSinReal(x), cx = PetscCosReal(x);
    *g1 = (x * cx - sx) / (x * x);
    *g2 = ((2.0 - x * x) * sx - 2.0 * x * cx) / (x * x * x);
  }
}

/* Basis jet at r: out[0][nb] = HMRadialBasisEval (the same bits as the exact path), out[1], out[2] its
   first and second derivatives. For r >= rc all three are 0, the left limits (the envelope vanishes at
   rc with its first two derivatives). */
static void BasisJet(const HMRadialBasis *rb, double r, double out[])
{
  const int    nb = rb->nbessel, p = rb->p;
  const double rc = rb->rc, t = r / rc;
  const double A = (p + 1.0) * (p + 2.0) / 2.0, B = p * (p + 2.0), C = p * (p + 1.0) / 2.0;
  double       e = HMPolynomialCutoff(r, rc, p), e1 = 0.0, e2 = 0.0;

  HMRadialBasisEval(rb, r, out);
  if (r < rc) {
    const double tp1 = PetscPowRealInt(t, p - 1), tp2 = p >= 2 ? PetscPowRealInt(t, p - 2) : 0.0;
    e1 = (-A * p * tp1 + B * (p + 1.0) * tp1 * t - C * (p + 2.0) * tp1 * t * t) / rc;
    e2 = (-A * p * (p - 1.0) * tp2 + B * (p + 1.0) * p * tp1 - C * (p + 2.0) * (p + 1.0) * tp1 * t) / (rc * rc);
  } else e = 0.0;
  for (int k = 0; k < nb; k++) {
    const double f = rb->freq[k], s = PetscSinReal(f * r) / r;
    double       g1, g2, s1, s2;
    SincDerivatives(f * r, &g1, &g2);
    s1              = f * f * g1;
    s2              = f * f * f * g2;
    out[nb + k]     = rb->prefactor * (s1 * e + s * e1);
    out[2 * nb + k] = rb->prefactor * (s2 * e + 2.0 * s1 * e1 + s * e2);
  }
}

/* Exact z[n][K] of n <= RT_CHUNK distances; work holds 2 RT_CHUNK maxw doubles. */
static void ExactChunk(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double z[], double work[])
{
  const PetscInt nb = rb->nbessel, nhid = mlp->nlayers - 1;
  double        *buf[2] = {work, work + RT_CHUNK * mlp->maxw};
  double        *basis  = nhid ? buf[1] : z;
  const double  *cur    = basis;

  for (PetscInt i = 0; i < n; i++) HMRadialBasisEval(rb, r[i], basis + i * nb);
  for (int l = 0; l < nhid; l++) {
    const PetscInt hi = mlp->h[l], ho = mlp->h[l + 1];
    double        *dst = l == nhid - 1 ? z : buf[l % 2];
    HMGemmRows(n, ho, hi, 1.0, cur, hi, mlp->W[l], ho, 0.0, dst, ho);
    for (PetscInt k = 0; k < n * ho; k++) dst[k] = HMSiLUNorm(dst[k]);
    cur = dst;
  }
}

/* z, z', z'' of n <= RT_CHUNK distances by forward mode, as rows jet[i][3][K]; work holds
   6 RT_CHUNK maxw doubles. Returns the jet (inside work). The value rows go through exactly the
   operations of ExactChunk (HMGemmRows is row-independent), so the knots hold exact z. */
static const double *JetChunk(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double work[])
{
  const PetscInt nb = rb->nbessel, nhid = mlp->nlayers - 1;
  double        *buf[2] = {work, work + 3 * RT_CHUNK * mlp->maxw};
  const double  *cur    = buf[1];

  for (PetscInt i = 0; i < n; i++) BasisJet(rb, r[i], buf[1] + 3 * i * nb);
  for (int l = 0; l < nhid; l++) {
    const PetscInt hi = mlp->h[l], ho = mlp->h[l + 1];
    double        *dst = buf[l % 2];
    HMGemmRows(3 * n, ho, hi, 1.0, cur, hi, mlp->W[l], ho, 0.0, dst, ho);
    for (PetscInt i = 0; i < n; i++) {
      double *a = dst + 3 * i * ho, *a1 = a + ho, *a2 = a1 + ho;
      for (PetscInt k = 0; k < ho; k++) {
        /* silu_n(a) = c a s(a), s the logistic function: silu_n' = c (s + a s (1-s)),
           silu_n'' = c s (1-s) (2 + a (1 - 2s)); s = 0 or 1 in the tails gives the right limits */
        const double s = 1.0 / (1.0 + PetscExpReal(-a[k])), sp = s * (1.0 - s);
        const double d1 = HM_SILU_NORM * (s + a[k] * sp), d2 = HM_SILU_NORM * sp * (2.0 + a[k] * (1.0 - 2.0 * s));
        a2[k] = d2 * a1[k] * a1[k] + d1 * a2[k];
        a1[k] = d1 * a1[k];
        a[k]  = HMSiLUNorm(a[k]);
      }
    }
    cur = dst;
  }
  return cur;
}

PetscErrorCode HMRadialTableEvalExact(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double z[])
{
  const PetscInt K = mlp->h[mlp->nlayers - 1];
  double        *work;

  PetscFunctionBegin;
  PetscCheck(mlp->nlayers >= 1 && mlp->h[0] == rb->nbessel, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "radial network input width %" PetscInt_FMT " differs from the %d basis functions", mlp->h[0], rb->nbessel);
  PetscCall(PetscMalloc1(2 * RT_CHUNK * mlp->maxw, &work));
  for (PetscInt i0 = 0; i0 < n; i0 += RT_CHUNK) ExactChunk(rb, mlp, PetscMin(RT_CHUNK, n - i0), r + i0, z + i0 * K, work);
  PetscCall(PetscFree(work));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRadialTableEvalExactDerivatives(const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt n, const double r[], double z[], double dz[], double d2z[])
{
  const PetscInt K = mlp->h[mlp->nlayers - 1];
  double        *work;

  PetscFunctionBegin;
  PetscCheck(mlp->nlayers >= 1 && mlp->h[0] == rb->nbessel, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "radial network input width %" PetscInt_FMT " differs from the %d basis functions", mlp->h[0], rb->nbessel);
  PetscCall(PetscMalloc1(6 * RT_CHUNK * mlp->maxw, &work));
  for (PetscInt i0 = 0; i0 < n; i0 += RT_CHUNK) {
    const PetscInt nc  = PetscMin(RT_CHUNK, n - i0);
    const double  *jet = JetChunk(rb, mlp, nc, r + i0, work);
    for (PetscInt i = 0; i < nc; i++) {
      if (z) PetscCall(PetscArraycpy(z + (i0 + i) * K, jet + 3 * i * K, K));
      if (dz) PetscCall(PetscArraycpy(dz + (i0 + i) * K, jet + (3 * i + 1) * K, K));
      if (d2z) PetscCall(PetscArraycpy(d2z + (i0 + i) * K, jet + (3 * i + 2) * K, K));
    }
  }
  PetscCall(PetscFree(work));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Knot j of segment s; a segment's last knot is the next one's first (and rc itself at the end). */
static double knot(const struct _p_HMRadialTable *t, PetscInt s, PetscInt j)
{
  if (j == t->n[s]) return s + 1 == t->nseg ? t->rc : t->x0[s + 1];
  return t->x0[s] + (double)j * t->h[s];
}

/* Quintic Hermite coefficients in t of one interval from the jets (z, z', z'') at its ends. */
static void Hermite5(PetscInt K, double h, const double ja[], const double jb[], double c[])
{
  for (PetscInt k = 0; k < K; k++) {
    const double f0 = ja[k], d0 = h * ja[K + k], s0 = h * h * ja[2 * K + k];
    const double f1 = jb[k], d1 = h * jb[K + k], s1 = h * h * jb[2 * K + k];
    const double c2 = 0.5 * s0;
    /* the rest must match f1, d1, s1 at t = 1: c3 + c4 + c5 = P, 3c3 + 4c4 + 5c5 = Q, 6c3 + 12c4 + 20c5 = R */
    const double P = f1 - (f0 + d0 + c2), Q = d1 - (d0 + 2.0 * c2), R = s1 - 2.0 * c2;
    c[k]         = f0;
    c[K + k]     = d0;
    c[2 * K + k] = c2;
    c[3 * K + k] = 10.0 * P - 4.0 * Q + 0.5 * R;
    c[4 * K + k] = -15.0 * P + 7.0 * Q - R;
    c[5 * K + k] = 6.0 * P - 3.0 * Q + 0.5 * R;
  }
}

/* Coefficients of every interval of segment s into t->coef (at t->off[s]). */
static void FillSegment(struct _p_HMRadialTable *t, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt s, double xs[], double prev[], double work[])
{
  const PetscInt K = t->K, nk = t->n[s] + 1;

  for (PetscInt j0 = 0; j0 < nk; j0 += RT_CHUNK) {
    const PetscInt nc = PetscMin(RT_CHUNK, nk - j0);
    const double  *jet;
    for (PetscInt j = 0; j < nc; j++) xs[j] = knot(t, s, j0 + j);
    jet = JetChunk(rb, mlp, nc, xs, work);
    for (PetscInt j = 0; j < nc; j++) {
      const PetscInt jj = j0 + j;
      if (jj > 0) Hermite5(K, t->h[s], j ? jet + 3 * (j - 1) * K : prev, jet + 3 * j * K, t->coef + (t->off[s] + jj - 1) * RT_NCOEF * K);
    }
    memcpy(prev, jet + 3 * (nc - 1) * K, 3 * K * sizeof(double));
  }
}

/* Largest error of segment s over its check points, against the exact path. */
static double CheckSegment(const struct _p_HMRadialTable *t, const HMRadialBasis *rb, const HMRadialMLP *mlp, PetscInt s, double xs[], double zex[], double ztab[], double work[])
{
  const PetscInt K = t->K, np = t->n[s] * RT_NCHECK;
  double         err = 0.0;

  for (PetscInt p0 = 0; p0 < np; p0 += RT_CHUNK) {
    const PetscInt nc = PetscMin(RT_CHUNK, np - p0);
    for (PetscInt p = 0; p < nc; p++) {
      const PetscInt j = (p0 + p) / RT_NCHECK, c = (p0 + p) % RT_NCHECK;
      xs[p] = t->x0[s] + ((double)j + (c + 1.0) / (RT_NCHECK + 1.0)) * t->h[s];
    }
    ExactChunk(rb, mlp, nc, xs, zex, work);
    (void)rt_eval(t, nc, xs, ztab); /* every check point lies in [rmin, rc) */
    for (PetscInt k = 0; k < nc * K; k++) err = PetscMax(err, PetscAbsReal(ztab[k] - zex[k]));
  }
  return err;
}

PetscErrorCode HMRadialTableCreate(const HMRadialBasis *rb, const HMRadialMLP *mlp, double rmin, double tol, HMRadialTable *out)
{
  struct _p_HMRadialTable *t;
  const PetscInt           nseg   = RT_NSEG;
  const double             target = tol / RT_SAFETY;
  PetscBool               *dirty;
  double                  *err, *oldcoef = NULL, *xs, *prev, *zex, *ztab, *work, seglen;
  PetscInt                *oldoff, K;

  PetscFunctionBegin;
  *out = NULL;
  PetscCheck(mlp->nlayers >= 1 && mlp->h[0] == rb->nbessel, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "radial network input width %" PetscInt_FMT " differs from the %d basis functions", mlp->h[0], rb->nbessel);
  PetscCheck(rmin > 0.0 && rmin < rb->rc && PetscIsNormalReal(rb->rc), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "radial table: need 0 < rmin < rc, got rmin = %g, rc = %g", rmin, rb->rc);
  PetscCheck(tol >= 1e-13 && PetscIsNormalReal(tol), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "radial table: tolerance %g must be finite and >= 1e-13 (the round-off of the exact network)", tol);
  K = mlp->h[mlp->nlayers - 1];
  PetscCall(PetscNew(&t));
  t->K      = K;
  t->nseg   = nseg;
  t->rmin   = rmin;
  t->rc     = rb->rc;
  t->tol    = tol;
  seglen    = (rb->rc - rmin) / nseg;
  t->invseg = 1.0 / seglen;
  PetscCall(PetscMalloc5(nseg, &t->x0, nseg, &t->h, nseg, &t->invh, nseg, &t->n, nseg + 1, &t->off));
  PetscCall(PetscMalloc3(nseg, &dirty, nseg, &err, nseg + 1, &oldoff));
  PetscCall(PetscMalloc5(RT_CHUNK, &xs, 3 * K, &prev, RT_CHUNK * K, &zex, RT_CHUNK * K, &ztab, 6 * RT_CHUNK * mlp->maxw, &work));
  for (PetscInt s = 0; s < nseg; s++) {
    t->x0[s]  = rmin + (double)s * seglen;
    t->n[s]   = RT_NINIT;
    dirty[s]  = PETSC_TRUE;
    err[s]    = 0.0;
    oldoff[s] = 0;
  }
  for (;;) {
    PetscBool again = PETSC_FALSE;

    t->off[0] = 0;
    for (PetscInt s = 0; s < nseg; s++) t->off[s + 1] = t->off[s] + t->n[s];
    t->nint = t->off[nseg];
    PetscCheck(t->nint <= RT_MAXINT, PETSC_COMM_SELF, PETSC_ERR_NOT_CONVERGED, "radial table: tolerance %g needs more than %d intervals on [%g, %g]", tol, RT_MAXINT, rmin, rb->rc);
    /* segments that passed keep their coefficients; the others are rebuilt at their new spacing */
    PetscCall(PetscMalloc1(t->nint * RT_NCOEF * K, &t->coef));
    for (PetscInt s = 0; s < nseg; s++) {
      t->h[s]    = seglen / (double)t->n[s];
      t->invh[s] = (double)t->n[s] / seglen;
      if (dirty[s]) FillSegment(t, rb, mlp, s, xs, prev, work);
      else PetscCall(PetscArraycpy(t->coef + t->off[s] * RT_NCOEF * K, oldcoef + oldoff[s] * RT_NCOEF * K, t->n[s] * RT_NCOEF * K));
    }
    PetscCall(PetscFree(oldcoef));
    for (PetscInt s = 0; s < nseg; s++) {
      double grow;
      if (!dirty[s]) continue;
      err[s] = CheckSegment(t, rb, mlp, s, xs, zex, ztab, work);
      if (err[s] <= target) {
        dirty[s] = PETSC_FALSE;
        continue;
      }
      /* the error scales as h^6 once resolved: 10% more intervals than that estimate (error ~0.6 of
         the target), at least 25% more (the estimate is optimistic while the spacing is coarse) and at
         most 8x per pass */
      grow    = PetscMin(8.0, PetscMax(1.25, 1.1 * PetscPowReal(err[s] / target, 1.0 / 6.0)));
      t->n[s] = (PetscInt)PetscCeilReal(grow * (double)t->n[s]);
      again   = PETSC_TRUE;
    }
    if (!again) break;
    oldcoef = t->coef;
    t->coef = NULL;
    for (PetscInt s = 0; s <= nseg; s++) oldoff[s] = t->off[s];
  }
  t->maxerr = 0.0;
  for (PetscInt s = 0; s < nseg; s++) t->maxerr = PetscMax(t->maxerr, err[s]);
  t->bytes = sizeof(*t) + (size_t)nseg * (3 * sizeof(double) + sizeof(PetscInt)) + (size_t)(nseg + 1) * sizeof(PetscInt) + (size_t)t->nint * RT_NCOEF * (size_t)K * sizeof(double);
  PetscCall(PetscFree3(dirty, err, oldoff));
  PetscCall(PetscFree5(xs, prev, zex, ztab, work));
  *out = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRadialTableDestroy(HMRadialTable *t)
{
  PetscFunctionBegin;
  if (!*t) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree5((*t)->x0, (*t)->h, (*t)->invh, (*t)->n, (*t)->off));
  PetscCall(PetscFree((*t)->coef));
  PetscCall(PetscFree(*t));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRadialTableGetInfo(HMRadialTable t, HMRadialTableInfo *info)
{
  PetscFunctionBegin;
  *info = (HMRadialTableInfo){.K = t->K, .nknots = t->nint + 1, .bytes = t->bytes, .tol = t->tol, .maxerr = t->maxerr, .rmin = t->rmin, .rc = t->rc};
  PetscFunctionReturn(PETSC_SUCCESS);
}

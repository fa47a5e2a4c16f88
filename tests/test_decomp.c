/* HMDecompSumExact on one rank: correctly rounded sums where naive summation fails, against independent
   references (integer sums, a two-sum expansion), and bitwise the same for every order of the values.
   HMDecompPartition: the selection-based RCB gives exactly the partition of a full sort at every level.
   Halo reversal (HMDecompEdgeReverse, HMDecompHaloAccumulate) on every rank count from 1 to the size of
   the run (sub-communicators), with per-atom edge sums bitwise the same on all of them. */
#include "hmtest.h"
#include <float.h>
#include <hipmace/builder.h>
#include <hipmace/decomp.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t urand64(void)
{
  return hm_rand64(&rng);
}

/* A decomposition of n atoms on a 3 A grid with 1 A cutoffs (no edges: only the ownership matters). */
static HMDecomp make_decomp(MPI_Comm comm, PetscInt n)
{
  HMSystem sys;
  HMDecomp dd;
  int     *Z   = malloc(sizeof(int) * (size_t)(n + 1));
  double  *pos = malloc(sizeof(double) * (size_t)(3 * n + 1));
  hm_grid_atoms(n, 16, Z, pos);
  HM_T(HMSystemCreate(comm, n, Z, pos, NULL, NULL, &sys));
  HM_T(HMDecompCreate(comm, sys, HM_PARTITION_RCB, 1.0, 1.0, &dd));
  HM_T(HMSystemDestroy(&sys));
  free(Z);
  free(pos);
  return dd;
}

/* vals[n][nv] by input index; each owned atom contributes its row */
static void sum_exact(HMDecomp dd, PetscInt nv, const double *vals, double *sums)
{
  PetscInt        no;
  const PetscInt *gid;
  double         *owned;
  HM_T(HMDecompGetSizes(dd, NULL, &no, NULL, NULL));
  HM_T(HMDecompGetLocalAtoms(dd, &gid, NULL, NULL, NULL, NULL));
  owned = malloc(sizeof(double) * (size_t)(no * nv + 1));
  for (PetscInt i = 0; i < no; i++)
    for (PetscInt c = 0; c < nv; c++) owned[i * nv + c] = vals[gid[i] * nv + c];
  HM_T(HMDecompSumExact(dd, nv, owned, sums));
  free(owned);
}

static double sum_exact1(PetscInt n, const double *v)
{
  HMDecomp dd = make_decomp(PETSC_COMM_SELF, n);
  double   s;
  sum_exact(dd, 1, v, &s);
  HM_T(HMDecompDestroy(&dd));
  return s;
}

static uint64_t bits_of(double x)
{
  uint64_t b;
  memcpy(&b, &x, sizeof(b));
  return b;
}

#define assert_same(a, b)                                                                                                                                                         \
  do {                                                                                                                                                                            \
    const double a_ = (a), b_ = (b);                                                                                                                                              \
    if (bits_of(a_) != bits_of(b_)) fail_msg("%s = %.17g (0x%016llx), expected %.17g (0x%016llx)", #a, a_, (unsigned long long)bits_of(a_), b_, (unsigned long long)bits_of(b_)); \
  } while (0)

/* Shewchuk's exact expansion with a correctly rounded result (Python's math.fsum): an independent
   reference built from two-sums, valid while no partial overflows. */
static double fsum(PetscInt n, const double *x, PetscInt stride)
{
  double  *p = malloc(sizeof(double) * 2200), hi = 0, lo = 0;
  PetscInt np = 0, k;
  for (PetscInt i = 0; i < n; i++) {
    double   v = x[i * stride];
    PetscInt m = 0;
    for (PetscInt j = 0; j < np; j++) {
      double y = p[j], h, l;
      if (fabs(v) < fabs(y)) {
        const double t = v;
        v              = y;
        y              = t;
      }
      h = v + y;
      l = y - (h - v);
      if (l != 0) p[m++] = l;
      v = h;
    }
    p[m] = v;
    np   = m + 1;
    assert_true(np < 2200);
  }
  k = np;
  if (k > 0) {
    hi = p[--k];
    while (k > 0) {
      const double xx = hi, y = p[--k];
      double       yr;
      hi = xx + y;
      yr = hi - xx;
      lo = y - yr;
      if (lo != 0) break;
    }
    /* half-way case: the remaining partials decide the direction */
    if (k > 0 && ((lo < 0 && p[k - 1] < 0) || (lo > 0 && p[k - 1] > 0))) {
      const double y = lo * 2, xx = hi + y, yr = xx - hi;
      if (y == yr) hi = xx;
    }
  }
  free(p);
  return hi;
}

static double naive(PetscInt n, const double *x, PetscInt stride)
{
  double s = 0;
  for (PetscInt i = 0; i < n; i++) s += x[i * stride];
  return s;
}

/* Small sets where the order of a naive sum decides the answer, and the edges of rounding. */
static void test_adversarial(void **state)
{
  const double u = ldexp(1, -1074); /* smallest subnormal */
  (void)state;
  {
    /* {1e16, 1, -1e16, 1} in all 24 orders: exactly 2 (naive gives 0, 1 or 2 depending on the order) */
    const double base[4]    = {1e16, 1, -1e16, 1};
    int          seen_wrong = 0;
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++)
        for (int c = 0; c < 4; c++)
          for (int d = 0; d < 4; d++) {
            const double v[4] = {base[a], base[b], base[c], base[d]};
            if (a == b || a == c || a == d || b == c || b == d || c == d) continue;
            seen_wrong += naive(4, v, 1) != 2.0;
            assert_same(sum_exact1(4, v), 2.0);
          }
    assert_true(seen_wrong > 0); /* the example is one where order matters */
  }
  {
    /* intermediate overflow of a naive sum: exactly 1 */
    const double v[5] = {1e308, 1e308, -1e308, -1e308, 1};
    assert_true(isinf(naive(5, v, 1)));
    assert_same(sum_exact1(5, v), 1.0);
  }
  {
    /* cancellation across 2000 binades: 2^-1000 survives */
    const double v[3] = {ldexp(1, 1000), ldexp(1, -1000), -ldexp(1, 1000)};
    assert_same(naive(3, v, 1), 0.0);
    assert_same(sum_exact1(3, v), ldexp(1, -1000));
  }
  {
    /* round to nearest, ties to even; a sticky bit far below breaks the tie */
    const double t1[2] = {1, ldexp(1, -53)}, t2[2] = {1 + ldexp(1, -52), ldexp(1, -53)}, t3[3] = {1, ldexp(1, -53), u}, t4[3] = {-1, -ldexp(1, -53), -u};
    const double t5[3] = {1, ldexp(1, -53), -u};
    assert_same(sum_exact1(2, t1), 1.0);
    assert_same(sum_exact1(2, t2), 1 + ldexp(1, -51));
    assert_same(naive(3, t3, 1), 1.0);
    assert_same(sum_exact1(3, t3), 1 + ldexp(1, -52));
    assert_same(sum_exact1(3, t4), -(1 + ldexp(1, -52)));
    assert_same(sum_exact1(3, t5), 1.0); /* just below the tie: down */
  }
  {
    /* subnormals: 1000 smallest ones, and the largest subnormal from DBL_MIN - u; sums across the
       subnormal/normal boundary */
    double v[1000];
    for (int k = 0; k < 1000; k++) v[k] = u;
    assert_same(sum_exact1(1000, v), 1000 * u);
    v[0] = DBL_MIN;
    v[1] = -u;
    assert_same(sum_exact1(2, v), DBL_MIN - u);
    v[0] = DBL_MIN - u;
    v[1] = u;
    v[2] = u;
    assert_same(sum_exact1(3, v), DBL_MIN + u);
    v[0] = -u;
    assert_same(sum_exact1(1, v), -u);
  }
  {
    /* the top of the range: overflow only when the exact sum rounds beyond DBL_MAX (IEEE: from
       DBL_MAX + half an ulp, 2^970, on) */
    double v[3] = {DBL_MAX, ldexp(1, 969), 0};
    assert_same(sum_exact1(2, v), DBL_MAX);
    v[1] = ldexp(1, 970);
    assert_same(sum_exact1(2, v), (double)INFINITY);
    v[1] = DBL_MAX;
    v[2] = -DBL_MAX;
    assert_same(sum_exact1(3, v), DBL_MAX);
    v[0] = v[1] = v[2] = -DBL_MAX;
    assert_same(sum_exact1(3, v), -(double)INFINITY);
  }
  {
    /* zeros: an exact zero is +0 whatever the signs (empty ranks: tests/test_mpi.c) */
    const double z[3] = {-0.0, -0.0, -0.0}, c[4] = {0.1, -0.3, 0.2, 0.0};
    double       d[2] = {0.1, -0.1};
    assert_same(sum_exact1(3, z), 0.0);
    assert_same(sum_exact1(2, d), 0.0);
    /* the doubles nearest 0.1, -0.3 and 0.2 add up to 2^-55 exactly */
    assert_same(sum_exact1(4, c), ldexp(1, -55));
    assert_same(sum_exact1(4, c), fsum(4, c, 1));
    d[0] = -7.5;
    assert_same(sum_exact1(1, d), -7.5);
  }
  {
    /* non-finite inputs: NaN, or +Inf with -Inf, give NaN; one kind of infinity gives it */
    double v[3] = {1, NAN, 2};
    assert_true(isnan(sum_exact1(3, v)));
    v[1] = INFINITY;
    assert_same(sum_exact1(3, v), (double)INFINITY);
    v[0] = -INFINITY;
    assert_true(isnan(sum_exact1(3, v)));
    v[1] = -1e300;
    assert_same(sum_exact1(3, v), -(double)INFINITY);
  }
}

/* Random sets, several columns at once, against references computed another way. */
static void test_random(void **state)
{
  const PetscInt n = 3000, nv = 5;
  double        *v    = malloc(sizeof(double) * (size_t)(n * nv)), s[5];
  PetscInt64     isum = 0, ksum = 0;
  HMDecomp       dd     = make_decomp(PETSC_COMM_SELF, n);
  int            differ = 0;
  (void)state;
  for (PetscInt i = 0; i < n; i++) {
    const uint64_t r0 = urand64(), r1 = urand64(), r2 = urand64(), r3 = urand64();
    /* 0: random sign, 53-bit mantissa and exponent in [-1000, 1000] */
    v[i * nv] = ldexp((double)((r0 >> 11) | 1), (int)(r1 % 2001) - 1000 - 53) * ((r1 >> 40) & 1 ? -1 : 1);
    /* 1: x in the first half, -(x + k 2^-19) in the second, x up to 2^34: the sum (~0.1) is 11 digits below
       the terms, and 14 below the running sum of a naive loop */
    if (i < n / 2) v[i * nv + 1] = ldexp((double)(r2 >> 11), -19);
    else v[i * nv + 1] = -v[(i - n / 2) * nv + 1] - ldexp((double)(r3 % 2001) - 1000.0, -19);
    /* 2: integers below 2^50 in size: the exact sum is an int64 */
    {
      const PetscInt64 k = (PetscInt64)(r2 >> 14) - ((PetscInt64)1 << 49);
      v[i * nv + 2]      = (double)k;
      isum += k;
    }
    /* 3: subnormal multiples of 2^-1074 (the sum leaves the subnormal range) */
    {
      const PetscInt64 k = (PetscInt64)(r3 >> 12) - ((PetscInt64)1 << 51);
      v[i * nv + 3]      = ldexp((double)k, -1074);
      ksum += k;
    }
    /* 4: positive values from 2^-1074 to 2^993 (below 2^1005 in sum: no partial of the reference overflows) */
    v[i * nv + 4] = ldexp((double)(r0 >> 11), (int)(r3 % 2015) - 1074);
  }
  sum_exact(dd, nv, v, s);
  for (PetscInt c = 0; c < nv; c++) {
    const double ref = fsum(n, v + c, nv), nv_ = naive(n, v + c, nv);
    print_message("column %d: exact %.17g, two-sum reference %.17g, naive %.17g\n", (int)c, s[c], ref, nv_);
    assert_same(s[c], ref);
    differ += nv_ != s[c];
  }
  assert_same(s[2], (double)isum);               /* int64 -> double rounds to nearest */
  assert_same(s[3], ldexp((double)ksum, -1074)); /* the same, scaled exactly */
  assert_true(differ >= 3);                      /* naive summation is off on these sets */
  HM_T(HMDecompDestroy(&dd));
  free(v);
}

/* The same values on other atoms, in other orders: the same bits. */
static void test_permutation(void **state)
{
  const PetscInt n = 2000, nv = 3;
  double        *v = malloc(sizeof(double) * (size_t)(n * nv)), *w = malloc(sizeof(double) * (size_t)(n * nv)), s0[3], s1[3];
  PetscInt      *perm          = malloc(sizeof(PetscInt) * (size_t)n);
  HMDecomp       dd            = make_decomp(PETSC_COMM_SELF, n);
  int            naive_differs = 0;
  (void)state;
  for (PetscInt i = 0; i < n; i++) {
    const uint64_t r = urand64(), q = urand64();
    v[i * nv]     = ldexp((double)(r >> 11), (int)(q % 200) - 100) * (q >> 63 ? -1 : 1);
    v[i * nv + 1] = (i % 3 ? 1e-3 : 1e13) * (double)(r >> 40) * (q & 1 ? -1 : 1);
    v[i * nv + 2] = ldexp((double)(q >> 11), -1074 + (int)(r % 60));
    perm[i]       = i;
  }
  sum_exact(dd, nv, v, s0);
  for (int trial = 0; trial < 20; trial++) {
    for (PetscInt i = n - 1; i > 0; i--) { /* Fisher-Yates */
      const PetscInt j = (PetscInt)(urand64() % (uint64_t)(i + 1)), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    if (trial == 0)
      for (PetscInt i = 0; i < n; i++) perm[i] = n - 1 - i; /* reversed */
    for (PetscInt i = 0; i < n; i++)
      for (PetscInt c = 0; c < nv; c++) w[i * nv + c] = v[perm[i] * nv + c];
    sum_exact(dd, nv, w, s1);
    for (PetscInt c = 0; c < nv; c++) {
      assert_same(s1[c], s0[c]);
      naive_differs += naive(n, w + c, nv) != naive(n, v + c, nv);
    }
  }
  /* a column on its own gives the same as beside others */
  {
    double *col = malloc(sizeof(double) * (size_t)n);
    for (PetscInt i = 0; i < n; i++) col[i] = v[i * nv + 1];
    sum_exact(dd, 1, col, s1);
    assert_same(s1[0], s0[1]);
    free(col);
  }
  assert_true(naive_differs > 0); /* the orders tried do change a naive sum */
  HM_T(HMDecompDestroy(&dd));
  free(perm);
  free(w);
  free(v);
}

/* ---------------------------------------------------------------- RCB partition */
/* The RCB that sorted all atoms of a box at every level (qsort, comparator through globals), kept as the
   reference: the selection must put every atom on the same side of every cut. */
static const double *ref_pos;
static int           ref_axis;
static int           ref_cmp(const void *a, const void *b)
{
  const PetscInt i = *(const PetscInt *)a, j = *(const PetscInt *)b;
  const double   x = ref_pos[3 * i + ref_axis], y = ref_pos[3 * j + ref_axis];
  if (x < y) return -1;
  if (x > y) return 1;
  return (i > j) - (i < j);
}

static void ref_rcb(const double *pos, PetscInt *idx, PetscInt n, int p0, int np, int *part)
{
  double lo[3] = {DBL_MAX, DBL_MAX, DBL_MAX}, hi[3] = {-DBL_MAX, -DBL_MAX, -DBL_MAX};
  int    axis = 0;
  if (np == 1 || n == 0) {
    for (PetscInt k = 0; k < n; k++) part[idx[k]] = p0;
    return;
  }
  for (PetscInt k = 0; k < n; k++)
    for (int a = 0; a < 3; a++) {
      lo[a] = PetscMin(lo[a], pos[3 * idx[k] + a]);
      hi[a] = PetscMax(hi[a], pos[3 * idx[k] + a]);
    }
  for (int a = 1; a < 3; a++)
    if (hi[a] - lo[a] > hi[axis] - lo[axis]) axis = a;
  ref_pos  = pos;
  ref_axis = axis;
  qsort(idx, (size_t)n, sizeof(PetscInt), ref_cmp);
  {
    const int      nl  = np / 2;
    const PetscInt cut = (PetscInt)(((PetscInt64)n * nl) / np);
    ref_rcb(pos, idx, cut, p0, nl, part);
    ref_rcb(pos, idx + cut, n - cut, p0 + nl, np - nl, part);
  }
}

/* part arrays of HMDecompPartition and the reference, equal for each part count (more parts than atoms too) */
static void check_partition(const char *what, PetscInt n, const double *pos)
{
  static const int nps[] = {1, 2, 3, 5, 7, 8, 13, 64, 100, 1024, 5000};
  int             *part = malloc(sizeof(int) * (size_t)(n + 1)), *ref = malloc(sizeof(int) * (size_t)(n + 1));
  PetscInt        *idx = malloc(sizeof(PetscInt) * (size_t)(n + 1));
  for (size_t t = 0; t < sizeof(nps) / sizeof(nps[0]); t++) {
    PetscInt diff = 0;
    for (PetscInt i = 0; i < n; i++) {
      idx[i]  = i;
      part[i] = -1;
    }
    ref_rcb(pos, idx, n, 0, nps[t], ref);
    HM_T(HMDecompPartition(n, pos, HM_PARTITION_RCB, nps[t], part));
    for (PetscInt i = 0; i < n; i++) diff += part[i] != ref[i];
    if (diff) print_message("%s, %" PetscInt_FMT " atoms, %d parts: %" PetscInt_FMT " atoms in another part than the sort puts them\n", what, n, nps[t], diff);
    assert_int_equal(diff, 0);
  }
  free(idx);
  free(ref);
  free(part);
}

static void check_system(const char *what, HMSystem sys)
{
  PetscInt      n;
  const double *pos;
  HM_T(HMSystemGetSize(sys, &n));
  HM_T(HMSystemGetPositions(sys, &pos));
  check_partition(what, n, pos);
}

static void test_partition(void **state)
{
  const PetscInt n   = 6000;
  double        *pos = malloc(sizeof(double) * (size_t)(3 * n));
  HMSystem       sys;
  (void)state;
  /* random cloud in an elongated box */
  for (PetscInt i = 0; i < 3 * n; i++) pos[i] = (double)(urand64() >> 11) * 0x1p-53 * (i % 3 ? 10.0 : 30.0);
  check_partition("random cloud", n, pos);
  /* random cloud of few distinct values: ties decided by the input index */
  for (PetscInt i = 0; i < 3 * n; i++) pos[i] = (double)(urand64() % 7);
  check_partition("7 values per axis", n, pos);
  /* flat slab (z = 0) on a square grid, in input order, reversed and shuffled */
  for (PetscInt i = 0; i < n; i++) {
    pos[3 * i]     = 1.5 * (double)(i % 80);
    pos[3 * i + 1] = 1.5 * (double)(i / 80);
    pos[3 * i + 2] = 0.0;
  }
  check_partition("slab", n, pos);
  for (PetscInt i = 0; i < n; i++) {
    pos[3 * i]     = 1.5 * (double)((n - 1 - i) % 80);
    pos[3 * i + 1] = 1.5 * (double)((n - 1 - i) / 80);
  }
  check_partition("slab, reversed", n, pos);
  /* all atoms at the same x (longest axis y or z), and all at one point */
  for (PetscInt i = 0; i < n; i++) {
    pos[3 * i]     = 2.0;
    pos[3 * i + 1] = (double)(urand64() >> 11) * 0x1p-53 * 20.0;
    pos[3 * i + 2] = (double)(urand64() >> 11) * 0x1p-53 * 20.0;
  }
  check_partition("same x", n, pos);
  for (PetscInt i = 0; i < 3 * n; i++) pos[i] = -1.25;
  check_partition("one point", n, pos);
  /* organ pipe along x: a classic bad case for median-of-3 pivots */
  for (PetscInt i = 0; i < n; i++) {
    pos[3 * i]     = (double)(i < n / 2 ? i : n - 1 - i);
    pos[3 * i + 1] = 0.01 * (double)(i % 3);
    pos[3 * i + 2] = 0.0;
  }
  check_partition("organ pipe", n, pos);
  free(pos);
  /* lattices with massive coordinate ties: an ideal diamond crystal, and liquid water */
  HM_T(HMBuildDiamond(PETSC_COMM_SELF, 6, 7, 12, 0.0, 1, &sys));
  check_system("ideal diamond", sys);
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMBuildWaterBox(PETSC_COMM_SELF, 2000, 1, &sys));
  check_system("water", sys);
  HM_T(HMSystemDestroy(&sys));
}

/* ---------------------------------------------------------------- reverse halo */
/* a partition-independent value of an edge (sender, receiver input index, its vec) */
static void edge_value(PetscInt gs, PetscInt gr, const double v[3], double out[2])
{
  out[0] = v[0] * (1.0 + 1e-3 * (double)gs) + v[2] / (3.0 + (double)gr);
  out[1] = v[1] * v[1] - 0.1 * v[2] * (double)(gs % 7);
}

/* On a decomposition over comm: checks HMDecompEdgeReverse edge by edge and HMDecompHaloAccumulate
   against copy counts, and returns on rank 0 of comm the per-atom sums F[N][2] of (rev - edge) over
   each atom's row, in input order. */
static void reverse_on(MPI_Comm comm, HMSystem sys0, HMHaloType t, double *F)
{
  HMDecomp        dd;
  const HMGraph  *g[2], *G;
  const PetscInt *gid;
  PetscInt        N, no, nl;
  double         *a, *r, *own, *row, *all = NULL;
  int            *cnt, *cntsum;
  PetscMPIInt     rank, size;

  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  HM_T(HMDecompCreate(comm, rank ? NULL : sys0, HM_PARTITION_RCB, 3.0, 5.0, &dd));
  HM_T(HMDecompGetSizes(dd, &N, &no, &nl, NULL));
  HM_T(HMDecompGetLocalAtoms(dd, &gid, NULL, NULL, NULL, NULL));
  HM_T(HMDecompGetGraphs(dd, &g[0], &g[1]));
  G = g[t];
  a = malloc(sizeof(double) * (size_t)(2 * G->nedges + 2));
  r = malloc(sizeof(double) * (size_t)(2 * G->nedges + 2));
  for (PetscInt e = 0; e < G->nedges; e++) edge_value(gid[G->sender[e]], gid[G->receiver[e]], G->vec + 3 * e, a + 2 * e);
  HM_T(HMDecompEdgeReverse(dd, t, 2, a, r));
  HM_T(HMDecompEdgeReverse(dd, t, 2, a, r)); /* set up once, used twice */
  for (PetscInt e = 0; e < G->nedges; e++) {
    const double mv[3] = {-G->vec[3 * e], -G->vec[3 * e + 1], -G->vec[3 * e + 2]};
    double       want[2];
    edge_value(gid[G->receiver[e]], gid[G->sender[e]], mv, want);
    /* equal as numbers: a zero component of vec is +0 both ways, its negation -0 */
    assert_true(want[0] == r[2 * e] && want[1] == r[2 * e + 1]);
  }
  /* per owned atom, in row order; gathered to rank 0 in input order */
  own = calloc((size_t)(3 * no + 3), sizeof(double));
  for (PetscInt i = 0; i < no; i++) {
    own[3 * i] = (double)gid[i];
    for (PetscInt e = G->offset[i]; e < G->offset[i + 1]; e++)
      for (int c = 0; c < 2; c++) own[3 * i + 1 + c] += r[2 * e + c] - a[2 * e + c];
  }
  {
    int n3 = (int)(3 * no), *rc = malloc(sizeof(int) * (size_t)size), *rd = malloc(sizeof(int) * (size_t)(size + 1));
    (void)MPI_Gather(&n3, 1, MPI_INT, rc, 1, MPI_INT, 0, comm);
    if (!rank) {
      rd[0] = 0;
      for (int q = 0; q < size; q++) rd[q + 1] = rd[q] + rc[q];
      all = malloc(sizeof(double) * (size_t)(3 * N + 1));
    }
    (void)MPI_Gatherv(own, n3, MPI_DOUBLE, all, rc, rd, MPI_DOUBLE, 0, comm);
    if (!rank)
      for (PetscInt k = 0; k < N; k++)
        for (int c = 0; c < 2; c++) F[2 * (PetscInt)all[3 * k] + c] = all[3 * k + 1 + c];
    free(rc);
    free(rd);
    free(all);
  }
  /* accumulate: ghost rows 1 and owned rows 0 count the copies in the halo (ghosts some edge reads) */
  row    = malloc(sizeof(double) * (size_t)(2 * nl + 2));
  cnt    = calloc((size_t)N + 1, sizeof(int));
  cntsum = calloc((size_t)N + 1, sizeof(int));
  for (PetscInt j = 0; j < nl; j++) row[2 * j] = row[2 * j + 1] = j < no ? 0.0 : 1.0;
  for (PetscInt e = 0; e < G->nedges; e++) {
    const PetscInt j = G->receiver[e];
    if (j >= no && row[2 * j + 1] == 1.0) {
      cnt[gid[j]]++;
      row[2 * j + 1] = 2.0; /* counted */
    }
  }
  for (PetscInt j = no; j < nl; j++) row[2 * j] = row[2 * j + 1] = 1.0;
  (void)MPI_Allreduce(cnt, cntsum, (int)N, MPI_INT, MPI_SUM, comm);
  HM_T(HMDecompHaloAccumulate(dd, t, 2, row));
  for (PetscInt i = 0; i < no; i++) assert_true(row[2 * i] == (double)cntsum[gid[i]] && row[2 * i + 1] == (double)cntsum[gid[i]]);
  for (PetscInt j = no; j < nl; j++) assert_true(row[2 * j] == 1.0 && row[2 * j + 1] == 1.0);
  free(row);
  free(cnt);
  free(cntsum);
  free(own);
  free(a);
  free(r);
  HM_T(HMDecompDestroy(&dd));
}

/* Every rank count k = 1 .. size on the first k ranks: the same per-atom sums to the bit. */
static void check_reverse(const char *what, HMSystem sys0, PetscInt N)
{
  PetscMPIInt size, rank;
  double     *ref = calloc((size_t)(4 * N), sizeof(double)), *got = calloc((size_t)(2 * N), sizeof(double));

  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  for (PetscMPIInt k = 1; k <= size; k++)
    for (int t = 0; t < 2; t++) {
      MPI_Comm sub;
      (void)MPI_Comm_split(PETSC_COMM_WORLD, rank < k ? 0 : MPI_UNDEFINED, rank, &sub);
      if (sub != MPI_COMM_NULL) {
        reverse_on(sub, sys0, (HMHaloType)t, k == 1 ? ref + 2 * N * t : got);
        if (k > 1 && !rank && memcmp(ref + 2 * N * t, got, sizeof(double) * (size_t)(2 * N))) fail_msg("%s: halo %d per-atom edge sums on %d ranks differ from 1 rank", what, t, (int)k);
        (void)MPI_Comm_free(&sub);
      }
    }
  free(ref);
  free(got);
}

/* atoms of the system on rank 0 of the world, on every rank */
static PetscInt system_size(HMSystem sys)
{
  PetscInt n = 0;
  if (sys) HM_T(HMSystemGetSize(sys, &n));
  (void)MPI_Bcast(&n, 1, MPIU_INT, 0, PETSC_COMM_WORLD);
  return n;
}

static void test_reverse(void **state)
{
  HMSystem    sys = NULL;
  PetscInt    N;
  PetscMPIInt rank;
  (void)state;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  /* liquid water (periodic) and a diamond cell thinner than twice the cutoff (atoms meet their own images) */
  if (!rank) HM_T(HMBuildWaterBox(PETSC_COMM_SELF, 120, 3, &sys));
  N = system_size(sys);
  check_reverse("water", sys, N);
  if (!rank) HM_T(HMSystemDestroy(&sys));
  if (!rank) HM_T(HMBuildDiamond(PETSC_COMM_SELF, 1, 1, 2, 0.05, 5, &sys));
  N = system_size(sys);
  check_reverse("thin diamond", sys, N);
  if (!rank) HM_T(HMSystemDestroy(&sys));
}

HM_TEST_MAIN_OF(test_adversarial, test_random, test_permutation, test_partition, test_reverse)

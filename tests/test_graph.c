/* Neighbour lists: HMGraphBuild against brute-force enumeration and the reference fixtures' graphs. */
#include "hmtest.h"

#include <string.h>

#include <hipmace/graph.h>
#include <hipmace/io.h>

/* xorshift64*: deterministic, platform-independent test geometry */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static double urand(void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

typedef struct {
  PetscInt64 n, cap;
  PetscInt  *s, *r;
  int       *sh;
  double    *vec, *len;
} EdgeList;

static void edges_push(EdgeList *E, PetscInt s, PetscInt r, const int sh[3], const double v[3], double len)
{
  if (E->n == E->cap) {
    E->cap = E->cap ? 2 * E->cap : 1024;
    E->s   = realloc(E->s, (size_t)E->cap * sizeof(PetscInt));
    E->r   = realloc(E->r, (size_t)E->cap * sizeof(PetscInt));
    E->sh  = realloc(E->sh, (size_t)E->cap * 3 * sizeof(int));
    E->vec = realloc(E->vec, (size_t)E->cap * 3 * sizeof(double));
    E->len = realloc(E->len, (size_t)E->cap * sizeof(double));
    assert_non_null(E->s && E->r && E->sh && E->vec && E->len);
  }
  E->s[E->n] = s;
  E->r[E->n] = r;
  for (int d = 0; d < 3; d++) {
    E->sh[3 * E->n + d]  = sh[d];
    E->vec[3 * E->n + d] = v[d];
  }
  E->len[E->n] = len;
  E->n++;
}

static void edges_free(EdgeList *E)
{
  free(E->s);
  free(E->r);
  free(E->sh);
  free(E->vec);
  free(E->len);
  memset(E, 0, sizeof(*E));
}

/* O(N^2 K^3) enumeration with the arithmetic documented in graph.h; loops in (s, r, shift)
   lexicographic order, so the list comes out in the canonical order. */
static void brute_force(PetscInt n, const double *pos, const double *cell, const PetscBool *pbc, double rc, int K, EdgeList *E)
{
  int kr[3];

  for (int d = 0; d < 3; d++) kr[d] = (pbc && pbc[d]) ? K : 0;
  for (PetscInt s = 0; s < n; s++)
    for (PetscInt r = 0; r < n; r++)
      for (int a = -kr[0]; a <= kr[0]; a++)
        for (int b = -kr[1]; b <= kr[1]; b++)
          for (int c = -kr[2]; c <= kr[2]; c++) {
            const int sh[3] = {a, b, c};
            double    v[3], d2;

            if (a || b || c) {
              for (int d = 0; d < 3; d++) v[d] = (pos[3 * r + d] + (a * cell[d] + b * cell[3 + d] + c * cell[6 + d])) - pos[3 * s + d];
            } else {
              if (r == s) continue;
              for (int d = 0; d < 3; d++) v[d] = pos[3 * r + d] - pos[3 * s + d];
            }
            d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
            if (d2 < rc * rc) edges_push(E, s, r, sh, v, sqrt(d2));
          }
}

/* CSR consistency and strict canonical order of a graph. */
static void check_structure(const HMGraph *g, PetscInt n)
{
  assert_int_equal(g->n, n);
  assert_int_equal(g->offset[0], 0);
  assert_int_equal(g->offset[n], g->nedges);
  for (PetscInt s = 0; s < n; s++) {
    assert_true(g->offset[s] <= g->offset[s + 1]);
    for (PetscInt e = g->offset[s]; e < g->offset[s + 1]; e++) {
      assert_int_equal(g->sender[e], s);
      if (e > g->offset[s]) {
        /* strictly increasing (receiver, shift): sorted and free of duplicates */
        const int *p = g->shift + 3 * (e - 1), *q = g->shift + 3 * e;
        int        cmp = g->receiver[e - 1] != g->receiver[e] ? (g->receiver[e - 1] < g->receiver[e] ? -1 : 1) : 0;

        for (int d = 0; d < 3 && !cmp; d++) cmp = p[d] != q[d] ? (p[d] < q[d] ? -1 : 1) : 0;
        assert_true(cmp < 0);
      }
    }
  }
}

/* Exact agreement: same edges in the same order, vec and len bit for bit (same formula). */
static void compare_exact(const HMGraph *g, const EdgeList *E)
{
  assert_int_equal(g->nedges, E->n);
  for (PetscInt64 e = 0; e < E->n; e++) {
    if (g->sender[e] != E->s[e] || g->receiver[e] != E->r[e] || memcmp(g->shift + 3 * e, E->sh + 3 * e, 3 * sizeof(int)))
      fail_msg("edge %lld: graph (%d->%d [%d %d %d]) but brute force (%d->%d [%d %d %d])", (long long)e, (int)g->sender[e], (int)g->receiver[e], g->shift[3 * e], g->shift[3 * e + 1], g->shift[3 * e + 2], (int)E->s[e], (int)E->r[e], E->sh[3 * e], E->sh[3 * e + 1], E->sh[3 * e + 2]);
    assert_memory_equal(g->vec + 3 * e, E->vec + 3 * e, 3 * sizeof(double));
    assert_memory_equal(g->len + e, E->len + e, sizeof(double));
  }
}

static void check_against_brute(PetscInt n, const double *pos, const double *cell, const PetscBool *pbc, double rc, int K)
{
  HMGraph  g;
  EdgeList E = {0};

  HM_T(HMGraphBuild(n, pos, cell, pbc, rc, &g));
  check_structure(&g, n);
  brute_force(n, pos, cell, pbc, rc, K, &E);
  compare_exact(&g, &E);
  HM_T(HMGraphDestroy(&g));
  edges_free(&E);
}

static void test_open_clusters(void **state)
{
  (void)state;
  for (int trial = 0; trial < 6; trial++) {
    const PetscInt n  = 40 + 60 * trial;
    const double   L  = 4.0 + 3.0 * trial;
    const double   rc = trial % 2 ? 5.0 : 3.2;
    double        *pos;

    assert_non_null(pos = malloc(3 * (size_t)n * sizeof(double)));
    for (PetscInt i = 0; i < 3 * n; i++) pos[i] = L * urand() - 0.5 * L;
    if (trial == 2)
      for (PetscInt i = 0; i < n; i++) pos[3 * i + 2] = 0.25; /* planar: zero extent along z */
    if (trial == 3) {
      /* coincident atoms (distance 0 is an edge) and pairs at exactly the cutoff (no edge) */
      pos[3] = pos[0], pos[4] = pos[1], pos[5] = pos[2];
      pos[6] = 0, pos[7] = 0, pos[8] = 0;
      pos[9] = rc, pos[10] = 0, pos[11] = 0;
    }
    check_against_brute(n, pos, NULL, NULL, rc, 0);
    free(pos);
  }
  {
    /* a cell with all pbc false is an open system too */
    const double    cell[9] = {3, 0, 0, 0, 3, 0, 0, 0, 3};
    const PetscBool pbc[3]  = {PETSC_FALSE, PETSC_FALSE, PETSC_FALSE};
    double          pos[3 * 30];

    for (int i = 0; i < 90; i++) pos[i] = 8 * urand();
    check_against_brute(30, pos, cell, pbc, 4.0, 0);
  }
  /* tiny systems */
  {
    const double pos[6] = {0, 0, 0, 1, 1, 1};
    HMGraph      g;

    check_against_brute(1, pos, NULL, NULL, 5.0, 0);
    check_against_brute(2, pos, NULL, NULL, 5.0, 0);
    check_against_brute(2, pos, NULL, NULL, 1.0, 0);
    HM_T(HMGraphBuild(0, NULL, NULL, NULL, 5.0, &g));
    assert_int_equal(g.nedges, 0);
    assert_int_equal(g.offset[0], 0);
    HM_T(HMGraphDestroy(&g));
  }
}

/* Atoms a kilometre apart must not make a 10^8^3 grid; only the close pair is connected. */
static void test_sparse(void **state)
{
  const double pos[] = {0, 0, 0, 1.0e7, 0, 0, 0, -1.0e7, 3.0e7, 1.0e7 + 1.2, 0.5, 0, -2.0e7, 1.0e7, -1.0e7};
  HMGraph      g;

  (void)state;
  HM_T(HMGraphBuild(5, pos, NULL, NULL, 5.0, &g));
  assert_int_equal(g.nedges, 2);
  assert_int_equal(g.sender[0], 1);
  assert_int_equal(g.receiver[0], 3);
  assert_int_equal(g.sender[1], 3);
  assert_int_equal(g.receiver[1], 1);
  HM_T(HMGraphDestroy(&g));
  check_against_brute(5, pos, NULL, NULL, 5.0, 0);
}

/* Random right-handed triclinic cell with edge lengths around L. */
static void random_cell(double L, double cell[9])
{
  double det;

  do {
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) cell[3 * i + j] = (i == j ? L : 0) + 0.35 * L * (2 * urand() - 1);
    det = cell[0] * (cell[4] * cell[8] - cell[5] * cell[7]) - cell[1] * (cell[3] * cell[8] - cell[5] * cell[6]) + cell[2] * (cell[3] * cell[7] - cell[4] * cell[6]);
  } while (det < 0.3 * L * L * L);
}

/* Smallest perpendicular thickness of a cell, for the brute-force image range. */
static double min_thickness(const double c[9])
{
  const double det = c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6]) + c[2] * (c[3] * c[7] - c[4] * c[6]);
  double       t   = PETSC_MAX_REAL;

  for (int d = 0; d < 3; d++) {
    const double *u = c + 3 * ((d + 1) % 3), *v = c + 3 * ((d + 2) % 3);
    const double  x[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};

    t = PetscMin(t, fabs(det) / sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]));
  }
  return t;
}

/* Fractional coordinates in [-0.3, 1.3): some atoms lie outside the cell on purpose. */
static void random_positions_in_cell(PetscInt n, const double cell[9], double *pos)
{
  for (PetscInt i = 0; i < n; i++) {
    const double f[3] = {1.6 * urand() - 0.3, 1.6 * urand() - 0.3, 1.6 * urand() - 0.3};

    for (int d = 0; d < 3; d++) pos[3 * i + d] = f[0] * cell[d] + f[1] * cell[3 + d] + f[2] * cell[6 + d];
  }
}

static void test_periodic(void **state)
{
  static const struct {
    PetscInt  n;
    double    L, rc;
    PetscBool pbc[3];
  } cases[] = {
      {60, 11.0, 4.5, {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}  }, /* thicker than 2 rc in most directions */
      {40, 6.0,  4.0, {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}  }, /* thinner than 2 rc */
      {7,  2.5,  5.0, {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}  }, /* thinner than rc: many images, own images */
      {1,  2.0,  4.5, {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}  }, /* one atom and its images only */
      {30, 5.0,  4.0, {PETSC_TRUE, PETSC_FALSE, PETSC_TRUE} }, /* mixed boundaries */
      {25, 3.0,  5.0, {PETSC_FALSE, PETSC_FALSE, PETSC_TRUE}}, /* wire along c, thin */
  };

  (void)state;
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    double cell[9], *pos;
    int    K;

    random_cell(cases[k].L, cell);
    assert_non_null(pos = malloc(3 * (size_t)cases[k].n * sizeof(double)));
    random_positions_in_cell(cases[k].n, cell, pos);
    /* images up to rc/thickness cells away, plus 2 for the positions spread outside the cell */
    K = (int)ceil(cases[k].rc / min_thickness(cell)) + 2;
    check_against_brute(cases[k].n, pos, cell, cases[k].pbc, cases[k].rc, K);
    {
      /* translating every atom by a lattice vector (100 cells along c) changes nothing but
         round-off in vec: shifts are relative to each atom's own input position */
      const int T[3] = {cases[k].pbc[0] ? 7 : 0, cases[k].pbc[1] ? -3 : 0, cases[k].pbc[2] ? 100 : 0};
      double   *moved;
      HMGraph   g1, g2;

      assert_non_null(moved = malloc(3 * (size_t)cases[k].n * sizeof(double)));
      for (PetscInt i = 0; i < cases[k].n; i++)
        for (int d = 0; d < 3; d++) moved[3 * i + d] = pos[3 * i + d] + T[0] * cell[d] + T[1] * cell[3 + d] + T[2] * cell[6 + d];
      HM_T(HMGraphBuild(cases[k].n, pos, cell, cases[k].pbc, cases[k].rc, &g1));
      HM_T(HMGraphBuild(cases[k].n, moved, cell, cases[k].pbc, cases[k].rc, &g2));
      assert_int_equal(g1.nedges, g2.nedges);
      assert_memory_equal(g1.sender, g2.sender, (size_t)g1.nedges * sizeof(PetscInt));
      assert_memory_equal(g1.receiver, g2.receiver, (size_t)g1.nedges * sizeof(PetscInt));
      assert_memory_equal(g1.shift, g2.shift, 3 * (size_t)g1.nedges * sizeof(int));
      /* |pos| grows to ~100 cells, so vec carries round-off of order 1e-13 */
      assert_true(hm_max_abs_diff(3 * g1.nedges, g1.vec, g2.vec) < 1e-10);
      HM_T(HMGraphDestroy(&g1));
      HM_T(HMGraphDestroy(&g2));
      free(moved);
    }
    free(pos);
  }
}

/* Simple cubic crystal, spacing 1.5 (exact in binary): every atom has exactly the 170 lattice
   vectors with 0 < |v|^2 <= 11 (in units of the spacing) inside cutoff 5. */
static void test_periodic_lattice(void **state)
{
  const int       m = 20;
  const PetscInt  n = m * m * m;
  const double    a = 1.5, cell[9] = {m * a, 0, 0, 0, m * a, 0, 0, 0, m * a};
  const PetscBool pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  double         *pos;
  HMGraph         g;

  (void)state;
  assert_non_null(pos = malloc(3 * (size_t)n * sizeof(double)));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < m; j++)
      for (int k = 0; k < m; k++) {
        double *x = pos + 3 * ((i * m + j) * m + k);

        x[0] = i * a, x[1] = j * a, x[2] = k * a;
      }
  HM_T(HMGraphBuild(n, pos, cell, pbc, 5.0, &g));
  check_structure(&g, n);
  assert_int_equal(g.nedges, 170 * n);
  for (PetscInt s = 0; s < n; s++) assert_int_equal(g.offset[s + 1] - g.offset[s], 170);
  for (PetscInt e = 0; e < g.nedges; e++) {
    const double *v = g.vec + 3 * e;

    assert_true(g.len[e] < 5.0);
    assert_true(fabs(v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - g.len[e] * g.len[e]) < 1e-12);
  }
  HM_T(HMGraphDestroy(&g));
  free(pos);
}

static void test_bad_input(void **state)
{
  const double    pos[6]  = {0, 0, 0, 1, 0, 0};
  const double    flat[9] = {3, 0, 0, 0, 3, 0, 6, 0, 0};
  const double    bad[6]  = {0, 0, 0, NAN, 0, 0};
  const PetscBool pbc[3]  = {PETSC_TRUE, PETSC_FALSE, PETSC_FALSE};
  const double    cuts[]  = {0.0, -1.0, NAN, INFINITY};
  HMGraph         g;

  (void)state;
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) assert_int_not_equal(HMGraphBuild(2, pos, NULL, NULL, cuts[k], &g), 0);
  assert_int_not_equal(HMGraphBuild(2, pos, NULL, pbc, 5.0, &g), 0); /* periodic without a cell */
  assert_int_not_equal(HMGraphBuild(2, pos, flat, pbc, 5.0, &g), 0); /* singular cell */
  assert_int_not_equal(HMGraphBuild(2, bad, NULL, NULL, 5.0, &g), 0);
  assert_int_not_equal(HMGraphBuild(-1, pos, NULL, NULL, 5.0, &g), 0);
  PetscPopErrorHandler();
  assert_null(g.sender); /* a failed build leaves an empty graph */
}

typedef struct {
  PetscInt64 s, r;
} Pair;

static int pair_cmp(const void *a, const void *b)
{
  const Pair *x = a, *y = b;

  if (x->s != y->s) return x->s < y->s ? -1 : 1;
  if (x->r != y->r) return x->r < y->r ? -1 : 1;
  return 0;
}

/* The reference graph (matscipy, open boundaries) has its own receiver order; compare as sets. */
static void compare_with_fixture_graph(HMSafetensors fx, const char *name, PetscInt n, const double *pos, double rc)
{
  const PetscInt64    shp[2] = {2, -1};
  const PetscInt64   *ei;
  const HMTensorInfo *info;
  PetscInt64          E;
  Pair               *ref;
  HMGraph             g;

  HM_T(HMSafetensorsGetI64(fx, name, 2, shp, &ei));
  HM_T(HMSafetensorsFind(fx, name, &info));
  E = info->shape[1];
  assert_non_null(ref = malloc((size_t)(E ? E : 1) * sizeof(Pair)));
  for (PetscInt64 e = 0; e < E; e++) {
    ref[e].s = ei[e];
    ref[e].r = ei[E + e];
  }
  qsort(ref, (size_t)E, sizeof(Pair), pair_cmp);
  HM_T(HMGraphBuild(n, pos, NULL, NULL, rc, &g));
  check_structure(&g, n);
  assert_int_equal(g.nedges, E);
  for (PetscInt64 e = 0; e < E; e++) {
    if (g.sender[e] != ref[e].s || g.receiver[e] != ref[e].r) fail_msg("%s (cutoff %g): edge %lld differs", name, rc, (long long)e);
    assert_true(g.shift[3 * e] == 0 && g.shift[3 * e + 1] == 0 && g.shift[3 * e + 2] == 0);
  }
  HM_T(HMGraphDestroy(&g));
  free(ref);
}

static void test_fixtures(void **state)
{
  static const char *const models[] = {"small", "default"};
  static const char *const mols[]   = {"mol08", "mol09", "mol11", "mol13", "mol21"};

  (void)state;
  for (int k = 0; k < 2; k++) {
    char          path[PETSC_MAX_PATH_LEN];
    HMSafetensors model;
    const double *rmax, *hrmax;
    double        rc, hrc;

    snprintf(path, sizeof(path), "%s/model_%s.safetensors", hm_golden_dir(), models[k]);
    HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &model));
    HM_T(HMSafetensorsGetF64(model, "r_max", 0, NULL, &rmax));
    HM_T(HMSafetensorsGetF64(model, "hessian_r_max", 0, NULL, &hrmax));
    rc  = *rmax;
    hrc = *hrmax;
    HM_T(HMSafetensorsClose(&model));
    assert_true(rc == 5.0);
    assert_true(hrc == (k == 0 ? 7.0 : 16.0));
    for (size_t j = 0; j < sizeof(mols) / sizeof(mols[0]); j++) {
      const PetscInt64    shp[2] = {-1, 3};
      HMSafetensors       fx;
      const double       *pos;
      const HMTensorInfo *info;

      snprintf(path, sizeof(path), "%s/fixture_%s_%s.safetensors", hm_golden_dir(), models[k], mols[j]);
      HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &fx));
      HM_T(HMSafetensorsGetF64(fx, "positions", 2, shp, &pos));
      HM_T(HMSafetensorsFind(fx, "positions", &info));
      compare_with_fixture_graph(fx, "edge_index", (PetscInt)info->shape[0], pos, rc);
      compare_with_fixture_graph(fx, "hessian_edge_index", (PetscInt)info->shape[0], pos, hrc);
      HM_T(HMSafetensorsClose(&fx));
    }
  }
}

HM_TEST_MAIN_OF(test_open_clusters, test_sparse, test_periodic, test_periodic_lattice, test_bad_input, test_fixtures)

/* Analytic forces and stress (HMEvalComputeForces): parity with the reference's autograd forces on every
   golden fixture and the protein model's fixtures, central finite differences of the energy (molecule,
   periodic cells thinner than 2 r_max), sum F = 0, rotation covariance, stress against finite strain.
   Under mpiexec -n k (k > 1) only the rank-count invariance case runs: forces and stress bitwise equal
   to the one-rank values. */
#include "hmtest.h"
#include <hipmace/eval.h>
#include <math.h>
#include <string.h>

static PetscMPIInt size_world = 1;

/* Energy, forces in input order [n][3] (caller frees) and stress of a structure on comm (sys on rank 0). */
static double *forces_of(MPI_Comm comm, HMModel m, HMSystem sys, PetscInt N, double *E, PetscBool *has, double stress[9], double *fmax)
{
  HMEval          ev;
  HMHessian       h;
  const double   *f;
  const PetscInt *gid;
  PetscInt        n;
  double         *loc = calloc((size_t)(3 * N + 1), sizeof(double)), *out = malloc(sizeof(double) * (size_t)(3 * N + 1));
  HM_T(hm_eval_create(m, sys, NULL, &ev, &h));
  HM_T(HMEvalComputeForces(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMEvalGetForces(ev, &f));
  HM_T(HMEvalGetStress(ev, has, stress));
  if (fmax) HM_T(HMEvalGetMaxForce(ev, fmax));
  HM_T(HMEvalGetSizes(ev, NULL, &n, NULL, NULL));
  HM_T(HMEvalGetLocalAtoms(ev, &gid, NULL));
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) loc[3 * gid[i] + a] = f[3 * i + a];
  /* every entry is non-zero on one rank only: the sum is exact */
  MPI_Allreduce(loc, out, (int)(3 * N), MPI_DOUBLE, MPI_SUM, comm);
  free(loc);
  HM_T(HMHessianDestroy(&h));
  HM_T(HMEvalDestroy(&ev));
  return out;
}

static double energy_of(HMModel m, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc)
{
  HMSystem sys;
  HMEval   ev;
  double   E;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  HM_T(HMEvalCreate(m, &ev));
  HM_T(HMEvalSetSystem(ev, sys));
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, &E, NULL));
  HM_T(HMEvalDestroy(&ev));
  HM_T(HMSystemDestroy(&sys));
  return E;
}

static double *forces_self(HMModel m, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc, double *E, PetscBool *has, double stress[9])
{
  HMSystem sys;
  double  *f;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  f = forces_of(PETSC_COMM_SELF, m, sys, n, E, has, stress, NULL);
  HM_T(HMSystemDestroy(&sys));
  return f;
}

/* ---- parity with the reference's autograd forces ---- */
static void check_fixture_forces(const char *model, const char *const *mols, size_t nmols)
{
  char    path[PETSC_MAX_PATH_LEN], name[64];
  HMModel m;
  snprintf(name, sizeof(name), "model_%s.safetensors", model);
  hm_golden_path(name, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  for (size_t k = 0; k < nmols; k++) {
    HMSafetensors       fx;
    HMSystem            sys;
    const HMTensorInfo *fi;
    PetscInt            n;
    double              E, stress[9], fmax, err, scale;
    PetscBool           has;
    hm_load_fixture(model, mols[k], &fx, &sys);
    HM_T(HMSystemGetSize(sys, &n));
    double *f = forces_of(PETSC_COMM_SELF, m, sys, n, &E, &has, stress, &fmax);
    HM_T(HMSafetensorsGetInfo(fx, "forces", HM_DTYPE_F64, &fi));
    assert_int_equal(fi->numel, 3 * n);
    scale = PetscMax(1.0, hm_max_abs(3 * n, (const double *)fi->data));
    err   = hm_max_abs_diff(3 * n, f, (const double *)fi->data) / scale;
    print_message("%s/%s: N=%d forces max err %.1e (max|F| %.3f, fmax %.3f)\n", model, mols[k], (int)n, err, scale, fmax);
    assert_true(err <= 1e-10);
    assert_false(has);
    free(f);
    HM_T(HMSystemDestroy(&sys));
    HM_T(HMSafetensorsClose(&fx));
  }
  HM_T(HMModelDestroy(&m));
}

static const char *mols[]          = {"mol08", "mol09", "mol11", "mol13", "mol21"};
static const char *mols_headopts[] = {"mol08", "mol13", "mol21"};

static void test_golden(void **state)
{
  (void)state;
  check_fixture_forces("small", mols, 5);
  check_fixture_forces("default", mols, 5);
  check_fixture_forces("hoextra", mols_headopts, 3);
}

static void test_protein(void **state)
{
  char          path[PETSC_MAX_PATH_LEN];
  HMModel       m;
  HMSafetensors fx;
  (void)state;
  snprintf(path, sizeof(path), "%s/protein_demo.safetensors", hm_models_dir());
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  snprintf(path, sizeof(path), "%s/protein_demo_test_fixtures.safetensors", hm_models_dir());
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &fx));
  for (int k = 0; k < 14; k++) {
    int                *Z;
    const double       *pos, *Href;
    const HMTensorInfo *fi;
    double              Eref, E, stress[9], err, scale;
    PetscBool           has;
    char                name[48];
    const PetscInt      n = hm_fixture_get(fx, k, NULL, &Z, &pos, &Eref, &Href, NULL);
    double             *f = forces_self(m, n, Z, pos, NULL, NULL, &E, &has, stress);
    snprintf(name, sizeof(name), "s%d_ref_forces", k);
    HM_T(HMSafetensorsGetInfo(fx, name, HM_DTYPE_F64, &fi));
    scale = PetscMax(1.0, hm_max_abs(3 * n, (const double *)fi->data));
    err   = hm_max_abs_diff(3 * n, f, (const double *)fi->data) / scale;
    print_message("protein s%d: N=%d forces max err %.1e (max|F| %.3f)\n", k, (int)n, err, scale);
    assert_true(err <= 1e-10);
    free(f);
    free(Z);
  }
  HM_T(HMSafetensorsClose(&fx));
  HM_T(HMModelDestroy(&m));
}

/* ---- finite differences ---- */
/* Central differences with h = 1e-4 A: truncation h^2/6 |E'''| (~1e-9 for |E'''| <~ 1e-1 eV/A^3... up to
   ~10 eV/A^3 at short distances: 2e-8) plus rounding eps |E| / h (~1e-16 * 1e3 / 1e-4 = 1e-9): 1e-7
   leaves a margin of 5 over the worst case. */
static void check_fd(HMModel m, PetscInt n, const int *Z, const double *pos0, const double *cell, const PetscBool *pbc, const char *what)
{
  const double h = 1e-4;
  double       E, stress[9], err = 0, *pos = malloc(sizeof(double) * (size_t)(3 * n));
  PetscBool    has;
  double      *f = forces_self(m, n, Z, pos0, cell, pbc, &E, &has, stress);
  memcpy(pos, pos0, sizeof(double) * (size_t)(3 * n));
  for (PetscInt i = 0; i < 3 * n; i++) {
    double Ep, Em;
    pos[i] = pos0[i] + h;
    Ep     = energy_of(m, n, Z, pos, cell, pbc);
    pos[i] = pos0[i] - h;
    Em     = energy_of(m, n, Z, pos, cell, pbc);
    pos[i] = pos0[i];
    err    = PetscMax(err, PetscAbsReal(-(Ep - Em) / (2 * h) - f[i]));
  }
  print_message("%s: N=%d central FD (h=1e-4) max |F - F_fd| %.1e (max|F| %.2f)\n", what, (int)n, err, hm_max_abs(3 * n, f));
  assert_true(err <= 1e-7);
  free(pos);
  free(f);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static void random_atoms(PetscInt n, const double cell[9], PetscBool periodic, double dmin, int *Z, double *pos)
{
  hm_random_atoms(&rng, n, cell, periodic, dmin, Z, pos);
}

static HMModel load_golden(const char *name)
{
  char    path[PETSC_MAX_PATH_LEN];
  HMModel m;
  hm_golden_path(name, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  return m;
}

static void test_fd_molecule(void **state)
{
  HMSafetensors fx;
  HMSystem      sys;
  const double *pos;
  const int    *Z;
  PetscInt      n;
  HMModel       m = load_golden("model_default.safetensors");
  (void)state;
  hm_load_fixture("default", "mol08", &fx, &sys);
  HM_T(HMSystemGetSize(sys, &n));
  HM_T(HMSystemGetPositions(sys, &pos));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  check_fd(m, n, Z, pos, NULL, NULL, "default/mol08");
  /* sum F = 0 and rotation covariance */
  {
    double       E, E2, st[9], s[3] = {0, 0, 0}, fm = 0, err = 0;
    PetscBool    has;
    double      *f = forces_self(m, n, Z, pos, NULL, NULL, &E, &has, st), *pr = malloc(sizeof(double) * (size_t)(3 * n)), *f2;
    const double c = cos(0.7), sn = sin(0.7), c2 = cos(-1.1), s2 = sin(-1.1);
    /* R = Rz(0.7) Rx(-1.1) */
    const double R[9] = {c, -sn * c2, sn * s2, sn, c * c2, -c * s2, 0, s2, c2};
    for (PetscInt i = 0; i < n; i++)
      for (int a = 0; a < 3; a++) {
        s[a] += f[3 * i + a];
        fm = PetscMax(fm, PetscAbsReal(f[3 * i + a]));
      }
    /* each force is a sum of ~n_edges terms of size <= max|F|: the sum of n forces cancels to within
       ~ n * max|F| * 1e-15 */
    print_message("sum F = (%.1e, %.1e, %.1e), max|F| %.2f\n", s[0], s[1], s[2], fm);
    for (int a = 0; a < 3; a++) assert_true(PetscAbsReal(s[a]) <= 1e-13 * PetscMax(1.0, fm) * (double)n);
    for (PetscInt i = 0; i < n; i++)
      for (int a = 0; a < 3; a++) pr[3 * i + a] = R[3 * a] * pos[3 * i] + R[3 * a + 1] * pos[3 * i + 1] + R[3 * a + 2] * pos[3 * i + 2];
    f2 = forces_self(m, n, Z, pr, NULL, NULL, &E2, &has, st);
    for (PetscInt i = 0; i < n; i++)
      for (int a = 0; a < 3; a++) err = PetscMax(err, PetscAbsReal(f2[3 * i + a] - (R[3 * a] * f[3 * i] + R[3 * a + 1] * f[3 * i + 1] + R[3 * a + 2] * f[3 * i + 2])));
    print_message("rotation: max |F(Rx) - R F(x)| %.1e, energy change %.1e\n", err, E2 - E);
    assert_true(err <= 1e-11 * PetscMax(1.0, fm));
    free(f);
    free(f2);
    free(pr);
  }
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMSafetensorsClose(&fx));
  HM_T(HMModelDestroy(&m));
}

static void test_fd_periodic(void **state)
{
  /* r_max of model_small is 5 A: the cells are thinner than 2 r_max, so atoms meet their own images */
  const double    ortho[9] = {6.0, 0, 0, 0, 6.5, 0, 0, 0, 7.0}, tric[9] = {4.2, 0, 0, 1.1, 4.4, 0, -0.8, 0.9, 4.6};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}, slab[3] = {PETSC_TRUE, PETSC_FALSE, PETSC_TRUE};
  int             Z[12];
  double          pos[36];
  HMModel         m = load_golden("model_small.safetensors");
  (void)state;
  random_atoms(10, ortho, PETSC_TRUE, 1.2, Z, pos);
  check_fd(m, 10, Z, pos, ortho, all, "small/orthorhombic 6.0x6.5x7.0");
  random_atoms(5, tric, PETSC_TRUE, 1.2, Z, pos);
  check_fd(m, 5, Z, pos, tric, all, "small/triclinic ~4.4 A");
  check_fd(m, 5, Z, pos, tric, slab, "small/triclinic slab (pbc x, z)");
  HM_T(HMModelDestroy(&m));
}

/* stress = (1/V) dE/d eps, positions and cell scaled by (I + eps), eps symmetric: central differences
   with step 1e-5 (E ~ 1e2 eV: rounding 1e-14 / 1e-5 / V ~ 1e-11 eV/A^3) */
static void test_stress(void **state)
{
  const double    tric[9] = {4.2, 0, 0, 1.1, 4.4, 0, -0.8, 0.9, 4.6};
  const PetscBool all[3]  = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  const PetscInt  n       = 6;
  int             Z[6];
  double          pos[18], E, st[9], err = 0, smax = 0, V;
  PetscBool       has;
  HMModel         m = load_golden("model_small.safetensors");
  (void)state;
  random_atoms(n, tric, PETSC_TRUE, 1.2, Z, pos);
  free(forces_self(m, n, Z, pos, tric, all, &E, &has, st));
  assert_true(has);
  V = PetscAbsReal(tric[0] * (tric[4] * tric[8] - tric[5] * tric[7]) - tric[1] * (tric[3] * tric[8] - tric[5] * tric[6]) + tric[2] * (tric[3] * tric[7] - tric[4] * tric[6]));
  for (int a = 0; a < 3; a++)
    for (int b = a; b < 3; b++) {
      double Es[2];
      for (int sg = 0; sg < 2; sg++) {
        const double h    = sg ? -1e-5 : 1e-5;
        double       F[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, c[9], p[18];
        F[3 * a + b] += a == b ? h : h / 2;
        F[3 * b + a] += a == b ? 0 : h / 2;
        for (int r = 0; r < 3; r++) /* cell rows are vectors: c_r = F c_r */
          for (int x = 0; x < 3; x++) c[3 * r + x] = F[3 * x] * tric[3 * r] + F[3 * x + 1] * tric[3 * r + 1] + F[3 * x + 2] * tric[3 * r + 2];
        for (PetscInt i = 0; i < n; i++)
          for (int x = 0; x < 3; x++) p[3 * i + x] = F[3 * x] * pos[3 * i] + F[3 * x + 1] * pos[3 * i + 1] + F[3 * x + 2] * pos[3 * i + 2];
        Es[sg] = energy_of(m, n, Z, p, c, all);
      }
      const double fd = (Es[0] - Es[1]) / 2e-5 / V;
      print_message("stress[%d%d] %.10f fd %.10f (%.10f)\n", a, b, st[3 * a + b], fd, st[3 * b + a]);
      err  = PetscMax(err, PetscAbsReal(fd - 0.5 * (st[3 * a + b] + st[3 * b + a])));
      err  = PetscMax(err, PetscAbsReal(st[3 * a + b] - st[3 * b + a]));
      smax = PetscMax(smax, PetscAbsReal(st[3 * a + b]));
    }
  print_message("stress vs finite strain: max err %.1e eV/A^3 (max|sigma| %.3f)\n", err, smax);
  assert_true(err <= 1e-7);
  HM_T(HMModelDestroy(&m));
}

/* ---- rank-count invariance: run under mpiexec -n k ---- */
static void compare_ranks(const char *model_path, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc)
{
  HMModel     ms, mw;
  HMSystem    sys;
  PetscMPIInt rank;
  double      Es, Ew, ss[9], sw[9], fms, fmw;
  PetscBool   hs, hw;
  int         same = 1, all;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  HM_T(HMModelLoad(PETSC_COMM_SELF, model_path, &ms));
  HM_T(HMModelLoad(PETSC_COMM_WORLD, model_path, &mw));
  double *fs = forces_of(PETSC_COMM_SELF, ms, sys, n, &Es, &hs, ss, &fms);
  double *fw = forces_of(PETSC_COMM_WORLD, mw, rank == 0 ? sys : NULL, n, &Ew, &hw, sw, &fmw);
  for (PetscInt i = 0; i < 3 * n; i++) same &= fs[i] == fw[i];
  for (int k = 0; k < 9; k++) same &= ss[k] == sw[k];
  same &= hs == hw && fms == fmw && Es == Ew;
  MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, PETSC_COMM_WORLD);
  print_message("[%d/%d] N=%d forces%s: %s (max diff %.1e)\n", rank, size_world, (int)n, hs ? " + stress" : "", all ? "bitwise equal" : "DIFFER", hm_max_abs_diff(3 * n, fs, fw));
  if (!all) fail_msg("forces differ from the one-rank values");
  free(fs);
  free(fw);
  HM_T(HMModelDestroy(&ms));
  HM_T(HMModelDestroy(&mw));
  HM_T(HMSystemDestroy(&sys));
}

static void test_ranks(void **state)
{
  const double    box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10}, tric[9] = {7.0, 0, 0, 1.8, 6.6, 0, -1.2, 1.5, 7.2};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  int             Z[60];
  double          pos[180];
  char            m[PETSC_MAX_PATH_LEN];
  (void)state;
  hm_golden_path("model_default.safetensors", m, sizeof(m));
  random_atoms(40, box, PETSC_FALSE, 1.1, Z, pos);
  compare_ranks(m, 40, Z, pos, NULL, NULL);
  hm_golden_path("model_small.safetensors", m, sizeof(m));
  random_atoms(20, tric, PETSC_TRUE, 1.2, Z, pos);
  compare_ranks(m, 20, Z, pos, tric, all);
  { /* more ranks than atoms: empty ranks */
    const int    Zw[3] = {8, 1, 1};
    const double pw[9] = {0.0, 0.0, 0.1173, 0.0, 0.7572, -0.4692, 0.0, -0.7572, -0.4692};
    compare_ranks(m, 3, Zw, pw, NULL, NULL);
  }
}

/* ---- HMEvalSetPositions: an evaluation moved to new positions equals a fresh one, bitwise ---- */
/* Energy, forces [3N] and dense Hessian [3N][3N] in input order, the same on every rank; edges: the main
   graph's edge count over all ranks. */
static void eval_outputs(HMEval ev, HMHessian h, PetscInt N, double *E, double *f, double *H, PetscInt *edges)
{
  const double   *fo;
  const PetscInt *gid;
  const HMGraph  *g;
  PetscInt        n, lo, hi, ne;
  Mat             Hp, Hin, Ha;
  double         *loc = calloc((size_t)(9 * N * N + 3 * N + 1), sizeof(double));
  HM_T(HMEvalComputeForces(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMEvalGetForces(ev, &fo));
  HM_T(HMEvalGetSizes(ev, NULL, &n, NULL, NULL));
  HM_T(HMEvalGetLocalAtoms(ev, &gid, NULL));
  HM_T(HMEvalGetGraph(ev, &g, NULL));
  ne = g->nedges;
  MPI_Allreduce(&ne, edges, 1, MPIU_INT, MPI_SUM, PETSC_COMM_WORLD);
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) loc[9 * N * N + 3 * gid[i] + a] = fo[3 * i + a];
  HM_T(HMHessianAssemble(h, &Hp));
  HM_T(HMHessianInputOrder(h, Hp, &Hin));
  HM_T(MatConvert(Hin, MATAIJ, MAT_INITIAL_MATRIX, &Ha));
  HM_T(MatGetOwnershipRange(Ha, &lo, &hi));
  for (PetscInt r = lo; r < hi; r++) {
    PetscInt           nc;
    const PetscInt    *c;
    const PetscScalar *v;
    HM_T(MatGetRow(Ha, r, &nc, &c, &v));
    for (PetscInt k = 0; k < nc; k++) loc[r * 3 * N + c[k]] = v[k];
    HM_T(MatRestoreRow(Ha, r, &nc, &c, &v));
  }
  /* every entry is non-zero on one rank only: the sum is exact */
  {
    double *all = malloc(sizeof(double) * (size_t)(9 * N * N + 3 * N + 1));
    MPI_Allreduce(loc, all, (int)(9 * N * N + 3 * N), MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    memcpy(H, all, sizeof(double) * (size_t)(9 * N * N));
    memcpy(f, all + 9 * N * N, sizeof(double) * (size_t)(3 * N));
    free(all);
  }
  free(loc);
  HM_T(MatDestroy(&Ha));
  HM_T(MatDestroy(&Hin));
  HM_T(MatDestroy(&Hp));
}

static void check_setpositions(const char *model, PetscInt N, const int *Z, const double *p0, const double *p1, const double *cell, const PetscBool *pbc)
{
  char            path[PETSC_MAX_PATH_LEN];
  HMModel         m;
  HMSystem        s[2];  /* at p0, at p1 */
  HMEval          ev[2]; /* moved (built at p0, then HMEvalSetPositions(p1)), fresh at p1 */
  HMHessian       h[2];
  PetscMPIInt     rank;
  const PetscInt *gid;
  PetscInt        n, e0, ne[2];
  double          E[2], *buf = malloc(sizeof(double) * (size_t)(2 * (9 * N * N + 3 * N))), *own;
  double         *f[2] = {buf, buf + 3 * N}, *H[2] = {buf + 6 * N, buf + 6 * N + 9 * N * N};
  int             same;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_golden_path(model, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_WORLD, path, &m));
  HM_T(HMSystemCreate(PETSC_COMM_SELF, N, Z, p0, cell, pbc, &s[0]));
  HM_T(HMSystemCreate(PETSC_COMM_SELF, N, Z, p1, cell, pbc, &s[1]));
  /* moved: built at p0 (partition of p0), a first Hessian there, then moved to p1 */
  HM_T(hm_eval_create(m, rank == 0 ? s[0] : NULL, NULL, &ev[0], &h[0]));
  eval_outputs(ev[0], h[0], N, &E[0], f[0], H[0], &e0);
  HM_T(HMHessianDestroy(&h[0]));
  HM_T(HMEvalGetSizes(ev[0], NULL, &n, NULL, NULL));
  HM_T(HMEvalGetLocalAtoms(ev[0], &gid, NULL));
  own = malloc(sizeof(double) * (size_t)(3 * n + 1));
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) own[3 * i + a] = p1[3 * gid[i] + a];
  HM_T(HMEvalSetPositions(ev[0], own));
  free(own);
  HM_T(HMHessianCreate(ev[0], &h[0]));
  HM_T(HMHessianSetFromOptions(h[0]));
  HM_T(hm_eval_create(m, rank == 0 ? s[1] : NULL, NULL, &ev[1], &h[1]));
  for (int k = 0; k < 2; k++) eval_outputs(ev[k], h[k], N, &E[k], f[k], H[k], &ne[k]);
  same = E[0] == E[1] && ne[0] == ne[1] && !memcmp(f[0], f[1], sizeof(double) * (size_t)(3 * N)) && !memcmp(H[0], H[1], sizeof(double) * (size_t)(9 * N * N));
  print_message("[%d/%d] %s N=%d moved: edges %d -> %d (fresh %d), energy %s, forces max diff %.1e, Hessian max diff %.1e: %s\n", rank, size_world, model, (int)N, (int)e0, (int)ne[0], (int)ne[1], E[0] == E[1] ? "equal" : "DIFFERS",
                hm_max_abs_diff(3 * N, f[0], f[1]), hm_max_abs_diff(9 * N * N, H[0], H[1]), same ? "bitwise equal" : "DIFFER");
  assert_true(e0 != ne[0]); /* the move crossed the cutoff: a stale neighbour list would fail */
  assert_true(same);
  for (int k = 0; k < 2; k++) {
    HM_T(HMHessianDestroy(&h[k]));
    HM_T(HMEvalDestroy(&ev[k]));
    HM_T(HMSystemDestroy(&s[k]));
  }
  HM_T(HMModelDestroy(&m));
  free(buf);
}

/* p1 = p0 with every atom jiggled by up to 0.1 A per axis and atom 0 moved by d (nearest distance kept >= 1 A) */
static void moved_positions(PetscInt n, const double *p0, const double d[3], double *p1)
{
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) p1[3 * i + a] = p0[3 * i + a] + 0.2 * (hm_urand(&rng) - 0.5) + (i == 0 ? d[a] : 0.0);
}

static void test_setpositions(void **state)
{
  const double    box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10}, tric[9] = {7.0, 0, 0, 1.8, 6.6, 0, -1.2, 1.5, 7.2};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  const double    d0[3] = {14.0, 0.0, 0.0}, d1[3] = {0.0, 0.0, 9.0};
  int             Z[40];
  double          p0[120], p1[120];
  (void)state;
  /* a molecule: atom 0 leaves the others (moved past the box) */
  random_atoms(40, box, PETSC_FALSE, 1.1, Z, p0);
  moved_positions(40, p0, d0, p1);
  check_setpositions("model_default.safetensors", 40, Z, p0, p1, NULL, NULL);
  /* a periodic cell thinner than 2 r_max: atom 0 moved along z by more than a cell */
  random_atoms(20, tric, PETSC_TRUE, 1.4, Z, p0);
  moved_positions(20, p0, d1, p1);
  check_setpositions("model_small.safetensors", 20, Z, p0, p1, tric, all);
}

static const struct CMUnitTest tests_serial[] = {
    cmocka_unit_test(test_golden),
    cmocka_unit_test(test_protein),
    cmocka_unit_test(test_fd_molecule),
    cmocka_unit_test(test_fd_periodic),
    cmocka_unit_test(test_stress),
    cmocka_unit_test(test_ranks),
    cmocka_unit_test(test_setpositions),
};
static const struct CMUnitTest tests_mpi[] = {
    cmocka_unit_test(test_ranks),
    cmocka_unit_test(test_setpositions),
};

int main(int argc, char **argv)
{
  int rc;
  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  MPI_Comm_size(PETSC_COMM_WORLD, &size_world);
  if (size_world > 1) rc = cmocka_run_group_tests(tests_mpi, NULL, NULL);
  else rc = cmocka_run_group_tests(tests_serial, NULL, NULL);
  if (PetscFinalize()) return 1;
  return rc;
}

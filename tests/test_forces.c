/* Analytic forces and stress (HMEvalComputeForces): parity with the reference's autograd forces on every
   golden fixture and the protein model's fixtures, central finite differences of the energy (molecule,
   periodic cells thinner than 2 r_max), sum F = 0, rotation covariance, stress against finite strain.
   Under mpiexec -n k (k > 1) only the rank-count invariance case runs: forces and stress bitwise equal
   to the one-rank values. */
#include "hmtest.h"
#include <hipmace/eval.h>
#include <math.h>

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

static const struct CMUnitTest tests_serial[] = {
    cmocka_unit_test(test_golden),
    cmocka_unit_test(test_protein),
    cmocka_unit_test(test_fd_molecule),
    cmocka_unit_test(test_fd_periodic),
    cmocka_unit_test(test_stress),
    cmocka_unit_test(test_ranks),
};
static const struct CMUnitTest tests_mpi[] = {
    cmocka_unit_test(test_ranks),
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

/* Lowest modes of model Hessians (demo model) on built systems: the factorisation-free iterative route and the direct
   route against the dense ScaLAPACK spectrum, on an unrelaxed water box (imaginary modes) and an alpha helix. */
#include "hmtest.h"
#include <hipmace/eigen.h>
#include <hipmace/builder.h>

static PetscErrorCode build_water(MPI_Comm comm, HMSystem *s)
{
  return HMBuildWaterBox(comm, 150, 1, s);
}

static PetscErrorCode build_helix(MPI_Comm comm, HMSystem *s)
{
  return HMBuildPeptide(comm, 25, "helix", PETSC_TRUE, s);
}

static double *solve(Mat H, HMSystem sys, HMModesType type, HMModesSolver solver, PetscInt K, PetscInt *n, PetscInt *nimag, PetscBool *exact)
{
  HMModes       m;
  const double *lam, *res;
  double       *out;
  Mat           X;
  PetscInt      nr;

  HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
  HM_T(HMModesSetType(m, type));
  HM_T(HMModesSetSolver(m, solver));
  HM_T(HMModesSetNumModes(m, K));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, n, &lam, NULL));
  HM_T(HMModesGetResiduals(m, &res));
  HM_T(HMModesGetNumImaginary(m, nimag, exact));
  HM_T(HMModesGetNumRigid(m, &nr));
  HM_T(HMModesGetVectors(m, &X));
  out = malloc(sizeof(double) * (size_t)(*n + 1));
  memcpy(out, lam, sizeof(double) * (size_t)*n);
  for (PetscInt i = 1; i < *n; i++) assert_true(lam[i] >= lam[i - 1]);
  HM_T(HMModesDestroy(&m));
  return out;
}

static void check_system(const char *what, PetscErrorCode (*build)(MPI_Comm, HMSystem *), PetscInt K)
{
  Mat       H;
  HMSystem  sys;
  PetscInt  nf, n, ni_full, ni;
  PetscBool ex;
  double   *full, *it, *di, scale;

  hm_demo_hessian(build, &H, &sys);
  full  = solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, K, &nf, &ni_full, &ex);
  scale = hm_max_abs(nf, full);
  assert_true(ex);
  di = solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_DIRECT, K, &n, &ni, &ex);
  assert_int_equal(n, K);
  assert_int_equal(ni, ni_full);
  assert_true(ex);
  for (PetscInt i = 0; i < K; i++)
    if (fabs(di[i] - full[i]) > 1e-8 * scale) fail_msg("%s direct mode %d: %.15g vs full %.15g", what, (int)i, di[i], full[i]);
  it = solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_ITERATIVE, K, &n, &ni, &ex);
  assert_int_equal(n, K);
  /* no rigid-body direction among the modes: they would show up as extra (near-)zero eigenvalues out of order */
  for (PetscInt i = 0; i < K; i++)
    if (fabs(it[i] - full[i]) > 1e-8 * scale) fail_msg("%s iterative mode %d: %.15g vs full %.15g", what, (int)i, it[i], full[i]);
  if (ex) assert_int_equal(ni, ni_full);
  else assert_true(ni == K && ni <= ni_full);
  print_message("%s: %d dof, lowest %.6g, %d imaginary, max|lambda| %.4g\n", what, (int)nf, full[0], (int)ni_full, scale);
  free(full);
  free(di);
  free(it);
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
}

static void test_water(void **state)
{
  (void)state;
  check_system("water 450", build_water, 12);
}

static void test_helix(void **state)
{
  (void)state;
  check_system("helix ala25", build_helix, 12);
}

/* Near-zero spectrum (a relaxed structure's): the helix Hessian plus c M, with c placing the lowest projected mode
   at 1e-7 max|lambda| (the projected mass-weighted operator moves by exactly c). The iterative route with its
   default and with its optional inner solver / eigensolver (GAMG, LOBPCG) against the dense spectrum. */
static void test_near_zero(void **state)
{
  Mat           H;
  HMSystem      sys;
  PetscInt      nf, n, ni, rs, re;
  PetscBool     ex;
  double       *full, *it, scale, c;
  const double *mass;
  Vec           d;
  const char   *opts[3][2] = {
        {NULL,                 NULL    },
        {"-modes_amg_pc_type", "gamg"  },
        {"-eps_type",          "lobpcg"}
  };

  (void)state;
  hm_demo_hessian(build_helix, &H, &sys);
  full  = solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, 12, &nf, &ni, &ex);
  scale = hm_max_abs(nf, full);
  c     = -full[0] + 1e-7 * scale;
  free(full);
  HM_T(HMSystemGetMasses(sys, &mass));
  HM_T(MatCreateVecs(H, &d, NULL));
  HM_T(VecGetOwnershipRange(d, &rs, &re));
  for (PetscInt i = rs; i < re; i++) HM_T(VecSetValue(d, i, c * mass[i / 3], INSERT_VALUES));
  HM_T(VecAssemblyBegin(d));
  HM_T(VecAssemblyEnd(d));
  HM_T(MatDiagonalSet(H, d, ADD_VALUES));
  HM_T(VecDestroy(&d));
  full  = solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, 12, &nf, &ni, &ex);
  scale = hm_max_abs(nf, full);
  assert_int_equal(ni, 0);
  assert_true(full[0] > 0 && full[0] < 1e-6 * scale);
  for (int o = 0; o < 3; o++) {
    if (opts[o][0]) HM_T(PetscOptionsSetValue(NULL, opts[o][0], opts[o][1]));
    it = solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_ITERATIVE, 12, &n, &ni, &ex);
    if (opts[o][0]) HM_T(PetscOptionsClearValue(NULL, opts[o][0]));
    assert_int_equal(n, 12);
    assert_int_equal(ni, 0);
    assert_true(ex);
    for (PetscInt i = 0; i < n; i++)
      if (fabs(it[i] - full[i]) > 1e-8 * scale) fail_msg("near-zero helix, iterative (%s) mode %d: %.15g vs full %.15g", opts[o][1] ? opts[o][1] : "default", (int)i, it[i], full[i]);
    free(it);
  }
  free(full);
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
}

/* The direct route in stages: with one restart per shift the lowest modes come in several stages, each locking the
   converged ones and moving the shift up under the next (checked by inertia); the result must be the dense spectrum's
   to 1e-8 max|lambda| (the eigensolver's tolerance is 1e-10 relative), with the same imaginary count. */
static void check_stages(const char *what, PetscErrorCode (*build)(MPI_Comm, HMSystem *), PetscInt K, const char *restarts)
{
  Mat           H;
  HMSystem      sys;
  HMModes       m;
  PetscInt      nf, n, ni_full, ni, nst = 0;
  PetscBool     ex;
  const double *lam;
  const char   *meth, *a;
  double       *full, scale;

  hm_demo_hessian(build, &H, &sys);
  full  = solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, K, &nf, &ni_full, &ex);
  scale = hm_max_abs(nf, full);
  HM_T(PetscOptionsSetValue(NULL, "-modes_stage_restarts", restarts));
  HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
  HM_T(HMModesSetSolver(m, HM_MODES_SOLVER_DIRECT));
  HM_T(HMModesSetNumModes(m, K));
  HM_T(HMModesSetFromOptions(m));
  HM_T(PetscOptionsClearValue(NULL, "-modes_stage_restarts"));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, &n, &lam, NULL));
  assert_int_equal(n, K);
  for (PetscInt i = 0; i < n; i++)
    if (fabs(lam[i] - full[i]) > 1e-8 * scale) fail_msg("%s, %s restarts per stage, mode %d: %.15g vs full %.15g", what, restarts, (int)i, lam[i], full[i]);
  HM_T(HMModesGetNumImaginary(m, &ni, &ex));
  assert_true(ex);
  assert_int_equal(ni, ni_full);
  HM_T(HMModesGetMethod(m, &meth));
  print_message("%s: %s\n", what, meth);
  a = strstr(meth, " stages, targets");
  if (a) {
    while (a > meth && a[-1] >= '0' && a[-1] <= '9') a--;
    nst = atoi(a);
  } else nst = 1;
  if (!strcmp(restarts, "0")) assert_int_equal(nst, 1);
  else assert_true(nst >= 2); /* one restart cannot converge 12 modes of these spectra: the staging ran */
  HM_T(HMModesDestroy(&m));
  free(full);
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
}

static void test_stages(void **state)
{
  (void)state;
  check_stages("helix ala25", build_helix, 12, "1");
  check_stages("helix ala25", build_helix, 12, "0");
  check_stages("water 150", build_water, 12, "1");
}

/* -modes_solver auto above the crossover (lowered here to 300 dof): direct for the helix, whose plane cut across its
   axis stays a few residues wide, iterative for the water box, whose cut is a slab of the whole box; the method says
   which and why, and the modes are the dense spectrum's either way. */
static PetscInt auto_route(PetscErrorCode (*build)(MPI_Comm, HMSystem *), const char *sep_opt, char *route, PetscInt *nsep)
{
  Mat           H;
  HMSystem      sys;
  HMModes       m;
  PetscInt      nf, n, ni;
  PetscBool     ex;
  const double *lam;
  const char   *meth, *a;
  double       *full, scale;

  hm_demo_hessian(build, &H, &sys);
  full  = solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, 10, &nf, &ni, &ex);
  scale = hm_max_abs(nf, full);
  HM_T(PetscOptionsSetValue(NULL, "-modes_auto_crossover", "300"));
  if (sep_opt) HM_T(PetscOptionsSetValue(NULL, "-modes_auto_separator", sep_opt));
  HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
  HM_T(HMModesSetNumModes(m, 10));
  HM_T(HMModesSetFromOptions(m));
  HM_T(PetscOptionsClearValue(NULL, "-modes_auto_crossover"));
  if (sep_opt) HM_T(PetscOptionsClearValue(NULL, "-modes_auto_separator"));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, &n, &lam, NULL));
  assert_int_equal(n, 10);
  for (PetscInt i = 0; i < n; i++)
    if (fabs(lam[i] - full[i]) > 1e-8 * scale) fail_msg("auto mode %d: %.15g vs full %.15g", (int)i, lam[i], full[i]);
  HM_T(HMModesGetMethod(m, &meth));
  print_message("%s\n", meth);
  a = strstr(meth, "[auto: ");
  assert_non_null(a);
  long ns = 0;
  assert_int_equal(sscanf(a, "[auto: %15[a-z], %*d dof >= 300, separator %ld rows", route, &ns), 2);
  *nsep = (PetscInt)ns;
  HM_T(HMModesDestroy(&m));
  free(full);
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
  return 0;
}

static void test_auto(void **state)
{
  char     route[16];
  PetscInt ns;
  (void)state;
  auto_route(build_helix, NULL, route, &ns);
  assert_string_equal(route, "direct");
  assert_true(ns > 0 && ns <= 120); /* about 3 residues of the helix: a few dozen atoms */
  auto_route(build_helix, "0", route, &ns);
  assert_string_equal(route, "iterative");
  auto_route(build_water, "200", route, &ns);
  assert_string_equal(route, "iterative");
  assert_true(ns > 200);
}

HM_TEST_MAIN_OF(test_water, test_helix, test_near_zero, test_auto, test_stages)

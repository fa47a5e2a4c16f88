/* -modes full with -modes_dense_solver elpa against ScaLAPACK pdsyevd: every eigenvalue of the golden mol21 Hessian
   (default model) to 1e-10 relative to the largest, on the ranks it is run with (1 and 2). Skipped without ELPA. */
#include "hmtest.h"
#include <hipmace/eigen.h>

static double *full_spectrum(Mat H, HMSystem sys, const char *solver, PetscInt *n)
{
  HMModes       m;
  const double *lam;
  double       *out;

  HM_T(PetscOptionsSetValue(NULL, "-modes_dense_solver", solver));
  HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
  HM_T(HMModesSetType(m, HM_MODES_FULL));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, n, &lam, NULL));
  out = malloc(sizeof(double) * (size_t)(*n + 1));
  memcpy(out, lam, sizeof(double) * (size_t)*n);
  HM_T(HMModesDestroy(&m));
  HM_T(PetscOptionsClearValue(NULL, "-modes_dense_solver"));
  return out;
}

static void test_elpa_vs_scalapack(void **state)
{
  char        path[PETSC_MAX_PATH_LEN];
  HMModel     model;
  HMSystem    sys = NULL, all;
  HMEval      ev;
  HMHessian   hs;
  Mat         Hp, H;
  PetscInt    ns, ne;
  double     *ls, *le, scale = 0, maxd = 0;
  PetscMPIInt rank;

  (void)state;
#if !defined(HM_HAVE_ELPA)
  skip();
#endif
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_golden_path("model_default.safetensors", path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_WORLD, path, &model));
  hm_golden_path("mol21.xyz", path, sizeof(path));
  if (rank == 0) HM_T(HMSystemLoad(PETSC_COMM_SELF, path, &sys));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, path, &all));
  HM_T(hm_eval_create(model, sys, NULL, &ev, &hs));
  HM_T(HMEvalForward(ev));
  HM_T(HMHessianAssemble(hs, &Hp));
  HM_T(HMHessianInputOrder(hs, Hp, &H));
  ls = full_spectrum(H, all, "scalapack", &ns);
  le = full_spectrum(H, all, "elpa", &ne);
  assert_int_equal(ns, ne);
  for (PetscInt i = 0; i < ns; i++) scale = PetscMax(scale, PetscAbsReal(ls[i]));
  for (PetscInt i = 0; i < ns; i++) maxd = PetscMax(maxd, PetscAbsReal(ls[i] - le[i]));
  print_message("mol21: %d eigenvalues, max |elpa - scalapack| %.3g (max |lambda| %.4g)\n", (int)ns, maxd, scale);
  if (maxd > 1e-10 * scale) fail_msg("ELPA and ScaLAPACK eigenvalues differ by %.3g > 1e-10 x %.4g", maxd, scale);
  free(ls);
  free(le);
  HM_T(MatDestroy(&H));
  HM_T(MatDestroy(&Hp));
  HM_T(HMHessianDestroy(&hs));
  HM_T(HMEvalDestroy(&ev));
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMSystemDestroy(&all));
  HM_T(HMModelDestroy(&model));
}

HM_TEST_MAIN_OF(test_elpa_vs_scalapack)

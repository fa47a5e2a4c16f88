/* The bundled demo model reproduces its reference predictions; its error against DFT is reported. */
#include "hmtest.h"
#include <hipmace/hessian.h>
#include <petscmat.h>

static void test_demo_fixtures(void **state)
{
  char          path[PETSC_MAX_PATH_LEN];
  HMModel       m;
  HMSafetensors fx;
  double        mae_ours = 0, mae_ref = 0;
  (void)state;

  /* the copy bundled in inputs/ is the one users run */
  snprintf(path, sizeof(path), "%s/demo_hipmace.safetensors", getenv("HIPMACE_INPUTS_DIR") ? getenv("HIPMACE_INPUTS_DIR") : "inputs");
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  snprintf(path, sizeof(path), "%s/demo_test_fixtures.safetensors", hm_models_dir());
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &fx));
  for (int k = 0; k < 10; k++) {
    const double *pos, *Href, *Hdft;
    PetscInt      n;
    int          *Z;
    double       *Hd, Eref[1], E, err = 0, hmax, m1 = 0, m2 = 0;

    n    = hm_fixture_get(fx, k, "dft", &Z, &pos, Eref, &Href, &Hdft);
    Hd   = hm_hessian_dense(m, n, Z, pos, NULL, NULL, &E);
    hmax = hm_max_abs(9 * n * n, Href);
    for (PetscInt i = 0; i < 3 * n; i++)
      for (PetscInt j = 0; j < 3 * n; j++) {
        const double h = Hd[i * 3 * n + j];
        err            = PetscMax(err, PetscAbsReal(h - Href[i * 3 * n + j]));
        m1 += PetscAbsReal(h - Hdft[i * 3 * n + j]);
        m2 += PetscAbsReal(Href[i * 3 * n + j] - Hdft[i * 3 * n + j]);
      }
    m1 /= 9.0 * n * n;
    m2 /= 9.0 * n * n;
    mae_ours += m1 / 10;
    mae_ref += m2 / 10;
    print_message("s%d: N=%2d energy rel err %.1e, Hessian max err %.1e (max|H| %.1f), MAE vs DFT %.4f eV/A^2\n", k, (int)n, PetscAbsReal(E - Eref[0]) / PetscAbsReal(Eref[0]), err / hmax, hmax, m1);
    /* the bound: 1e-9 relative (the reference ran in float64 on CPU) */
    assert_true(PetscAbsReal(E - Eref[0]) <= 1e-9 * PetscAbsReal(Eref[0]));
    assert_true(err <= 1e-9 * hmax);
    free(Hd);
    free(Z);
  }
  print_message("demo model Hessian MAE vs DFT, mean over 10 molecules: hipmace %.4f, reference %.4f eV/A^2\n", mae_ours, mae_ref);
  assert_true(PetscAbsReal(mae_ours - mae_ref) <= 1e-8);
  HM_T(HMSafetensorsClose(&fx));
  HM_T(HMModelDestroy(&m));
}

HM_TEST_MAIN_OF(test_demo_fixtures)

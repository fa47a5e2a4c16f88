/* -precision single against the float64 path and the reference on every golden fixture: the Hessian, the
   energy and the harmonic wavenumbers, each difference printed (README quotes them) and bounded. */
#include "hmtest.h"
#include <hipmace/hessian.h>
#include <hipmace/eigen.h>
#include <petscmat.h>
#include <petscblaslapack.h>
#include <math.h>

static const char *mols[]          = {"mol08", "mol09", "mol11", "mol13", "mol21"};
static const char *mols_headopts[] = {"mol08", "mol13", "mol21"};

/* Energy and dense Hessian of sys at the given precision (folded kernel). */
static double *hessian_at(HMModel m, HMSystem sys, PetscInt n, HMPrecision p, double *E)
{
  HMEval    ev;
  HMHessian hs;
  Mat       H;
  double   *Hd;

  HM_T(hm_eval_create(m, sys, "folded", &ev, &hs));
  HM_T(HMEvalSetPrecision(ev, p));
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMHessianAssemble(hs, &H));
  Hd = hm_dense_of(H, 3 * n);
  HM_T(MatDestroy(&H));
  HM_T(HMHessianDestroy(&hs));
  HM_T(HMEvalDestroy(&ev));
  return Hd;
}

/* The wavenumbers (cm^-1, ascending) of the mass-weighted Hessian H (3n x 3n, not projected). */
static void wavenumbers(PetscInt n, const double *H, const double *mass, double *nu)
{
  const PetscBLASInt N     = (PetscBLASInt)(3 * n);
  PetscBLASInt       lwork = 3 * N + 64, info;
  double            *A = malloc(sizeof(double) * (size_t)(N * N)), *work = malloc(sizeof(double) * (size_t)lwork);

  for (PetscInt i = 0; i < 3 * n; i++)
    for (PetscInt j = 0; j < 3 * n; j++) A[i * 3 * n + j] = H[i * 3 * n + j] / sqrt(mass[i / 3] * mass[j / 3]);
  LAPACKsyev_("N", "U", &N, A, &N, nu, work, &lwork, &info);
  assert_int_equal(info, 0);
  for (PetscInt k = 0; k < 3 * n; k++) nu[k] = HMModesEigenvalueToWavenumber(nu[k]);
  free(A);
  free(work);
}

/* Bounds, from float32's unit round-off u = 6e-8: each layer product sums up to ~2,000 terms (the linear map
   after the tensor product), so its relative error is typically sqrt(k) u ~ 3e-6 (the measured Hessian errors
   are 1e-7 to 1e-6 of max|H|). The Hessian is held to 1e-5 max|H|, the energy to 1e-7 relative and the
   wavenumbers above 100 cm^-1 to 0.05 cm^-1 (measured: ~1e-4 cm^-1). Modes below 100 cm^-1 include the six
   rigid-body modes, whose eigenvalues are round-off and whose wavenumbers are not comparable. */
static void check_model(const char *model, const char *const *list, size_t nmols)
{
  char    path[PETSC_MAX_PATH_LEN], name[64];
  HMModel m;

  snprintf(name, sizeof(name), "model_%s.safetensors", model);
  hm_golden_path(name, path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  for (size_t k = 0; k < nmols; k++) {
    HMSafetensors       fx;
    HMSystem            sys;
    PetscInt            n;
    double              Ed, Es, *Hd, *Hs, *nud, *nus, scale, errH, errR, errE, dnu = 0;
    const double       *mass, *Hr;
    const HMTensorInfo *hi;

    hm_load_fixture(model, list[k], &fx, &sys);
    HM_T(HMSystemGetSize(sys, &n));
    HM_T(HMSystemGetMasses(sys, &mass));
    Hd = hessian_at(m, sys, n, HM_PRECISION_DOUBLE, &Ed);
    Hs = hessian_at(m, sys, n, HM_PRECISION_SINGLE, &Es);
    HM_T(HMSafetensorsGetInfo(fx, "hessian", HM_DTYPE_F64, &hi));
    Hr    = (const double *)hi->data;
    scale = hm_max_abs(9 * n * n, Hd);
    errH  = hm_max_abs_diff(9 * n * n, Hs, Hd) / scale;
    errR  = hm_max_abs_diff(9 * n * n, Hs, Hr) / scale;
    errE  = fabs(Es - Ed) / fabs(Ed);
    nud   = malloc(sizeof(double) * (size_t)(3 * n));
    nus   = malloc(sizeof(double) * (size_t)(3 * n));
    wavenumbers(n, Hd, mass, nud);
    wavenumbers(n, Hs, mass, nus);
    for (PetscInt q = 0; q < 3 * n; q++)
      if (fabs(nud[q]) > 100.0) dnu = PetscMax(dnu, fabs(nus[q] - nud[q]));
    print_message("%s/%s: N=%d single vs double: Hessian %.1e max|H| (vs reference %.1e), energy %.1e rel, wavenumbers > 100 cm^-1 %.2e cm^-1 (max %.0f)\n", model, list[k], (int)n, errH, errR, errE, dnu, nud[3 * n - 1]);
    assert_true(errH <= 1e-5);
    assert_true(errE <= 1e-7);
    assert_true(dnu <= 0.05);
    /* and not the float64 path under another name */
    assert_true(errH > 0.0);
    free(nud);
    free(nus);
    free(Hd);
    free(Hs);
    HM_T(HMSystemDestroy(&sys));
    HM_T(HMSafetensorsClose(&fx));
  }
  HM_T(HMModelDestroy(&m));
}

static void test_small(void **state)
{
  (void)state;
  check_model("small", mols, sizeof(mols) / sizeof(mols[0]));
}

static void test_default(void **state)
{
  (void)state;
  check_model("default", mols, sizeof(mols) / sizeof(mols[0]));
}

static void test_hoextra(void **state)
{
  (void)state;
  check_model("hoextra", mols_headopts, sizeof(mols_headopts) / sizeof(mols_headopts[0]));
}

HM_TEST_MAIN_OF(test_small, test_default, test_hoextra)

/* End to end: the hipmace driver on a fixture writes a binary Hessian and a summary that match. */
#include "hmtest.h"
#include <hipmace/model.h>
#include <petscmat.h>
#include <jansson.h>
#include <unistd.h>

static const char *bin(void)
{
  const char *b = getenv("HIPMACE_BIN");
  return b ? b : "./drivers/hipmace";
}

static int run(const char *args, const char *log)
{
  char cmd[4 * PETSC_MAX_PATH_LEN];
  snprintf(cmd, sizeof(cmd), "%s %s > %s 2>&1", bin(), args, log);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void test_end_to_end(void **state)
{
  char                dir[] = "/tmp/hm_driver_XXXXXX", xyz[512], hb[512], sj[512], args[8192], log[512], fxp[PETSC_MAX_PATH_LEN], mp[PETSC_MAX_PATH_LEN];
  HMSafetensors       fx;
  HMSystem            sys;
  const HMTensorInfo *zi;
  const double       *pos, *Href, *Eref;
  PetscInt64          shp[2] = {-1, 3};
  PetscInt            n;
  int                *Z;
  (void)state;

  assert_non_null(mkdtemp(dir));
  hm_golden_path("fixture_small_mol13.safetensors", fxp, sizeof(fxp));
  hm_golden_path("model_small.safetensors", mp, sizeof(mp));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, fxp, &fx));
  HM_T(HMSafetensorsGetInfo(fx, "atomic_numbers", HM_DTYPE_I64, &zi));
  n      = (PetscInt)zi->numel;
  shp[0] = n;
  HM_T(HMSafetensorsGetF64(fx, "positions", 2, shp, &pos));
  Z = malloc(sizeof(int) * (size_t)n);
  for (PetscInt i = 0; i < n; i++) Z[i] = (int)((const PetscInt64 *)zi->data)[i];
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, NULL, NULL, &sys));
  /* full-precision XYZ, so the driver sees the fixture's exact positions */
  snprintf(xyz, sizeof(xyz), "%s/mol.xyz", dir);
  HM_T(HMSystemWriteXYZ(sys, xyz));
  snprintf(hb, sizeof(hb), "%s/H.bin", dir);
  snprintf(sj, sizeof(sj), "%s/summary.json", dir);
  snprintf(log, sizeof(log), "%s/log.txt", dir);
  snprintf(args, sizeof(args), "-structure %s -model %s -hessian_view binary:%s -summary %s", xyz, mp, hb, sj);
  assert_int_equal(run(args, log), 0);

  /* the binary Hessian, read back with PETSc */
  {
    PetscViewer        v;
    Mat                H, Hd;
    const PetscScalar *a;
    PetscInt64         hs[2] = {3 * n, 3 * n};
    double             err   = 0;
    HM_T(HMSafetensorsGetF64(fx, "hessian", 2, hs, &Href));
    HM_T(PetscViewerBinaryOpen(PETSC_COMM_SELF, hb, FILE_MODE_READ, &v));
    HM_T(MatCreate(PETSC_COMM_SELF, &H));
    HM_T(MatSetType(H, MATSEQAIJ));
    HM_T(MatLoad(H, v));
    HM_T(PetscViewerDestroy(&v));
    HM_T(MatConvert(H, MATDENSE, MAT_INITIAL_MATRIX, &Hd));
    HM_T(MatDenseGetArrayRead(Hd, &a));
    for (PetscInt i = 0; i < 3 * n; i++)
      for (PetscInt j = 0; j < 3 * n; j++) err = PetscMax(err, PetscAbsReal(a[j * 3 * n + i] - Href[i * 3 * n + j]));
    HM_T(MatDenseRestoreArrayRead(Hd, &a));
    print_message("driver Hessian max err %.1e\n", err);
    /* same bound as the library parity test: 1e-10 max(1, max|H|) */
    assert_true(err <= 1e-10 * PetscMax(1.0, hm_max_abs(9 * n * n, Href)));
    HM_T(MatDestroy(&Hd));
    HM_T(MatDestroy(&H));
  }
  /* the summary */
  {
    json_error_t        je;
    json_t             *root = json_load_file(sj, 0, &je), *t;
    const HMTensorInfo *ei;
    assert_non_null(root);
    HM_T(HMSafetensorsGetInfo(fx, "energy", HM_DTYPE_F64, &ei));
    Eref = (const double *)ei->data;
    assert_int_equal(json_integer_value(json_object_get(root, "natoms")), n);
    assert_int_equal(json_integer_value(json_object_get(root, "ranks")), 1);
    assert_true(PetscAbsReal(json_real_value(json_object_get(root, "energy")) - Eref[0]) <= 1e-11 * PetscAbsReal(Eref[0]));
    assert_true(json_integer_value(json_object_get(root, "hessian_blocks")) >= n);
    t = json_object_get(root, "timings");
    assert_true(json_is_object(t));
    assert_true(json_real_value(json_object_get(t, "total")) > 0);
    json_decref(root);
  }
  /* bad input: non-zero exit, a one-line message naming the file, and no summary left behind */
  {
    char  bad[512], sj2[512], line[1024];
    FILE *f;
    snprintf(bad, sizeof(bad), "%s/missing.xyz", dir);
    snprintf(sj2, sizeof(sj2), "%s/s2.json", dir);
    snprintf(args, sizeof(args), "-structure %s -model %s -summary %s", bad, mp, sj2);
    assert_int_not_equal(run(args, log), 0);
    assert_int_equal(access(sj2, F_OK), -1);
    f = fopen(log, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof(line), f))
      if (strstr(line, "missing.xyz")) found = 1;
    fclose(f);
    assert_true(found);
  }
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMSafetensorsClose(&fx));
  free(Z);
}

/* The summary's hessian_cutoff is the cutoff in force: with a shared Hessian radial network (the small
   golden model edited) r_max by default, hessian_r_max with -hessian_prune false; same energy. */
static void test_prune_summary(void **state)
{
  char       dir[] = "/tmp/hm_driver_XXXXXX", src[PETSC_MAX_PATH_LEN], mp[512], xyz[PETSC_MAX_PATH_LEN], sj[2][512], args[8192], log[512];
  double     cut[2], E[2];
  json_int_t blocks[2];
  (void)state;

  assert_non_null(mkdtemp(dir));
  hm_golden_path("model_small.safetensors", src, sizeof(src));
  hm_golden_path("mol13.xyz", xyz, sizeof(xyz)); /* 5 of its pairs are 5.0-6.0 A apart */
  snprintf(mp, sizeof(mp), "%s/shared.safetensors", dir);
  hm_write_variant(src, mp, "{\"hessian_separate_radial_network\": false}", "hessian_radial_embedding.");
  snprintf(log, sizeof(log), "%s/log.txt", dir);
  for (int k = 0; k < 2; k++) {
    json_error_t je;
    json_t      *root;
    snprintf(sj[k], sizeof(sj[k]), "%s/s%d.json", dir, k);
    snprintf(args, sizeof(args), "-structure %s -model %s -modes none -summary %s -hessian_prune %s", xyz, mp, sj[k], k ? "false" : "true");
    assert_int_equal(run(args, log), 0);
    root = json_load_file(sj[k], 0, &je);
    assert_non_null(root);
    cut[k]    = json_real_value(json_object_get(root, "hessian_cutoff"));
    E[k]      = json_real_value(json_object_get(root, "energy"));
    blocks[k] = json_integer_value(json_object_get(root, "hessian_blocks"));
    json_decref(root);
    assert_int_equal(unlink(sj[k]), 0);
  }
  print_message("driver -hessian_prune true/false: cutoff %g / %g A, %lld / %lld blocks\n", cut[0], cut[1], (long long)blocks[0], (long long)blocks[1]);
  assert_true(cut[0] == 5.0 && cut[1] == 7.0);
  assert_true(blocks[1] == blocks[0] + 10);
  assert_true(E[0] == E[1]);
  assert_int_equal(unlink(mp), 0);
  assert_int_equal(unlink(log), 0);
  assert_int_equal(rmdir(dir), 0);
}

/* drivers/hipmace-example (public API only, <hipmace.h>) gives the driver's energy to the bit, the same
   block count and the same lowest modes as the driver's summary. */
static void test_example(void **state)
{
  char         dir[] = "/tmp/hm_example_XXXXXX", sj[512], log[512], elog[512], args[4096], cmd[8192], line[512];
  const char  *ex = getenv("HIPMACE_EXAMPLE_BIN"), *inputs = getenv("HIPMACE_INPUTS_DIR");
  double       e_ex   = 0, e_drv, cm1[10];
  long long    nb_ex  = -1;
  int          nmodes = 0, st;
  FILE        *f;
  json_error_t err;
  json_t      *root, *freq;
  (void)state;
  if (!ex || !inputs) skip();
  assert_non_null(mkdtemp(dir));
  snprintf(sj, sizeof(sj), "%s/summary.json", dir);
  snprintf(log, sizeof(log), "%s/log.txt", dir);
  snprintf(elog, sizeof(elog), "%s/example.txt", dir);
  snprintf(args, sizeof(args), "-structure %s/default.xyz -model %s/demo_hipmace.safetensors -nmodes 10 -summary %s", inputs, inputs, sj);
  assert_int_equal(run(args, log), 0);
  snprintf(cmd, sizeof(cmd), "%s -structure %s/default.xyz -model %s/demo_hipmace.safetensors -nmodes 10 > %s 2>&1", ex, inputs, inputs, elog);
  st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  f = fopen(elog, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    int k;
    if (sscanf(line, "energy %lf eV", &e_ex) == 1) continue;
    if (sscanf(line, "hessian %*d x %*d, %lld stored", &nb_ex) == 1) continue;
    if (nmodes < 10 && sscanf(line, "mode %d eigenvalue %*e eV/A^2/amu %lf cm-1", &k, &cm1[nmodes]) == 2) nmodes++;
  }
  fclose(f);
  root = json_load_file(sj, 0, &err);
  assert_non_null(root);
  e_drv = json_real_value(json_object_get(root, "energy"));
  print_message("example energy %.17g eV, driver %.17g eV\n", e_ex, e_drv);
  assert_true(e_ex == e_drv); /* both printed with 17 significant digits: bitwise */
  assert_int_equal(nb_ex, json_integer_value(json_object_get(root, "hessian_blocks")));
  freq = json_object_get(root, "frequencies_cm1");
  assert_int_equal(nmodes, 10);
  assert_int_equal(json_array_size(freq), 10);
  for (int k = 0; k < nmodes; k++) assert_float_equal(cm1[k], json_number_value(json_array_get(freq, (size_t)k)), 1e-4); /* printed to 4 decimals */
  json_decref(root);
  assert_int_equal(unlink(sj), 0);
  assert_int_equal(unlink(log), 0);
  assert_int_equal(unlink(elog), 0);
  assert_int_equal(rmdir(dir), 0);
}

HM_TEST_MAIN_OF(test_end_to_end, test_prune_summary, test_example)

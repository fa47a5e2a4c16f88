/* Shared helpers for the cmocka test programs: PETSc start-up, golden-data paths, comparisons. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <hipmace/hessian.h>
#include <petscmat.h>
#include "hmrand.h"

/* A library call inside a test: any PETSc error code fails the test (PETSc prints the trace). */
#define HM_T(call)                                                                  \
  do {                                                                              \
    PetscErrorCode hm_t_ierr_ = (call);                                             \
    if (hm_t_ierr_) fail_msg("%s returned PETSc error %d", #call, (int)hm_t_ierr_); \
  } while (0)

/* Folder of the shared golden data: $HIPMACE_GOLDEN_DIR (set by meson test). */
static inline const char *hm_golden_dir(void)
{
  const char *d = getenv("HIPMACE_GOLDEN_DIR");
  return d ? d : "../shared/golden";
}

static inline void hm_golden_path(const char *name, char *buf, size_t len)
{
  snprintf(buf, len, "%s/%s", hm_golden_dir(), name);
}

/* Folder of the shared demo model (../shared/models): $HIPMACE_MODELS_DIR. */
static inline const char *hm_models_dir(void)
{
  const char *d = getenv("HIPMACE_MODELS_DIR");
  return d ? d : "../shared/models";
}

/* n hydrogen atoms on a simple cubic grid of spacing 3 A, side atoms per row (x fastest), in Z and pos. */
static inline void hm_grid_atoms(PetscInt n, PetscInt side, int *Z, double *pos)
{
  for (PetscInt i = 0; i < n; i++) {
    Z[i]           = 1;
    pos[3 * i]     = 3.0 * (double)(i % side);
    pos[3 * i + 1] = 3.0 * (double)((i / side) % side);
    pos[3 * i + 2] = 3.0 * (double)(i / (side * side));
  }
}

/* cmocka group setup/teardown: the readers keep atoms where the file puts them (-wrap false). */
static inline int hm_nowrap_setup(void **state)
{
  (void)state;
  return PetscOptionsSetValue(NULL, "-wrap", "false") ? -1 : 0;
}

static inline int hm_nowrap_teardown(void **state)
{
  (void)state;
  return PetscOptionsClearValue(NULL, "-wrap") ? -1 : 0;
}

#define HM_ERRMSG_LEN 1024

/* PETSc error handler that prints nothing and keeps the message of the error's first call in ctx (a char
   buffer of HM_ERRMSG_LEN): PetscPushErrorHandler(hm_capture_error, buf). */
static inline PetscErrorCode hm_capture_error(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm, (void)line, (void)func, (void)file;
  if (p == PETSC_ERROR_INITIAL) snprintf((char *)ctx, HM_ERRMSG_LEN, "%s", mess ? mess : "");
  return n;
}

/* max |a-b| over n entries */
static inline double hm_max_abs_diff(PetscInt n, const double *a, const double *b)
{
  double m = 0;
  for (PetscInt i = 0; i < n; i++) m = PetscMax(m, PetscAbsReal(a[i] - b[i]));
  return m;
}

static inline double hm_max_abs(PetscInt n, const double *a)
{
  double m = 0;
  for (PetscInt i = 0; i < n; i++) m = PetscMax(m, PetscAbsReal(a[i]));
  return m;
}

/* Dense row-major copy (N3 x N3) of an assembled Hessian of any supported storage type. */
static inline double *hm_dense_of(Mat H, PetscInt N3)
{
  Mat                Ha, Hd;
  const PetscScalar *a;
  double            *out = malloc(sizeof(double) * (size_t)(N3 * N3));
  HM_T(MatConvert(H, MATAIJ, MAT_INITIAL_MATRIX, &Ha));
  HM_T(MatConvert(Ha, MATDENSE, MAT_INITIAL_MATRIX, &Hd));
  HM_T(MatDenseGetArrayRead(Hd, &a));
  /* PETSc dense is column-major */
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) out[i * N3 + j] = a[j * N3 + i];
  HM_T(MatDenseRestoreArrayRead(Hd, &a));
  HM_T(MatDestroy(&Hd));
  HM_T(MatDestroy(&Ha));
  return out;
}

/* An evaluation of sys and its Hessian, with the options read as the driver reads them (-partition,
   -hessian_kernel, -hessian_prune, -hessian_table_tol, -hessian_type); kernel, if not NULL, overrides
   -hessian_kernel. */
static inline PetscErrorCode hm_eval_create(HMModel m, HMSystem sys, const char *kernel, HMEval *ev, HMHessian *h)
{
  PetscFunctionBegin;
  PetscCall(HMEvalCreate(m, ev));
  PetscCall(HMEvalSetFromOptions(*ev));
  PetscCall(HMHessianCreate(*ev, h));
  PetscCall(HMHessianSetFromOptions(*h));
  if (kernel) PetscCall(HMHessianSetType(*h, kernel));
  PetscCall(HMEvalSetSystem(*ev, sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Energy and input-ordered Hessian of sys under m (sys may be NULL on ranks that do not hold it: the
   evaluation distributes it); the options as hm_eval_create reads them. */
static inline void hm_energy_hessian(HMModel m, HMSystem sys, double *E, Mat *Hin)
{
  HMEval    ev;
  HMHessian hs;
  Mat       H;

  HM_T(hm_eval_create(m, sys, NULL, &ev, &hs));
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMHessianAssemble(hs, &H));
  HM_T(HMHessianInputOrder(hs, H, Hin));
  HM_T(MatDestroy(&H));
  HM_T(HMHessianDestroy(&hs));
  HM_T(HMEvalDestroy(&ev));
}

/* The bundled demo model's path (HIPMACE_INPUTS_DIR, else ./inputs). */
static inline void hm_demo_model_path(char *buf, size_t len)
{
  const char *d = getenv("HIPMACE_INPUTS_DIR");
  snprintf(buf, len, "%s/demo_hipmace.safetensors", d ? d : "inputs");
}

/* The demo model's Hessian in input order of a system built identically on every rank (build(comm) gives it),
   and that system (whole, on every rank) in *all. */
static inline void hm_demo_hessian(PetscErrorCode (*build)(MPI_Comm, HMSystem *), Mat *H, HMSystem *all)
{
  char        path[PETSC_MAX_PATH_LEN];
  HMModel     model;
  HMSystem    sys = NULL;
  double      E;
  PetscMPIInt rank;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_demo_model_path(path, sizeof(path));
  HM_T(HMModelLoad(PETSC_COMM_WORLD, path, &model));
  if (rank == 0) HM_T(build(PETSC_COMM_SELF, &sys));
  hm_energy_hessian(model, sys, &E, H);
  HM_T(build(PETSC_COMM_SELF, all));
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMModelDestroy(&model));
}

/* Energy and dense Hessian of a structure on one rank (cell/pbc may be NULL). */
static inline double *hm_hessian_dense(HMModel m, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc, double *E)
{
  HMSystem  sys;
  HMEval    ev;
  HMHessian h;
  Mat       H;
  double   *out;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  HM_T(hm_eval_create(m, sys, NULL, &ev, &h));
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMHessianSetMatType(h, MATBAIJ));
  HM_T(HMHessianAssemble(h, &H));
  out = hm_dense_of(H, 3 * n);
  HM_T(MatDestroy(&H));
  HM_T(HMHessianDestroy(&h));
  HM_T(HMEvalDestroy(&ev));
  HM_T(HMSystemDestroy(&sys));
  return out;
}

/* One structure k of a demo-model fixture file (demo_test_fixtures, protein_demo_test_fixtures): atom
   count, atomic numbers (malloc'ed, caller frees), positions, the model's reference energy and Hessian,
   and the label Hessian s{k}_{label}_hessian (label "dft" or "xtb"; NULL skips it). Data point into fx. */
static inline PetscInt hm_fixture_get(HMSafetensors fx, int k, const char *label, int **Z, const double **pos, double *Eref, const double **Href, const double **Hlabel)
{
  char                name[64];
  const HMTensorInfo *zi, *ei;
  PetscInt64          shp[2] = {-1, 3}, hs[2];
  PetscInt            n;

  snprintf(name, sizeof(name), "s%d_atomic_numbers", k);
  HM_T(HMSafetensorsGetInfo(fx, name, HM_DTYPE_I64, &zi));
  n      = (PetscInt)zi->numel;
  shp[0] = n;
  *Z     = malloc(sizeof(int) * (size_t)n);
  for (PetscInt i = 0; i < n; i++) (*Z)[i] = (int)((const PetscInt64 *)zi->data)[i];
  snprintf(name, sizeof(name), "s%d_positions", k);
  HM_T(HMSafetensorsGetF64(fx, name, 2, shp, pos));
  snprintf(name, sizeof(name), "s%d_ref_energy", k);
  HM_T(HMSafetensorsGetInfo(fx, name, HM_DTYPE_F64, &ei));
  *Eref = ((const double *)ei->data)[0];
  hs[0] = hs[1] = 3 * n;
  snprintf(name, sizeof(name), "s%d_ref_hessian", k);
  HM_T(HMSafetensorsGetF64(fx, name, 2, hs, Href));
  if (Hlabel) {
    snprintf(name, sizeof(name), "s%d_%s_hessian", k, label);
    HM_T(HMSafetensorsGetF64(fx, name, 2, hs, Hlabel));
  }
  return n;
}

/* Writes a safetensors file dst: the header {"__metadata__": {"format", "config": cfg as compact JSON},
   then the nt tensors of T (8-byte I64 or F64) in that order}, then their data. */
static inline void hm_write_safetensors(const char *dst, const char *format, const json_t *cfg, PetscInt nt, const HMTensorInfo *T)
{
  json_t  *hdr = json_object(), *meta = json_object();
  uint64_t off = 0, hlen;
  char    *htxt;
  size_t   len;
  FILE    *fp;

  json_object_set_new(meta, "format", json_string(format));
  htxt = json_dumps(cfg, JSON_COMPACT);
  json_object_set_new(meta, "config", json_string(htxt));
  free(htxt);
  json_object_set_new(hdr, "__metadata__", meta);
  for (PetscInt i = 0; i < nt; i++) {
    json_t *ti = json_object(), *shape = json_array();
    for (int d = 0; d < T[i].ndim; d++) json_array_append_new(shape, json_integer(T[i].shape[d]));
    json_object_set_new(ti, "dtype", json_string(T[i].dtype == HM_DTYPE_F64 ? "F64" : "I64"));
    json_object_set_new(ti, "shape", shape);
    json_object_set_new(ti, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + 8 * T[i].numel)));
    json_object_set_new(hdr, T[i].name, ti);
    off += 8 * (uint64_t)T[i].numel;
  }
  htxt = json_dumps(hdr, JSON_COMPACT);
  len  = strlen(htxt);
  hlen = (len + 7) / 8 * 8;
  fp   = fopen(dst, "wb");
  assert_non_null(fp);
  fwrite(&hlen, 8, 1, fp); /* little-endian host (x86-64) */
  fwrite(htxt, 1, len, fp);
  for (size_t k = len; k < hlen; k++) fputc(' ', fp);
  for (PetscInt i = 0; i < nt; i++)
    if (T[i].numel) fwrite(T[i].data, 8, (size_t)T[i].numel, fp);
  assert_int_equal(fclose(fp), 0);
  free(htxt);
  json_decref(hdr);
}

/* Writes a safetensors copy of src with config edits applied; tensors whose name starts with drop
   (if given) are left out, so a model that still read them would fail to load. */
static inline void hm_write_variant(const char *src, const char *dst, const char *edits_json, const char *drop)
{
  HMSafetensors st;
  const char   *fmt, *cfgtxt;
  json_t       *cfg, *edits;
  json_error_t  jerr;
  const char   *key;
  json_t       *val;
  PetscInt      nt, nkeep = 0;
  HMTensorInfo *keep;

  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, src, &st));
  HM_T(HMSafetensorsGetMetadata(st, "format", &fmt));
  HM_T(HMSafetensorsGetMetadata(st, "config", &cfgtxt));
  cfg   = json_loads(cfgtxt, 0, &jerr);
  edits = json_loads(edits_json, 0, &jerr);
  assert_non_null(cfg);
  assert_non_null(edits);
  json_object_foreach(edits, key, val) json_object_set(cfg, key, val);
  HM_T(HMSafetensorsGetNumTensors(st, &nt));
  keep = malloc(sizeof(HMTensorInfo) * (size_t)(nt + 1));
  for (PetscInt i = 0; i < nt; i++) {
    const HMTensorInfo *t;
    HM_T(HMSafetensorsGetTensorByIndex(st, i, &t));
    if (!drop || strncmp(t->name, drop, strlen(drop))) keep[nkeep++] = *t;
  }
  hm_write_safetensors(dst, fmt, cfg, nkeep, keep);
  free(keep);
  json_decref(cfg);
  json_decref(edits);
  HM_T(HMSafetensorsClose(&st));
}

/* Runs a cmocka group inside PetscInitialize/PetscFinalize; returns the number of failures. */
#define HM_TEST_MAIN(tests)                                  \
  int main(int argc, char **argv)                            \
  {                                                          \
    int hm_fail;                                             \
    if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1; \
    hm_fail = cmocka_run_group_tests(tests, NULL, NULL);     \
    if (PetscFinalize()) return 1;                           \
    return hm_fail;                                          \
  }

/* free() of the pointers of an array (NULL ones allowed): HM_FREE_ALL(a, b, c) */
#define HM_FREE_ALL(...)                                                                             \
  do {                                                                                               \
    void *hm_fp_[] = {__VA_ARGS__};                                                                  \
    for (size_t hm_k_ = 0; hm_k_ < sizeof(hm_fp_) / sizeof(hm_fp_[0]); hm_k_++) free(hm_fp_[hm_k_]); \
  } while (0)

/* Everything of a system that tests compare, read by one call. */
typedef struct {
  PetscInt      n;
  const int    *Z;
  const double *pos, *mass;
  PetscBool     hascell, pbc[3];
  double        cell[9];
} hm_sysview;

static inline hm_sysview hm_system_view(HMSystem s)
{
  hm_sysview v;
  HM_T(HMSystemGetSize(s, &v.n));
  HM_T(HMSystemGetAtomicNumbers(s, &v.Z));
  HM_T(HMSystemGetPositions(s, &v.pos));
  HM_T(HMSystemGetMasses(s, &v.mass));
  HM_T(HMSystemGetCell(s, &v.hascell, v.cell, v.pbc));
  return v;
}

/* main() of a cmocka group of plain test functions (at most 16), by name: HM_TEST_MAIN_OF(test_a, test_b) */
#define HM_UT_1(a)                                                                               cmocka_unit_test(a)
#define HM_UT_2(a, ...)                                                                          cmocka_unit_test(a), HM_UT_1(__VA_ARGS__)
#define HM_UT_3(a, ...)                                                                          cmocka_unit_test(a), HM_UT_2(__VA_ARGS__)
#define HM_UT_4(a, ...)                                                                          cmocka_unit_test(a), HM_UT_3(__VA_ARGS__)
#define HM_UT_5(a, ...)                                                                          cmocka_unit_test(a), HM_UT_4(__VA_ARGS__)
#define HM_UT_6(a, ...)                                                                          cmocka_unit_test(a), HM_UT_5(__VA_ARGS__)
#define HM_UT_7(a, ...)                                                                          cmocka_unit_test(a), HM_UT_6(__VA_ARGS__)
#define HM_UT_8(a, ...)                                                                          cmocka_unit_test(a), HM_UT_7(__VA_ARGS__)
#define HM_UT_9(a, ...)                                                                          cmocka_unit_test(a), HM_UT_8(__VA_ARGS__)
#define HM_UT_10(a, ...)                                                                         cmocka_unit_test(a), HM_UT_9(__VA_ARGS__)
#define HM_UT_11(a, ...)                                                                         cmocka_unit_test(a), HM_UT_10(__VA_ARGS__)
#define HM_UT_12(a, ...)                                                                         cmocka_unit_test(a), HM_UT_11(__VA_ARGS__)
#define HM_UT_13(a, ...)                                                                         cmocka_unit_test(a), HM_UT_12(__VA_ARGS__)
#define HM_UT_14(a, ...)                                                                         cmocka_unit_test(a), HM_UT_13(__VA_ARGS__)
#define HM_UT_15(a, ...)                                                                         cmocka_unit_test(a), HM_UT_14(__VA_ARGS__)
#define HM_UT_16(a, ...)                                                                         cmocka_unit_test(a), HM_UT_15(__VA_ARGS__)
#define HM_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, ...) N
#define HM_NARGS(...)                                                                            HM_NARGS_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define HM_CAT_(a, b)                                                                            a##b
#define HM_CAT(a, b)                                                                             HM_CAT_(a, b)
#define HM_TEST_MAIN_OF(...)                                                                        \
  static const struct CMUnitTest hm_tests[] = {HM_CAT(HM_UT_, HM_NARGS(__VA_ARGS__))(__VA_ARGS__)}; \
  HM_TEST_MAIN(hm_tests)

/* Loads golden fixture_<model>_<mol>.safetensors (kept open in *fx) and its structure as a system. */
static inline void hm_load_fixture(const char *model, const char *mol, HMSafetensors *fx, HMSystem *sys)
{
  char                path[PETSC_MAX_PATH_LEN], name[64];
  const HMTensorInfo *zi;
  const PetscInt64   *z64;
  const double       *pos;
  PetscInt64          shp[2] = {-1, 3};
  int                *Z;
  PetscInt            n;

  snprintf(name, sizeof(name), "fixture_%s_%s.safetensors", model, mol);
  hm_golden_path(name, path, sizeof(path));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, fx));
  HM_T(HMSafetensorsGetInfo(*fx, "atomic_numbers", HM_DTYPE_I64, &zi));
  n      = (PetscInt)zi->numel;
  z64    = (const PetscInt64 *)zi->data;
  shp[0] = n;
  HM_T(HMSafetensorsGetF64(*fx, "positions", 2, shp, &pos));
  Z = malloc(sizeof(int) * (size_t)n);
  for (PetscInt i = 0; i < n; i++) Z[i] = (int)z64[i];
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, NULL, NULL, sys));
  free(Z);
}

/* The fixture's Hessian edge list as senders, receivers and edge vectors r - s
   (malloc'd, caller frees); returns the edge count. */
static inline PetscInt hm_fixture_edges(HMSafetensors fx, HMSystem sys, PetscInt **snd, PetscInt **rcv, double **vec)
{
  const HMTensorInfo *hei;
  const PetscInt64   *ei;
  const double       *pos;
  PetscInt            Eh;
  HM_T(HMSafetensorsGetInfo(fx, "hessian_edge_index", HM_DTYPE_I64, &hei));
  Eh = (PetscInt)hei->shape[1];
  ei = (const PetscInt64 *)hei->data;
  HM_T(HMSystemGetPositions(sys, &pos));
  *snd = malloc(sizeof(PetscInt) * (size_t)(Eh + 1));
  *rcv = malloc(sizeof(PetscInt) * (size_t)(Eh + 1));
  *vec = malloc(sizeof(double) * 3 * (size_t)(Eh + 1));
  for (PetscInt e = 0; e < Eh; e++) {
    (*snd)[e] = (PetscInt)ei[e];
    (*rcv)[e] = (PetscInt)ei[Eh + e];
    for (int a = 0; a < 3; a++) (*vec)[3 * e + a] = pos[3 * ei[Eh + e] + a] - pos[3 * ei[e] + a];
  }
  return Eh;
}

/* ierr = call, run under PETSc's return-error handler (no trace printed); the call must fail: if it
   succeeds, `cleanup` releases what it made and the test fails with the printf-style message. */
#define HM_MUST_FAIL(ierr, call, cleanup, ...)            \
  do {                                                    \
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL); \
    (ierr) = (call);                                      \
    PetscPopErrorHandler();                               \
    if (!(ierr)) {                                        \
      cleanup;                                            \
      fail_msg(__VA_ARGS__);                              \
    }                                                     \
  } while (0)

/* HMSystemLoad(path) must fail and leave no system; returns PETSc's error code (for the message). */
static inline PetscErrorCode hm_system_load_fails(const char *path, const char *want)
{
  HMSystem       sys = NULL;
  PetscErrorCode ierr;

  HM_MUST_FAIL(ierr, HMSystemLoad(PETSC_COMM_SELF, path, &sys), HMSystemDestroy(&sys), "HMSystemLoad(%s) succeeded but should fail with '%s'", path, want);
  assert_null(sys);
  return ierr;
}

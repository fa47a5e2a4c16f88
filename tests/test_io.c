/* io module: safetensors reader (golden model + corrupted files), element table, XYZ reader/writer. */
#define HM_SCRATCH_TAG "io"
#include "hmscratch.h"

#include <dirent.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include <hipmace/io.h>

/* ---- reading back the files the tests write ---- */

static void *read_bytes(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  char *buf;
  long  n;

  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  assert_non_null(buf = malloc((size_t)n + 1));
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = '\0'; /* callers use string functions on text files */
  *len   = (size_t)n;
  return buf;
}

/* PETSc's message of the failed call must contain `want` (NULL: any message). */
static void check_message(PetscErrorCode ierr, const char *what, const char *want)
{
  const char *text;
  char       *msg = NULL;

  PetscErrorMessage(ierr, &text, &msg);
  if (want && (!msg || !strstr(msg, want))) fail_msg("%s: error message '%s' does not contain '%s'", what, msg ? msg : "(null)", want);
}

/* `call` must fail, its message containing `want` (`what` names the case). */
#define EXPECT_CALL_FAIL(what, call, want)                                               \
  do {                                                                                   \
    PetscErrorCode ierr_;                                                                \
    HM_MUST_FAIL(ierr_, call, (void)0, "%s: %s succeeded but should fail", what, #call); \
    check_message(ierr_, what, want);                                                    \
  } while (0)

static void expect_open_fail(const char *path, const char *want)
{
  HMSafetensors  st = NULL;
  PetscErrorCode ierr;

  HM_MUST_FAIL(ierr, HMSafetensorsOpen(PETSC_COMM_SELF, path, &st), HMSafetensorsClose(&st), "HMSafetensorsOpen(%s) succeeded but should fail with '%s'", path, want);
  assert_null(st);
  check_message(ierr, path, want);
}

static void expect_load_fail(const char *path, const char *want)
{
  check_message(hm_system_load_fails(path, want), path, want);
}

/* ---- safetensors ---- */

static void test_safetensors_model(void **state)
{
  const PetscInt64    wshape[2] = {8, 16}, zshape[1] = {5}, bad[1] = {256}, any[2] = {-1, 16};
  char                path[PETSC_MAX_PATH_LEN];
  HMSafetensors       st;
  const HMTensorInfo *t, *prev = NULL;
  const double       *w;
  const PetscInt64   *z;
  const char         *fmt, *cfg, *p;
  PetscInt            nt;
  json_t             *config;
  json_error_t        jerr;

  (void)state;
  hm_golden_path("model_small.safetensors", path, sizeof(path));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &st));
  HM_T(HMSafetensorsGetPath(st, &p));
  assert_string_equal(p, path);
  HM_T(HMSafetensorsGetNumTensors(st, &nt));
  assert_int_equal(nt, 159);
  for (PetscInt i = 0; i < nt; i++) {
    HM_T(HMSafetensorsGetTensorByIndex(st, i, &t));
    if (prev) assert_true(strcmp(prev->name, t->name) < 0); /* sorted, no duplicates */
    assert_true(t->numel == 0 || ((uintptr_t)t->data % 8 == 0 && t->data));
    prev = t;
  }

  HM_T(HMSafetensorsGetF64(st, "interactions.0.conv_tp_weights.layer0.weight", 2, wshape, &w));
  HM_T(HMSafetensorsFind(st, "interactions.0.conv_tp_weights.layer0.weight", &t));
  assert_non_null(t);
  assert_int_equal(t->dtype, HM_DTYPE_F64);
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 8);
  assert_int_equal(t->shape[1], 16);
  assert_int_equal(t->numel, 128);
  assert_ptr_equal(t->data, w);
  for (int i = 0; i < 128; i++) assert_true(isfinite(w[i]));
  HM_T(HMSafetensorsGetF64(st, "interactions.0.conv_tp_weights.layer0.weight", 2, any, &w));

  HM_T(HMSafetensorsGetI64(st, "atomic_numbers", 1, zshape, &z));
  assert_int_equal(z[0], 1);
  assert_int_equal(z[1], 6);
  assert_int_equal(z[2], 7);
  assert_int_equal(z[3], 8);
  assert_int_equal(z[4], 9);

  HM_T(HMSafetensorsGetMetadata(st, "format", &fmt));
  assert_non_null(fmt);
  assert_string_equal(fmt, "hip-mace-safetensors-1");
  HM_T(HMSafetensorsGetMetadata(st, "no such key", &fmt));
  assert_null(fmt);
  HM_T(HMSafetensorsGetMetadata(st, "config", &cfg));
  assert_non_null(cfg);
  config = json_loads(cfg, 0, &jerr);
  if (!config) fail_msg("config is not JSON: %s", jerr.text);
  assert_true(json_is_object(config));
  assert_true(json_number_value(json_object_get(config, "r_max")) == 5.0);
  json_decref(config);

  HM_T(HMSafetensorsFind(st, "no.such.tensor", &t));
  assert_null(t);

  /* wrong shape, wrong dtype, missing tensor: the message names file and tensor */
  EXPECT_CALL_FAIL("dtype", HMSafetensorsGetF64(st, "atomic_numbers", 1, zshape, &w), "tensor 'atomic_numbers' has dtype I64 but F64 was expected");
  EXPECT_CALL_FAIL("shape", HMSafetensorsGetI64(st, "atomic_numbers", 1, bad, &z), "model_small.safetensors: tensor 'atomic_numbers' has shape [5] but [256] was expected");
  EXPECT_CALL_FAIL("rank", HMSafetensorsGetF64(st, "interactions.0.conv_tp_weights.layer0.weight", 1, bad, &w), "has shape [8, 16] but [256] was expected");
  EXPECT_CALL_FAIL("missing", HMSafetensorsGetF64(st, "missing", 1, bad, &w), "tensor 'missing' not found");
  HM_T(HMSafetensorsClose(&st));
  assert_null(st);
  HM_T(HMSafetensorsClose(&st)); /* closing NULL is a no-op */
}

/* Builds a safetensors file from a header and a data section; pad the header with spaces to a
   multiple of 8 as the format's writers do unless `pad` is false. */
static const char *write_st(const char *name, const char *header, const void *data, size_t datalen, PetscBool pad)
{
  size_t         hlen = strlen(header), plen = pad ? (hlen + 7) / 8 * 8 : hlen;
  unsigned char *buf = calloc(1, 8 + plen + datalen + 1);
  const char    *path;

  assert_non_null(buf);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)plen >> (8 * i));
  memcpy(buf + 8, header, hlen);
  memset(buf + 8 + hlen, ' ', plen - hlen);
  if (datalen) memcpy(buf + 8 + plen, data, datalen);
  path = write_bytes(name, buf, 8 + plen + datalen);
  free(buf);
  return path;
}

static void test_safetensors_synthetic(void **state)
{
  union {
    double     f[8];
    PetscInt64 i[8];
  } data;
  const char         *hdr    = "{\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[32,56]},"
                               "\"a\":{\"dtype\":\"F64\",\"shape\":[2,2],\"data_offsets\":[0,32]},"
                               "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[56,64]},"
                               "\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[64,64]},"
                               "\"__metadata__\":{\"k\":\"v\"}}";
  const PetscInt64    s22[2] = {2, 2}, s3[1] = {3}, s0[1] = {0};
  HMSafetensors       st;
  const HMTensorInfo *t;
  const double       *a, *sc, *e;
  const PetscInt64   *b;
  const char         *v;
  PetscInt            nt;

  (void)state;
  data.f[0] = 1, data.f[1] = 2, data.f[2] = 3, data.f[3] = 4;
  data.i[4] = -1, data.i[5] = 0, data.i[6] = 7;
  data.f[7] = 2.5;
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, write_st("ok.safetensors", hdr, &data, 64, PETSC_TRUE), &st));
  HM_T(HMSafetensorsGetNumTensors(st, &nt));
  assert_int_equal(nt, 4);
  {
    const char *order[] = {"a", "b", "e", "s"};

    for (PetscInt i = 0; i < 4; i++) {
      HM_T(HMSafetensorsGetTensorByIndex(st, i, &t));
      assert_string_equal(t->name, order[i]);
    }
  }
  HM_T(HMSafetensorsGetF64(st, "a", 2, s22, &a));
  assert_true(a[0] == 1 && a[1] == 2 && a[2] == 3 && a[3] == 4);
  HM_T(HMSafetensorsGetI64(st, "b", 1, s3, &b));
  assert_true(b[0] == -1 && b[1] == 0 && b[2] == 7);
  HM_T(HMSafetensorsGetF64(st, "s", 0, NULL, &sc));
  assert_true(*sc == 2.5);
  HM_T(HMSafetensorsGetF64(st, "e", 1, s0, &e));
  assert_null(e);
  HM_T(HMSafetensorsGetInfo(st, "e", HM_DTYPE_F64, &t));
  assert_int_equal(t->numel, 0);
  HM_T(HMSafetensorsGetMetadata(st, "k", &v));
  assert_string_equal(v, "v");
  HM_T(HMSafetensorsClose(&st));

  /* a file without __metadata__ has no metadata */
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, write_st("nometa.safetensors", "{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", &data, 8, PETSC_TRUE), &st));
  HM_T(HMSafetensorsGetMetadata(st, "k", &v));
  assert_null(v);
  HM_T(HMSafetensorsClose(&st));

  /* malformed containers: each must fail, naming what is wrong */
  {
    static const struct {
      const char *header, *want;
      size_t      datalen;
      PetscBool   pad;
    } bad[] = {
        {"{not json",                                                                                                                          "header is not valid JSON",                                 64, PETSC_TRUE },
        {"[1,2]",                                                                                                                              "header is not a JSON object",                              64, PETSC_TRUE },
        {"{\"x\":5}",                                                                                                                          "tensor 'x': header entry is not a JSON object",            64, PETSC_TRUE },
        {"{\"x\":{\"shape\":[1],\"data_offsets\":[0,8]}}",                                                                                     "tensor 'x' has no dtype",                                  64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,8]}}",                                                                         "dtype is not a string",                                    64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",                                                                   "F32 not supported",                                        64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,8]}}",                                                                    "unknown dtype 'Q7'",                                       64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[-2],\"data_offsets\":[0,8]}}",                                                                  "shape entry 0 is not a non-negative integer",              64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[2.5],\"data_offsets\":[0,8]}}",                                                                 "shape entry 0",                                            64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":\"2\",\"data_offsets\":[0,8]}}",                                                                 "shape is missing or not an array",                         64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",                                               "overflows",                                                64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,8]}}",                                                   "9 dimensions",                                             64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8,16]}}",                                                                "data_offsets is not an array of 2 integers",               64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,\"8\"]}}",                                                               "data_offsets are not non-negative integers",               64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,8]}}",                                                                  "begin after end",                                          64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[100],\"data_offsets\":[0,800]}}",                                                               "tensor 'x': data_offsets end 800 beyond the data section", 64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,32]}}",                                                                  "need 24",                                                  64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}",                                                                  "not a multiple of 8",                                      64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}} ",                                                                  "not 8-byte aligned",                                       64, PETSC_FALSE}, /* 55-byte header */
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,32]},\"y\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]}}", "tensor 'y' overlaps tensor 'x'",                           64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}",   "duplicate",                                                64, PETSC_TRUE },
        {"{\"__metadata__\":{\"k\":1}}",                                                                                                       "__metadata__ value 'k' is not a string",                   64, PETSC_TRUE },
        {"{\"__metadata__\":[\"k\"]}",                                                                                                         "__metadata__ is not a JSON object",                        64, PETSC_TRUE },
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",                                                                   "beyond the data section",                                  4,  PETSC_TRUE },
    };
    char name[64];

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
      snprintf(name, sizeof(name), "bad%02d.safetensors", (int)k);
      expect_open_fail(write_st(name, bad[k].header, &data, bad[k].datalen, bad[k].pad), bad[k].want);
    }
  }
  {
    /* length field beyond the file, file shorter than the length field, no file, a folder */
    unsigned char buf[24] = {0};

    buf[0] = 0x40, buf[1] = 0x42, buf[2] = 0x0f; /* 1000000 */
    memcpy(buf + 8, "{}      ", 8);
    expect_open_fail(write_bytes("hugelen.safetensors", buf, sizeof(buf)), "header length 1000000 exceeds the file size");
    expect_open_fail(write_bytes("short.safetensors", buf, 5), "shorter than the 8-byte header length");
    expect_open_fail(write_bytes("empty.safetensors", buf, 0), "shorter than the 8-byte header length");
    expect_open_fail(tmp_path("does-not-exist.safetensors"), "cannot open");
    expect_open_fail(hm_scratch_dir, "not a regular file");
  }
}

/* Corrupted copies of the real model file. */
static void test_safetensors_corrupt_model(void **state)
{
  char           path[PETSC_MAX_PATH_LEN];
  size_t         len;
  unsigned char *buf;
  uint64_t       hlen = 0;

  (void)state;
  hm_golden_path("model_small.safetensors", path, sizeof(path));
  buf = read_bytes(path, &len);
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
  assert_true(hlen < len);

  /* truncated inside the data section: some tensor ends beyond it */
  expect_open_fail(write_bytes("trunc_data.safetensors", buf, (size_t)hlen + 8 + 1000), "beyond the data section");
  /* truncated inside the header */
  expect_open_fail(write_bytes("trunc_header.safetensors", buf, (size_t)hlen / 2), "exceeds the file size");
  /* length field one larger than the file allows */
  {
    uint64_t big = (uint64_t)len - 7;

    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(big >> (8 * i));
    expect_open_fail(write_bytes("bad_len.safetensors", buf, len), "exceeds the file size");
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
  }
  /* header bytes replaced: no longer JSON */
  buf[8] = '#';
  expect_open_fail(write_bytes("not_json.safetensors", buf, len), "header is not valid JSON");
  buf[8] = '{';
  /* a dtype changed in place: F64 -> F32 */
  {
    char *hdr = (char *)buf + 8, *f64, last = hdr[hlen - 1];

    hdr[hlen - 1] = '\0'; /* terminate the header for strstr; the last byte is not part of a dtype */
    f64           = strstr(hdr, "\"F64\"");
    assert_non_null(f64);
    hdr[hlen - 1] = last;
    memcpy(f64, "\"F32\"", 5);
    expect_open_fail(write_bytes("f32.safetensors", buf, len), "F32 not supported");
    memcpy(f64, "\"F64\"", 5);
  }
  /* the unmodified copy opens, so the failures above come from the corruptions */
  {
    HMSafetensors st;

    HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, write_bytes("copy.safetensors", buf, len), &st));
    HM_T(HMSafetensorsClose(&st));
  }
  free(buf);
}

/* ---- elements ---- */

static void test_elements(void **state)
{
  (void)state;
  assert_int_equal(HMElementFromSymbol("H"), 1);
  assert_int_equal(HMElementFromSymbol("C"), 6);
  assert_int_equal(HMElementFromSymbol("Cl"), 17);
  assert_int_equal(HMElementFromSymbol("CL"), 17);
  assert_int_equal(HMElementFromSymbol("cl"), 17);
  assert_int_equal(HMElementFromSymbol("Fe"), 26);
  assert_int_equal(HMElementFromSymbol("Rn"), 86);
  assert_int_equal(HMElementFromSymbol("Xx"), 0);
  assert_int_equal(HMElementFromSymbol("Fr"), 0); /* beyond HM_MAX_Z */
  assert_int_equal(HMElementFromSymbol(""), 0);
  assert_int_equal(HMElementFromSymbol("Cll"), 0);
  assert_int_equal(HMElementFromSymbol(NULL), 0);
  assert_string_equal(HMElementSymbol(8), "O");
  assert_string_equal(HMElementSymbol(53), "I");
  assert_string_equal(HMElementSymbol(0), "X");
  assert_string_equal(HMElementSymbol(87), "X");
  /* IUPAC abridged / conventional values */
  assert_true(HMElementMass(1) == 1.008);
  assert_true(HMElementMass(6) == 12.011);
  assert_true(HMElementMass(7) == 14.007);
  assert_true(HMElementMass(8) == 15.999);
  assert_true(HMElementMass(9) == 18.998);
  assert_true(HMElementMass(17) == 35.45);
  assert_true(HMElementMass(26) == 55.845);
  assert_true(HMElementMass(79) == 196.97);
  assert_true(HMElementMass(86) == 222.0);
  assert_true(HMElementMass(0) == 0.0);
  assert_true(HMElementMass(87) == 0.0);
  for (int Z = 1; Z <= HM_MAX_Z; Z++) {
    /* every symbol round-trips; weights lie between Z and 2.7 Z amu for H .. Rn */
    assert_int_equal(HMElementFromSymbol(HMElementSymbol(Z)), Z);
    assert_true(HMElementMass(Z) >= Z && HMElementMass(Z) <= 2.7 * Z);
  }
}

/* ---- XYZ ---- */

static void test_xyz_golden(void **state)
{
  static const char *const mols[] = {"mol08", "mol09", "mol11", "mol13", "mol21"};

  (void)state;
  for (size_t k = 0; k < sizeof(mols) / sizeof(mols[0]); k++) {
    char                xyz[PETSC_MAX_PATH_LEN], fx[PETSC_MAX_PATH_LEN], name[64];
    HMSystem            sys;
    HMSafetensors       st;
    PetscInt            n;
    const int          *Z;
    const double       *pos, *ref, *m;
    const PetscInt64   *zref;
    const HMTensorInfo *info;
    const char         *src;
    PetscBool           hascell, pbc[3];
    double              cell[9];

    snprintf(name, sizeof(name), "%s.xyz", mols[k]);
    hm_golden_path(name, xyz, sizeof(xyz));
    snprintf(name, sizeof(name), "fixture_small_%s.safetensors", mols[k]);
    hm_golden_path(name, fx, sizeof(fx));
    HM_T(HMSystemLoad(PETSC_COMM_SELF, xyz, &sys));
    HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, fx, &st));
    HM_T(HMSafetensorsGetInfo(st, "atomic_numbers", HM_DTYPE_I64, &info));
    HM_T(HMSystemGetSize(sys, &n));
    assert_int_equal(n, info->shape[0]);
    zref = info->data;
    {
      const PetscInt64 shp[2] = {n, 3};

      HM_T(HMSafetensorsGetF64(st, "positions", 2, shp, &ref));
    }
    HM_T(HMSystemGetAtomicNumbers(sys, &Z));
    HM_T(HMSystemGetPositions(sys, &pos));
    HM_T(HMSystemGetMasses(sys, &m));
    for (PetscInt i = 0; i < n; i++) {
      assert_int_equal(Z[i], zref[i]);
      assert_true(m[i] == HMElementMass(Z[i])); /* no masses column: standard weights */
    }
    /* 1e-7: the structure files may carry positions rounded to 8 decimals */
    assert_true(hm_max_abs_diff(3 * n, pos, ref) < 1e-7);
    HM_T(HMSystemGetCell(sys, &hascell, cell, pbc));
    assert_false(hascell);
    assert_false(pbc[0] || pbc[1] || pbc[2]);
    assert_true(hm_max_abs(9, cell) == 0);
    HM_T(HMSystemGetSource(sys, &src));
    assert_string_equal(src, xyz);
    HM_T(HMSafetensorsClose(&st));
    HM_T(HMSystemDestroy(&sys));
    assert_null(sys);
  }
}

static void assert_systems_identical(HMSystem a, HMSystem b)
{
  PetscInt      na, nb;
  const int    *Za, *Zb;
  const double *pa, *pb, *ma, *mb;
  PetscBool     ha, hb, pbca[3], pbcb[3];
  double        ca[9], cb[9];

  HM_T(HMSystemGetSize(a, &na));
  HM_T(HMSystemGetSize(b, &nb));
  assert_int_equal(na, nb);
  HM_T(HMSystemGetAtomicNumbers(a, &Za));
  HM_T(HMSystemGetAtomicNumbers(b, &Zb));
  assert_memory_equal(Za, Zb, (size_t)na * sizeof(int));
  HM_T(HMSystemGetPositions(a, &pa));
  HM_T(HMSystemGetPositions(b, &pb));
  assert_memory_equal(pa, pb, 3 * (size_t)na * sizeof(double)); /* bit-exact */
  HM_T(HMSystemGetMasses(a, &ma));
  HM_T(HMSystemGetMasses(b, &mb));
  assert_memory_equal(ma, mb, (size_t)na * sizeof(double));
  HM_T(HMSystemGetCell(a, &ha, ca, pbca));
  HM_T(HMSystemGetCell(b, &hb, cb, pbcb));
  assert_int_equal(ha, hb);
  assert_memory_equal(ca, cb, sizeof(ca));
  for (int d = 0; d < 3; d++) assert_int_equal(pbca[d], pbcb[d]);
}

static void test_xyz_extended(void **state)
{
  const char   *text       = "3\n"
                             "Lattice=\"5.0 0.0 0.0 1.0 6.0 0.0 0.5 0.5 7.0\" Properties=species:S:1:pos:R:3:masses:R:1:forces:R:3:tag:I:1 pbc=\"T T F\" energy=-1.5 note=\"free text, with = signs\" flag\n"
                             "C   0.1 0.2 0.3   12.5  0 0 0  1\n"
                             "CL  1.0 2.0 3.0   35.0  1 1 1  2\r\n"
                             "h   4.0 5.0 -6.0e-1 2.014 0 0 0 3\n"
                             "2\n"
                             "second frame, ignored\n";
  const double  cellref[9] = {5, 0, 0, 1, 6, 0, 0.5, 0.5, 7};
  HMSystem      sys, back;
  PetscInt      n;
  const int    *Z;
  const double *pos, *m;
  PetscBool     hascell, pbc[3];
  double        cell[9];
  const char   *out, *out2;
  size_t        len1, len2;
  char         *b1, *b2, tmpname[PETSC_MAX_PATH_LEN];

  (void)state;
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("ext.xyz", text), &sys));
  HM_T(HMSystemGetSize(sys, &n));
  assert_int_equal(n, 3);
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  assert_int_equal(Z[0], 6);
  assert_int_equal(Z[1], 17);
  assert_int_equal(Z[2], 1);
  HM_T(HMSystemGetPositions(sys, &pos));
  assert_true(pos[0] == 0.1 && pos[4] == 2.0 && pos[8] == -0.6);
  HM_T(HMSystemGetMasses(sys, &m));
  assert_true(m[0] == 12.5 && m[1] == 35.0 && m[2] == 2.014);
  HM_T(HMSystemGetCell(sys, &hascell, cell, pbc));
  assert_true(hascell);
  assert_memory_equal(cell, cellref, sizeof(cell));
  assert_true(pbc[0] && pbc[1] && !pbc[2]);

  /* write, read back: bit-exact; writing the re-read system gives the same bytes */
  out = tmp_path("ext_out.xyz");
  HM_T(HMSystemWriteXYZ(sys, out));
  snprintf(tmpname, sizeof(tmpname), "%s.tmp.%ld", out, (long)getpid());
  assert_int_not_equal(access(tmpname, F_OK), 0); /* the temporary file was renamed */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, out, &back));
  assert_systems_identical(sys, back);
  out2 = tmp_path("ext_out2.xyz");
  HM_T(HMSystemWriteXYZ(back, out2));
  b1 = read_bytes(out, &len1);
  b2 = read_bytes(out2, &len2);
  assert_int_equal(len1, len2);
  assert_memory_equal(b1, b2, len1);
  assert_non_null(strstr(b1, "masses:R:1"));
  assert_non_null(strstr(b1, "pbc=\"T T F\""));
  free(b1);
  free(b2);
  HM_T(HMSystemDestroy(&back));
  HM_T(HMSystemDestroy(&sys));

  /* writing into a missing folder fails and leaves nothing behind */
  {
    const int      z1    = 1;
    const double   x1[3] = {0, 0, 0};
    PetscErrorCode ierr;
    char           bad[PETSC_MAX_PATH_LEN];

    HM_T(HMSystemCreate(PETSC_COMM_SELF, 1, &z1, x1, NULL, NULL, &sys));
    snprintf(bad, sizeof(bad), "%s/no-such-dir/out.xyz", hm_scratch_dir);
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    ierr = HMSystemWriteXYZ(sys, bad);
    PetscPopErrorHandler();
    assert_int_not_equal(ierr, 0);
    check_message(ierr, "write", "cannot write");
    HM_T(HMSystemDestroy(&sys));
  }
}

/* Arbitrary doubles (random mantissas, tiny, huge, negative zero) survive %.17g exactly. */
/* A round trip writes positions outside the cell and reads them back unchanged: no wrapping. */
static void test_xyz_roundtrip(void **state)
{
  enum { N = 50 };
  int             Z[N];
  double          pos[3 * N], mass[N];
  const double    cell[9] = {10.123456789012345, 0.1, -0.2, 1.0 / 3.0, 11.0, 0.0, 0.25, -1e-17, 12.5};
  const PetscBool pbc[3]  = {PETSC_TRUE, PETSC_FALSE, PETSC_TRUE};
  uint64_t        x       = 88172645463325252ULL;
  HMSystem        sys, back;

  (void)state;
  for (int i = 0; i < N; i++) {
    Z[i] = 1 + i % HM_MAX_Z;
    for (int d = 0; d < 3; d++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      pos[3 * i + d] = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 40.0;
    }
    mass[i] = HMElementMass(Z[i]) * (1 + 1e-3 * (double)(x % 1000) / 7.0);
  }
  pos[0] = -0.0, pos[1] = 5e-324, pos[2] = 1.7976931348623157e308;
  pos[3] = 1e-300, pos[4] = -123456789.123456789, pos[5] = 0.1;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, N, Z, pos, cell, pbc, &sys));
  HM_T(HMSystemSetMasses(sys, mass));
  HM_T(HMSystemWriteXYZ(sys, tmp_path("rt.xyz")));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, tmp_path("rt.xyz"), &back));
  assert_systems_identical(sys, back);
  HM_T(HMSystemDestroy(&back));
  HM_T(HMSystemDestroy(&sys));

  /* without a cell or explicit masses: plain Properties, no Lattice, standard weights back */
  HM_T(HMSystemCreate(PETSC_COMM_SELF, N, Z, pos, NULL, NULL, &sys));
  HM_T(HMSystemWriteXYZ(sys, tmp_path("rt2.xyz")));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, tmp_path("rt2.xyz"), &back));
  assert_systems_identical(sys, back);
  {
    size_t len;
    char  *b = read_bytes(tmp_path("rt2.xyz"), &len);

    assert_null(strstr(b, "Lattice"));
    assert_null(strstr(b, "masses"));
    free(b);
  }
  HM_T(HMSystemDestroy(&back));
  HM_T(HMSystemDestroy(&sys));
}

static void test_xyz_variants(void **state)
{
  HMSystem      sys;
  const int    *Z;
  PetscBool     hascell, pbc[3];
  const double *pos;
  PetscInt      n;

  (void)state;
  /* atomic numbers in the species column; extra columns ignored in plain XYZ; blank-padded count */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("v1.xyz", "  2  \nplain comment\n8 0 0 0 extra\n1 0 0 0.97\n"), &sys));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  assert_int_equal(Z[0], 8);
  assert_int_equal(Z[1], 1);
  HM_T(HMSystemDestroy(&sys));
  /* Z column instead of species; Lattice without pbc means periodic in 3D */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("v2.xyz", "1\nProperties=pos:R:3:Z:I:1 Lattice=\"3 0 0 0 3 0 0 0 3\"\n0.5 0.5 0.5 26\n"), &sys));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  assert_int_equal(Z[0], 26);
  HM_T(HMSystemGetPositions(sys, &pos));
  assert_true(pos[0] == 0.5 && pos[2] == 0.5);
  HM_T(HMSystemGetCell(sys, &hascell, NULL, pbc));
  assert_true(hascell && pbc[0] && pbc[1] && pbc[2]);
  HM_T(HMSystemDestroy(&sys));
  /* pbc spelled True/False/1, lower-case keys; no newline at the end of the file */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("v3.xyz", "1\nlattice=\"3 0 0 0 3 0 0 0 3\" PBC=\"True False 1\"\nHe 1 1 1"), &sys));
  HM_T(HMSystemGetCell(sys, &hascell, NULL, pbc));
  assert_true(hascell && pbc[0] && !pbc[1] && pbc[2]);
  HM_T(HMSystemGetSize(sys, &n));
  assert_int_equal(n, 1);
  HM_T(HMSystemDestroy(&sys));
  /* pbc all false without a Lattice is an open system */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("v4.xyz", "1\npbc=\"F F F\"\nNe 0 0 0\n"), &sys));
  HM_T(HMSystemGetCell(sys, &hascell, NULL, pbc));
  assert_false(hascell);
  HM_T(HMSystemDestroy(&sys));
}

static void test_xyz_malformed(void **state)
{
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"",                                                                          ":1: empty file"                                           },
      {"abc\n\nH 0 0 0\n",                                                          ":1: 'abc' is not an atom count"                           },
      {"3 atoms\n\nH 0 0 0\n",                                                      ":1: '3 atoms' is not an atom count"                       },
      {"0\n\n",                                                                     ":1: atom count 0 must be positive"                        },
      {"-2\n\nH 0 0 0\n",                                                           ":1: '-2' is not an atom count"                            },
      {"2.5\n\nH 0 0 0\n",                                                          ":1: '2.5' is not an atom count"                           },
      {"1\n",                                                                       ":2: missing comment line"                                 },
      {"3\n\nH 0 0 0\nH 0 0 1\n",                                                   "file ends after 2 atom lines but line 1 announces 3 atoms"},
      {"99999999999\n\nH 0 0 0\n",                                                  ":1: atom count 99999999999 is too large"                  },
      {"2\n\nXx 0 0 0\nH 0 0 1\n",                                                  ":3: unknown element symbol 'Xx'"                          },
      {"2\n\nH 0 0 0\nH 0 1.0abc 1\n",                                              ":4: coordinate '1.0abc' is not a finite number"           },
      {"1\n\nH nan 0 0\n",                                                          ":3: coordinate 'nan' is not a finite number"              },
      {"1\n\nH 0 -inf 0\n",                                                         ":3: coordinate '-inf' is not a finite number"             },
      {"1\n\nH 0 0 1e999\n",                                                        ":3: coordinate '1e999' is not a finite number"            },
      {"1\n\nH 0 0\n",                                                              ":3: expected 'symbol x y z', found 3 column(s)"           },
      {"2\n\nH 0 0 0\n\nH 0 0 1\n",                                                 ":4: blank line where atom 2 of 2 was expected"            },
      {"1\n\n0 0 0 0\n",                                                            ":3: atomic number '0' is not in 1..86"                    },
      {"1\n\n200 0 0 0\n",                                                          ":3: atomic number '200' is not in 1..86"                  },
      {"1\nProperties=species:S:1:pos:R:3:masses:R:1\nH 0 0 0 -1.0\n",              ":3: mass -1.0 must be positive"                           },
      {"1\nProperties=species:S:1:pos:R:3:masses:R:1\nH 0 0 0 0\n",                 ":3: mass 0 must be positive"                              },
      {"1\nProperties=species:S:1:pos:R:3:masses:R:1\nH 0 0 0 heavy\n",             ":3: mass 'heavy' is not a finite number"                  },
      {"1\nProperties=species:S:1:pos:R:3\nH 0 0 0 7\n",                            ":3: 5 columns but Properties declares 4"                  },
      {"1\nProperties=species:S:1:masses:R:1\nH 1\n",                               ":2: Properties has no 'pos' (R:3) column"                 },
      {"1\nProperties=species:S:1:pos:R:2\nH 0 0\n",                                ":2: property 'pos' must be R:3, found R:2"                },
      {"1\nProperties=species:S:1:pos:R\nH 0 0 0\n",                                ":2: Properties must be name:type:count triples"           },
      {"1\nProperties=species:S:1:pos:X:3\nH 0 0 0\n",                              ":2: property 'pos' has type 'X'"                          },
      {"1\nProperties=pos:R:3\n0 0 0\n",                                            ":2: Properties has no 'species' (S:1) or 'Z' (I:1) column"},
      {"1\npbc=\"T T T\"\nH 0 0 0\n",                                               ":2: pbc marks axis 0 periodic but no Lattice is given"    },
      {"1\npbc=\"T X T\"\nH 0 0 0\n",                                               ":2: pbc flag 'X' is not T/F/True/False/1/0"               },
      {"1\npbc=\"T T\"\nH 0 0 0\n",                                                 ":2: pbc needs 3 flags, found 2"                           },
      {"1\nLattice=\"1 0 0 0 1 0 0 0\"\nH 0 0 0\n",                                 ":2: Lattice needs 9 numbers, found 8"                     },
      {"1\nLattice=\"1 0 0 0 1 0 0 0 x\"\nH 0 0 0\n",                               ":2: Lattice entry 'x' is not a finite number"             },
      {"1\nLattice=\"1 0 0 2 0 0 0 0 1\"\nH 0 0 0\n",                               ":2: cell has zero volume"                                 },
      {"1\nLattice=\"1 0 0 0 1 0 0 0 -1\"\nH 0 0 0\n",                              ":2: cell is left-handed"                                  },
      {"1\nLattice=\"1 0 0 0 1 0 0 0 1\" Lattice=\"1 0 0 0 1 0 0 0 1\"\nH 0 0 0\n", ":2: Lattice given twice"                                  },
      {"1\n\nH 0 0 0\n\0\n",                                                        ":4: NUL byte"                                             },
  };
  char name[64];

  (void)state;
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    const char *path;
    char        want[PETSC_MAX_PATH_LEN + 128];

    snprintf(name, sizeof(name), "bad%02d.xyz", (int)k);
    /* the NUL case is written with its explicit length */
    path = strstr(bad[k].want, "NUL") ? write_bytes(name, bad[k].text, strlen(bad[k].text) + 2) : write_text(name, bad[k].text);
    if (bad[k].want[0] == ':') snprintf(want, sizeof(want), "%s%s", path, bad[k].want); /* file:line: message */
    else snprintf(want, sizeof(want), "%s", bad[k].want);
    expect_load_fail(path, want);
  }
  expect_load_fail(tmp_path("missing.xyz"), "cannot open");
}

static void test_system_create(void **state)
{
  const int       Z[2] = {1, 8}, Zbad[2] = {1, 0};
  const double    pos[6] = {0, 0, 0, 0, 0, 1}, nanpos[6] = {0, 0, 0, NAN, 0, 1};
  const double    cell[9] = {4, 0, 0, 0, 4, 0, 0, 0, 4}, left[9] = {0, 4, 0, 4, 0, 0, 0, 0, 4};
  const PetscBool pbc[3]  = {PETSC_TRUE, PETSC_TRUE, PETSC_FALSE};
  const double    badm[2] = {1.0, -2.0};
  HMSystem        sys     = NULL;
  const double   *m;
  const char     *src;
  PetscErrorCode  ierr;

  (void)state;
  HM_T(HMSystemCreate(PETSC_COMM_SELF, 2, Z, pos, cell, pbc, &sys));
  HM_T(HMSystemGetMasses(sys, &m));
  assert_true(m[0] == 1.008 && m[1] == 15.999);
  HM_T(HMSystemGetSource(sys, &src));
  assert_string_equal(src, "(memory)");
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = HMSystemSetMasses(sys, badm);
  PetscPopErrorHandler();
  assert_int_not_equal(ierr, 0);
  HM_T(HMSystemDestroy(&sys));

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  assert_int_not_equal(HMSystemCreate(PETSC_COMM_SELF, 2, Zbad, pos, NULL, NULL, &sys), 0);
  assert_int_not_equal(HMSystemCreate(PETSC_COMM_SELF, 2, Z, nanpos, NULL, NULL, &sys), 0);
  assert_int_not_equal(HMSystemCreate(PETSC_COMM_SELF, 0, Z, pos, NULL, NULL, &sys), 0);
  assert_int_not_equal(HMSystemCreate(PETSC_COMM_SELF, 2, Z, pos, NULL, pbc, &sys), 0);
  assert_int_not_equal(HMSystemCreate(PETSC_COMM_SELF, 2, Z, pos, left, pbc, &sys), 0);
  PetscPopErrorHandler();
  assert_null(sys);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_safetensors_model),
    cmocka_unit_test(test_safetensors_synthetic),
    cmocka_unit_test(test_safetensors_corrupt_model),
    cmocka_unit_test(test_elements),
    cmocka_unit_test(test_xyz_golden),
    cmocka_unit_test(test_xyz_extended),
    cmocka_unit_test_setup_teardown(test_xyz_roundtrip, hm_nowrap_setup, hm_nowrap_teardown),
    cmocka_unit_test(test_xyz_variants),
    cmocka_unit_test(test_xyz_malformed),
    cmocka_unit_test(test_system_create),
};

HM_TEST_MAIN(tests)

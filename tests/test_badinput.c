/* Bad inputs end the hipmace driver at once: non-zero exit, one error line naming the file and the
   line / tensor / field, no output file left behind, no hang (also under mpiexec); numerical guards. */
#include "hmtest.h"
#include "model/evalimpl.h"
#include <hipmace/model.h>
#include <jansson.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A hung run is a failure, not a stuck suite: every run is bounded by timeout(1). */
#define RUN_TIMEOUT 90

typedef struct {
  char dir[PETSC_MAX_PATH_LEN];
  char model[PETSC_MAX_PATH_LEN]; /* the bundled demo model, read-only */
  char err[8192];                 /* stderr of the last run */
} Case;

static const char *bin(void)
{
  const char *b = getenv("HIPMACE_BIN");
  return b ? b : "./drivers/hipmace";
}

static void write_text(Case *c, const char *name, const char *text)
{
  char  path[2 * PETSC_MAX_PATH_LEN];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", c->dir, name);
  f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

static void write_bytes(Case *c, const char *name, const unsigned char *b, size_t n)
{
  char  path[2 * PETSC_MAX_PATH_LEN];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", c->dir, name);
  f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(b, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static unsigned char *read_all(const char *path, size_t *n)
{
  FILE          *f = fopen(path, "rb");
  unsigned char *b;
  long           len;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  len = ftell(f);
  assert_true(len > 8);
  rewind(f);
  b = malloc((size_t)len);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

/* The demo molecule (17 atoms, H C N O) as XYZ lines, optionally after extra atom lines. */
static void good_xyz(char *buf, size_t len, const char *first_atoms, int nfirst)
{
  static const char *mol[] = {"C 2.5453 -1.0339 -0.6270", "C 1.6933 -1.7449 0.4101", "O 0.6457 -0.9404 0.9184", "C -0.3858 -0.4905 0.0682",
                              "C -1.1747 0.6286 0.7318", "N -2.3076 1.0533 -0.0735", "C 0.1770 0.0004 -1.2662", "O -0.4516 -0.0458 -2.3044",
                              "H 3.3436 -1.7027 -0.9640", "H 1.9640 -0.8164 -1.4940", "H 2.9743 -0.0968 -0.2492", "H 1.2554 -2.6700 0.0085",
                              "H 2.2704 -1.9858 1.3130", "H -1.0440 -1.3519 -0.1156", "H -0.5270 1.4961 0.9106", "H -1.5340 0.2795 1.7092",
                              "H -2.8232 1.7585 0.4430"};
  size_t             used  = (size_t)snprintf(buf, len, "%d\nmolecule\n%s", 17 + nfirst, first_atoms ? first_atoms : "");
  for (int i = 0; i < 17 && used < len; i++) used += (size_t)snprintf(buf + used, len - used, "%s\n", mol[i]);
}

static int case_setup(void **state)
{
  Case *c = calloc(1, sizeof(Case));
  char  xyz[4096];
  if (!c) return -1;
  snprintf(c->dir, sizeof(c->dir), "/tmp/hm_badinput_XXXXXX");
  if (!mkdtemp(c->dir)) return -1;
  hm_demo_model_path(c->model, sizeof(c->model));
  good_xyz(xyz, sizeof(xyz), NULL, 0);
  *state = c;
  write_text(c, "good.xyz", xyz);
  return 0;
}

static int case_teardown(void **state)
{
  Case *c = *state;
  char  cmd[3 * PETSC_MAX_PATH_LEN];
  /* chmod back first: a case may have made something unreadable */
  snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' && rm -rf '%s'", c->dir, c->dir);
  if (system(cmd)) return -1;
  free(c);
  return 0;
}

/* Open MPI and PMIx variables present before MPI_Init: the others belong to this test's own singleton
   MPI job and would make a nested mpiexec (or singleton) try to join it. */
extern char **environ;
static char   inherited[8192];

static int is_mpi_var(const char *e)
{
  return !strncmp(e, "OMPI_", 5) || !strncmp(e, "PMIX_", 5) || !strncmp(e, "OPAL_", 5);
}

/* inherited holds " NAME1 NAME2 ... " */
static void snapshot_mpi_env(void)
{
  size_t used = (size_t)snprintf(inherited, sizeof(inherited), " ");
  for (char **e = environ; *e; e++)
    if (is_mpi_var(*e)) {
      const size_t k = strcspn(*e, "=");
      if (used + k + 2 < sizeof(inherited)) {
        memcpy(inherited + used, *e, k);
        used += k;
        inherited[used++] = ' ';
        inherited[used]   = '\0';
      }
    }
}

/* "env -u A -u B ..." for the MPI variables this process gained in MPI_Init */
static void clean_env_prefix(char *buf, size_t len)
{
  size_t used = (size_t)snprintf(buf, len, "env");
  for (char **e = environ; *e && used < len; e++)
    if (is_mpi_var(*e)) {
      char         key[260];
      const size_t k = strcspn(*e, "=");
      if (k + 3 > sizeof(key)) continue;
      key[0] = ' ';
      memcpy(key + 1, *e, k);
      key[k + 1] = ' ';
      key[k + 2] = '\0';
      if (!strstr(inherited, key)) {
        key[k + 1] = '\0';
        used += (size_t)snprintf(buf + used, len - used, " -u%s", key);
      }
    }
}

/* Runs hipmace in the case folder on np ranks (0: no mpiexec) with the standard outputs requested, so
   that their absence afterwards can be checked. Returns the exit status; stderr is in c->err. */
static int run(Case *c, int np, const char *args)
{
  char        cmd[32768], path[2 * PETSC_MAX_PATH_LEN], launcher[PETSC_MAX_PATH_LEN + 128] = "", envp[8192];
  const char *mpiexec = getenv("HIPMACE_MPIEXEC");
  FILE       *f;
  size_t      n;
  int         st;

  clean_env_prefix(envp, sizeof(envp));
  if (np > 0) {
    assert_non_null(mpiexec);
    /* orte_execute_quiet: no Open MPI banner besides hipmace's own line when one rank aborts */
    snprintf(launcher, sizeof(launcher), "%s -n %d --oversubscribe", mpiexec, np);
  }
  snprintf(cmd, sizeof(cmd),
           "cd '%s' && %s OMPI_MCA_orte_execute_quiet=1 timeout -k 10 %d %s '%s' -summary s.json -hessian_view binary:H.bin -modes_molden m.molden %s > out.txt 2> err.txt",
           c->dir, envp, RUN_TIMEOUT, launcher, bin(), args);
  st = system(cmd);
  snprintf(path, sizeof(path), "%s/err.txt", c->dir);
  f = fopen(path, "r");
  assert_non_null(f);
  n         = fread(c->err, 1, sizeof(c->err) - 1, f);
  c->err[n] = '\0';
  fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void assert_no_tmp(Case *c)
{
  DIR           *d;
  struct dirent *e;
  d = opendir(c->dir);
  assert_non_null(d);
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) fail_msg("temporary file %s was left behind", e->d_name);
  closedir(d);
}

/* No result file (nor a temporary one) may be left for a failed run. */
static void assert_no_outputs(Case *c)
{
  static const char *outs[] = {"s.json", "H.bin", "H.bin.info", "m.molden"};
  char               path[2 * PETSC_MAX_PATH_LEN];
  for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++) {
    snprintf(path, sizeof(path), "%s/%s", c->dir, outs[k]);
    if (access(path, F_OK) == 0) fail_msg("output file %s was left behind", outs[k]);
  }
  assert_no_tmp(c);
}

/* The run failed (not by the timeout), printed exactly one line, "hipmace: error: ...", containing every
   string of want (NULL-terminated), and left no output behind. */
static void expect_error(Case *c, int np, const char *args, const char *const want[])
{
  const int   rc    = run(c, np, args);
  int         lines = 0;
  const char *line  = c->err;

  print_message("[%s] rc %d: %s", args, rc, c->err);
  assert_int_not_equal(rc, 0);
  if (rc == 124 || rc == 137) fail_msg("hipmace did not finish within %d s (hang)", RUN_TIMEOUT);
  for (const char *p = c->err; *p; p++)
    if (*p == '\n') lines++;
  if (c->err[0] && c->err[strlen(c->err) - 1] != '\n') lines++;
  if (lines != 1) fail_msg("expected one line on stderr, got %d:\n%s", lines, c->err);
  assert_non_null(strstr(line, "hipmace: error: "));
  for (int k = 0; want[k]; k++)
    if (!strstr(line, want[k])) fail_msg("the error line does not contain '%s':\n%s", want[k], line);
  assert_no_outputs(c);
}

#define EXPECT(c, np, args, ...)                     \
  do {                                               \
    const char *const want_[] = {__VA_ARGS__, NULL}; \
    expect_error((c), (np), (args), want_);          \
  } while (0)

/* expect_error for the run "-structure xyz -model <the demo model> extra" on np ranks. */
static void model_run_case(Case *c, int np, const char *xyz, const char *extra, const char *const want[])
{
  char args[3 * PETSC_MAX_PATH_LEN];
  snprintf(args, sizeof(args), "-structure %s -model '%s'%s%s", xyz, c->model, extra[0] ? " " : "", extra);
  expect_error(c, np, args, want);
}

#define EXPECT_RUN(c, np, xyz, extra, ...)            \
  do {                                                \
    const char *const want_[] = {__VA_ARGS__, NULL};  \
    model_run_case((c), (np), (xyz), (extra), want_); \
  } while (0)

/* ------------------------------------------------------------------ model files */

/* mutate the config JSON string inside __metadata__ */
static void with_config(json_t *h, void (*f)(json_t *cfg))
{
  json_t      *meta = json_object_get(h, "__metadata__");
  json_error_t je;
  json_t      *cfg = json_loads(json_string_value(json_object_get(meta, "config")), 0, &je);
  char        *s;
  assert_non_null(cfg);
  f(cfg);
  s = json_dumps(cfg, JSON_COMPACT);
  json_object_set_new(meta, "config", json_string(s));
  free(s);
  json_decref(cfg);
}

/* Copies the demo model with its header changed by mutate(header) and/or its config by cfg(config)
   (either may be NULL); the data section is unchanged, the new header is padded to a multiple of 8
   bytes so tensors stay aligned. */
static void model_variant(Case *c, const char *name, void (*mutate)(json_t *), void (*cfg)(json_t *))
{
  size_t         n, hlen = 0, nh, pad;
  unsigned char *b = read_all(c->model, &n), *out;
  json_error_t   je;
  json_t        *h;
  char          *text;
  for (int i = 0; i < 8; i++) hlen |= (size_t)b[i] << (8 * i);
  h = json_loadb((const char *)b + 8, hlen, 0, &je);
  assert_non_null(h);
  if (mutate) mutate(h);
  if (cfg) with_config(h, cfg);
  text = json_dumps(h, JSON_COMPACT);
  assert_non_null(text);
  nh  = strlen(text);
  pad = (8 - nh % 8) % 8;
  out = malloc(8 + nh + pad + (n - 8 - hlen));
  assert_non_null(out);
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)((nh + pad) >> (8 * i));
  memcpy(out + 8, text, nh);
  memset(out + 8 + nh, ' ', pad);
  memcpy(out + 8 + nh + pad, b + 8 + hlen, n - 8 - hlen);
  write_bytes(c, name, out, 8 + nh + pad + (n - 8 - hlen));
  free(out);
  free(text);
  json_decref(h);
  free(b);
}

static void mut_offsets_out_of_range(json_t *h)
{
  json_object_set_new(json_object_get(h, "scale_shift.scale"), "data_offsets", json_pack("[I,I]", (json_int_t)8000000000LL, (json_int_t)8000000008LL));
}
static void mut_overlap(json_t *h)
{
  json_object_set(json_object_get(h, "hessian_r_max"), "data_offsets", json_object_get(json_object_get(h, "r_max"), "data_offsets"));
}
static void mut_dtype_f32(json_t *h)
{
  json_object_set_new(json_object_get(h, "r_max"), "dtype", json_string("F32"));
}
static void mut_dtype_unknown(json_t *h)
{
  json_object_set_new(json_object_get(h, "r_max"), "dtype", json_string("Q7"));
}
static void mut_shape(json_t *h)
{
  json_object_set_new(json_object_get(h, "atomic_energies_fn.atomic_energies"), "shape", json_pack("[i,i]", 5, 1));
}
static void mut_missing_tensor(json_t *h)
{
  assert_int_equal(json_object_del(h, "scale_shift.scale"), 0);
}
static void cfg_del_rmax(json_t *cfg)
{
  assert_int_equal(json_object_del(cfg, "r_max"), 0);
}
static void cfg_zbl(json_t *cfg)
{
  json_object_set_new(cfg, "pair_repulsion", json_true());
}
static void cfg_max_ell(json_t *cfg)
{
  json_object_set_new(cfg, "max_ell", json_integer(9));
}
/* HIP head options the reference cannot evaluate (MODEL_FORMAT_headopts.md): refused, saying so */
static void cfg_gates(json_t *cfg)
{
  json_object_set_new(cfg, "hessian_use_edge_gates", json_true());
}
static void cfg_norm(json_t *cfg)
{
  json_object_set_new(cfg, "hessian_off_diag_norm", json_true());
}
/* extra Hessian layers announced by the config without their tensors; or with edge lmax != max_ell */
static void cfg_hessian_layers(json_t *cfg)
{
  json_object_set_new(cfg, "num_interactions_hessian", json_integer(1));
}
static void cfg_hessian_layers_lmax(json_t *cfg)
{
  json_object_set_new(cfg, "num_interactions_hessian", json_integer(1));
  json_object_set_new(cfg, "hessian_edge_lmax", json_integer(1));
}
static void mut_cfg_not_json(json_t *h)
{
  json_object_set_new(json_object_get(h, "__metadata__"), "config", json_string("{\"r_max\": 5.0,"));
}
static void mut_format(json_t *h)
{
  json_object_set_new(json_object_get(h, "__metadata__"), "format", json_string("pytorch-pickle"));
}

static void test_model_missing(void **state)
{
  EXPECT(*state, 0, "-structure good.xyz -model nomodel.safetensors", "nomodel.safetensors", "cannot open");
}

/* An unreadable input file name in the case's folder: root reads any file whatever its mode, so a folder
   stands for it there; otherwise a file with text and mode 0. Returns the error the driver must give. */
static const char *make_unreadable(Case *c, const char *name, const char *text)
{
  char path[2 * PETSC_MAX_PATH_LEN];
  snprintf(path, sizeof(path), "%s/%s", c->dir, name);
  if (geteuid() == 0) {
    assert_int_equal(mkdir(path, 0700), 0);
    return "not a regular file";
  }
  write_text(c, name, text);
  assert_int_equal(chmod(path, 0), 0);
  return "cannot open";
}

static void test_model_unreadable(void **state)
{
  const char *want = make_unreadable(*state, "m.safetensors", "12345678");
  EXPECT(*state, 0, "-structure good.xyz -model m.safetensors", "m.safetensors", want);
}

static void test_model_tiny(void **state)
{
  Case *c = *state;
  write_text(c, "m.safetensors", "{}");
  EXPECT(c, 0, "-structure good.xyz -model m.safetensors", "m.safetensors", "shorter than the 8-byte header");
}

static void test_model_truncated(void **state)
{
  Case          *c = *state;
  size_t         n;
  unsigned char *b = read_all(c->model, &n);
  write_bytes(c, "m.safetensors", b, n / 2);
  free(b);
  /* the first tensor past the cut is named */
  EXPECT(c, 0, "-structure good.xyz -model m.safetensors", "m.safetensors: tensor '", "beyond the data section");
}

static void test_model_header_beyond_file(void **state)
{
  Case          *c = *state;
  size_t         n;
  unsigned char *b = read_all(c->model, &n);
  for (int i = 0; i < 8; i++) b[i] = 0;
  b[4] = 1; /* 2^32 bytes of header in a 1 MB file */
  write_bytes(c, "m.safetensors", b, n);
  free(b);
  EXPECT(c, 0, "-structure good.xyz -model m.safetensors", "m.safetensors", "header length 4294967296 exceeds the file size");
}

static void test_model_header_not_json(void **state)
{
  Case         *c   = *state;
  const char   *hdr = "{\"r_max\": {\"dtype\": \"F64\",";
  const size_t  nh  = strlen(hdr);
  unsigned char b[256];
  memset(b, ' ', sizeof(b));
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)32 >> (8 * i));
  memcpy(b + 8, hdr, nh);
  write_bytes(c, "m.safetensors", b, 8 + 32 + 16);
  EXPECT(c, 0, "-structure good.xyz -model m.safetensors", "m.safetensors", "header is not valid JSON");
}

/* Header and config mutations of the demo model, each with the pieces its error message must hold. */
typedef struct {
  void (*mutate)(json_t *h);
  void (*cfg)(json_t *cfg);
  const char *const want[6]; /* NULL-terminated */
} ModelCase;

static const ModelCase model_cases[] = {
    {mut_offsets_out_of_range, NULL,                    {"m.safetensors", "tensor 'scale_shift.scale'", "beyond the data section"}                                },
    {mut_overlap,              NULL,                    {"m.safetensors", "overlaps", "r_max'"}                                                                   },
    {mut_dtype_f32,            NULL,                    {"m.safetensors", "tensor 'r_max'", "dtype F32 not supported"}                                            },
    {mut_dtype_unknown,        NULL,                    {"m.safetensors", "tensor 'r_max'", "unknown dtype 'Q7'"}                                                 },
    {mut_shape,                NULL,                    {"m.safetensors", "tensor 'atomic_energies_fn.atomic_energies' has shape [5, 1] but [1, 5] was expected"} },
    {mut_missing_tensor,       NULL,                    {"m.safetensors", "tensor 'scale_shift.scale' not found"}                                                 },
    {NULL,                     cfg_del_rmax,            {"m.safetensors", "config is missing the key 'r_max'"}                                                    },
    {NULL,                     cfg_zbl,                 {"m.safetensors", "'pair_repulsion'", "not supported"}                                                    },
    {NULL,                     cfg_gates,               {"m.safetensors", "'hessian_use_edge_gates'", "not supported", "reference", "72 values where it needs 88"}},
    {NULL,                     cfg_norm,                {"m.safetensors", "'hessian_off_diag_norm'", "not supported", "reference", "no LayerNorm"}                },
    {NULL,                     cfg_hessian_layers,      {"m.safetensors", "tensor 'hessian_interactions.0.linear_up.weight' not found"}                           },
    {NULL,                     cfg_hessian_layers_lmax, {"m.safetensors", "num_interactions_hessian = 1", "hessian_edge_lmax (1) = max_ell (2)"}                  },
    {NULL,                     cfg_max_ell,             {"m.safetensors", "'max_ell' = 9"}                                                                        },
    {mut_cfg_not_json,         NULL,                    {"m.safetensors", "metadata 'config' is not a JSON object"}                                               },
    {mut_format,               NULL,                    {"m.safetensors", "metadata 'format'", "pytorch-pickle"}                                                  },
};

static void test_model_header_variants(void **state)
{
  for (size_t k = 0; k < sizeof(model_cases) / sizeof(model_cases[0]); k++) {
    model_variant(*state, "m.safetensors", model_cases[k].mutate, model_cases[k].cfg);
    expect_error(*state, 0, "-structure good.xyz -model m.safetensors", model_cases[k].want);
  }
}

/* ------------------------------------------------------------------ structures */

static void structure_case(void **state, const char *text, const char *const want[])
{
  write_text(*state, "bad.xyz", text);
  model_run_case(*state, 0, "bad.xyz", "", want);
}

#define STRUCTURE(state, text, ...)                  \
  do {                                               \
    const char *const want_[] = {__VA_ARGS__, NULL}; \
    structure_case((state), (text), want_);          \
  } while (0)

static void test_structure_missing(void **state)
{
  EXPECT_RUN(*state, 0, "nothere.xyz", "", "nothere.xyz", "cannot open");
}

static void test_structure_unreadable(void **state)
{
  const char *want = make_unreadable(*state, "u.xyz", "1\n\nH 0 0 0\n");
  EXPECT_RUN(*state, 0, "u.xyz", "", "u.xyz", want);
}

static void test_structure_count(void **state)
{
  STRUCTURE(state, "3\n\nC 0 0 0\nO 0 0 1.2\n", "bad.xyz:4", "announces 3 atoms");
}
static void test_structure_not_number(void **state)
{
  STRUCTURE(state, "2\n\nC 0 0 0\nO 0 abc 1.2\n", "bad.xyz:4", "coordinate 'abc'");
}
static void test_structure_nan(void **state)
{
  STRUCTURE(state, "2\n\nC 0 0 0\nO 0 0 nan\n", "bad.xyz:4", "coordinate 'nan' is not a finite number");
}
static void test_structure_inf(void **state)
{
  STRUCTURE(state, "2\n\nC -inf 0 0\nO 0 0 1.2\n", "bad.xyz:3", "coordinate '-inf' is not a finite number");
}
static void test_structure_unknown_symbol(void **state)
{
  STRUCTURE(state, "2\n\nC 0 0 0\nXq 0 0 1.2\n", "bad.xyz:4", "unknown element symbol 'Xq'");
}
static void test_structure_absent_element(void **state)
{
  /* sulfur is a real element but not one of the demo model's H C N O F */
  STRUCTURE(state, "3\n\nC 0 0 0\nO 0 0 1.2\nS 0 2 0\n", "bad.xyz", "atom 3 is S", "not trained on");
}
static void test_structure_same_position(void **state)
{
  STRUCTURE(state, "3\n\nC 0 0 0\nO 0 0 1.2\nH 0 0 0\n", "bad.xyz", "atoms 1 and 3", "closer than 0.1 A");
}
static void test_structure_too_close(void **state)
{
  STRUCTURE(state, "3\n\nC 0 0 0\nO 0 0 1.2\nH 0 0.05 1.2\n", "bad.xyz", "atoms 2 and 3", "closer than 0.1 A");
}
static void test_structure_zero_atoms(void **state)
{
  STRUCTURE(state, "0\n\n", "bad.xyz:1", "atom count 0 must be positive");
}
static void test_structure_empty_file(void **state)
{
  STRUCTURE(state, "", "bad.xyz:1", "empty file");
}
static void test_structure_zero_volume(void **state)
{
  STRUCTURE(state, "2\nLattice=\"5 0 0 0 5 0 0 0 0\"\nC 0 0 0\nO 0 0 1.2\n", "bad.xyz:2", "zero volume");
}
static void test_structure_inverted_cell(void **state)
{
  STRUCTURE(state, "2\nLattice=\"5 0 0 0 5 0 0 0 -5\"\nC 0 0 0\nO 0 0 1.2\n", "bad.xyz:2", "left-handed");
}
static void test_structure_bad_pbc(void **state)
{
  STRUCTURE(state, "2\nLattice=\"8 0 0 0 8 0 0 0 8\" pbc=\"T T maybe\"\nC 0 0 0\nO 0 0 1.2\n", "bad.xyz:2", "pbc flag 'maybe'");
}
static void test_structure_binary(void **state)
{
  write_bytes(*state, "bad.xyz", (const unsigned char *)"2\n\nC 0 0 0\nO 0\0 0 1.2\n", 22);
  EXPECT_RUN(*state, 0, "bad.xyz", "", "bad.xyz:4", "NUL byte");
}

/* ------------------------------------------------------------------ options and outputs */

#define OPTION(state, extra, ...) EXPECT_RUN(*(state), 0, "good.xyz", extra, __VA_ARGS__)

static void test_option_hessian_type(void **state)
{
  OPTION(state, "-hessian_type dense", "-hessian_type dense");
}
static void test_option_partition(void **state)
{
  OPTION(state, "-partition metis", "metis", "-partition");
}
static void test_option_memory_limit_text(void **state)
{
  OPTION(state, "-memory_limit lots", "-memory_limit lots");
}
static void test_option_nmodes(void **state)
{
  OPTION(state, "-nmodes -5", "-nmodes", "-5");
}
static void test_option_modes(void **state)
{
  OPTION(state, "-modes some", "some", "-modes");
}
static void test_option_kernel(void **state)
{
  /* the registry's message lists what is registered */
  OPTION(state, "-hessian_kernel fast", "-hessian_kernel fast: unknown", "registered: direct, folded, tabulated");
}
static void test_option_optimize(void **state)
{
  OPTION(state, "-optimize climb", "-optimize climb: unknown", "registered: min, ts");
}
static void test_optimize_output_cell(void **state)
{
  /* a PDB output needs the cell with a along x: refused before the optimisation, naming the file */
  char xyz[4096];
  good_xyz(xyz, sizeof(xyz), NULL, 0);
  {
    char *nl = strchr(xyz, '\n');
    char  body[4096];
    snprintf(body, sizeof(body), "%s", strchr(nl + 1, '\n') + 1);
    snprintf(nl + 1, sizeof(xyz) - (size_t)(nl + 1 - xyz), "Lattice=\"20 1 0 0 20 0 0 0 20\" Properties=species:S:1:pos:R:3 pbc=\"T T T\"\n%s", body);
  }
  write_text(*state, "skew.xyz", xyz);
  EXPECT_RUN(*state, 0, "skew.xyz", "-optimize min -optimize_output out.pdb", "out.pdb", "standard orientation");
}
static void test_option_table_tol(void **state)
{
  OPTION(state, "-hessian_kernel tabulated -hessian_table_tol 1e-20", "-hessian_table_tol", "1e-20");
}
static void test_memory_refused(void **state)
{
  /* 1 MB per rank cannot hold the model's features: refused before the forward pass */
  OPTION(state, "-memory_limit 1", "-memory_limit", "estimated");
}
static void test_missing_model_option(void **state)
{
  Case *c = *state;
  EXPECT(c, 0, "-structure good.xyz", "missing -model");
}
static void test_output_unwritable(void **state)
{
  EXPECT_RUN(*state, 0, "good.xyz", "-summary nodir/s.json", "-summary nodir/s.json", "cannot create");
}
static void test_output_rename_fails(void **state)
{
  Case *c = *state;
  char  args[3 * PETSC_MAX_PATH_LEN], path[2 * PETSC_MAX_PATH_LEN];
  /* the summary's name is taken by a non-empty folder: the temporary file is written, the rename
     fails at the very end, and the temporary file must be gone */
  snprintf(path, sizeof(path), "%s/taken.json", c->dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof(path), "%s/taken.json/x", c->dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(args, sizeof(args), "-structure good.xyz -model '%s' -modes none -summary taken.json", c->model);
  assert_int_not_equal(run(c, 0, args), 0);
  print_message("%s", c->err);
  assert_non_null(strstr(c->err, "hipmace: error: taken.json"));
  assert_int_equal(strchr(c->err, '\n') - c->err, (long)strlen(c->err) - 1);
  /* the Hessian, written before, is complete; what must not exist is a temporary summary */
  assert_no_tmp(c);
  snprintf(path, sizeof(path), "%s/taken.json/x", c->dir);
  assert_int_equal(access(path, F_OK), 0);
}

/* A single atom is a valid (if trivial) structure: a 3x3 Hessian, no vibrational modes. It must not
   crash, and its outputs are written. */
static void test_one_atom_is_valid(void **state)
{
  Case *c = *state;
  char  args[3 * PETSC_MAX_PATH_LEN], path[2 * PETSC_MAX_PATH_LEN];
  write_text(c, "one.xyz", "1\n\nC 0 0 0\n");
  snprintf(args, sizeof(args), "-structure one.xyz -model '%s'", c->model);
  assert_int_equal(run(c, 0, args), 0);
  snprintf(path, sizeof(path), "%s/s.json", c->dir);
  assert_int_equal(access(path, F_OK), 0);
}

/* ------------------------------------------------------------------ several ranks */

static void test_mpi_bad_structure_rank0(void **state)
{
  /* only rank 0 reads the structure (-read_parallel false); the other ranks wait in the partition's collectives */
  write_text(*state, "bad.xyz", "2\n\nC 0 0 0\nO 0 x1 1.2\n");
  EXPECT_RUN(*state, 4, "bad.xyz", "-read_parallel false", "[rank 0] hipmace: error: bad.xyz:4", "coordinate 'x1'");
}

static void test_mpi_bad_model(void **state)
{
  model_variant(*state, "m.safetensors", NULL, cfg_zbl);
  EXPECT(*state, 4, "-structure good.xyz -model m.safetensors", "m.safetensors", "'pair_repulsion'");
}

static void test_mpi_absent_element_rank3(void **state)
{
  Case *c = *state;
  char  xyz[4096];
  /* atom 1 (sulfur) sits 50 A along +x: recursive bisection gives it to the last rank */
  good_xyz(xyz, sizeof(xyz), "S 50 0 0\n", 1);
  write_text(c, "far.xyz", xyz);
  EXPECT_RUN(c, 4, "far.xyz", "", "far.xyz: atom 1 is S");
  /* reported once, by the collective path: no rank prefix */
  assert_null(strstr(c->err, "[rank"));
}

static void test_mpi_bad_option(void **state)
{
  Case *c = *state;
  EXPECT_RUN(c, 4, "good.xyz", "-hessian_type dense", "-hessian_type dense");
  assert_null(strstr(c->err, "[rank"));
}

/* ------------------------------------------------------------------ numerical guards */

/* The demo model with huge (finite) embedding weights for F (element 5 of 5): messages from an F atom
   overflow its neighbours' features to Inf/NaN, while 0 * weight stays 0 for the other elements (a NaN
   weight would poison every atom through 0 * NaN). */
static void model_overflowing_F(Case *c, const char *name)
{
  char           path[2 * PETSC_MAX_PATH_LEN];
  size_t         n, hlen = 0;
  unsigned char *b;
  json_error_t   je;
  json_t        *h, *t;
  PetscInt64     off;
  model_variant(c, name, NULL, NULL);
  snprintf(path, sizeof(path), "%s/%s", c->dir, name);
  b = read_all(path, &n);
  for (int i = 0; i < 8; i++) hlen |= (size_t)b[i] << (8 * i);
  h = json_loadb((const char *)b + 8, hlen, 0, &je);
  assert_non_null(h);
  t = json_object_get(h, "node_embedding.linear.weight");
  assert_int_equal(json_integer_value(json_array_get(json_object_get(t, "shape"), 0)), 160);
  off = json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
  /* weight [5 inputs][32 outputs]: row 4 is F */
  for (int k = 128; k < 160; k++) {
    const double big = 1e300;
    memcpy(b + 8 + hlen + off + 8 * k, &big, 8);
  }
  write_bytes(c, name, b, n);
  json_decref(h);
  free(b);
}

/* An H-F pair 50 A away from the molecule (on the last of 4 ranks under bisection): the message from
   F overflows the features of atom 1 (H) in the first layer; the molecule is untouched. Needs the
   driver to call HMEvalCheckFinite after the forward pass. */
#define OVERFLOW_PAIR "H 51 0 0\nF 50 0 0\n"

/* The overflowing model on the far pair, run on np ranks (0: without mpiexec). */
static void nan_features_case(Case *c, int np)
{
  char xyz[4096];
  model_overflowing_F(c, "nan.safetensors");
  good_xyz(xyz, sizeof(xyz), OVERFLOW_PAIR, 2);
  write_text(c, "far.xyz", xyz);
  EXPECT(c, np, "-structure far.xyz -model nan.safetensors -modes none", "atom 1: node features after interaction layer 1 are not finite");
}

static void test_nan_features_driver(void **state)
{
  nan_features_case(*state, 0);
}

static void test_nan_features_driver_mpi(void **state)
{
  Case *c = *state;
  /* the overflowing atom is on rank 3 only; every rank must stop with the same message */
  nan_features_case(c, 4);
  assert_null(strstr(c->err, "[rank"));
}

/* Library level: a NaN planted in one owned atom's features on the last rank is reported, with that
   atom's input index, by HMEvalCheckFinite on every rank; then the same for a Hessian block. */
static char guard_msg[HM_ERRMSG_LEN];

/* The Hessian guard on the re-assembled H fails with PETSC_ERR_FP on every rank, its message containing want
   and also (when not NULL). */
static void hessian_guard_fails(HMHessian hs, Mat H, PetscMPIInt rank, const char *want, const char *also)
{
  PetscErrorCode ierr;
  HM_T(MatAssemblyBegin(H, MAT_FINAL_ASSEMBLY));
  HM_T(MatAssemblyEnd(H, MAT_FINAL_ASSEMBLY));
  HM_T(PetscPushErrorHandler(hm_capture_error, guard_msg));
  guard_msg[0] = '\0';
  ierr         = HMHessianCheckFinite(hs, H);
  HM_T(PetscPopErrorHandler());
  assert_int_equal(ierr, PETSC_ERR_FP);
  print_message("[%d] %s\n", rank, guard_msg);
  assert_non_null(strstr(guard_msg, want));
  if (also) assert_non_null(strstr(guard_msg, also));
}

static void test_guards_library(void **state)
{
  char           model[PETSC_MAX_PATH_LEN], xyz[PETSC_MAX_PATH_LEN], want[64];
  HMModel        m;
  HMSystem       sys = NULL;
  HMEval         ev;
  HMHessian      hs;
  Mat            H;
  PetscMPIInt    rank, size;
  PetscInt       target = -1, gtarget;
  PetscErrorCode ierr;
  (void)state;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  hm_demo_model_path(model, sizeof(model));
  snprintf(xyz, sizeof(xyz), "%s/default.xyz", getenv("HIPMACE_INPUTS_DIR") ? getenv("HIPMACE_INPUTS_DIR") : "inputs");
  HM_T(HMModelLoad(PETSC_COMM_WORLD, model, &m));
  if (rank == 0) HM_T(HMSystemLoad(PETSC_COMM_SELF, xyz, &sys));
  HM_T(hm_eval_create(m, sys, NULL, &ev, &hs));
  HM_T(HMHessianAssemble(hs, &H));
  /* clean evaluation: both guards pass, on either storage of the Hessian */
  HM_T(HMEvalCheckFinite(ev));
  HM_T(HMHessianCheckFinite(hs, H));
  {
    Mat Hs;
    HM_T(HMHessianSetMatType(hs, MATSBAIJ));
    HM_T(HMHessianAssemble(hs, &Hs));
    HM_T(HMHessianCheckFinite(hs, Hs));
    HM_T(MatDestroy(&Hs));
  }

  /* the last rank's last owned atom gets a NaN in layer 2 (the Hessian released the features: get them back) */
  {
    const double *f;
    HM_T(HMEvalGetNodeFeatures(ev, 1, NULL, &f));
  }
  if (rank == size - 1 && ev->n > 0) {
    target                                          = ev->gid[ev->n - 1];
    ev->feats[1][(ev->n - 1) * ev->model->dimH + 3] = NAN;
  }
  MPI_Allreduce(&target, &gtarget, 1, MPIU_INT, MPI_MAX, PETSC_COMM_WORLD);
  assert_true(gtarget >= 0);
  HM_T(PetscPushErrorHandler(hm_capture_error, guard_msg));
  guard_msg[0] = '\0';
  ierr         = HMEvalCheckFinite(ev);
  HM_T(PetscPopErrorHandler());
  assert_int_equal(ierr, PETSC_ERR_FP);
  snprintf(want, sizeof(want), "atom %d:", (int)gtarget + 1);
  print_message("[%d] %s\n", rank, guard_msg);
  assert_non_null(strstr(guard_msg, want));
  assert_non_null(strstr(guard_msg, "layer 2"));
  if (rank == size - 1 && ev->n > 0) ev->feats[1][(ev->n - 1) * ev->model->dimH + 3] = 0;

  /* a non-finite diagonal block of the same atom in the assembled matrix (the block exists, so the
     matrix options, which steer collectives in the assembly, stay as they are on every rank) */
  if (rank == size - 1 && ev->n > 0) {
    const PetscInt p      = ev->pidx[ev->n - 1];
    PetscScalar    blk[9] = {0, 0, 0, 0, INFINITY, 0, 0, 0, 0};
    HM_T(MatSetValuesBlocked(H, 1, &p, 1, &p, blk, ADD_VALUES));
  }
  hessian_guard_fails(hs, H, rank, want, "diagonal Hessian block");

  /* the diagonal block made finite again, and a NaN in the block of that atom and a neighbour */
  {
    PetscInt pair[2] = {-1, -1}, gpair[2];
    if (rank == size - 1 && ev->n > 0) {
      const PetscInt i = ev->n - 1, p = ev->pidx[i];
      PetscScalar    zero[9] = {0}, nanblk[9] = {0, NAN, 0, 0, 0, 0, 0, 0, 0};
      HM_T(MatSetValuesBlocked(H, 1, &p, 1, &p, zero, INSERT_VALUES));
      for (PetscInt k = ev->gh->offset[i]; k < ev->gh->offset[i + 1]; k++) {
        const PetscInt j = ev->gh->receiver[k], pj = ev->pidx[j];
        if (ev->gid[j] == ev->gid[i]) continue;
        HM_T(MatSetValuesBlocked(H, 1, &p, 1, &pj, nanblk, INSERT_VALUES));
        pair[0] = PetscMin(ev->gid[i], ev->gid[j]);
        pair[1] = PetscMax(ev->gid[i], ev->gid[j]);
        break;
      }
    }
    MPI_Allreduce(pair, gpair, 2, MPIU_INT, MPI_MAX, PETSC_COMM_WORLD);
    assert_true(gpair[0] >= 0);
    snprintf(want, sizeof(want), "atoms %d and %d: Hessian block", (int)gpair[0] + 1, (int)gpair[1] + 1);
    hessian_guard_fails(hs, H, rank, want, NULL);
  }

  HM_T(MatDestroy(&H));
  HM_T(HMHessianDestroy(&hs));
  HM_T(HMEvalDestroy(&ev));
  HM_T(HMSystemDestroy(&sys));
  HM_T(HMModelDestroy(&m));
}

#define T(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)

static const struct CMUnitTest driver_tests[] = {
    T(test_model_missing),
    T(test_model_unreadable),
    T(test_model_tiny),
    T(test_model_truncated),
    T(test_model_header_beyond_file),
    T(test_model_header_not_json),
    T(test_model_header_variants),
    T(test_structure_missing),
    T(test_structure_unreadable),
    T(test_structure_count),
    T(test_structure_not_number),
    T(test_structure_nan),
    T(test_structure_inf),
    T(test_structure_unknown_symbol),
    T(test_structure_absent_element),
    T(test_structure_same_position),
    T(test_structure_too_close),
    T(test_structure_zero_atoms),
    T(test_structure_empty_file),
    T(test_structure_zero_volume),
    T(test_structure_inverted_cell),
    T(test_structure_bad_pbc),
    T(test_structure_binary),
    T(test_option_hessian_type),
    T(test_option_partition),
    T(test_option_memory_limit_text),
    T(test_option_nmodes),
    T(test_option_modes),
    T(test_option_kernel),
    T(test_option_optimize),
    T(test_optimize_output_cell),
    T(test_option_table_tol),
    T(test_memory_refused),
    T(test_missing_model_option),
    T(test_output_unwritable),
    T(test_output_rename_fails),
    T(test_one_atom_is_valid),
    T(test_nan_features_driver),
};

static const struct CMUnitTest mpi_tests[] = {
    T(test_mpi_bad_structure_rank0),
    T(test_mpi_bad_model),
    T(test_mpi_absent_element_rank3),
    T(test_mpi_bad_option),
    T(test_nan_features_driver_mpi),
};

static const struct CMUnitTest guard_tests[] = {
    cmocka_unit_test(test_guards_library),
};

/* Serial: the driver cases, then (with HIPMACE_MPIEXEC) the mpiexec -n 4 cases, then the guards.
   Under mpiexec (size > 1): the guards only, collectively. */
int main(int argc, char **argv)
{
  int         fail = 0;
  PetscMPIInt size;
  snapshot_mpi_env();
  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  if (size == 1) {
    fail += cmocka_run_group_tests_name("badinput_driver", driver_tests, NULL, NULL);
    if (getenv("HIPMACE_MPIEXEC")) fail += cmocka_run_group_tests_name("badinput_mpi", mpi_tests, NULL, NULL);
  }
  fail += cmocka_run_group_tests_name("badinput_guards", guard_tests, NULL, NULL);
  if (PetscFinalize()) return 1;
  return fail;
}

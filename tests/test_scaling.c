/* Tests of hipmace-scaling: efficiencies, CSV, halo geometry and fit, the performance model, one small study. */
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "scaling/scaling.h"
#include "hmtest.h"

/* A model with made-up but plausible figures (small model on water). */
static HMScalingModel test_model(void)
{
  /* network, compute and set-up rates; the halo of two layers and the HIP head */
  HMScalingModel m = {.latency = 2e-6, .bandwidth = 12e9, .rate = 1e-3, .read_rate = 5e-7, .rcb_rate = 1e-8, .density = 0.1, .r_near = 5.0, .r_far = 7.0, .nlayers = 2, .hip_width = 144, .c_near = 14.0, .c_far = 29.0, .geometric = PETSC_TRUE};
  m.width[0]       = 8;
  m.width[1]       = 72;
  return m;
}

static HMScalingRun run_with(PetscInt ranks, PetscInt atoms, double total, double layers, double hessian)
{
  HMScalingRun r;
  memset(&r, 0, sizeof(r));
  r.ranks      = ranks;
  r.atoms      = atoms;
  r.total_s    = total;
  r.stage_s[2] = layers;
  r.stage_s[3] = hessian;
  r.repeats    = 1;
  return r;
}

static void test_efficiency(void **state)
{
  HMScalingRun w[3], s[3];
  (void)state;
  /* weak: t(1)/t(k); the base is the fewest ranks even when it is not listed first */
  w[0] = run_with(2, 200, 12.5, 5, 5);
  w[1] = run_with(1, 100, 10.0, 4, 4);
  w[2] = run_with(4, 400, 20.0, 8, 8);
  HM_T(HMScalingEfficiency(HM_SCALING_WEAK, 3, w));
  assert_float_equal(w[1].efficiency, 1.0, 1e-15);
  assert_float_equal(w[0].efficiency, 0.8, 1e-15);
  assert_float_equal(w[2].efficiency, 0.5, 1e-15);
  assert_float_equal(w[0].efficiency_compute, 0.8, 1e-15);
  /* strong: t(k1) k1 / (t(k) k) */
  s[0] = run_with(1, 1000, 10.0, 4, 4);
  s[1] = run_with(2, 1000, 5.5, 2, 2);
  s[2] = run_with(4, 1000, 2.5, 1, 1);
  HM_T(HMScalingEfficiency(HM_SCALING_STRONG, 3, s));
  assert_float_equal(s[0].efficiency, 1.0, 1e-15);
  assert_float_equal(s[1].efficiency, 10.0 / 11.0, 1e-15);
  assert_float_equal(s[2].efficiency, 1.0, 1e-15);
  /* strong with base k1 = 2: 6 * 2 / (4 * 4) */
  s[0] = run_with(2, 1000, 6.0, 3, 3);
  s[1] = run_with(4, 1000, 4.0, 1, 1);
  HM_T(HMScalingEfficiency(HM_SCALING_STRONG, 2, s));
  assert_float_equal(s[1].efficiency, 0.75, 1e-15);
  assert_float_equal(s[1].efficiency_compute, 1.5, 1e-15);
}

static void test_parse_ranks(void **state)
{
  PetscInt    n, r[HM_SC_MAXRANKS];
  const char *bad[] = {"", "0", "1,,2", "2,1", "1,1", "a", "1,2,", "-1", "1;2"};
  (void)state;
  HM_T(HMScalingParseRanks("1,2,4,8", &n, r));
  assert_int_equal(n, 4);
  assert_int_equal(r[0], 1);
  assert_int_equal(r[3], 8);
  HM_T(HMScalingParseRanks("3", &n, r));
  assert_int_equal(n, 1);
  HM_T(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) assert_int_not_equal(HMScalingParseRanks(bad[k], &n, r), 0);
  HM_T(PetscPopErrorHandler());
}

/* Splits the file into lines; returns the count. */
static int read_lines(const char path[], char lines[][1024], int max)
{
  FILE *f = fopen(path, "r");
  int   n = 0;
  if (!f) return -1;
  while (n < max && fgets(lines[n], 1024, f)) n++;
  fclose(f);
  return n;
}

static int count_char(const char *s, char c)
{
  int n = 0;
  for (; *s; s++) n += *s == c;
  return n;
}

static void test_csv(void **state)
{
  HMScalingRun r[2];
  char         dir[] = "/tmp/hm_scaling_csv_XXXXXX", path[PETSC_MAX_PATH_LEN], lines[8][1024];
  int          n;
  PetscInt     k, a;
  double       t, e;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/s.csv", dir);
  r[0]         = run_with(1, 300, 0.5, 0.1, 0.3);
  r[1]         = run_with(4, 1200, 0.625, 0.1, 0.3);
  r[0].nlayers = r[1].nlayers = 2;
  r[1].layer_bytes[1]         = 360000;
  r[1].oversubscribed         = PETSC_TRUE;
  HM_T(HMScalingEfficiency(HM_SCALING_WEAK, 2, r));
  HM_T(HMScalingWriteCSV(path, 2, r));
  n = read_lines(path, lines, 8);
  assert_int_equal(n, 3);
  assert_true(!strncmp(lines[0], "ranks,atoms,atoms_per_rank,total_s,efficiency,", 46));
  assert_non_null(strstr(lines[0], ",halo_bytes_layer1,halo_bytes_layer2,"));
  assert_non_null(strstr(lines[0], ",oversubscribed\n"));
  /* every row has the header's columns */
  assert_int_equal(count_char(lines[1], ','), count_char(lines[0], ','));
  assert_int_equal(count_char(lines[2], ','), count_char(lines[0], ','));
  assert_int_equal(sscanf(lines[2], "%" PetscInt_FMT ",%" PetscInt_FMT ",%*g,%lg,%lg", &k, &a, &t, &e), 4);
  assert_int_equal(k, 4);
  assert_int_equal(a, 1200);
  assert_float_equal(t, 0.625, 1e-12);
  assert_float_equal(e, 0.8, 1e-12);
  assert_true(lines[2][strlen(lines[2]) - 2] == '1'); /* oversubscribed flag, last column */
  assert_true(lines[1][strlen(lines[1]) - 2] == '0');
  assert_non_null(strstr(lines[2], ",360000,"));
  remove(path);
  rmdir(dir);
  /* an unwritable path is an error, not a silent skip */
  HM_T(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  assert_int_not_equal(HMScalingWriteCSV("/nonexistent-dir/s.csv", 2, r), 0);
  HM_T(PetscPopErrorHandler());
}

static void test_halo_geometry(void **state)
{
  double h, nb;
  (void)state;
  HM_T(HMScalingHaloGeometric(1000, 0.1, 0.0, &h, &nb));
  assert_float_equal(h, 0.0, 0.0);
  assert_float_equal(nb, 0.0, 0.0);
  /* cube of 1000 atoms at 0.1/A^3: a = 10000^(1/3); shell = rho (6 a^2 r + 3 pi a r^2 + 4/3 pi r^3) */
  {
    const double a = cbrt(10000.0), r = 5.0;
    HM_T(HMScalingHaloGeometric(1000, 0.1, r, &h, &nb));
    assert_float_equal(h, 0.1 * (6 * a * a * r + 3 * PETSC_PI * a * r * r + 4.0 / 3.0 * PETSC_PI * r * r * r), 1e-9);
    /* the Minkowski shell lies between the inscribed and the enclosing cube shells */
    assert_true(h > 0.1 * (pow(a + 2 * r / sqrt(3.0), 3) - a * a * a) && h < 0.1 * (pow(a + 2 * r, 3) - a * a * a));
  }
}

static void test_halo_neighbours(void **state)
{
  double h, nb;
  (void)state;
  /* a = 21.5 A, r = 5 A: the shell reaches the 26 face/edge/corner neighbours only */
  HM_T(HMScalingHaloGeometric(1000, 0.1, 5.0, &h, &nb));
  assert_float_equal(nb, 26.0, 0.0);
  /* a = 10 A (100 atoms), r = 15 A: two layers of cubes, 5^3 - 1 */
  HM_T(HMScalingHaloGeometric(100, 0.1, 15.0, &h, &nb));
  assert_float_equal(nb, 124.0, 0.0);
  /* surface law for large domains: h -> 6 rho^(1/3) r n^(2/3) (relative 1e-3 at a ~ 10^4 r) */
  HM_T(HMScalingHaloGeometric(1e15, 0.1, 5.0, &h, NULL));
  assert_float_equal(h / (6 * cbrt(0.1) * 5.0 * pow(1e15, 2.0 / 3.0)), 1.0, 1e-3);
}

static void test_halo_fit(void **state)
{
  HMScalingRun r[4];
  double       c;
  const double n[4] = {300, 600, 1200, 2400};
  (void)state;
  for (int i = 0; i < 4; i++) {
    r[i]          = run_with(1 << i, (PetscInt)(n[i] * (1 << i)), 1, 1, 1);
    r[i].near_max = 5.0 * pow(n[i], 2.0 / 3.0);
    r[i].far_max  = i == 0 ? 0.0 : 11.0 * pow(n[i], 2.0 / 3.0); /* a run without ghosts is left out */
  }
  HM_T(HMScalingFitHalo(4, r, PETSC_FALSE, &c));
  assert_float_equal(c, 5.0, 1e-12);
  HM_T(HMScalingFitHalo(4, r, PETSC_TRUE, &c));
  assert_float_equal(c, 11.0, 1e-12);
  HM_T(HMScalingFitHalo(0, r, PETSC_TRUE, &c));
  assert_float_equal(c, 0.0, 0.0);
}

static void test_model_limits(void **state)
{
  HMScalingModel      m = test_model(), m2;
  HMScalingPrediction p, q;
  (void)state;
  /* one rank: no communication, efficiency exactly 1 */
  HM_T(HMScalingModelPredict(&m, HM_SCALING_WEAK, 2000, 1, &p));
  assert_float_equal(p.t_comm, 0.0, 0.0);
  assert_float_equal(p.efficiency, 1.0, 0.0);
  assert_float_equal(p.t_compute, 2.0, 1e-15);
  /* free communication: efficiency 1 at every rank count (strong: n = N/P rounds, hence 1e-12) */
  m2           = m;
  m2.latency   = 0;
  m2.bandwidth = INFINITY;
  for (int k = 0; k < HM_SC_NMODEL; k++) {
    HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, HMScalingModelRanks[k], &p));
    assert_float_equal(p.efficiency, 1.0, 1e-12);
    HM_T(HMScalingModelPredict(&m2, HM_SCALING_STRONG, 1e6, HMScalingModelRanks[k], &p));
    assert_float_equal(p.efficiency, 1.0, 1e-12);
  }
  m2.geometric = PETSC_FALSE;
  HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, 1024, &p));
  assert_float_equal(p.efficiency, 1.0, 1e-12);
  /* latency only: every layer and the HIP head send one message to each of 26 neighbours, plus log2 P for
     the energy (a = 58 A > 7 A, so only the nearest cubes) */
  m2           = m;
  m2.bandwidth = INFINITY;
  HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 20000, 1024, &p));
  assert_float_equal(p.t_comm, 2e-6 * (2 * 26 + 26 + 10), 1e-15);
  /* two ranks: one neighbour */
  HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 20000, 2, &p));
  assert_float_equal(p.t_comm, 2e-6 * (2 + 1 + 1), 1e-15);
  /* bandwidth only: the bytes of the halo exchanges and of the energy all-reduce (log2 64 = 6 rounds of
     2 columns of 71 int64 words), which does not grow with the atom count */
  m2         = m;
  m2.latency = 0;
  HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, 64, &p));
  {
    double hn, hf;
    HM_T(HMScalingHaloGeometric(2000, 0.1, 5.0, &hn, NULL));
    HM_T(HMScalingHaloGeometric(2000, 0.1, 7.0, &hf, NULL));
    assert_float_equal(p.t_comm, (hn * 80 * 8 + hf * 144 * 8 + 6 * 1136.0) / 12e9, 1e-15);
    HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, 10000, &q));
    assert_float_equal(q.t_comm, p.t_comm + (14 - 6) * 1136.0 / 12e9, 1e-15);
  }
  /* more latency, less bandwidth, more ranks: never better */
  for (int k = 1; k < HM_SC_NMODEL; k++) {
    const double P = HMScalingModelRanks[k];
    HM_T(HMScalingModelPredict(&m, HM_SCALING_WEAK, 2000, P, &p));
    m2         = m;
    m2.latency = 2 * m.latency;
    HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, P, &q));
    assert_true(q.efficiency < p.efficiency);
    m2           = m;
    m2.bandwidth = m.bandwidth / 2;
    HM_T(HMScalingModelPredict(&m2, HM_SCALING_WEAK, 2000, P, &q));
    assert_true(q.efficiency < p.efficiency);
    assert_true(p.efficiency <= 1.0 && p.efficiency > 0.0);
    HM_T(HMScalingModelPredict(&m, HM_SCALING_WEAK, 2000, HMScalingModelRanks[k - 1], &q));
    assert_true(p.efficiency <= q.efficiency);
    assert_true(p.efficiency_setup <= p.efficiency); /* the serial setup only costs */
    HM_T(HMScalingModelPredict(&m, HM_SCALING_STRONG, 1e6, P, &p));
    HM_T(HMScalingModelPredict(&m, HM_SCALING_STRONG, 1e6, HMScalingModelRanks[k - 1], &q));
    assert_true(p.efficiency < q.efficiency);
  }
  /* serial setup: read N atoms, ceil(log2 P) RCB levels each linear in N, scatter */
  {
    double t, t2;
    HM_T(HMScalingSerialSetup(&m, 1000, 1, &t));
    assert_float_equal(t, 5e-7 * 1000, 1e-15);
    HM_T(HMScalingSerialSetup(&m, 1024, 4, &t));
    assert_float_equal(t, 5e-7 * 1024 + 1e-8 * 1024 * 2 + 2e-6 * 3 + HM_SC_SCATTER_BYTES_PER_ATOM * 1024 / 12e9, 1e-15);
    HM_T(HMScalingSerialSetup(&m, 1024, 5, &t)); /* 3 levels */
    assert_float_equal(t, 5e-7 * 1024 + 1e-8 * 1024 * 3 + 2e-6 * 4 + HM_SC_SCATTER_BYTES_PER_ATOM * 1024 / 12e9, 1e-15);
    /* the partition's part is linear in N at fixed P: no log N factor */
    m.read_rate = 0;
    m.latency   = 0;
    m.bandwidth = INFINITY;
    HM_T(HMScalingSerialSetup(&m, 1024, 1024, &t));
    HM_T(HMScalingSerialSetup(&m, 1024 * 1024, 1024, &t2));
    assert_float_equal(t, 1e-8 * 1024 * 10, 1e-15);
    assert_float_equal(t2 / t, 1024.0, 1e-9);
    m = test_model();
  }
  /* parallel setup: each rank reads N/P; per level 18 + ceil(log2 N / 4) reductions of ceil(log2 P) hops */
  {
    double t, t2;
    m.prcb_rate = 3e-8;
    HM_T(HMScalingParallelSetup(&m, 1000, 1, &t));
    assert_float_equal(t, 5e-7 * 1000, 1e-15);
    m.bandwidth = INFINITY;
    HM_T(HMScalingParallelSetup(&m, 4096, 4, &t));
    assert_float_equal(t, 5e-7 * 1024 + 3e-8 * 1024 * 2 + 2e-6 * 2 * (3 + 2 * (18 + 3)) + 2 * 2e-6 * 3, 1e-15);
    /* weak scaling: bounded by latency terms, far below rank 0's serial setup at 1024 ranks */
    m           = test_model();
    m.prcb_rate = 3e-8;
    HM_T(HMScalingParallelSetup(&m, 2000.0 * 1024, 1024, &t));
    HM_T(HMScalingSerialSetup(&m, 2000.0 * 1024, 1024, &t2));
    assert_true(t < t2 / 10);
    m = test_model();
  }
}

static void test_density(void **state)
{
  HMSystem sys;
  double   rho;
  (void)state;
  /* water at 0.997 g/cm^3: 3 * 0.997 * 0.602214 / 18.015 = 0.099985 atoms/A^3; the builder sets the cell
     from the density, so only the printed digits limit the match (1e-5) */
  HM_T(HMBuildSystem(PETSC_COMM_SELF, "water", 300, 1, NULL, &sys));
  HM_T(HMScalingDensity(sys, &rho));
  assert_float_equal(rho, 0.099985, 1e-5);
  HM_T(HMSystemDestroy(&sys));
  /* open simple cubic lattice, spacing 2 A, 16^3 atoms: every 4 A voxel holds 8 atoms, 0.125 exactly */
  {
    const PetscInt L = 16, n = L * L * L;
    int           *Z;
    double        *x;
    HM_T(PetscMalloc2(n, &Z, 3 * n, &x));
    for (PetscInt i = 0; i < n; i++) {
      Z[i]         = 6;
      x[3 * i]     = 2.0 * (i % L);
      x[3 * i + 1] = 2.0 * ((i / L) % L);
      x[3 * i + 2] = 2.0 * (i / (L * L));
    }
    HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, x, NULL, NULL, &sys));
    HM_T(PetscFree2(Z, x));
    HM_T(HMScalingDensity(sys, &rho));
    assert_float_equal(rho, 0.125, 1e-12);
    HM_T(HMSystemDestroy(&sys));
  }
}

static void test_read_summary(void **state)
{
  char         dir[] = "/tmp/hm_scaling_sum_XXXXXX", path[PETSC_MAX_PATH_LEN];
  HMScalingRun r;
  FILE        *f;
  const char  *good = "{\"natoms\": 600, \"ranks\": 2, \"energy\": -897.5, \"parallel\": {\"atoms_per_rank\": [300, 300],"
                      " \"hessian_blocks_per_rank\": [43768, 44554], \"halo_atoms_near_per_rank\": [623, 625],"
                      " \"halo_atoms_far_per_rank\": [1345, 1330], \"peak_rss_mb_per_rank\": [91.4, 91.9], \"load_imbalance\": 1.01,"
                      " \"halo_bytes_per_layer_max_rank\": [40000, 360000], \"halo_bytes_hip_max_rank\": 1549440,"
                      " \"timings_max\": {\"read\": 0.1, \"neighbours\": 0.2, \"layers\": 0.3, \"hessian\": 0.4, \"output\": 0.05, \"total\": 1.05}}}";
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/s.json", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(good, f);
  fclose(f);
  memset(&r, 0, sizeof(r));
  HM_T(HMScalingReadSummary(path, &r));
  assert_int_equal(r.ranks, 2);
  assert_int_equal(r.atoms, 600);
  assert_float_equal(r.total_s, 1.05, 0);
  assert_float_equal(r.stage_s[3], 0.4, 0);
  assert_float_equal(r.near_max, 625, 0);
  assert_float_equal(r.near_mean, 624, 0);
  assert_float_equal(r.far_mean, 1337.5, 0);
  assert_float_equal(r.blocks_max, 44554, 0);
  assert_int_equal(r.nlayers, 2);
  assert_float_equal(r.layer_bytes[1], 360000, 0);
  /* a summary without the per-rank timings is refused */
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"natoms\": 600, \"ranks\": 2, \"energy\": 1, \"parallel\": {\"halo_bytes_per_layer_max_rank\": []}}", f);
  fclose(f);
  HM_T(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  assert_int_not_equal(HMScalingReadSummary(path, &r), 0);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"natoms\": ", f);
  fclose(f);
  assert_int_not_equal(HMScalingReadSummary(path, &r), 0);
  HM_T(PetscPopErrorHandler());
  remove(path);
  rmdir(dir);
}

/* A real two-point weak-scaling study on 1 and 2 ranks: 300 water atoms per rank, the small model. */
static void test_study(void **state)
{
  HMScalingOptions o;
  char             dir[] = "/tmp/hm_scaling_run_XXXXXX", path[PETSC_MAX_PATH_LEN], lines[8][1024], gnuplot[PETSC_MAX_PATH_LEN];
  const char      *bin   = getenv("HIPMACE_BIN");
  json_error_t     err;
  json_t          *root, *runs, *model;
  (void)state;
  if (!bin) skip();
  assert_non_null(mkdtemp(dir));
  memset(&o, 0, sizeof(o));
  o.mode = HM_SCALING_WEAK;
  snprintf(o.system, sizeof(o.system), "water");
  hm_golden_path("model_small.safetensors", o.model, sizeof(o.model));
  snprintf(o.out, sizeof(o.out), "%s", dir);
  snprintf(o.mpiexec, sizeof(o.mpiexec), "mpiexec --oversubscribe%s", geteuid() == 0 ? " --allow-run-as-root" : "");
  snprintf(o.hipmace, sizeof(o.hipmace), "%s", bin);
  o.size      = 300;
  o.nranks    = 2;
  o.ranks[0]  = 1;
  o.ranks[1]  = 2;
  o.seed      = 1;
  o.repeat    = 1;
  o.latency   = 2e-6;
  o.bandwidth = 12e9;
  o.geometric = PETSC_TRUE;
  HM_T(HMScalingStudy(&o));

  snprintf(path, sizeof(path), "%s/scaling.csv", dir);
  assert_int_equal(read_lines(path, lines, 8), 3);
  assert_true(!strncmp(lines[1], "1,300,", 6));
  assert_true(!strncmp(lines[2], "2,600,", 6));

  snprintf(path, sizeof(path), "%s/scaling.json", dir);
  root = json_load_file(path, 0, &err);
  assert_non_null(root);
  runs  = json_object_get(root, "runs");
  model = json_object_get(root, "performance_model");
  /* the model file's path is kept under its own key */
  assert_true(json_is_string(json_object_get(root, "model")));
  assert_true(json_is_array(runs));
  assert_int_equal(json_array_size(runs), 2);
  assert_float_equal(json_number_value(json_object_get(json_array_get(runs, 0), "efficiency")), 1.0, 0);
  /* periodic water: ghosts (periodic images) on both ranks counts, and a positive efficiency */
  assert_true(json_number_value(json_object_get(json_array_get(runs, 1), "halo_near_max")) > 0);
  assert_true(json_number_value(json_object_get(json_array_get(runs, 1), "efficiency")) > 0);
  assert_int_equal(json_array_size(json_object_get(model, "predictions")), HM_SC_NMODEL);
  {
    const double e = json_number_value(json_object_get(model, "efficiency_1024"));
    assert_true(e > 0 && e <= 1);
  }
  /* rank 0's partition timed per atom and level (the real HMDecompPartition, not a sort) */
  {
    json_t *jp = json_object_get(model, "parameters");
    assert_true(json_number_value(json_object_get(jp, "serial_rcb_s_per_atom_level")) > 0);
    assert_null(json_object_get(jp, "serial_rcb_s_per_atom_log2N_level"));
    assert_non_null(strstr(json_string_value(json_object_get(model, "rank0_setup_formula")), "rcb N ceil(log2 P)"));
    /* the set-up as it runs now: parallel read and RCB */
    assert_true(json_number_value(json_object_get(jp, "parallel_rcb_s_per_atom_level")) > 0);
    assert_non_null(strstr(json_string_value(json_object_get(model, "serial_setup_formula")), "read N/P"));
    assert_true(json_number_value(json_object_get(model, "efficiency_1024_with_serial_setup")) >= json_number_value(json_object_get(model, "efficiency_1024_with_rank0_setup")));
  }
  json_decref(root);

  snprintf(path, sizeof(path), "%s/system_2.xyz", dir);
  assert_int_equal(access(path, R_OK), 0);
  HMScalingFindOnPath("gnuplot", gnuplot, sizeof(gnuplot));
  if (gnuplot[0]) {
    unsigned char magic[8] = {0};
    FILE         *f;
    snprintf(path, sizeof(path), "%s/scaling.png", dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(magic, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);
  } else print_message("gnuplot not installed: PNG not checked\n");
  /* passed: the folder goes (a failure leaves it for inspection) */
  {
    const char *files[] = {"system_1.xyz", "system_2.xyz", "summary_1.json", "summary_2.json", "run_1.log", "run_2.log", "scaling.csv", "scaling.json", "scaling.png", "scaling.gp", "scaling_measured.dat", "scaling_model.dat", "gnuplot.log"};
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
      snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
      remove(path);
    }
    assert_int_equal(rmdir(dir), 0);
  }
}

HM_TEST_MAIN_OF(test_efficiency, test_parse_ranks, test_csv, test_halo_geometry, test_halo_neighbours, test_halo_fit, test_model_limits, test_density, test_read_summary, test_study)

/* hipmace-scaling: weak/strong scaling runs of hipmace (CSV, JSON, PNG) and a latency-bandwidth model to 10^4 ranks. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <hipmace/builder.h>
#include <hipmace/decomp.h>
#include <hipmace/model.h>

/* tests/test_scaling.c includes this file with HM_SCALING_NO_MAIN to reach the pure functions; they are
   therefore not static (an unused static function would be an error there). */

extern char **environ;

#define HM_SC_NSTAGE   5
#define HM_SC_MAXLAYER 16
#define HM_SC_MAXRANKS 64
#define HM_SC_MAXARGS  128
/* the energy is one exact all-reduce of two columns (HMDecompSumExact): a fixed message whatever N and P */
#define HM_SC_ENERGY_BYTES (2.0 * HM_DECOMP_SUM_EXACT_WORDS * sizeof(PetscInt64))
/* rank 0 scatters gid, pidx (PetscInt), Z (int), mass and position (doubles) per atom */
#define HM_SC_SCATTER_BYTES_PER_ATOM (2.0 * sizeof(PetscInt) + sizeof(int) + 4.0 * sizeof(double))
/* open systems: density from occupied cubic voxels of this edge (A) */
#define HM_SC_VOXEL 4.0

static const char *const HMScalingStageNames[HM_SC_NSTAGE] = {"read", "neighbours", "layers", "hessian", "output"};

typedef enum {
  HM_SCALING_WEAK   = 0,
  HM_SCALING_STRONG = 1
} HMScalingMode;

/* One rank count of a study; times are the medians over the repeats of the slowest rank's times. */
typedef struct {
  PetscInt  ranks, atoms, repeats;
  double    total_s, stage_s[HM_SC_NSTAGE];
  double    efficiency, efficiency_compute; /* total; layers + hessian only */
  double    model_efficiency;               /* the model's prediction at this rank count (0: none) */
  double    load_imbalance, atoms_max;
  double    near_max, near_mean, far_max, far_mean; /* ghost atoms per rank */
  PetscInt  nlayers;
  double    layer_bytes[HM_SC_MAXLAYER], hip_bytes; /* halo bytes into the busiest rank */
  double    blocks_max, rss_max_mb, energy;
  double    density;      /* atoms / A^3 of the built system */
  double    load_average; /* the machine's 1-minute load average just before the run (other work skews times) */
  PetscBool oversubscribed;
} HMScalingRun;

/* Per-rank time T(P) = T_compute(n) + T_comm(P, n), n atoms per rank; see docs/SCALING.md. */
typedef struct {
  double    latency, bandwidth; /* s per message; bytes/s per rank */
  double    rate;               /* s per owned atom: layers + hessian of the base run */
  double    read_rate;          /* s per atom: rank 0 reading the structure */
  double    rcb_rate;           /* s per atom per level of the RCB partition on rank 0 (one selection) */
  double    density;            /* atoms / A^3 */
  double    r_near, r_far;      /* A: r_max and the effective Hessian cutoff */
  PetscInt  nlayers;
  double    width[HM_SC_MAXLAYER], hip_width; /* doubles per ghost atom per exchange */
  double    c_near, c_far;                    /* fitted halo h = c n^(2/3) */
  PetscBool geometric;                        /* halo from the cube-shell geometry, else from the fit */
} HMScalingModel;

typedef struct {
  double P, n, N;
  double halo_near, halo_far, nb_near, nb_far;
  double t_compute, t_comm, t_total, efficiency;
  double t_setup, efficiency_setup; /* with the serial read/partition on rank 0 added */
} HMScalingPrediction;

typedef struct {
  HMScalingMode mode;
  char          system[64], model[PETSC_MAX_PATH_LEN], out[PETSC_MAX_PATH_LEN], molecule[PETSC_MAX_PATH_LEN];
  char          mpiexec[1024], hipmace[PETSC_MAX_PATH_LEN], extra[1024];
  PetscInt      size; /* atoms per rank (weak) or atoms (strong) */
  PetscInt      nranks, ranks[HM_SC_MAXRANKS];
  unsigned long seed;
  PetscInt      repeat;
  double        latency, bandwidth; /* s, bytes/s */
  PetscBool     geometric;
} HMScalingOptions;

/* ------------------------------------------------------------------ pure functions */

/* "1,2,4": strictly increasing counts >= 1. */
PetscErrorCode HMScalingParseRanks(const char str[], PetscInt *n, PetscInt ranks[])
{
  const char *p = str;
  PetscFunctionBegin;
  *n = 0;
  PetscCheck(str[0], PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-ranks: empty list (expected e.g. 1,2,4)");
  while (1) {
    char     *end;
    long long v;
    errno = 0;
    v     = strtoll(p, &end, 10);
    PetscCheck(end != p && (*end == ',' || !*end) && errno == 0 && v >= 1 && v <= 1000000, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-ranks %s: expected comma-separated rank counts >= 1 (e.g. 1,2,4)", str);
    PetscCheck(*n < HM_SC_MAXRANKS, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-ranks %s: at most %d rank counts", str, HM_SC_MAXRANKS);
    PetscCheck(*n == 0 || v > ranks[*n - 1], PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-ranks %s: rank counts must increase", str);
    ranks[(*n)++] = (PetscInt)v;
    if (!*end) break;
    p = end + 1;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Parallel efficiency against the run with the fewest ranks (k1): weak t(k1)/t(k), strong t(k1) k1/(t(k) k). */
PetscErrorCode HMScalingEfficiency(HMScalingMode mode, PetscInt nruns, HMScalingRun runs[])
{
  PetscInt b = 0;
  PetscFunctionBegin;
  if (nruns < 1) PetscFunctionReturn(PETSC_SUCCESS);
  for (PetscInt i = 1; i < nruns; i++)
    if (runs[i].ranks < runs[b].ranks) b = i;
  for (PetscInt i = 0; i < nruns; i++) {
    const double tb = runs[b].total_s, t = runs[i].total_s;
    const double cb = runs[b].stage_s[2] + runs[b].stage_s[3], c = runs[i].stage_s[2] + runs[i].stage_s[3];
    const double f  = mode == HM_SCALING_WEAK ? 1.0 : (double)runs[b].ranks / (double)runs[i].ranks;
    PetscCheck(t > 0 && tb > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "runs on %" PetscInt_FMT " and %" PetscInt_FMT " ranks: total times %g s and %g s must be positive", runs[b].ranks, runs[i].ranks, tb, t);
    runs[i].efficiency         = f * tb / t;
    runs[i].efficiency_compute = c > 0 ? f * cb / c : 0.0;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Atoms within r of a cube of n atoms at density rho (the Minkowski shell: faces, quarter-cylinder edges,
   sphere-octant corners), and the ranks such a shell touches in a 3-D decomposition into cubes. */
PetscErrorCode HMScalingHaloGeometric(double n, double rho, double r, double *halo, double *nb)
{
  double a;
  PetscFunctionBegin;
  PetscCheck(n > 0 && rho > 0 && r >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "halo geometry: n %g, density %g, cutoff %g must be positive", n, rho, r);
  a = cbrt(n / rho);
  if (halo) *halo = rho * (6.0 * a * a * r + 3.0 * PETSC_PI * a * r * r + 4.0 / 3.0 * PETSC_PI * r * r * r);
  if (nb) {
    const double m = ceil(r / a - 1e-12);
    *nb            = r > 0 ? (2 * m + 1) * (2 * m + 1) * (2 * m + 1) - 1 : 0;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Least-squares c of h = c n^(2/3) (through the origin) over the runs with a halo; near or far ghosts. */
PetscErrorCode HMScalingFitHalo(PetscInt nruns, const HMScalingRun runs[], PetscBool far, double *c)
{
  double sxy = 0, sxx = 0;
  PetscFunctionBegin;
  for (PetscInt i = 0; i < nruns; i++) {
    const double h = far ? runs[i].far_max : runs[i].near_max, x = pow((double)runs[i].atoms / (double)runs[i].ranks, 2.0 / 3.0);
    if (h <= 0) continue;
    sxy += x * h;
    sxx += x * x;
  }
  *c = sxx > 0 ? sxy / sxx : 0.0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* What rank 0 does alone before the distributed work: read N atoms, RCB (ceil(log2 P) levels, each a
   selection over all N atoms: linear in N), scatter them (one message per rank). The model file's load is
   constant and left out. */
PetscErrorCode HMScalingSerialSetup(const HMScalingModel *m, double N, double P, double *t)
{
  const double levels = ceil(log2(P) - 1e-12);
  PetscFunctionBegin;
  *t = m->read_rate * N + m->rcb_rate * N * levels;
  if (P > 1) *t += m->latency * (P - 1) + (isinf(m->bandwidth) ? 0.0 : HM_SC_SCATTER_BYTES_PER_ATOM * N / m->bandwidth);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* size: atoms per rank (weak) or atoms in total (strong). Perfect load balance; P = 1 has no communication. */
PetscErrorCode HMScalingModelPredict(const HMScalingModel *m, HMScalingMode mode, double size, double P, HMScalingPrediction *p)
{
  double t1;
  PetscFunctionBegin;
  PetscCheck(P >= 1 && size > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: %g ranks, size %g must be positive", P, size);
  PetscCheck(m->rate > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: compute rate %g s/atom must be positive", m->rate);
  PetscCheck(m->nlayers >= 0 && m->nlayers <= HM_SC_MAXLAYER, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: %" PetscInt_FMT " layers", m->nlayers);
  PetscCall(PetscMemzero(p, sizeof(*p)));
  p->P         = P;
  p->n         = mode == HM_SCALING_WEAK ? size : size / P;
  p->N         = mode == HM_SCALING_WEAK ? size * P : size;
  p->t_compute = m->rate * p->n;
  if (m->geometric) {
    PetscCall(HMScalingHaloGeometric(p->n, m->density, m->r_near, &p->halo_near, &p->nb_near));
    PetscCall(HMScalingHaloGeometric(p->n, m->density, m->r_far, &p->halo_far, &p->nb_far));
  } else {
    p->halo_near = m->c_near * pow(p->n, 2.0 / 3.0);
    p->halo_far  = m->c_far * pow(p->n, 2.0 / 3.0);
    /* the neighbour count still follows the domain's size; without a density, the 26 around a cube */
    p->nb_near = p->nb_far = 26;
    if (m->density > 0) {
      PetscCall(HMScalingHaloGeometric(p->n, m->density, m->r_near, NULL, &p->nb_near));
      PetscCall(HMScalingHaloGeometric(p->n, m->density, m->r_far, NULL, &p->nb_far));
    }
  }
  if (P > 1) {
    double bytes = 0, msgs;
    p->nb_near = PetscMin(p->nb_near, P - 1);
    p->nb_far  = PetscMin(p->nb_far, P - 1);
    for (PetscInt t = 0; t < m->nlayers; t++) bytes += p->halo_near * m->width[t] * 8.0;
    /* the energy all-reduce by recursive doubling: ceil(log2 P) rounds, each a message of the whole buffer */
    bytes += p->halo_far * m->hip_width * 8.0 + ceil(log2(P) - 1e-12) * HM_SC_ENERGY_BYTES;
    msgs      = m->nlayers * p->nb_near + p->nb_far + ceil(log2(P) - 1e-12);
    p->t_comm = m->latency * msgs + (isinf(m->bandwidth) ? 0.0 : bytes / m->bandwidth);
  } else p->nb_near = p->nb_far = 0;
  p->t_total    = p->t_compute + p->t_comm;
  t1            = m->rate * (mode == HM_SCALING_WEAK ? p->n : p->N);
  p->efficiency = mode == HM_SCALING_WEAK ? t1 / p->t_total : t1 / (P * p->t_total);
  PetscCall(HMScalingSerialSetup(m, p->N, P, &p->t_setup));
  {
    double s1;
    PetscCall(HMScalingSerialSetup(m, mode == HM_SCALING_WEAK ? p->n : p->N, 1, &s1));
    p->efficiency_setup = mode == HM_SCALING_WEAK ? (t1 + s1) / (p->t_total + p->t_setup) : (t1 + s1) / (P * (p->t_total + p->t_setup));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Calibrates the model from the measured runs: compute rates from the run with the fewest ranks, density
   from the largest system, halo fits from every run. */
PetscErrorCode HMScalingModelCalibrate(PetscInt nruns, const HMScalingRun runs[], HMScalingModel *m)
{
  PetscInt b = 0, big = 0;
  PetscFunctionBegin;
  PetscCheck(nruns >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: no runs to calibrate from");
  for (PetscInt i = 1; i < nruns; i++) {
    if (runs[i].ranks < runs[b].ranks) b = i;
    if (runs[i].atoms > runs[big].atoms) big = i;
  }
  m->rate    = (runs[b].stage_s[2] + runs[b].stage_s[3]) / ((double)runs[b].atoms / (double)runs[b].ranks);
  m->density = runs[big].density;
  PetscCall(HMScalingFitHalo(nruns, runs, PETSC_FALSE, &m->c_near));
  PetscCall(HMScalingFitHalo(nruns, runs, PETSC_TRUE, &m->c_far));
  PetscCheck(m->rate > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: base run on %" PetscInt_FMT " ranks has no layers + hessian time", runs[b].ranks);
  if (!m->geometric) PetscCheck(m->c_near > 0 || m->c_far > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "model: no run has ghost atoms to fit the halo to; use -halo_model geometric");
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The rank counts the model is tabulated at: 1, 2, 4, ..., 4096, 10^4. */
static const double HMScalingModelRanks[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10000};
#define HM_SC_NMODEL ((PetscInt)(sizeof(HMScalingModelRanks) / sizeof(HMScalingModelRanks[0])))

/* Density (atoms/A^3): N/V for a periodic cell; for open systems the atoms in interior voxels (all six
   face neighbours occupied) over their volume, so the surface does not dilute it. */
PetscErrorCode HMScalingDensity(HMSystem sys, double *rho)
{
  PetscInt      n;
  PetscBool     hascell, pbc[3];
  double        cell[9], lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  const double *x;
  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetCell(sys, &hascell, cell, pbc));
  if (hascell && (pbc[0] || pbc[1] || pbc[2])) {
    const double *a = cell, *b = cell + 3, *c = cell + 6;
    const double  V = fabs(a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]));
    PetscCheck(V > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "system: cell volume is zero");
    *rho = (double)n / V;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMSystemGetPositions(sys, &x));
  for (PetscInt i = 0; i < n; i++)
    for (int d = 0; d < 3; d++) {
      lo[d] = PetscMin(lo[d], x[3 * i + d]);
      hi[d] = PetscMax(hi[d], x[3 * i + d]);
    }
  {
    PetscInt64 g[3], nv, ninner = 0, ainner = 0, nocc = 0;
    PetscInt  *cnt;
    for (int d = 0; d < 3; d++) g[d] = (PetscInt64)((hi[d] - lo[d]) / HM_SC_VOXEL) + 1;
    nv = g[0] * g[1] * g[2];
    if (nv > 100000000) { /* absurdly sparse: the bounding box is the best cheap guess */
      *rho = (double)n / ((hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1));
      PetscFunctionReturn(PETSC_SUCCESS);
    }
    PetscCall(PetscCalloc1(nv, &cnt));
    for (PetscInt i = 0; i < n; i++) {
      PetscInt64 v[3];
      for (int d = 0; d < 3; d++) v[d] = PetscMin((PetscInt64)((x[3 * i + d] - lo[d]) / HM_SC_VOXEL), g[d] - 1);
      cnt[(v[0] * g[1] + v[1]) * g[2] + v[2]]++;
    }
    for (PetscInt64 i = 0; i < g[0]; i++)
      for (PetscInt64 j = 0; j < g[1]; j++)
        for (PetscInt64 k = 0; k < g[2]; k++) {
          const PetscInt64 id = (i * g[1] + j) * g[2] + k;
          PetscBool        inner;
          if (!cnt[id]) continue;
          nocc++;
          inner = (PetscBool)(i > 0 && j > 0 && k > 0 && i < g[0] - 1 && j < g[1] - 1 && k < g[2] - 1);
          if (inner) inner = (PetscBool)(cnt[id - g[1] * g[2]] && cnt[id + g[1] * g[2]] && cnt[id - g[2]] && cnt[id + g[2]] && cnt[id - 1] && cnt[id + 1]);
          if (inner) {
            ninner++;
            ainner += cnt[id];
          }
        }
    PetscCall(PetscFree(cnt));
    /* thin systems (a peptide chain) may have no interior voxel: all occupied voxels then */
    *rho = ninner > 0 ? (double)ainner / ((double)ninner * HM_SC_VOXEL * HM_SC_VOXEL * HM_SC_VOXEL) : (double)n / ((double)nocc * HM_SC_VOXEL * HM_SC_VOXEL * HM_SC_VOXEL);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One row per run; the halo-byte columns follow the first run's layer count. */
PetscErrorCode HMScalingWriteCSV(const char path[], PetscInt nruns, const HMScalingRun runs[])
{
  FILE    *f;
  PetscInt L = nruns > 0 ? runs[0].nlayers : 0;
  int      ok;
  PetscFunctionBegin;
  f = fopen(path, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing (%s)", path, strerror(errno));
  ok = fprintf(f, "ranks,atoms,atoms_per_rank,total_s,efficiency,efficiency_compute,model_efficiency") >= 0;
  for (int s = 0; s < HM_SC_NSTAGE; s++) ok = ok && fprintf(f, ",%s_s", HMScalingStageNames[s]) >= 0;
  ok = ok && fprintf(f, ",load_imbalance,halo_near_max,halo_near_mean,halo_far_max,halo_far_mean") >= 0;
  for (PetscInt t = 0; t < L; t++) ok = ok && fprintf(f, ",halo_bytes_layer%" PetscInt_FMT, t + 1) >= 0;
  ok = ok && fprintf(f, ",halo_bytes_hip,hessian_blocks_max,peak_rss_mb_max,energy_eV,density_per_A3,load_average,repeats,oversubscribed\n") >= 0;
  for (PetscInt i = 0; i < nruns && ok; i++) {
    const HMScalingRun *r = &runs[i];
    ok = fprintf(f, "%" PetscInt_FMT ",%" PetscInt_FMT ",%.6g,%.6g,%.6g,%.6g,%.6g", r->ranks, r->atoms, (double)r->atoms / (double)r->ranks, r->total_s, r->efficiency, r->efficiency_compute, r->model_efficiency) >= 0;
    for (int s = 0; s < HM_SC_NSTAGE; s++) ok = ok && fprintf(f, ",%.6g", r->stage_s[s]) >= 0;
    ok = ok && fprintf(f, ",%.6g,%.0f,%.2f,%.0f,%.2f", r->load_imbalance, r->near_max, r->near_mean, r->far_max, r->far_mean) >= 0;
    for (PetscInt t = 0; t < L; t++) ok = ok && fprintf(f, ",%.0f", t < r->nlayers ? r->layer_bytes[t] : 0.0) >= 0;
    ok = ok && fprintf(f, ",%.0f,%.0f,%.2f,%.10f,%.6f,%.2f,%" PetscInt_FMT ",%d\n", r->hip_bytes, r->blocks_max, r->rss_max_mb, r->energy, r->density, r->load_average, r->repeats, r->oversubscribed ? 1 : 0) >= 0;
  }
  ok = (fclose(f) == 0) && ok;
  PetscCheck(ok, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed (disk full?)", path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ------------------------------------------------------------------ summary JSON of one hipmace run */

static PetscErrorCode JNumber(json_t *obj, const char path[], const char key[], const char where[], double *v)
{
  json_t *x = json_object_get(obj, key);
  PetscFunctionBegin;
  PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field '%s%s' missing or not a number", path, where, key);
  *v = json_number_value(x);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* max and mean of a numeric array field */
static PetscErrorCode JArrayStats(json_t *obj, const char path[], const char key[], double *mx, double *mean, PetscInt *len)
{
  json_t *a = json_object_get(obj, key);
  size_t  n;
  double  s = 0, m = 0;
  PetscFunctionBegin;
  PetscCheck(json_is_array(a) && json_array_size(a) > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.%s' missing or not a non-empty array", path, key);
  n = json_array_size(a);
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(a, i);
    PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.%s[%zu]' is not a number", path, key, i);
    s += json_number_value(x);
    m = i ? PetscMax(m, json_number_value(x)) : json_number_value(x);
  }
  if (mx) *mx = m;
  if (mean) *mean = s / (double)n;
  if (len) *len = (PetscInt)n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Fills the measured fields of r from a parsed hipmace -summary tree. */
static PetscErrorCode ParseSummary(json_t *root, const char path[], HMScalingRun *r)
{
  json_t  *par, *tx, *hb;
  double   v = 0;
  PetscInt len;
  PetscFunctionBegin;
  par = json_object_get(root, "parallel");
  PetscCheck(json_is_object(par), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: object 'parallel' missing (hipmace too old?)", path);
  tx = json_object_get(par, "timings_max");
  hb = json_object_get(par, "halo_bytes_per_layer_max_rank");
  PetscCheck(json_is_object(tx), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: object 'parallel.timings_max' missing", path);
  PetscCheck(json_is_array(hb), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: array 'parallel.halo_bytes_per_layer_max_rank' missing", path);
  PetscCall(JNumber(root, path, "natoms", "", &v));
  r->atoms = (PetscInt)v;
  PetscCall(JNumber(root, path, "ranks", "", &v));
  r->ranks = (PetscInt)v;
  PetscCall(JNumber(root, path, "energy", "", &r->energy));
  PetscCall(JNumber(tx, path, "total", "parallel.timings_max.", &r->total_s));
  for (int s = 0; s < HM_SC_NSTAGE; s++) PetscCall(JNumber(tx, path, HMScalingStageNames[s], "parallel.timings_max.", &r->stage_s[s]));
  PetscCall(JNumber(par, path, "load_imbalance", "parallel.", &r->load_imbalance));
  PetscCall(JNumber(par, path, "halo_bytes_hip_max_rank", "parallel.", &r->hip_bytes));
  PetscCall(JArrayStats(par, path, "atoms_per_rank", &r->atoms_max, NULL, &len));
  PetscCheck(len == r->ranks, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: 'parallel.atoms_per_rank' has %" PetscInt_FMT " entries for %" PetscInt_FMT " ranks", path, len, r->ranks);
  PetscCall(JArrayStats(par, path, "halo_atoms_near_per_rank", &r->near_max, &r->near_mean, NULL));
  PetscCall(JArrayStats(par, path, "halo_atoms_far_per_rank", &r->far_max, &r->far_mean, NULL));
  PetscCall(JArrayStats(par, path, "hessian_blocks_per_rank", &r->blocks_max, NULL, NULL));
  PetscCall(JArrayStats(par, path, "peak_rss_mb_per_rank", &r->rss_max_mb, NULL, NULL));
  r->nlayers = (PetscInt)json_array_size(hb);
  PetscCheck(r->nlayers <= HM_SC_MAXLAYER, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " layers in 'parallel.halo_bytes_per_layer_max_rank'; at most %d supported", path, r->nlayers, HM_SC_MAXLAYER);
  for (PetscInt t = 0; t < r->nlayers; t++) {
    json_t *x = json_array_get(hb, (size_t)t);
    PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.halo_bytes_per_layer_max_rank[%" PetscInt_FMT "]' is not a number", path, t);
    r->layer_bytes[t] = json_number_value(x);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Fills the measured fields of r (not the efficiencies) from a hipmace -summary file. */
PetscErrorCode HMScalingReadSummary(const char path[], HMScalingRun *r)
{
  json_error_t   err;
  json_t        *root;
  PetscErrorCode ierr;
  PetscFunctionBegin;
  root = json_load_file(path, 0, &err);
  PetscCheck(root, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s:%d: %s", path, err.line, err.text);
  ierr = ParseSummary(root, path, r);
  json_decref(root);
  PetscCall(ierr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ------------------------------------------------------------------ running hipmace */

/* Variables an MPI launcher gives its processes: a child mpiexec that inherits ours (this program is an MPI
   singleton, or was itself launched) would try to join our job and fail. */
static PetscBool LauncherVariable(const char *e)
{
  static const char *const drop[] = {"PMIX_", "PMI_", "OMPI_COMMAND=", "OMPI_APP_CTX", "OMPI_COMM_WORLD", "OMPI_FILE_LOCATION=", "OMPI_FIRST_RANKS=", "OMPI_NUM_APP_CTX=", "OMPI_UNIVERSE_SIZE=", "OMPI_MCA_ess", "OMPI_MCA_orte_", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir=", "OMPI_MCA_shmem_RUNTIME_QUERY_hint=", "OMPI_MCA_mpi_oversubscribe="};
  for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++)
    if (!strncmp(e, drop[k], strlen(drop[k]))) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* Runs argv (PATH search), stdout and stderr to log, stdin from /dev/null; returns the exit code (128 + signal). */
PetscErrorCode HMScalingSpawn(char *const argv[], const char log[], int *code)
{
  posix_spawn_file_actions_t fa;
  char                     **env;
  PetscInt                   ne = 0, k = 0;
  pid_t                      pid;
  int                        st, rc;
  PetscFunctionBegin;
  while (environ[ne]) ne++;
  PetscCall(PetscMalloc1(ne + 1, &env));
  for (PetscInt i = 0; i < ne; i++)
    if (!LauncherVariable(environ[i])) env[k++] = environ[i];
  env[k] = NULL;
  PetscCheck(!posix_spawn_file_actions_init(&fa), PETSC_COMM_SELF, PETSC_ERR_SYS, "posix_spawn_file_actions_init failed");
  rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!rc) rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  PetscCall(PetscFree(env));
  PetscCheck(!rc, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot start '%s': %s", argv[0], strerror(rc));
  while (waitpid(pid, &st, 0) < 0) PetscCheck(errno == EINTR, PETSC_COMM_SELF, PETSC_ERR_SYS, "waitpid for '%s': %s", argv[0], strerror(errno));
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Splits on blanks into argv[*argc...] (no quoting: paths with blanks are not supported). */
static PetscErrorCode SplitWords(char *buf, const char what[], int *argc, char *argv[])
{
  char *save = NULL, *w;
  PetscFunctionBegin;
  for (w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
    PetscCheck(*argc < HM_SC_MAXARGS - 16, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: too many words", what);
    argv[(*argc)++] = w;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Prints the last lines of a failed run's log, so the cause is on the terminal. */
static void PrintLogTail(const char log[], int nlines)
{
  FILE *f = fopen(log, "r");
  char  buf[8192];
  long  sz;
  if (!f) return;
  fseek(f, 0, SEEK_END);
  sz = ftell(f);
  fseek(f, sz > (long)sizeof(buf) - 1 ? sz - (long)sizeof(buf) + 1 : 0, SEEK_SET);
  sz      = (long)fread(buf, 1, sizeof(buf) - 1, f);
  buf[sz] = 0;
  fclose(f);
  {
    char *p = buf + sz;
    int   nl = 0;
    while (p > buf && nl <= nlines)
      if (*--p == '\n' && p[1]) nl++;
    fprintf(stderr, "--- end of %s ---\n%s%s", log, p == buf ? p : p + 1, sz && buf[sz - 1] != '\n' ? "\n" : "");
  }
}

/* One hipmace run on k ranks; the summary is read into r. */
static PetscErrorCode RunHipmace(const HMScalingOptions *o, PetscInt k, const char xyz[], PetscInt rep, HMScalingRun *r)
{
  char  launcher[1024], extra[1024], nstr[32], summary[PETSC_MAX_PATH_LEN], log[PETSC_MAX_PATH_LEN], cmd[4096] = "";
  char *argv[HM_SC_MAXARGS];
  int   argc = 0, code;
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(launcher, o->mpiexec, sizeof(launcher)));
  PetscCall(PetscStrncpy(extra, o->extra, sizeof(extra)));
  PetscCall(PetscSNPrintf(nstr, sizeof(nstr), "%" PetscInt_FMT, k));
  if (o->repeat > 1) {
    PetscCall(PetscSNPrintf(summary, sizeof(summary), "%s/summary_%" PetscInt_FMT "_r%" PetscInt_FMT ".json", o->out, k, rep + 1));
    PetscCall(PetscSNPrintf(log, sizeof(log), "%s/run_%" PetscInt_FMT "_r%" PetscInt_FMT ".log", o->out, k, rep + 1));
  } else {
    PetscCall(PetscSNPrintf(summary, sizeof(summary), "%s/summary_%" PetscInt_FMT ".json", o->out, k));
    PetscCall(PetscSNPrintf(log, sizeof(log), "%s/run_%" PetscInt_FMT ".log", o->out, k));
  }
  PetscCall(SplitWords(launcher, "-mpiexec", &argc, argv));
  PetscCheck(argc > 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-mpiexec: empty launcher command");
  argv[argc++] = (char *)"-n";
  argv[argc++] = nstr;
  argv[argc++] = (char *)o->hipmace;
  argv[argc++] = (char *)"-structure";
  argv[argc++] = (char *)xyz;
  argv[argc++] = (char *)"-model";
  argv[argc++] = (char *)o->model;
  argv[argc++] = (char *)"-modes";
  argv[argc++] = (char *)"none";
  argv[argc++] = (char *)"-summary";
  argv[argc++] = summary;
  PetscCall(SplitWords(extra, "-hipmace_options", &argc, argv));
  argv[argc] = NULL;
  for (int i = 0; i < argc; i++) {
    PetscCall(PetscStrlcat(cmd, argv[i], sizeof(cmd)));
    if (i + 1 < argc) PetscCall(PetscStrlcat(cmd, " ", sizeof(cmd)));
  }
  remove(summary);
  PetscCall(HMScalingSpawn(argv, log, &code));
  if (code) PrintLogTail(log, 8);
  PetscCheck(code == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "run on %" PetscInt_FMT " ranks failed (exit code %d): %s (output in %s)", k, code, cmd, log);
  PetscCall(HMScalingReadSummary(summary, r));
  PetscCheck(r->ranks == k, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: 'ranks' is %" PetscInt_FMT ", expected %" PetscInt_FMT " (is -mpiexec the launcher of the MPI hipmace was built with?)", summary, r->ranks, k);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static int CmpDouble(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double Median(PetscInt n, double v[])
{
  qsort(v, (size_t)n, sizeof(double), CmpDouble);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ outputs */

static PetscErrorCode WriteText(const char path[], const char *text)
{
  char  tmp[PETSC_MAX_PATH_LEN];
  FILE *f;
  int   ok;
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()));
  f = fopen(tmp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing (%s)", path, strerror(errno));
  ok = fputs(text, f) >= 0;
  ok = (fclose(f) == 0) && ok;
  if (ok) ok = rename(tmp, path) == 0;
  if (!ok) remove(tmp);
  PetscCheck(ok, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static const char *ModeName(HMScalingMode mode)
{
  return mode == HM_SCALING_WEAK ? "weak" : "strong";
}

static const char *BaseName(const char path[])
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* One line naming the model's assumptions (printed, and stored in the JSON). */
static PetscErrorCode Assumptions(const HMScalingModel *m, char buf[], size_t len)
{
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(buf, len,
                          "latency %.4g us and bandwidth %.4g GB/s per rank; cubic domains, perfect load balance; compute %.3g ms/atom from the base run; halo %s (r_max %.4g A, Hessian cutoff %.4g A, density %.4f atoms/A^3); per layer one message to each neighbour rank (up to 26) plus the HIP exchange; energy summed exactly by one all-reduce (log2 P rounds of %.0f B); the serial read + RCB partition + scatter on rank 0 (%.2g us/atom read, %.2g ns per atom and RCB level) reported apart",
                          m->latency * 1e6, m->bandwidth / 1e9, m->rate * 1e3, m->geometric ? "from the cube-shell geometry" : "fitted as c n^(2/3) to the runs", m->r_near, m->r_far, m->density, HM_SC_ENERGY_BYTES, m->read_rate * 1e6, m->rcb_rate * 1e9));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static json_t *PredictionJSON(const HMScalingPrediction *p)
{
  json_t *o = json_object();
  json_object_set_new(o, "ranks", json_integer((json_int_t)p->P));
  json_object_set_new(o, "atoms_per_rank", json_real(p->n));
  json_object_set_new(o, "atoms", json_real(p->N));
  json_object_set_new(o, "halo_near", json_real(p->halo_near));
  json_object_set_new(o, "halo_far", json_real(p->halo_far));
  json_object_set_new(o, "neighbour_ranks_near", json_real(p->nb_near));
  json_object_set_new(o, "neighbour_ranks_far", json_real(p->nb_far));
  json_object_set_new(o, "t_compute_s", json_real(p->t_compute));
  json_object_set_new(o, "t_comm_s", json_real(p->t_comm));
  json_object_set_new(o, "t_total_s", json_real(p->t_total));
  json_object_set_new(o, "efficiency", json_real(p->efficiency));
  json_object_set_new(o, "t_serial_setup_s", json_real(p->t_setup));
  json_object_set_new(o, "efficiency_with_serial_setup", json_real(p->efficiency_setup));
  return o;
}

static PetscErrorCode WriteJSON(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, const char assumptions[], int cores, const char date[], const char host[], const char path[])
{
  json_t *root = json_object(), *jr = json_array(), *jm = json_object(), *jp = json_object(), *jw = json_array(), *pred = json_array();
  char   *text;
  PetscFunctionBegin;
  json_object_set_new(root, "program", json_string("hipmace-scaling " HM_VERSION));
  json_object_set_new(root, "mode", json_string(ModeName(o->mode)));
  json_object_set_new(root, "system", json_string(o->system));
  if (o->molecule[0]) json_object_set_new(root, "molecule", json_string(o->molecule));
  json_object_set_new(root, "model", json_string(o->model));
  json_object_set_new(root, o->mode == HM_SCALING_WEAK ? "atoms_per_rank" : "atoms", json_integer(o->size));
  json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(root, "repeat", json_integer(o->repeat));
  json_object_set_new(root, "mpiexec", json_string(o->mpiexec));
  json_object_set_new(root, "hipmace", json_string(o->hipmace));
  json_object_set_new(root, "cores", json_integer(cores));
  json_object_set_new(root, "host", json_string(host));
  json_object_set_new(root, "date", json_string(date));
  json_object_set_new(root, "efficiency_definition", json_string(o->mode == HM_SCALING_WEAK ? "t(k1)/t(k), k1 the smallest rank count, t = timings_max.total" : "t(k1) k1 / (t(k) k), k1 the smallest rank count, t = timings_max.total"));
  for (PetscInt i = 0; i < nruns; i++) {
    const HMScalingRun *r = &runs[i];
    json_t             *x = json_object(), *lb = json_array(), *st = json_object();
    json_object_set_new(x, "ranks", json_integer(r->ranks));
    json_object_set_new(x, "atoms", json_integer(r->atoms));
    json_object_set_new(x, "atoms_per_rank", json_real((double)r->atoms / (double)r->ranks));
    json_object_set_new(x, "atoms_per_rank_max", json_real(r->atoms_max));
    json_object_set_new(x, "total_s", json_real(r->total_s));
    for (int s = 0; s < HM_SC_NSTAGE; s++) json_object_set_new(st, HMScalingStageNames[s], json_real(r->stage_s[s]));
    json_object_set_new(x, "stage_max_s", st);
    json_object_set_new(x, "efficiency", json_real(r->efficiency));
    json_object_set_new(x, "efficiency_compute", json_real(r->efficiency_compute));
    json_object_set_new(x, "model_efficiency", json_real(r->model_efficiency));
    json_object_set_new(x, "load_imbalance", json_real(r->load_imbalance));
    json_object_set_new(x, "halo_near_max", json_real(r->near_max));
    json_object_set_new(x, "halo_near_mean", json_real(r->near_mean));
    json_object_set_new(x, "halo_far_max", json_real(r->far_max));
    json_object_set_new(x, "halo_far_mean", json_real(r->far_mean));
    for (PetscInt t = 0; t < r->nlayers; t++) json_array_append_new(lb, json_real(r->layer_bytes[t]));
    json_object_set_new(x, "halo_bytes_per_layer_max_rank", lb);
    json_object_set_new(x, "halo_bytes_hip_max_rank", json_real(r->hip_bytes));
    json_object_set_new(x, "hessian_blocks_max_rank", json_real(r->blocks_max));
    json_object_set_new(x, "peak_rss_mb_max_rank", json_real(r->rss_max_mb));
    json_object_set_new(x, "energy_eV", json_real(r->energy));
    json_object_set_new(x, "density_per_A3", json_real(r->density));
    json_object_set_new(x, "repeats", json_integer(r->repeats));
    json_object_set_new(x, "load_average_before", json_real(r->load_average));
    json_object_set_new(x, "oversubscribed", json_boolean(r->oversubscribed));
    json_array_append_new(jr, x);
  }
  json_object_set_new(root, "runs", jr);
  json_object_set_new(jm, "formula", json_string("T(P) = rate n + sum_layers [latency nb_near + h_near(n) width_t 8 / bandwidth] + latency nb_far + h_far(n) hip_width 8 / bandwidth + ceil(log2 P) (latency + energy_bytes / bandwidth)"));
  json_object_set_new(jm, "energy_bytes", json_real(HM_SC_ENERGY_BYTES));
  json_object_set_new(jm, "serial_setup_formula", json_string("T_serial(N, P) = read N + rcb N ceil(log2 P) + (P - 1) latency + scatter_bytes N / bandwidth (rank 0)"));
  json_object_set_new(jm, "assumptions", json_string(assumptions));
  json_object_set_new(jp, "latency_s", json_real(m->latency));
  json_object_set_new(jp, "bandwidth_bytes_per_s", isinf(m->bandwidth) ? json_string("inf") : json_real(m->bandwidth));
  json_object_set_new(jp, "rate_s_per_atom", json_real(m->rate));
  json_object_set_new(jp, "serial_read_s_per_atom", json_real(m->read_rate));
  json_object_set_new(jp, "serial_rcb_s_per_atom_level", json_real(m->rcb_rate));
  json_object_set_new(jp, "density_per_A3", json_real(m->density));
  json_object_set_new(jp, "r_near_A", json_real(m->r_near));
  json_object_set_new(jp, "r_far_A", json_real(m->r_far));
  for (PetscInt t = 0; t < m->nlayers; t++) json_array_append_new(jw, json_real(m->width[t]));
  json_object_set_new(jp, "halo_width_doubles_per_layer", jw);
  json_object_set_new(jp, "halo_width_doubles_hip", json_real(m->hip_width));
  json_object_set_new(jp, "halo_fit_c_near", json_real(m->c_near));
  json_object_set_new(jp, "halo_fit_c_far", json_real(m->c_far));
  json_object_set_new(jp, "halo_model", json_string(m->geometric ? "geometric" : "fit"));
  json_object_set_new(jm, "parameters", jp);
  for (PetscInt i = 0; i < HM_SC_NMODEL; i++) {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_STRONG && o->size / HMScalingModelRanks[i] < 1) break;
    PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, HMScalingModelRanks[i], &p));
    json_array_append_new(pred, PredictionJSON(&p));
    if (HMScalingModelRanks[i] == 1024) {
      json_object_set_new(jm, "efficiency_1024", json_real(p.efficiency));
      json_object_set_new(jm, "efficiency_1024_with_serial_setup", json_real(p.efficiency_setup));
    }
  }
  json_object_set_new(jm, "predictions", pred);
  json_object_set_new(root, "performance_model", jm); /* "model" is the model file */
  text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  json_decref(root);
  PetscCheck(text, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: cannot format the JSON", path);
  PetscCall(WriteText(path, text));
  free(text);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Path of an executable found on PATH, or "" */
static void FindOnPath(const char name[], char out[], size_t len)
{
  const char *path = getenv("PATH"), *p = path;
  out[0]           = 0;
  while (p && *p) {
    const size_t seg = strcspn(p, ":");
    char         cand[PETSC_MAX_PATH_LEN];
    if (seg > 0 && seg + strlen(name) + 2 < sizeof(cand)) {
      memcpy(cand, p, seg);
      cand[seg] = '/';
      strcpy(cand + seg + 1, name);
      if (!access(cand, X_OK)) {
        snprintf(out, len, "%s", cand);
        return;
      }
    }
    p += seg + (p[seg] == ':');
  }
}

/* Two panels: efficiency (measured and the model to 10^4 ranks) and time per stage. Returns PETSC_FALSE
   in *made when gnuplot is not installed. */
static PetscErrorCode Plot(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, int cores, PetscBool *made)
{
  char  gp[PETSC_MAX_PATH_LEN], dm[PETSC_MAX_PATH_LEN], dp[PETSC_MAX_PATH_LEN], png[PETSC_MAX_PATH_LEN], log[PETSC_MAX_PATH_LEN], gnuplot[PETSC_MAX_PATH_LEN], title[1024];
  FILE *f;
  int   code;
  PetscFunctionBegin;
  *made = PETSC_FALSE;
  FindOnPath("gnuplot", gnuplot, sizeof(gnuplot));
  if (!gnuplot[0]) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace-scaling: gnuplot not found (apt-get install gnuplot-nox): %s/scaling.png not written\n", o->out));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscSNPrintf(dm, sizeof(dm), "%s/scaling_measured.dat", o->out));
  PetscCall(PetscSNPrintf(dp, sizeof(dp), "%s/scaling_model.dat", o->out));
  PetscCall(PetscSNPrintf(gp, sizeof(gp), "%s/scaling.gp", o->out));
  PetscCall(PetscSNPrintf(png, sizeof(png), "%s/scaling.png", o->out));
  PetscCall(PetscSNPrintf(log, sizeof(log), "%s/gnuplot.log", o->out));
  f = fopen(dm, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", dm);
  fprintf(f, "# ranks efficiency efficiency_compute total read neighbours layers hessian output oversubscribed\n");
  for (PetscInt i = 0; i < nruns; i++) {
    fprintf(f, "%" PetscInt_FMT " %.6g %.6g %.6g", runs[i].ranks, runs[i].efficiency, runs[i].efficiency_compute, runs[i].total_s);
    for (int s = 0; s < HM_SC_NSTAGE; s++) fprintf(f, " %.6g", runs[i].stage_s[s]);
    fprintf(f, " %d\n", runs[i].oversubscribed ? 1 : 0);
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", dm);
  f = fopen(dp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", dp);
  fprintf(f, "# ranks efficiency efficiency_with_serial_setup t_total t_compute t_comm t_setup\n");
  {
    double last = 0;
    for (int i = 0; i <= 80; i++) {
      const double        P = round(pow(10.0, i / 20.0));
      HMScalingPrediction p;
      if (P == last) continue;
      last = P;
      if (o->mode == HM_SCALING_STRONG && o->size / P < 1) break;
      PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, P, &p));
      fprintf(f, "%.0f %.8g %.8g %.6g %.6g %.6g %.6g\n", P, p.efficiency, p.efficiency_setup, p.t_total, p.t_compute, p.t_comm, p.t_setup);
    }
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", dp);
  if (o->mode == HM_SCALING_WEAK) PetscCall(PetscSNPrintf(title, sizeof(title), "Weak scaling of hipmace: %s, %" PetscInt_FMT " atoms per rank, model %s (%d cores)", o->system, o->size, BaseName(o->model), cores));
  else PetscCall(PetscSNPrintf(title, sizeof(title), "Strong scaling of hipmace: %s, %" PetscInt_FMT " atoms, model %s (%d cores)", o->system, o->size, BaseName(o->model), cores));
  f = fopen(gp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", gp);
  {
    const double kmax = runs[nruns - 1].ranks, xhi2 = PetscMax(2.0 * kmax, 4.0);
    fprintf(f, "# written by hipmace-scaling; run again with: gnuplot %s\n", gp);
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1500,700 noenhanced font 'Sans,11' } else { set terminal png size 1500,700 noenhanced }\n");
    fprintf(f, "set output '%s'\n", png);
    fprintf(f, "set multiplot layout 1,2 title \"%s\" font ',13'\n", title);
    fprintf(f, "set logscale x\nset grid\nset key outside below center horizontal maxrows 3 box samplen 2 width 1\nset bmargin 8\nset xlabel 'MPI ranks P'\n");
    /* ranks beyond the core count: shaded, their times are not scaling data */
    fprintf(f, "set object 1 rect from %g, graph 0 to 20000, graph 1 fc rgb '#ececec' fs solid 1.0 noborder behind\n", cores + 0.5);
    fprintf(f, "set label 1 \"more ranks than cores:\\nhalo/correctness only\" at %g, graph 0.08 left font ',9' textcolor rgb '#707070'\n", (cores + 0.5) * 1.08);
    fprintf(f, "set xrange [0.8:15000]\nset yrange [0:1.12]\nset ytics 0.1\n");
    fprintf(f, "set ylabel '%s'\n", o->mode == HM_SCALING_WEAK ? "parallel efficiency  t(1) / t(P)" : "parallel efficiency  t(1) / (P t(P))");
    fprintf(f, "set title '%s: measured runs and model (latency %g us, %g GB/s per rank)'\n", o->mode == HM_SCALING_WEAK ? "Weak-scaling efficiency" : "Strong-scaling efficiency", m->latency * 1e6, m->bandwidth / 1e9);
    fprintf(f, "plot '%s' u 1:2 w l lw 2.5 lc rgb '#1f77b4' t 'model (distributed part)', \\\n", dp);
    fprintf(f, "     '%s' u 1:3 w l lw 2 dt 2 lc rgb '#d62728' t 'model + serial setup on rank 0', \\\n", dp);
    fprintf(f, "     '%s' u 1:($10 == 0 ? $2 : 1/0) w p pt 7 ps 1.6 lc rgb '#000000' t 'measured: total', \\\n", dm);
    fprintf(f, "     '%s' u 1:($10 == 0 ? $3 : 1/0) w p pt 5 ps 1.3 lc rgb '#2ca02c' t 'measured: layers + Hessian', \\\n", dm);
    fprintf(f, "     '%s' u 1:($10 != 0 ? $2 : 1/0) w p pt 6 ps 1.6 lc rgb '#808080' t 'oversubscribed run'\n", dm);
    fprintf(f, "unset label 1\n");
    if (runs[nruns - 1].oversubscribed) fprintf(f, "set label 1 \"oversubscribed:\\nnot timing data\" at %g, graph 0.5 left font ',9' textcolor rgb '#707070'\n", kmax * 1.1);
    fprintf(f, "set xrange [0.8:%g]\nset autoscale y\nset yrange [0:*]\nset ytics autofreq\n", xhi2);
    fprintf(f, "set xtics (");
    for (PetscInt i = 0; i < nruns; i++) fprintf(f, "%s'%" PetscInt_FMT "' %" PetscInt_FMT, i ? ", " : "", runs[i].ranks, runs[i].ranks);
    fprintf(f, ")\n");
    fprintf(f, "set ylabel 'wall time of the slowest rank [s]'\nset title 'Time per stage (max over ranks)'\n");
    fprintf(f, "plot '%s' u 1:4 w lp lw 2.5 pt 7 lc rgb '#000000' t 'total', \\\n", dm);
    fprintf(f, "     '%s' u 1:7 w lp lw 2 pt 5 lc rgb '#1f77b4' t 'layers', \\\n", dm);
    fprintf(f, "     '%s' u 1:8 w lp lw 2 pt 9 lc rgb '#ff7f0e' t 'Hessian', \\\n", dm);
    fprintf(f, "     '%s' u 1:6 w lp lw 2 pt 11 lc rgb '#2ca02c' t 'neighbours', \\\n", dm);
    fprintf(f, "     '%s' u 1:5 w lp lw 2 pt 13 lc rgb '#9467bd' t 'read (rank 0)', \\\n", dm);
    fprintf(f, "     '%s' u 1:9 w lp lw 2 pt 3 lc rgb '#8c564b' t 'output'\n", dm);
    fprintf(f, "unset multiplot\n");
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", gp);
  {
    char *argv[3] = {gnuplot, gp, NULL};
    PetscCall(HMScalingSpawn(argv, log, &code));
  }
  if (code) PrintLogTail(log, 8);
  PetscCheck(code == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "gnuplot %s failed (exit code %d; output in %s)", gp, code, log);
  *made = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ------------------------------------------------------------------ the study */

/* 1-minute load average (-1 if unknown): runs on a busy machine are slower than the code */
static double LoadAverage(void)
{
  FILE  *f = fopen("/proc/loadavg", "r");
  double l = -1;
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

/* parts of the partition timed: the levels of the 1024-rank prediction, the one the study reports */
#define HM_SC_RCB_PARTS 1024
#define HM_SC_RCB_REPEAT 5

/* Rank 0's serial costs, measured here on the largest structure: reading it, and its RCB partition into
   HM_SC_RCB_PARTS parts (HMDecompPartition, what HMDecompCreate runs), per atom and level (median of
   HM_SC_RCB_REPEAT). A level is a selection, linear in the atoms; the time per atom and level grows
   slowly with the depth (more, smaller boxes), so it is taken at the depth of the headline prediction. */
static PetscErrorCode MeasureSerial(const char xyz[], HMScalingModel *m)
{
  HMSystem       s;
  PetscInt       n;
  int           *part;
  const double  *x;
  double         t[HM_SC_RCB_REPEAT];
  const double   levels = ceil(log2((double)HM_SC_RCB_PARTS) - 1e-12);
  PetscLogDouble t0, t1;
  PetscFunctionBegin;
  PetscCall(PetscTime(&t0));
  PetscCall(HMSystemLoad(PETSC_COMM_SELF, xyz, &s));
  PetscCall(PetscTime(&t1));
  PetscCall(HMSystemGetSize(s, &n));
  m->read_rate = (t1 - t0) / (double)n;
  PetscCall(HMSystemGetPositions(s, &x));
  PetscCall(PetscMalloc1(n + 1, &part));
  for (int r = 0; r < HM_SC_RCB_REPEAT; r++) {
    PetscCall(PetscTime(&t0));
    PetscCall(HMDecompPartition(n, x, HM_PARTITION_RCB, HM_SC_RCB_PARTS, part));
    PetscCall(PetscTime(&t1));
    t[r] = t1 - t0;
  }
  m->rcb_rate = Median(HM_SC_RCB_REPEAT, t) / ((double)n * levels);
  PetscCall(PetscFree(part));
  PetscCall(HMSystemDestroy(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMScalingStudy(const HMScalingOptions *o)
{
  HMScalingRun  *runs, *reps;
  HMScalingModel m;
  HMModel        model;
  HMSystem       sys = NULL;
  PetscInt       widths[HM_SC_MAXLAYER + 1], hipw, nl;
  double         rmax, hrmax, hcut, *vals;
  int            cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  char           path[PETSC_MAX_PATH_LEN], assumptions[1024], date[64], host[256] = "unknown";
  PetscBool      made;
  PetscFunctionBegin;
  PetscCheck(o->nranks >= 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-ranks: no rank counts");
  PetscCheck(o->size >= 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "%s must be >= 1", o->mode == HM_SCALING_WEAK ? "-atoms_per_rank" : "-atoms");
  PetscCheck(o->repeat >= 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-repeat %" PetscInt_FMT ": must be >= 1", o->repeat);
  PetscCheck(o->latency >= 0 && o->bandwidth > 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-latency must be >= 0 and -bandwidth > 0");
  PetscCheck(!access(o->hipmace, X_OK), PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-hipmace %s: not an executable (%s)", o->hipmace, strerror(errno));
  if (mkdir(o->out, 0755)) PetscCheck(errno == EEXIST, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "-out %s: cannot create the folder (%s)", o->out, strerror(errno));
  if (cores < 1) cores = 1;
  {
    const time_t now = time(NULL);
    struct tm    tmv;
    localtime_r(&now, &tmv);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M %Z", &tmv);
    if (gethostname(host, sizeof(host))) PetscCall(PetscStrncpy(host, "unknown", sizeof(host)));
    host[sizeof(host) - 1] = 0;
  }

  /* the model's cutoffs and exchange widths, for the performance model */
  PetscCall(HMModelLoad(PETSC_COMM_SELF, o->model, &model));
  PetscCall(HMModelGetCutoffs(model, &rmax, &hrmax, &hcut));
  PetscCall(HMModelGetNumInteractions(model, &nl));
  PetscCheck(nl <= HM_SC_MAXLAYER, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " interaction layers; at most %d supported", o->model, nl, HM_SC_MAXLAYER);
  PetscCall(HMModelGetHaloWidths(model, widths, &hipw));
  PetscCall(HMModelDestroy(&model));

  PetscCall(PetscCalloc3(o->nranks, &runs, o->repeat, &reps, o->repeat, &vals));
  PetscCall(PetscMemzero(&m, sizeof(m)));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace-scaling: %s scaling, %s, %" PetscInt_FMT " atoms%s, model %s, %d cores, runs in %s\n", ModeName(o->mode), o->system, o->size, o->mode == HM_SCALING_WEAK ? " per rank" : "", o->model, cores, o->out));
  for (PetscInt i = 0; i < o->nranks; i++) {
    const PetscInt k = o->ranks[i];
    HMScalingRun  *r = &runs[i];
    double         rho, load;
    if (o->mode == HM_SCALING_WEAK || !sys) {
      PetscCall(HMSystemDestroy(&sys));
      PetscCall(HMBuildSystem(PETSC_COMM_SELF, o->system, o->mode == HM_SCALING_WEAK ? o->size * k : o->size, o->seed, o->molecule[0] ? o->molecule : NULL, &sys));
    }
    PetscCall(HMScalingDensity(sys, &rho));
    PetscCall(PetscSNPrintf(path, sizeof(path), "%s/system_%" PetscInt_FMT ".xyz", o->out, k));
    PetscCall(HMSystemWriteXYZ(sys, path));
    load = LoadAverage();
    for (PetscInt q = 0; q < o->repeat; q++) {
      PetscCall(RunHipmace(o, k, path, q, &reps[q]));
      load = PetscMax(load, LoadAverage());
    }
    *r = reps[0];
    for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].total_s;
    r->total_s = Median(o->repeat, vals);
    for (int s = 0; s < HM_SC_NSTAGE; s++) {
      for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].stage_s[s];
      r->stage_s[s] = Median(o->repeat, vals);
    }
    for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].load_imbalance;
    r->load_imbalance = Median(o->repeat, vals);
    r->repeats        = o->repeat;
    r->density        = rho;
    r->load_average   = load;
    r->oversubscribed = (PetscBool)(k > cores);
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %4" PetscInt_FMT " ranks: %8" PetscInt_FMT " atoms, total %8.3f s%s, ghosts near %.0f far %.0f (max per rank), load average %.2f%s\n", k, r->atoms, r->total_s, o->repeat > 1 ? " (median)" : "", r->near_max, r->far_max, load, r->oversubscribed ? "  [oversubscribed]" : ""));
  }
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(MeasureSerial(path, &m)); /* the last system written is the largest */
  PetscCall(HMScalingEfficiency(o->mode, o->nranks, runs));

  m.latency   = o->latency;
  m.bandwidth = o->bandwidth;
  m.r_near    = rmax;
  m.r_far     = hcut;
  m.nlayers   = nl;
  for (PetscInt t = 0; t < nl; t++) m.width[t] = (double)widths[t];
  m.hip_width = (double)hipw;
  m.geometric = o->geometric;
  PetscCall(HMScalingModelCalibrate(o->nranks, runs, &m));
  for (PetscInt i = 0; i < o->nranks; i++) {
    HMScalingPrediction p;
    PetscCall(HMScalingModelPredict(&m, o->mode, (double)o->size, (double)runs[i].ranks, &p));
    runs[i].model_efficiency = p.efficiency;
  }
  PetscCall(Assumptions(&m, assumptions, sizeof(assumptions)));

  /* measured runs beside the model */
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n  ranks    atoms  total_s  effic.  eff(L+H)  model   ghosts near max/mean  far max/mean   halo MB/layer  blocks/rank  RSS MB  imbal.\n"));
  for (PetscInt i = 0; i < o->nranks; i++) {
    const HMScalingRun *r  = &runs[i];
    double              lb = 0;
    for (PetscInt t = 0; t < r->nlayers; t++) lb = PetscMax(lb, r->layer_bytes[t]);
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %5" PetscInt_FMT " %8" PetscInt_FMT " %8.3f %6.1f%% %7.1f%% %6.1f%%   %7.0f / %-8.1f %6.0f / %-8.1f %8.3f %12.0f %7.1f %6.3f%s\n", r->ranks, r->atoms, r->total_s, 100 * r->efficiency, 100 * r->efficiency_compute, 100 * r->model_efficiency, r->near_max, r->near_mean, r->far_max,
                          r->far_mean, lb / 1048576.0, r->blocks_max, r->rss_max_mb, r->load_imbalance, r->oversubscribed ? "  oversubscribed: not timing data" : ""));
  }
  {
    double hg[2];
    PetscCall(HMScalingHaloGeometric((double)runs[0].atoms / (double)runs[0].ranks, m.density, m.r_near, &hg[0], NULL));
    PetscCall(HMScalingHaloGeometric((double)runs[0].atoms / (double)runs[0].ranks, m.density, m.r_far, &hg[1], NULL));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  halo: fitted h = c n^(2/3) with c = %.3f (near, r_max %.4g A), %.3f (far, %.4g A); a cube of %.0f atoms at %.4f atoms/A^3 has %.0f / %.0f atoms within the cutoffs\n", m.c_near, m.r_near, m.c_far, m.r_far, (double)runs[0].atoms / (double)runs[0].ranks, m.density, hg[0], hg[1]));
  }
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "  serial on rank 0 (grows with the total N, reported apart): read %.3g us/atom, RCB %.3g ns per atom and level (its partition into %d parts, measured here on %s)\n", m.read_rate * 1e6, m.rcb_rate * 1e9, HM_SC_RCB_PARTS, path));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n  model (%s halo):\n  ranks  atoms/rank  ghosts near    far  nbrs  t_compute   t_comm     t_total  efficiency | serial setup  eff. incl.\n", m.geometric ? "geometric" : "fitted"));
  for (PetscInt i = 0; i < HM_SC_NMODEL; i++) {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_STRONG && o->size / HMScalingModelRanks[i] < 1) break;
    PetscCall(HMScalingModelPredict(&m, o->mode, (double)o->size, HMScalingModelRanks[i], &p));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %5.0f %11.1f %12.0f %6.0f %5.0f %9.4f s %9.2e s %9.4f s %9.3f%% | %10.3f s %8.2f%%\n", p.P, p.n, p.halo_near, p.halo_far, p.nb_far, p.t_compute, p.t_comm, p.t_total, 100 * p.efficiency, p.t_setup, 100 * p.efficiency_setup));
  }
  {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_WEAK || o->size >= 1024) {
      PetscCall(HMScalingModelPredict(&m, o->mode, (double)o->size, 1024, &p));
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "\npredicted %s-scaling efficiency at 1024 ranks: %.2f%% (%.2f%% with the serial read + partition on rank 0) (assumptions: %s)\n", ModeName(o->mode), 100 * p.efficiency, 100 * p.efficiency_setup, assumptions));
    }
  }

  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/scaling.csv", o->out));
  PetscCall(HMScalingWriteCSV(path, o->nranks, runs));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/scaling.json", o->out));
  PetscCall(WriteJSON(o, o->nranks, runs, &m, assumptions, cores, date, host, path));
  PetscCall(Plot(o, o->nranks, runs, &m, cores, &made));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "wrote %s/scaling.csv, %s/scaling.json%s%s%s\n", o->out, o->out, made ? ", " : "", made ? o->out : "", made ? "/scaling.png" : ""));
  PetscCall(PetscFree3(runs, reps, vals));
  PetscFunctionReturn(PETSC_SUCCESS);
}

#ifndef HM_SCALING_NO_MAIN
static const char help[] = "hipmace-scaling: weak/strong scaling runs of hipmace with a performance model to 10^4 ranks.\n\n"
                           "  hipmace-scaling -mode weak|strong -system water|diamond|cluster|peptide (-atoms_per_rank N | -atoms N)\n"
                           "                  -ranks 1,2,4 -model M.safetensors -out DIR [options]\n\n"
                           "  -mode weak|strong       weak: -atoms_per_rank N atoms per rank; strong: -atoms N in total\n"
                           "  -system KIND            builder kind (hipmace-build): water, diamond, cluster (needs -molecule), peptide[:strand,gly]\n"
                           "  -ranks LIST             increasing rank counts, e.g. 1,2,4,8 (runs with more ranks than cores are flagged)\n"
                           "  -model FILE             HIP-MACE model\n"
                           "  -out DIR                DIR/system_<k>.xyz, summary_<k>.json, run_<k>.log, scaling.csv, scaling.json, scaling.png\n"
                           "  -molecule FILE          cluster: the molecule to copy\n"
                           "  -seed S                 builder seed (default 1)\n"
                           "  -repeat R               runs per rank count; times are medians (default 1)\n"
                           "  -mpiexec \"CMD\"          launcher (default: mpiexec --oversubscribe, plus --allow-run-as-root as root)\n"
                           "  -hipmace PATH           hipmace binary (default: $HIPMACE_BIN, else next to this program, else on PATH)\n"
                           "  -hipmace_options \"OPTS\" extra hipmace options, e.g. \"-partition grid\"\n"
                           "  -latency US             model: message latency, microseconds (default 2, InfiniBand HDR)\n"
                           "  -bandwidth GBS          model: bandwidth per rank, GB/s (default 12)\n"
                           "  -halo_model geometric|fit  model halo: cube-shell geometry (default) or c n^(2/3) fitted to the runs\n\n";

/* One line per error (no PETSc traceback): the option or file at fault is named in the message. */
static PetscErrorCode OneLineErrorHandler(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm;
  (void)line;
  (void)func;
  (void)file;
  (void)ctx;
  if (p != PETSC_ERROR_INITIAL) return n;
  {
    const char *text = mess;
    if (!text || !text[0]) PetscErrorMessage(n, &text, NULL);
    fprintf(stderr, "hipmace-scaling: error: %s\n", text ? text : "unknown error");
  }
  return n;
}

/* $HIPMACE_BIN, else hipmace next to this executable, else on PATH */
static void DefaultHipmace(char out[], size_t len)
{
  const char *env = getenv("HIPMACE_BIN");
  char        self[PETSC_MAX_PATH_LEN];
  ssize_t     k;
  if (env && env[0]) {
    snprintf(out, len, "%s", env);
    return;
  }
  k = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (k > 0) {
    char *slash;
    self[k] = 0;
    slash   = strrchr(self, '/');
    if (slash && (size_t)(slash - self) + sizeof("/hipmace") <= len) {
      memcpy(out, self, (size_t)(slash - self));
      strcpy(out + (slash - self), "/hipmace");
      if (!access(out, X_OK)) return;
    }
  }
  FindOnPath("hipmace", out, len);
  if (!out[0]) snprintf(out, len, "hipmace");
}

static PetscErrorCode Run(void)
{
  HMScalingOptions o;
  char             mode[16] = "", ranks[512] = "1,2", halo[16] = "geometric";
  PetscBool        has_mode, has_sys, has_model, has_out, has_apr, has_atoms, help_asked;
  PetscInt         apr = 0, atoms = 0, seed = 1;
  double           lat = 2.0, bw = 12.0;
  PetscMPIInt      size;
  PetscFunctionBegin;
  PetscCall(PetscMemzero(&o, sizeof(o)));
  o.repeat = 1;
  PetscCall(PetscSNPrintf(o.mpiexec, sizeof(o.mpiexec), "mpiexec --oversubscribe%s", geteuid() == 0 ? " --allow-run-as-root" : ""));
  DefaultHipmace(o.hipmace, sizeof(o.hipmace));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace-scaling options", NULL);
  PetscCall(PetscOptionsString("-mode", "weak or strong", NULL, mode, mode, sizeof(mode), &has_mode));
  PetscCall(PetscOptionsString("-system", "water, diamond, cluster or peptide", NULL, o.system, o.system, sizeof(o.system), &has_sys));
  PetscCall(PetscOptionsInt("-atoms_per_rank", "weak: atoms per rank", NULL, apr, &apr, &has_apr));
  PetscCall(PetscOptionsInt("-atoms", "strong: atoms", NULL, atoms, &atoms, &has_atoms));
  PetscCall(PetscOptionsString("-ranks", "rank counts, e.g. 1,2,4", NULL, ranks, ranks, sizeof(ranks), NULL));
  PetscCall(PetscOptionsString("-model", "HIP-MACE model", NULL, o.model, o.model, sizeof(o.model), &has_model));
  PetscCall(PetscOptionsString("-out", "output folder", NULL, o.out, o.out, sizeof(o.out), &has_out));
  PetscCall(PetscOptionsString("-molecule", "cluster: molecule file", NULL, o.molecule, o.molecule, sizeof(o.molecule), NULL));
  PetscCall(PetscOptionsInt("-seed", "builder seed", NULL, seed, &seed, NULL));
  PetscCall(PetscOptionsInt("-repeat", "runs per rank count", NULL, o.repeat, &o.repeat, NULL));
  PetscCall(PetscOptionsString("-mpiexec", "launcher command", NULL, o.mpiexec, o.mpiexec, sizeof(o.mpiexec), NULL));
  PetscCall(PetscOptionsString("-hipmace", "hipmace binary", NULL, o.hipmace, o.hipmace, sizeof(o.hipmace), NULL));
  PetscCall(PetscOptionsString("-hipmace_options", "extra hipmace options", NULL, o.extra, o.extra, sizeof(o.extra), NULL));
  PetscCall(PetscOptionsReal("-latency", "model: latency (microseconds)", NULL, lat, &lat, NULL));
  PetscCall(PetscOptionsReal("-bandwidth", "model: bandwidth per rank (GB/s)", NULL, bw, &bw, NULL));
  PetscCall(PetscOptionsString("-halo_model", "geometric or fit", NULL, halo, halo, sizeof(halo), NULL));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help_asked));
  if (help_asked) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCheck(size == 1, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "run hipmace-scaling as one process: it launches the MPI runs itself");
  PetscCheck(has_mode && (!strcmp(mode, "weak") || !strcmp(mode, "strong")), PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-mode %s: expected weak or strong", has_mode ? mode : "(missing)");
  o.mode = !strcmp(mode, "weak") ? HM_SCALING_WEAK : HM_SCALING_STRONG;
  PetscCheck(has_sys, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "missing -system water|diamond|cluster|peptide (see -help)");
  PetscCheck(has_model, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "missing -model FILE.safetensors (see -help)");
  PetscCheck(has_out, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "missing -out DIR (see -help)");
  if (o.mode == HM_SCALING_WEAK) {
    PetscCheck(has_apr && !has_atoms, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-mode weak takes -atoms_per_rank N (not -atoms)");
    PetscCheck(apr >= 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-atoms_per_rank %" PetscInt_FMT ": must be >= 1", apr);
    o.size = apr;
  } else {
    PetscCheck(has_atoms && !has_apr, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-mode strong takes -atoms N (not -atoms_per_rank)");
    PetscCheck(atoms >= 1, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-atoms %" PetscInt_FMT ": must be >= 1", atoms);
    o.size = atoms;
  }
  PetscCheck(seed >= 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-seed %" PetscInt_FMT ": must be >= 0", seed);
  o.seed = (unsigned long)seed;
  PetscCheck(lat >= 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-latency %g: must be >= 0 (microseconds)", lat);
  PetscCheck(bw > 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-bandwidth %g: must be > 0 (GB/s)", bw);
  o.latency   = lat * 1e-6;
  o.bandwidth = bw * 1e9;
  PetscCheck(!strcmp(halo, "geometric") || !strcmp(halo, "fit"), PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-halo_model %s: expected geometric or fit", halo);
  o.geometric = (PetscBool)!strcmp(halo, "geometric");
  PetscCall(HMScalingParseRanks(ranks, &o.nranks, o.ranks));
  PetscCall(HMScalingStudy(&o));
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  PetscErrorCode ierr;
  if (PetscInitialize(&argc, &argv, NULL, help)) return 1;
  if (PetscPushErrorHandler(OneLineErrorHandler, NULL)) return 1;
  ierr = Run();
  PetscPopErrorHandler();
  if (PetscFinalize()) return 1;
  return ierr ? 1 : 0;
}
#endif

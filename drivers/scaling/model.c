/* hipmace-scaling's performance model: efficiencies, halo geometry and fit, predicted time per rank. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "scaling.h"

const char *const HMScalingStageNames[HM_SC_NSTAGE] = {"read", "neighbours", "layers", "hessian", "output"};
const double      HMScalingModelRanks[]             = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10000};
const PetscInt    HMScalingNModel                   = (PetscInt)(sizeof(HMScalingModelRanks) / sizeof(HMScalingModelRanks[0]));

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
    const double f = mode == HM_SCALING_WEAK ? 1.0 : (double)runs[b].ranks / (double)runs[i].ranks;
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

/* The default path (-read_parallel, one-frame XYZ): every rank reads its N/P atoms (the same parser, so the
   serial read rate), the header is broadcast and the line counts prefix-summed (3 collectives); per RCB
   level the boxes' counts and bounds (2 reductions) and one reduction of 16 counts per box per 4-bit digit
   of the key (16 for the coordinate, ceil(log2 N / 4) for the index ties), each ceil(log2 P) latencies by
   recursive doubling, plus the local radix work; then the all-to-all of the counts and of the atoms to their parts (P - 1 messages each way, as
   MPI_Alltoall(v) sends them). */
PetscErrorCode HMScalingParallelSetup(const HMScalingModel *m, double N, double P, double *t)
{
  const double levels = ceil(log2(P) - 1e-12), hops = ceil(log2(P) - 1e-12), n = N / P;
  const double rounds = 2 + 16 + ceil(ceil(log2(PetscMax(N, 2.0)) - 1e-12) / 4);
  PetscFunctionBegin;
  *t = m->read_rate * n + m->prcb_rate * n * levels;
  if (P > 1) {
    double bytes = HM_SC_SCATTER_BYTES_PER_ATOM * n; /* the atoms to their parts */
    /* level l reduces 16 counts of 8 bytes per box, 2^l boxes, in every round, over ceil(log2 P) hops */
    for (int l = 0; l < (int)levels; l++) bytes += 128.0 * PetscMin(ldexp(1.0, l), P) * rounds * hops;
    *t += m->latency * hops * (3 + levels * rounds) + 2 * m->latency * (P - 1) + (isinf(m->bandwidth) ? 0.0 : bytes / m->bandwidth);
  }
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
    p->nb_near   = PetscMin(p->nb_near, P - 1);
    p->nb_far    = PetscMin(p->nb_far, P - 1);
    for (PetscInt t = 0; t < m->nlayers; t++) bytes += p->halo_near * m->width[t] * 8.0;
    /* the energy all-reduce by recursive doubling: ceil(log2 P) rounds, each a message of the whole buffer */
    bytes += p->halo_far * m->hip_width * 8.0 + ceil(log2(P) - 1e-12) * HM_SC_ENERGY_BYTES;
    msgs      = m->nlayers * p->nb_near + p->nb_far + ceil(log2(P) - 1e-12);
    p->t_comm = m->latency * msgs + (isinf(m->bandwidth) ? 0.0 : bytes / m->bandwidth);
  } else p->nb_near = p->nb_far = 0;
  p->t_total    = p->t_compute + p->t_comm;
  t1            = m->rate * (mode == HM_SCALING_WEAK ? p->n : p->N);
  p->efficiency = mode == HM_SCALING_WEAK ? t1 / p->t_total : t1 / (P * p->t_total);
  PetscCall(HMScalingParallelSetup(m, p->N, P, &p->t_setup));
  PetscCall(HMScalingSerialSetup(m, p->N, P, &p->t_setup_rank0));
  {
    double s1; /* one rank: the same read and no partition either way */
    PetscCall(HMScalingSerialSetup(m, mode == HM_SCALING_WEAK ? p->n : p->N, 1, &s1));
    p->efficiency_setup       = mode == HM_SCALING_WEAK ? (t1 + s1) / (p->t_total + p->t_setup) : (t1 + s1) / (P * (p->t_total + p->t_setup));
    p->efficiency_setup_rank0 = mode == HM_SCALING_WEAK ? (t1 + s1) / (p->t_total + p->t_setup_rank0) : (t1 + s1) / (P * (p->t_total + p->t_setup_rank0));
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

static int CmpDouble(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double HMScalingMedian(PetscInt n, double v[])
{
  qsort(v, (size_t)n, sizeof(double), CmpDouble);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* hipmace-scaling's study: the systems, the runs for every rank count, the calibrated model, the files. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scaling.h"

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
#define HM_SC_RCB_PARTS  1024
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
  m->rcb_rate = HMScalingMedian(HM_SC_RCB_REPEAT, t) / ((double)n * levels);
  {
    /* the parallel RCB's local work: the same partition on one process (its reductions cost nothing here) */
    PetscInt *gid;
    PetscCall(PetscMalloc1(n + 1, &gid));
    for (PetscInt i = 0; i < n; i++) gid[i] = i;
    for (int r = 0; r < HM_SC_RCB_REPEAT; r++) {
      PetscCall(PetscTime(&t0));
      PetscCall(HMDecompPartitionDistributed(PETSC_COMM_SELF, n, gid, x, HM_PARTITION_RCB, HM_SC_RCB_PARTS, part));
      PetscCall(PetscTime(&t1));
      t[r] = t1 - t0;
    }
    m->prcb_rate = HMScalingMedian(HM_SC_RCB_REPEAT, t) / ((double)n * levels);
    PetscCall(PetscFree(gid));
  }
  PetscCall(PetscFree(part));
  PetscCall(HMSystemDestroy(&s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The measured runs beside the model, the halo fit, rank 0's serial costs (measured on path) and the
   model's table to 10^4 ranks, on stdout. */
static PetscErrorCode PrintReport(const HMScalingOptions *o, const HMScalingRun runs[], const HMScalingModel *m, const char path[], const char assumptions[])
{
  PetscFunctionBegin;
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
    PetscCall(HMScalingHaloGeometric((double)runs[0].atoms / (double)runs[0].ranks, m->density, m->r_near, &hg[0], NULL));
    PetscCall(HMScalingHaloGeometric((double)runs[0].atoms / (double)runs[0].ranks, m->density, m->r_far, &hg[1], NULL));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  halo: fitted h = c n^(2/3) with c = %.3f (near, r_max %.4g A), %.3f (far, %.4g A); a cube of %.0f atoms at %.4f atoms/A^3 has %.0f / %.0f atoms within the cutoffs\n", m->c_near, m->r_near, m->c_far, m->r_far, (double)runs[0].atoms / (double)runs[0].ranks, m->density, hg[0], hg[1]));
  }
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "  set-up: read %.3g us/atom (each rank its N/P), parallel RCB %.3g ns per atom and level locally; rank 0's serial RCB %.3g ns per atom and level (partitions into %d parts, measured here on %s)\n", m->read_rate * 1e6, m->prcb_rate * 1e9, m->rcb_rate * 1e9, HM_SC_RCB_PARTS, path));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "\n  model (%s halo):\n  ranks  atoms/rank  ghosts near    far  nbrs  t_compute   t_comm     t_total  efficiency |   set-up  eff. incl. | rank-0 set-up eff. incl.\n", m->geometric ? "geometric" : "fitted"));
  for (PetscInt i = 0; i < HM_SC_NMODEL; i++) {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_STRONG && o->size / HMScalingModelRanks[i] < 1) break;
    PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, HMScalingModelRanks[i], &p));
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  %5.0f %11.1f %12.0f %6.0f %5.0f %9.4f s %9.2e s %9.4f s %9.3f%% | %8.4f s %8.2f%% | %10.3f s %8.2f%%\n", p.P, p.n, p.halo_near, p.halo_far, p.nb_far, p.t_compute, p.t_comm, p.t_total, 100 * p.efficiency, p.t_setup, 100 * p.efficiency_setup, p.t_setup_rank0, 100 * p.efficiency_setup_rank0));
  }
  {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_WEAK || o->size >= 1024) {
      PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, 1024, &p));
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "\npredicted %s-scaling efficiency at 1024 ranks: %.2f%% (%.2f%% with the parallel set-up; %.2f%% with rank 0's serial read + partition) (assumptions: %s)\n", HMScalingModeName(o->mode), 100 * p.efficiency, 100 * p.efficiency_setup, 100 * p.efficiency_setup_rank0, assumptions));
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Local date and time, and the host name, for the study's JSON. */
static PetscErrorCode DateHost(char date[], size_t dlen, char host[], size_t hlen)
{
  const time_t now = time(NULL);
  struct tm    tmv;
  PetscFunctionBegin;
  localtime_r(&now, &tmv);
  strftime(date, dlen, "%Y-%m-%d %H:%M %Z", &tmv);
  if (gethostname(host, hlen)) PetscCall(PetscStrncpy(host, "unknown", hlen));
  host[hlen - 1] = 0;
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
  PetscCall(DateHost(date, sizeof(date), host, sizeof(host)));

  /* the model's cutoffs and exchange widths, for the performance model */
  PetscCall(HMModelLoad(PETSC_COMM_SELF, o->model, &model));
  PetscCall(HMModelGetCutoffs(model, &rmax, &hrmax, &hcut));
  PetscCall(HMModelGetNumInteractions(model, &nl));
  PetscCheck(nl <= HM_SC_MAXLAYER, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " interaction layers; at most %d supported", o->model, nl, HM_SC_MAXLAYER);
  PetscCall(HMModelGetHaloWidths(model, widths, &hipw));
  PetscCall(HMModelDestroy(&model));

  PetscCall(PetscCalloc3(o->nranks, &runs, o->repeat, &reps, o->repeat, &vals));
  PetscCall(PetscMemzero(&m, sizeof(m)));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace-scaling: %s scaling, %s, %" PetscInt_FMT " atoms%s, model %s, %d cores, runs in %s\n", HMScalingModeName(o->mode), o->system, o->size, o->mode == HM_SCALING_WEAK ? " per rank" : "", o->model, cores, o->out));
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
      PetscCall(HMScalingRunHipmace(o, k, path, q, &reps[q]));
      load = PetscMax(load, LoadAverage());
    }
    *r = reps[0];
    for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].total_s;
    r->total_s = HMScalingMedian(o->repeat, vals);
    for (int s = 0; s < HM_SC_NSTAGE; s++) {
      for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].stage_s[s];
      r->stage_s[s] = HMScalingMedian(o->repeat, vals);
    }
    for (PetscInt q = 0; q < o->repeat; q++) vals[q] = reps[q].load_imbalance;
    r->load_imbalance = HMScalingMedian(o->repeat, vals);
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
  PetscCall(HMScalingAssumptions(&m, assumptions, sizeof(assumptions)));

  PetscCall(PrintReport(o, runs, &m, path, assumptions));

  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/scaling.csv", o->out));
  PetscCall(HMScalingWriteCSV(path, o->nranks, runs));
  PetscCall(PetscSNPrintf(path, sizeof(path), "%s/scaling.json", o->out));
  PetscCall(HMScalingWriteJSON(o, o->nranks, runs, &m, assumptions, cores, date, host, path));
  PetscCall(HMScalingPlot(o, o->nranks, runs, &m, cores, &made));
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "wrote %s/scaling.csv, %s/scaling.json%s%s%s\n", o->out, o->out, made ? ", " : "", made ? o->out : "", made ? "/scaling.png" : ""));
  PetscCall(PetscFree3(runs, reps, vals));
  PetscFunctionReturn(PETSC_SUCCESS);
}

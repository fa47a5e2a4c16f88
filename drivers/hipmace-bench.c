/* hipmace-bench: repeated whole-Hessian evaluations of one structure, with per-stage medians and rates. */
#include <hipmace/app.h>
#include <hipmace/eigen.h>
#include <hipmace/hessian.h>
#include <hipmace/log.h>
#include <jansson.h>
#include <unistd.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

static const char help[] = "hipmace-bench: benchmark of the Hessian pipeline (structure -> assembled PETSc matrix).\n\n"
                           "  hipmace-bench -structure FILE -model FILE [-repeat K] [-json FILE] [-hessian_type baij|sbaij] [-forces]\n\n"
                           "Each repetition builds the decomposition and neighbour lists, runs the interaction layers and the\n"
                           "HIP head and assembles the matrix; the model and the structure are read once. Prints per-stage\n"
                           "medians over K runs (default 5), Hessian edges per second, atoms per second, the edge kernel's\n"
                           "flops and achieved GFLOP/s (against the core's FMA peak, measured by the program), peak RSS and the\n"
                           "effective Hessian cutoff. -forces also times the forces (reverse pass, after the layers).\n\n"
                           "  -bench_modes           also time the mode stage alone: HMModesCompute on the last Hessian, K times\n"
                           "                         (reads -modes, -nmodes, -modes_solver, ...): Median time, iterations,\n"
                           "                         operator products, preconditioner applications and set-up, peak RSS per rank.\n\n";

/* The core's double-precision FMA peak, measured: independent chains of fused multiply-adds (enough in
   flight to cover the FMA latency on every FMA unit), as wide as the build's vectors. The edge kernel's
   rate is quoted as a fraction of this figure. */
static double FmaPeakGflops(void)
{
  const long iters = 20000000;
  double     t0, t1, sink = 0;
#if defined(__AVX512F__)
  __m512d       acc[16];
  const __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-6);
  const int     lanes = 8, chains = 16;
  for (int r = 0; r < chains; r++) acc[r] = _mm512_set1_pd(1.0 + r);
  t0 = MPI_Wtime();
  for (long it = 0; it < iters; it++)
    for (int r = 0; r < chains; r++) acc[r] = _mm512_fmadd_pd(acc[r], a, b);
  t1 = MPI_Wtime();
  for (int r = 0; r < chains; r++) sink += _mm512_reduce_add_pd(acc[r]);
#else
  double    acc[64];
  const int lanes = 1, chains = 64;
  for (int r = 0; r < chains; r++) acc[r] = 1.0 + r;
  t0 = MPI_Wtime();
  for (long it = 0; it < iters / 8; it++)
    for (int r = 0; r < chains; r++) acc[r] = fma(acc[r], 0.999999, 1e-6);
  t1 = MPI_Wtime();
  for (int r = 0; r < chains; r++) sink += acc[r];
  (void)lanes;
  return sink == 12345.0 ? 0 : 2.0 * (double)(iters / 8) * chains / (t1 - t0) * 1e-9;
#endif
  return sink == 12345.0 ? 0 : 2.0 * (double)iters * chains * lanes / (t1 - t0) * 1e-9;
}

static int CmpDouble(const void *a, const void *b)
{
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double Median(int n, const double *v)
{
  double s[256];
  for (int i = 0; i < n; i++) s[i] = v[i];
  qsort(s, (size_t)n, sizeof(double), CmpDouble);
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static double RatioMedian(int n, const double *a, const double *b)
{
  double r[256];
  for (int i = 0; i < n; i++) r[i] = a[i] / b[i];
  return Median(n, r);
}
/* Roofline rows: the stages of the layers (hipmace/log.h), then the HIP head's edge kernel. */
#define HM_BENCH_NROOF (HM_ROOF_NSTAGES + 1)

/* The figures of all repetitions: per-run maxima over ranks of the phase times, and the sizes. */
typedef struct {
  double     tn[256], tl[256], th[256], tt[256], tk[256], tf[256], flops;
  PetscBool  forces;
  PetscInt64 hedges, evals, blocks;
  PetscInt   natoms, hwidth;
  char       kname[64];
  /* roofline: per run the slowest rank's time of each stage; flops and bytes summed over ranks */
  double rt[HM_BENCH_NROOF][256], rflops[HM_BENCH_NROOF], rbytes[HM_BENCH_NROOF];
} BenchRuns;

/* The roofline counters of one forward pass (reset before it): times (max over ranks), flops and bytes (sums). */
static PetscErrorCode RooflineCollect(PetscInt r, BenchRuns *b)
{
  double t[HM_ROOF_NSTAGES], tmax[HM_ROOF_NSTAGES], fb[2 * HM_ROOF_NSTAGES], fbsum[2 * HM_ROOF_NSTAGES];

  PetscFunctionBegin;
  for (int s = 0; s < HM_ROOF_NSTAGES; s++) {
    t[s]                    = HMRoofline[s].seconds;
    fb[s]                   = HMRoofline[s].flops;
    fb[HM_ROOF_NSTAGES + s] = HMRoofline[s].bytes;
  }
  PetscCall(MPIU_Allreduce(t, tmax, HM_ROOF_NSTAGES, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  PetscCall(MPIU_Allreduce(fb, fbsum, 2 * HM_ROOF_NSTAGES, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD));
  for (int s = 0; s < HM_ROOF_NSTAGES; s++) {
    b->rt[s][r]  = tmax[s];
    b->rflops[s] = fbsum[s];
    b->rbytes[s] = fbsum[HM_ROOF_NSTAGES + s];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One repetition r: structure -> assembled matrix, timed phase by phase. */
static PetscErrorCode BenchRun(HMModel model, HMSystem sys, const char htype[], PetscInt r, BenchRuns *b, Mat *Hin)
{
  HMEval         ev;
  HMHessian      hs;
  Mat            H;
  const HMGraph *gh;
  double         t0, t1, t2, t3, ks, fl;
  const char    *kname;
  PetscInt64     ne;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  t0 = MPI_Wtime();
  PetscCall(HMEvalCreate(model, &ev));
  PetscCall(HMEvalSetFromOptions(ev));
  PetscCall(HMHessianCreate(ev, &hs));
  PetscCall(HMHessianSetFromOptions(hs));
  PetscCall(HMHessianSetMatType(hs, !strcmp(htype, "sbaij") ? MATSBAIJ : MATBAIJ));
  PetscCall(HMEvalSetSystem(ev, sys));
  PetscCall(PetscArrayzero(HMRoofline, HM_ROOF_NSTAGES));
  t1 = MPI_Wtime();
  PetscCall(HMEvalForward(ev));
  t2 = MPI_Wtime();
  PetscCall(RooflineCollect(r, b));
  if (b->forces) {
    double tf = MPI_Wtime();
    PetscCall(HMEvalComputeForces(ev));
    tf = MPI_Wtime() - tf;
    PetscCall(MPIU_Allreduce(&tf, &b->tf[r], 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    t2 = MPI_Wtime();
  }
  PetscCall(HMHessianAssemble(hs, &H));
  t3 = MPI_Wtime();
  PetscCall(HMHessianGetKernelStats(hs, &kname, &ne, &ks, &fl));
  PetscCall(PetscStrncpy(b->kname, kname, sizeof(b->kname))); /* the name lives in the HMHessian destroyed below */
  PetscCall(HMEvalGetGraph(ev, NULL, &gh));
  {
    double loc[4] = {t1 - t0, t2 - t1, t3 - t2, ks}, mx[4];
    PetscCall(MPIU_Allreduce(loc, mx, 4, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    b->tn[r]                  = mx[0];
    b->tl[r]                  = mx[1];
    b->th[r]                  = mx[2];
    b->tk[r]                  = mx[3];
    b->tt[r]                  = mx[0] + mx[1] + mx[2];
    b->rt[HM_ROOF_NSTAGES][r] = mx[3];
  }
  {
    PetscInt64 loc[2] = {gh->nedges, ne}, sum[2];
    PetscCall(MPIU_Allreduce(loc, sum, 2, MPIU_INT64, MPI_SUM, PETSC_COMM_WORLD));
    b->hedges = sum[0];
    b->evals  = sum[1];
    PetscCall(MPIU_Allreduce(&fl, &b->flops, 1, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD));
  }
  PetscCall(HMHessianGetBlockCount(hs, NULL, &b->blocks));
  if (Hin) PetscCall(HMHessianInputOrder(hs, H, Hin)); /* the mode analysis works in input atom order */
  PetscCall(HMHessianGetHaloWidth(hs, &b->hwidth));
  {
    HMDecomp dd;
    PetscCall(HMEvalGetDecomp(ev, &dd));
    PetscCall(HMDecompGetSizes(dd, &b->natoms, NULL, NULL, NULL));
  }
  PetscCall(MatDestroy(&H));
  PetscCall(HMHessianDestroy(&hs));
  PetscCall(HMEvalDestroy(&ev));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The mode stage alone, K times on one Hessian (input atom order); every rank reads the structure for it. */
typedef struct {
  double       t[256], ts[256], *rss;
  HMModesStats st;
  char         method[320];
} ModeRuns;

static PetscErrorCode BenchModesRun(const char structure[], Mat Hin, PetscInt K, ModeRuns *mr)
{
  HMSystem    all;
  PetscMPIInt size;
  double      rss;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCall(HMSystemLoad(PETSC_COMM_SELF, structure, &all));
  for (PetscInt r = 0; r < K; r++) {
    HMModes     modes;
    const char *method;
    PetscCall(HMModesCreate(PETSC_COMM_WORLD, &modes));
    PetscCall(HMModesSetFromOptions(modes));
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    PetscCall(HMModesCompute(modes, Hin, all));
    PetscCall(HMModesGetStats(modes, &mr->st));
    PetscCall(HMModesGetMethod(modes, &method));
    PetscCall(PetscStrncpy(mr->method, method, sizeof(mr->method)));
    mr->t[r]  = mr->st.seconds;
    mr->ts[r] = mr->st.setup_seconds;
    PetscCall(HMModesDestroy(&modes));
  }
  PetscCall(HMSystemDestroy(&all));
  rss = HMMemoryRSS(PETSC_TRUE) / 1048576.0;
  PetscCall(PetscMalloc1(size, &mr->rss));
  PetscCallMPI(MPI_Allgather(&rss, 1, MPI_DOUBLE, mr->rss, 1, MPI_DOUBLE, PETSC_COMM_WORLD));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode BenchModesPrint(const ModeRuns *mr, int K)
{
  PetscMPIInt size;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  mode stage             %10.4f s   (Median of %d; %s)\n", Median(K, mr->t), K, mr->method));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  mode preconditioner    %10.4f s set-up; last run: %" PetscInt_FMT " iterations, %" PetscInt_FMT " operator products, %" PetscInt_FMT " preconditioner applications\n", Median(K, mr->ts), mr->st.iterations, mr->st.matvecs, mr->st.pcapplies));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  peak RSS per rank      "));
  for (int q = 0; q < (int)size; q++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, " %.1f", mr->rss[q]));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, " MB (whole run, Hessians included)\n"));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The per-stage roofline: Median time, flops, bytes, GFLOP/s per rank (everyone's work over the slowest
   rank's time, divided by the ranks), arithmetic intensity and % of the FMA peak. The HIP head row is the
   edge kernel: its own flop count, and per evaluation the sender's per-atom input and the 3x3 block. */
static PetscErrorCode RooflineView(PetscInt K, PetscMPIInt size, double peak, double layers, PetscBool single, BenchRuns *b, json_t *root)
{
  json_t *arr = root ? json_array() : NULL;
  double  sum = 0;

  PetscFunctionBegin;
  b->rflops[HM_ROOF_NSTAGES] = b->flops;
  b->rbytes[HM_ROOF_NSTAGES] = 8.0 * (double)b->evals * (double)(b->hwidth + 9);
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  roofline per stage (Median time; flops and bytes counted analytically, summed over ranks; rate per rank)\n"));
  if (single) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  -precision single: the radial MLP, the tensor product, the linear map after it and the edge kernel run in float32, whose FMA peak is twice the float64 peak of the %% column\n"));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "    %-22s %10s %10s %10s %8s %9s %7s\n", "stage", "time ms", "MFLOP", "MB", "flop/B", "GFLOP/s", "% peak"));
  for (int s = 0; s < HM_BENCH_NROOF; s++) {
    const char  *name = s < HM_ROOF_NSTAGES ? HMRooflineStageNames[s] : "HIP head (edge kernel)";
    const double t = Median((int)K, b->rt[s]), f = b->rflops[s], by = b->rbytes[s];
    const double rate = t > 0 ? f / (t * size) * 1e-9 : 0.0;
    if (s < HM_ROOF_NSTAGES) sum += t;
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "    %-22s %10.3f %10.2f %10.2f %8.2f %9.3g %6.1f%%\n", name, 1e3 * t, f * 1e-6, by * 1e-6, by > 0 ? f / by : 0.0, rate, 100.0 * rate / peak));
    if (arr) {
      json_t *o = json_object();
      json_object_set_new(o, "stage", json_string(name));
      json_object_set_new(o, "seconds", json_real(t));
      json_object_set_new(o, "flop", json_real(f));
      json_object_set_new(o, "bytes", json_real(by));
      json_object_set_new(o, "gflops_per_rank", json_real(rate));
      json_object_set_new(o, "fraction_of_peak", json_real(rate / peak));
      json_array_append_new(arr, o);
    }
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "    %-22s %10.3f   (halo exchanges, radial basis, spherical harmonics, allocations)\n", "layers: rest", 1e3 * (layers - sum)));
  if (root) json_object_set_new(root, "roofline", arr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The mode-stage figures of -bench_modes as a JSON object (medians over the K runs). */
static json_t *ModeRunsJSON(const ModeRuns *mr, PetscMPIInt size, int K)
{
  json_t *mo = json_object(), *rs = json_array();
  for (int q = 0; q < (int)size; q++) json_array_append_new(rs, json_real(mr->rss[q]));
  json_object_set_new(mo, "method", json_string(mr->method));
  json_object_set_new(mo, "seconds", json_real(Median(K, mr->t)));
  json_object_set_new(mo, "setup_seconds", json_real(Median(K, mr->ts)));
  json_object_set_new(mo, "iterations", json_integer(mr->st.iterations));
  json_object_set_new(mo, "matvecs", json_integer(mr->st.matvecs));
  json_object_set_new(mo, "pcapplies", json_integer(mr->st.pcapplies));
  json_object_set_new(mo, "peak_rss_mb_per_rank", rs);
  return mo;
}

int main(int argc, char **argv)
{
  char        structure[PETSC_MAX_PATH_LEN] = "", model_path[PETSC_MAX_PATH_LEN] = "", json[PETSC_MAX_PATH_LEN] = "", htype[16] = "baij";
  PetscBool   has_s, has_m, has_j;
  PetscInt    K           = 5;
  PetscBool   bench_modes = PETSC_FALSE;
  Mat         Hin         = NULL;
  ModeRuns    mr          = {.rss = NULL};
  HMModel     model;
  HMSystem    sys = NULL;
  PetscMPIInt rank, size;
  double      rmax, hrmax, hcut, read_s, peak;
  PetscBool   single = PETSC_FALSE;
  BenchRuns   runs   = {.forces = PETSC_FALSE, .flops = 0, .hedges = 0, .evals = 0, .blocks = 0, .natoms = 0, .kname = ""};

  PetscCall(HMInitialize(&argc, &argv, NULL, help));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace-bench options", NULL);
  PetscCall(PetscOptionsString("-structure", "structure file", NULL, structure, structure, sizeof(structure), &has_s));
  PetscCall(PetscOptionsString("-model", "model file", NULL, model_path, model_path, sizeof(model_path), &has_m));
  PetscCall(PetscOptionsString("-json", "write the figures as JSON", NULL, json, json, sizeof(json), &has_j));
  PetscCall(PetscOptionsInt("-repeat", "repetitions", NULL, K, &K, NULL));
  PetscCall(PetscOptionsString("-hessian_type", "baij or sbaij", NULL, htype, htype, sizeof(htype), NULL));
  PetscCall(PetscOptionsBool("-forces", "also time the forces", NULL, runs.forces, &runs.forces, NULL));
  PetscCall(PetscOptionsBool("-bench_modes", "also time the mode stage alone (HMModesCompute, -modes_* options)", NULL, bench_modes, &bench_modes, NULL));
  PetscOptionsEnd();
  PetscCheck(has_s && has_m, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "hipmace-bench needs -structure and -model (see -help)");
  {
    char prec[16] = "double";
    PetscCall(PetscOptionsGetString(NULL, NULL, "-precision", prec, sizeof(prec), NULL));
    single = (PetscBool)!strcmp(prec, "single");
  }
  PetscCheck(K >= 1 && K <= 256, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-repeat %" PetscInt_FMT ": expected 1..256", K);

  read_s = MPI_Wtime();
  PetscCall(HMModelLoad(PETSC_COMM_WORLD, model_path, &model));
  if (rank == 0) PetscCall(HMSystemLoad(PETSC_COMM_SELF, structure, &sys));
  read_s = MPI_Wtime() - read_s;
  PetscCall(HMModelGetCutoffs(model, &rmax, &hrmax, &hcut));
  for (PetscInt r = 0; r < K; r++) PetscCall(BenchRun(model, sys, htype, r, &runs, bench_modes && r == K - 1 ? &Hin : NULL));
  if (bench_modes) PetscCall(BenchModesRun(structure, Hin, K, &mr));
  PetscCall(MatDestroy(&Hin));
  {
    double p = FmaPeakGflops();
    PetscCall(MPIU_Allreduce(&p, &peak, 1, MPI_DOUBLE, MPI_MIN, PETSC_COMM_WORLD));
  }
  {
    const double mn = Median((int)K, runs.tn), ml = Median((int)K, runs.tl), mh = Median((int)K, runs.th), mt = Median((int)K, runs.tt), mk = Median((int)K, runs.tk);
    double       rss  = HMMemoryRSS(PETSC_TRUE) / 1048576.0, rssmax;
    const double rate = mk > 0 ? runs.flops / (mk * size) * 1e-9 : 0.0; /* the slowest rank's time for everyone's work */
    PetscCall(MPIU_Allreduce(&rss, &rssmax, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace-bench: %" PetscInt_FMT " atoms (%s), model %s, %d rank(s), %" PetscInt_FMT " runs (medians), layers in %s precision\n", runs.natoms, structure, model_path, (int)size, K, single ? "single" : "double"));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  read (once)            %10.4f s\n", read_s));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  partition+neighbours   %10.4f s\n", mn));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  interaction layers     %10.4f s\n", ml));
    if (runs.forces) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  forces (reverse pass)  %10.4f s   (%.2f x the layers; Median of the per-run ratios %.2f)\n", Median((int)K, runs.tf), Median((int)K, runs.tf) / ml, RatioMedian((int)K, runs.tf, runs.tl)));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  HIP head + assembly    %10.4f s   (edge kernel %s: %.4f s)\n", mh, runs.kname, mk));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  total (structure -> assembled matrix) %10.4f s\n", mt));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  Hessian graph          %lld directed edges within %g A (hessian_r_max %g A), %lld stored blocks\n", (long long)runs.hedges, hcut, hrmax, (long long)runs.blocks));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  rates                  %.4g Hessian edges/s, %.4g atoms/s\n", runs.hedges / mt, runs.natoms / mt));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  edge kernel            %lld directed-edge evaluations, %.4g GFLOP, %.3g GFLOP/s per rank = %.1f%% of the FMA peak\n", (long long)runs.evals, runs.flops * 1e-9, rate, 100.0 * rate / peak));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  FMA peak               %.3g GFLOP/s per core (measured: independent FMA chains, slowest rank)\n", peak));
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  peak RSS               %.1f MB (largest rank)\n", rssmax));
    if (bench_modes) PetscCall(BenchModesPrint(&mr, (int)K));
    {
      json_t *root = has_j && rank == 0 ? json_object() : NULL;
      PetscCall(RooflineView(K, size, peak, ml, single, &runs, root));
      if (root) {
        json_object_set_new(root, "structure", json_string(structure));
        json_object_set_new(root, "model", json_string(model_path));
        json_object_set_new(root, "natoms", json_integer(runs.natoms));
        json_object_set_new(root, "ranks", json_integer(size));
        json_object_set_new(root, "precision", json_string(single ? "single" : "double"));
        json_object_set_new(root, "repeat", json_integer(K));
        json_object_set_new(root, "read_s", json_real(read_s));
        json_object_set_new(root, "neighbours_s", json_real(mn));
        json_object_set_new(root, "layers_s", json_real(ml));
        json_object_set_new(root, "hessian_s", json_real(mh));
        if (runs.forces) json_object_set_new(root, "forces_s", json_real(Median((int)K, runs.tf)));
        json_object_set_new(root, "edge_kernel_s", json_real(mk));
        json_object_set_new(root, "total_s", json_real(mt));
        json_object_set_new(root, "edge_kernel", json_string(runs.kname));
        json_object_set_new(root, "hessian_edges", json_integer(runs.hedges));
        json_object_set_new(root, "edge_evaluations", json_integer(runs.evals));
        json_object_set_new(root, "edge_kernel_flop", json_real(runs.flops));
        json_object_set_new(root, "edge_kernel_gflops_per_rank", json_real(rate));
        json_object_set_new(root, "FmaPeakGflops", json_real(peak));
        json_object_set_new(root, "edge_kernel_fraction_of_peak", json_real(rate / peak));
        json_object_set_new(root, "edges_per_s", json_real(runs.hedges / mt));
        json_object_set_new(root, "atoms_per_s", json_real(runs.natoms / mt));
        json_object_set_new(root, "hessian_blocks", json_integer(runs.blocks));
        json_object_set_new(root, "hessian_cutoff", json_real(hcut));
        json_object_set_new(root, "peak_rss_mb", json_real(rssmax));
        if (bench_modes) json_object_set_new(root, "modes", ModeRunsJSON(&mr, size, (int)K));
        PetscCheck(json_dump_file(root, json, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: cannot write", json);
        json_decref(root);
      }
    }
  }
  if (bench_modes) PetscCall(PetscFree(mr.rss));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(HMModelDestroy(&model));
  PetscCall(HMFinalize());
  return 0;
}

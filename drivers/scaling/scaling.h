/* hipmace-scaling's units: the performance model, the launcher of hipmace runs, the writers of the
   study's files, and the study itself (drivers/hipmace-scaling.c parses options and calls them). */
#pragma once

#include <hipmace/builder.h>
#include <hipmace/decomp.h>
#include <hipmace/model.h>

#define HM_SC_NSTAGE   5
#define HM_SC_MAXLAYER 16
#define HM_SC_MAXRANKS 64
#define HM_SC_MAXARGS  128
/* the energy is one exact all-reduce of two columns (HMDecompSumExact): a fixed message whatever N and P */
#define HM_SC_ENERGY_BYTES (2.0 * HM_SUM_EXACT_WORDS * sizeof(PetscInt64))
/* rank 0 scatters gid, pidx (PetscInt), Z (int), mass and position (doubles) per atom */
#define HM_SC_SCATTER_BYTES_PER_ATOM (2.0 * sizeof(PetscInt) + sizeof(int) + 4.0 * sizeof(double))
/* open systems: density from occupied cubic voxels of this edge (A) */
#define HM_SC_VOXEL 4.0

/* the per-stage timings of a hipmace summary, in its order */
extern const char *const HMScalingStageNames[HM_SC_NSTAGE];

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
  double    prcb_rate;          /* s per atom per level of the parallel RCB's local work (radix selection) */
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
  double t_setup, efficiency_setup;             /* with the set-up added: parallel read, partition and redistribution */
  double t_setup_rank0, efficiency_setup_rank0; /* with rank 0's serial read/partition/scatter instead */
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

/* The rank counts the model is tabulated at: 1, 2, 4, ..., 4096, 10^4. */
extern const double   HMScalingModelRanks[];
extern const PetscInt HMScalingNModel;
#define HM_SC_NMODEL HMScalingNModel

/* model.c: the performance model and the pure functions it rests on */
/* "1,2,4": strictly increasing counts >= 1. */
PetscErrorCode HMScalingParseRanks(const char str[], PetscInt *n, PetscInt ranks[]);
/* Parallel efficiency against the run with the fewest ranks: weak t(k1)/t(k), strong t(k1) k1/(t(k) k). */
PetscErrorCode HMScalingEfficiency(HMScalingMode mode, PetscInt nruns, HMScalingRun runs[]);
/* Atoms within r of a cube of n atoms at density rho, and the ranks such a shell touches. */
PetscErrorCode HMScalingHaloGeometric(double n, double rho, double r, double *halo, double *nb);
/* Least-squares c of h = c n^(2/3) over the runs with a halo; near or far ghosts. */
PetscErrorCode HMScalingFitHalo(PetscInt nruns, const HMScalingRun runs[], PetscBool far, double *c);
/* Rank 0's serial read, partition and scatter of N atoms for P ranks (-read_parallel false, other formats). */
PetscErrorCode HMScalingSerialSetup(const HMScalingModel *m, double N, double P, double *t);
/* The parallel set-up of N atoms on P ranks: each rank reads N/P, the RCB's radix selection (local work and
   a reduction per key bit per level), the all-to-all to the parts. */
PetscErrorCode HMScalingParallelSetup(const HMScalingModel *m, double N, double P, double *t);
/* size: atoms per rank (weak) or atoms in total (strong). */
PetscErrorCode HMScalingModelPredict(const HMScalingModel *m, HMScalingMode mode, double size, double P, HMScalingPrediction *p);
/* Compute rate, density and halo fits from the measured runs. */
PetscErrorCode HMScalingModelCalibrate(PetscInt nruns, const HMScalingRun runs[], HMScalingModel *m);
/* Density (atoms/A^3): periodic N/V, open systems from interior voxels. */
PetscErrorCode HMScalingDensity(HMSystem sys, double *rho);
/* Median of v[0..n) (sorts v). */
double HMScalingMedian(PetscInt n, double v[]);

/* launch.c: running hipmace and reading what it wrote */
/* Runs argv (PATH search), stdout and stderr to log; the exit code (128 + signal). */
PetscErrorCode HMScalingSpawn(char *const argv[], const char log[], int *code);
/* One hipmace run on k ranks (repeat rep); its summary is read into r. */
PetscErrorCode HMScalingRunHipmace(const HMScalingOptions *o, PetscInt k, const char xyz[], PetscInt rep, HMScalingRun *r);
/* Fills the measured fields of r (not the efficiencies) from a hipmace -summary file. */
PetscErrorCode HMScalingReadSummary(const char path[], HMScalingRun *r);
/* The last lines of a failed run's log to stderr. */
void HMScalingPrintLogTail(const char log[], int nlines);
/* Path of an executable found on PATH, or "". */
void HMScalingFindOnPath(const char name[], char out[], size_t len);

/* writers.c: scaling.csv, scaling.json, the plot */
const char    *HMScalingModeName(HMScalingMode mode);
PetscErrorCode HMScalingWriteCSV(const char path[], PetscInt nruns, const HMScalingRun runs[]);
/* One line naming the model's assumptions (printed, and stored in the JSON). */
PetscErrorCode HMScalingAssumptions(const HMScalingModel *m, char buf[], size_t len);
PetscErrorCode HMScalingWriteJSON(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, const char assumptions[], int cores, const char date[], const char host[], const char path[]);
/* Efficiency and time-per-stage panels with gnuplot; *made PETSC_FALSE when gnuplot is not installed. */
PetscErrorCode HMScalingPlot(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, int cores, PetscBool *made);

/* study.c: builds the systems, runs hipmace for every rank count, calibrates the model, writes it all. */
PetscErrorCode HMScalingStudy(const HMScalingOptions *o);

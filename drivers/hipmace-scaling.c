/* hipmace-scaling: weak/strong scaling runs of hipmace (CSV, JSON, PNG) and a latency-bandwidth model to 10^4 ranks. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hipmace/app.h>
#include "scaling/scaling.h"
#include "hmmain.h"

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
  HMScalingFindOnPath("hipmace", out, len);
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
  return HMDriverMain(argc, argv, help, "hipmace-scaling", Run);
}

/* Registration of hipmace's log stages and events; progress messages for long loops. */
#include <hipmace/log.h>
#include <stdio.h>

HMLogIds         HMLog;
static PetscBool registered = PETSC_FALSE;

PetscErrorCode HMLogInitialize(void)
{
  PetscFunctionBegin;
  if (registered) PetscFunctionReturn(PETSC_SUCCESS);
  registered = PETSC_TRUE;
  PetscCall(PetscLogStageRegister("Partition", &HMLog.partition));
  PetscCall(PetscLogStageRegister("Ghosts", &HMLog.ghosts));
  PetscCall(PetscLogStageRegister("Neighbour lists", &HMLog.neighbours));
  for (int t = 0; t < HM_LOG_MAX_LAYERS; t++) {
    char name[32];
    PetscCall(PetscSNPrintf(name, sizeof(name), "Layer %d", t));
    PetscCall(PetscLogStageRegister(name, &HMLog.layer[t]));
  }
  PetscCall(PetscLogStageRegister("HIP head", &HMLog.hip));
  PetscCall(PetscLogStageRegister("Assembly", &HMLog.assembly));
  {
    PetscClassId id;
    PetscCall(PetscClassIdRegister("hipmace", &id));
    PetscCall(PetscLogEventRegister("HMHaloExchange", id, &HMLog.halo));
    PetscCall(PetscLogEventRegister("HMRadialMLP", id, &HMLog.radial));
    PetscCall(PetscLogEventRegister("HMConvTP", id, &HMLog.conv));
    PetscCall(PetscLogEventRegister("HMSymContract", id, &HMLog.symcon));
    PetscCall(PetscLogEventRegister("HMEdgeKernel", id, &HMLog.edge_kernel));
    PetscCall(PetscLogEventRegister("HMNodeBlocks", id, &HMLog.node_blocks));
    PetscCall(PetscLogEventRegister("HMMatSetValues", id, &HMLog.setvalues));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProgress(MPI_Comm comm, const char what[], double done, double total, double *last)
{
  static double interval = -1;
  PetscMPIInt   rank;
  double        now;
  PetscFunctionBegin;
  if (interval < 0) {
    interval = 30;
    PetscCall(PetscOptionsGetReal(NULL, NULL, "-progress_interval", &interval, NULL));
  }
  if (interval <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank) PetscFunctionReturn(PETSC_SUCCESS);
  now = MPI_Wtime();
  if (*last == 0) *last = now;
  if (now - *last >= interval) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  [progress] %s: %.0f of %.0f (%.1f%%) on rank 0\n", what, done, total, total > 0 ? 100.0 * done / total : 100.0));
    *last = now;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

double HMMemoryRSS(PetscBool peak)
{
  FILE       *f   = fopen("/proc/self/status", "r");
  const char *key = peak ? "VmHWM:" : "VmRSS:";
  char        line[256];
  double      kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof(line), f))
    if (!strncmp(line, key, 6)) kb = atof(line + 6);
  fclose(f);
  return kb * 1024.0;
}

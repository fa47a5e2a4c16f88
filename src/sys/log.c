/* The package initialiser of src/sys: hipmace's log stages and events, registered once, and the options of src/sys. */
#include <hipmace/log.h>

HMLogIds          HMLog;
HMRooflineCount   HMRoofline[HM_ROOF_NSTAGES];
const char *const HMRooflineStageNames[HM_ROOF_NSTAGES] = {"radial MLP", "convolution TP", "linear maps", "symmetric contraction", "readouts"};
static PetscBool  registered                            = PETSC_FALSE;

static PetscErrorCode RegisterLog(void)
{
  PetscClassId id;

  PetscFunctionBegin;
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
  PetscCall(PetscClassIdRegister("hipmace", &id));
  PetscCall(PetscLogEventRegister("HMHaloExchange", id, &HMLog.halo));
  PetscCall(PetscLogEventRegister("HMRadialMLP", id, &HMLog.radial));
  PetscCall(PetscLogEventRegister("HMConvTP", id, &HMLog.conv));
  PetscCall(PetscLogEventRegister("HMSymContract", id, &HMLog.symcon));
  PetscCall(PetscLogEventRegister("HMEdgeKernel", id, &HMLog.edge_kernel));
  PetscCall(PetscLogEventRegister("HMNodeBlocks", id, &HMLog.node_blocks));
  PetscCall(PetscLogEventRegister("HMMatSetValues", id, &HMLog.setvalues));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSysSetFromOptions(void)
{
  double    interval;
  PetscBool set, ret = PETSC_TRUE;

  PetscFunctionBegin;
  PetscCall(HMProgressGetInterval(&interval));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace system options", "HMSys");
  PetscCall(PetscOptionsReal("-progress_interval", "Seconds between progress messages of long loops on rank 0 (0 = off)", "HMProgressSetInterval", interval, &interval, &set));
  PetscCall(PetscOptionsBool("-memory_return", "Give freed large arrays back to the system at once (glibc mmap, which Open MPI turns off): lower memory peaks", "HMMemorySetReturnToSystem", ret, &ret, NULL));
  PetscOptionsEnd();
  if (set) PetscCall(HMProgressSetInterval(interval));
  PetscCall(HMMemorySetReturnToSystem(ret));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSysInitializePackage(void)
{
  PetscFunctionBegin;
  if (registered) PetscFunctionReturn(PETSC_SUCCESS);
  registered = PETSC_TRUE;
  PetscCall(RegisterLog());
  PetscCall(HMSysSetFromOptions());
  PetscFunctionReturn(PETSC_SUCCESS);
}

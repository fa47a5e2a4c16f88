/* PETSc log stages and events of hipmace (one stage per phase, events for hot kernels). */
#pragma once

#include <hipmace/sys.h>

#define HM_LOG_MAX_LAYERS 8

typedef struct {
  PetscLogStage partition, ghosts, neighbours, layer[HM_LOG_MAX_LAYERS], hip, assembly;
  PetscLogEvent halo, radial, conv, symcon, edge_kernel, node_blocks, setvalues;
} HMLogIds;

PETSC_EXTERN HMLogIds HMLog;
/* Registers the stages and events once per process (called by the library's entry points). */
PETSC_EXTERN PetscErrorCode HMLogInitialize(void);
/* Resident set size of this process in bytes: current (VmRSS) or peak (VmHWM); 0 if unknown. */
PETSC_EXTERN double HMMemoryRSS(PetscBool peak);
/* Progress of long loops on rank 0 of comm, at most every -progress_interval seconds (default 30, 0 off). */
PETSC_EXTERN PetscErrorCode HMProgress(MPI_Comm, const char what[], double done, double total, double *last);

/* PETSc log stages and events of hipmace (one stage per phase, events for hot kernels). */
#pragma once

#include <hipmace/sys.h>

#define HM_LOG_MAX_LAYERS 8

typedef struct {
  PetscLogStage partition, ghosts, neighbours, layer[HM_LOG_MAX_LAYERS], hip, assembly;
  PetscLogEvent halo, radial, conv, symcon, edge_kernel, node_blocks, setvalues;
} HMLogIds;

/* Filled by HMSysInitializePackage (hipmace/sys.h). */
PETSC_EXTERN HMLogIds HMLog;

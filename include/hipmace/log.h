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

/* Per-stage roofline counters of the interaction layers and readouts (hipmace-bench): wall time, the
   flops the kernels execute and their compulsory memory traffic, counted analytically from the layer
   dimensions (src/nn/cost.c). Accumulated by every forward pass of this process; reset them to zero
   before a measurement. */
typedef enum {
  HM_ROOF_RADIAL,  /* radial MLP of the edges */
  HM_ROOF_CONV,    /* convolution tensor product (with the channel-innermost transpositions) */
  HM_ROOF_LINEAR,  /* linear maps and skip tensor products of the layers */
  HM_ROOF_SYMCON,  /* symmetric contraction */
  HM_ROOF_READOUT, /* readouts */
  HM_ROOF_NSTAGES
} HMRooflineStage;

typedef struct {
  double seconds, flops, bytes;
} HMRooflineCount;

PETSC_EXTERN HMRooflineCount   HMRoofline[HM_ROOF_NSTAGES];
PETSC_EXTERN const char *const HMRooflineStageNames[HM_ROOF_NSTAGES];

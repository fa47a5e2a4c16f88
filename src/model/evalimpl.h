/* Private layout of HMEval (the model module only; the Hessian reads an evaluation through eval.h). */
#pragma once

/* Owned atoms per chunk of the node-wise part of a layer (src/model/layer.c; the memory estimate in
   eval.c counts one chunk of work arrays). */
#define HM_LAYER_ATOM_CHUNK 512

#include "model/modelimpl.h"
#include <hipmace/eval.h>

struct _p_HMEval {
  HMModel         model;
  HMDecomp        dd;
  PetscInt        N, n, nl, rstart; /* global atoms, owned atoms, owned + ghosts, first partition index */
  const PetscInt *gid, *pidx;
  int            *elem;   /* [nl] model element index of every local atom */
  const HMGraph  *g, *gh; /* main graph (r_max), Hessian graph (hcut); owned senders */
  double          hcut;   /* cutoff of gh: the effective one unless HMEvalSetHessianCutoff chose another */
  HMPartitionType ptype;
  HMPrecision     precision;
  char           *prefix;
  char           *src; /* rank 0: the structure's source, for messages */
  PetscBool       forward_done;
  PetscBool       feats_released;       /* HMEvalReleaseNodeFeatures freed feats[]; HMEvalForward recomputes them */
  int             feats_bad[2];         /* guard scan of the released features: stage, input atom (guards.c) */
  double         *feats[HM_MAX_LAYERS]; /* [n][dimH], owned atoms; main layers, then the extra Hessian layers */
  double         *node_energy, energy;
  /* forces.c: set by HMEvalComputeForces */
  PetscBool forces_done, has_stress;
  double   *forces;          /* [n][3] eV/A, owned atoms */
  double    stress[9], fmax; /* eV/A^3 (periodic in all three axes), max |F| */
};

/* guards.c: earliest non-finite node feature, stage GUARD_FEATURES + layer and input atom (INT_MAX, INT_MAX: none). */
PETSC_INTERN void HMEvalScanFeatures(HMEval, int *stage, int *atom);

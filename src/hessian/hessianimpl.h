/* Private layout of HMHessian and the edge-kernel interface: what a kernel under src/hessian/kernels/ sees. */
#pragma once

#include <hipmace/hessian.h>
#include "model/modelimpl.h"

/* Directed edges per chunk of the direct kernel (per-edge radial weights never exist for the whole graph). */
#define HM_EDGE_CHUNK 256

/* An edge kernel. The interface (hessian.c) checks arguments, times the calls and logs the event, then
   calls through the table; a kernel counts its own evaluations and flops (h->edge_evals, h->edge_flops).
   Blocks come out as e9 (irreps, hessian_proj_edges output) and/or Cartesian M, either may be NULL. */
typedef struct _HMHessianKernelOps *HMHessianKernelOps;
struct _HMHessianKernelOps {
  /* optional: the kernel's own options, inside HMHessianSetFromOptions' PetscOptionsBegin/End */
  PetscErrorCode (*setfromoptions)(HMHessian, PetscOptionItems *);
  /* collective, once: per-atom inputs of owned atoms from the layer features, then their halo (ghosts
     within the Hessian cutoff), through HMEvalGetNodeFeatures and HMDecompHaloExchange */
  PetscErrorCode (*prepare)(HMHessian);
  PetscErrorCode (*edgeblocks)(HMHessian, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[]);
  PetscErrorCode (*pairs)(HMHessian, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[]);
  /* doubles per ghost moved by prepare's halo exchange */
  PetscErrorCode (*halowidth)(HMHessian, PetscInt *);
  /* bytes of per-atom inputs (nl atoms) and work arrays, estimated before prepare */
  PetscErrorCode (*memory)(HMHessian, double *bytes);
  /* flops per directed edge and per pair (both directions) */
  PetscErrorCode (*flops)(HMHessian, double *per_edge, double *per_pair);
  /* lowest input atom (INT_MAX if none) whose per-atom inputs are not finite, and the used layer k */
  PetscErrorCode (*checkfinite)(HMHessian, int *atom, int *k);
  PetscErrorCode (*destroy)(HMHessian);
};

struct _p_HMHessian {
  HMEval                     ev;
  HMModel                    model;
  char                      *type_name;
  char                      *prefix;
  struct _HMHessianKernelOps ops[1];
  void                      *data; /* the kernel's */
  PetscBool                  prune, setup;
  PetscBool                  release_features; /* HMHessianAssemble: the kernel's prepare may release the node
                                                  features once its per-atom inputs of owned atoms are made */
  double                     table_tol;
  char                       mattype[64];
  PetscInt64                 edge_evals; /* directed edges evaluated by the kernel so far */
  double                     edge_seconds, edge_flops;
};

/* Built-in kernels, one file each under src/hessian/kernels/. */
PETSC_INTERN PetscErrorCode HMHessianCreate_Direct(HMHessian);
PETSC_INTERN PetscErrorCode HMHessianCreate_Folded(HMHessian);
PETSC_INTERN PetscErrorCode HMHessianCreate_Tabulated(HMHessian);
/* Shared by the folded kernels (kernels/folded.c): ops of the folded kernel, with or without the radial table. */
PETSC_INTERN PetscErrorCode HMHessianFoldedSetUp(HMHessian, PetscBool tabulated);
PETSC_INTERN PetscErrorCode HMHessianFoldedPrepare(HMHessian);
/* Lowest input index among owned atoms whose row of width w is not all finite, INT_MAX if none. */
PETSC_INTERN int HMHessianLowestBadAtom(HMHessian, PetscInt w, const double *a);

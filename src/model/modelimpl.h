/* Private layout of HMModel and HMEval (shared by the model and hessian modules). */
#pragma once

#include <hipmace/model.h>
#include <hipmace/nn.h>
#include <hipmace/decomp.h>

#define HM_MAX_LAYERS 8
#define HM_MAX_ELEMENTS 128

typedef struct {
  HMIrreps         in_ir, target;     /* node features in; interaction target (X irreps) */
  HMLinear         linear_up;
  HMRadialMLP      mlp;
  HMConvTP         tp;
  HMLinear         linear;            /* mid -> target, then / avg_num_neighbors */
  HMSkipTP         skip;              /* t = 0: on the message (target -> target); t >= 1: residual (H -> H) */
  HMSymContraction prod;
  HMLinear         prod_linear;       /* H -> H */
  int              corr;
  HMLinear         readout;           /* LinearReadoutBlock (t < last) or linear_1 (last) */
  HMLinear         readout2;          /* linear_2 of the NonLinearReadoutBlock (last only) */
} HMLayer;

struct _p_HMModel {
  MPI_Comm      comm;
  HMSafetensors st;
  char         *path;
  /* config */
  double        r_max, hessian_r_max, avg_num_neighbors, scale, shift;
  int           num_bessel, p_cut, max_ell, nlayers, nel;
  int           Z[HM_MAX_ELEMENTS];
  double        e0[HM_MAX_ELEMENTS];
  HMIrreps      H, MLP, sh, shh, O, OUT;
  PetscInt      dimH, C;
  HMRadialBasis radial, hradial;      /* hradial aliases radial without a separate Hessian network */
  double        radial_freq[32], hradial_freq[32];
  HMLinear      embedding;
  HMLayer       layer[HM_MAX_LAYERS];
  /* hoextra: num_interactions_hessian extra residual layers on the Hessian graph (model/hessextra.c);
     nlayers + nhx <= HM_MAX_LAYERS, their features are HMEval feats[nlayers + k] */
  int           nhx;
  HMLayer       hx[HM_MAX_LAYERS];
  /* HIP head */
  int           F, hedge_lmax, separate_radial, last_layer_only, learnable;
  int           hl0, hnl;             /* first used layer and number of used layers */
  double        hw[HM_MAX_LAYERS];    /* aggregation weights of the used layers */
  HMLinear      proj_nodes_layerwise, proj_nodes, proj_edges, message_proj;
  HMLinear      hi_linear_up, hi_linear;
  HMRadialMLP   hi_mlp;
  HMConvTP      hi_tp;
  PetscInt64    nparams;
};

struct _p_HMEval {
  HMModel        model;
  HMDecomp       dd;
  PetscInt       N, n, nl, rstart; /* global atoms, owned atoms, owned + ghosts, first partition index */
  const PetscInt *gid, *pidx;
  int           *elem;             /* [nl] model element index of every local atom */
  const HMGraph *g, *gh;           /* main graph (r_max), Hessian graph (hcut); owned senders */
  double         hcut;             /* cutoff of gh: the effective one, or hessian_r_max with -hessian_prune false */
  PetscBool      forward_done;
  double        *feats[HM_MAX_LAYERS]; /* [n][dimH], owned atoms; main layers, then the extra Hessian layers */
  double        *xh[HM_MAX_LAYERS];    /* hessian_interaction.linear_up(feats[t]) of the used layers, [nl][dimH] */
  double        *node_energy, energy;
  HMEdgeKernel   kernel;       /* direct (unfolded) or folded HIP edge kernel */
  struct _p_HMFolded *folded;  /* folded constants of the model's HIP head */
  double        *G;            /* folded per-atom tensors of owned atoms and far ghosts, [nl][nodedim] */
  PetscInt64     edge_evals;   /* directed edges evaluated by the HIP edge kernel so far */
  double         edge_seconds; /* time spent in the edge kernel */
  double         table_tol;    /* tolerance of the radial table of the tabulated kernel */
  double         edge_flops;   /* floating-point operations it performed (radial network once per pair) */
};

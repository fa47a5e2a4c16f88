/* Private layout of HMModel: read-only model internals for the model module and the Hessian edge kernels. */
#pragma once

#include <hipmace/model.h>
#include "nn/nnimpl.h"

#define HM_MAX_LAYERS   8
#define HM_MAX_ELEMENTS 128
/* Minimum distance between two atoms; closer pairs are an input error (the radial basis divides by d).
   HMEvalSetSystem refuses them; the tabulated kernel's radial table starts here. */
#define HM_MIN_DISTANCE 0.1

/* A layer's weights rounded to float for -precision single (layer.c, made on first use): the radial MLP, the
   linear map after the tensor product and the first layer's skip tensor product on the message. */
typedef struct {
  HMGemmPackedS *mlp;  /* [mlp.nlayers] */
  HMGemmPackedS *lin;  /* [linear.ninstr] */
  HMGemmPackedS *skip; /* [skip.ninstr * skip.nel], or NULL (residual layers apply their skip in double) */
} HMLayerSingle;

typedef struct {
  HMIrreps         in_ir, target; /* node features in; interaction target (X irreps) */
  HMLinear         linear_up;
  HMRadialMLP      mlp;
  HMConvTP         tp;
  HMLinear         linear; /* mid -> target, then / avg_num_neighbors */
  HMSkipTP         skip;   /* t = 0: on the message (target -> target); t >= 1: residual (H -> H) */
  HMSymContraction prod;
  HMLinear         prod_linear; /* H -> H */
  int              corr;
  HMLinear         readout;  /* LinearReadoutBlock (t < last) or linear_1 (last) */
  HMLinear         readout2; /* linear_2 of the NonLinearReadoutBlock (last only) */
  HMLayerSingle   *single;   /* -precision single: float copies of the weights, or NULL */
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
  HMRadialBasis radial, hradial; /* hradial aliases radial without a separate Hessian network */
  double        radial_freq[32], hradial_freq[32];
  HMLinear      embedding;
  HMLayer       layer[HM_MAX_LAYERS];
  /* num_interactions_hessian extra residual layers on the Hessian graph (model/hessextra.c);
     nlayers + nhx <= HM_MAX_LAYERS, their features are HMEval feats[nlayers + k] */
  int     nhx;
  HMLayer hx[HM_MAX_LAYERS];
  /* HIP head */
  int         F, hedge_lmax, separate_radial, last_layer_only, learnable;
  int         hl0, hnl;          /* first used layer and number of used layers */
  double      hw[HM_MAX_LAYERS]; /* aggregation weights of the used layers */
  HMLinear    proj_nodes_layerwise, proj_nodes, proj_edges, message_proj;
  HMLinear    hi_linear_up, hi_linear;
  HMRadialMLP hi_mlp;
  HMConvTP    hi_tp;
  PetscInt64  nparams;
};

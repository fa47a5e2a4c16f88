/* Reverse pass of one MACE interaction + product layer (private to src/model). */
#pragma once

#include "model/evalimpl.h"

/* Adjoint of HMEvalLayerForward (layer.c) at its input h: dout[n][dimH] the gradient of the energy wrt
   the layer's output; dh[n][dim in_ir] (overwritten; NULL: not wanted) the gradient wrt h; ge[nedges][3]
   (accumulated) the gradient wrt the edge vectors g->vec of g. Ghost message gradients come by halo
   exchange (pull), so every sum runs over the owner's own edges in the canonical order. Work: O(local
   atoms x feature width) and O(edge chunk), no per-edge array. */
PETSC_INTERN PetscErrorCode HMEvalLayerBackward(HMEval, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, const double *dout, double *dh, double *ge);

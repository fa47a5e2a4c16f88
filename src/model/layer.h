/* One MACE interaction + product layer on a graph (private to src/model: the main layers and the extra Hessian layers). */
#pragma once

#include "model/evalimpl.h"

/* One interaction + product layer (layer.c): layer L on graph g (owned receivers), the input features of
   the senders fetched over halo, radial features from radial; residual: skip from the layer input (the
   residual interaction block of layers t >= 1), else the first layer's skip on the message. */
PETSC_INTERN PetscErrorCode HMEvalLayerForward(HMEval, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, double *out);
/* -precision single: float copies of layer L's weights (skip: also its skip tensor product on the message,
   the first layer); idempotent. Destroy frees them (a no-op when there are none). */
PETSC_INTERN PetscErrorCode HMLayerSingleSetUp(HMLayer *L, PetscBool skip);
PETSC_INTERN PetscErrorCode HMLayerSingleDestroy(HMLayer *L);

/* Extra interaction + product layers on the Hessian graph (num_interactions_hessian; private). */
#pragma once

#include "model/evalimpl.h"

/* One interaction + product layer (eval.c): layer L on graph g (owned receivers), the input features of
   the senders fetched over halo, radial features from radial; residual: skip from the layer input (the
   residual interaction block of layers t >= 1), else the first layer's skip on the message. */
PETSC_INTERN PetscErrorCode HMEvalLayerForward(HMEval, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, double *out);
/* Runs the model's nhx extra layers after the main ones: features of extra layer k go to
   feats[nlayers + k] ([n][dimH], owned atoms), from feats[nlayers + k - 1]. No-op without extra layers. */
PETSC_INTERN PetscErrorCode HMEvalHessExtraForward(HMEval);

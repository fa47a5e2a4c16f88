/* Extra interaction + product layers on the Hessian graph (num_interactions_hessian; private). */
#pragma once

#include "model/layer.h"

/* Runs the model's nhx extra layers after the main ones: features of extra layer k go to
   feats[nlayers + k] ([n][dimH], owned atoms), from feats[nlayers + k - 1]. No-op without extra layers. */
PETSC_INTERN PetscErrorCode HMEvalHessExtraForward(HMEval);

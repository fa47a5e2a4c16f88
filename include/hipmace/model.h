/* A trained HIP-MACE model (safetensors + JSON config); its evaluation is eval.h, its Hessian hessian.h. */
#pragma once

#include <hipmace/io.h>
#include <petscviewer.h>

typedef struct _p_HMModel *HMModel;

/* Loads and validates the model: every tensor checked for presence, dtype and shape; options the
   engine does not implement are refused by name. Errors name the file and the tensor or option. */
PETSC_EXTERN PetscErrorCode HMModelLoad(MPI_Comm, const char path[], HMModel *);
PETSC_EXTERN PetscErrorCode HMModelDestroy(HMModel *);
/* Architecture, elements, cutoffs, effective Hessian cutoff, parameter count, memory per atom. */
PETSC_EXTERN PetscErrorCode HMModelView(HMModel, PetscViewer);
PETSC_EXTERN PetscErrorCode HMModelGetPath(HMModel, const char **);
/* r_max of the main graph, hessian_r_max, and the effective Hessian cutoff (beyond which every
   edge block is exactly zero: min(hessian_r_max, r_max) without a separate Hessian radial network). */
PETSC_EXTERN PetscErrorCode HMModelGetCutoffs(HMModel, double *r_max, double *hessian_r_max, double *hessian_cutoff);
PETSC_EXTERN PetscErrorCode HMModelGetNumInteractions(HMModel, PetscInt *);
PETSC_EXTERN PetscErrorCode HMModelGetFeatureDim(HMModel, PetscInt *);
/* Doubles per ghost atom moved by the halo exchange of each interaction layer (width[t]) and of the HIP
   head (hip: all used layers together). */
PETSC_EXTERN PetscErrorCode HMModelGetHaloWidths(HMModel, PetscInt width[], PetscInt *hip);
/* Element index of Z in the model's one-hot table, -1 if the model does not know Z. */
PETSC_EXTERN int HMModelElementIndex(HMModel, int Z);

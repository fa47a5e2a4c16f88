/* Evaluation of a model on one structure: partition, graphs, interaction layers, energy and node features. */
#pragma once

#include <hipmace/model.h>
#include <hipmace/graph.h>
#include <hipmace/decomp.h>

/* Distributed over the ranks of the model's communicator. Owned atoms come first in every per-atom
   array (in input order within the rank), then ghosts. Life cycle: HMEvalCreate, setters and
   HMEvalSetFromOptions, HMEvalSetSystem (partitions the structure and builds the graphs), then
   HMEvalForward and the getters. The Hessian of an evaluation is an HMHessian (hessian.h). */
typedef struct _p_HMEval *HMEval;

PETSC_EXTERN PetscErrorCode HMEvalCreate(HMModel, HMEval *);
PETSC_EXTERN PetscErrorCode HMEvalDestroy(HMEval *);
PETSC_EXTERN PetscErrorCode HMEvalGetModel(HMEval, HMModel *);
/* Spatial decomposition over the ranks (default HM_PARTITION_RCB); before HMEvalSetSystem. */
PETSC_EXTERN PetscErrorCode HMEvalSetPartitionType(HMEval, HMPartitionType);
PETSC_EXTERN PetscErrorCode HMEvalGetPartitionType(HMEval, HMPartitionType *);
/* Arithmetic of the model. HM_PRECISION_DOUBLE (default): float64 throughout, the reference's numerics.
   HM_PRECISION_SINGLE: float32 (FMA chains accumulated in float32) for the layers' radial MLPs, convolution tensor
   products, the linear maps after them and the first layer's skip tensor product, and for the per-edge part of the
   folded HIP edge kernel (its radial layers, the contraction with the per-atom tensors G and the Clebsch-Gordan
   sum); the 3j contractions with the spherical harmonics, the radial bases and G itself are formed in float64 and
   rounded once. The up-projection, the halo exchanges, the symmetric contraction, the product linear map, the
   readouts, the node blocks, the tabulated and direct edge kernels and the forces stay float64. Results remain
   bitwise independent of the rank count. Takes effect at the next forward pass; a Hessian object keeps the
   precision its kernel was prepared with. */
typedef enum {
  HM_PRECISION_DOUBLE,
  HM_PRECISION_SINGLE
} HMPrecision;
PETSC_EXTERN PetscErrorCode HMEvalSetPrecision(HMEval, HMPrecision);
PETSC_EXTERN PetscErrorCode HMEvalGetPrecision(HMEval, HMPrecision *);
/* Cutoff of the Hessian graph, before HMEvalSetSystem. Default (or hcut <= 0): HMModelGetCutoffs'
   effective cutoff, beyond which every edge block is exactly zero. HMHessianSetPrune(PETSC_FALSE)
   sets hessian_r_max here (the extra blocks are exactly zero; for checking the pruning). */
PETSC_EXTERN PetscErrorCode HMEvalSetHessianCutoff(HMEval, double hcut);
PETSC_EXTERN PetscErrorCode HMEvalGetHessianCutoff(HMEval, double *);
PETSC_EXTERN PetscErrorCode HMEvalSetOptionsPrefix(HMEval, const char[]);
/* Options -[prefix]partition rcb|grid, -[prefix]precision double|single. */
PETSC_EXTERN PetscErrorCode HMEvalSetFromOptions(HMEval);
/* Collective. sys: the whole structure on rank 0 (may be NULL elsewhere); not referenced afterwards.
   Partitions it, builds the main graph (r_max) and the Hessian graph (HMEvalGetHessianCutoff) and
   refuses unknown elements and atoms closer than 0.1 A (errors name the structure and the atoms). */
PETSC_EXTERN PetscErrorCode HMEvalSetSystem(HMEval, HMSystem);
/* Collective. The same atoms at new positions pos[n][3] (A) of the owned atoms, in the local order (the order of HMEvalGetLocalAtoms and HMEvalGetForces). The partition stays (atoms keep their ranks, the
   Hessian its row layout); the ghosts, both graphs and the halos are built again on the distributed atoms
   (HMDecompSetPositions), nothing is gathered. Energy, forces and Hessian afterwards are bitwise those of a
   fresh HMEval on the same positions. Refuses atoms closer than 0.1 A as HMEvalSetSystem does. An
   HMHessian of the evaluation is created after the move (it keeps per-geometry data). */
PETSC_EXTERN PetscErrorCode HMEvalSetPositions(HMEval, const double pos[]);
PETSC_EXTERN PetscErrorCode HMEvalGetDecomp(HMEval, HMDecomp *);
/* Global atoms, owned atoms, owned + ghosts, first partition index of the owned atoms; any may be NULL. */
PETSC_EXTERN PetscErrorCode HMEvalGetSizes(HMEval, PetscInt *N, PetscInt *n, PetscInt *nl, PetscInt *rstart);
/* Per local atom (owned, then ghosts): input index, partition index; either may be NULL. */
PETSC_EXTERN PetscErrorCode HMEvalGetLocalAtoms(HMEval, const PetscInt **gid, const PetscInt **pidx);
PETSC_EXTERN PetscErrorCode HMEvalGetGraph(HMEval, const HMGraph **main, const HMGraph **hessian);
/* Graph, embeddings, interaction layers, readouts: energy and node features. */
PETSC_EXTERN PetscErrorCode HMEvalForward(HMEval);
PETSC_EXTERN PetscErrorCode HMEvalGetEnergy(HMEval, double *energy, const double **node_energy);
/* Node features [n][dim] of the owned atoms after a layer: 0 .. num_interactions-1 the main layers, then the
   extra Hessian layers (num_interactions_hessian), num_interactions + k. */
PETSC_EXTERN PetscErrorCode HMEvalGetNodeFeatures(HMEval, PetscInt layer, PetscInt *dim, const double **feats);
/* Frees the node features of every layer (the Hessian does once it has what it needs from them); the energy,
   node energies and the finite-value guard's result stay; a later HMEvalGetNodeFeatures, HMEvalForward or
   HMEvalComputeForces recomputes them, bitwise the same. */
PETSC_EXTERN PetscErrorCode HMEvalReleaseNodeFeatures(HMEval);
/* Bytes the forward pass keeps (features, energies: `persistent`) and the largest transient work of
   one interaction layer (`layer`), estimated from the sizes before any large allocation. */
PETSC_EXTERN PetscErrorCode HMEvalGetMemoryEstimate(HMEval, double *persistent, double *layer);
/* Collective numerical guard (PETSC_ERR_FP, same message on every rank, naming the lowest input atom):
   node features of every layer and node energies, after HMEvalForward. */
PETSC_EXTERN PetscErrorCode HMEvalCheckFinite(HMEval);
/* Forces and stress (src/model/forces.c), computed only when asked (the forward pass and the Hessian are
   unchanged). Collective; runs HMEvalForward if needed; the reverse pass through the readouts and the
   main interaction layers (the extra Hessian layers do not enter the energy), bitwise the same on any
   rank count; for a cell periodic along all three axes also the stress. */
PETSC_EXTERN PetscErrorCode HMEvalComputeForces(HMEval);
/* f[n][3], eV/A: the owned atoms in the local order (partition order, the Hessian's block rows). */
PETSC_EXTERN PetscErrorCode HMEvalGetForces(HMEval, const double **f);
/* stress[9] (3x3 row-major, eV/A^3) = (1/V) dE/d(strain) with positions and cell scaled by (I + strain),
   ASE's sign (pressure = -trace/3; docs/FORCES.md); has = PETSC_FALSE (stress zero) unless the cell is periodic along x, y and z. Same on
   every rank. */
PETSC_EXTERN PetscErrorCode HMEvalGetStress(HMEval, PetscBool *has, double stress[9]);
/* Largest atomic |F| over all atoms (eV/A), the same on every rank. */
PETSC_EXTERN PetscErrorCode HMEvalGetMaxForce(HMEval, double *fmax);

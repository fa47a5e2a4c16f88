/* A trained HIP-MACE model (safetensors + JSON config) and its evaluation on one structure. */
#pragma once

#include <hipmace/io.h>
#include <hipmace/graph.h>
#include <hipmace/decomp.h>
#include <petscmat.h>

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
PETSC_EXTERN int            HMModelElementIndex(HMModel, int Z);

/* Evaluation of a model on one structure, distributed over the ranks of the model's communicator.
   Owned atoms come first in every per-atom array (in input order within the rank), then ghosts. */
typedef struct _p_HMEval *HMEval;

/* The HIP edge kernel: direct = the reference's sequence of operations per edge; folded = every linear
   map after the tensor product folded into one per-atom tensor G (DESIGN.md), ~10^2 fewer flops; both
   agree to round-off. tabulated = folded with the hidden radial layers z(r) interpolated from a table
   (opt-in: |z_table - z| <= -hessian_table_tol per component, default 1e-10; src/hessian/radtable.h).
   Option -hessian_kernel direct|folded|tabulated (default folded). */
typedef enum {
  HM_EDGE_KERNEL_DIRECT    = 0,
  HM_EDGE_KERNEL_FOLDED    = 1,
  HM_EDGE_KERNEL_TABULATED = 2
} HMEdgeKernel;
PETSC_EXTERN const char *const HMEdgeKernels[];

/* Collective. sys: the whole structure on rank 0 (may be NULL elsewhere). Options -partition rcb|grid;
   -hessian_prune <bool> (default true): false builds the Hessian graph at hessian_r_max even where the
   effective cutoff is smaller (the extra blocks are exactly zero; for checking the pruning). */
PETSC_EXTERN PetscErrorCode HMEvalCreate(HMModel, HMSystem, HMEval *);
PETSC_EXTERN PetscErrorCode HMEvalGetDecomp(HMEval, HMDecomp *);
/* The cutoff the Hessian graph was built with: HMModelGetCutoffs' effective cutoff, or hessian_r_max
   with -hessian_prune false. */
PETSC_EXTERN PetscErrorCode HMEvalGetHessianCutoff(HMEval, double *);
PETSC_EXTERN PetscErrorCode HMEvalDestroy(HMEval *);
/* Graph, embeddings, interaction layers, readouts: energy and node features. */
PETSC_EXTERN PetscErrorCode HMEvalForward(HMEval);
PETSC_EXTERN PetscErrorCode HMEvalGetEnergy(HMEval, double *energy, const double **node_energy);
/* Node features of the owned atoms after a layer: 0 .. num_interactions-1 the main layers, then the
   extra Hessian layers (num_interactions_hessian), num_interactions + k. */
PETSC_EXTERN PetscErrorCode HMEvalGetNodeFeatures(HMEval, PetscInt layer, PetscInt *dim, const double **feats);
PETSC_EXTERN PetscErrorCode HMEvalGetGraph(HMEval, const HMGraph **main, const HMGraph **hessian);
/* HIP head, node part: n9 [N][9] (hessian_proj_nodes output) and D_i [N][3][3]; either may be NULL. */
PETSC_EXTERN PetscErrorCode HMEvalNodeBlocks(HMEval, double n9[], double D[]);
/* Collective: computes and exchanges the per-atom inputs of the edge kernel (called by EdgeBlocks). */
PETSC_EXTERN PetscErrorCode HMEvalPrepareHIP(HMEval);
/* HIP head, edge part, for ne directed edges given by sender (local atom index) and edge vector (r - s):
   e9 [ne][9] (hessian_proj_edges output) and M [ne][3][3]; either may be NULL. */
PETSC_EXTERN PetscErrorCode HMEvalEdgeBlocks(HMEval, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[]);
/* Doubles per ghost atom moved by the HIP head's halo exchange with the kernel in use (after
   HMEvalPrepareHIP; the direct kernel's width before). */
PETSC_EXTERN PetscErrorCode HMEvalGetHIPHaloWidth(HMEval, PetscInt *);
/* Both directions of np atom pairs: M12 = block of s1 -> s2 (edge vector v), M21 = block of s2 -> s1
   (vector -v); with the folded kernel the radial network runs once per pair. */
PETSC_EXTERN PetscErrorCode HMEvalEdgeBlockPairs(HMEval, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[]);
PETSC_EXTERN PetscErrorCode HMEvalSetEdgeKernel(HMEval, HMEdgeKernel);
/* The edge kernel in use, the directed edges it evaluated on this rank so far, the seconds it took, and
   the floating-point operations it performed (multiplies and adds counted separately; with the folded
   kernel the two directions of a pair share one radial network, counted once). */
PETSC_EXTERN PetscErrorCode HMEvalGetEdgeKernelStats(HMEval, const char **name, PetscInt64 *evals, double *seconds, double *flops);
/* Assembles the Hessian (eV/A^2), block size 3, block row/column = partition index of the atom (equal to
   the input index on one rank); each rank writes the rows of its own atoms only.
   type: MATBAIJ (default when NULL) or MATSBAIJ (upper triangle). */
PETSC_EXTERN PetscErrorCode HMEvalAssembleHessian(HMEval, MatType, Mat *);
/* The same matrix with rows and columns 3i+a in input atom order (a new matrix, or H itself with a new
   reference on one rank); SBAIJ input gives an AIJ result. */
PETSC_EXTERN PetscErrorCode HMEvalHessianInputOrder(HMEval, Mat H, Mat *Hin);
/* Estimated resident memory (bytes) of this rank now and at its peak (forward pass, HIP head and the
   Hessian of the given type, plus an input-ordered copy if requested). Uses the exact block count. */
PETSC_EXTERN PetscErrorCode HMEvalGetMemoryEstimate(HMEval, MatType, PetscBool input_order_copy, double *now, double *peak);
/* Collective: refuses (PETSC_ERR_MEM, before any large allocation) a run whose estimate exceeds the
   memory available on a node or limit_per_rank bytes (if > 0); returns the largest and total estimate. */
PETSC_EXTERN PetscErrorCode HMEvalCheckMemory(HMEval, MatType, PetscBool input_order_copy, double limit_per_rank, double *peak_max, double *peak_total);
/* Number of stored 3x3 blocks of the full (both triangles) Hessian: of this rank's rows, and in total. */
PETSC_EXTERN PetscErrorCode HMEvalGetHessianBlockCount(HMEval, PetscInt64 *local, PetscInt64 *total);
/* Collective numerical guards (PETSC_ERR_FP, same message on every rank, naming the lowest input atom):
   CheckFinite scans what the evaluation holds — node features of every layer and node energies (after
   HMEvalForward), HIP-head inputs (after HMEvalPrepareHIP); CheckHessianFinite scans every stored block
   of the assembled Hessian (node and edge blocks), reporting the pair of input atoms. */
PETSC_EXTERN PetscErrorCode HMEvalCheckFinite(HMEval);
PETSC_EXTERN PetscErrorCode HMEvalCheckHessianFinite(HMEval, Mat);

/* The Hessian of a model evaluation (eV/A^2): Hessian graph, HIP head, edge kernel and assembly into a PETSc matrix. */
#pragma once

#include <hipmace/eval.h>
#include <petscmat.h>

/* Reads the evaluation through eval.h only. Life cycle: HMHessianCreate (before HMEvalSetSystem if the
   Hessian graph's cutoff is to change: HMHessianSetPrune), setters and HMHessianSetFromOptions,
   HMHessianSetUp (called by the first use), HMHessianAssemble, HMHessianDestroy (before the HMEval). */
typedef struct _p_HMHessian *HMHessian;

/* The HIP edge kernel, by name: "direct" = the reference's sequence of operations per edge; "folded"
   = every linear map after the tensor product folded into one per-atom tensor G (DESIGN.md), ~10^2
   fewer flops, agrees with direct to round-off (the default); "tabulated" = folded with the hidden
   radial layers z(r) interpolated from a table (|z_table - z| <= the table tolerance per component,
   default 1e-10). More can be added with HMHessianRegister. */
typedef const char *HMHessianKernelType;
#define HMHESSIANDIRECT    "direct"
#define HMHESSIANFOLDED    "folded"
#define HMHESSIANTABULATED "tabulated"

PETSC_EXTERN PetscErrorCode HMHessianCreate(HMEval, HMHessian *);
PETSC_EXTERN PetscErrorCode HMHessianDestroy(HMHessian *);
/* Adds a kernel: create fills the ops table of the HMHessian (src/hessian/hessianimpl.h). */
PETSC_EXTERN PetscErrorCode HMHessianRegister(const char name[], PetscErrorCode (*create)(HMHessian));
/* The registered kernels, in registration order (built-ins first). */
PETSC_EXTERN PetscErrorCode HMHessianGetKernelTypes(PetscInt *n, const char *const **names);
PETSC_EXTERN PetscErrorCode HMHessianSetType(HMHessian, HMHessianKernelType);
PETSC_EXTERN PetscErrorCode HMHessianGetType(HMHessian, HMHessianKernelType *);
/* PETSC_FALSE builds the Hessian graph at hessian_r_max even where the effective cutoff is smaller
   (HMEvalSetHessianCutoff; only before HMEvalSetSystem). Default PETSC_TRUE. */
PETSC_EXTERN PetscErrorCode HMHessianSetPrune(HMHessian, PetscBool);
PETSC_EXTERN PetscErrorCode HMHessianGetPrune(HMHessian, PetscBool *);
/* Tolerance of the tabulated kernel's radial table, >= 1e-13 (default 1e-10). */
PETSC_EXTERN PetscErrorCode HMHessianSetTableTolerance(HMHessian, double);
PETSC_EXTERN PetscErrorCode HMHessianGetTableTolerance(HMHessian, double *);
/* MATBAIJ (default) or MATSBAIJ (upper triangle). */
PETSC_EXTERN PetscErrorCode HMHessianSetMatType(HMHessian, MatType);
PETSC_EXTERN PetscErrorCode HMHessianGetMatType(HMHessian, MatType *);
PETSC_EXTERN PetscErrorCode HMHessianSetOptionsPrefix(HMHessian, const char[]);
/* Options -[prefix]hessian_kernel, -hessian_prune, -hessian_table_tol, -hessian_type baij|sbaij. */
PETSC_EXTERN PetscErrorCode HMHessianSetFromOptions(HMHessian);
/* Collective: forward pass if not done, the kernel's constants and per-atom inputs (with their halo). */
PETSC_EXTERN PetscErrorCode HMHessianSetUp(HMHessian);
/* Assembles the Hessian, block size 3, block row/column = partition index of the atom (equal to the
   input index on one rank); each rank writes the rows of its own atoms only. */
PETSC_EXTERN PetscErrorCode HMHessianAssemble(HMHessian, Mat *);
/* The same matrix with rows and columns 3i+a in input atom order (a new matrix, or H itself with a new
   reference on one rank); SBAIJ input gives an AIJ result. */
PETSC_EXTERN PetscErrorCode HMHessianInputOrder(HMHessian, Mat H, Mat *Hin);
/* Number of stored 3x3 blocks of the full (both triangles) Hessian: of this rank's rows, and in total. */
PETSC_EXTERN PetscErrorCode HMHessianGetBlockCount(HMHessian, PetscInt64 *local, PetscInt64 *total);
/* HIP head, node part: n9 [n][9] (hessian_proj_nodes output) and D_i [n][3][3]; either may be NULL. */
PETSC_EXTERN PetscErrorCode HMHessianNodeBlocks(HMHessian, double n9[], double D[]);
/* HIP head, edge part, for ne directed edges given by sender (local atom index) and edge vector (r - s):
   e9 [ne][9] (hessian_proj_edges output) and M [ne][3][3]; either may be NULL. */
PETSC_EXTERN PetscErrorCode HMHessianEdgeBlocks(HMHessian, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[]);
/* Both directions of np atom pairs: M12 = block of s1 -> s2 (edge vector v), M21 = block of s2 -> s1
   (vector -v); with the folded kernels the radial network runs once per pair. */
PETSC_EXTERN PetscErrorCode HMHessianEdgeBlockPairs(HMHessian, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[]);
/* The edge kernel in use, the directed edges it evaluated on this rank so far, the seconds it took, and
   the floating-point operations it performed (multiplies and adds counted separately; with the folded
   kernels the two directions of a pair share one radial network, counted once). */
PETSC_EXTERN PetscErrorCode HMHessianGetKernelStats(HMHessian, const char **name, PetscInt64 *evals, double *seconds, double *flops);
/* Doubles per ghost atom moved by the HIP head's halo exchange with the kernel in use (after set-up;
   the direct kernel's width before). */
PETSC_EXTERN PetscErrorCode HMHessianGetHaloWidth(HMHessian, PetscInt *);
/* Estimated resident memory (bytes) of this rank now and at its peak (forward pass, HIP head and the
   Hessian of the set type, plus an input-ordered copy if requested). Uses the exact block count. */
PETSC_EXTERN PetscErrorCode HMHessianGetMemoryEstimate(HMHessian, PetscBool input_order_copy, double *now, double *peak);
/* Collective: refuses (PETSC_ERR_MEM, before any large allocation) a run whose estimate exceeds the
   memory available on a node or limit_per_rank bytes (if > 0); returns the largest and total estimate. */
PETSC_EXTERN PetscErrorCode HMHessianCheckMemory(HMHessian, PetscBool input_order_copy, double limit_per_rank, double *peak_max, double *peak_total);
/* Collective numerical guards (PETSC_ERR_FP, same message on every rank): the kernel's per-atom inputs
   (after set-up; naming the lowest input atom), then every stored block of H (naming the pair of
   input atoms). Call HMEvalCheckFinite first: features and energies come earlier in the pipeline. */
PETSC_EXTERN PetscErrorCode HMHessianCheckFinite(HMHessian, Mat H);
PETSC_EXTERN PetscErrorCode HMHessianView(HMHessian, PetscViewer);

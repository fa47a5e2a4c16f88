/* Folded HIP edge kernel: per-node tensors G and a cheap per-edge contraction (private to the library). */
#pragma once

#include "model/modelimpl.h"

/* Everything after the HIP tensor product (hessian_interaction.linear, hessian_message_proj, the layer
   aggregation, hessian_proj_edges) and the last radial layer are linear, so they are folded into one
   tensor per node (DESIGN.md, "The folded HIP edge kernel"):
     G_s[kappa][p, a]  = sum_t hw_t sum_u pw_p Omega_p[u] W_last[kappa, woff_p + u] x_t[s][i1_p][u, a]
     e9[l3][c]         = sum_{p: out(p) = l3} sum_{a,b} C_p[a,b,c] Y[i2_p][b] sum_kappa z_kappa(|v|) G_s[kappa][p, a]
   with z the output of the hidden radial layers. An HMFolded holds its own work arrays: one object must
   not be used by two threads at once. */
typedef struct _p_HMFolded *HMFolded;

/* Folds the constants of the model's HIP head (cheap: a few backward passes through the linear maps). */
PETSC_EXTERN PetscErrorCode HMFoldedCreate(HMModel, HMFolded *);
PETSC_EXTERN PetscErrorCode HMFoldedDestroy(HMFolded *);
/* Replaces the hidden radial layers by a table of z(r) on [rmin, rc] with |z_table - z| <= tol per
   component (HMRadialTableCreate; the tabulated edge kernel). Edges shorter than rmin are an error. */
PETSC_EXTERN PetscErrorCode HMFoldedSetRadialTable(HMFolded, double rmin, double tol);
/* Bound on the error of e9 (as HMFoldedEdges computes it) caused by an error of at most zerr in every
   component of z: bound[e][o] = zerr sum over the CG terms of output o of |c| |Y[b]| sum_kappa |G_s[kappa][j]|
   (e9 is linear in z). With the table's tolerance this bounds what tabulation changes in each edge
   block, before round-off. */
PETSC_EXTERN PetscErrorCode HMFoldedEdgesErrorBound(HMFolded, PetscInt ne, const PetscInt sender[], const double vec[], const double G[], double zerr, double bound[]);
/* Doubles of G per node. */
PETSC_EXTERN PetscInt HMFoldedNodeDim(HMFolded);
/* G[n][nodedim] from the used layers' node features: feats[k] is [n][dimH] of layer hl0 + k, k < hnl. */
PETSC_EXTERN PetscErrorCode HMFoldedNodeTensor(HMFolded, PetscInt n, const double *const feats[], double G[]);
/* e9[ne][9] (hessian_proj_edges output) of ne directed edges s -> r: sender[e] indexes the rows of G,
   vec[e] = r - s. Fastest when edges of one sender are consecutive (they become one dgemm). */
PETSC_EXTERN PetscErrorCode HMFoldedEdges(HMFolded, PetscInt ne, const PetscInt sender[], const double vec[], const double G[], double e9[]);
/* Both directions of ne edges s -> r at the price of one radial network: e9 of s -> r (vec = r - s) and
   e9rev of r -> s (edge vector -vec), bitwise equal to HMFoldedEdges on the reversed edge. Either output
   may be NULL. */
PETSC_EXTERN PetscErrorCode HMFoldedEdgesBoth(HMFolded, PetscInt ne, const PetscInt sender[], const PetscInt receiver[], const double vec[], const double G[], double e9[], double e9rev[]);
/* -precision single: HMFoldedSetSingle rounds the hidden radial layers' weights and the CG constants to float once;
   HMFoldedEdgesBothS is HMFoldedEdgesBoth with the radial layers, the contraction with G (a float copy) and the CG
   sum in float (the harmonics and the radial basis in double, rounded once), the blocks returned in double. */
PETSC_EXTERN PetscErrorCode HMFoldedSetSingle(HMFolded);
PETSC_EXTERN PetscErrorCode HMFoldedEdgesBothS(HMFolded, PetscInt ne, const PetscInt sender[], const PetscInt receiver[], const double vec[], const float G[], double e9[], double e9rev[]);
/* Floating-point operations per directed edge (HMFoldedEdges) and per node (HMFoldedNodeTensor): a
   multiply-add counts 2, a normalised SiLU 4; the radial basis (nbessel sines) and the spherical
   harmonics are not counted; per pair: HMFoldedEdgesBoth's one radial network and two contractions. Any output
   may be NULL. */
PETSC_EXTERN PetscErrorCode HMFoldedGetFlops(HMFolded, double *per_edge, double *per_node, double *per_pair);

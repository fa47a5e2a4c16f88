/* Spatial domain decomposition: partition, ghosts (with periodic images), local graphs, halo exchange. */
#pragma once

#include <hipmace/io.h>
#include <hipmace/graph.h>
#include <petscsf.h>
#include <petscao.h>

typedef struct _p_HMDecomp *HMDecomp;

typedef enum {
  HM_PARTITION_RCB  = 0, /* recursive coordinate bisection on atom counts */
  HM_PARTITION_GRID = 1  /* regular Cartesian rank grid over the bounding box */
} HMPartitionType;

typedef enum {
  HM_HALO_NEAR = 0, /* ghosts that send messages to owned atoms in the main graph (within r_max) */
  HM_HALO_FAR  = 1  /* ghosts within the Hessian cutoff */
} HMHaloType;

/* Collective. sys is the whole structure on rank 0 of comm (ignored, may be NULL, elsewhere); it is
   partitioned and scattered, so afterwards every rank holds only its own atoms and their ghosts.
   rcut_main / rcut_hessian: cutoffs of the two graphs. */
PETSC_EXTERN PetscErrorCode HMDecompCreate(MPI_Comm, HMSystem sys, HMPartitionType, double rcut_main, double rcut_hessian, HMDecomp *);
/* Not collective: the partition HMDecompCreate computes on rank 0 for nparts ranks, part[i] the part of atom
   i (pos[n][3]). RCB gives the first floor(m (p/2) / p) of a box's m atoms along its longest side, ordered
   by (coordinate, input index), to the lower half of its p parts; a selection finds them: O(n log nparts)
   expected, O(n log n log nparts) at worst. Exposed for tests and the scaling model, which time it for any
   part count on one process. */
PETSC_EXTERN PetscErrorCode HMDecompPartition(PetscInt n, const double pos[], HMPartitionType, PetscMPIInt nparts, int part[]);
PETSC_EXTERN PetscErrorCode HMDecompDestroy(HMDecomp *);
PETSC_EXTERN PetscErrorCode HMDecompGetComm(HMDecomp, MPI_Comm *);
/* N: global atoms; nowned: atoms of this rank; nlocal: owned + ghosts; rstart: partition index of the
   first owned atom (the Hessian's block row). Owned atoms come first, sorted by input index. */
PETSC_EXTERN PetscErrorCode HMDecompGetSizes(HMDecomp, PetscInt *N, PetscInt *nowned, PetscInt *nlocal, PetscInt *rstart);
/* Per local atom: input index, partition index, atomic number, position of the atom itself (not of the
   image) and the periodic image of the ghost (0 for owned atoms). */
PETSC_EXTERN PetscErrorCode HMDecompGetLocalAtoms(HMDecomp, const PetscInt **gid, const PetscInt **pidx, const int **Z, const double **pos, const int **shift);
/* Masses (amu) of the owned atoms. */
PETSC_EXTERN PetscErrorCode HMDecompGetMasses(HMDecomp, const double **mass);
/* Graphs over owned senders: edges i -> j (j local, owned or ghost) sorted by (input index of j, image),
   vec = (pos_j - pos_i) + shift.cell computed so that the reversed edge has exactly -vec. */
PETSC_EXTERN PetscErrorCode HMDecompGetGraphs(HMDecomp, const HMGraph **main, const HMGraph **hessian);
/* Halo exchange of per-atom rows data[nlocal][width]: owned rows are sent to the ranks that hold them
   as ghosts. */
PETSC_EXTERN PetscErrorCode HMDecompHaloExchange(HMDecomp, HMHaloType, PetscInt width, double data[]);
/* Number of ghosts in each halo and the bytes one exchange of width w moves into this rank. */
PETSC_EXTERN PetscErrorCode HMDecompGetHaloSize(HMDecomp, HMHaloType, PetscInt *nghost);
/* Application ordering: input index <-> partition index. */
PETSC_EXTERN PetscErrorCode HMDecompGetAO(HMDecomp, AO *);
/* int64 words per column that HMDecompSumExact reduces: 68 fixed-point digits spanning every finite double,
   plus counts of NaN, +Inf and -Inf (the scaling model charges this message). */
#define HM_DECOMP_SUM_EXACT_WORDS 71
/* Collective; nv must be the same on every rank. owned[nowned][nv]: per-owned-atom values; sums[nv]: for each
   column the sum over all owned atoms of all ranks, the same on every rank. The sum is accumulated EXACTLY
   in fixed point (one integer all-reduce of nv * HM_DECOMP_SUM_EXACT_WORDS words) and rounded once: the
   result is the correctly rounded (to nearest, ties to even) double of the exact sum, so it depends only
   on the multiset of values, never on their order or on the partition — bitwise the same on any number of
   ranks. An exact zero gives +0; a sum beyond the double range gives +-Inf, as IEEE rounding would. Any
   NaN, or both +Inf and -Inf, gives NaN; otherwise an infinite input gives that infinity. Cost per rank
   O(nowned nv) and one all-reduce of 568 nv bytes (O(log P) latencies), independent of the atom count. */
PETSC_EXTERN PetscErrorCode HMDecompSumExact(HMDecomp, PetscInt nv, const double owned[], double sums[]);
/* Cell of the system (for output). */
PETSC_EXTERN PetscErrorCode HMDecompGetCell(HMDecomp, PetscBool *hascell, double cell[9], PetscBool pbc[3]);

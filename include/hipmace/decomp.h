/* Spatial domain decomposition: partition, ghosts (with periodic images), local graphs, halo exchanges
   (forward broadcast, reverse accumulate, edge reversal). */
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
   partitioned and scattered, so afterwards every rank holds only its own atoms and their ghosts. A system
   read in parallel (HMReaderLoadDistributed: a part of it on every rank) is partitioned in parallel
   (HMDecompPartitionDistributed) and its atoms sent to their ranks: the same decomposition, bitwise.
   rcut_main / rcut_hessian: cutoffs of the two graphs. */
PETSC_EXTERN PetscErrorCode HMDecompCreate(MPI_Comm, HMSystem sys, HMPartitionType, double rcut_main, double rcut_hessian, HMDecomp *);
/* Not collective: the partition HMDecompCreate computes on rank 0 for nparts ranks, part[i] the part of atom
   i (pos[n][3]). RCB gives the first floor(m (p/2) / p) of a box's m atoms along its longest side, ordered
   by (coordinate, input index), to the lower half of its p parts; a selection finds them: O(n log nparts)
   expected, O(n log n log nparts) at worst. Exposed for tests and the scaling model, which time it for any
   part count on one process. */
PETSC_EXTERN PetscErrorCode HMDecompPartition(PetscInt n, const double pos[], HMPartitionType, PetscMPIInt nparts, int part[]);
/* Collective: the same partition computed from atoms spread over comm, n here with input indices gid[] and
   positions pos[n][3]; part[i] is bitwise what HMDecompPartition gives the whole structure. RCB: one radix
   selection per level for all boxes at once (a reduction of 16 counts per box per 4-bit digit: 16 for the
   coordinate, then the digits of the largest index for ties), no array of the whole structure. */
PETSC_EXTERN PetscErrorCode HMDecompPartitionDistributed(MPI_Comm, PetscInt n, const PetscInt gid[], const double pos[], HMPartitionType, PetscMPIInt nparts, int part[]);
/* Collective. New positions pos[nowned][3] of the owned atoms (local order); the partition stays (atoms keep
   their ranks), the ghosts, both graphs and the halos are built again from the distributed atoms, exactly as
   HMDecompCreate builds them: the same graphs, edge order and ghost order as a fresh decomposition's. */
PETSC_EXTERN PetscErrorCode HMDecompSetPositions(HMDecomp, const double pos[]);
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
   vec = (pos_j - pos_i) + shift.cell computed so that the reversed edge has exactly -vec. Built by the one
   neighbour search, HMGraphBuildWithImages (hipmace/graph.h), with the ghosts as explicit images. */
PETSC_EXTERN PetscErrorCode HMDecompGetGraphs(HMDecomp, const HMGraph **main, const HMGraph **hessian);
/* Halo exchange of per-atom rows data[nlocal][width]: owned rows are sent to the ranks that hold them
   as ghosts. */
PETSC_EXTERN PetscErrorCode HMDecompHaloExchange(HMDecomp, HMHaloType, PetscInt width, double data[]);
/* Reverse of HMDecompHaloExchange, collective: the rows of the ghosts in the halo are added into the rows of
   their owned atoms on the owning ranks; ghost rows are left as they were. The order is fixed: the owner's
   row first, then its ghost copies sorted by (image, rank holding the copy), so the result is the same on
   every run with the same partition. It is bitwise invariant across rank counts only when that order does
   not matter (e.g. integer-valued data); the copies that exist, and what each holds, depend on the
   partition. For rank-count invariant sums of edge terms (forces) use HMDecompEdgeReverse. */
PETSC_EXTERN PetscErrorCode HMDecompHaloAccumulate(HMDecomp, HMHaloType, PetscInt width, double data[]);
/* Collective. edge[nedges][width]: rows on the edges of the graph of the halo type (HMDecompGetGraphs);
   rev[e] = edge[reverse(e)], the row of the reversed edge (j -> i with image -shift, which exists because the
   neighbour relation is exactly symmetric), wherever its sender is owned. A term of atom i summed over
   its row as sum_e (rev[e] - edge[e]) is then in the canonical order (input index of the neighbour,
   image) with partition-independent values: bitwise the same on any rank count. The first call per
   halo type sets up the star forest (one all-to-all). edge and rev must not overlap. */
PETSC_EXTERN PetscErrorCode HMDecompEdgeReverse(HMDecomp, HMHaloType, PetscInt width, const double edge[], double rev[]);
/* Collective. Frees the buffers PetscSF keeps from the halo's last exchanges (ghosts x width doubles); the next
   exchange allocates them again. */
PETSC_EXTERN PetscErrorCode HMDecompHaloReleaseBuffers(HMDecomp, HMHaloType);
/* Number of ghosts in each halo and the bytes one exchange of width w moves into this rank. */
PETSC_EXTERN PetscErrorCode HMDecompGetHaloSize(HMDecomp, HMHaloType, PetscInt *nghost);
/* Application ordering: input index <-> partition index. */
PETSC_EXTERN PetscErrorCode HMDecompGetAO(HMDecomp, AO *);
/* Collective; nv must be the same on every rank. owned[nowned][nv]: per-owned-atom values; sums[nv]: for each
   column the sum over all owned atoms of all ranks, the same on every rank: HMSumExact (hipmace/sys.h) on
   the decomposition's communicator, so the correctly rounded exact sum, bitwise the same on any number of
   ranks. Cost per rank O(nowned nv) and one all-reduce of 568 nv bytes, independent of the atom count. */
PETSC_EXTERN PetscErrorCode HMDecompSumExact(HMDecomp, PetscInt nv, const double owned[], double sums[]);
/* Cell of the system (for output). */
PETSC_EXTERN PetscErrorCode HMDecompGetCell(HMDecomp, PetscBool *hascell, double cell[9], PetscBool pbc[3]);

/* Private layout of HMDecomp, shared by the files of src/decomp (partition, ghosts, halo, decomp). */
#pragma once

#include <hipmace/decomp.h>
#include <hipmace/log.h>

struct _p_HMDecomp {
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  PetscInt    N, nowned, nlocal, rstart;
  PetscInt   *gid, *pidx;
  int        *Z, *shift;
  double     *pos, *mass;
  PetscBool   hascell, pbc[3];
  PetscBool   distributed; /* the structure came in parallel (HMReaderLoadDistributed) */
  double      cell[9];
  double      rc[2]; /* cutoffs of the main and the Hessian graph (HMDecompSetPositions rebuilds them) */
  HMGraph     g[2];
  PetscBool   gshared; /* g[HM_HALO_FAR] is g[HM_HALO_NEAR] (equal cutoffs): its arrays are freed once */
  PetscSF     sf[2];
  PetscInt    nghost[2];
  PetscInt   *ghost_rank, *ghost_idx; /* owner of each ghost and its index there */
  /* reverse accumulate: the ghost copies of each owned atom in the multi-root space of sf[t], and the order
     (image, source rank) in which they are added; set up at the first call */
  PetscInt *acc_start[2], *acc_order[2];
  /* edge reversal: the reversed edge of a local edge on this rank (-1: on another rank, through esf[t]) */
  PetscInt *rev_local[2];
  PetscSF   esf[2];
  AO        ao;
};

/* ghosts.c: every owned atom's periodic images within R of a rank's atoms are sent there as ghosts; the local
   arrays grow to owned atoms followed by ghosts sorted by (input index, image). */
PETSC_INTERN PetscErrorCode HMDecompSetUpGhosts_Private(HMDecomp, double R);
/* halo.c: one star forest per halo whose leaves are the ghosts some edge of the graph reads. */
PETSC_INTERN PetscErrorCode HMDecompSetUpHalo_Private(HMDecomp);
PETSC_INTERN PetscErrorCode HMDecompDestroyHalo_Private(HMDecomp);

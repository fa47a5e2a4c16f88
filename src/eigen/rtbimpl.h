/* Private to the rigid-block (RTB) reduction: rtb.c (the reduced problem and its solution) and rtbblocks.c (the
   blocks and the projector P onto their rigid-body motions, from a whole or a distributed structure). */
#pragma once

#include "eigenimpl.h"

typedef struct {
  PetscInt  n, nb;   /* atoms, blocks */
  PetscInt *start;   /* nb + 1 offsets into atoms */
  PetscInt *atoms;   /* members of each block in ascending order; blocks ordered by their first atom */
  PetscBool residue; /* blocks are PDB residues */
} HMBlocks;

PETSC_INTERN PetscErrorCode HMBlocksDestroy_Private(HMBlocks *);
/* The blocks of a whole structure: PDB residues or the cells of a grid of about bsz atoms each. */
PETSC_INTERN PetscErrorCode HMBlocksBuild_Private(HMSystem, PetscInt bsz, HMBlocks *);
/* P (3N x the block vectors), rows in Ht's layout, from a whole structure and its blocks. */
PETSC_INTERN PetscErrorCode HMRTBProjector_Private(HMProj *, HMSystem, HMBlocks *, Mat *P);
/* The same P from a distributed structure (each rank the atoms of its rows of Ht), without any rank holding all
   atoms: the same blocks, numbering and entries. *nb: blocks; *residue: they are PDB residues. */
PETSC_INTERN PetscErrorCode HMRTBProjectorDistributed_Private(HMProj *, HMSystem, PetscInt N, PetscInt bsz, Mat *P, PetscInt *nb, PetscBool *residue);

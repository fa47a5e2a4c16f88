/* Deterministic builders of test systems of any size (water, diamond, molecular clusters, peptides). */
#pragma once

#include <hipmace/io.h>

/* Every builder is deterministic: the same arguments (and seed) give bit-identical positions on
   every platform (own PRNG, no library random numbers). Every rank builds the same system; the
   system lives on comm. Water, diamond and peptides use only H, C, N, O. */

/* Liquid water at 0.997 g/cm^3 (standard atomic weights): rigid molecules (O-H 0.9572 A,
   H-O-H 104.52 deg) with random orientations on a jittered lattice, periodic near-cubic
   orthorhombic cell. Atoms of different molecules (periodic images included) are >= 1.6 A apart,
   O-O >= 2.5 A. Atoms are ordered O, H, H per molecule; molecules are whole (H atoms may stick out
   of the cell by less than 1 A). */
PETSC_EXTERN PetscErrorCode HMBuildWaterBox(MPI_Comm, PetscInt nmolecules, unsigned long seed, HMSystem *);

/* Diamond carbon: 8-atom cubic cell (a = 3.567 A) replicated nx x ny x nz, periodic. Each atom is
   moved by a random vector uniform in a ball of radius displacement (A, >= 0; 0 = ideal crystal). */
PETSC_EXTERN PetscErrorCode HMBuildDiamond(MPI_Comm, PetscInt nx, PetscInt ny, PetscInt nz, double displacement, unsigned long seed, HMSystem *);

/* Open cluster of ncopies randomly rotated copies of molecule (its cell is ignored, its elements
   are kept as they are), roughly spherical, centred at the origin. Atoms of different copies are
   >= gap apart (gap > 0, A). Copies sit on a jittered cubic grid, filled from the centre outwards,
   whose spacing is the smallest of 11 trial values from R + gap to 2 R + gap (R: largest distance
   of an atom from the molecule's centre) at which every copy found a clash-free orientation; the
   last value always succeeds. Atoms are ordered copy by copy in the molecule's order. */
PETSC_EXTERN PetscErrorCode HMBuildCluster(MPI_Comm, HMSystem molecule, PetscInt ncopies, double gap, unsigned long seed, HMSystem *);

/* Open chain of nresidues glycine (7 atoms) or alanine (10 atoms, L) residues built from ideal
   internal coordinates with the NeRF method: conformation "helix" (alpha, phi/psi = -57/-47) or
   "strand" (beta, -139/135), trans peptide bonds. N-terminus NH2, C-terminus COOH, so
   7 n + 3 or 10 n + 3 atoms. Per residue the order is N, H (H1, H2 for the first), CA, HA (HA2,
   HA3 for glycine), [CB, HB1, HB2, HB3], C, O; then OXT, HXT. The chain axis is along z and the
   bounding box is centred at the origin. */
PETSC_EXTERN PetscErrorCode HMBuildPeptide(MPI_Comm, PetscInt nresidues, const char conformation[], PetscBool alanine, HMSystem *);

/* Sizes closest to a target atom count:
   water:   round(target / 3) molecules (>= 1);
   diamond: nx <= ny <= nz, the most cubic with 8 nx ny nz within 1% of target (or, when no shape
            is, the count closest to target; ties go to the most cubic shape);
   cluster: round(target / molecule_atoms) copies (>= 1);
   peptide: round((target - 3) / atoms per residue) residues (>= 1). */
PETSC_EXTERN PetscErrorCode HMBuildWaterSize(PetscInt target, PetscInt *nmolecules);
PETSC_EXTERN PetscErrorCode HMBuildDiamondSize(PetscInt target, PetscInt cells[3]);
PETSC_EXTERN PetscErrorCode HMBuildClusterSize(PetscInt target, PetscInt molecule_atoms, PetscInt *ncopies);
PETSC_EXTERN PetscErrorCode HMBuildPeptideSize(PetscInt target, PetscBool alanine, PetscInt *nresidues);

/* A system of about target_atoms atoms with default options. kind: "water", "diamond"
   (no displacement), "cluster" (molecule_file required, gap 3 A) or "peptide" (alanine alpha
   helix); "peptide:" may be followed by comma-separated modifiers helix|strand and ala|gly,
   e.g. "peptide:strand,gly". molecule_file is ignored (may be NULL) for the other kinds. */
PETSC_EXTERN PetscErrorCode HMBuildSystem(MPI_Comm, const char kind[], PetscInt target_atoms, unsigned long seed, const char molecule_file[], HMSystem *);

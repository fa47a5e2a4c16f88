/* The one neighbour search of hipmace: cell lists (O(N)), open or periodic boundaries, or explicit
   periodic images (the decomposition's ghosts). */
#pragma once

#include <hipmace/sys.h>

/* Directed edges s -> r with |pos[r] + shift.cell - pos[s]| < cutoff (strict), no self-edge of an
   atom with itself at zero shift; both directions present. Edges are sorted by sender, then
   receiver, then shift (lexicographic), so summation order is canonical. */
typedef struct {
  PetscInt  n; /* number of senders (HMGraphBuild: all atoms the graph was built on) */
  PetscInt  nedges;
  PetscInt *sender;   /* [nedges] */
  PetscInt *receiver; /* [nedges] */
  int      *shift;    /* [nedges][3] integer image of the receiver (all 0 without pbc) */
  double   *vec;      /* [nedges][3] pos[r] + shift.cell - pos[s] */
  double   *len;      /* [nedges] */
  PetscInt *offset;   /* [n+1] CSR: edges of sender s are offset[s] .. offset[s+1]-1 */
} HMGraph;

/* cell: lattice vectors as rows (NULL = no cell); pbc per axis (NULL = none). Any cell thickness is
   allowed (images farther than one cell are found, including an atom's own images).
   Positions are used as given (not wrapped): shift is the image of the receiver relative to its
   own input position, and vec is computed exactly as
     vec[d] = (pos[r][d] + (shift[0]*cell[0][d] + shift[1]*cell[3][d] + shift[2]*cell[6][d])) - pos[s][d]
   (vec[d] = pos[r][d] - pos[s][d] when shift == 0), len = sqrt(vx*vx + vy*vy + vz*vz), and the
   edge exists iff vx*vx + vy*vy + vz*vz < cutoff*cutoff in double precision. */
PETSC_EXTERN PetscErrorCode HMGraphBuild(PetscInt n, const double pos[], const double cell[9], const PetscBool pbc[3], double cutoff, HMGraph *g);
PETSC_EXTERN PetscErrorCode HMGraphDestroy(HMGraph *g);
/* The same search over explicit images, for a rank's local atoms (owned atoms, then ghost copies):
   atom i stands at pos[i] + image[i].cell (image NULL: all zero; no other images are searched, the
   caller supplies every copy it wants). Senders are atoms 0 .. nsenders-1 (PETSC_DECIDE: all), so g->n
   = nsenders; receivers are all n atoms. Edge s -> r exists iff vx*vx + vy*vy + vz*vz < cutoff*cutoff
   for shift = image[r] - image[s] and
     vec[d] = (pos[r][d] - pos[s][d]) + (shift[0]*cell[0][d] + shift[1]*cell[3][d] + shift[2]*cell[6][d])
   (vec[d] = pos[r][d] - pos[s][d] when shift == 0; no edge of an atom with itself), so the reversed
   edge has exactly -vec (as numbers: a zero component is +0 both ways); len = sqrt(vx*vx + vy*vy + vz*vz). The edges of a sender are sorted by
   (key[r], shift) (key NULL: by r), which the caller makes canonical by passing a rank-independent key
   such as the input index; no two atoms may have the same key and the same image. */
PETSC_EXTERN PetscErrorCode HMGraphBuildWithImages(PetscInt n, const double pos[], const int image[], const double cell[9], PetscInt nsenders, const PetscInt key[], double cutoff, HMGraph *g);

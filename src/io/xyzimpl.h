/* Private to the XYZ readers (xyz.c: serial reader and writer; xyzpar.c: the parallel reader). */
#pragma once
#include "ioimpl.h"
#include "textimpl.h"

typedef struct {
  HMTextReader t;   /* the file and the line position (textimpl.h) */
  char       **tok; /* scratch for the columns of one atom line */
} XYZReader;

/* Column layout of the atom lines, from Properties= or the plain "symbol x y z" default. */
typedef struct {
  PetscBool haslattice, haspbc, hasprops;
  double    cell[9];
  PetscBool pbc[3];
  int       ncols;      /* columns declared by Properties (or 4 for plain XYZ) */
  PetscBool exactcols;  /* extended XYZ: the line must have exactly ncols columns */
  int       colspecies; /* S:1 symbol or atomic number; -1 if absent */
  int       colZ;       /* I:1 atomic numbers, used when there is no species column; -1 if absent */
  int       colpos;     /* first of the three R columns */
  int       colmass;    /* R:1; -1 if absent */
} XYZLayout;

/* The count line and the comment line (Properties=, Lattice=, pbc=) of the frame at the reader's position. */
PetscErrorCode HMXYZParseHeader_Private(XYZReader *r, long long *pn, XYZLayout *L);
/* One atom line s (atom i of n) into Z, x and mass; a non-zero return has set the error (file:line). */
PetscErrorCode HMXYZParseAtom_Private(XYZReader *r, const XYZLayout *L, char *s, PetscInt i, long long n, int *Z, double x[3], double *mass);
/* The cell and periodicity of the layout into sys. */
void HMXYZSetCell_Private(HMSystem sys, const XYZLayout *L);

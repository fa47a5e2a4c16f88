/* Private layout of the io module's objects (safetensors containers and atomic systems). */
#pragma once

#include <hipmace/io.h>
#include <jansson.h>

struct _p_HMSafetensors {
  MPI_Comm      comm;
  char         *path;
  void         *map;      /* whole file, read-only; tensor data points into it */
  size_t        maplen;
  json_t       *header;   /* kept alive: tensor names and metadata strings point into it */
  json_t       *metadata; /* borrowed from header; NULL when the file has none */
  PetscInt      ntensors;
  HMTensorInfo *tensors;  /* sorted by name (strcmp) so lookups are binary searches */
};

struct _p_HMSystem {
  MPI_Comm  comm;
  PetscInt  n;
  int      *Z;
  double   *pos;       /* [n][3] */
  double   *mass;      /* [n] */
  PetscBool massgiven; /* masses came from the caller or the file, not from the element table */
  PetscBool hascell;
  double    cell[9];
  PetscBool pbc[3];
  char     *source;
};

/* Checks a cell and its periodic axes; `where` prefixes the message (e.g. "mol.xyz:2"). */
PETSC_INTERN PetscErrorCode HMSystemCheckCell_Private(MPI_Comm, const char where[], const double cell[9], const PetscBool pbc[3]);

/* Whole file into a NUL-terminated buffer (freed by the caller with PetscFree, also on error). */
PETSC_INTERN PetscErrorCode HMReadTextFile_Private(MPI_Comm, const char path[], char **buf, size_t *len);
/* Format readers behind HMSystemLoad, which picks one by the file extension. */
PETSC_INTERN PetscErrorCode HMSystemLoadXYZ_Private(MPI_Comm, const char path[], HMSystem *);
PETSC_INTERN PetscErrorCode HMSystemLoadPDB_Private(MPI_Comm, const char path[], HMSystem *);
PETSC_INTERN PetscErrorCode HMSystemLoadLAMMPS_Private(MPI_Comm, const char path[], HMSystem *);

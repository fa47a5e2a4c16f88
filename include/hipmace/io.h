/* Input files: safetensors containers, element data, atomic structures. */
#pragma once

#include <hipmace/sys.h>

/* ---- safetensors (read-only, memory mapped, bounds checked) ---- */
typedef struct _p_HMSafetensors *HMSafetensors;

typedef enum {
  HM_DTYPE_F64 = 0,
  HM_DTYPE_I64 = 1
} HMDType;

typedef struct {
  const char *name;
  HMDType     dtype;
  int         ndim;
  PetscInt64  shape[8];
  PetscInt64  numel;
  const void *data; /* 8-byte aligned, little-endian, C order; NULL when numel == 0 */
} HMTensorInfo;

/* Errors (file missing, truncated, bad header, offsets out of range or overlapping, unknown dtype)
   name the file and the tensor. Collective on comm only in the sense that every rank opens it. */
PETSC_EXTERN PetscErrorCode HMSafetensorsOpen(MPI_Comm, const char path[], HMSafetensors *);
PETSC_EXTERN PetscErrorCode HMSafetensorsClose(HMSafetensors *);
PETSC_EXTERN PetscErrorCode HMSafetensorsGetPath(HMSafetensors, const char **);
/* value is NULL when the key is absent */
PETSC_EXTERN PetscErrorCode HMSafetensorsGetMetadata(HMSafetensors, const char key[], const char **value);
PETSC_EXTERN PetscErrorCode HMSafetensorsGetNumTensors(HMSafetensors, PetscInt *);
PETSC_EXTERN PetscErrorCode HMSafetensorsGetTensorByIndex(HMSafetensors, PetscInt, const HMTensorInfo **);
/* info is NULL when absent */
PETSC_EXTERN PetscErrorCode HMSafetensorsFind(HMSafetensors, const char name[], const HMTensorInfo **info);
/* Required tensor of a given dtype and shape (shape[k] < 0 means any extent); error names file and tensor. */
PETSC_EXTERN PetscErrorCode HMSafetensorsGetF64(HMSafetensors, const char name[], int ndim, const PetscInt64 shape[], const double **data);
PETSC_EXTERN PetscErrorCode HMSafetensorsGetI64(HMSafetensors, const char name[], int ndim, const PetscInt64 shape[], const PetscInt64 **data);
/* Shape-agnostic variant: returns the info, checking dtype only. */
PETSC_EXTERN PetscErrorCode HMSafetensorsGetInfo(HMSafetensors, const char name[], HMDType, const HMTensorInfo **info);

/* ---- elements ---- */
/* Symbol of Z (1..HM_MAX_Z), "X" otherwise. */
PETSC_EXTERN const char *HMElementSymbol(int Z);
/* Z of a symbol (case-sensitive first letter upper, e.g. "C", "Cl"); 0 if unknown. */
PETSC_EXTERN int HMElementFromSymbol(const char sym[]);
/* Standard atomic weight in amu (IUPAC conventional values), 0 if unknown. */
PETSC_EXTERN double HMElementMass(int Z);

/* ---- atomic structures ---- */
typedef struct _p_HMSystem *HMSystem;

/* Reads a structure; the extension picks the format: .pdb/.ent PDB (ATOM/HETATM, CRYST1 cell,
   option -pdb_model K), .data/.lmp/.lammps LAMMPS data file (atomic/full/... atom styles, option
   -lammps_types C,H,O, Masses kept as masses), anything else XYZ / extended XYZ (Lattice=, pbc=,
   Properties= with species, pos, optional masses). Errors name the file and the line. Every rank
   reads the file (serial engine). See docs/FORMATS.md. */
PETSC_EXTERN PetscErrorCode HMSystemLoad(MPI_Comm, const char path[], HMSystem *);
/* cell: 3 lattice vectors as rows (a = cell[0..2], ...) or NULL; pbc: per axis or NULL */
PETSC_EXTERN PetscErrorCode HMSystemCreate(MPI_Comm, PetscInt n, const int Z[], const double pos[], const double cell[9], const PetscBool pbc[3], HMSystem *);
PETSC_EXTERN PetscErrorCode HMSystemDestroy(HMSystem *);
PETSC_EXTERN PetscErrorCode HMSystemGetSize(HMSystem, PetscInt *n);
PETSC_EXTERN PetscErrorCode HMSystemGetPositions(HMSystem, const double **pos); /* [n][3], Angstrom */
PETSC_EXTERN PetscErrorCode HMSystemGetAtomicNumbers(HMSystem, const int **Z);
/* masses in amu: the file's masses column when present, else standard weights */
PETSC_EXTERN PetscErrorCode HMSystemGetMasses(HMSystem, const double **m);
/* hascell false -> cell is zero and pbc all false */
PETSC_EXTERN PetscErrorCode HMSystemGetCell(HMSystem, PetscBool *hascell, double cell[9], PetscBool pbc[3]);
PETSC_EXTERN PetscErrorCode HMSystemGetSource(HMSystem, const char **path); /* file name or "(memory)" */
/* Writes extended XYZ (full precision, %.17g); atomically (temporary name, then rename).
   Collective on the system's communicator: rank 0 writes, every rank gets the outcome. */
PETSC_EXTERN PetscErrorCode HMSystemWriteXYZ(HMSystem, const char path[]);
/* Replaces the standard weights by explicit masses (amu, > 0); written as a masses column. */
PETSC_EXTERN PetscErrorCode HMSystemSetMasses(HMSystem, const double m[]);

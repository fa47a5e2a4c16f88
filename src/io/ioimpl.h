/* Private layout of the io module's objects (safetensors containers and atomic systems). */
#pragma once

#include <hipmace/io.h>
#include <jansson.h>

struct _p_HMSafetensors {
  MPI_Comm      comm;
  char         *path;
  void         *map; /* whole file, read-only; tensor data points into it */
  size_t        maplen;
  json_t       *header;   /* kept alive: tensor names and metadata strings point into it */
  json_t       *metadata; /* borrowed from header; NULL when the file has none */
  PetscInt      ntensors;
  HMTensorInfo *tensors; /* sorted by name (strcmp) so lookups are binary searches */
};

struct _p_HMSystem {
  MPI_Comm     comm;
  PetscInt     n;
  int         *Z;
  double      *pos;       /* [n][3] */
  double      *mass;      /* [n] */
  PetscBool    massgiven; /* masses came from the caller or the file, not from the element table */
  PetscBool    hascell;
  double       cell[9];
  PetscBool    pbc[3];
  char        *source;
  char        *notes; /* what the reader inferred, one note per line; NULL when none */
  HMAtomLabel *label; /* [n] PDB atom labels; NULL when the input has none */
  /* read in parallel (HMReaderLoadDistributed): this rank holds atoms rstart .. rstart + n - 1 of N */
  PetscBool distributed;
  PetscInt  N, rstart;
};

struct _p_HMReader {
  MPI_Comm          comm;
  char             *prefix;
  HMStructureFormat format;
  PetscInt          frame;
  PetscBool         frameset;
  PetscInt          pdbmodel;
  PetscBool         pdbmodelset;
  char             *lammpstypes;     /* NULL: elements from the Masses section */
  char              lammpsstyle[16]; /* "": from the Atoms section's comment or its column count */
  PetscBool         pbc[3];
  PetscBool         pbcset;
  PetscBool         wrap;  /* wrap periodic positions into the cell (default) */
  char             *notes; /* notes of the file being read, moved into the system */
};

/* Checks a cell and its periodic axes; `where` prefixes the message (e.g. "mol.xyz:2"). */
PETSC_INTERN PetscErrorCode HMSystemCheckCell_Private(MPI_Comm, const char where[], const double cell[9], const PetscBool pbc[3]);

/* Whole file into a NUL-terminated buffer (freed by the caller with PetscFree, also on error). */
PETSC_INTERN PetscErrorCode HMReadTextFile_Private(MPI_Comm, const char path[], char **buf, size_t *len);
/* Format readers behind HMReaderLoad, which picks one by -structure_format, the name or the content. */
PETSC_INTERN PetscErrorCode HMSystemLoadXYZ_Private(HMReader, MPI_Comm, const char path[], HMSystem *);
/* Collective on comm: every rank reads its byte range of a one-frame XYZ file into a distributed system.
   *out NULL on every rank when the file needs the serial reader (gzip, several frames, -frame K). */
PETSC_INTERN PetscErrorCode HMSystemLoadXYZDistributed_Private(HMReader, MPI_Comm, const char path[], HMSystem *);
/* Collective on comm: every rank reads its byte range of a LAMMPS data file; a distributed system of the atoms in
   id order, or *out NULL on every rank when the file needs the serial reader (gzip); the serial reader's error on
   every rank when the file is malformed (lammpspar.c). */
PETSC_INTERN PetscErrorCode HMSystemLoadLammpsDistributed_Private(HMReader, MPI_Comm, const char path[], HMSystem *);
/* src/io/hmb.c: the binary format; distributed: each rank its block of N r / P .. N (r + 1) / P */
PETSC_INTERN PetscErrorCode HMSystemLoadHMB_Private(HMReader, MPI_Comm, const char path[], PetscBool distributed, HMSystem *);
PETSC_INTERN PetscBool      HMHMBHasMagic_Private(const char *head, size_t len);
/* The format a file name says (src/io/reader.c): by its ending, or LAMMPS's data.NAME; gz: look through a trailing .gz */
typedef enum {
  NAME_UNKNOWN,
  NAME_XYZ,
  NAME_PDB,
  NAME_LAMMPS,
  NAME_MMCIF,
  NAME_HMB
} HMIOName;
PETSC_INTERN HMIOName HMIONameGuess_Private(const char path[], PetscBool gz);
/* Appends one note (printf format, no newline) to the reader's notes of the current file. */
PETSC_INTERN PetscErrorCode HMReaderNote_Private(HMReader, const char fmt[], ...) PETSC_ATTRIBUTE_FORMAT(2, 3);

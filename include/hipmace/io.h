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

/* Reads a structure with the reader options from the options database (HMReaderSetFromOptions,
   no prefix): an HMReader created, set from options, used once and destroyed. See HMReaderLoad. */
PETSC_EXTERN PetscErrorCode HMSystemLoad(MPI_Comm, const char path[], HMSystem *);
/* cell: 3 lattice vectors as rows (a = cell[0..2], ...) or NULL; pbc: per axis or NULL */
PETSC_EXTERN PetscErrorCode HMSystemCreate(MPI_Comm, PetscInt n, const int Z[], const double pos[], const double cell[9], const PetscBool pbc[3], HMSystem *);
PETSC_EXTERN PetscErrorCode HMSystemDestroy(HMSystem *);
PETSC_EXTERN PetscErrorCode HMSystemGetSize(HMSystem, PetscInt *n); /* atoms held here (distributed: this rank's) */
/* A system read by HMReaderLoadDistributed holds atoms rstart .. rstart + n - 1 of N on each rank (the
   getters below return this rank's atoms); otherwise distributed is false, N = n and rstart = 0. */
PETSC_EXTERN PetscErrorCode HMSystemGetDistribution(HMSystem, PetscBool *distributed, PetscInt *N, PetscInt *rstart);
/* Collective. Atoms [rstart, rstart + n) of input order (Z, positions, masses, labels; cell and source name too) on
   each rank of comm, from a whole system (taken from the lowest rank holding one; NULL elsewhere is fine) or from a
   distributed one (each rank its run), by one all-to-all: O(n) per rank. *out is distributed unless it is the whole. */
PETSC_EXTERN PetscErrorCode HMSystemRedistribute(MPI_Comm comm, HMSystem src, PetscInt rstart, PetscInt n, HMSystem *out);
PETSC_EXTERN PetscErrorCode HMSystemGetPositions(HMSystem, const double **pos); /* [n][3], Angstrom */
PETSC_EXTERN PetscErrorCode HMSystemGetAtomicNumbers(HMSystem, const int **Z);
/* masses in amu: the file's masses column when present, else standard weights */
PETSC_EXTERN PetscErrorCode HMSystemGetMasses(HMSystem, const double **m);
/* hascell false -> cell is zero and pbc all false */
PETSC_EXTERN PetscErrorCode HMSystemGetCell(HMSystem, PetscBool *hascell, double cell[9], PetscBool pbc[3]);
PETSC_EXTERN PetscErrorCode HMSystemGetSource(HMSystem, const char **path); /* file name or "(memory)" */
/* Writes extended XYZ (full precision, %.17g); atomically (temporary name, then rename).
   Collective on the system's communicator: a whole system is written by rank 0, a distributed one by every rank
   at its atoms' byte offsets (MPI-IO, no rank holding all atoms; the same bytes); every rank gets the outcome. */
PETSC_EXTERN PetscErrorCode HMSystemWriteXYZ(HMSystem, const char path[]);
/* Collective: one extended-XYZ frame appended to an ordered file (HMFileOrderedOpen, hipmace/sys.h) as one
   segment: the atom count, the comment line as given (no newline) and one line per atom in input order: species,
   position, then the mass when masses is true and the force ([n][3] of the atoms held here) when forces is not
   NULL. A distributed system is written by every rank for its atoms, a whole one by rank 0. */
PETSC_EXTERN PetscErrorCode HMSystemWriteXYZFrame(HMSystem, HMOrderedFile, const char comment[], PetscBool masses, const double forces[]);
/* The extended-XYZ cell field of a comment line, Lattice="a_x a_y a_z b_x ... c_z" (rows, %.17g) and a space, into
   buf (cap bytes, NUL-terminated); returns its length. The one format of every XYZ file hipmace writes. */
PETSC_EXTERN size_t HMXYZLatticeField(const double cell[9], char buf[], size_t cap);
/* Collective on the system's communicator: the hmb binary file (docs/FORMATS.md), written atomically with MPI-IO;
   a distributed system (HMReaderLoadDistributed) is written by every rank at its atoms' offsets, no rank holding
   all; a whole system by rank 0. Masses are stored when they came from the file or the caller. */
PETSC_EXTERN PetscErrorCode HMSystemWriteHMB(HMSystem, const char path[]);
/* Collective, like HMSystemWriteXYZ (a distributed system written by every rank for its atoms, atomically):
   PDB (CRYST1 for a cell; the input's atom names, residues and chains when it had PDB labels, else HETATM MOL 1;
   coordinates to 1e-3 A; at most 99,999 atoms) and LAMMPS data (atom style atomic, one type per element in
   ascending Z with its mass, %.17g; an open structure in a box 10 A larger on every side). Both need the cell in
   the standard orientation (a along x, b in the xy plane). */
PETSC_EXTERN PetscErrorCode HMSystemWritePDB(HMSystem, const char path[]);
PETSC_EXTERN PetscErrorCode HMSystemWriteLAMMPS(HMSystem, const char path[]);
/* The format by the file name: .pdb/.ent PDB, .data/.lmp/.lammps/data.NAME LAMMPS data, .hmb, else extended XYZ
   (named false when the name is none of these nor .xyz/.extxyz; named may be NULL). */
typedef enum {
  HM_OUTPUT_XYZ,
  HM_OUTPUT_PDB,
  HM_OUTPUT_LAMMPS,
  HM_OUTPUT_HMB
} HMOutputFormat;
PETSC_EXTERN HMOutputFormat HMOutputFormatFromName(const char path[], PetscBool *named);
PETSC_EXTERN PetscErrorCode HMSystemWrite(HMSystem, const char path[]);
/* Collective: what HMSystemWrite would refuse for this system whatever its positions (PDB's atom count, the cell's
   orientation), raised now: before a long run rather than after it. */
PETSC_EXTERN PetscErrorCode HMSystemCheckWrite(HMSystem, const char path[]);
/* Replaces the cell (rows, A, finite, nonzero volume) of a system that has one; periodicity unchanged. */
PETSC_EXTERN PetscErrorCode HMSystemSetCell(HMSystem, const double cell[9]);
/* Replaces the positions of the atoms held here ([n][3], Angstrom, finite). */
PETSC_EXTERN PetscErrorCode HMSystemSetPositions(HMSystem, const double pos[]);
/* Replaces the standard weights by explicit masses (amu, > 0); written as a masses column. */
PETSC_EXTERN PetscErrorCode HMSystemSetMasses(HMSystem, const double m[]);
/* Per-atom labels of a PDB file (optional: absent for XYZ, LAMMPS and systems built in memory). */
typedef struct {
  char       name[5];    /* atom name, columns 13-16 trimmed ("CA", "HG21") */
  char       resname[5]; /* residue name, columns 18-20 trimmed ("CYS") */
  char       chain;      /* chain identifier, column 22; ' ' when blank */
  char       icode;      /* insertion code, column 27; ' ' when blank */
  PetscInt   resid;      /* residue sequence number, columns 23-26 (0 when not a decimal number) */
  PetscInt   serial;     /* atom serial number, columns 7-11 (0 when not a decimal number) */
  PetscInt64 line;       /* line of the file the atom was read from, from 1 */
} HMAtomLabel;
/* labels is NULL when the input carries none; otherwise one per atom, in input order */
PETSC_EXTERN PetscErrorCode HMSystemGetAtomLabels(HMSystem, const HMAtomLabel **labels);
/* Copies n = system size labels (NULL removes them). */
PETSC_EXTERN PetscErrorCode HMSystemSetAtomLabels(HMSystem, const HMAtomLabel labels[]);
/* Names atom i (from 0) for a message: "file.pdb:329: atom serial 328 'SG', residue CYS 3, chain A"
   with labels, else "file.xyz: atom 12" (counted from 1). Not collective. */
PETSC_EXTERN PetscErrorCode HMSystemDescribeAtom(HMSystem, PetscInt i, char buf[], size_t len);
/* Notes the reader made about what it inferred (frame chosen, CRYST1 not taken as periodic, element
   guessed from a mass, -pbc override), one per line; "" when none. Printed by HMReaderLoad as well. */
PETSC_EXTERN PetscErrorCode HMSystemGetNotes(HMSystem, const char **notes);

/* ---- structure readers ---- */
/* Formats; AUTO picks one from the file name (.xyz/.extxyz, .pdb/.ent, .data/.lmp/.lammps or a name
   starting "data.", each optionally + .gz), else from the content (first lines). */
typedef enum {
  HM_FORMAT_AUTO = 0,
  HM_FORMAT_XYZ,
  HM_FORMAT_EXTXYZ,
  HM_FORMAT_PDB,
  HM_FORMAT_LAMMPS,
  HM_FORMAT_HMB /* hipmace's binary format (docs/FORMATS.md): read in parallel by byte offsets */
} HMStructureFormat;
PETSC_EXTERN const char *const HMStructureFormats[]; /* "auto", "xyz", "extxyz", "pdb", "lammps", "hmb" (PetscOptionsEnum layout) */

/* Reader options, kept apart from any one file: -structure_format, -frame (XYZ), -pdb_model (PDB),
   -lammps_types and -lammps_style (LAMMPS), -pbc and -wrap (all formats), each with the reader's options prefix. */
typedef struct _p_HMReader *HMReader;

PETSC_EXTERN PetscErrorCode HMReaderCreate(MPI_Comm, HMReader *);
PETSC_EXTERN PetscErrorCode HMReaderDestroy(HMReader *);
PETSC_EXTERN PetscErrorCode HMReaderSetOptionsPrefix(HMReader, const char prefix[]);
/* Collective on the reader's communicator; every option shows in -help. */
PETSC_EXTERN PetscErrorCode HMReaderSetFromOptions(HMReader);
PETSC_EXTERN PetscErrorCode HMReaderSetFormat(HMReader, HMStructureFormat);
/* XYZ frame, counted from 0 as ASE does; negative counts from the end (-1 is the last frame). */
PETSC_EXTERN PetscErrorCode HMReaderSetFrame(HMReader, PetscInt);
/* PDB MODEL serial number (default: the first model in the file). */
PETSC_EXTERN PetscErrorCode HMReaderSetPDBModel(HMReader, PetscInt);
/* LAMMPS: elements of atom types 1..n, comma separated ("C,H,O"); NULL clears. */
PETSC_EXTERN PetscErrorCode HMReaderSetLAMMPSTypes(HMReader, const char types[]);
/* LAMMPS: atom style of the Atoms section (atomic, charge, bond, angle, molecular, full), overriding
   its '# style' comment; NULL or "" restores the default (the comment, else the column count). */
PETSC_EXTERN PetscErrorCode HMReaderSetLAMMPSStyle(HMReader, const char style[]);
/* Whether atoms outside the cell along periodic axes are moved into it by whole lattice vectors
   (default true; a note says how many). Atoms inside are never touched, so a wrapped input keeps its
   bits. -wrap false keeps the positions as read (LAMMPS image flags applied). */
PETSC_EXTERN PetscErrorCode HMReaderSetWrap(HMReader, PetscBool);
/* Periodic axes overriding the file's; pbc NULL restores the file's choice. Periodic axes need a cell. */
PETSC_EXTERN PetscErrorCode HMReaderSetPBC(HMReader, const PetscBool pbc[3]);
/* Reads path into a system on comm (e.g. PETSC_COMM_SELF on the reading rank). gzip-compressed files are
   read through zlib; mmCIF and unknown binary formats are refused by name. Errors name the file and the
   line (for PDB also serial, residue and chain); notes on what was inferred go to stdout once. */
PETSC_EXTERN PetscErrorCode HMReaderLoad(HMReader, MPI_Comm comm, const char path[], HMSystem *);
/* Collective on comm. A one-frame XYZ / extended-XYZ file or a LAMMPS data file (not gzipped) is read in
   parallel: every rank reads a byte range and holds a contiguous run of atoms in input order (LAMMPS: id order)
   (HMSystemGetDistribution), bitwise the atoms the serial reader gives; errors are the serial reader's, raised
   on every rank. Other formats and
   files go through HMReaderLoad on rank 0 (PETSC_COMM_SELF), *out NULL on the other ranks. One rank:
   HMReaderLoad on comm. */
PETSC_EXTERN PetscErrorCode HMReaderLoadDistributed(HMReader, MPI_Comm comm, const char path[], HMSystem *);

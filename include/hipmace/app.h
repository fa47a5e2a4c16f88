/* What programs built on hipmace use around the computation: start/stop, one-line errors, output files. */
#pragma once

#include <hipmace/sys.h>
#include <petscmat.h>
#include <hipmace/io.h>
#include <hipmace/model.h>
#include <hipmace/optimize.h>
#include <hipmace/eigen.h>

/* Starts PETSc (with the options file and help text, as PetscInitialize does) and SLEPc on top of it,
   and registers hipmace's log stages and events. Call once; HMFinalize ends both. A program that calls
   PetscInitialize itself may still use every hipmace object: SLEPc is then started when first needed. */
PETSC_EXTERN PetscErrorCode HMInitialize(int *argc, char ***argv, const char file[], const char help[]);
PETSC_EXTERN PetscErrorCode HMFinalize(void);
/* SLEPc and the log stages/events if not yet started (HMInitialize calls it; the library's entry points
   too, for programs that only called PetscInitialize). */
PETSC_EXTERN PetscErrorCode HMInitializePackage(void);

/* Replaces PETSc's multi-line traceback with one line "program: error: <message>" (kept with
   -hm_traceback). end_run PETSC_TRUE: the run ends at the point of the error on every rank (MPI programs
   whose ranks may be inside different collectives; crashes give one line too); PETSC_FALSE: the first
   error is printed once by rank 0 and propagates to the caller. */
PETSC_EXTERN PetscErrorCode HMPushErrorHandler(const char program[], PetscBool end_run);
PETSC_EXTERN PetscErrorCode HMPopErrorHandler(void);

/* Output files of programs, written to a temporary name and renamed when complete (through the atomic
   file writes of hipmace/sys.h). */
/* Fails early (before any work) if path cannot be created; opt names the option in the message. */
PETSC_EXTERN PetscErrorCode HMFileCheckWritable(const char opt[], const char path[]);
/* The file of viewer option opt (e.g. -hessian_view binary:H.bin), checked on rank 0 of comm, if set. */
PETSC_EXTERN PetscErrorCode HMFileCheckViewerOption(MPI_Comm comm, const char opt[]);
/* Views A with viewer option opt if set; binary:FILE[:FORMAT] goes through a temporary name (with its
   .info companion), other viewers are used as given. */
PETSC_EXTERN PetscErrorCode HMMatViewFromOptionAtomic(Mat A, const char opt[]);

/* Collective. The structure for a run: with -read_parallel true (the default) and whole false, a one-frame
   XYZ file or a LAMMPS data file is read by every rank (HMReaderLoadDistributed: each rank a part, no rank the whole), else rank 0
   reads it (HMReaderLoad on PETSC_COMM_SELF; *sys NULL elsewhere). whole: the caller needs the whole
   structure (mode analysis). */
PETSC_EXTERN PetscErrorCode HMStructureLoadFromOptions(MPI_Comm comm, HMReader reader, const char path[], PetscBool whole, HMSystem *sys);
/* Hessian files for other programs (docs/FORMATS.md): -phonopy_fc FILE (FORCE_CONSTANTS text, or HDF5 when
   FILE ends in .hdf5) with -phonopy_supercell and -phonopy_yaml, -orca_hess FILE, -ase_vib FILE. They hold
   the dense Hessian, gathered on rank 0: up to HM_EXPORT_MAX_ATOMS atoms. HMExportCheckOptions checks the
   options and output paths before any work (*any: one of them is set); HMExportFromOptions writes the files
   from the Hessian in input order (HMHessianInputOrder), the whole structure on rank 0 (ignored elsewhere) and
   the modes (may be NULL; -orca_hess lists frequencies and modes with -modes full). Collective. */
#define HM_EXPORT_MAX_ATOMS 3000
PETSC_EXTERN PetscErrorCode HMExportCheckOptions(MPI_Comm comm, PetscBool *any);
PETSC_EXTERN PetscErrorCode HMExportFromOptions(Mat H, HMSystem sys, HMModes modes);
/* Collective. The whole structure of rank 0 (root; ignored elsewhere) on every rank of comm, with its cell,
   masses and (on rank 0) the PDB atom labels: O(N) on every rank, for the normal-mode analysis and its files. */
PETSC_EXTERN PetscErrorCode HMSystemBcast(MPI_Comm comm, HMSystem root, HMSystem *all);
/* Collective. -optimize none|min|ts with its -optimize_* options (docs/OPTIMIZE.md): the structure on rank 0
   (*sys) is replaced by the optimised one; *opt keeps the results for the summary (NULL with -optimize none,
   the default). */
PETSC_EXTERN PetscErrorCode HMOptimizeStructureFromOptions(MPI_Comm comm, HMModel model, HMSystem *sys, HMOptimizer *opt);

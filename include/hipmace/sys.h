/* Common definitions shared by every hipmace module, and the system services of src/sys: package
   initialisation, progress messages, memory reporting, exact sums, atomic file writes. */
#pragma once

#include <petscsys.h>
#include <stdio.h>

/* PETSc before 3.19 spells success as 0 (Debian 12 ships 3.18). */
#if PETSC_VERSION_LT(3, 19, 0)
  #define PETSC_SUCCESS                0
  #define PetscOptionsRestoreViewer(v) PetscViewerDestroy(v)
#endif

/* HM_VERSION: the meson project version (generated into the build folder by include/hipmace/meson.build) */
#include <hipmace/version.h>

/* Largest angular momentum the engine supports in features and spherical harmonics. */
#define HM_LMAX 4

/* Element table: Z = 1 .. HM_MAX_Z. */
#define HM_MAX_Z 86
/* 1 eV/A^3 in GPa (stress) */
#define HM_EV_A3_GPA 160.21766208

/* ---------------------------------------------------------------- package */
/* Once per process: registers hipmace's log stages and events (hipmace/log.h) and reads the options of
   src/sys (-progress_interval) through PetscOptionsBegin on PETSC_COMM_WORLD, so they show in -help.
   Called by the library's entry points (HMDecompCreate); later calls do nothing. */
PETSC_EXTERN PetscErrorCode HMSysInitializePackage(void);
/* Reads -progress_interval (seconds, default 30, 0 = off) from the options database. Called by
   HMSysInitializePackage; call again after changing the options to re-read them. */
PETSC_EXTERN PetscErrorCode HMSysSetFromOptions(void);

/* ---------------------------------------------------------------- progress */
/* Progress of long loops on rank 0 of comm, at most every HMProgressGetInterval() seconds. *last is the
   caller's timer (start it at 0). Not collective. */
PETSC_EXTERN PetscErrorCode HMProgress(MPI_Comm, const char what[], double done, double total, double *last);
/* Seconds between progress messages; 0 or less turns them off. Same on every rank by construction. */
PETSC_EXTERN PetscErrorCode HMProgressSetInterval(double seconds);
PETSC_EXTERN PetscErrorCode HMProgressGetInterval(double *seconds);

/* ---------------------------------------------------------------- memory */
/* Resident set size of this process in bytes: current (VmRSS) or peak (VmHWM); 0 if unknown. */
PETSC_EXTERN double HMMemoryRSS(PetscBool peak);
/* Memory the node can still give out (MemAvailable of /proc/meminfo) in bytes; 0 if unknown. */
PETSC_EXTERN double HMMemoryAvailable(void);
/* Let freed large arrays (>= 16 MB) go back to the system at once (glibc: mmap for them, trim the heap).
   Open MPI's start-up turns glibc's mmap off, so without this a freed array stays in the process and
   the memory peak of a later stage is the sum of everything ever allocated. Option -memory_return
   (default true); a no-op where the C library is not glibc. */
PETSC_EXTERN PetscErrorCode HMMemorySetReturnToSystem(PetscBool);

/* ---------------------------------------------------------------- exact sums */
/* int64 words per column that HMSumExact reduces: 68 fixed-point digits spanning every finite double,
   plus counts of NaN, +Inf and -Inf (the scaling model charges this message). */
#define HM_SUM_EXACT_WORDS 71
/* Collective on comm; nv must be the same on every rank, nrows may differ. rows[nrows][nv]: this rank's
   values; sums[nv]: for each column the sum over all rows of all ranks, the same on every rank. The sum
   is accumulated EXACTLY in fixed point (one integer all-reduce of nv * HM_SUM_EXACT_WORDS words) and
   rounded once: the result is the correctly rounded (to nearest, ties to even) double of the exact sum,
   so it depends only on the multiset of values, never on their order or on how they are spread over the
   ranks. An exact zero gives +0; a sum beyond the double range gives +-Inf, as IEEE rounding would. Any
   NaN, or both +Inf and -Inf, gives NaN; otherwise an infinite input gives that infinity. Cost
   O(nrows nv) and one all-reduce of 568 nv bytes (O(log P) latencies). */
PETSC_EXTERN PetscErrorCode HMSumExact(MPI_Comm, PetscInt nv, PetscInt nrows, const double rows[], double sums[]);

/* ---------------------------------------------------------------- atomic file writes */
/* A file written under a temporary name next to its final path ("<path>.tmp.<pid>") and renamed onto
   it only when complete, so readers never see a partial file and a failed run leaves the old file (or
   none) and no temporary behind. All calls are collective on the communicator given at open; rank 0
   does the file system work, every rank gets the same one-line error naming the path. */
typedef struct _n_HMAtomicFile *HMAtomicFile;
/* Rank 0 creates the temporary and returns its stream in *fp (NULL on the other ranks). With fp NULL
   no stream is opened: the caller writes the temporary by name (HMFileGetTempNameAtomic), e.g. through
   a PetscViewer, and closes it before the commit. */
PETSC_EXTERN PetscErrorCode HMFileOpenAtomic(MPI_Comm, const char path[], FILE **fp, HMAtomicFile *);
/* Name of the temporary file (the same string on every rank). */
PETSC_EXTERN PetscErrorCode HMFileGetTempNameAtomic(HMAtomicFile, const char *tmp[]);
/* Rank 0 checks the stream for write errors, flushes it to disk (fsync), closes it and renames the
   temporary onto path; on any failure it removes the temporary and every rank fails with
   "<path>: cannot write: <reason>". Frees the handle (*h = NULL) in every case. */
PETSC_EXTERN PetscErrorCode HMFileCommitAtomic(HMAtomicFile *);
/* Closes and removes the temporary, path untouched; frees the handle. No-op on a NULL handle. */
PETSC_EXTERN PetscErrorCode HMFileAbortAtomic(HMAtomicFile *);
/* Open, write text, commit: a whole small file (a summary) in one call. Collective; text used on rank 0. */
PETSC_EXTERN PetscErrorCode HMFileWriteAtomic(MPI_Comm, const char path[], const char text[]);
/* A file made of every rank's part in rank order (rank 0's first), written collectively with MPI-IO at
   offsets from a prefix sum of the parts' lengths, atomically as above: no rank holds more than its own
   part, so per-atom outputs of distributed systems need no gather. Collective; len may be 0 on any rank. */
PETSC_EXTERN PetscErrorCode HMFileWriteOrderedAtomic(MPI_Comm, const char path[], const char part[], size_t len);
/* The same for a file of nseg segments: segment 0 of ranks 0..P-1, then segment 1 of ranks 0..P-1, ... (a header
   in rank 0's part, then every rank's atoms, per section). Collective; lens[k] may be 0 on any rank. */
PETSC_EXTERN PetscErrorCode HMFileWriteSegmentsAtomic(MPI_Comm, const char path[], PetscInt nseg, const char *const parts[], const size_t lens[]);
/* Streaming form of the above, one segment in memory at a time: each rank appends its part of the current segment
   (HMFileOrderedWrite / HMFileOrderedPrintf, not collective), HMFileOrderedEndSegment (collective) writes the
   segment at the file's end, HMFileOrderedCommit (collective) ends a pending segment, closes and renames, or fails
   on every rank naming the path. Atomic as above. */
typedef struct _n_HMOrderedFile *HMOrderedFile;
PETSC_EXTERN PetscErrorCode      HMFileOrderedOpen(MPI_Comm, const char path[], HMOrderedFile *);
PETSC_EXTERN PetscErrorCode      HMFileOrderedWrite(HMOrderedFile, const char text[], size_t len);
PETSC_EXTERN PetscErrorCode      HMFileOrderedPrintf(HMOrderedFile, const char fmt[], ...) PETSC_ATTRIBUTE_FORMAT(2, 3);
PETSC_EXTERN PetscErrorCode      HMFileOrderedEndSegment(HMOrderedFile);
PETSC_EXTERN PetscErrorCode      HMFileOrderedCommit(HMOrderedFile *);

/* ---------------------------------------------------------------- errors */
/* The message of a PETSc error on one line: newlines become spaces, surrounding blanks are cut, and an
   empty message becomes the text of the error code. out[len] is always terminated. The error handlers
   of programs (HMPushErrorHandler, hipmace/app.h) print it. */
PETSC_EXTERN void HMErrorMessageOneLine(PetscErrorCode n, const char mess[], char out[], size_t len);

/* Parallel reading of a text file by byte ranges, shared by the parallel XYZ and LAMMPS readers: every rank
   reads the lines that start in its range; errors met while a rank parses its own lines are captured and the
   first one in the file is raised on every rank. */
#pragma once

#include <string.h>

#include "ioimpl.h"

/* Keeps the message of the first error raised under it (PetscPushErrorHandler), prints nothing. */
typedef struct {
  char      msg[1024];
  PetscBool set;
} HMErrorCapture;

PETSC_INTERN PetscErrorCode HMErrorCapture_Private(MPI_Comm, int, const char *, const char *, PetscErrorCode, PetscErrorType, const char *, void *);

/* This rank's share of the file: the lines that start in bytes [b0, b1) (the last one read to its end).
   buf holds bytes from b0; first is the offset in buf of the first line start (len if none). */
typedef struct {
  char     *buf;
  long long b0, b1, len, first, nlbefore; /* nlbefore: newlines before b0 */
} HMSlice;

/* Collective: the file opened on every rank for parallel reading (a regular, uncompressed file). *fd is -1 and
   no error is raised when the file is not one (missing, gzip, not regular: the serial reader decides). */
PETSC_INTERN PetscErrorCode HMSliceOpen_Private(MPI_Comm, const char path[], int *fd, long long *fsize);
/* len bytes at off, fewer only at the end of the file */
PETSC_INTERN PetscErrorCode HMPreadFull_Private(int fd, const char path[], char *buf, size_t len, long long off, size_t *got);
/* Collective: this rank's slice (nlbefore by a prefix sum). */
PETSC_INTERN PetscErrorCode HMSliceRead_Private(MPI_Comm, int fd, const char path[], long long fsize, HMSlice *);
/* Collective: a NUL byte anywhere is reported with its line, as the serial readers do. */
PETSC_INTERN PetscErrorCode HMSliceCheckNul_Private(MPI_Comm, const char path[], const HMSlice *);
/* Collective: errline is this rank's first error line (LLONG_MAX: none) with its captured message; the first
   one in the file is raised on every rank. */
PETSC_INTERN PetscErrorCode HMSliceRaiseFirstError_Private(MPI_Comm, long long errline, const HMErrorCapture *);

/* Next line of the slice from *pos, cut in place (newline and a DOS carriage return removed). */
static inline char *HMSliceLine(HMSlice *sl, long long *pos)
{
  char  *s = sl->buf + *pos, *nl = (char *)memchr(s, '\n', (size_t)(sl->len - *pos));
  size_t len;

  if (nl) {
    *nl  = '\0';
    *pos = (long long)(nl - sl->buf) + 1;
  } else *pos = sl->len;
  len = strlen(s);
  if (len && s[len - 1] == '\r') s[len - 1] = '\0';
  return s;
}

/* Collective: rank 0 reads len bytes at off and every rank gets them, NUL-terminated (*buf freed by the caller). */
PETSC_INTERN PetscErrorCode HMSliceBcastBytes_Private(MPI_Comm, int fd, const char path[], long long off, long long len, char **buf);

/* A parallel reader of an opened file (fd, fsize bytes): a distributed system, or *out NULL on every rank when the
   serial reader should read the file. */
typedef PetscErrorCode (*HMSliceLoader)(HMReader, MPI_Comm, const char path[], int fd, long long fsize, HMSystem *out);
/* Collective: the file opened on every rank (HMSliceOpen_Private) and read by load; *out NULL when it cannot be
   read in parallel (not a regular file, gzip). */
PETSC_INTERN PetscErrorCode HMSliceLoad_Private(HMReader, MPI_Comm, const char path[], HMSliceLoader load, HMSystem *out);

/* Parallel reading of a text file by byte ranges (sliceimpl.h), for the XYZ and LAMMPS readers. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "sliceimpl.h"

PetscErrorCode HMErrorCapture_Private(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  HMErrorCapture *c = (HMErrorCapture *)ctx;

  (void)comm;
  (void)line;
  (void)fun;
  (void)file;
  if (p == PETSC_ERROR_INITIAL && !c->set) {
    snprintf(c->msg, sizeof(c->msg), "%s", mess ? mess : "error");
    c->set = PETSC_TRUE;
  }
  return n;
}

PetscErrorCode HMPreadFull_Private(int fd, const char path[], char *buf, size_t len, long long off, size_t *got)
{
  PetscFunctionBegin;
  *got = 0;
  while (*got < len) {
    const ssize_t k = pread(fd, buf + *got, len - *got, (off_t)(off + (long long)*got));

    PetscCheck(k >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: read error at byte %lld: %s", path, off + (long long)*got, strerror(errno));
    if (k == 0) break;
    *got += (size_t)k;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Rank 0: the file's size, and whether it can be read in parallel (a regular, uncompressed file). */
static PetscErrorCode ProbeFile(const char path[], long long info[2])
{
  struct stat   sb;
  unsigned char magic[2] = {0, 0};
  int           fd       = open(path, O_RDONLY);

  PetscFunctionBegin;
  info[0] = info[1] = 0;
  if (fd < 0) PetscFunctionReturn(PETSC_SUCCESS); /* the serial reader reports why */
  if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && !(pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)) {
    info[0] = (long long)sb.st_size;
    info[1] = 1;
  }
  close(fd);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSliceRead_Private(MPI_Comm comm, int fd, const char path[], long long fsize, HMSlice *sl)
{
  PetscMPIInt rank, size;
  size_t      got;
  char        prev = '\n';
  long long   nl   = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  sl->b0 = fsize / size * rank + (fsize % size) * rank / size;
  sl->b1 = fsize / size * (rank + 1) + (fsize % size) * (rank + 1) / size;
  PetscCall(PetscMalloc1((size_t)(sl->b1 - sl->b0) + 1, &sl->buf));
  PetscCall(HMPreadFull_Private(fd, path, sl->buf, (size_t)(sl->b1 - sl->b0), sl->b0, &got));
  PetscCheck((long long)got == sl->b1 - sl->b0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: file changed while reading", path);
  sl->len = sl->b1 - sl->b0;
  if (sl->b0 > 0) PetscCall(HMPreadFull_Private(fd, path, &prev, 1, sl->b0 - 1, &got));
  sl->first = 0;
  if (prev != '\n') {
    const char *q = memchr(sl->buf, '\n', (size_t)sl->len);

    sl->first = q ? (long long)(q - sl->buf) + 1 : sl->len;
  }
  for (long long k = 0; k < sl->len; k++) nl += sl->buf[k] == '\n';
  sl->nlbefore = 0;
  PetscCallMPI(MPI_Exscan(&nl, &sl->nlbefore, 1, MPI_LONG_LONG, MPI_SUM, comm));
  if (!rank) sl->nlbefore = 0;
  /* the last line that starts here runs on past b1: read on to its newline */
  if (sl->first < sl->len && sl->buf[sl->len - 1] != '\n' && sl->b1 < fsize) {
    long long cap = sl->len;

    for (;;) {
      char           *nb, *q;
      const long long step = PetscMax(cap, 65536);

      PetscCall(PetscMalloc1((size_t)(sl->len + step) + 1, &nb));
      PetscCall(PetscArraycpy(nb, sl->buf, (size_t)sl->len));
      PetscCall(PetscFree(sl->buf));
      sl->buf = nb;
      cap     = sl->len + step;
      PetscCall(HMPreadFull_Private(fd, path, sl->buf + sl->len, (size_t)step, sl->b0 + sl->len, &got));
      q = memchr(sl->buf + sl->len, '\n', got);
      sl->len += q ? (long long)(q - (sl->buf + sl->len)) + 1 : (long long)got;
      if (q || got < (size_t)step) break;
    }
  }
  sl->buf[sl->len] = '\0';
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSliceCheckNul_Private(MPI_Comm comm, const char path[], const HMSlice *sl)
{
  const char *nul  = memchr(sl->buf, '\0', (size_t)(sl->b1 - sl->b0));
  long long   line = LLONG_MAX, first;

  PetscFunctionBegin;
  if (nul) {
    line = 1 + sl->nlbefore;
    for (const char *c = sl->buf; c < nul; c++) line += *c == '\n';
  }
  PetscCallMPI(MPI_Allreduce(&line, &first, 1, MPI_LONG_LONG, MPI_MIN, comm));
  PetscCheck(first == LLONG_MAX, comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": NUL byte in a text file", path, (PetscInt64)first);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSliceRaiseFirstError_Private(MPI_Comm comm, long long errline, const HMErrorCapture *cap)
{
  long long   first;
  PetscMPIInt rank, size, who, owner;
  char        msg[1024];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(&errline, &first, 1, MPI_LONG_LONG, MPI_MIN, comm));
  if (first == LLONG_MAX) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  who = errline == first ? rank : size;
  PetscCallMPI(MPI_Allreduce(&who, &owner, 1, MPI_INT, MPI_MIN, comm));
  if (rank == owner) PetscCall(PetscStrncpy(msg, cap->msg, sizeof(msg)));
  PetscCallMPI(MPI_Bcast(msg, (PetscMPIInt)sizeof(msg), MPI_CHAR, owner, comm));
  SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "%s", msg);
}

PetscErrorCode HMSliceOpen_Private(MPI_Comm comm, const char path[], int *fd, long long *fsize)
{
  long long   info[2];
  PetscMPIInt rank;
  int         ok, allok;

  PetscFunctionBegin;
  *fd    = -1;
  *fsize = 0;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) PetscCall(ProbeFile(path, info));
  PetscCallMPI(MPI_Bcast(info, 2, MPI_LONG_LONG, 0, comm));
  if (!info[1]) PetscFunctionReturn(PETSC_SUCCESS);
  *fd = open(path, O_RDONLY);
  ok  = *fd >= 0;
  PetscCallMPI(MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, comm));
  if (!allok) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
    SETERRQ(comm, PETSC_ERR_FILE_OPEN, "%s: cannot open the file on every rank (parallel reading; -read_parallel false reads it on rank 0)", path);
  }
  *fsize = info[0];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSliceBcastBytes_Private(MPI_Comm comm, int fd, const char path[], long long off, long long len, char **buf)
{
  PetscMPIInt rank;
  size_t      got = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCheck(len >= 0 && len < INT_MAX, comm, PETSC_ERR_FILE_UNEXPECTED, "%s: %lld bytes at byte %lld are too many to share", path, len, off);
  PetscCall(PetscMalloc1((size_t)len + 1, buf));
  if (!rank) PetscCall(HMPreadFull_Private(fd, path, *buf, (size_t)len, off, &got));
  PetscCallMPI(MPI_Bcast(&got, sizeof(got), MPI_BYTE, 0, comm));
  PetscCheck((long long)got == len, comm, PETSC_ERR_FILE_READ, "%s: file changed while reading", path);
  PetscCallMPI(MPI_Bcast(*buf, (PetscMPIInt)len, MPI_CHAR, 0, comm));
  (*buf)[len] = '\0';
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSliceLoad_Private(HMReader rd, MPI_Comm comm, const char path[], HMSliceLoader load, HMSystem *out)
{
  long long      fsize;
  int            fd;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  *out = NULL;
  PetscCall(HMSliceOpen_Private(comm, path, &fd, &fsize));
  if (fd < 0) PetscFunctionReturn(PETSC_SUCCESS);
  ierr = (*load)(rd, comm, path, fd, fsize, out);
  close(fd);
  PetscCall(ierr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

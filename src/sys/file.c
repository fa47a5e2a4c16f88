/* Atomic file writes: a temporary next to the final path, flushed to disk, renamed into place when complete. */
#include <hipmace/sys.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct _n_HMAtomicFile {
  MPI_Comm    comm;
  PetscMPIInt rank;
  FILE       *fp; /* rank 0, when the stream form was asked for */
  char       *path, *tmp;
};

static PetscErrorCode AtomicFree(HMAtomicFile *h)
{
  PetscFunctionBegin;
  PetscCall(PetscFree((*h)->path));
  PetscCall(PetscFree((*h)->tmp));
  PetscCall(PetscFree(*h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileOpenAtomic(MPI_Comm comm, const char path[], FILE **fp, HMAtomicFile *out)
{
  HMAtomicFile h;
  size_t       len;
  int          err = 0;

  PetscFunctionBegin;
  PetscCheck(path && out, comm, PETSC_ERR_ARG_NULL, "HMFileOpenAtomic: path and handle must not be NULL");
  *out = NULL;
  if (fp) *fp = NULL;
  PetscCall(PetscNew(&h));
  h->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &h->rank));
  PetscCall(PetscStrallocpy(path, &h->path));
  len = strlen(path) + 32;
  PetscCall(PetscMalloc1(len, &h->tmp));
  /* rank 0's pid on every rank, so that all ranks name the same file */
  {
    long pid = (long)getpid();
    PetscCallMPI(MPI_Bcast(&pid, 1, MPI_LONG, 0, comm));
    PetscCall(PetscSNPrintf(h->tmp, len, "%s.tmp.%ld", path, pid));
  }
  if (fp && h->rank == 0) {
    errno = 0;
    h->fp = fopen(h->tmp, "w");
    if (!h->fp) err = errno ? errno : EIO;
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  if (err) {
    char tmp[PETSC_MAX_PATH_LEN];
    PetscCall(PetscStrncpy(tmp, h->tmp, sizeof(tmp)));
    PetscCall(AtomicFree(&h));
    SETERRQ(comm, PETSC_ERR_FILE_OPEN, "%s: cannot write: cannot create the temporary file %s (%s)", path, tmp, strerror(err));
  }
  if (fp) *fp = h->fp;
  *out = h;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileGetTempNameAtomic(HMAtomicFile h, const char *tmp[])
{
  PetscFunctionBegin;
  *tmp = h->tmp;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static const char *const steps[] = {"", "writing the temporary file failed", "closing the temporary file failed", "renaming the temporary file into place failed"};

/* rank 0: 0 or the errno of the first failing step (its index in steps); the temporary is gone unless renamed */
static int CommitLocal(HMAtomicFile h, int *step)
{
  int err = 0;

  errno = 0;
  if (h->fp) {
    /* to disk before the rename, so that a crash never leaves a truncated file under the final name */
    if (ferror(h->fp) || fflush(h->fp) != 0 || fsync(fileno(h->fp)) != 0) {
      err   = errno ? errno : EIO;
      *step = 1;
    }
    if (fclose(h->fp) != 0 && !err) {
      err   = errno ? errno : EIO;
      *step = 2;
    }
    h->fp = NULL;
  }
  if (!err && rename(h->tmp, h->path) != 0) {
    err   = errno ? errno : EIO;
    *step = 3;
  }
  if (err) (void)remove(h->tmp);
  return err;
}

PetscErrorCode HMFileCommitAtomic(HMAtomicFile *hp)
{
  HMAtomicFile h   = *hp;
  int          err = 0, which = 0;
  MPI_Comm     comm;
  char         path[PETSC_MAX_PATH_LEN];

  PetscFunctionBegin;
  PetscCheck(h, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMFileCommitAtomic: NULL handle");
  if (h->rank == 0) {
    err = CommitLocal(h, &which);
  }
  comm = h->comm;
  PetscCall(PetscStrncpy(path, h->path, sizeof(path)));
  PetscCall(AtomicFree(hp));
  {
    int msg[2] = {err, which};
    PetscCallMPI(MPI_Bcast(msg, 2, MPI_INT, 0, comm));
    err   = msg[0];
    which = msg[1];
  }
  PetscCheck(!err, comm, PETSC_ERR_FILE_WRITE, "%s: cannot write: %s (%s)", path, steps[which], strerror(err));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileAbortAtomic(HMAtomicFile *hp)
{
  HMAtomicFile h = *hp;

  PetscFunctionBegin;
  if (!h) PetscFunctionReturn(PETSC_SUCCESS);
  if (h->rank == 0) {
    if (h->fp) (void)fclose(h->fp);
    (void)remove(h->tmp);
  }
  PetscCall(AtomicFree(hp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileWriteAtomic(MPI_Comm comm, const char path[], const char text[])
{
  HMAtomicFile h;
  FILE        *fp;

  PetscFunctionBegin;
  PetscCall(HMFileOpenAtomic(comm, path, &fp, &h));
  if (fp) (void)fputs(text, fp); /* a failure sets the stream's error flag, which the commit reports */
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

struct _n_HMOrderedFile {
  MPI_Comm     comm;
  HMAtomicFile af;
  MPI_File     fh;
  long long    base; /* bytes of the segments written so far */
  char        *path;
  char        *buf; /* this rank's part of the current segment */
  size_t       len, cap;
  int          err; /* a write of this rank failed */
};

PetscErrorCode HMFileOrderedOpen(MPI_Comm comm, const char path[], HMOrderedFile *out)
{
  HMOrderedFile f;
  const char   *tmp;
  int           err;

  PetscFunctionBegin;
  PetscCall(PetscNew(&f));
  f->comm = comm;
  PetscCall(PetscStrallocpy(path, &f->path));
  PetscCall(HMFileOpenAtomic(comm, path, NULL, &f->af));
  PetscCall(HMFileGetTempNameAtomic(f->af, &tmp));
  err = MPI_File_open(comm, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &f->fh) != MPI_SUCCESS;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  if (err) {
    PetscCall(HMFileAbortAtomic(&f->af));
    PetscCall(PetscFree(f->path));
    PetscCall(PetscFree(f));
    SETERRQ(comm, PETSC_ERR_FILE_OPEN, "%s: cannot write: MPI-IO cannot create the temporary file", path);
  }
  *out = f;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* room for extra more bytes and a terminating NUL in this rank's part */
static PetscErrorCode OrderedReserve(HMOrderedFile f, size_t extra)
{
  char  *nb;
  size_t cap;

  PetscFunctionBegin;
  if (f->len + extra + 1 <= f->cap) PetscFunctionReturn(PETSC_SUCCESS);
  cap = PetscMax(2 * f->cap, f->len + extra + 4096);
  PetscCall(PetscMalloc1(cap, &nb));
  if (f->len) PetscCall(PetscArraycpy(nb, f->buf, f->len));
  PetscCall(PetscFree(f->buf));
  f->buf = nb;
  f->cap = cap;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileOrderedWrite(HMOrderedFile f, const char text[], size_t len)
{
  PetscFunctionBegin;
  PetscCall(OrderedReserve(f, len));
  if (len) PetscCall(PetscArraycpy(f->buf + f->len, text, len));
  f->len += len;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileOrderedPrintf(HMOrderedFile f, const char fmt[], ...)
{
  va_list ap;
  int     need;

  PetscFunctionBegin;
  va_start(ap, fmt);
  need = vsnprintf(NULL, 0, fmt, ap); /* measure, make room, then format in place */
  va_end(ap);
  PetscCheck(need >= 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "HMFileOrderedPrintf: formatting failed");
  PetscCall(OrderedReserve(f, (size_t)need));
  va_start(ap, fmt);
  (void)vsnprintf(f->buf + f->len, f->cap - f->len, fmt, ap);
  va_end(ap);
  f->len += (size_t)need;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileOrderedEndSegment(HMOrderedFile f)
{
  long long mylen = (long long)f->len, off = 0, tot = 0;
  int       rank;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(f->comm, &rank));
  PetscCallMPI(MPI_Exscan(&mylen, &off, 1, MPI_LONG_LONG, MPI_SUM, f->comm));
  if (!rank) off = 0; /* MPI_Exscan leaves rank 0's result undefined */
  PetscCallMPI(MPI_Allreduce(&mylen, &tot, 1, MPI_LONG_LONG, MPI_SUM, f->comm));
  off += f->base;
  for (size_t done = 0; done < f->len && !f->err;) { /* MPI counts are int: pieces of at most 1 GiB */
    const int  chunk = (int)PetscMin(f->len - done, (size_t)1 << 30);
    MPI_Status status;
    int        wrote = 0;

    f->err = MPI_File_write_at(f->fh, (MPI_Offset)(off + (long long)done), f->buf + done, chunk, MPI_CHAR, &status) != MPI_SUCCESS;
    if (!f->err) f->err = MPI_Get_count(&status, MPI_CHAR, &wrote) != MPI_SUCCESS || wrote != chunk;
    done += (size_t)chunk;
  }
  f->base += tot;
  f->len = 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileOrderedCommit(HMOrderedFile *fp)
{
  HMOrderedFile f = *fp;
  MPI_Comm      comm;
  int           err, pending;
  char          path[PETSC_MAX_PATH_LEN];

  PetscFunctionBegin;
  if (!f) PetscFunctionReturn(PETSC_SUCCESS);
  comm    = f->comm;
  pending = f->len > 0;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &pending, 1, MPI_INT, MPI_MAX, comm));
  if (pending) PetscCall(HMFileOrderedEndSegment(f)); /* the parts not yet ended form the last segment */
  err = f->err;
  if (MPI_File_close(&f->fh) != MPI_SUCCESS) err = 1;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  PetscCall(PetscStrncpy(path, f->path, sizeof(path)));
  if (err) PetscCall(HMFileAbortAtomic(&f->af));
  else PetscCall(HMFileCommitAtomic(&f->af));
  PetscCall(PetscFree(f->buf));
  PetscCall(PetscFree(f->path));
  PetscCall(PetscFree(*fp));
  PetscCheck(!err, comm, PETSC_ERR_FILE_WRITE, "%s: cannot write: MPI-IO on the temporary file failed", path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileWriteSegmentsAtomic(MPI_Comm comm, const char path[], PetscInt nseg, const char *const parts[], const size_t lens[])
{
  HMOrderedFile f;

  PetscFunctionBegin;
  PetscCall(HMFileOrderedOpen(comm, path, &f));
  for (PetscInt k = 0; k < nseg; k++) {
    PetscCall(HMFileOrderedWrite(f, parts[k], lens[k]));
    PetscCall(HMFileOrderedEndSegment(f));
  }
  PetscCall(HMFileOrderedCommit(&f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileWriteOrderedAtomic(MPI_Comm comm, const char path[], const char part[], size_t len)
{
  PetscFunctionBegin;
  PetscCall(HMFileWriteSegmentsAtomic(comm, path, 1, &part, &len));
  PetscFunctionReturn(PETSC_SUCCESS);
}

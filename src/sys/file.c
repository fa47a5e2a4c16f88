/* Atomic file writes: a temporary next to the final path, flushed to disk, renamed into place when complete. */
#include <hipmace/sys.h>
#include <errno.h>
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

PetscErrorCode HMFileWriteOrderedAtomic(MPI_Comm comm, const char path[], const char part[], size_t len)
{
  HMAtomicFile af;
  const char  *tmp;
  long long    off = 0, mylen = (long long)len;
  PetscMPIInt  rank;
  int          err;
  MPI_File     fh;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Exscan(&mylen, &off, 1, MPI_LONG_LONG, MPI_SUM, comm));
  if (!rank) off = 0; /* MPI_Exscan leaves rank 0's result undefined */
  PetscCall(HMFileOpenAtomic(comm, path, NULL, &af));
  PetscCall(HMFileGetTempNameAtomic(af, &tmp));
  err = MPI_File_open(comm, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh) != MPI_SUCCESS;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  if (!err) {
    for (size_t done = 0; done < len && !err;) { /* MPI counts are int: pieces of at most 1 GiB */
      const int  chunk = (int)PetscMin(len - done, (size_t)1 << 30);
      MPI_Status status;
      int        wrote = 0;

      err = MPI_File_write_at(fh, (MPI_Offset)(off + (long long)done), part + done, chunk, MPI_CHAR, &status) != MPI_SUCCESS;
      if (!err) err = MPI_Get_count(&status, MPI_CHAR, &wrote) != MPI_SUCCESS || wrote != chunk;
      done += (size_t)chunk;
    }
    if (MPI_File_close(&fh) != MPI_SUCCESS) err = 1;
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  if (err) {
    PetscCall(HMFileAbortAtomic(&af));
    SETERRQ(comm, PETSC_ERR_FILE_WRITE, "%s: cannot write: MPI-IO on the temporary file failed", path);
  }
  PetscCall(HMFileCommitAtomic(&af));
  PetscFunctionReturn(PETSC_SUCCESS);
}

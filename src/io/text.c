/* What every structure reader shares and the dispatcher (reader.c) does not own: reading a whole text file
   (plain or gzip) and the notes a reader leaves for the user. Kept apart from reader.c so that the format
   readers, which reader.c calls, do not call back into it (no circle between the files of src/io). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "textimpl.h"

PetscErrorCode HMReaderNote_Private(HMReader r, const char fmt[], ...)
{
  char    line[1024];
  size_t  old = r->notes ? strlen(r->notes) : 0, add;
  char   *n;
  va_list ap;

  PetscFunctionBegin;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  add = strlen(line);
  PetscCall(PetscMalloc1(old + add + 2, &n));
  if (old) PetscCall(PetscArraycpy(n, r->notes, old));
  PetscCall(PetscArraycpy(n + old, line, add));
  n[old + add]     = '\n';
  n[old + add + 1] = '\0';
  PetscCall(PetscFree(r->notes));
  r->notes = n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* gzip input (magic bytes 1f 8b) through zlib into a growing buffer. */
static PetscErrorCode ReadGzip(MPI_Comm comm, const char path[], char **buf, size_t *len)
{
  gzFile f   = gzopen(path, "rb");
  size_t cap = 1 << 16, n = 0;
  int    got;

  PetscFunctionBegin;
  PetscCheck(f, comm, PETSC_ERR_FILE_OPEN, "%s: cannot open: %s", path, strerror(errno));
  if (PetscMalloc1(cap + 1, buf)) {
    gzclose(f);
    SETERRQ(comm, PETSC_ERR_MEM, "%s: cannot allocate a buffer to decompress the file", path);
  }
  for (;;) {
    if (n == cap) {
      char *nb;

      if (cap > ((size_t)1 << 40) || PetscMalloc1(2 * cap + 1, &nb)) {
        gzclose(f);
        SETERRQ(comm, PETSC_ERR_MEM, "%s: cannot allocate %zu bytes to decompress the file", path, 2 * cap);
      }
      memcpy(nb, *buf, n);
      if (PetscFree(*buf)) {
        gzclose(f);
        SETERRQ(comm, PETSC_ERR_MEM, "%s: cannot free a buffer", path);
      }
      *buf = nb;
      cap *= 2;
    }
    got = gzread(f, *buf + n, (unsigned)PetscMin(cap - n, (size_t)1 << 30));
    if (got <= 0) break;
    n += (size_t)got;
  }
  if (got < 0) {
    int         zerr;
    const char *msg = gzerror(f, &zerr);
    char        copy[256];

    snprintf(copy, sizeof(copy), "%s", msg ? msg : "unknown error");
    gzclose(f);
    SETERRQ(comm, PETSC_ERR_FILE_READ, "%s: corrupt gzip data after %zu bytes (%s)", path, n, copy);
  }
  gzclose(f);
  (*buf)[n] = '\0';
  *len      = n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReadTextFile_Private(MPI_Comm comm, const char path[], char **buf, size_t *len)
{
  FILE         *f;
  struct stat   sb;
  size_t        got;
  int           err;
  unsigned char magic[2] = {0, 0};

  PetscFunctionBegin;
  *buf = NULL;
  *len = 0;
  f    = fopen(path, "rb");
  PetscCheck(f, comm, PETSC_ERR_FILE_OPEN, "%s: cannot open: %s", path, strerror(errno));
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    err = errno;
    fclose(f);
    SETERRQ(comm, PETSC_ERR_FILE_READ, "%s: not a regular file (%s)", path, strerror(err));
  }
  if (fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    fclose(f);
    PetscCall(ReadGzip(comm, path, buf, len));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  rewind(f);
  if (PetscMalloc1((size_t)sb.st_size + 1, buf)) {
    fclose(f);
    SETERRQ(comm, PETSC_ERR_MEM, "%s: cannot allocate %lld bytes to read the file", path, (long long)sb.st_size);
  }
  got = fread(*buf, 1, (size_t)sb.st_size, f);
  err = ferror(f) ? errno : 0;
  fclose(f);
  (*buf)[got] = '\0';
  *len        = got;
  PetscCheck(got == (size_t)sb.st_size, comm, PETSC_ERR_FILE_READ, "%s: read %zu of %lld bytes (%s)", path, got, (long long)sb.st_size, err ? strerror(err) : "file changed while reading");
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMTextReaderOpen_Private(MPI_Comm comm, const char path[], HMTextReader *t)
{
  size_t len;

  PetscFunctionBegin;
  t->comm = comm;
  t->path = path;
  PetscCall(HMReadTextFile_Private(comm, path, &t->buf, &len));
  t->p   = t->buf;
  t->end = t->buf + len;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMTextLoad_Private(const HMTextFormat *fmt, HMReader opt, MPI_Comm comm, const char path[], HMSystem *out)
{
  HMTextReader  *t;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(path && out, comm, PETSC_ERR_ARG_NULL, "HMSystemLoad: path and output must not be NULL");
  *out = NULL;
  PetscCall(PetscCalloc(fmt->size, &t));
  t->opt = opt;
  ierr   = HMTextReaderOpen_Private(comm, path, t);
  if (!ierr) ierr = (*fmt->parse)(t, out);
  PetscCall((*fmt->reset)(t));
  PetscCall(PetscFree(t->buf));
  PetscCall(PetscFree(t));
  if (PetscUnlikely(ierr)) {
    PetscCall(HMSystemDestroy(out));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

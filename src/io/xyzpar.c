/* Parallel reading of a one-frame (extended) XYZ file: every rank reads a byte range (HMReaderLoadDistributed). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "xyzimpl.h"

/* ---------------------------------------------------------------- parallel reading */
/* Messages of errors met while a rank parses its own lines are kept, not printed: the first one in the
   file is raised afterwards on every rank, with the same text as the serial reader's. */
typedef struct {
  char      msg[1024];
  PetscBool set;
} ErrorCapture;

static PetscErrorCode CaptureError(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  ErrorCapture *c = (ErrorCapture *)ctx;

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

/* len bytes at off, fewer only at the end of the file */
static PetscErrorCode PreadFull(int fd, const char path[], char *buf, size_t len, long long off, size_t *got)
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

/* Rank 0: the count and comment lines (up to the second newline), broadcast to every rank. */
static PetscErrorCode ReadHeader(MPI_Comm comm, int fd, const char path[], long long fsize, char **hdr, long long *hlen)
{
  PetscMPIInt rank;
  long long   len = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  *hdr = NULL;
  if (!rank) {
    size_t cap = 0;
    int    nl  = 0;

    while (nl < 2 && len < fsize) {
      size_t got;

      if ((size_t)len == cap) {
        char *nb;

        cap = cap ? 2 * cap : 4096;
        PetscCall(PetscMalloc1(cap + 1, &nb));
        if (len) PetscCall(PetscArraycpy(nb, *hdr, (size_t)len));
        PetscCall(PetscFree(*hdr));
        *hdr = nb;
      }
      PetscCall(PreadFull(fd, path, *hdr + len, cap - (size_t)len, len, &got));
      if (!got) break;
      for (size_t k = 0; k < got && nl < 2; k++)
        if ((*hdr)[len + (long long)k] == '\n' && ++nl == 2) got = k + 1;
      len += (long long)got;
    }
  }
  PetscCallMPI(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm));
  if (rank) PetscCall(PetscMalloc1((size_t)len + 1, hdr));
  else if (!*hdr) PetscCall(PetscMalloc1(1, hdr));
  PetscCallMPI(MPI_Bcast(*hdr, (PetscMPIInt)len, MPI_CHAR, 0, comm));
  (*hdr)[len] = '\0';
  *hlen       = len;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* This rank's share of the file: the lines that start in bytes [b0, b1) (the last one read to its end).
   buf holds bytes from b0; *first is the offset in buf of the first line start (len if none). */
typedef struct {
  char     *buf;
  long long b0, b1, len, first, nlbefore; /* nlbefore: newlines before b0 */
} Slice;

static PetscErrorCode ReadSlice(MPI_Comm comm, int fd, const char path[], long long fsize, Slice *sl)
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
  PetscCall(PreadFull(fd, path, sl->buf, (size_t)(sl->b1 - sl->b0), sl->b0, &got));
  PetscCheck((long long)got == sl->b1 - sl->b0, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s: file changed while reading", path);
  sl->len = sl->b1 - sl->b0;
  if (sl->b0 > 0) PetscCall(PreadFull(fd, path, &prev, 1, sl->b0 - 1, &got));
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
      PetscCall(PreadFull(fd, path, sl->buf + sl->len, (size_t)step, sl->b0 + sl->len, &got));
      q = memchr(sl->buf + sl->len, '\n', got);
      sl->len += q ? (long long)(q - (sl->buf + sl->len)) + 1 : (long long)got;
      if (q || got < (size_t)step) break;
    }
  }
  sl->buf[sl->len] = '\0';
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The serial reader's first check: a NUL byte anywhere, reported with its line. */
static PetscErrorCode CheckNul(MPI_Comm comm, const char path[], const Slice *sl)
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

/* Next line of the slice from *pos, cut in place (newline and a DOS carriage return removed). */
static char *SliceLine(Slice *sl, long long *pos)
{
  char  *s = sl->buf + *pos, *nl = memchr(s, '\n', (size_t)(sl->len - *pos));
  size_t len;

  if (nl) {
    *nl  = '\0';
    *pos = (long long)(nl - sl->buf) + 1;
  } else *pos = sl->len;
  len = strlen(s);
  if (len && s[len - 1] == '\r') s[len - 1] = '\0';
  return s;
}

/* Atom lines of this rank's slice: body line k (after the header) is atom k; lines past the last atom only
   say whether the file goes on (another frame: the serial reader's job). The first error is captured. */
static PetscErrorCode ParseSlice(XYZReader *r, const XYZLayout *L, Slice *sl, long long hlen, long long k0, long long n, HMSystem sys, PetscBool *trailing, long long *errline, ErrorCapture *cap)
{
  long long pos = sl->first, k = k0;

  PetscFunctionBegin;
  *trailing = PETSC_FALSE;
  *errline  = LLONG_MAX;
  PetscCall(PetscPushErrorHandler(CaptureError, cap));
  while (pos < sl->len && sl->b0 + pos < sl->b1) {
    const long long start = sl->b0 + pos;
    char           *s     = SliceLine(sl, &pos);

    if (start < hlen) continue;
    if (k >= n) {
      *trailing = (PetscBool)(*trailing || *HMTextTrim(s));
    } else if (*errline == LLONG_MAX) {
      const PetscInt i = (PetscInt)(k - sys->rstart);

      r->t.line = k + 3;
      if (HMXYZParseAtom_Private(r, L, s, (PetscInt)k, n, &sys->Z[i], &sys->pos[3 * i], &sys->mass[i])) *errline = r->t.line;
    }
    k++;
  }
  PetscCall(PetscPopErrorHandler());
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Body lines (after the header) that start in this rank's slice. */
static long long CountBodyLines(const Slice *sl, long long hlen)
{
  long long cnt = 0;

  for (long long p = sl->first; p < sl->b1 - sl->b0 && p < sl->len; p++)
    if (p == sl->first || sl->buf[p - 1] == '\n') cnt += sl->b0 + p >= hlen;
  return cnt;
}

/* The rank holding the first error in the file sends its message; every rank raises it. */
static PetscErrorCode RaiseFirstError(MPI_Comm comm, long long errline, const ErrorCapture *cap)
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

static PetscErrorCode LoadXYZDistributed(HMReader rd, MPI_Comm comm, const char path[], int fd, long long fsize, HMSystem *out)
{
  XYZReader      hr, lr;
  XYZLayout      L;
  Slice          sl;
  long long      hlen = 0, n, cnt, k0 = 0, total, errline;
  PetscErrorCode ierr;
  PetscMPIInt    rank;
  PetscBool      trailing;
  ErrorCapture   cap;
  HMSystem       sys;

  PetscFunctionBegin;
  (void)rd;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscMemzero(&sl, sizeof(sl)));
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  PetscCall(ReadSlice(comm, fd, path, fsize, &sl));
  PetscCall(CheckNul(comm, path, &sl));
  /* the header, parsed on every rank from the same bytes: the same errors everywhere */
  PetscCall(PetscMemzero(&hr, sizeof(hr)));
  hr.t.comm = comm;
  hr.t.path = path;
  PetscCall(ReadHeader(comm, fd, path, fsize, &hr.t.buf, &hlen));
  hr.t.p   = hr.t.buf;
  hr.t.end = hr.t.buf + hlen;
  PetscCall(HMXYZParseHeader_Private(&hr, &n, &L));
  cnt = CountBodyLines(&sl, hlen);
  PetscCallMPI(MPI_Exscan(&cnt, &k0, 1, MPI_LONG_LONG, MPI_SUM, comm));
  if (!rank) k0 = 0;
  PetscCallMPI(MPI_Allreduce(&cnt, &total, 1, MPI_LONG_LONG, MPI_SUM, comm));
  PetscCheck(total >= n, comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": file ends after %" PetscInt64_FMT " atom lines but line 1 announces %lld atoms", path, (PetscInt64)(hr.t.line + total), (PetscInt64)total, n);

  PetscCall(PetscNew(&sys));
  sys->comm        = comm;
  sys->distributed = PETSC_TRUE;
  sys->N           = (PetscInt)n;
  sys->rstart      = (PetscInt)PetscMin(k0, n);
  sys->n           = (PetscInt)(PetscMin(k0 + cnt, n) - sys->rstart);
  PetscCall(PetscStrallocpy(path, &sys->source));
  PetscCall(PetscMalloc3(sys->n, &sys->Z, 3 * sys->n, &sys->pos, sys->n, &sys->mass));
  HMXYZSetCell_Private(sys, &L);
  lr        = hr;
  lr.t.comm = PETSC_COMM_SELF;
  PetscCall(ParseSlice(&lr, &L, &sl, hlen, k0, n, sys, &trailing, &errline, &cap));
  PetscCall(PetscFree(hr.tok));
  PetscCall(PetscFree(hr.t.buf));
  PetscCall(PetscFree(sl.buf));
  /* the first frame is read whatever follows it, so its first error is the serial reader's */
  ierr = RaiseFirstError(comm, errline, &cap);
  if (ierr) {
    PetscCall(HMSystemDestroy(&sys));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  /* more after the first frame (another frame, perhaps): the serial reader decides */
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &trailing, 1, MPIU_BOOL, MPI_LOR, comm));
  if (trailing) PetscCall(HMSystemDestroy(&sys));
  *out = sys;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemLoadXYZDistributed_Private(HMReader rd, MPI_Comm comm, const char path[], HMSystem *out)
{
  long long      info[2];
  PetscMPIInt    rank;
  int            fd, ok, allok;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  *out = NULL;
  if (rd && rd->frameset && rd->frame != 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (!rank) PetscCall(ProbeFile(path, info));
  PetscCallMPI(MPI_Bcast(info, 2, MPI_LONG_LONG, 0, comm));
  if (!info[1]) PetscFunctionReturn(PETSC_SUCCESS);
  fd = open(path, O_RDONLY);
  ok = fd >= 0;
  PetscCallMPI(MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, comm));
  if (!allok) {
    if (fd >= 0) close(fd);
    SETERRQ(comm, PETSC_ERR_FILE_OPEN, "%s: cannot open the file on every rank (parallel reading; -read_parallel false reads it on rank 0)", path);
  }
  ierr = LoadXYZDistributed(rd, comm, path, fd, info[0], out);
  close(fd);
  PetscCall(ierr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

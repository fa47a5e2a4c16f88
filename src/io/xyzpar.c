/* Parallel reading of a one-frame (extended) XYZ file: every rank reads a byte range (HMReaderLoadDistributed). */
#include <limits.h>

#include "xyzimpl.h"
#include "sliceimpl.h"

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
      PetscCall(HMPreadFull_Private(fd, path, *hdr + len, cap - (size_t)len, len, &got));
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

/* Atom lines of this rank's slice: body line k (after the header) is atom k; lines past the last atom only
   say whether the file goes on (another frame: the serial reader's job). The first error is captured. */
static PetscErrorCode ParseSlice(XYZReader *r, const XYZLayout *L, HMSlice *sl, long long hlen, long long k0, long long n, HMSystem sys, PetscBool *trailing, long long *errline, HMErrorCapture *cap)
{
  long long pos = sl->first, k = k0;

  PetscFunctionBegin;
  *trailing = PETSC_FALSE;
  *errline  = LLONG_MAX;
  PetscCall(PetscPushErrorHandler(HMErrorCapture_Private, cap));
  while (pos < sl->len && sl->b0 + pos < sl->b1) {
    const long long start = sl->b0 + pos;
    char           *s     = HMSliceLine(sl, &pos);

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
static long long CountBodyLines(const HMSlice *sl, long long hlen)
{
  long long cnt = 0;

  for (long long p = sl->first; p < sl->b1 - sl->b0 && p < sl->len; p++)
    if (p == sl->first || sl->buf[p - 1] == '\n') cnt += sl->b0 + p >= hlen;
  return cnt;
}

static PetscErrorCode LoadXYZDistributed(HMReader rd, MPI_Comm comm, const char path[], int fd, long long fsize, HMSystem *out)
{
  XYZReader      hr, lr;
  XYZLayout      L;
  HMSlice        sl;
  long long      hlen = 0, n, cnt, k0 = 0, total, errline;
  PetscErrorCode ierr;
  PetscMPIInt    rank;
  PetscBool      trailing;
  HMErrorCapture cap;
  HMSystem       sys;

  PetscFunctionBegin;
  (void)rd;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscMemzero(&sl, sizeof(sl)));
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  PetscCall(HMSliceRead_Private(comm, fd, path, fsize, &sl));
  PetscCall(HMSliceCheckNul_Private(comm, path, &sl));
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
  ierr = HMSliceRaiseFirstError_Private(comm, errline, &cap);
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
  PetscFunctionBegin;
  *out = NULL;
  if (rd && rd->frameset && rd->frame != 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMSliceLoad_Private(rd, comm, path, LoadXYZDistributed, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

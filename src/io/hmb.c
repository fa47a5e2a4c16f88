/* The hmb structure format: a fixed 128-byte header, then atomic numbers, positions and (optionally) masses as
   little-endian binary arrays, so that every rank reads its block of atoms at a computed offset (MPI-IO) with
   no parsing. The layout is documented in docs/FORMATS.md ("hmb"). */
#include <math.h>
#include <stdint.h>
#include <hipmace/sys.h>
#include "ioimpl.h"

#define HMB_HEADER  128
#define HMB_VERSION 1u
#define HMB_NONE    INT64_MAX /* no bad atom */
enum {
  HMB_HASCELL = 1u,
  HMB_PBCX    = 2u,
  HMB_PBCY    = 4u,
  HMB_PBCZ    = 8u,
  HMB_MASSES  = 16u,
  HMB_FLAGS   = 31u
};
static const unsigned char hmb_magic[8] = {0x89, 'H', 'M', 'B', '\r', '\n', 0x1a, '\n'};

PetscBool HMHMBHasMagic_Private(const char *head, size_t len)
{
  return (PetscBool)(len >= 8 && !memcmp(head, hmb_magic, 8));
}

static PetscBool LittleEndian(void)
{
  const uint32_t one = 1;
  unsigned char  b;

  memcpy(&b, &one, 1);
  return (PetscBool)(b == 1);
}

/* Byte offsets of the three arrays of an N-atom file; positions start on an 8-byte boundary. */
static void Offsets(PetscInt64 N, MPI_Offset *oZ, MPI_Offset *oP, MPI_Offset *oM, MPI_Offset *end, PetscBool masses)
{
  *oZ  = HMB_HEADER;
  *oP  = (MPI_Offset)((HMB_HEADER + 4 * N + 7) / 8 * 8);
  *oM  = *oP + (MPI_Offset)(24 * N);
  *end = *oM + (masses ? (MPI_Offset)(8 * N) : 0);
}

/* count bytes at offset off, in pieces of at most 1 GiB (MPI counts are int); independent I/O. */
static int WriteAt(MPI_File fh, MPI_Offset off, const void *buf, size_t count)
{
  for (size_t done = 0; done < count;) {
    const int  chunk = (int)PetscMin(count - done, (size_t)1 << 30);
    MPI_Status st;
    int        got = 0;

    if (MPI_File_write_at(fh, off + (MPI_Offset)done, (const char *)buf + done, chunk, MPI_BYTE, &st) != MPI_SUCCESS) return 1;
    if (MPI_Get_count(&st, MPI_BYTE, &got) != MPI_SUCCESS || got != chunk) return 1;
    done += (size_t)chunk;
  }
  return 0;
}

static int ReadAt(MPI_File fh, MPI_Offset off, void *buf, size_t count)
{
  for (size_t done = 0; done < count;) {
    const int  chunk = (int)PetscMin(count - done, (size_t)1 << 30);
    MPI_Status st;
    int        got = 0;

    if (MPI_File_read_at(fh, off + (MPI_Offset)done, (char *)buf + done, chunk, MPI_BYTE, &st) != MPI_SUCCESS) return 1;
    if (MPI_Get_count(&st, MPI_BYTE, &got) != MPI_SUCCESS || got != chunk) return 1;
    done += (size_t)chunk;
  }
  return 0;
}

PetscErrorCode HMSystemWriteHMB(HMSystem sys, const char path[])
{
  MPI_Comm      comm;
  PetscMPIInt   rank;
  PetscInt64    N, r0, n = 0;
  MPI_Offset    oZ, oP, oM, end;
  HMAtomicFile  af;
  const char   *tmp;
  int           err = 0;
  MPI_File      fh;
  unsigned char hdr[HMB_HEADER];
  uint32_t      ver = HMB_VERSION, flags = 0;

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWriteHMB: NULL argument");
  PetscCheck(LittleEndian(), sys->comm, PETSC_ERR_SUP, "%s: hmb files are little-endian; this machine is not", path);
  comm = sys->comm;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  /* a distributed system: each rank its block at its input offset; a whole one: rank 0 writes it */
  N  = sys->distributed ? sys->N : sys->n;
  r0 = sys->distributed ? sys->rstart : 0;
  if (sys->distributed || !rank) n = sys->n;
  if (sys->hascell) flags |= HMB_HASCELL | (sys->pbc[0] ? HMB_PBCX : 0u) | (sys->pbc[1] ? HMB_PBCY : 0u) | (sys->pbc[2] ? HMB_PBCZ : 0u);
  {
    int given = sys->massgiven;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &given, 1, MPI_INT, MPI_LOR, comm));
    if (given) flags |= HMB_MASSES;
  }
  Offsets(N, &oZ, &oP, &oM, &end, (PetscBool)((flags & HMB_MASSES) != 0));
  PetscCall(PetscMemzero(hdr, sizeof(hdr)));
  memcpy(hdr, hmb_magic, 8);
  memcpy(hdr + 8, &ver, 4);
  memcpy(hdr + 12, &flags, 4);
  memcpy(hdr + 16, &N, 8);
  if (sys->hascell) memcpy(hdr + 24, sys->cell, 72);

  PetscCall(HMFileOpenAtomic(comm, path, NULL, &af));
  PetscCall(HMFileGetTempNameAtomic(af, &tmp));
  err = MPI_File_open(comm, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh) != MPI_SUCCESS;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  if (!err) {
    int32_t *Z;

    PetscCall(PetscMalloc1(n + 1, &Z));
    for (PetscInt64 i = 0; i < n; i++) Z[i] = (int32_t)sys->Z[i];
    if (!rank) err = WriteAt(fh, 0, hdr, sizeof(hdr));
    if (!err) err = WriteAt(fh, oZ + 4 * r0, Z, 4 * (size_t)n);
    if (!err) err = WriteAt(fh, oP + 24 * r0, sys->pos, 24 * (size_t)n);
    if (!err && (flags & HMB_MASSES)) err = WriteAt(fh, oM + 8 * r0, sys->mass, 8 * (size_t)n);
    PetscCall(PetscFree(Z));
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

/* Collective on comm. distributed: rank r gets atoms [N r / P, N (r + 1) / P) as a distributed system; else every
   rank gets all N. The same one-line error on every rank for a file that is not a valid hmb file. */
PetscErrorCode HMSystemLoadHMB_Private(HMReader r, MPI_Comm comm, const char path[], PetscBool distributed, HMSystem *out)
{
  PetscMPIInt   size, rank;
  MPI_File      fh;
  MPI_Offset    fsize = 0, oZ, oP, oM, end;
  unsigned char hdr[HMB_HEADER];
  uint32_t      ver, flags;
  PetscInt64    N, r0, n, bad = HMB_NONE;
  int           err;
  HMSystem      sys;
  int32_t      *Z;

  PetscFunctionBegin;
  (void)r;
  *out = NULL;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCheck(LittleEndian(), comm, PETSC_ERR_SUP, "%s: hmb files are little-endian; this machine is not", path);
  err = MPI_File_open(comm, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh) != MPI_SUCCESS;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_INT, MPI_MAX, comm));
  PetscCheck(!err, comm, PETSC_ERR_FILE_OPEN, "%s: cannot open the file", path);
  /* the header on rank 0, broadcast: every rank judges the same bytes */
  if (!rank) {
    err = MPI_File_get_size(fh, &fsize) != MPI_SUCCESS;
    if (!err && fsize >= HMB_HEADER) err = ReadAt(fh, 0, hdr, sizeof(hdr));
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(&fsize, 1, MPI_OFFSET, 0, comm));
  if (!err && fsize >= HMB_HEADER) PetscCallMPI(MPI_Bcast(hdr, sizeof(hdr), MPI_BYTE, 0, comm));
  if (err || fsize < HMB_HEADER || memcmp(hdr, hmb_magic, 8)) {
    MPI_File_close(&fh);
    PetscCheck(!err, comm, PETSC_ERR_FILE_READ, "%s: cannot read the file", path);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "%s: not an hmb file (%s)", path, fsize < HMB_HEADER ? "shorter than its 128-byte header" : "wrong magic bytes");
  }
  memcpy(&ver, hdr + 8, 4);
  memcpy(&flags, hdr + 12, 4);
  memcpy(&N, hdr + 16, 8);
  if (ver != HMB_VERSION || (flags & ~(uint32_t)HMB_FLAGS) || N < 1 || N > PETSC_MAX_INT / 3) {
    MPI_File_close(&fh);
    PetscCheck(ver == HMB_VERSION, comm, PETSC_ERR_FILE_UNEXPECTED, "%s: hmb version %u; this program reads version %u", path, ver, HMB_VERSION);
    PetscCheck(!(flags & ~(uint32_t)HMB_FLAGS), comm, PETSC_ERR_FILE_UNEXPECTED, "%s: hmb flags 0x%x name unknown fields", path, flags);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "%s: atom count %lld in the header must be in 1 .. %lld", path, (long long)N, (long long)(PETSC_MAX_INT / 3));
  }
  Offsets(N, &oZ, &oP, &oM, &end, (PetscBool)((flags & HMB_MASSES) != 0));
  if (fsize != end) {
    MPI_File_close(&fh);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "%s: %lld bytes, but a header for %lld atoms%s needs %lld (truncated or not an hmb file)", path, (long long)fsize, (long long)N, (flags & HMB_MASSES) ? " with masses" : "", (long long)end);
  }
  r0 = distributed ? N * rank / size : 0;
  n  = distributed ? N * (rank + 1) / size - r0 : N;

  PetscCall(PetscNew(&sys));
  sys->comm        = comm;
  sys->distributed = distributed;
  sys->N           = (PetscInt)N;
  sys->rstart      = (PetscInt)r0;
  sys->n           = (PetscInt)n;
  sys->massgiven   = (PetscBool)((flags & HMB_MASSES) != 0);
  sys->hascell     = (PetscBool)((flags & HMB_HASCELL) != 0);
  sys->pbc[0]      = (PetscBool)((flags & HMB_PBCX) != 0);
  sys->pbc[1]      = (PetscBool)((flags & HMB_PBCY) != 0);
  sys->pbc[2]      = (PetscBool)((flags & HMB_PBCZ) != 0);
  if (sys->hascell) memcpy(sys->cell, hdr + 24, 72);
  PetscCall(PetscStrallocpy(path, &sys->source));
  PetscCall(PetscMalloc3(n + 1, &sys->Z, 3 * n + 1, &sys->pos, n + 1, &sys->mass));
  PetscCall(PetscMalloc1(n + 1, &Z));
  err = ReadAt(fh, oZ + 4 * r0, Z, 4 * (size_t)n);
  if (!err) err = ReadAt(fh, oP + 24 * r0, sys->pos, 24 * (size_t)n);
  if (!err && sys->massgiven) err = ReadAt(fh, oM + 8 * r0, sys->mass, 8 * (size_t)n);
  if (MPI_File_close(&fh) != MPI_SUCCESS) err = 1;
  /* the first bad atom in input order, whichever rank holds it, as 4 (index) + what is wrong with it */
  for (PetscInt64 i = 0; i < n && !err && bad == HMB_NONE; i++) {
    const PetscBool zok = (PetscBool)(Z[i] >= 1 && Z[i] <= 118 && HMElementSymbol((int)Z[i]));
    PetscBool       pok = PETSC_TRUE;

    sys->Z[i] = zok ? (int)Z[i] : 0;
    for (int a = 0; a < 3; a++) pok = (PetscBool)(pok && isfinite(sys->pos[3 * i + a]));
    if (!sys->massgiven && zok) sys->mass[i] = HMElementMass((int)Z[i]);
    if (!zok) bad = 4 * (r0 + i);
    else if (!pok) bad = 4 * (r0 + i) + 1;
    else if (sys->massgiven && !(isfinite(sys->mass[i]) && sys->mass[i] > 0)) bad = 4 * (r0 + i) + 2;
  }
  PetscCall(PetscFree(Z));
  {
    PetscInt64 v[2] = {err, bad == HMB_NONE ? -HMB_NONE : -bad};
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPIU_INT64, MPI_MAX, comm));
    err = (int)v[0];
    bad = -v[1];
  }
  if (err || bad != HMB_NONE) {
    static const char *what[] = {"atomic number outside the periodic table", "non-finite position", "mass that is not a positive number"};

    PetscCall(HMSystemDestroy(&sys));
    PetscCheck(!err, comm, PETSC_ERR_FILE_READ, "%s: cannot read the atom arrays", path);
    SETERRQ(comm, PETSC_ERR_FILE_UNEXPECTED, "%s: atom %lld: %s", path, (long long)(bad / 4) + 1, what[bad % 4]);
  }
  if (sys->hascell) {
    char           where[PETSC_MAX_PATH_LEN + 16];
    PetscErrorCode ierr;

    PetscCall(PetscSNPrintf(where, sizeof(where), "%s (header)", path));
    ierr = HMSystemCheckCell_Private(comm, where, sys->cell, sys->pbc);
    if (ierr) {
      PetscCall(HMSystemDestroy(&sys));
      return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
    }
  }
  *out = sys;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Forces for output: gathered on rank 0 in input atom order (HMForcesGather, for the summary), or written as
   extended XYZ by all ranks, each its block of input order (HMForcesWriteXYZ). */
#include <stdarg.h>
#include <stdio.h>
#include <hipmace/summary.h>
#include <hipmace/app.h>
#include <hipmace/io.h>
#include "appimpl.h"
#include "sys/sysimpl.h"

/* Collective. On rank 0: N, atomic numbers, positions [N][3] and forces [N][3] in input atom order
   (PetscFree3(Z, pos, f) by the caller); NULL elsewhere. O(N) memory on rank 0 only, as any output of
   per-atom results. */
PetscErrorCode HMForcesGather(HMEval ev, PetscInt *N, int **Z, double **pos, double **f)
{
  HMDecomp     dd;
  MPI_Comm     comm;
  PetscMPIInt  size, rank, nr;
  PetscInt     lo, nb;
  double      *blk, *all = NULL;
  PetscMPIInt *cnt = NULL, *disp = NULL;

  PetscFunctionBegin;
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetComm(dd, &comm));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  /* the blocks of input order are contiguous in rank order: rank 0 concatenates them */
  PetscCall(HMForcesToBlocks_Private(ev, N, &lo, &nb, &blk));
  PetscCall(PetscMPIIntCast(8 * nb, &nr));
  if (rank == 0) PetscCall(PetscMalloc3(size, &cnt, size + 1, &disp, 8 * *N + 1, &all));
  PetscCallMPI(MPI_Gather(&nr, 1, MPI_INT, cnt, 1, MPI_INT, 0, comm));
  if (rank == 0) {
    disp[0] = 0;
    for (PetscMPIInt q = 0; q < size; q++) disp[q + 1] = disp[q] + cnt[q];
  }
  PetscCallMPI(MPI_Gatherv(blk, nr, MPI_DOUBLE, all, cnt, disp, MPI_DOUBLE, 0, comm));
  PetscCall(PetscFree(blk));
  *Z   = NULL;
  *pos = *f = NULL;
  if (rank == 0) {
    PetscCall(PetscMalloc3(*N + 1, Z, 3 * *N + 1, pos, 3 * *N + 1, f));
    for (PetscInt i = 0; i < *N; i++) {
      (*Z)[i] = (int)all[8 * i + 1];
      for (int a = 0; a < 3; a++) {
        (*pos)[3 * i + a] = all[8 * i + 2 + a];
        (*f)[3 * i + a]   = all[8 * i + 5 + a];
      }
    }
    PetscCall(PetscFree3(cnt, disp, all));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Block of input indices [lo(r), lo(r + 1)) that rank r writes: lo(r) = floor(N r / P). */
static inline PetscInt BlockStart(PetscInt N, PetscMPIInt P, PetscMPIInt r)
{
  return (PetscInt)(((PetscInt64)N * r) / P);
}

static inline PetscMPIInt BlockOwner(PetscInt N, PetscMPIInt P, PetscInt g)
{
  PetscMPIInt r = N ? (PetscMPIInt)(((PetscInt64)g * P) / N) : 0;

  while (r + 1 < P && BlockStart(N, P, r + 1) <= g) r++;
  while (r > 0 && BlockStart(N, P, r) > g) r--;
  return r;
}

PetscErrorCode HMForcesToBlocks_Private(HMEval ev, PetscInt *N, PetscInt *lo_out, PetscInt *nb, double **blk)
{
  HMDecomp        dd;
  MPI_Comm        comm;
  PetscMPIInt     size, rank;
  PetscInt        n, lo, *cnt, *fill;
  const PetscInt *gid;
  const int      *Zl;
  const double   *pl, *fl;
  double         *sbuf, *rbuf;
  HMExchange      x;

  PetscFunctionBegin;
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetComm(dd, &comm));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(HMDecompGetSizes(dd, N, &n, NULL, NULL));
  PetscCall(HMDecompGetLocalAtoms(dd, &gid, NULL, &Zl, &pl, NULL));
  PetscCall(HMEvalGetForces(ev, &fl));
  /* records of 8 doubles (input index, Z, position, force) to the owners of the blocks of input order */
  PetscCall(PetscCalloc2(size, &cnt, size, &fill));
  for (PetscInt i = 0; i < n; i++) cnt[BlockOwner(*N, size, gid[i])]++;
  PetscCall(HMExchangeCreate(comm, cnt, &x));
  PetscCall(PetscMalloc2(8 * n + 1, &sbuf, 8 * x.nrecv + 1, &rbuf));
  for (PetscInt i = 0; i < n; i++) {
    const PetscMPIInt q = BlockOwner(*N, size, gid[i]);
    double           *r = sbuf + 8 * (x.sdisp[q] + fill[q]++);

    r[0] = (double)gid[i];
    r[1] = (double)Zl[i];
    for (int a = 0; a < 3; a++) {
      r[2 + a] = pl[3 * i + a];
      r[5 + a] = fl[3 * i + a];
    }
  }
  PetscCall(HMExchangeForward(&x, MPI_DOUBLE, 8, sbuf, rbuf));
  lo  = BlockStart(*N, size, rank);
  *nb = BlockStart(*N, size, rank + 1) - lo;
  PetscCheck(x.nrecv == *nb, PETSC_COMM_SELF, PETSC_ERR_PLIB, "forces output: %" PetscInt_FMT " atoms for a block of %" PetscInt_FMT " atoms", x.nrecv, *nb);
  PetscCall(PetscMalloc1(8 * *nb + 1, blk));
  for (PetscInt k = 0; k < *nb; k++) PetscCall(PetscArraycpy(*blk + 8 * ((PetscInt)rbuf[8 * k] - lo), rbuf + 8 * k, 8));
  PetscCall(PetscFree2(sbuf, rbuf));
  PetscCall(PetscFree2(cnt, fill));
  PetscCall(HMExchangeDestroy(&x));
  *lo_out = lo;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMBufferAppendf_Private(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
  va_list ap;
  int     k;

  PetscFunctionBegin;
  for (;;) {
    va_start(ap, fmt);
    k = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    PetscCheck(k >= 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "output: formatting failed");
    if ((size_t)k < *cap - *len) break;
    {
      char *nb;
      PetscCall(PetscMalloc1(2 * *cap + (size_t)k + 1, &nb));
      PetscCall(PetscArraycpy(nb, *buf, *len));
      PetscCall(PetscFree(*buf));
      *buf = nb;
      *cap = 2 * *cap + (size_t)k + 1;
    }
  }
  *len += (size_t)k;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMForcesWriteXYZ(HMEval ev, const char path[])
{
  HMDecomp    dd;
  MPI_Comm    comm;
  PetscMPIInt rank;
  PetscInt    N = 0, lo, nb = 0;
  double     *blk, E, cell[9], st[9];
  PetscBool   hascell, pbc[3], has;
  char       *buf;
  size_t      len = 0, cap = 4096;

  PetscFunctionBegin;
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetComm(dd, &comm));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(HMEvalGetEnergy(ev, &E, NULL));
  PetscCall(HMEvalGetStress(ev, &has, st));
  PetscCall(HMDecompGetCell(dd, &hascell, cell, pbc));
  /* every rank formats a contiguous block of atoms in input order and writes it at its offset (a prefix sum
     of the formatted lengths): no rank holds all atoms */
  PetscCall(HMForcesToBlocks_Private(ev, &N, &lo, &nb, &blk));
  PetscCall(PetscMalloc1(cap, &buf));
  buf[0] = '\0';
  if (!rank) {
    PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, "%" PetscInt_FMT "\n", N));
    if (hascell) {
      char lattice[512];
      HMXYZLatticeField(cell, lattice, sizeof(lattice));
      PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, "%s", lattice));
    }
    PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, "Properties=species:S:1:pos:R:3:forces:R:3 energy=%.17g", E));
    if (has) PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, " stress=\"%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\"", st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8]));
    PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, " pbc=\"%s %s %s\"\n", hascell && pbc[0] ? "T" : "F", hascell && pbc[1] ? "T" : "F", hascell && pbc[2] ? "T" : "F"));
  }
  for (PetscInt k = 0; k < nb; k++) {
    const double *r = blk + 8 * k;
    PetscCall(HMBufferAppendf_Private(&buf, &len, &cap, "%-2s %.17g %.17g %.17g %.17g %.17g %.17g\n", HMElementSymbol((int)r[1]), r[2], r[3], r[4], r[5], r[6], r[7]));
  }
  PetscCall(PetscFree(blk));
  PetscCall(HMFileWriteOrderedAtomic(comm, path, buf, len));
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

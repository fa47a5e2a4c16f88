/* Forces for output: gathered on rank 0 in input atom order, written as extended XYZ. */
#include <hipmace/summary.h>
#include <hipmace/app.h>
#include <hipmace/io.h>

/* Collective. On rank 0: N, atomic numbers, positions [N][3] and forces [N][3] in input atom order
   (PetscFree3(Z, pos, f) by the caller); NULL elsewhere. O(N) memory on rank 0 only, as any output of
   per-atom results. */
PetscErrorCode HMForcesGather(HMEval ev, PetscInt *N, int **Z, double **pos, double **f)
{
  HMDecomp        dd;
  MPI_Comm        comm;
  PetscMPIInt     size, rank, nr;
  PetscInt        n;
  const PetscInt *gid;
  const int      *Zl;
  const double   *pl, *fl;
  double         *mine, *all = NULL;
  PetscMPIInt    *cnt = NULL, *disp = NULL;

  PetscFunctionBegin;
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetComm(dd, &comm));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(HMDecompGetSizes(dd, N, &n, NULL, NULL));
  PetscCall(HMDecompGetLocalAtoms(dd, &gid, NULL, &Zl, &pl, NULL));
  PetscCall(HMEvalGetForces(ev, &fl));
  PetscCall(PetscMalloc1(8 * n + 1, &mine));
  for (PetscInt i = 0; i < n; i++) {
    mine[8 * i]     = (double)gid[i];
    mine[8 * i + 1] = (double)Zl[i];
    for (int a = 0; a < 3; a++) {
      mine[8 * i + 2 + a] = pl[3 * i + a];
      mine[8 * i + 5 + a] = fl[3 * i + a];
    }
  }
  PetscCall(PetscMPIIntCast(8 * n, &nr));
  if (rank == 0) PetscCall(PetscMalloc3(size, &cnt, size + 1, &disp, 8 * *N + 1, &all));
  PetscCallMPI(MPI_Gather(&nr, 1, MPI_INT, cnt, 1, MPI_INT, 0, comm));
  if (rank == 0) {
    disp[0] = 0;
    for (PetscMPIInt q = 0; q < size; q++) disp[q + 1] = disp[q] + cnt[q];
  }
  PetscCallMPI(MPI_Gatherv(mine, nr, MPI_DOUBLE, all, cnt, disp, MPI_DOUBLE, 0, comm));
  *Z   = NULL;
  *pos = *f = NULL;
  if (rank == 0) {
    PetscCall(PetscMalloc3(*N + 1, Z, 3 * *N + 1, pos, 3 * *N + 1, f));
    for (PetscInt k = 0; k < *N; k++) {
      const PetscInt i = (PetscInt)all[8 * k];
      (*Z)[i]          = (int)all[8 * k + 1];
      for (int a = 0; a < 3; a++) {
        (*pos)[3 * i + a] = all[8 * k + 2 + a];
        (*f)[3 * i + a]   = all[8 * k + 5 + a];
      }
    }
    PetscCall(PetscFree3(cnt, disp, all));
  }
  PetscCall(PetscFree(mine));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMForcesWriteXYZ(HMEval ev, const char path[])
{
  HMDecomp     dd;
  MPI_Comm     comm;
  PetscInt     N;
  int         *Z;
  double      *pos, *f, E, cell[9], st[9];
  PetscBool    hascell, pbc[3], has;
  FILE        *fp;
  HMAtomicFile af;

  PetscFunctionBegin;
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetComm(dd, &comm));
  PetscCall(HMEvalGetEnergy(ev, &E, NULL));
  PetscCall(HMEvalGetStress(ev, &has, st));
  PetscCall(HMDecompGetCell(dd, &hascell, cell, pbc));
  PetscCall(HMForcesGather(ev, &N, &Z, &pos, &f));
  PetscCall(HMFileOpenAtomic(comm, path, &fp, &af));
  if (fp) {
    fprintf(fp, "%" PetscInt_FMT "\n", N);
    if (hascell) fprintf(fp, "Lattice=\"%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\" ", cell[0], cell[1], cell[2], cell[3], cell[4], cell[5], cell[6], cell[7], cell[8]);
    fprintf(fp, "Properties=species:S:1:pos:R:3:forces:R:3 energy=%.17g", E);
    if (has) fprintf(fp, " stress=\"%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\"", st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8]);
    fprintf(fp, " pbc=\"%s %s %s\"\n", hascell && pbc[0] ? "T" : "F", hascell && pbc[1] ? "T" : "F", hascell && pbc[2] ? "T" : "F");
    for (PetscInt i = 0; i < N; i++) fprintf(fp, "%-2s %.17g %.17g %.17g %.17g %.17g %.17g\n", HMElementSymbol(Z[i]), pos[3 * i], pos[3 * i + 1], pos[3 * i + 2], f[3 * i], f[3 * i + 1], f[3 * i + 2]);
    PetscCall(PetscFree3(Z, pos, f));
  }
  PetscCall(HMFileCommitAtomic(&af));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* HMDecomp: creation (partition on rank 0, scatter, ghosts, the two local graphs, halos) and accessors. The
   jobs live in their own files: partition.c, ghosts.c, halo.c; the neighbour search is src/graph's. */
#include "decompimpl.h"
#include "sys/sysimpl.h"

/* The local graph of one cutoff: owned senders, local receivers (ghosts are explicit images), rows sorted by
   (input index, image) of the receiver. */
static PetscErrorCode BuildGraph(HMDecomp dd, double rc, HMGraph *g)
{
  PetscFunctionBegin;
  PetscCall(HMGraphBuildWithImages(dd->nlocal, dd->pos, dd->shift, dd->cell, dd->nowned, dd->gid, rc, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- create */
/* Atoms of all ranks in partition order (by rank, then by input index), on rank 0. */
typedef struct {
  PetscMPIInt *cnt, *disp, *cnt3, *disp3;
  PetscInt    *gid, *pidx;
  int         *Z;
  double      *pos, *mass, hdr[14]; /* hdr: N, hascell, cell[9], pbc[3] */
} Packed;

static PetscErrorCode PackOnRoot(HMDecomp dd, HMSystem sys, HMPartitionType ptype, Packed *pk)
{
  PetscInt      n;
  const double *pos, *mass;
  const int    *Z;
  int          *part;
  PetscMPIInt  *fill;
  PetscBool     hc, pbc[3];
  double        cell[9];

  PetscFunctionBegin;
  PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMDecompCreate: rank 0 needs the system");
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomicNumbers(sys, &Z));
  PetscCall(HMSystemGetMasses(sys, &mass));
  PetscCall(HMSystemGetCell(sys, &hc, cell, pbc));
  pk->hdr[0] = (double)n;
  pk->hdr[1] = hc;
  for (int k = 0; k < 9; k++) pk->hdr[2 + k] = cell[k];
  for (int k = 0; k < 3; k++) pk->hdr[11 + k] = pbc[k];
  PetscCall(PetscMalloc1(n + 1, &part));
  PetscCall(HMDecompPartition(n, pos, ptype, dd->size, part));
  PetscCall(PetscCalloc4(dd->size, &pk->cnt, dd->size + 1, &pk->disp, dd->size, &pk->cnt3, dd->size + 1, &pk->disp3));
  for (PetscInt i = 0; i < n; i++) pk->cnt[part[i]]++;
  for (PetscMPIInt q = 0; q < dd->size; q++) {
    pk->disp[q + 1]  = pk->disp[q] + pk->cnt[q];
    pk->cnt3[q]      = 3 * pk->cnt[q];
    pk->disp3[q + 1] = 3 * pk->disp[q + 1];
  }
  PetscCall(PetscMalloc5(n + 1, &pk->gid, n + 1, &pk->pidx, n + 1, &pk->Z, 3 * n + 1, &pk->pos, n + 1, &pk->mass));
  PetscCall(PetscCalloc1(dd->size, &fill));
  for (PetscInt i = 0; i < n; i++) {
    const PetscInt k = pk->disp[part[i]] + fill[part[i]]++;
    pk->gid[k]       = i;
    pk->pidx[k]      = k;
    pk->Z[k]         = Z[i];
    pk->mass[k]      = mass[i];
    for (int a = 0; a < 3; a++) pk->pos[3 * k + a] = pos[3 * i + a];
  }
  PetscCall(PetscFree(fill));
  PetscCall(PetscFree(part));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The owned atoms' arrays for n atoms (before any ghost is added). */
static PetscErrorCode AllocateOwned(HMDecomp dd, PetscInt n)
{
  PetscFunctionBegin;
  dd->nowned = dd->nlocal = n;
  PetscCall(PetscMalloc1(n + 1, &dd->gid));
  PetscCall(PetscMalloc1(n + 1, &dd->pidx));
  PetscCall(PetscMalloc1(n + 1, &dd->Z));
  PetscCall(PetscMalloc1(3 * n + 1, &dd->pos));
  PetscCall(PetscMalloc1(n + 1, &dd->mass));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Partition on rank 0 and scatter: every rank receives its owned atoms. */
static PetscErrorCode Distribute(HMDecomp dd, HMSystem sys, HMPartitionType ptype)
{
  const MPI_Comm comm = dd->comm;
  Packed         pk;
  PetscMPIInt    nmine;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&pk, sizeof(pk)));
  if (dd->rank == 0) PetscCall(PackOnRoot(dd, sys, ptype, &pk));
  PetscCallMPI(MPI_Bcast(pk.hdr, 14, MPI_DOUBLE, 0, comm));
  dd->N       = (PetscInt)pk.hdr[0];
  dd->hascell = pk.hdr[1] != 0;
  for (int k = 0; k < 9; k++) dd->cell[k] = dd->hascell ? pk.hdr[2 + k] : 0.0;
  for (int k = 0; k < 3; k++) dd->pbc[k] = dd->hascell && pk.hdr[11 + k] != 0;
  PetscCallMPI(MPI_Scatter(pk.cnt, 1, MPI_INT, &nmine, 1, MPI_INT, 0, comm));
  PetscCall(AllocateOwned(dd, nmine));
  PetscCallMPI(MPI_Scatterv(pk.gid, pk.cnt, pk.disp, MPIU_INT, dd->gid, nmine, MPIU_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(pk.pidx, pk.cnt, pk.disp, MPIU_INT, dd->pidx, nmine, MPIU_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(pk.Z, pk.cnt, pk.disp, MPI_INT, dd->Z, nmine, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(pk.mass, pk.cnt, pk.disp, MPI_DOUBLE, dd->mass, nmine, MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Scatterv(pk.pos, pk.cnt3, pk.disp3, MPI_DOUBLE, dd->pos, 3 * nmine, MPI_DOUBLE, 0, comm));
  if (dd->rank == 0) {
    PetscCall(PetscFree5(pk.gid, pk.pidx, pk.Z, pk.pos, pk.mass));
    PetscCall(PetscFree4(pk.cnt, pk.disp, pk.cnt3, pk.disp3));
  }
  dd->rstart = 0;
  PetscCallMPI(MPI_Exscan(&dd->nowned, &dd->rstart, 1, MPIU_INT, MPI_SUM, comm));
  if (dd->rank == 0) dd->rstart = 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A system read in parallel: the partition computed from the distributed atoms, the atoms sent to their
   parts (all-to-all), each rank's atoms sorted by input index as the serial scatter leaves them. */
static PetscErrorCode DistributeParallel(HMDecomp dd, HMSystem sys, HMPartitionType ptype)
{
  const MPI_Comm comm = dd->comm;
  PetscInt       n, N, rs;
  const double  *pos, *mass;
  const int     *Z;
  int           *part;
  PetscMPIInt    nrecv = 0;
  PetscInt      *sgid, *rgid, *perm, *cnt, *fill;
  double        *sbuf, *rbuf;
  PetscBool      hc, pbc[3];
  HMExchange     x;

  PetscFunctionBegin;
  PetscCall(HMSystemGetSize(sys, &n));
  PetscCall(HMSystemGetDistribution(sys, NULL, &N, &rs));
  PetscCall(HMSystemGetPositions(sys, &pos));
  PetscCall(HMSystemGetAtomicNumbers(sys, &Z));
  PetscCall(HMSystemGetMasses(sys, &mass));
  PetscCall(HMSystemGetCell(sys, &hc, dd->cell, pbc));
  dd->N       = N;
  dd->hascell = hc;
  for (int k = 0; k < 9; k++) dd->cell[k] = hc ? dd->cell[k] : 0.0;
  for (int k = 0; k < 3; k++) dd->pbc[k] = hc && pbc[k];
  PetscCall(PetscMalloc2(n + 1, &part, n + 1, &sgid));
  for (PetscInt i = 0; i < n; i++) sgid[i] = rs + i;
  PetscCall(HMDecompPartitionDistributed(comm, n, sgid, pos, ptype, dd->size, part));
  PetscCall(PetscCalloc2(dd->size, &cnt, dd->size, &fill));
  for (PetscInt i = 0; i < n; i++) cnt[part[i]]++;
  PetscCall(HMExchangeCreate(comm, cnt, &x));
  nrecv = x.rdisp[dd->size];
  /* records of 5 doubles (Z, mass, pos) with the input indices beside them, in part order, input order within */
  PetscCall(PetscMalloc2(5 * n + 1, &sbuf, n + 1, &perm));
  for (PetscInt i = 0; i < n; i++) {
    const PetscInt k = x.sdisp[part[i]] + fill[part[i]]++;
    perm[k]          = rs + i;
    sbuf[5 * k]      = (double)Z[i];
    sbuf[5 * k + 1]  = mass[i];
    for (int a = 0; a < 3; a++) sbuf[5 * k + 2 + a] = pos[3 * i + a];
  }
  PetscCall(PetscMalloc2(5 * (size_t)nrecv + 1, &rbuf, (size_t)nrecv + 1, &rgid));
  PetscCall(HMExchangeForward(&x, MPIU_INT, 1, perm, rgid));
  PetscCall(HMExchangeForward(&x, MPI_DOUBLE, 5, sbuf, rbuf));
  PetscCall(HMExchangeDestroy(&x));
  PetscCall(PetscFree2(sbuf, perm));
  PetscCall(PetscFree2(part, sgid));
  PetscCall(PetscFree2(cnt, fill));
  /* senders hold increasing runs of input indices, so the atoms arrive sorted; sort anyway if not */
  PetscCall(PetscMalloc1((size_t)nrecv + 1, &perm));
  for (PetscMPIInt k = 0; k < nrecv; k++) perm[k] = k;
  {
    PetscBool sorted = PETSC_TRUE;
    for (PetscMPIInt k = 1; k < nrecv; k++) sorted = (PetscBool)(sorted && rgid[k - 1] < rgid[k]);
    if (!sorted) PetscCall(PetscSortIntWithPermutation(nrecv, rgid, perm));
  }
  PetscCall(AllocateOwned(dd, nrecv));
  dd->rstart = 0;
  PetscCallMPI(MPI_Exscan(&dd->nowned, &dd->rstart, 1, MPIU_INT, MPI_SUM, comm));
  if (dd->rank == 0) dd->rstart = 0;
  for (PetscMPIInt k = 0; k < nrecv; k++) {
    const PetscInt j = perm[k];
    dd->gid[k]       = rgid[j];
    dd->pidx[k]      = dd->rstart + k;
    dd->Z[k]         = (int)rbuf[5 * j];
    dd->mass[k]      = rbuf[5 * j + 1];
    for (int a = 0; a < 3; a++) dd->pos[3 * k + a] = rbuf[5 * j + 2 + a];
  }
  PetscCall(PetscFree(perm));
  PetscCall(PetscFree2(rbuf, rgid));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Ghosts, the two local graphs and the halos of the owned atoms (the partition is given). */
static PetscErrorCode SetUpLocal(HMDecomp dd)
{
  const double rc_main = dd->rc[HM_HALO_NEAR], rc_hess = dd->rc[HM_HALO_FAR];

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(HMLog.ghosts));
  PetscCall(HMDecompSetUpGhosts_Private(dd, PetscMax(rc_main, rc_hess)));
  PetscCall(PetscLogStagePop());
  PetscCall(PetscLogStagePush(HMLog.neighbours));
  PetscCall(BuildGraph(dd, rc_main, &dd->g[HM_HALO_NEAR]));
  /* with equal cutoffs the Hessian graph is the same graph: share its arrays (a third of the memory per atom
     of the graphs) instead of building it twice */
  if (rc_hess == rc_main) {
    dd->g[HM_HALO_FAR] = dd->g[HM_HALO_NEAR];
    dd->gshared        = PETSC_TRUE;
  } else PetscCall(BuildGraph(dd, rc_hess, &dd->g[HM_HALO_FAR]));
  PetscCall(HMDecompSetUpHalo_Private(dd));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Frees what SetUpLocal built: the graphs, halos and ghosts; the local arrays shrink to the owned atoms. */
static PetscErrorCode ClearLocal(HMDecomp dd)
{
  PetscFunctionBegin;
  if (dd->gshared) PetscCall(PetscMemzero(&dd->g[HM_HALO_FAR], sizeof(HMGraph)));
  dd->gshared = PETSC_FALSE;
  for (int t = 0; t < 2; t++) PetscCall(HMGraphDestroy(&dd->g[t]));
  PetscCall(HMDecompDestroyHalo_Private(dd));
  PetscCall(PetscFree2(dd->ghost_rank, dd->ghost_idx));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompCreate(MPI_Comm comm, HMSystem sys, HMPartitionType ptype, double rc_main, double rc_hess, HMDecomp *out)
{
  HMDecomp dd;

  PetscFunctionBegin;
  PetscCall(HMSysInitializePackage());
  PetscCall(PetscLogStagePush(HMLog.partition));
  PetscCall(PetscNew(&dd));
  dd->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &dd->rank));
  PetscCallMPI(MPI_Comm_size(comm, &dd->size));
  {
    PetscBool dist = PETSC_FALSE;
    if (sys) PetscCall(HMSystemGetDistribution(sys, &dist, NULL, NULL));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &dist, 1, MPIU_BOOL, MPI_LOR, comm));
    dd->distributed = dist;
    if (dist) {
      PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMDecompCreate: a system read in parallel needs its part on every rank");
      PetscCall(DistributeParallel(dd, sys, ptype));
    } else PetscCall(Distribute(dd, sys, ptype));
  }
  PetscCall(PetscLogStagePop());
  dd->rc[HM_HALO_NEAR] = rc_main;
  dd->rc[HM_HALO_FAR]  = rc_hess;
  PetscCall(SetUpLocal(dd));
  {
    PetscInt *app, *pet;
    PetscCall(PetscMalloc2(dd->nowned + 1, &app, dd->nowned + 1, &pet));
    for (PetscInt i = 0; i < dd->nowned; i++) {
      app[i] = dd->gid[i];
      pet[i] = dd->pidx[i];
    }
    /* the basic AO keeps the whole map on every rank; a structure read in parallel keeps none */
    if (dd->distributed) PetscCall(AOCreateMemoryScalable(comm, dd->nowned, app, pet, &dd->ao));
    else PetscCall(AOCreateBasic(comm, dd->nowned, app, pet, &dd->ao));
    PetscCall(PetscFree2(app, pet));
  }
  *out = dd;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompSetPositions(HMDecomp dd, const double pos[])
{
  const PetscInt no = dd->nowned;
  PetscInt      *gid, *pidx;
  int           *Z;
  double        *p;

  PetscFunctionBegin;
  /* back to the state the partition leaves (owned atoms only, each array its own allocation), then the
     ghosts, graphs and halos as HMDecompCreate builds them: a fresh decomposition gives the same bits */
  PetscCall(ClearLocal(dd));
  PetscCall(PetscMalloc1(no + 1, &gid));
  PetscCall(PetscMalloc1(no + 1, &pidx));
  PetscCall(PetscMalloc1(no + 1, &Z));
  PetscCall(PetscMalloc1(3 * no + 1, &p));
  PetscCall(PetscArraycpy(gid, dd->gid, no));
  PetscCall(PetscArraycpy(pidx, dd->pidx, no));
  PetscCall(PetscArraycpy(Z, dd->Z, no));
  PetscCall(PetscArraycpy(p, pos, 3 * no));
  PetscCall(PetscFree5(dd->gid, dd->pidx, dd->Z, dd->shift, dd->pos));
  dd->gid    = gid;
  dd->pidx   = pidx;
  dd->Z      = Z;
  dd->pos    = p;
  dd->nlocal = no;
  PetscCall(SetUpLocal(dd));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompDestroy(HMDecomp *p)
{
  HMDecomp dd = *p;
  PetscFunctionBegin;
  if (!dd) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(ClearLocal(dd));
  PetscCall(AODestroy(&dd->ao));
  PetscCall(PetscFree5(dd->gid, dd->pidx, dd->Z, dd->shift, dd->pos));
  PetscCall(PetscFree(dd->mass));
  PetscCall(PetscFree(dd));
  *p = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMDecomp, Comm, MPI_Comm, comm)

PetscErrorCode HMDecompGetSizes(HMDecomp dd, PetscInt *N, PetscInt *no, PetscInt *nl, PetscInt *rstart)
{
  PetscFunctionBegin;
  if (N) *N = dd->N;
  if (no) *no = dd->nowned;
  if (nl) *nl = dd->nlocal;
  if (rstart) *rstart = dd->rstart;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetLocalAtoms(HMDecomp dd, const PetscInt **gid, const PetscInt **pidx, const int **Z, const double **pos, const int **shift)
{
  PetscFunctionBegin;
  if (gid) *gid = dd->gid;
  if (pidx) *pidx = dd->pidx;
  if (Z) *Z = dd->Z;
  if (pos) *pos = dd->pos;
  if (shift) *shift = dd->shift;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMDecomp, Masses, const double *, mass)

PetscErrorCode HMDecompGetGraphs(HMDecomp dd, const HMGraph **g, const HMGraph **gh)
{
  PetscFunctionBegin;
  if (g) *g = &dd->g[HM_HALO_NEAR];
  if (gh) *gh = &dd->g[HM_HALO_FAR];
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMDecomp, AO, AO, ao)

PetscErrorCode HMDecompGetCell(HMDecomp dd, PetscBool *hascell, double cell[9], PetscBool pbc[3])
{
  PetscFunctionBegin;
  HMCellCopyOut_Private(dd->hascell, dd->cell, dd->pbc, hascell, cell, pbc);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompSumExact(HMDecomp dd, PetscInt nv, const double owned[], double sums[])
{
  PetscFunctionBegin;
  PetscCall(HMSumExact(dd->comm, nv, dd->nowned, owned, sums));
  PetscFunctionReturn(PETSC_SUCCESS);
}

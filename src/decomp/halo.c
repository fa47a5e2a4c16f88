/* Halo communication through PetscSF: the forward broadcast of owned rows to their ghost copies, the reverse
   accumulate of ghost rows into their owners in a fixed order, and the reversal of edges across ranks. */
#include "decompimpl.h"
#include "sys/sysimpl.h"

/* One star forest per halo: leaves are the ghosts that some edge of the graph reads. */
PetscErrorCode HMDecompSetUpHalo_Private(HMDecomp dd)
{
  const PetscInt ng = dd->nlocal - dd->nowned;

  PetscFunctionBegin;
  for (int t = 0; t < 2; t++) {
    PetscBool   *used;
    PetscInt     nleaf = 0, *ilocal;
    PetscSFNode *iremote;
    PetscCall(PetscCalloc1(ng + 1, &used));
    for (PetscInt e = 0; e < dd->g[t].nedges; e++)
      if (dd->g[t].receiver[e] >= dd->nowned) used[dd->g[t].receiver[e] - dd->nowned] = PETSC_TRUE;
    for (PetscInt k = 0; k < ng; k++) nleaf += used[k];
    PetscCall(PetscMalloc1(nleaf + 1, &ilocal));
    PetscCall(PetscMalloc1(nleaf + 1, &iremote));
    nleaf = 0;
    for (PetscInt k = 0; k < ng; k++)
      if (used[k]) {
        ilocal[nleaf]        = dd->nowned + k;
        iremote[nleaf].rank  = dd->ghost_rank[k];
        iremote[nleaf].index = dd->ghost_idx[k];
        nleaf++;
      }
    dd->nghost[t] = nleaf;
    PetscCall(PetscSFCreate(dd->comm, &dd->sf[t]));
    PetscCall(PetscSFSetGraph(dd->sf[t], dd->nowned, nleaf, ilocal, PETSC_OWN_POINTER, iremote, PETSC_OWN_POINTER));
    PetscCall(PetscSFSetUp(dd->sf[t]));
    PetscCall(PetscFree(used));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompDestroyHalo_Private(HMDecomp dd)
{
  PetscFunctionBegin;
  for (int t = 0; t < 2; t++) {
    PetscCall(PetscSFDestroy(&dd->sf[t]));
    PetscCall(PetscSFDestroy(&dd->esf[t]));
    PetscCall(PetscFree(dd->acc_start[t]));
    PetscCall(PetscFree(dd->acc_order[t]));
    PetscCall(PetscFree(dd->rev_local[t]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* PetscSF keeps the packing buffers of its last exchanges until it is reset: a copy of the star forest
   without them replaces it (the graph, and so every exchange, is the same). */
PetscErrorCode HMDecompHaloReleaseBuffers(HMDecomp dd, HMHaloType t)
{
  PetscSF sf;
  PetscFunctionBegin;
  if (!dd->sf[t]) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscSFDuplicate(dd->sf[t], PETSCSF_DUPLICATE_GRAPH, &sf));
  PetscCall(PetscSFSetUp(sf));
  PetscCall(PetscSFDestroy(&dd->sf[t]));
  dd->sf[t] = sf;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetHaloSize(HMDecomp dd, HMHaloType t, PetscInt *ng)
{
  PetscFunctionBegin;
  *ng = dd->nghost[t];
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* rows of width doubles as one MPI unit */
static PetscErrorCode RowType(PetscInt width, MPI_Datatype *unit)
{
  PetscFunctionBegin;
  PetscCallMPI(MPI_Type_contiguous((PetscMPIInt)width, MPI_DOUBLE, unit));
  PetscCallMPI(MPI_Type_commit(unit));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompHaloExchange(HMDecomp dd, HMHaloType t, PetscInt width, double data[])
{
  MPI_Datatype unit;

  PetscFunctionBegin;
  if (width <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(RowType(width, &unit));
  PetscCall(PetscLogEventBegin(HMLog.halo, 0, 0, 0, 0));
  PetscCall(PetscSFBcastBegin(dd->sf[t], unit, data, data, MPI_REPLACE));
  PetscCall(PetscSFBcastEnd(dd->sf[t], unit, data, data, MPI_REPLACE));
  PetscCall(PetscLogEventEnd(HMLog.halo, 0, 0, 0, 0));
  PetscCallMPI(MPI_Type_free(&unit));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- reverse accumulate */
typedef struct {
  PetscInt key[4]; /* image of the copy, source rank */
  PetscInt slot;
} CopyKey;

static int CmpCopy(const void *a, const void *b)
{
  const CopyKey *x = (const CopyKey *)a, *y = (const CopyKey *)b;
  for (int k = 0; k < 4; k++)
    if (x->key[k] != y->key[k]) return x->key[k] < y->key[k] ? -1 : 1;
  return 0;
}

/* Where each ghost copy of an owned atom lands in the multi-root space of sf[t] (PetscSFGather), and the
   order (image, source rank) of the copies of each atom: unique, since a rank holds one copy per image. */
static PetscErrorCode AccumulateSetUp(HMDecomp dd, HMHaloType t)
{
  const PetscInt *deg;
  PetscInt       *meta, *mmeta, nm = 0;
  MPI_Datatype    unit;
  CopyKey        *ck;

  PetscFunctionBegin;
  PetscCall(PetscSFComputeDegreeBegin(dd->sf[t], &deg));
  PetscCall(PetscSFComputeDegreeEnd(dd->sf[t], &deg));
  PetscCall(PetscMalloc1(dd->nowned + 1, &dd->acc_start[t]));
  dd->acc_start[t][0] = 0;
  for (PetscInt i = 0; i < dd->nowned; i++) dd->acc_start[t][i + 1] = dd->acc_start[t][i] + deg[i];
  nm = dd->acc_start[t][dd->nowned];
  PetscCall(PetscMalloc2(4 * dd->nlocal + 1, &meta, 4 * nm + 1, &mmeta));
  for (PetscInt j = 0; j < dd->nlocal; j++) {
    for (int a = 0; a < 3; a++) meta[4 * j + a] = dd->shift[3 * j + a];
    meta[4 * j + 3] = dd->rank;
  }
  PetscCallMPI(MPI_Type_contiguous(4, MPIU_INT, &unit));
  PetscCallMPI(MPI_Type_commit(&unit));
  PetscCall(PetscSFGatherBegin(dd->sf[t], unit, meta, mmeta));
  PetscCall(PetscSFGatherEnd(dd->sf[t], unit, meta, mmeta));
  PetscCallMPI(MPI_Type_free(&unit));
  PetscCall(PetscMalloc1(nm + 1, &ck));
  PetscCall(PetscMalloc1(nm + 1, &dd->acc_order[t]));
  for (PetscInt k = 0; k < nm; k++) {
    for (int a = 0; a < 4; a++) ck[k].key[a] = mmeta[4 * k + a];
    ck[k].slot = k;
  }
  for (PetscInt i = 0; i < dd->nowned; i++) qsort(ck + dd->acc_start[t][i], (size_t)deg[i], sizeof(CopyKey), CmpCopy);
  for (PetscInt k = 0; k < nm; k++) dd->acc_order[t][k] = ck[k].slot;
  PetscCall(PetscFree(ck));
  PetscCall(PetscFree2(meta, mmeta));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompHaloAccumulate(HMDecomp dd, HMHaloType t, PetscInt width, double data[])
{
  MPI_Datatype unit;
  double      *buf;
  PetscInt     nm;

  PetscFunctionBegin;
  if (width <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  if (!dd->acc_start[t]) PetscCall(AccumulateSetUp(dd, t));
  nm = dd->acc_start[t][dd->nowned];
  PetscCall(PetscMalloc1(nm * width + 1, &buf));
  PetscCall(RowType(width, &unit));
  PetscCall(PetscLogEventBegin(HMLog.halo, 0, 0, 0, 0));
  PetscCall(PetscSFGatherBegin(dd->sf[t], unit, data, buf));
  PetscCall(PetscSFGatherEnd(dd->sf[t], unit, data, buf));
  PetscCall(PetscLogEventEnd(HMLog.halo, 0, 0, 0, 0));
  PetscCallMPI(MPI_Type_free(&unit));
  for (PetscInt i = 0; i < dd->nowned; i++)
    for (PetscInt k = dd->acc_start[t][i]; k < dd->acc_start[t][i + 1]; k++) {
      const double *row = buf + dd->acc_order[t][k] * width;
      for (PetscInt c = 0; c < width; c++) data[i * width + c] += row[c];
    }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- edge reversal */
/* The edge of sender row [e0, e1) of g whose receiver has input index gid and image s, or -1. Rows are sorted
   by (input index of the receiver, image). */
static PetscInt FindEdge(const HMGraph *g, const PetscInt *gidof, PetscInt e0, PetscInt e1, PetscInt gid, const PetscInt s[3])
{
  while (e0 < e1) {
    const PetscInt m = e0 + (e1 - e0) / 2, gm = gidof[g->receiver[m]];
    int            c = gm < gid ? -1 : gm > gid ? 1 :
                                                  0;
    for (int a = 0; a < 3 && !c; a++) c = g->shift[3 * m + a] < s[a] ? -1 : g->shift[3 * m + a] > s[a] ? 1 :
                                                                                                         0;
    if (!c) return m;
    if (c < 0) e0 = m + 1;
    else e1 = m;
  }
  return -1;
}

/* Requests (owner index of the receiver, input index of the sender, reversed image) to the receivers' owners,
   answered with the index of the reversed edge there. */
static PetscErrorCode ReverseRemote(HMDecomp dd, HMHaloType t, PetscInt nreq, const PetscInt *req_e, PetscSFNode *iremote)
{
  const HMGraph    *g = &dd->g[t];
  const PetscMPIInt P = dd->size;
  PetscInt         *cnt, *fill, *sbuf, *rbuf, *ans, *back, *pos;
  HMExchange        x;

  PetscFunctionBegin;
  PetscCall(PetscCalloc2(P, &cnt, P, &fill));
  for (PetscInt k = 0; k < nreq; k++) cnt[dd->ghost_rank[g->receiver[req_e[k]] - dd->nowned]]++;
  PetscCall(HMExchangeCreate(dd->comm, cnt, &x));
  PetscCall(PetscMalloc5(5 * x.nsend + 1, &sbuf, 5 * x.nrecv + 1, &rbuf, x.nrecv + 1, &ans, x.nsend + 1, &back, nreq + 1, &pos));
  for (PetscInt k = 0; k < nreq; k++) {
    const PetscInt    e = req_e[k], j = g->receiver[e] - dd->nowned;
    const PetscMPIInt q = dd->ghost_rank[j];
    PetscInt         *r;
    pos[k] = x.sdisp[q] + fill[q]++;
    r      = sbuf + 5 * pos[k];
    r[0]   = dd->ghost_idx[j];
    r[1]   = dd->gid[g->sender[e]];
    for (int a = 0; a < 3; a++) r[2 + a] = -g->shift[3 * e + a];
  }
  PetscCall(HMExchangeForward(&x, MPIU_INT, 5, sbuf, rbuf));
  for (PetscInt k = 0; k < x.nrecv; k++) {
    const PetscInt *r = rbuf + 5 * k;
    ans[k]            = FindEdge(g, dd->gid, g->offset[r[0]], g->offset[r[0] + 1], r[1], r + 2);
    PetscCheck(ans[k] >= 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "edge reversal: atom %" PetscInt_FMT " has no edge back to atom %" PetscInt_FMT, dd->gid[r[0]] + 1, r[1] + 1);
  }
  PetscCall(HMExchangeReverse(&x, MPIU_INT, 1, ans, back));
  for (PetscInt k = 0; k < nreq; k++) {
    iremote[k].rank  = dd->ghost_rank[g->receiver[req_e[k]] - dd->nowned];
    iremote[k].index = back[pos[k]];
  }
  PetscCall(PetscFree5(sbuf, rbuf, ans, back, pos));
  PetscCall(PetscFree2(cnt, fill));
  PetscCall(HMExchangeDestroy(&x));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ReverseSetUp(HMDecomp dd, HMHaloType t)
{
  const HMGraph *g    = &dd->g[t];
  PetscInt       nreq = 0, *ilocal;
  PetscSFNode   *iremote;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(g->nedges + 1, &dd->rev_local[t]));
  for (PetscInt e = 0; e < g->nedges; e++) {
    const PetscInt i = g->sender[e], j = g->receiver[e];
    if (j >= dd->nowned) {
      dd->rev_local[t][e] = -1;
      nreq++;
      continue;
    }
    {
      const PetscInt s[3] = {-g->shift[3 * e], -g->shift[3 * e + 1], -g->shift[3 * e + 2]};
      dd->rev_local[t][e] = FindEdge(g, dd->gid, g->offset[j], g->offset[j + 1], dd->gid[i], s);
      PetscCheck(dd->rev_local[t][e] >= 0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "edge reversal: atom %" PetscInt_FMT " has no edge back to atom %" PetscInt_FMT, dd->gid[j] + 1, dd->gid[i] + 1);
    }
  }
  PetscCall(PetscMalloc1(nreq + 1, &ilocal));
  PetscCall(PetscMalloc1(nreq + 1, &iremote));
  nreq = 0;
  for (PetscInt e = 0; e < g->nedges; e++)
    if (dd->rev_local[t][e] < 0) ilocal[nreq++] = e;
  PetscCall(ReverseRemote(dd, t, nreq, ilocal, iremote));
  PetscCall(PetscSFCreate(dd->comm, &dd->esf[t]));
  PetscCall(PetscSFSetGraph(dd->esf[t], g->nedges, nreq, ilocal, PETSC_OWN_POINTER, iremote, PETSC_OWN_POINTER));
  PetscCall(PetscSFSetUp(dd->esf[t]));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompEdgeReverse(HMDecomp dd, HMHaloType t, PetscInt width, const double edge[], double rev[])
{
  MPI_Datatype unit;

  PetscFunctionBegin;
  if (width <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(edge != rev, PETSC_COMM_SELF, PETSC_ERR_ARG_IDN, "HMDecompEdgeReverse: edge and rev must be different arrays");
  if (!dd->esf[t]) PetscCall(ReverseSetUp(dd, t));
  PetscCall(RowType(width, &unit));
  PetscCall(PetscLogEventBegin(HMLog.halo, 0, 0, 0, 0));
  PetscCall(PetscSFBcastBegin(dd->esf[t], unit, edge, rev, MPI_REPLACE));
  for (PetscInt e = 0; e < dd->g[t].nedges; e++)
    if (dd->rev_local[t][e] >= 0) PetscCall(PetscArraycpy(rev + e * width, edge + dd->rev_local[t][e] * width, width));
  PetscCall(PetscSFBcastEnd(dd->esf[t], unit, edge, rev, MPI_REPLACE));
  PetscCall(PetscLogEventEnd(HMLog.halo, 0, 0, 0, 0));
  PetscCallMPI(MPI_Type_free(&unit));
  PetscFunctionReturn(PETSC_SUCCESS);
}

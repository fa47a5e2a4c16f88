/* Ghost atoms: the periodic images of every owned atom that lie within the largest cutoff of another rank's
   atoms (or of this rank's, for images other than the atom itself) are copied there. */
#include "decompimpl.h"
#include "sys/sysimpl.h"

#define REC 10 /* doubles per ghost record: gid, pidx, Z, owner index, shift[3], pos[3] */
/* periodic images of one atom scanned for ghosts; beyond this the input is certainly wrong */
#define HM_MAX_IMAGES 1e6

typedef struct {
  double r[REC];
  int    owner;
} Ghost;

/* Where images can land: the boxes of all ranks' owned atoms grown by R, and, with a cell, the range of
   fractional coordinates (f = p L^-1, lattice vectors as rows) that the grown global box spans. */
typedef struct {
  double *boxes; /* [size][6] lo, hi */
  double  Linv[9], fmin[3], fmax[3];
} GhostReach;

static inline void ShiftVector(const double cell[9], const int n[3], double out[3])
{
  for (int a = 0; a < 3; a++) out[a] = ((double)n[0] * cell[a] + (double)n[1] * cell[3 + a]) + (double)n[2] * cell[6 + a];
}

static int CmpGhost(const void *a, const void *b)
{
  const Ghost *x = (const Ghost *)a, *y = (const Ghost *)b;
  for (int k = 0; k < 7; k++) {
    if (k == 1 || k == 2 || k == 3) continue; /* gid, then shift */
    if (x->r[k] != y->r[k]) return x->r[k] < y->r[k] ? -1 : 1;
  }
  return 0;
}

static PetscErrorCode GhostReachSetUp(HMDecomp dd, double R, GhostReach *G)
{
  double bl[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, bh[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL}, gl[3], gh[3];

  PetscFunctionBegin;
  PetscCall(PetscMemzero(G, sizeof(*G)));
  for (PetscInt i = 0; i < dd->nowned; i++)
    for (int a = 0; a < 3; a++) {
      bl[a] = PetscMin(bl[a], dd->pos[3 * i + a]);
      bh[a] = PetscMax(bh[a], dd->pos[3 * i + a]);
    }
  PetscCall(PetscMalloc1(6 * dd->size, &G->boxes));
  {
    double mine[6] = {bl[0] - R, bl[1] - R, bl[2] - R, bh[0] + R, bh[1] + R, bh[2] + R};
    PetscCallMPI(MPI_Allgather(mine, 6, MPI_DOUBLE, G->boxes, 6, MPI_DOUBLE, dd->comm));
  }
  PetscCall(MPIU_Allreduce(bl, gl, 3, MPI_DOUBLE, MPI_MIN, dd->comm));
  PetscCall(MPIU_Allreduce(bh, gh, 3, MPI_DOUBLE, MPI_MAX, dd->comm));
  if (dd->hascell) {
    const double *L = dd->cell, *Li = G->Linv;
    const double  det = L[0] * (L[4] * L[8] - L[5] * L[7]) - L[1] * (L[3] * L[8] - L[5] * L[6]) + L[2] * (L[3] * L[7] - L[4] * L[6]);
    G->Linv[0]        = (L[4] * L[8] - L[5] * L[7]) / det;
    G->Linv[1]        = (L[2] * L[7] - L[1] * L[8]) / det;
    G->Linv[2]        = (L[1] * L[5] - L[2] * L[4]) / det;
    G->Linv[3]        = (L[5] * L[6] - L[3] * L[8]) / det;
    G->Linv[4]        = (L[0] * L[8] - L[2] * L[6]) / det;
    G->Linv[5]        = (L[2] * L[3] - L[0] * L[5]) / det;
    G->Linv[6]        = (L[3] * L[7] - L[4] * L[6]) / det;
    G->Linv[7]        = (L[1] * L[6] - L[0] * L[7]) / det;
    G->Linv[8]        = (L[0] * L[4] - L[1] * L[3]) / det;
    for (int k = 0; k < 3; k++) {
      G->fmin[k] = PETSC_MAX_REAL;
      G->fmax[k] = -PETSC_MAX_REAL;
    }
    for (int c = 0; c < 8; c++) {
      const double p[3] = {(c & 1) ? gh[0] + R : gl[0] - R, (c & 2) ? gh[1] + R : gl[1] - R, (c & 4) ? gh[2] + R : gl[2] - R};
      for (int k = 0; k < 3; k++) {
        const double f = p[0] * Li[k] + p[1] * Li[3 + k] + p[2] * Li[6 + k];
        G->fmin[k]     = PetscMin(G->fmin[k], f);
        G->fmax[k]     = PetscMax(G->fmax[k], f);
      }
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The image range of owned atom i along each periodic axis that can reach the grown global box. */
static PetscErrorCode GhostImageRange(HMDecomp dd, const GhostReach *G, PetscInt i, double R, int nlo[3], int nhi[3])
{
  double nimg = 1;

  PetscFunctionBegin;
  for (int k = 0; k < 3; k++) {
    nlo[k] = nhi[k] = 0;
    if (dd->hascell && dd->pbc[k]) {
      const double f = dd->pos[3 * i] * G->Linv[k] + dd->pos[3 * i + 1] * G->Linv[3 + k] + dd->pos[3 * i + 2] * G->Linv[6 + k];
      const double a = PetscCeilReal(G->fmin[k] - f), b = PetscFloorReal(G->fmax[k] - f);
      nimg *= PetscMax(0.0, b - a + 1);
      /* images to visit: a cell far thinner than the cutoff, or atoms far outside the cell */
      PetscCheck(nimg <= HM_MAX_IMAGES, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "atom %" PetscInt_FMT ": more than %g periodic images within %g A (cell too thin for the cutoff, or atoms lie far outside the cell; wrap them)", dd->gid[i] + 1, (double)HM_MAX_IMAGES, R);
      nlo[k] = (int)a;
      nhi[k] = (int)b;
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The ranks an image of this rank's atoms can land on, per image shift: those whose grown box meets this
   rank's bounding box moved by the shift. Floating-point addition is monotonic, so an image pos + s that
   lies in a box implies that box meets [lo + s, hi + s] as computed: the filter drops no record, and the
   per-atom scan costs the number of neighbouring ranks instead of P. */
typedef struct {
  int          lo[3], n[3]; /* shifts lo .. lo + n - 1 per axis */
  PetscInt    *start;       /* [n0 n1 n2 + 1] CSR into ranks */
  PetscMPIInt *ranks;
} GhostCandidates;

/* Shift tables larger than this (cells far thinner than the cutoff) fall back to scanning every rank. */
#define HM_MAX_SHIFT_TABLE 4096

static PetscErrorCode GhostCandidatesCreate(HMDecomp dd, const GhostReach *G, double R, GhostCandidates *C)
{
  double   bl[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, bh[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  int      lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  PetscInt ntab = 1, cnt = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(C, sizeof(*C)));
  for (PetscInt i = 0; i < dd->nowned; i++) {
    int nlo[3], nhi[3];
    PetscCall(GhostImageRange(dd, G, i, R, nlo, nhi));
    for (int a = 0; a < 3; a++) {
      bl[a] = PetscMin(bl[a], dd->pos[3 * i + a]);
      bh[a] = PetscMax(bh[a], dd->pos[3 * i + a]);
      lo[a] = i ? PetscMin(lo[a], nlo[a]) : nlo[a];
      hi[a] = i ? PetscMax(hi[a], nhi[a]) : nhi[a];
    }
  }
  for (int a = 0; a < 3; a++) {
    C->lo[a] = lo[a];
    C->n[a]  = hi[a] - lo[a] + 1;
    ntab *= C->n[a];
    if (ntab > HM_MAX_SHIFT_TABLE) break;
  }
  if (dd->nowned == 0 || ntab > HM_MAX_SHIFT_TABLE) {
    C->n[0] = 0; /* no table: every rank is a candidate */
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscMalloc2(ntab + 1, &C->start, ntab * (PetscInt)dd->size + 1, &C->ranks));
  for (PetscInt t = 0; t < ntab; t++) {
    const int n[3] = {C->lo[0] + (int)(t / (C->n[1] * C->n[2])), C->lo[1] + (int)((t / C->n[2]) % C->n[1]), C->lo[2] + (int)(t % C->n[2])};
    double    sh[3], l[3], h[3];
    ShiftVector(dd->cell, n, sh);
    for (int a = 0; a < 3; a++) {
      l[a] = bl[a] + sh[a];
      h[a] = bh[a] + sh[a];
    }
    C->start[t] = cnt;
    for (PetscMPIInt q = 0; q < dd->size; q++) {
      const double *b = G->boxes + 6 * q;
      if (h[0] < b[0] || h[1] < b[1] || h[2] < b[2] || l[0] > b[3] || l[1] > b[4] || l[2] > b[5]) continue;
      C->ranks[cnt++] = q;
    }
  }
  C->start[ntab] = cnt;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GhostCandidatesDestroy(GhostCandidates *C)
{
  PetscFunctionBegin;
  PetscCall(PetscFree2(C->start, C->ranks));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Records of every (owned atom, image, destination rank) whose image lies in the destination's grown box. */
static PetscErrorCode GhostCollect(HMDecomp dd, const GhostReach *G, double R, PetscSegBuffer seg)
{
  GhostCandidates C;

  PetscFunctionBegin;
  PetscCall(GhostCandidatesCreate(dd, G, R, &C));
  for (PetscInt i = 0; i < dd->nowned; i++) {
    int nlo[3], nhi[3], n[3];
    PetscCall(GhostImageRange(dd, G, i, R, nlo, nhi));
    for (n[0] = nlo[0]; n[0] <= nhi[0]; n[0]++)
      for (n[1] = nlo[1]; n[1] <= nhi[1]; n[1]++)
        for (n[2] = nlo[2]; n[2] <= nhi[2]; n[2]++) {
          double   s[3], p[3];
          PetscInt c0 = 0, c1 = dd->size;
          if (C.n[0] > 0) {
            const PetscInt t = ((PetscInt)(n[0] - C.lo[0]) * C.n[1] + (n[1] - C.lo[1])) * C.n[2] + (n[2] - C.lo[2]);
            c0               = C.start[t];
            c1               = C.start[t + 1];
          }
          ShiftVector(dd->cell, n, s);
          for (int a = 0; a < 3; a++) p[a] = dd->pos[3 * i + a] + s[a];
          for (PetscInt c = c0; c < c1; c++) {
            const PetscMPIInt q = C.n[0] > 0 ? C.ranks[c] : (PetscMPIInt)c;
            const double     *b = G->boxes + 6 * q;
            Ghost            *x;
            if (q == dd->rank && n[0] == 0 && n[1] == 0 && n[2] == 0) continue;
            if (p[0] < b[0] || p[1] < b[1] || p[2] < b[2] || p[0] > b[3] || p[1] > b[4] || p[2] > b[5]) continue;
            PetscCall(PetscSegBufferGet(seg, 1, &x));
            x->owner = q; /* destination here */
            x->r[0]  = (double)dd->gid[i];
            x->r[1]  = (double)dd->pidx[i];
            x->r[2]  = (double)dd->Z[i];
            x->r[3]  = (double)i;
            for (int a = 0; a < 3; a++) {
              x->r[4 + a] = (double)n[a];
              x->r[7 + a] = dd->pos[3 * i + a];
            }
          }
        }
  }
  PetscCall(GhostCandidatesDestroy(&C));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* All-to-all of the records; the received ones, owner = source rank, sorted by (input index, image). */
static PetscErrorCode GhostExchange(HMDecomp dd, const Ghost *gs, PetscInt nsend, Ghost **out, PetscInt *nrecv)
{
  const PetscMPIInt P = dd->size;
  PetscInt         *cnt, *fill;
  double           *sbuf, *rbuf;
  Ghost            *gr;
  HMExchange        x;

  PetscFunctionBegin;
  *out   = NULL;
  *nrecv = 0;
  PetscCall(PetscCalloc2(P, &cnt, P, &fill));
  for (PetscInt k = 0; k < nsend; k++) cnt[gs[k].owner]++;
  PetscCall(HMExchangeCreate(dd->comm, cnt, &x));
  PetscCall(PetscMalloc2(REC * x.nsend + 1, &sbuf, REC * x.nrecv + 1, &rbuf));
  for (PetscInt k = 0; k < nsend; k++) {
    const PetscMPIInt q = gs[k].owner;
    PetscCall(PetscArraycpy(sbuf + REC * (x.sdisp[q] + fill[q]), gs[k].r, REC));
    fill[q]++;
  }
  PetscCall(HMExchangeForward(&x, MPI_DOUBLE, REC, sbuf, rbuf));
  *nrecv = x.nrecv;
  PetscCall(PetscMalloc1(*nrecv + 1, &gr));
  for (PetscMPIInt q = 0; q < P; q++)
    for (PetscInt k = x.rdisp[q]; k < x.rdisp[q + 1]; k++) {
      PetscCall(PetscArraycpy(gr[k].r, rbuf + REC * k, REC));
      gr[k].owner = q; /* source = owner of the atom */
    }
  qsort(gr, (size_t)*nrecv, sizeof(Ghost), CmpGhost);
  PetscCall(PetscFree2(sbuf, rbuf));
  PetscCall(PetscFree2(cnt, fill));
  PetscCall(HMExchangeDestroy(&x));
  *out = gr;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Grows the local arrays: owned atoms first, then the ghosts in (input index, image) order. */
static PetscErrorCode GhostInstall(HMDecomp dd, const Ghost *gs, PetscInt nrecv)
{
  const PetscInt no = dd->nowned, nl = no + nrecv;
  PetscInt      *gid, *pidx;
  int           *Z, *shift;
  double        *pos;

  PetscFunctionBegin;
  PetscCall(PetscMalloc5(nl + 1, &gid, nl + 1, &pidx, nl + 1, &Z, 3 * nl + 1, &shift, 3 * nl + 1, &pos));
  for (PetscInt i = 0; i < no; i++) {
    gid[i]  = dd->gid[i];
    pidx[i] = dd->pidx[i];
    Z[i]    = dd->Z[i];
    for (int a = 0; a < 3; a++) {
      shift[3 * i + a] = 0;
      pos[3 * i + a]   = dd->pos[3 * i + a];
    }
  }
  for (PetscInt k = 0; k < nrecv; k++) {
    const PetscInt j = no + k;
    gid[j]           = (PetscInt)gs[k].r[0];
    pidx[j]          = (PetscInt)gs[k].r[1];
    Z[j]             = (int)gs[k].r[2];
    for (int a = 0; a < 3; a++) {
      shift[3 * j + a] = (int)gs[k].r[4 + a];
      pos[3 * j + a]   = gs[k].r[7 + a];
    }
  }
  PetscCall(PetscFree(dd->gid));
  PetscCall(PetscFree(dd->pidx));
  PetscCall(PetscFree(dd->Z));
  PetscCall(PetscFree(dd->pos));
  dd->gid    = gid;
  dd->pidx   = pidx;
  dd->Z      = Z;
  dd->shift  = shift;
  dd->pos    = pos;
  dd->nlocal = nl;
  PetscCall(PetscMalloc2(nrecv + 1, &dd->ghost_rank, nrecv + 1, &dd->ghost_idx));
  for (PetscInt k = 0; k < nrecv; k++) {
    dd->ghost_rank[k] = gs[k].owner;
    dd->ghost_idx[k]  = (PetscInt)gs[k].r[3];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompSetUpGhosts_Private(HMDecomp dd, double R)
{
  GhostReach     G;
  PetscSegBuffer seg;
  Ghost         *gs, *gr;
  size_t         nsend;
  PetscInt       nrecv;

  PetscFunctionBegin;
  PetscCall(GhostReachSetUp(dd, R, &G));
  PetscCall(PetscSegBufferCreate(sizeof(Ghost), 1024, &seg));
  PetscCall(GhostCollect(dd, &G, R, seg));
  PetscCall(PetscSegBufferGetSize(seg, &nsend));
  PetscCall(PetscSegBufferExtractAlloc(seg, &gs));
  PetscCall(PetscSegBufferDestroy(&seg));
  PetscCall(GhostExchange(dd, gs, (PetscInt)nsend, &gr, &nrecv));
  PetscCall(PetscFree(gs));
  PetscCall(GhostInstall(dd, gr, nrecv));
  PetscCall(PetscFree(gr));
  PetscCall(PetscFree(G.boxes));
  PetscFunctionReturn(PETSC_SUCCESS);
}

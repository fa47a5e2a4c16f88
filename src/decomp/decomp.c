/* Domain decomposition: RCB/grid partition on rank 0, scatter, ghost atoms and periodic images within the
   largest cutoff, canonical local graphs, PetscSF halo exchanges, exact sums. All communication lives here. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <hipmace/decomp.h>
#include <hipmace/log.h>

struct _p_HMDecomp {
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  PetscInt    N, nowned, nlocal, rstart;
  PetscInt   *gid, *pidx;
  int        *Z, *shift;
  double     *pos, *mass;
  PetscBool   hascell, pbc[3];
  double      cell[9];
  HMGraph     g[2];
  PetscSF     sf[2];
  PetscInt    nghost[2];
  PetscInt   *ghost_rank, *ghost_idx; /* owner of each ghost and its index there */
  AO          ao;
};

#define REC 10 /* doubles per ghost record: gid, pidx, Z, owner index, shift[3], pos[3] */
/* periodic images of one atom scanned for ghosts; beyond this the input is certainly wrong */
#define HM_MAX_IMAGES 1e6

static inline void shift_vector(const double cell[9], const int n[3], double out[3])
{
  for (int a = 0; a < 3; a++) out[a] = ((double)n[0] * cell[a] + (double)n[1] * cell[3 + a]) + (double)n[2] * cell[6 + a];
}

/* ---------------------------------------------------------------- partition (rank 0) */
/* An atom with its position, so that the bisection streams through contiguous records instead of reading
   pos[] at random through an index (2*10^6 atoms are 48 MB of positions, far beyond the caches). */
typedef struct {
  double   x[3];
  PetscInt i;
} RcbAtom;

/* (coordinate, input index): a total order, so the k smallest atoms are one well-defined set */
static inline PetscBool rcb_less(const RcbAtom *a, const RcbAtom *b, int axis)
{
  return (PetscBool)(a->x[axis] < b->x[axis] || (a->x[axis] == b->x[axis] && a->i < b->i));
}

static inline void rcb_swap(RcbAtom *a, RcbAtom *b)
{
  const RcbAtom t = *a;
  *a              = *b;
  *b              = t;
}

/* which of ia, ib, ic holds the median of the three atoms */
static inline PetscInt rcb_median3(const RcbAtom *a, PetscInt ia, PetscInt ib, PetscInt ic, int axis)
{
  if (rcb_less(&a[ia], &a[ib], axis)) return rcb_less(&a[ib], &a[ic], axis) ? ib : (rcb_less(&a[ia], &a[ic], axis) ? ic : ia);
  return rcb_less(&a[ia], &a[ic], axis) ? ia : (rcb_less(&a[ib], &a[ic], axis) ? ic : ib);
}

static void rcb_sift(RcbAtom *a, PetscInt root, PetscInt n, int axis)
{
  for (PetscInt c; (c = 2 * root + 1) < n; root = c) {
    if (c + 1 < n && rcb_less(&a[c], &a[c + 1], axis)) c++;
    if (!rcb_less(&a[root], &a[c], axis)) return;
    rcb_swap(&a[root], &a[c]);
  }
}

static void rcb_heapsort(RcbAtom *a, PetscInt n, int axis)
{
  for (PetscInt r = n / 2 - 1; r >= 0; r--) rcb_sift(a, r, n, axis);
  for (PetscInt e = n - 1; e > 0; e--) {
    rcb_swap(&a[0], &a[e]);
    rcb_sift(a, 0, e, axis);
  }
}

/* Introselect: moves the k smallest of a[0, n) to a[0, k), 0 < k < n. Quickselect with a median-of-3
   (ninther above 1024 atoms) pivot is expected O(n); after 2 log2 n rounds without enough progress (inputs
   built against the pivot rule) the remaining range is heapsorted, so the worst case is O(n log n), never
   quadratic. Deterministic: the same input always gives the same order. */
static void rcb_select(RcbAtom *a, PetscInt n, PetscInt k, int axis)
{
  PetscInt lo = 0, hi = n, budget = 0;
  for (PetscInt m = n; m > 1; m >>= 1) budget += 2;
  while (hi - lo > 16) {
    const PetscInt m = hi - lo, mid = lo + m / 2;
    PetscInt       p, i, j;
    if (budget-- == 0) {
      rcb_heapsort(a + lo, m, axis);
      return;
    }
    if (m > 1024) {
      const PetscInt s = m / 8;
      p                = rcb_median3(a, rcb_median3(a, lo, lo + s, lo + 2 * s, axis), rcb_median3(a, mid - s, mid, mid + s, axis), rcb_median3(a, hi - 1 - 2 * s, hi - 1 - s, hi - 1, axis), axis);
    } else p = rcb_median3(a, lo, mid, hi - 1, axis);
    /* Hoare partition around the pivot parked at lo; no two atoms compare equal, so [lo, j) < pivot < (j, hi) */
    rcb_swap(&a[lo], &a[p]);
    i = lo;
    j = hi;
    for (;;) {
      while (++i < hi && rcb_less(&a[i], &a[lo], axis)) {}
      while (rcb_less(&a[lo], &a[--j], axis)) {} /* stops at the pivot at the latest */
      if (i >= j) break;
      rcb_swap(&a[i], &a[j]);
    }
    rcb_swap(&a[lo], &a[j]);
    if (j == k) return;
    if (j < k) lo = j + 1;
    else hi = j;
  }
  /* a few atoms left: insertion sort */
  for (PetscInt i = lo + 1; i < hi; i++)
    for (PetscInt j = i; j > lo && rcb_less(&a[j], &a[j - 1], axis); j--) rcb_swap(&a[j], &a[j - 1]);
}

/* Parts p0 .. p0 + np - 1 for the atoms a[0, n): cut across the longest side of their bounding box so that
   the first n nl / np atoms along it (ties by input index) go to the lower np / 2 parts. A selection rather
   than a sort: only which side of the cut an atom falls on matters, and the total order makes that side
   the same as a full sort would. Each level costs O(n) (expected), O(N log P) in all. */
static void rcb(RcbAtom *a, PetscInt n, int p0, int np, int *part)
{
  double lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  int    axis  = 0;
  if (np == 1 || n == 0) {
    for (PetscInt k = 0; k < n; k++) part[a[k].i] = p0;
    return;
  }
  for (PetscInt k = 0; k < n; k++)
    for (int d = 0; d < 3; d++) {
      lo[d] = PetscMin(lo[d], a[k].x[d]);
      hi[d] = PetscMax(hi[d], a[k].x[d]);
    }
  for (int d = 1; d < 3; d++)
    if (hi[d] - lo[d] > hi[axis] - lo[axis]) axis = d;
  {
    const int      nl  = np / 2;
    const PetscInt cut = (PetscInt)(((PetscInt64)n * nl) / np);
    if (cut > 0) rcb_select(a, n, cut, axis);
    rcb(a, cut, p0, nl, part);
    rcb(a + cut, n - cut, p0 + nl, np - nl, part);
  }
}

static PetscErrorCode partition_grid(PetscInt n, const double *pos, int size, int *part)
{
  int    dims[3] = {0, 0, 0};
  double lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  PetscFunctionBegin;
  PetscCallMPI(MPI_Dims_create(size, 3, dims));
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) {
      lo[a] = PetscMin(lo[a], pos[3 * i + a]);
      hi[a] = PetscMax(hi[a], pos[3 * i + a]);
    }
  for (PetscInt i = 0; i < n; i++) {
    int c[3];
    for (int a = 0; a < 3; a++) {
      const double w = hi[a] - lo[a];
      c[a]           = w > 0 ? (int)((pos[3 * i + a] - lo[a]) / w * dims[a]) : 0;
      c[a]           = PetscMin(PetscMax(c[a], 0), dims[a] - 1);
    }
    part[i] = (c[0] * dims[1] + c[1]) * dims[2] + c[2];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompPartition(PetscInt n, const double pos[], HMPartitionType type, PetscMPIInt nparts, int part[])
{
  PetscFunctionBegin;
  PetscCheck(n >= 0 && nparts >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMDecompPartition: %" PetscInt_FMT " atoms into %d parts", n, (int)nparts);
  if (type == HM_PARTITION_GRID) PetscCall(partition_grid(n, pos, nparts, part));
  else {
    RcbAtom *a;
    PetscCall(PetscMalloc1(n + 1, &a));
    for (PetscInt i = 0; i < n; i++) {
      for (int d = 0; d < 3; d++) a[i].x[d] = pos[3 * i + d];
      a[i].i = i;
    }
    rcb(a, n, 0, nparts, part);
    PetscCall(PetscFree(a));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- graphs */
typedef struct {
  PetscInt j;
  PetscInt gid;
  int      s[3];
  double   v[3], d2;
} Cand;

static int cmp_cand(const void *a, const void *b)
{
  const Cand *x = (const Cand *)a, *y = (const Cand *)b;
  if (x->gid != y->gid) return x->gid < y->gid ? -1 : 1;
  for (int k = 0; k < 3; k++)
    if (x->s[k] != y->s[k]) return x->s[k] < y->s[k] ? -1 : 1;
  return 0;
}

static PetscErrorCode build_graph(HMDecomp dd, double rc, HMGraph *g)
{
  const PetscInt nl = dd->nlocal, no = dd->nowned;
  double        *ip, lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL}, h;
  PetscInt       dims[3], ncell, *head, *next, cap = 64, cnt = 0, nbuf = 0;
  Cand          *row;
  Cand          *all = NULL;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(g, sizeof(*g)));
  g->n = no;
  PetscCall(PetscMalloc1(no + 1, &g->offset));
  g->offset[0] = 0;
  if (nl == 0 || no == 0) {
    for (PetscInt i = 0; i <= no; i++) g->offset[i] = 0;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  /* bin image positions; cells at least rc wide, so the 27 around an atom hold all its neighbours */
  PetscCall(PetscMalloc1(3 * nl, &ip));
  for (PetscInt j = 0; j < nl; j++) {
    double s[3];
    shift_vector(dd->cell, dd->shift + 3 * j, s);
    for (int a = 0; a < 3; a++) {
      ip[3 * j + a] = dd->pos[3 * j + a] + s[a];
      lo[a]         = PetscMin(lo[a], ip[3 * j + a]);
      hi[a]         = PetscMax(hi[a], ip[3 * j + a]);
    }
  }
  h = rc;
  for (;;) {
    /* in double: extents of far-apart atoms overflow any integer */
    double nc = 1;
    for (int a = 0; a < 3; a++) nc *= PetscFloorReal((hi[a] - lo[a]) / h) + 1;
    if (nc <= 4.0 * nl + 64) break;
    h *= 1.26; /* sparse systems: fewer, larger cells */
  }
  ncell = 1;
  for (int a = 0; a < 3; a++) {
    dims[a] = PetscMax(1, (PetscInt)((hi[a] - lo[a]) / h) + 1);
    ncell *= dims[a];
  }
  PetscCall(PetscMalloc2(ncell, &head, nl, &next));
  for (PetscInt c = 0; c < ncell; c++) head[c] = -1;
  for (PetscInt j = nl - 1; j >= 0; j--) {
    PetscInt c[3];
    for (int a = 0; a < 3; a++) c[a] = PetscMin(dims[a] - 1, (PetscInt)((ip[3 * j + a] - lo[a]) / h));
    const PetscInt cc = (c[0] * dims[1] + c[1]) * dims[2] + c[2];
    next[j]           = head[cc];
    head[cc]          = j;
  }
  PetscCall(PetscMalloc1(cap, &row));
  for (PetscInt i = 0; i < no; i++) {
    PetscInt c[3], nr = 0;
    for (int a = 0; a < 3; a++) c[a] = PetscMin(dims[a] - 1, (PetscInt)((ip[3 * i + a] - lo[a]) / h));
    for (PetscInt x = PetscMax(0, c[0] - 1); x <= PetscMin(dims[0] - 1, c[0] + 1); x++)
      for (PetscInt y = PetscMax(0, c[1] - 1); y <= PetscMin(dims[1] - 1, c[1] + 1); y++)
        for (PetscInt z = PetscMax(0, c[2] - 1); z <= PetscMin(dims[2] - 1, c[2] + 1); z++)
          for (PetscInt j = head[(x * dims[1] + y) * dims[2] + z]; j >= 0; j = next[j]) {
            double s[3], v[3], d2;
            if (j == i) continue;
            shift_vector(dd->cell, dd->shift + 3 * j, s);
            for (int a = 0; a < 3; a++) v[a] = (dd->pos[3 * j + a] - dd->pos[3 * i + a]) + s[a];
            d2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
            if (!(d2 < rc * rc)) continue;
            if (nr == cap) {
              Cand *tmp;
              PetscCall(PetscMalloc1(2 * cap, &tmp));
              PetscCall(PetscArraycpy(tmp, row, cap));
              PetscCall(PetscFree(row));
              row = tmp;
              cap *= 2;
            }
            row[nr].j   = j;
            row[nr].gid = dd->gid[j];
            for (int a = 0; a < 3; a++) {
              row[nr].s[a] = dd->shift[3 * j + a];
              row[nr].v[a] = v[a];
            }
            row[nr].d2 = d2;
            nr++;
          }
    qsort(row, (size_t)nr, sizeof(Cand), cmp_cand);
    if (cnt + nr > nbuf) {
      Cand    *tmp;
      PetscInt nn = PetscMax(2 * nbuf, cnt + nr + 1024);
      PetscCall(PetscMalloc1(nn, &tmp));
      if (cnt) PetscCall(PetscArraycpy(tmp, all, cnt));
      PetscCall(PetscFree(all));
      all  = tmp;
      nbuf = nn;
    }
    PetscCall(PetscArraycpy(all + cnt, row, nr));
    cnt += nr;
    g->offset[i + 1] = cnt;
  }
  g->nedges = cnt;
  /* separate allocations: HMGraphDestroy frees each array */
  PetscCall(PetscMalloc1(cnt + 1, &g->sender));
  PetscCall(PetscMalloc1(cnt + 1, &g->receiver));
  PetscCall(PetscMalloc1(3 * cnt + 1, &g->shift));
  PetscCall(PetscMalloc1(3 * cnt + 1, &g->vec));
  PetscCall(PetscMalloc1(cnt + 1, &g->len));
  for (PetscInt i = 0; i < no; i++)
    for (PetscInt e = g->offset[i]; e < g->offset[i + 1]; e++) {
      g->sender[e]   = i;
      g->receiver[e] = all[e].j;
      for (int a = 0; a < 3; a++) {
        g->shift[3 * e + a] = all[e].s[a];
        g->vec[3 * e + a]   = all[e].v[a];
      }
      g->len[e] = PetscSqrtReal(all[e].d2);
    }
  PetscCall(PetscFree(all));
  PetscCall(PetscFree(row));
  PetscCall(PetscFree2(head, next));
  PetscCall(PetscFree(ip));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- ghosts */
typedef struct {
  double r[REC];
  int    owner;
} Ghost;

static int cmp_ghost(const void *a, const void *b)
{
  const Ghost *x = (const Ghost *)a, *y = (const Ghost *)b;
  for (int k = 0; k < 7; k++) {
    if (k == 1 || k == 2 || k == 3) continue; /* gid, then shift */
    if (x->r[k] != y->r[k]) return x->r[k] < y->r[k] ? -1 : 1;
  }
  return 0;
}

static PetscErrorCode setup_ghosts(HMDecomp dd, double R)
{
  const PetscMPIInt P = dd->size;
  double            bl[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, bh[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  double            gl[3], gh[3], *boxes, Linv[9] = {0}, fmin[3] = {0}, fmax[3] = {0};
  PetscMPIInt      *scount, *rcount, *sdisp, *rdisp;
  double           *sbuf, *rbuf;
  PetscInt          nsend = 0, cap = 1024, nrecv = 0;
  Ghost            *gs;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < dd->nowned; i++)
    for (int a = 0; a < 3; a++) {
      bl[a] = PetscMin(bl[a], dd->pos[3 * i + a]);
      bh[a] = PetscMax(bh[a], dd->pos[3 * i + a]);
    }
  PetscCall(PetscMalloc1(6 * P, &boxes));
  {
    double mine[6] = {bl[0] - R, bl[1] - R, bl[2] - R, bh[0] + R, bh[1] + R, bh[2] + R};
    PetscCallMPI(MPI_Allgather(mine, 6, MPI_DOUBLE, boxes, 6, MPI_DOUBLE, dd->comm));
  }
  PetscCall(MPIU_Allreduce(bl, gl, 3, MPI_DOUBLE, MPI_MIN, dd->comm));
  PetscCall(MPIU_Allreduce(bh, gh, 3, MPI_DOUBLE, MPI_MAX, dd->comm));
  if (dd->hascell) {
    const double *L = dd->cell;
    const double  det = L[0] * (L[4] * L[8] - L[5] * L[7]) - L[1] * (L[3] * L[8] - L[5] * L[6]) + L[2] * (L[3] * L[7] - L[4] * L[6]);
    /* f = p L^-1 (lattice vectors are rows) */
    Linv[0] = (L[4] * L[8] - L[5] * L[7]) / det;
    Linv[1] = (L[2] * L[7] - L[1] * L[8]) / det;
    Linv[2] = (L[1] * L[5] - L[2] * L[4]) / det;
    Linv[3] = (L[5] * L[6] - L[3] * L[8]) / det;
    Linv[4] = (L[0] * L[8] - L[2] * L[6]) / det;
    Linv[5] = (L[2] * L[3] - L[0] * L[5]) / det;
    Linv[6] = (L[3] * L[7] - L[4] * L[6]) / det;
    Linv[7] = (L[1] * L[6] - L[0] * L[7]) / det;
    Linv[8] = (L[0] * L[4] - L[1] * L[3]) / det;
    for (int k = 0; k < 3; k++) {
      fmin[k] = PETSC_MAX_REAL;
      fmax[k] = -PETSC_MAX_REAL;
    }
    for (int c = 0; c < 8; c++) {
      const double p[3] = {(c & 1) ? gh[0] + R : gl[0] - R, (c & 2) ? gh[1] + R : gl[1] - R, (c & 4) ? gh[2] + R : gl[2] - R};
      for (int k = 0; k < 3; k++) {
        const double f = p[0] * Linv[k] + p[1] * Linv[3 + k] + p[2] * Linv[6 + k];
        fmin[k]        = PetscMin(fmin[k], f);
        fmax[k]        = PetscMax(fmax[k], f);
      }
    }
  }
  PetscCall(PetscMalloc1(cap, &gs));
  for (PetscInt i = 0; i < dd->nowned; i++) {
    int nlo[3] = {0, 0, 0}, nhi[3] = {0, 0, 0}, n[3];
    double nimg = 1;
    for (int k = 0; k < 3; k++)
      if (dd->hascell && dd->pbc[k]) {
        const double f = dd->pos[3 * i] * Linv[k] + dd->pos[3 * i + 1] * Linv[3 + k] + dd->pos[3 * i + 2] * Linv[6 + k];
        const double a = PetscCeilReal(fmin[k] - f), b = PetscFloorReal(fmax[k] - f);
        nimg *= PetscMax(0.0, b - a + 1);
        /* images to visit: a cell far thinner than the cutoff, or atoms far outside the cell */
        PetscCheck(nimg <= HM_MAX_IMAGES, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "atom %" PetscInt_FMT ": more than %g periodic images within %g A (cell too thin for the cutoff, or atoms lie far outside the cell; wrap them)", dd->gid[i] + 1, (double)HM_MAX_IMAGES, R);
        nlo[k] = (int)a;
        nhi[k] = (int)b;
      }
    for (n[0] = nlo[0]; n[0] <= nhi[0]; n[0]++)
      for (n[1] = nlo[1]; n[1] <= nhi[1]; n[1]++)
        for (n[2] = nlo[2]; n[2] <= nhi[2]; n[2]++) {
          double s[3], p[3];
          shift_vector(dd->cell, n, s);
          for (int a = 0; a < 3; a++) p[a] = dd->pos[3 * i + a] + s[a];
          for (PetscMPIInt q = 0; q < P; q++) {
            const double *b = boxes + 6 * q;
            if (q == dd->rank && n[0] == 0 && n[1] == 0 && n[2] == 0) continue;
            if (p[0] < b[0] || p[1] < b[1] || p[2] < b[2] || p[0] > b[3] || p[1] > b[4] || p[2] > b[5]) continue;
            if (nsend == cap) {
              Ghost *tmp;
              PetscCall(PetscMalloc1(2 * cap, &tmp));
              PetscCall(PetscArraycpy(tmp, gs, cap));
              PetscCall(PetscFree(gs));
              gs = tmp;
              cap *= 2;
            }
            gs[nsend].owner = q; /* destination here */
            gs[nsend].r[0]  = (double)dd->gid[i];
            gs[nsend].r[1]  = (double)dd->pidx[i];
            gs[nsend].r[2]  = (double)dd->Z[i];
            gs[nsend].r[3]  = (double)i;
            for (int a = 0; a < 3; a++) {
              gs[nsend].r[4 + a] = (double)n[a];
              gs[nsend].r[7 + a] = dd->pos[3 * i + a];
            }
            nsend++;
          }
        }
  }
  PetscCall(PetscCalloc4(P, &scount, P, &rcount, P + 1, &sdisp, P + 1, &rdisp));
  for (PetscInt k = 0; k < nsend; k++) scount[gs[k].owner] += REC;
  PetscCallMPI(MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, dd->comm));
  for (PetscMPIInt q = 0; q < P; q++) {
    sdisp[q + 1] = sdisp[q] + scount[q];
    rdisp[q + 1] = rdisp[q] + rcount[q];
  }
  PetscCall(PetscMalloc2(sdisp[P] + 1, &sbuf, rdisp[P] + 1, &rbuf));
  {
    PetscMPIInt *fill;
    PetscCall(PetscCalloc1(P, &fill));
    for (PetscInt k = 0; k < nsend; k++) {
      const PetscMPIInt q = gs[k].owner;
      PetscCall(PetscArraycpy(sbuf + sdisp[q] + fill[q], gs[k].r, REC));
      fill[q] += REC;
    }
    PetscCall(PetscFree(fill));
  }
  PetscCallMPI(MPI_Alltoallv(sbuf, scount, sdisp, MPI_DOUBLE, rbuf, rcount, rdisp, MPI_DOUBLE, dd->comm));
  PetscCall(PetscFree(gs));
  nrecv = rdisp[P] / REC;
  PetscCall(PetscMalloc1(nrecv + 1, &gs));
  for (PetscMPIInt q = 0; q < P; q++)
    for (PetscInt k = rdisp[q] / REC; k < rdisp[q + 1] / REC; k++) {
      PetscCall(PetscArraycpy(gs[k].r, rbuf + REC * k, REC));
      gs[k].owner = q; /* source = owner of the atom */
    }
  qsort(gs, (size_t)nrecv, sizeof(Ghost), cmp_ghost);
  /* grow the local arrays: owned atoms first, then ghosts in (input index, image) order */
  {
    const PetscInt no = dd->nowned, nl = no + nrecv;
    PetscInt      *gid, *pidx;
    int           *Z, *shift;
    double        *pos;
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
  }
  PetscCall(PetscMalloc2(nrecv + 1, &dd->ghost_rank, nrecv + 1, &dd->ghost_idx));
  for (PetscInt k = 0; k < nrecv; k++) {
    dd->ghost_rank[k] = gs[k].owner;
    dd->ghost_idx[k]  = (PetscInt)gs[k].r[3];
  }
  PetscCall(PetscFree(gs));
  PetscCall(PetscFree2(sbuf, rbuf));
  PetscCall(PetscFree4(scount, rcount, sdisp, rdisp));
  PetscCall(PetscFree(boxes));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One star forest per halo: leaves are the ghosts that some edge of the graph reads. */
static PetscErrorCode build_sfs(HMDecomp dd)
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

/* ---------------------------------------------------------------- create */
PetscErrorCode HMDecompCreate(MPI_Comm comm, HMSystem sys, HMPartitionType ptype, double rc_main, double rc_hess, HMDecomp *out)
{
  HMDecomp     dd;
  PetscMPIInt *cnt = NULL, *disp = NULL, *cnt3 = NULL, *disp3 = NULL, nmine;
  PetscInt    *sgid = NULL, *spidx = NULL;
  int         *sZ   = NULL;
  double      *spos = NULL, *smass = NULL, hdr[14];

  PetscFunctionBegin;
  PetscCall(HMLogInitialize());
  PetscCall(PetscLogStagePush(HMLog.partition));
  PetscCall(PetscNew(&dd));
  dd->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &dd->rank));
  PetscCallMPI(MPI_Comm_size(comm, &dd->size));
  if (dd->rank == 0) {
    PetscInt      n;
    const double *pos, *mass;
    const int    *Z;
    int          *part;
    PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMDecompCreate: rank 0 needs the system");
    PetscCall(HMSystemGetSize(sys, &n));
    PetscCall(HMSystemGetPositions(sys, &pos));
    PetscCall(HMSystemGetAtomicNumbers(sys, &Z));
    PetscCall(HMSystemGetMasses(sys, &mass));
    {
      PetscBool hc, pbc[3];
      double    cell[9];
      PetscCall(HMSystemGetCell(sys, &hc, cell, pbc));
      hdr[0] = (double)n;
      hdr[1] = hc;
      for (int k = 0; k < 9; k++) hdr[2 + k] = cell[k];
      for (int k = 0; k < 3; k++) hdr[11 + k] = pbc[k];
    }
    PetscCall(PetscMalloc1(n + 1, &part));
    PetscCall(HMDecompPartition(n, pos, ptype, dd->size, part));
    /* partition order: by rank, then by input index */
    PetscCall(PetscCalloc4(dd->size, &cnt, dd->size + 1, &disp, dd->size, &cnt3, dd->size + 1, &disp3));
    for (PetscInt i = 0; i < n; i++) cnt[part[i]]++;
    for (PetscMPIInt q = 0; q < dd->size; q++) {
      disp[q + 1]  = disp[q] + cnt[q];
      cnt3[q]      = 3 * cnt[q];
      disp3[q + 1] = 3 * disp[q + 1];
    }
    PetscCall(PetscMalloc5(n + 1, &sgid, n + 1, &spidx, n + 1, &sZ, 3 * n + 1, &spos, n + 1, &smass));
    {
      PetscMPIInt *fill;
      PetscCall(PetscCalloc1(dd->size, &fill));
      for (PetscInt i = 0; i < n; i++) {
        const PetscInt k = disp[part[i]] + fill[part[i]]++;
        sgid[k]          = i;
        spidx[k]         = k;
        sZ[k]            = Z[i];
        smass[k]         = mass[i];
        for (int a = 0; a < 3; a++) spos[3 * k + a] = pos[3 * i + a];
      }
      PetscCall(PetscFree(fill));
    }
    PetscCall(PetscFree(part));
  }
  PetscCallMPI(MPI_Bcast(hdr, 14, MPI_DOUBLE, 0, comm));
  dd->N       = (PetscInt)hdr[0];
  dd->hascell = hdr[1] != 0;
  for (int k = 0; k < 9; k++) dd->cell[k] = dd->hascell ? hdr[2 + k] : 0.0;
  for (int k = 0; k < 3; k++) dd->pbc[k] = dd->hascell && hdr[11 + k] != 0;
  PetscCallMPI(MPI_Scatter(cnt, 1, MPI_INT, &nmine, 1, MPI_INT, 0, comm));
  dd->nowned = dd->nlocal = nmine;
  PetscCall(PetscMalloc1(nmine + 1, &dd->gid));
  PetscCall(PetscMalloc1(nmine + 1, &dd->pidx));
  PetscCall(PetscMalloc1(nmine + 1, &dd->Z));
  PetscCall(PetscMalloc1(3 * nmine + 1, &dd->pos));
  PetscCall(PetscMalloc1(nmine + 1, &dd->mass));
  PetscCallMPI(MPI_Scatterv(sgid, cnt, disp, MPIU_INT, dd->gid, nmine, MPIU_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(spidx, cnt, disp, MPIU_INT, dd->pidx, nmine, MPIU_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(sZ, cnt, disp, MPI_INT, dd->Z, nmine, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Scatterv(smass, cnt, disp, MPI_DOUBLE, dd->mass, nmine, MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Scatterv(spos, cnt3, disp3, MPI_DOUBLE, dd->pos, 3 * nmine, MPI_DOUBLE, 0, comm));
  if (dd->rank == 0) {
    PetscCall(PetscFree5(sgid, spidx, sZ, spos, smass));
    PetscCall(PetscFree4(cnt, disp, cnt3, disp3));
  }
  dd->rstart = 0;
  PetscCallMPI(MPI_Exscan(&dd->nowned, &dd->rstart, 1, MPIU_INT, MPI_SUM, comm));
  if (dd->rank == 0) dd->rstart = 0;
  PetscCall(PetscLogStagePop());
  PetscCall(PetscLogStagePush(HMLog.ghosts));
  PetscCall(setup_ghosts(dd, PetscMax(rc_main, rc_hess)));
  PetscCall(PetscLogStagePop());
  PetscCall(PetscLogStagePush(HMLog.neighbours));
  PetscCall(build_graph(dd, rc_main, &dd->g[HM_HALO_NEAR]));
  PetscCall(build_graph(dd, rc_hess, &dd->g[HM_HALO_FAR]));
  PetscCall(build_sfs(dd));
  PetscCall(PetscLogStagePop());
  {
    PetscInt *app, *pet;
    PetscCall(PetscMalloc2(dd->nowned + 1, &app, dd->nowned + 1, &pet));
    for (PetscInt i = 0; i < dd->nowned; i++) {
      app[i] = dd->gid[i];
      pet[i] = dd->pidx[i];
    }
    PetscCall(AOCreateBasic(comm, dd->nowned, app, pet, &dd->ao));
    PetscCall(PetscFree2(app, pet));
  }
  *out = dd;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompDestroy(HMDecomp *p)
{
  HMDecomp dd = *p;
  PetscFunctionBegin;
  if (!dd) PetscFunctionReturn(PETSC_SUCCESS);
  for (int t = 0; t < 2; t++) {
    PetscCall(HMGraphDestroy(&dd->g[t]));
    PetscCall(PetscSFDestroy(&dd->sf[t]));
  }
  PetscCall(AODestroy(&dd->ao));
  PetscCall(PetscFree2(dd->ghost_rank, dd->ghost_idx));
  PetscCall(PetscFree5(dd->gid, dd->pidx, dd->Z, dd->shift, dd->pos));
  PetscCall(PetscFree(dd->mass));
  PetscCall(PetscFree(dd));
  *p = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetComm(HMDecomp dd, MPI_Comm *c)
{
  PetscFunctionBegin;
  *c = dd->comm;
  PetscFunctionReturn(PETSC_SUCCESS);
}

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

PetscErrorCode HMDecompGetMasses(HMDecomp dd, const double **m)
{
  PetscFunctionBegin;
  *m = dd->mass;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetGraphs(HMDecomp dd, const HMGraph **g, const HMGraph **gh)
{
  PetscFunctionBegin;
  if (g) *g = &dd->g[HM_HALO_NEAR];
  if (gh) *gh = &dd->g[HM_HALO_FAR];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetHaloSize(HMDecomp dd, HMHaloType t, PetscInt *ng)
{
  PetscFunctionBegin;
  *ng = dd->nghost[t];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetAO(HMDecomp dd, AO *ao)
{
  PetscFunctionBegin;
  *ao = dd->ao;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompGetCell(HMDecomp dd, PetscBool *hascell, double cell[9], PetscBool pbc[3])
{
  PetscFunctionBegin;
  if (hascell) *hascell = dd->hascell;
  if (cell)
    for (int k = 0; k < 9; k++) cell[k] = dd->cell[k];
  if (pbc)
    for (int k = 0; k < 3; k++) pbc[k] = dd->pbc[k];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompHaloExchange(HMDecomp dd, HMHaloType t, PetscInt width, double data[])
{
  MPI_Datatype unit;
  PetscFunctionBegin;
  if (width <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Type_contiguous((PetscMPIInt)width, MPI_DOUBLE, &unit));
  PetscCallMPI(MPI_Type_commit(&unit));
  PetscCall(PetscLogEventBegin(HMLog.halo, 0, 0, 0, 0));
  PetscCall(PetscSFBcastBegin(dd->sf[t], unit, data, data, MPI_REPLACE));
  PetscCall(PetscSFBcastEnd(dd->sf[t], unit, data, data, MPI_REPLACE));
  PetscCall(PetscLogEventEnd(HMLog.halo, 0, 0, 0, 0));
  PetscCallMPI(MPI_Type_free(&unit));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- exact sums */
/* A finite double is +-m 2^(p - 1074) with integers 0 <= m < 2^53 and 0 <= p <= 2045: an integer number of
   units 2^-1074, below 2^2098 of them. Sums are kept as such integers, in base-2^32 digits held in int64
   words: each value adds less than 2^33 to a digit, so 2^28 values fit between carry passes, and after a
   pass every digit but the top one is in [0, 2^32), so the all-reduce can add 2^31 ranks' digits without
   overflow. Integer addition is exact and associative: nothing depends on the order. 68 digits (2^2176)
   hold the sum of 2^63 values below 2^2098 units. */
#define HM_SUMX_DIGITS 68
#define HM_SUMX_WORDS  (HM_SUMX_DIGITS + 3) /* + counts of NaN, +Inf, -Inf */
#define HM_SUMX_BATCH  ((PetscInt)1 << 28)
_Static_assert(HM_SUMX_WORDS == HM_DECOMP_SUM_EXACT_WORDS, "HM_DECOMP_SUM_EXACT_WORDS (decomp.h) must match the accumulator");

static inline void sumx_add(PetscInt64 d[], double x)
{
  uint64_t b, m;
  int      ef, p;
  memcpy(&b, &x, sizeof(b));
  ef = (int)((b >> 52) & 0x7ff);
  m  = b & (((uint64_t)1 << 52) - 1);
  if (ef == 0x7ff) {
    d[HM_SUMX_DIGITS + (m ? 0 : (b >> 63) ? 2 : 1)]++;
    return;
  }
  if (ef) m |= (uint64_t)1 << 52; /* normal: implicit bit; the exponent of the lowest bit is ef - 1075 */
  p = ef ? ef - 1 : 0;
  {
    const int        k = p >> 5, s = p & 31;
    const uint64_t   lo = (m & 0xffffffffu) << s, hi = (m >> 32) << s; /* < 2^63 and < 2^52 */
    const PetscInt64 a0 = (PetscInt64)(lo & 0xffffffffu), a1 = (PetscInt64)((lo >> 32) + (hi & 0xffffffffu)), a2 = (PetscInt64)(hi >> 32);
    if (b >> 63) {
      d[k] -= a0;
      d[k + 1] -= a1;
      d[k + 2] -= a2;
    } else {
      d[k] += a0;
      d[k + 1] += a1;
      d[k + 2] += a2;
    }
  }
}

/* Carries: digits 0..D-2 into [0, 2^32), the sign left in the top digit. */
static inline void sumx_carry(PetscInt64 d[])
{
  for (int k = 0; k < HM_SUMX_DIGITS - 1; k++) {
    /* low 32 bits of the two's complement = d mod 2^32; the rest is an exact multiple of 2^32 (no right
       shift of a negative number, whose result C leaves to the implementation) */
    const PetscInt64 lo = (PetscInt64)((uint64_t)d[k] & 0xffffffffu);
    d[k + 1] += (d[k] - lo) / ((PetscInt64)1 << 32);
    d[k]      = lo;
  }
}

/* The double nearest to the exact sum held in d (ties to even), built from its bits rather than by libm
   arithmetic, so that the rounding is the only one. d is destroyed. */
static double sumx_round(PetscInt64 d[])
{
  const PetscInt64 *cnt = d + HM_SUMX_DIGITS;
  uint64_t          bits, mant, shift = 0;
  PetscBool         neg = PETSC_FALSE;
  int               h, t = 0;
  double            x;

  if (cnt[0] || (cnt[1] && cnt[2])) return (double)NAN;
  if (cnt[1]) return (double)INFINITY;
  if (cnt[2]) return -(double)INFINITY;
  sumx_carry(d);
  if (d[HM_SUMX_DIGITS - 1] < 0) {
    neg = PETSC_TRUE;
    for (int k = 0; k < HM_SUMX_DIGITS; k++) d[k] = -d[k];
    sumx_carry(d);
  }
  for (h = HM_SUMX_DIGITS - 1; h >= 0 && !d[h]; h--) {}
  if (h < 0) return 0.0;
  while (t < 64 && ((uint64_t)d[h] >> t)) t++; /* bit length of the leading digit */
  if (32 * h + t <= 53) mant = (uint64_t)d[0] | (h ? (uint64_t)d[1] << 32 : 0); /* below 2^53 units: exact */
  else {
    /* the 64 bits from the leading one down, then round to 53 of them; everything lower is sticky */
    const uint64_t d1 = (uint64_t)d[h - 1], d2 = h >= 2 ? (uint64_t)d[h - 2] : 0;
    const uint64_t w  = ((uint64_t)d[h] << (64 - t)) | (d1 << (32 - t)) | (d2 >> t);
    PetscBool      sticky = (PetscBool)((w & 0x3ff) || (d2 & (((uint64_t)1 << t) - 1)));
    for (int k = 0; k < h - 2 && !sticky; k++) sticky = (PetscBool)(d[k] != 0);
    shift = (uint64_t)(32 * h + t - 53);
    mant  = w >> 11;
    if (((w >> 10) & 1) && (sticky || (mant & 1))) mant++;
  }
  /* exponent field shift + 1 and the implicit bit of mant add up; a carry to 2^53 moves to the next binade,
     and below 2^52 (shift 0) this is the subnormal encoding */
  bits = (shift << 52) + mant;
  if (bits >= (uint64_t)0x7ff << 52) bits = (uint64_t)0x7ff << 52; /* beyond DBL_MAX rounds to Inf */
  if (neg) bits |= (uint64_t)1 << 63;
  memcpy(&x, &bits, sizeof(x));
  return x;
}

PetscErrorCode HMDecompSumExact(HMDecomp dd, PetscInt nv, const double owned[], double sums[])
{
  PetscInt64 *acc;
  PetscFunctionBegin;
  PetscCheck(nv >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMDecompSumExact: %" PetscInt_FMT " columns", nv);
  if (nv == 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscCalloc1(nv * HM_SUMX_WORDS, &acc));
  for (PetscInt i0 = 0, i1; i0 < dd->nowned; i0 = i1) {
    i1 = dd->nowned - i0 > HM_SUMX_BATCH ? i0 + HM_SUMX_BATCH : dd->nowned;
    for (PetscInt i = i0; i < i1; i++)
      for (PetscInt c = 0; c < nv; c++) sumx_add(acc + c * HM_SUMX_WORDS, owned[i * nv + c]);
    for (PetscInt c = 0; c < nv; c++) sumx_carry(acc + c * HM_SUMX_WORDS);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, acc, (PetscMPIInt)(nv * HM_SUMX_WORDS), MPIU_INT64, MPI_SUM, dd->comm));
  for (PetscInt c = 0; c < nv; c++) sums[c] = sumx_round(acc + c * HM_SUMX_WORDS);
  PetscCall(PetscFree(acc));
  PetscFunctionReturn(PETSC_SUCCESS);
}

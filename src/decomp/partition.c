/* Partition of the atoms over the ranks (computed on rank 0): recursive coordinate bisection or a regular grid. */
#include <stdint.h>
#include <string.h>
#include <hipmace/decomp.h>

/* An atom with its position, so that the bisection streams through contiguous records instead of reading
   pos[] at random through an index (2*10^6 atoms are 48 MB of positions, far beyond the caches). */
typedef struct {
  double   x[3];
  PetscInt i;
} RcbAtom;

/* (coordinate, input index): a total order, so the k smallest atoms are one well-defined set */
static inline PetscBool RcbLess(const RcbAtom *a, const RcbAtom *b, int axis)
{
  return (PetscBool)(a->x[axis] < b->x[axis] || (a->x[axis] == b->x[axis] && a->i < b->i));
}

static inline void RcbSwap(RcbAtom *a, RcbAtom *b)
{
  const RcbAtom t = *a;
  *a              = *b;
  *b              = t;
}

/* which of ia, ib, ic holds the median of the three atoms */
static inline PetscInt RcbMedian3(const RcbAtom *a, PetscInt ia, PetscInt ib, PetscInt ic, int axis)
{
  if (RcbLess(&a[ia], &a[ib], axis)) return RcbLess(&a[ib], &a[ic], axis) ? ib : (RcbLess(&a[ia], &a[ic], axis) ? ic : ia);
  return RcbLess(&a[ia], &a[ic], axis) ? ia : (RcbLess(&a[ib], &a[ic], axis) ? ic : ib);
}

static void RcbSift(RcbAtom *a, PetscInt root, PetscInt n, int axis)
{
  for (PetscInt c; (c = 2 * root + 1) < n; root = c) {
    if (c + 1 < n && RcbLess(&a[c], &a[c + 1], axis)) c++;
    if (!RcbLess(&a[root], &a[c], axis)) return;
    RcbSwap(&a[root], &a[c]);
  }
}

static void RcbHeapsort(RcbAtom *a, PetscInt n, int axis)
{
  for (PetscInt r = n / 2 - 1; r >= 0; r--) RcbSift(a, r, n, axis);
  for (PetscInt e = n - 1; e > 0; e--) {
    RcbSwap(&a[0], &a[e]);
    RcbSift(a, 0, e, axis);
  }
}

/* Introselect: moves the k smallest of a[0, n) to a[0, k), 0 < k < n. Quickselect with a median-of-3
   (ninther above 1024 atoms) pivot is expected O(n); after 2 log2 n rounds without enough progress (inputs
   built against the pivot rule) the remaining range is heapsorted, so the worst case is O(n log n), never
   quadratic. Deterministic: the same input always gives the same order. */
static void RcbSelect(RcbAtom *a, PetscInt n, PetscInt k, int axis)
{
  PetscInt lo = 0, hi = n, budget = 0;
  for (PetscInt m = n; m > 1; m >>= 1) budget += 2;
  while (hi - lo > 16) {
    const PetscInt m = hi - lo, mid = lo + m / 2;
    PetscInt       p, i, j;
    if (budget-- == 0) {
      RcbHeapsort(a + lo, m, axis);
      return;
    }
    if (m > 1024) {
      const PetscInt s = m / 8;
      p                = RcbMedian3(a, RcbMedian3(a, lo, lo + s, lo + 2 * s, axis), RcbMedian3(a, mid - s, mid, mid + s, axis), RcbMedian3(a, hi - 1 - 2 * s, hi - 1 - s, hi - 1, axis), axis);
    } else p = RcbMedian3(a, lo, mid, hi - 1, axis);
    /* Hoare partition around the pivot parked at lo; no two atoms compare equal, so [lo, j) < pivot < (j, hi) */
    RcbSwap(&a[lo], &a[p]);
    i = lo;
    j = hi;
    for (;;) {
      while (++i < hi && RcbLess(&a[i], &a[lo], axis)) {}
      while (RcbLess(&a[lo], &a[--j], axis)) {} /* stops at the pivot at the latest */
      if (i >= j) break;
      RcbSwap(&a[i], &a[j]);
    }
    RcbSwap(&a[lo], &a[j]);
    if (j == k) return;
    if (j < k) lo = j + 1;
    else hi = j;
  }
  /* a few atoms left: insertion sort */
  for (PetscInt i = lo + 1; i < hi; i++)
    for (PetscInt j = i; j > lo && RcbLess(&a[j], &a[j - 1], axis); j--) RcbSwap(&a[j], &a[j - 1]);
}

/* Parts p0 .. p0 + np - 1 for the atoms a[0, n): cut across the longest side of their bounding box so that
   the first n nl / np atoms along it (ties by input index) go to the lower np / 2 parts. A selection rather
   than a sort: only which side of the cut an atom falls on matters, and the total order makes that side
   the same as a full sort would. Each level costs O(n) (expected), O(N log P) in all. */
static void Rcb(RcbAtom *a, PetscInt n, int p0, int np, int *part)
{
  double lo[3] = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL}, hi[3] = {-PETSC_MAX_REAL, -PETSC_MAX_REAL, -PETSC_MAX_REAL};
  int    axis = 0;
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
    if (cut > 0) RcbSelect(a, n, cut, axis);
    Rcb(a, cut, p0, nl, part);
    Rcb(a + cut, n - cut, p0 + nl, np - nl, part);
  }
}

static PetscErrorCode PartitionGrid(PetscInt n, const double *pos, int size, int *part)
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
  if (type == HM_PARTITION_GRID) PetscCall(PartitionGrid(n, pos, nparts, part));
  else {
    RcbAtom *a;
    PetscCall(PetscMalloc1(n + 1, &a));
    for (PetscInt i = 0; i < n; i++) {
      for (int d = 0; d < 3; d++) a[i].x[d] = pos[3 * i + d];
      a[i].i = i;
    }
    Rcb(a, n, 0, nparts, part);
    PetscCall(PetscFree(a));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------------------------------------------------------------- parallel partition */
/* The serial RCB's order (coordinate, then input index) as unsigned integers: doubles map to their bits
   with the sign folded so that unsigned order is numeric order (-0 taken as +0, which compares equal). */
static inline uint64_t OrderedBits(double x)
{
  uint64_t u;

  if (x == 0) x = 0.0;
  memcpy(&u, &x, sizeof(u));
  return (u >> 63) ? ~u : (u | ((uint64_t)1 << 63));
}

/* One level of the bisection for all segments (parts p0 .. p0 + np - 1) at once. */
typedef struct {
  int        p0, np;
  PetscInt64 n, cut;
  int        axis;
  uint64_t   tc, tg; /* the cut'th atom in (coordinate, index) order: atoms before it go to the lower parts */
  PetscInt64 k;      /* rank still looked for among the candidates */
} Segment;

/* Radix selection, four bits (16 digits) per round and one reduction per round for all segments: the key of
   the atom of rank cut in the serial order, built from the most significant digit; candidates are the
   atoms whose key agrees with it so far. 16 rounds for the coordinate, then the digits of the largest index
   for ties. */
#define RCB_DIGIT_BITS 4
#define RCB_DIGITS     (1 << RCB_DIGIT_BITS)
static PetscErrorCode SelectCuts(MPI_Comm comm, PetscInt n, const PetscInt gid[], const double pos[], const int seg[], Segment *S, int nseg, int gidbits)
{
  PetscInt   *cand, nc = 0;
  PetscInt64 *cnt;
  uint64_t   *key;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(n + 1, &cand, (size_t)nseg * RCB_DIGITS + 1, &cnt, n + 1, &key));
  for (int s = 0; s < nseg; s++) {
    S[s].tc = S[s].tg = 0;
    S[s].k            = S[s].cut;
  }
  for (PetscInt i = 0; i < n; i++)
    if (S[seg[i]].np > 1 && S[seg[i]].cut > 0) {
      cand[nc++] = i;
      key[i]     = OrderedBits(pos[3 * i + S[seg[i]].axis]);
    }
  for (int phase = 0; phase < 2; phase++) {
    const int top = phase ? ((gidbits + RCB_DIGIT_BITS - 1) / RCB_DIGIT_BITS) * RCB_DIGIT_BITS : 64;

    if (phase)
      for (PetscInt c = 0; c < nc; c++) key[cand[c]] = (uint64_t)gid[cand[c]];
    for (int b = top - RCB_DIGIT_BITS; b >= 0; b -= RCB_DIGIT_BITS) {
      PetscInt m = 0;

      PetscCall(PetscArrayzero(cnt, (size_t)nseg * RCB_DIGITS));
      for (PetscInt c = 0; c < nc; c++) cnt[(size_t)seg[cand[c]] * RCB_DIGITS + ((key[cand[c]] >> b) & (RCB_DIGITS - 1))]++;
      PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, cnt, nseg * RCB_DIGITS, MPIU_INT64, MPI_SUM, comm));
      for (int s = 0; s < nseg; s++) {
        uint64_t *t = phase ? &S[s].tg : &S[s].tc;
        int       d = 0;

        if (S[s].np < 2 || S[s].cut == 0) continue;
        while (d < RCB_DIGITS - 1 && S[s].k >= cnt[(size_t)s * RCB_DIGITS + d]) S[s].k -= cnt[(size_t)s * RCB_DIGITS + d++];
        *t |= (uint64_t)d << b;
      }
      for (PetscInt c = 0; c < nc; c++) {
        const PetscInt i  = cand[c];
        const Segment *sg = &S[seg[i]];

        if (((key[i] >> b) & (RCB_DIGITS - 1)) == (((phase ? sg->tg : sg->tc) >> b) & (RCB_DIGITS - 1))) cand[m++] = i;
      }
      nc = m;
    }
  }
  PetscCall(PetscFree3(cand, cnt, key));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode PartitionRcbDistributed(MPI_Comm comm, PetscInt n, const PetscInt gid[], const double pos[], PetscMPIInt nparts, int part[])
{
  Segment   *S;
  int       *seg, nseg = 1, gidbits = 0;
  PetscInt64 maxgid = 0;
  double    *box;
  PetscBool  more = PETSC_TRUE;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n; i++) maxgid = PetscMax(maxgid, (PetscInt64)gid[i]);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &maxgid, 1, MPIU_INT64, MPI_MAX, comm));
  while (gidbits < 63 && (maxgid >> gidbits)) gidbits++;
  PetscCall(PetscMalloc3(nparts, &S, n + 1, &seg, 6 * (size_t)nparts, &box));
  S[0].p0 = 0;
  S[0].np = nparts;
  for (PetscInt i = 0; i < n; i++) seg[i] = 0;
  while (more) {
    PetscInt64 *cnt;

    /* sizes and bounding boxes of the segments */
    PetscCall(PetscCalloc1(nseg, &cnt));
    for (int s = 0; s < nseg; s++)
      for (int d = 0; d < 3; d++) {
        box[6 * s + d]     = PETSC_MAX_REAL; /* lo */
        box[6 * s + 3 + d] = PETSC_MAX_REAL; /* -hi */
      }
    for (PetscInt i = 0; i < n; i++) {
      cnt[seg[i]]++;
      for (int d = 0; d < 3; d++) {
        box[6 * seg[i] + d]     = PetscMin(box[6 * seg[i] + d], pos[3 * i + d]);
        box[6 * seg[i] + 3 + d] = PetscMin(box[6 * seg[i] + 3 + d], -pos[3 * i + d]);
      }
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, cnt, nseg, MPIU_INT64, MPI_SUM, comm));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, box, 6 * nseg, MPI_DOUBLE, MPI_MIN, comm));
    for (int s = 0; s < nseg; s++) {
      double lo[3], hi[3];
      int    axis = 0;

      S[s].n   = cnt[s];
      S[s].cut = 0;
      for (int d = 0; d < 3; d++) {
        lo[d] = box[6 * s + d];
        hi[d] = -box[6 * s + 3 + d];
      }
      for (int d = 1; d < 3; d++)
        if (hi[d] - lo[d] > hi[axis] - lo[axis]) axis = d;
      S[s].axis = axis;
      if (S[s].np > 1) S[s].cut = (S[s].n * (S[s].np / 2)) / S[s].np;
    }
    PetscCall(PetscFree(cnt));
    PetscCall(SelectCuts(comm, n, gid, pos, seg, S, nseg, gidbits));
    /* split: segment s becomes new segments lo[s] and lo[s] + 1 (or stays one when it is a single part) */
    {
      int *first, m = 0;

      PetscCall(PetscMalloc1(nseg, &first));
      for (int s = 0; s < nseg; s++) {
        first[s] = m;
        m += S[s].np > 1 ? 2 : 1;
      }
      for (PetscInt i = 0; i < n; i++) {
        const Segment *sg = &S[seg[i]];

        if (sg->np > 1) {
          const uint64_t  key  = OrderedBits(pos[3 * i + sg->axis]);
          const PetscBool left = (PetscBool)(sg->cut > 0 && (key < sg->tc || (key == sg->tc && (uint64_t)gid[i] < sg->tg)));

          seg[i] = first[seg[i]] + (left ? 0 : 1);
        } else seg[i] = first[seg[i]];
      }
      more = PETSC_FALSE;
      for (int s = nseg - 1; s >= 0; s--) {
        const Segment o = S[s];

        if (o.np > 1) {
          S[first[s]].p0     = o.p0;
          S[first[s]].np     = o.np / 2;
          S[first[s] + 1].p0 = o.p0 + o.np / 2;
          S[first[s] + 1].np = o.np - o.np / 2;
          more               = (PetscBool)(more || S[first[s]].np > 1 || S[first[s] + 1].np > 1);
        } else S[first[s]] = o;
      }
      nseg = m;
      PetscCall(PetscFree(first));
    }
  }
  for (PetscInt i = 0; i < n; i++) part[i] = S[seg[i]].p0;
  PetscCall(PetscFree3(S, seg, box));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode PartitionGridDistributed(MPI_Comm comm, PetscInt n, const double *pos, int size, int *part)
{
  int    dims[3] = {0, 0, 0};
  double b[6]    = {PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL, PETSC_MAX_REAL};

  PetscFunctionBegin;
  PetscCallMPI(MPI_Dims_create(size, 3, dims));
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) {
      b[a]     = PetscMin(b[a], pos[3 * i + a]);
      b[3 + a] = PetscMin(b[3 + a], -pos[3 * i + a]);
    }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, b, 6, MPI_DOUBLE, MPI_MIN, comm));
  for (PetscInt i = 0; i < n; i++) {
    int c[3];
    for (int a = 0; a < 3; a++) {
      const double lo = b[a], hi = -b[3 + a], w = hi - lo;
      c[a] = w > 0 ? (int)((pos[3 * i + a] - lo) / w * dims[a]) : 0;
      c[a] = PetscMin(PetscMax(c[a], 0), dims[a] - 1);
    }
    part[i] = (c[0] * dims[1] + c[1]) * dims[2] + c[2];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMDecompPartitionDistributed(MPI_Comm comm, PetscInt n, const PetscInt gid[], const double pos[], HMPartitionType type, PetscMPIInt nparts, int part[])
{
  PetscFunctionBegin;
  PetscCheck(n >= 0 && nparts >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMDecompPartitionDistributed: %" PetscInt_FMT " atoms into %d parts", n, (int)nparts);
  if (type == HM_PARTITION_GRID) PetscCall(PartitionGridDistributed(comm, n, pos, nparts, part));
  else PetscCall(PartitionRcbDistributed(comm, n, gid, pos, nparts, part));
  PetscFunctionReturn(PETSC_SUCCESS);
}

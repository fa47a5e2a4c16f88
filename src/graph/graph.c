/* Neighbour lists by cell lists in fractional coordinates: open, periodic or mixed boundaries. */
#include <math.h>
#include <string.h>

#include <hipmace/graph.h>

/* PETSc 3.18 predates PETSC_SUCCESS; the house style uses it. */
#ifndef PETSC_SUCCESS
  #define PETSC_SUCCESS 0
#endif

/* Upper bound on bins, so sparse systems (atoms kilometres apart) cannot blow up the grid. */
#define GRAPH_MAX_BINS 10000000
/* Upper bound on neighbour-bin offsets per bin: beyond this the cell is absurdly thin for the cutoff. */
#define GRAPH_MAX_STENCIL 100000000LL
/* Periodic image indices must stay far from INT_MAX after adding bin images. */
#define GRAPH_MAX_IMAGE 536870912.0

typedef struct {
  PetscInt        n;
  const double   *pos;
  double          cell[9]; /* lattice rows; only read for nonzero shifts */
  PetscBool       per[3];
  int             nb[3]; /* bins per axis */
  int             m[3];  /* neighbour bins searched on each side */
  PetscInt        nbins;
  PetscInt       *binstart; /* [nbins+1] */
  PetscInt       *atoms;    /* atoms grouped by bin, ascending inside a bin */
  int            *img;      /* [n][3] pos = wrapped position + img . cell */
  double         *frac;     /* [n][3] scratch: (wrapped) fractional coordinates */
  PetscInt       *abin;     /* [n] scratch: bin of each atom */
  PetscInt64     *deg;      /* [n] scratch: edges per sender (first pass) */
  PetscInt       *cursor;   /* [n] scratch: next free edge slot per sender (second pass) */
} Grid;

typedef struct {
  PetscInt r;
  int      s[3];
  PetscInt e; /* index in the sender's unsorted segment */
} EdgeKey;

static inline PetscBool KeyLess(const EdgeKey *a, const EdgeKey *b)
{
  if (a->r != b->r) return (PetscBool)(a->r < b->r);
  if (a->s[0] != b->s[0]) return (PetscBool)(a->s[0] < b->s[0]);
  if (a->s[1] != b->s[1]) return (PetscBool)(a->s[1] < b->s[1]);
  return (PetscBool)(a->s[2] < b->s[2]);
}

/* Insertion-sorted runs, then bottom-up merges (keys are distinct, so stability is moot). */
static void SortKeys(EdgeKey *a, EdgeKey *tmp, PetscInt64 n)
{
  const PetscInt64 run = 16;
  EdgeKey         *src = a, *dst = tmp;

  for (PetscInt64 lo = 0; lo < n; lo += run) {
    const PetscInt64 hi = PetscMin(lo + run, n);

    for (PetscInt64 i = lo + 1; i < hi; i++) {
      EdgeKey    k = a[i];
      PetscInt64 j = i - 1;

      while (j >= lo && KeyLess(&k, &a[j])) {
        a[j + 1] = a[j];
        j--;
      }
      a[j + 1] = k;
    }
  }
  for (PetscInt64 w = run; w < n; w *= 2) {
    for (PetscInt64 lo = 0; lo < n; lo += 2 * w) {
      const PetscInt64 mid = PetscMin(lo + w, n), hi = PetscMin(lo + 2 * w, n);
      PetscInt64       i = lo, j = mid, k = lo;

      while (i < mid && j < hi) dst[k++] = KeyLess(&src[j], &src[i]) ? src[j++] : src[i++];
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    {
      EdgeKey *t = src;

      src = dst;
      dst = t;
    }
  }
  if (src != a) memcpy(a, src, (size_t)n * sizeof(EdgeKey));
}

/* One pass over all bin pairs. Counting (deg != NULL) and filling (g != NULL) run the very same
   arithmetic, so both passes accept exactly the same edges. */
static PetscErrorCode Sweep(const Grid *G, double rc2, PetscInt64 *deg, HMGraph *g, PetscInt *cursor)
{
  const int    *nb = G->nb, *m = G->m;
  const int    *img = G->img;
  const double *pos = G->pos, *C = G->cell;

  PetscFunctionBegin;
  for (int b2 = 0; b2 < nb[2]; b2++) {
    for (int b1 = 0; b1 < nb[1]; b1++) {
      for (int b0 = 0; b0 < nb[0]; b0++) {
        const int      b[3] = {b0, b1, b2};
        const PetscInt bin  = b0 + (PetscInt)nb[0] * (b1 + (PetscInt)nb[1] * b2);
        int            lo[3], hi[3];

        if (G->binstart[bin] == G->binstart[bin + 1]) continue;
        for (int d = 0; d < 3; d++) {
          /* open axes have no bins beyond the bounding box; periodic axes wrap into images */
          lo[d] = G->per[d] ? -m[d] : PetscMax(-m[d], -b[d]);
          hi[d] = G->per[d] ? m[d] : PetscMin(m[d], nb[d] - 1 - b[d]);
        }
        for (int d2 = lo[2]; d2 <= hi[2]; d2++) {
          for (int d1 = lo[1]; d1 <= hi[1]; d1++) {
            for (int d0 = lo[0]; d0 <= hi[0]; d0++) {
              const int dd[3] = {d0, d1, d2};
              int       c[3], t[3];
              PetscInt  nbin;

              for (int d = 0; d < 3; d++) {
                const int q = b[d] + dd[d];

                /* floor division: t is the image of the neighbour bin, c its bin in the cell */
                t[d] = q >= 0 ? q / nb[d] : -((-q + nb[d] - 1) / nb[d]);
                c[d] = q - t[d] * nb[d];
              }
              nbin = c[0] + (PetscInt)nb[0] * (c[1] + (PetscInt)nb[1] * c[2]);
              if (G->binstart[nbin] == G->binstart[nbin + 1]) continue;
              for (PetscInt is = G->binstart[bin]; is < G->binstart[bin + 1]; is++) {
                const PetscInt s = G->atoms[is];
                const double  *ps = pos + 3 * s;
                const int      ts[3] = {t[0] + img[3 * s], t[1] + img[3 * s + 1], t[2] + img[3 * s + 2]};

                for (PetscInt ir = G->binstart[nbin]; ir < G->binstart[nbin + 1]; ir++) {
                  const PetscInt r  = G->atoms[ir];
                  const double  *pr = pos + 3 * r;
                  const int      s0 = ts[0] - img[3 * r], s1 = ts[1] - img[3 * r + 1], s2 = ts[2] - img[3 * r + 2];
                  double         v0, v1, v2, dist2;

                  if (s0 | s1 | s2) {
                    const double o0 = s0 * C[0] + s1 * C[3] + s2 * C[6];
                    const double o1 = s0 * C[1] + s1 * C[4] + s2 * C[7];
                    const double o2 = s0 * C[2] + s1 * C[5] + s2 * C[8];

                    v0 = (pr[0] + o0) - ps[0];
                    v1 = (pr[1] + o1) - ps[1];
                    v2 = (pr[2] + o2) - ps[2];
                  } else {
                    if (r == s) continue;
                    v0 = pr[0] - ps[0];
                    v1 = pr[1] - ps[1];
                    v2 = pr[2] - ps[2];
                  }
                  dist2 = v0 * v0 + v1 * v1 + v2 * v2;
                  if (!(dist2 < rc2)) continue;
                  if (deg) deg[s]++;
                  else {
                    const PetscInt e = cursor[s]++;

                    PetscCheck(e < g->offset[s + 1], PETSC_COMM_SELF, PETSC_ERR_PLIB, "graph: edge count of atom %" PetscInt_FMT " changed between passes", s);
                    g->receiver[e]      = r;
                    g->shift[3 * e]     = s0;
                    g->shift[3 * e + 1] = s1;
                    g->shift[3 * e + 2] = s2;
                    g->vec[3 * e]       = v0;
                    g->vec[3 * e + 1]   = v1;
                    g->vec[3 * e + 2]   = v2;
                    g->len[e]           = sqrt(dist2);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Puts each sender's edges in (receiver, shift) order, permuting vec and len along. */
static PetscErrorCode SortSegments(HMGraph *g, PetscInt maxdeg)
{
  EdgeKey *keys, *tmp;
  double  *vtmp, *ltmp;

  PetscFunctionBegin;
  PetscCall(PetscMalloc4(maxdeg, &keys, maxdeg, &tmp, 3 * maxdeg, &vtmp, maxdeg, &ltmp));
  for (PetscInt s = 0; s < g->n; s++) {
    const PetscInt off = g->offset[s], deg = g->offset[s + 1] - off;

    for (PetscInt e = off; e < off + deg; e++) g->sender[e] = s;
    if (deg < 2) continue;
    for (PetscInt j = 0; j < deg; j++) {
      keys[j].r = g->receiver[off + j];
      for (int d = 0; d < 3; d++) keys[j].s[d] = g->shift[3 * (off + j) + d];
      keys[j].e = j;
    }
    SortKeys(keys, tmp, deg);
    PetscCall(PetscArraycpy(vtmp, g->vec + 3 * off, 3 * deg));
    PetscCall(PetscArraycpy(ltmp, g->len + off, deg));
    for (PetscInt j = 0; j < deg; j++) {
      const PetscInt e = off + j, src = keys[j].e;

      g->receiver[e] = keys[j].r;
      for (int d = 0; d < 3; d++) {
        g->shift[3 * e + d] = keys[j].s[d];
        g->vec[3 * e + d]   = vtmp[3 * src + d];
      }
      g->len[e] = ltmp[src];
    }
  }
  PetscCall(PetscFree4(keys, tmp, vtmp, ltmp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Bins atoms in fractional coordinates of the cell (or of the Cartesian frame without periodic
   axes); periodic axes are wrapped into [0,1), open axes binned over their bounding box. */
static PetscErrorCode GridSetUp(Grid *G, const double cell[9], double cutoff)
{
  const PetscInt n = G->n;
  double         M[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, D[9], thick[3], lo[3], hi[3], maxf[3] = {0, 0, 0};
  double        *frac;
  PetscInt      *abin;
  PetscBool      anyper = PETSC_FALSE;
  PetscInt64     cap, prod, stencil = 1;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++) anyper = (PetscBool)(anyper || G->per[d]);
  if (anyper) {
    PetscCheck(cell, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: periodic boundaries requested but no cell given");
    for (int k = 0; k < 9; k++) {
      PetscCheck(isfinite(cell[k]), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: cell entry %d is not finite", k);
      M[k] = cell[k];
    }
  }
  for (int k = 0; k < 9; k++) G->cell[k] = M[k];
  {
    /* dual vectors: fractional coordinate f_d = pos . D_d, and 1/|D_d| is the cell's thickness across axis d */
    const double *a = M, *b = M + 3, *c = M + 6;
    const double  bc[3] = {b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0]};
    const double  ca[3] = {c[1] * a[2] - c[2] * a[1], c[2] * a[0] - c[0] * a[2], c[0] * a[1] - c[1] * a[0]};
    const double  ab[3] = {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
    const double  det   = a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2];
    const double  scale = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) * sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]) * sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);

    PetscCheck(scale > 0 && fabs(det) > 1e-12 * scale, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: cell is singular (det %g)", det);
    for (int j = 0; j < 3; j++) {
      D[j]     = bc[j] / det;
      D[3 + j] = ca[j] / det;
      D[6 + j] = ab[j] / det;
    }
    for (int d = 0; d < 3; d++) thick[d] = 1.0 / sqrt(D[3 * d] * D[3 * d] + D[3 * d + 1] * D[3 * d + 1] + D[3 * d + 2] * D[3 * d + 2]);
  }

  PetscCall(PetscMalloc1(3 * n, &G->frac));
  PetscCall(PetscMalloc1(n, &G->abin));
  PetscCall(PetscMalloc1(3 * n, &G->img));
  frac = G->frac;
  abin = G->abin;
  for (int d = 0; d < 3; d++) {
    lo[d] = G->per[d] ? 0.0 : PETSC_MAX_REAL;
    hi[d] = G->per[d] ? 1.0 : -PETSC_MAX_REAL;
  }
  for (PetscInt i = 0; i < n; i++) {
    const double *x = G->pos + 3 * i;

    PetscCheck(isfinite(x[0]) && isfinite(x[1]) && isfinite(x[2]), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: atom %" PetscInt_FMT " has a non-finite position", i);
    for (int d = 0; d < 3; d++) {
      double f = x[0] * D[3 * d] + x[1] * D[3 * d + 1] + x[2] * D[3 * d + 2];

      maxf[d] = PetscMax(maxf[d], fabs(f));
      if (G->per[d]) {
        const double fl = floor(f);

        PetscCheck(fabs(fl) < GRAPH_MAX_IMAGE, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: atom %" PetscInt_FMT " lies %g cells away along axis %d; wrap the positions first", i, fl, d);
        G->img[3 * i + d] = (int)fl;
        f -= fl;
      } else {
        G->img[3 * i + d] = 0;
        lo[d]             = PetscMin(lo[d], f);
        hi[d]             = PetscMax(hi[d], f);
      }
      frac[3 * i + d] = f;
    }
  }
  if (n == 0)
    for (int d = 0; d < 3; d++) lo[d] = hi[d] = 0;

  /* bins of about cutoff/2 (a 5^3 stencil wastes less than 3^3 bins of width cutoff), capped */
  cap  = PetscMax(1, PetscMin(GRAPH_MAX_BINS, 2 * (PetscInt64)n));
  for (int d = 0; d < 3; d++) {
    const double want = (hi[d] - lo[d]) * thick[d] / (0.5 * cutoff);

    G->nb[d] = want >= GRAPH_MAX_BINS ? GRAPH_MAX_BINS : (want < 1 ? 1 : (int)want);
  }
  for (;;) {
    int big = 0;

    /* in double: three capped extents can overflow int64 */
    if ((double)G->nb[0] * G->nb[1] * G->nb[2] <= (double)cap) break;
    for (int d = 1; d < 3; d++)
      if (G->nb[d] > G->nb[big]) big = d;
    G->nb[big] = (G->nb[big] + 1) / 2;
  }
  prod     = (PetscInt64)G->nb[0] * G->nb[1] * G->nb[2];
  G->nbins = (PetscInt)prod;
  for (int d = 0; d < 3; d++) {
    const double w = (hi[d] - lo[d]) * thick[d] / G->nb[d];
    double       ratio;

    if (!G->per[d] && G->nb[d] == 1) {
      G->m[d] = 0;
      continue;
    }
    /* slack for round-off in fractional coordinates, so no pair near a bin boundary is missed */
    ratio = cutoff / w * (1 + 1e-9) + 1e-12 * G->nb[d] * (1 + maxf[d] / (hi[d] - lo[d]));
    if (G->per[d]) {
      PetscCheck(ratio < 1e7, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g is %g times the cell thickness %g along axis %d", cutoff, cutoff / thick[d], thick[d], d);
      G->m[d] = (int)floor(ratio) + 1;
    } else G->m[d] = ratio >= G->nb[d] - 1 ? G->nb[d] - 1 : (int)floor(ratio) + 1;
    stencil *= 2 * G->m[d] + 1;
  }
  PetscCheck(stencil <= GRAPH_MAX_STENCIL, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g needs %" PetscInt64_FMT " neighbour bins (or periodic images) per bin; the cell is too thin for this cutoff", cutoff, stencil);

  for (PetscInt i = 0; i < n; i++) {
    PetscInt c[3];

    for (int d = 0; d < 3; d++) {
      const double f = frac[3 * i + d];
      double       u = G->per[d] ? f : (hi[d] > lo[d] ? (f - lo[d]) / (hi[d] - lo[d]) : 0.0);

      u    = floor(u * G->nb[d]);
      c[d] = u < 0 ? 0 : (u >= G->nb[d] ? G->nb[d] - 1 : (PetscInt)u);
    }
    abin[i] = c[0] + (PetscInt)G->nb[0] * (c[1] + (PetscInt)G->nb[1] * c[2]);
  }
  /* counting sort keeps atoms ascending inside each bin */
  PetscCall(PetscCalloc1(G->nbins + 1, &G->binstart));
  PetscCall(PetscMalloc1(n, &G->atoms));
  for (PetscInt i = 0; i < n; i++) G->binstart[abin[i] + 1]++;
  for (PetscInt k = 0; k < G->nbins; k++) G->binstart[k + 1] += G->binstart[k];
  for (PetscInt i = 0; i < n; i++) G->atoms[G->binstart[abin[i]]++] = i;
  for (PetscInt k = G->nbins; k > 0; k--) G->binstart[k] = G->binstart[k - 1];
  G->binstart[0] = 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GridDestroy(Grid *G)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(G->img));
  PetscCall(PetscFree(G->binstart));
  PetscCall(PetscFree(G->atoms));
  PetscCall(PetscFree(G->frac));
  PetscCall(PetscFree(G->abin));
  PetscCall(PetscFree(G->deg));
  PetscCall(PetscFree(G->cursor));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GraphFill(Grid *G, double cutoff, HMGraph *g)
{
  PetscInt64  *deg, total = 0;
  PetscInt    *cursor, maxdeg = 0;
  const double rc2 = cutoff * cutoff;

  PetscFunctionBegin;
  PetscCall(PetscFree(G->frac));
  PetscCall(PetscFree(G->abin));
  PetscCall(PetscCalloc1(G->n, &G->deg));
  deg = G->deg;
  PetscCall(Sweep(G, rc2, deg, NULL, NULL));
  PetscCall(PetscMalloc1(G->n + 1, &g->offset));
  g->offset[0] = 0;
  for (PetscInt s = 0; s < G->n; s++) {
    total += deg[s];
    PetscCheck(total <= PETSC_MAX_INT, PETSC_COMM_SELF, PETSC_ERR_SUP, "graph: more than %d edges; rebuild with 64-bit PetscInt", PETSC_MAX_INT);
    g->offset[s + 1] = (PetscInt)total;
    maxdeg           = PetscMax(maxdeg, (PetscInt)deg[s]);
  }
  PetscCall(PetscFree(G->deg));
  g->nedges = (PetscInt)total;
  PetscCall(PetscMalloc1(g->nedges, &g->sender));
  PetscCall(PetscMalloc1(g->nedges, &g->receiver));
  PetscCall(PetscMalloc1(3 * (size_t)g->nedges, &g->shift));
  PetscCall(PetscMalloc1(3 * (size_t)g->nedges, &g->vec));
  PetscCall(PetscMalloc1(g->nedges, &g->len));
  PetscCall(PetscMalloc1(G->n, &G->cursor));
  cursor = G->cursor;
  PetscCall(PetscArraycpy(cursor, g->offset, G->n));
  PetscCall(Sweep(G, rc2, NULL, g, cursor));
  for (PetscInt s = 0; s < G->n; s++) PetscCheck(cursor[s] == g->offset[s + 1], PETSC_COMM_SELF, PETSC_ERR_PLIB, "graph: edge count of atom %" PetscInt_FMT " changed between passes", s);
  PetscCall(PetscFree(G->cursor));
  PetscCall(SortSegments(g, maxdeg));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGraphBuild(PetscInt n, const double pos[], const double cell[9], const PetscBool pbc[3], double cutoff, HMGraph *g)
{
  Grid           G;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(g, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMGraphBuild: NULL graph");
  PetscCall(PetscMemzero(g, sizeof(*g)));
  PetscCheck(n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: number of atoms %" PetscInt_FMT " is negative", n);
  PetscCheck(n == 0 || pos, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "graph: positions are NULL");
  PetscCheck(isfinite(cutoff) && cutoff > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g must be positive and finite", cutoff);
  PetscCheck(n <= PETSC_MAX_INT / 3, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %" PetscInt_FMT " atoms is too many for 32-bit PetscInt", n);
  PetscCall(PetscMemzero(&G, sizeof(G)));
  G.n   = n;
  G.pos = pos;
  for (int d = 0; d < 3; d++) G.per[d] = (pbc && pbc[d]) ? PETSC_TRUE : PETSC_FALSE;
  g->n = n;
  ierr = GridSetUp(&G, cell, cutoff);
  if (!ierr) ierr = GraphFill(&G, cutoff, g);
  PetscCall(GridDestroy(&G));
  if (PetscUnlikely(ierr)) {
    PetscCall(HMGraphDestroy(g));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGraphDestroy(HMGraph *g)
{
  PetscFunctionBegin;
  if (!g) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree(g->sender));
  PetscCall(PetscFree(g->receiver));
  PetscCall(PetscFree(g->shift));
  PetscCall(PetscFree(g->vec));
  PetscCall(PetscFree(g->len));
  PetscCall(PetscFree(g->offset));
  PetscCall(PetscMemzero(g, sizeof(*g)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Neighbour lists by cell lists in fractional coordinates: open, periodic or mixed boundaries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hipmace/graph.h>

/* Upper bound on bins, so sparse systems (atoms kilometres apart) cannot blow up the grid. */
#define GRAPH_MAX_BINS 10000000
/* Upper bound on neighbour-bin offsets per bin: beyond this the cell is absurdly thin for the cutoff. */
#define GRAPH_MAX_STENCIL 100000000LL
/* Periodic image indices must stay far from INT_MAX after adding bin images. */
#define GRAPH_MAX_IMAGE 536870912.0

typedef struct {
  PetscInt k; /* sort key of the receiver */
  PetscInt r;
  int      s[3];
  PetscInt e; /* slot of the edge's vec/len in the bin scratch */
} EdgeKey;

typedef struct {
  PetscInt        n, nsend; /* atoms; senders are atoms 0 .. nsend-1 */
  const double   *pos;      /* [n][3] positions binned: input positions, or their explicit images */
  const double   *orig;     /* [n][3] input positions (the exact formula's) */
  const int      *image;    /* [n][3] explicit images, or NULL */
  const PetscInt *key;      /* [n] receiver sort keys, or NULL (atom index) */
  PetscBool       anti;     /* vec = (pos[r] - pos[s]) + shift.cell (explicit images) */
  double          cell[9];  /* lattice rows (identity without periodic axes) */
  double          lat[9];   /* lattice rows of the explicit images (zero without) */
  double         *ipos;     /* [n][3] owned image positions (explicit images) */
  PetscBool       per[3];
  int             nb[3]; /* bins per axis */
  int             m[3];  /* neighbour bins searched on each side */
  double          rc2, rc2loose;
  PetscInt        nbins, maxbin;
  PetscInt       *binstart; /* [nbins+1] */
  /* atoms in bin order (ascending inside a bin) with their data alongside, so the inner loop
     streams through contiguous memory */
  PetscInt *atoms; /* [n] */
  double   *opos;  /* [n][3] input positions */
  double   *wpos;  /* [n][3] positions wrapped into the cell (aliases opos without periodic axes) */
  int      *bimg;  /* [n][3] opos = wpos + bimg . cell */
  /* scratch */
  int        *img;  /* [n][3] by atom */
  double     *frac; /* [n][3] (wrapped) fractional coordinates */
  PetscInt   *abin; /* [n] bin of each atom */
  PetscInt64 *deg;  /* [n] edges per sender, first pass */
  PetscInt   *cand; /* [maxbin] candidates passing the loose test */
  /* second pass: edges of one sender bin, sorted per sender and then written out once */
  PetscInt *lstart, *lcur; /* [maxbin+1] */
  EdgeKey  *keys, *ktmp;   /* [maxbindeg] */
  double   *svec, *slen;   /* [maxbindeg][3], [maxbindeg] */
} Grid;

static inline PetscBool KeyLess(const EdgeKey *a, const EdgeKey *b)
{
  if (a->k != b->k) return (PetscBool)(a->k < b->k);
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

/* Candidates of the sender bin atoms [sbeg, send) in the neighbour bin [rbeg, rend) seen through image t
   (offset tc): counted (g == NULL) or recorded in the bin scratch. */
static inline PetscErrorCode PairBins(Grid *G, HMGraph *g, PetscInt sbeg, PetscInt send, PetscInt rbeg, PetscInt rend, const int t[3], const double tc[3])
{
  const int    *bimg = G->bimg;
  const double *opos = G->opos, *wpos = G->wpos, *O = G->anti ? G->lat : G->cell;
  const double  rc2 = G->rc2, rc2loose = G->rc2loose;
  PetscInt     *cand = G->cand;

  PetscFunctionBegin;
  for (PetscInt js = sbeg; js < send; js++) {
    const PetscInt s  = G->atoms[js];
    const double  *ps = opos + 3 * js;
    const double   q0 = wpos[3 * js] - tc[0], q1 = wpos[3 * js + 1] - tc[1], q2 = wpos[3 * js + 2] - tc[2];
    const int      ts[3] = {t[0] + bimg[3 * js], t[1] + bimg[3 * js + 1], t[2] + bimg[3 * js + 2]};
    PetscInt       nc    = 0;

    if (s >= G->nsend) continue;
    /* branch-free compaction: most candidates fail, unpredictably */
    for (PetscInt jr = rbeg; jr < rend; jr++) {
      const double a0 = wpos[3 * jr] - q0, a1 = wpos[3 * jr + 1] - q1, a2 = wpos[3 * jr + 2] - q2;

      cand[nc] = jr;
      nc += (a0 * a0 + a1 * a1 + a2 * a2 < rc2loose);
    }
    for (PetscInt k = 0; k < nc; k++) {
      const PetscInt jr = cand[k], r = G->atoms[jr];
      const double  *pr = opos + 3 * jr;
      const int      s0 = ts[0] - bimg[3 * jr], s1 = ts[1] - bimg[3 * jr + 1], s2 = ts[2] - bimg[3 * jr + 2];
      double         v0, v1, v2, dist2;

      if (s0 | s1 | s2) {
        const double o0 = s0 * O[0] + s1 * O[3] + s2 * O[6];
        const double o1 = s0 * O[1] + s1 * O[4] + s2 * O[7];
        const double o2 = s0 * O[2] + s1 * O[5] + s2 * O[8];

        if (G->anti) {
          v0 = (pr[0] - ps[0]) + o0;
          v1 = (pr[1] - ps[1]) + o1;
          v2 = (pr[2] - ps[2]) + o2;
        } else {
          v0 = (pr[0] + o0) - ps[0];
          v1 = (pr[1] + o1) - ps[1];
          v2 = (pr[2] + o2) - ps[2];
        }
      } else {
        if (r == s) continue;
        v0 = pr[0] - ps[0];
        v1 = pr[1] - ps[1];
        v2 = pr[2] - ps[2];
      }
      dist2 = v0 * v0 + v1 * v1 + v2 * v2;
      if (!(dist2 < rc2)) continue;
      if (!g) G->deg[s]++;
      else {
        const PetscInt e = G->lcur[js - sbeg]++;

        PetscCheck(e < G->lstart[js - sbeg + 1], PETSC_COMM_SELF, PETSC_ERR_PLIB, "graph: edge count of atom %" PetscInt_FMT " changed between passes", s);
        G->keys[e].k       = G->key ? G->key[r] : r;
        G->keys[e].r       = r;
        G->keys[e].s[0]    = s0;
        G->keys[e].s[1]    = s1;
        G->keys[e].s[2]    = s2;
        G->keys[e].e       = e;
        G->svec[3 * e]     = v0;
        G->svec[3 * e + 1] = v1;
        G->svec[3 * e + 2] = v2;
        G->slen[e]         = sqrt(dist2);
      }
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The edges gathered for the sender bin [sbeg, send), sorted per sender and written to their final place. */
static PetscErrorCode WriteBin(Grid *G, HMGraph *g, PetscInt sbeg, PetscInt send)
{
  PetscFunctionBegin;
  for (PetscInt js = sbeg; js < send; js++) {
    const PetscInt s = G->atoms[js], l0 = G->lstart[js - sbeg], cnt = G->lstart[js - sbeg + 1] - l0;
    const EdgeKey *key = G->keys + l0;
    PetscInt       off;

    if (s >= G->nsend) continue;
    off = g->offset[s];
    PetscCheck(G->lcur[js - sbeg] == G->lstart[js - sbeg + 1], PETSC_COMM_SELF, PETSC_ERR_PLIB, "graph: edge count of atom %" PetscInt_FMT " changed between passes", s);
    SortKeys(G->keys + l0, G->ktmp, cnt);
    for (PetscInt j = 0; j < cnt; j++) {
      const PetscInt e = off + j, src = key[j].e;

      g->sender[e]   = s;
      g->receiver[e] = key[j].r;
      for (int d = 0; d < 3; d++) {
        g->shift[3 * e + d] = key[j].s[d];
        g->vec[3 * e + d]   = G->svec[3 * src + d];
      }
      g->len[e] = G->slen[src];
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One pass over all bin pairs. Counting (g == NULL) and filling run the very same arithmetic, so
   both passes accept exactly the same edges. A loose test on wrapped coordinates rejects most
   candidates cheaply; survivors are decided by the exact formula of graph.h on the input
   positions. When filling, the edges of one sender bin are gathered, sorted per sender and
   written to their final place in one go. */
static PetscErrorCode Sweep(Grid *G, HMGraph *g)
{
  const int    *nb = G->nb, *m = G->m;
  const double *C = G->cell;

  PetscFunctionBegin;
  for (int b2 = 0; b2 < nb[2]; b2++) {
    for (int b1 = 0; b1 < nb[1]; b1++) {
      for (int b0 = 0; b0 < nb[0]; b0++) {
        const int      b[3] = {b0, b1, b2};
        const PetscInt bin  = b0 + (PetscInt)nb[0] * (b1 + (PetscInt)nb[1] * b2);
        const PetscInt sbeg = G->binstart[bin], send = G->binstart[bin + 1];
        int            lo[3], hi[3];

        if (sbeg == send) continue;
        if (g) {
          G->lstart[0] = 0;
          for (PetscInt js = sbeg; js < send; js++) {
            const PetscInt s = G->atoms[js];

            G->lstart[js - sbeg + 1] = G->lstart[js - sbeg] + (s < G->nsend ? g->offset[s + 1] - g->offset[s] : 0);
            G->lcur[js - sbeg]       = G->lstart[js - sbeg];
          }
        }
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
              double    tc[3];
              PetscInt  nbin, rbeg, rend;

              for (int d = 0; d < 3; d++) {
                const int q = b[d] + dd[d];

                /* floor division: t is the image of the neighbour bin, c its bin in the cell */
                t[d] = q >= 0 ? q / nb[d] : -((-q + nb[d] - 1) / nb[d]);
                c[d] = q - t[d] * nb[d];
              }
              nbin = c[0] + (PetscInt)nb[0] * (c[1] + (PetscInt)nb[1] * c[2]);
              rbeg = G->binstart[nbin];
              rend = G->binstart[nbin + 1];
              if (rbeg == rend) continue;
              for (int d = 0; d < 3; d++) tc[d] = t[0] * C[d] + t[1] * C[3 + d] + t[2] * C[6 + d];
              PetscCall(PairBins(G, g, sbeg, send, rbeg, rend, t, tc));
            }
          }
        }
        if (g) PetscCall(WriteBin(G, g, sbeg, send));
      }
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* What binning needs to know about the frame: dual vectors D (fractional coordinate f_d = pos . D_d),
   thickness of the cell across each axis, range of fractional coordinates, largest magnitudes. */
typedef struct {
  double    D[9], thick[3], lo[3], hi[3], maxf[3], maxpos;
  int       maximg;
  PetscBool anyper;
} Frame;

/* The frame (the cell, or the Cartesian frame without periodic axes) and every atom's fractional
   coordinates; periodic axes are wrapped into [0,1). */
static PetscErrorCode GridFrame(Grid *G, const double cell[9], Frame *F)
{
  const PetscInt n = G->n;
  double        *M = G->cell, *D = F->D, *thick = F->thick, *lo = F->lo, *hi = F->hi, *maxf = F->maxf, maxpos = 0;
  PetscBool      anyper = PETSC_FALSE;
  int            maximg = 0;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++) anyper = (PetscBool)(anyper || G->per[d]);
  for (int k = 0; k < 9; k++) M[k] = (k % 4 == 0) ? 1.0 : 0.0;
  if (anyper) {
    PetscCheck(cell, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: periodic boundaries requested but no cell given");
    for (int k = 0; k < 9; k++) {
      PetscCheck(isfinite(cell[k]), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "graph: cell entry %d is not finite", k);
      M[k] = cell[k];
    }
  }
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

  PetscCall(PetscMalloc3(3 * n, &G->frac, n, &G->abin, 3 * n, &G->img));
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
      maxpos  = PetscMax(maxpos, PetscMax(fabs(x[d]), fabs(G->orig[3 * i + d])));
      if (G->per[d]) {
        const double fl = floor(f);

        PetscCheck(fabs(fl) < GRAPH_MAX_IMAGE, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: atom %" PetscInt_FMT " lies %g cells away along axis %d; wrap the positions first", i, fl, d);
        G->img[3 * i + d] = (int)fl;
        maximg            = PetscMax(maximg, abs((int)fl));
        f -= fl;
      } else {
        G->img[3 * i + d] = 0;
        lo[d]             = PetscMin(lo[d], f);
        hi[d]             = PetscMax(hi[d], f);
      }
      G->frac[3 * i + d] = f;
    }
  }
  if (n == 0)
    for (int d = 0; d < 3; d++) lo[d] = hi[d] = 0;

  F->maxpos = maxpos;
  F->maximg = maximg;
  F->anyper = anyper;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Bin counts per axis and the neighbour bins to search on each side. */
static PetscErrorCode GridBins(Grid *G, double cutoff, const Frame *F)
{
  const PetscInt n     = G->n;
  const double  *thick = F->thick, *lo = F->lo, *hi = F->hi, *maxf = F->maxf;
  PetscInt64     cap, stencil = 1;

  PetscFunctionBegin;
  /* Bins a little wider than cutoff/2 (a 5^3 stencil visits less volume than 3^3 bins of width
     cutoff); the 1e-6 keeps the stencil at 2 when the cell is an exact multiple of cutoff/2.
     Capped so that sparse systems cannot blow up the grid. */
  cap = PetscMax(1, PetscMin(GRAPH_MAX_BINS, 2 * (PetscInt64)n));
  for (int d = 0; d < 3; d++) {
    const double want = (hi[d] - lo[d]) * thick[d] / (0.5 * cutoff * (1 + 1e-6));

    G->nb[d] = want >= GRAPH_MAX_BINS ? GRAPH_MAX_BINS : (want < 1 ? 1 : (int)want);
  }
  /* in double: three capped extents can overflow int64 */
  while ((double)G->nb[0] * G->nb[1] * G->nb[2] > (double)cap) {
    int big = 0;

    for (int d = 1; d < 3; d++)
      if (G->nb[d] > G->nb[big]) big = d;
    G->nb[big] = (G->nb[big] + 1) / 2;
  }
  G->nbins = (PetscInt)((PetscInt64)G->nb[0] * G->nb[1] * G->nb[2]);
  for (int d = 0; d < 3; d++) {
    const double w = (hi[d] - lo[d]) * thick[d] / G->nb[d];
    double       ratio;

    if (!G->per[d] && G->nb[d] == 1) {
      G->m[d] = 0;
      continue;
    }
    /* Atoms closer than cutoff are at most ceil(cutoff / w) bins apart; the slack covers
       round-off in fractional coordinates near bin boundaries. */
    ratio = cutoff / w * (1 + 1e-9) + 1e-12 * G->nb[d] * (1 + maxf[d] / (hi[d] - lo[d]));
    if (G->per[d]) {
      PetscCheck(ratio < 1e7, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g is %g times the cell thickness %g along axis %d", cutoff, cutoff / thick[d], thick[d], d);
      G->m[d] = (int)ceil(ratio);
    } else G->m[d] = ratio >= G->nb[d] - 1 ? G->nb[d] - 1 : (int)ceil(ratio);
    stencil *= 2 * G->m[d] + 1;
  }
  PetscCheck(stencil <= GRAPH_MAX_STENCIL, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g needs %" PetscInt64_FMT " neighbour bins (or periodic images) per bin; the cell is too thin for this cutoff", cutoff, stencil);

  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Atoms sorted into their bins with their data alongside, and the loose cutoff of the first test. */
static PetscErrorCode GridSort(Grid *G, double cutoff, const Frame *F)
{
  const PetscInt  n = G->n;
  const double   *M = G->cell, *lo = F->lo, *hi = F->hi, maxpos = F->maxpos;
  const PetscBool anyper = F->anyper;
  int             maximg = F->maximg;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n; i++) {
    PetscInt c[3];

    for (int d = 0; d < 3; d++) {
      const double f = G->frac[3 * i + d];
      double       u = G->per[d] ? f : (hi[d] > lo[d] ? (f - lo[d]) / (hi[d] - lo[d]) : 0.0);

      /* f may round to exactly 1 (or hi): such atoms belong to the last bin */
      u    = floor(u * G->nb[d]);
      c[d] = u < 0 ? 0 : (u >= G->nb[d] ? G->nb[d] - 1 : (PetscInt)u);
    }
    G->abin[i] = c[0] + (PetscInt)G->nb[0] * (c[1] + (PetscInt)G->nb[1] * c[2]);
  }
  /* counting sort keeps atoms ascending inside each bin */
  PetscCall(PetscCalloc1(G->nbins + 1, &G->binstart));
  PetscCall(PetscMalloc1(n, &G->atoms));
  for (PetscInt i = 0; i < n; i++) G->binstart[G->abin[i] + 1]++;
  for (PetscInt k = 0; k < G->nbins; k++) G->binstart[k + 1] += G->binstart[k];
  for (PetscInt i = 0; i < n; i++) G->atoms[G->binstart[G->abin[i]]++] = i;
  for (PetscInt k = G->nbins; k > 0; k--) G->binstart[k] = G->binstart[k - 1];
  G->binstart[0] = 0;
  G->maxbin      = 0;
  for (PetscInt k = 0; k < G->nbins; k++) G->maxbin = PetscMax(G->maxbin, G->binstart[k + 1] - G->binstart[k]);
  PetscCall(PetscMalloc1(G->maxbin, &G->cand));

  PetscCall(PetscMalloc2(3 * n, &G->opos, 3 * n, &G->bimg));
  if (anyper || G->image) PetscCall(PetscMalloc1(3 * n, &G->wpos));
  else G->wpos = G->opos;
  for (PetscInt j = 0; j < n; j++) {
    const PetscInt i = G->atoms[j];
    const int     *k = G->img + 3 * i;

    for (int d = 0; d < 3; d++) {
      /* explicit images: the binned position is the image, opos = wpos + bimg . lat */
      G->opos[3 * j + d] = G->orig[3 * i + d];
      G->bimg[3 * j + d] = G->image ? -G->image[3 * i + d] : k[d];
      if (G->image) G->wpos[3 * j + d] = G->pos[3 * i + d];
    }
    if (anyper)
      for (int d = 0; d < 3; d++) G->wpos[3 * j + d] = G->pos[3 * i + d] - (k[0] * M[d] + k[1] * M[3 + d] + k[2] * M[6 + d]);
  }
  PetscCall(PetscFree3(G->frac, G->abin, G->img));
  {
    /* The loose test differs from the exact one only by round-off in wrapping and image
       offsets, bounded by a few ulps of the largest magnitudes involved; 1e-13 is ~500 ulps. */
    double maxcell = 0, maxt = 0, delta;

    if (anyper)
      for (int k = 0; k < 9; k++) maxcell = PetscMax(maxcell, fabs(M[k]));
    if (G->image) {
      for (int k = 0; k < 9; k++) maxcell = PetscMax(maxcell, fabs(G->lat[k]));
      for (PetscInt i = 0; i < 3 * n; i++) maximg = PetscMax(maximg, abs(G->image[i]));
    }
    for (int d = 0; d < 3; d++) maxt = PetscMax(maxt, (double)G->m[d] / G->nb[d] + 1);
    delta       = 1e-13 * (2 * maxpos + (2.0 * maximg + maxt + 2) * 3 * maxcell);
    G->rc2      = cutoff * cutoff;
    G->rc2loose = (cutoff + delta) * (cutoff + delta) * (1 + 1e-12);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Bins atoms in fractional coordinates of the cell (or of the Cartesian frame without periodic
   axes); periodic axes are wrapped into [0,1), open axes binned over their bounding box. */
static PetscErrorCode GridSetUp(Grid *G, const double cell[9], double cutoff)
{
  Frame F;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&F, sizeof(F)));
  PetscCall(GridFrame(G, cell, &F));
  PetscCall(GridBins(G, cutoff, &F));
  PetscCall(GridSort(G, cutoff, &F));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GridDestroy(Grid *G)
{
  PetscFunctionBegin;
  if (G->wpos != G->opos) PetscCall(PetscFree(G->wpos));
  PetscCall(PetscFree(G->ipos));
  PetscCall(PetscFree2(G->opos, G->bimg));
  PetscCall(PetscFree(G->binstart));
  PetscCall(PetscFree(G->atoms));
  PetscCall(PetscFree3(G->frac, G->abin, G->img));
  PetscCall(PetscFree(G->deg));
  PetscCall(PetscFree(G->cand));
  PetscCall(PetscFree2(G->lstart, G->lcur));
  PetscCall(PetscFree4(G->keys, G->ktmp, G->svec, G->slen));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Count, size the output exactly (memory O(N + edges)), then fill in canonical order. */
static PetscErrorCode GraphFill(Grid *G, HMGraph *g)
{
  PetscInt64 total = 0, maxbindeg = 0;

  PetscFunctionBegin;
  PetscCall(PetscCalloc1(G->n, &G->deg));
  PetscCall(Sweep(G, NULL));
  PetscCall(PetscMalloc1(G->n + 1, &g->offset));
  g->offset[0] = 0;
  for (PetscInt s = 0; s < G->n; s++) {
    total += G->deg[s];
    PetscCheck(total <= PETSC_MAX_INT, PETSC_COMM_SELF, PETSC_ERR_SUP, "graph: more than %d edges; rebuild with 64-bit PetscInt", PETSC_MAX_INT);
    g->offset[s + 1] = (PetscInt)total;
  }
  for (PetscInt k = 0; k < G->nbins; k++) {
    PetscInt64 sum = 0;

    for (PetscInt j = G->binstart[k]; j < G->binstart[k + 1]; j++) sum += G->deg[G->atoms[j]];
    maxbindeg = PetscMax(maxbindeg, sum);
  }
  PetscCall(PetscFree(G->deg));
  g->nedges = (PetscInt)total;
  PetscCall(PetscMalloc5(g->nedges, &g->sender, g->nedges, &g->receiver, 3 * (size_t)g->nedges, &g->shift, 3 * (size_t)g->nedges, &g->vec, g->nedges, &g->len));
  PetscCall(PetscMalloc2(G->maxbin + 1, &G->lstart, G->maxbin + 1, &G->lcur));
  PetscCall(PetscMalloc4(maxbindeg, &G->keys, maxbindeg, &G->ktmp, 3 * maxbindeg, &G->svec, maxbindeg, &G->slen));
  PetscCall(Sweep(G, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Checks, sets up the grid and fills g; on error g is left empty. */
static PetscErrorCode Build(Grid *G, const double cell[9], const PetscBool pbc[3], double cutoff, HMGraph *g)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(g, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMGraphBuild: NULL graph");
  PetscCall(PetscMemzero(g, sizeof(*g)));
  PetscCheck(G->n >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: number of atoms %" PetscInt_FMT " is negative", G->n);
  PetscCheck(G->n == 0 || G->orig, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "graph: positions are NULL");
  PetscCheck(isfinite(cutoff) && cutoff > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: cutoff %g must be positive and finite", cutoff);
  PetscCheck(G->n <= PETSC_MAX_INT / 3, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %" PetscInt_FMT " atoms is too many for 32-bit PetscInt", G->n);
  PetscCheck(G->nsend >= 0 && G->nsend <= G->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "graph: %" PetscInt_FMT " senders among %" PetscInt_FMT " atoms", G->nsend, G->n);
  for (int d = 0; d < 3; d++) G->per[d] = (pbc && pbc[d]) ? PETSC_TRUE : PETSC_FALSE;
  g->n = G->nsend;
  ierr = PETSC_SUCCESS;
  if (G->image) {
    /* the images are binned where they stand; the exact formula starts from the input positions */
    ierr = PetscMalloc1(3 * G->n, &G->ipos);
    for (PetscInt i = 0; !ierr && i < G->n; i++)
      for (int d = 0; d < 3; d++) {
        const int *k       = G->image + 3 * i;
        G->ipos[3 * i + d] = G->orig[3 * i + d] + ((k[0] * G->lat[d] + k[1] * G->lat[3 + d]) + k[2] * G->lat[6 + d]);
      }
    G->pos = G->ipos;
  }
  if (!ierr) ierr = GridSetUp(G, cell, cutoff);
  if (!ierr) ierr = GraphFill(G, g);
  PetscCall(GridDestroy(G));
  if (PetscUnlikely(ierr)) {
    PetscCall(HMGraphDestroy(g));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGraphBuild(PetscInt n, const double pos[], const double cell[9], const PetscBool pbc[3], double cutoff, HMGraph *g)
{
  Grid G;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&G, sizeof(G)));
  G.n = G.nsend = n;
  G.pos = G.orig = pos;
  PetscCall(Build(&G, cell, pbc, cutoff, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGraphBuildWithImages(PetscInt n, const double pos[], const int image[], const double cell[9], PetscInt nsenders, const PetscInt key[], double cutoff, HMGraph *g)
{
  Grid G;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&G, sizeof(G)));
  PetscCheck(!image || n == 0 || cell, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "graph: explicit images need the cell");
  G.n     = n;
  G.nsend = nsenders == PETSC_DECIDE ? n : nsenders;
  G.pos = G.orig = pos;
  G.key          = key;
  if (image) {
    G.image = image;
    G.anti  = PETSC_TRUE;
    for (int k = 0; k < 9; k++) G.lat[k] = cell[k];
  }
  PetscCall(Build(&G, NULL, NULL, cutoff, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMGraphDestroy(HMGraph *g)
{
  PetscFunctionBegin;
  if (!g) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree5(g->sender, g->receiver, g->shift, g->vec, g->len));
  PetscCall(PetscFree(g->offset));
  PetscCall(PetscMemzero(g, sizeof(*g)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The MACE interaction + product layer, on any graph with its halo and radial basis. */
#include "model/layer.h"
#include <hipmace/so3.h>
#include <hipmace/log.h>
#include "nn/cost.h"

/* per-stage roofline counters (hipmace/log.h): wall time of a stage, analytic flops and bytes */
#define HM_ROOF_TIC(t0)        const double t0 = MPI_Wtime()
#define HM_ROOF_TOC(stage, t0) (HMRoofline[stage].seconds += MPI_Wtime() - (t0))

/* Edges are processed in chunks so that per-edge radial weights never exist for the whole graph; 32
   edges keep a chunk's weights (32 x up to ~2000 doubles) in L2 between the radial MLP and the tensor
   product, which reads them right after. */
#define HM_EDGE_CHUNK 32
/* Bytes of radial weights kept for the reversed edges (see RadialPairs); below the allocator's mmap
   threshold, so the ring is reused from the heap instead of faulting its pages in on every call */
#define HM_PAIR_BYTES (8 << 20)

/* The edge r -> s of an edge s -> r (row s of the CSR) when r is owned, else -1: it has exactly the
   same length (the graph stores vec and -vec), hence bitwise the same radial basis and radial MLP
   output, which are row-independent. */
static PetscInt ReverseEdge(const HMGraph *g, PetscInt e)
{
  const PetscInt s = g->sender[e], r = g->receiver[e];
  if (r >= g->n) return -1;
  for (PetscInt f = g->offset[r]; f < g->offset[r + 1]; f++)
    if (g->receiver[f] == s && g->shift[3 * f] == -g->shift[3 * e] && g->shift[3 * f + 1] == -g->shift[3 * e + 1] && g->shift[3 * f + 2] == -g->shift[3 * e + 2] && g->len[f] == g->len[e]) return f;
  return -1;
}

/* The radial MLP once per pair of directed edges. An edge whose reversed edge comes later puts its
   weights in a ring of cap rows (owner[] tells which edge a row holds; the next ne rows are reserved
   for the chunk, so no row in use is overwritten); an edge whose reversed edge came earlier uses that
   row while it is still there; the others use scratch rows cap .. cap + HM_EDGE_CHUNK - 1. */
typedef struct {
  PetscInt cap, head, *slot, *owner; /* slot[nedges]: weight row of each edge; owner[cap]: edge of a ring row */
  double  *w, *len, *rb, *mlpw;
  float   *wS, *rbS, *mlpwS; /* -precision single: the weights and the MLP's input and work in float */
  PetscInt ncomputed;
} RadialPairs;

/* The radial weights of n edges of lengths len into row 0 of w (double) or wS (float, when S is set). */
static void RadialWeights(RadialPairs *P, const HMLayer *L, const HMLayerSingle *S, const HMRadialBasis *radial, PetscInt n, const double *len, PetscInt row)
{
  const PetscInt nw = L->tp.weight_numel;

  HMRadialBasisEvalBatch(radial, n, len, P->rb);
  if (!S) {
    HMRadialMLPApply(&L->mlp, n, P->rb, P->w + row * nw, P->mlpw);
    return;
  }
  for (PetscInt k = 0; k < n * radial->nbessel; k++) P->rbS[k] = (float)P->rb[k];
  HMRadialMLPApplyS(&L->mlp, S->mlp, n, P->rbS, P->wS + row * nw, P->mlpwS);
}

static void RadialPairsChunk(RadialPairs *P, const HMLayer *L, const HMLayerSingle *S, const HMGraph *g, const HMRadialBasis *radial, PetscInt e0, PetscInt ne)
{
  PetscInt na = 0, nb = 0;
  double  *lenb = P->len + HM_EDGE_CHUNK;

  if (P->head + ne > P->cap) P->head = 0;
  for (PetscInt e = e0; e < e0 + ne; e++) {
    const PetscInt f  = ReverseEdge(g, e);
    const PetscInt sl = f >= 0 && f < e ? P->slot[f] : -1;
    if (sl >= 0 && sl < P->cap && P->owner[sl] == f && (sl < P->head || sl >= P->head + ne)) P->slot[e] = sl;
    else if (f > e) {
      P->slot[e]             = P->head + na;
      P->owner[P->head + na] = e;
      P->len[na++]           = g->len[e];
    } else {
      P->slot[e] = P->cap + nb;
      lenb[nb++] = g->len[e];
    }
  }
  RadialWeights(P, L, S, radial, na, P->len, P->head);
  RadialWeights(P, L, S, radial, nb, lenb, P->cap);
  P->head += na;
  P->ncomputed += na + nb;
}

/* One interaction + product layer: h (n x dim in_ir) -> out (n x dimH); any layer L on graph g with its
   halo and radial basis (the extra Hessian layers run on the Hessian graph, src/model/hessextra.c);
   residual = a layer t >= 1 (skip from the layer input). */
/* Atoms per chunk of the part after the halo exchange: the per-atom work arrays (the aggregated messages,
   the widest, and the linear and product outputs) exist for one chunk at a time, not for all atoms. Every
   kernel below is row-independent (HMGemmRows, the per-edge tensor product, the per-node symmetric
   contraction), so the chunking changes no bit. */

/* The messages into atoms a0 .. a1-1 (the CSR edge range of those atoms, in the canonical edge order),
   summed into agg (chunk rows, each mid block as [c][u], the tensor product's channel-innermost layout, which
   the linear map after it reads as it is). -precision single (L->single set, xS and aggS instead of x and
   agg): the radial weights and the tensor product in float. */
static PetscErrorCode LayerAggregate(HMEval e, const HMLayer *L, const HMGraph *g, const HMRadialBasis *radial, RadialPairs *P, const double *x, const float *xS, PetscInt a0, PetscInt a1, double *agg, float *aggS, PetscInt maxmul)
{
  HMModel              m   = e->model;
  const HMLayerSingle *S   = xS ? L->single : NULL;
  const PetscInt       din = HMIrrepsDim(&L->in_ir), dmid = L->tp.dim_mid;
  const PetscInt       nsh = (m->max_ell + 1) * (m->max_ell + 1), nw = L->tp.weight_numel;
  const PetscInt       eb = g->offset[a0], ee = g->offset[a1];
  double              *Y, *vec, *cy;
  float               *cys;

  PetscFunctionBegin;
  if (S) PetscCall(PetscArrayzero(aggS, (a1 - a0) * dmid));
  else PetscCall(PetscArrayzero(agg, (a1 - a0) * dmid));
  PetscCall(PetscMalloc4(HM_EDGE_CHUNK * nsh, &Y, HM_EDGE_CHUNK * 3, &vec, L->tp.maxcy + maxmul + 1, &cy, L->tp.maxcy + 1, &cys));
  /* gather: the messages into receiver r come from the neighbours of r (both directions are in the
     graph), with the edge vector of the reversed edge; the sum order is the canonical edge order */
  for (PetscInt e0 = eb; e0 < ee; e0 += HM_EDGE_CHUNK) {
    const PetscInt ne = PetscMin(HM_EDGE_CHUNK, ee - e0);
    for (PetscInt k = 0; k < ne; k++)
      for (int a = 0; a < 3; a++) vec[3 * k + a] = -g->vec[3 * (e0 + k) + a];
    PetscCall(PetscLogEventBegin(HMLog.radial, 0, 0, 0, 0));
    {
      HM_ROOF_TIC(t0);
      RadialPairsChunk(P, L, S, g, radial, e0, ne);
      HM_ROOF_TOC(HM_ROOF_RADIAL, t0);
    }
    PetscCall(PetscLogEventEnd(HMLog.radial, 0, 0, 0, 0));
    PetscCall(HMSphericalHarmonics(m->max_ell, ne, vec, Y));
    PetscCall(PetscLogEventBegin(HMLog.conv, 0, 0, 0, 0));
    {
      HM_ROOF_TIC(t0);
      for (PetscInt k = 0; k < ne; k++) {
        const PetscInt r = g->sender[e0 + k], s = g->receiver[e0 + k];
        if (S) HMConvTPApplyTS(&L->tp, xS + s * din, Y + k * nsh, P->wS + P->slot[e0 + k] * nw, aggS + (r - a0) * dmid, cy, cys);
        else HMConvTPApplyT(&L->tp, x + s * din, Y + k * nsh, P->w + P->slot[e0 + k] * nw, agg + (r - a0) * dmid, cy);
      }
      HM_ROOF_TOC(HM_ROOF_CONV, t0);
    }
    PetscCall(PetscLogEventEnd(HMLog.conv, 0, 0, 0, 0));
  }
  PetscCall(PetscFree4(Y, vec, cy, cys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LayerProduct(HMEval, const HMLayer *, PetscBool, const double *, PetscInt, PetscInt, const double *, double *, double *, double *, double *);

/* Atoms a0 .. a1-1 from their aggregated messages agg to the layer output out (rows a0 ..): the linear map,
   the skip tensor product of layer 0, the symmetric contraction, the product linear map and, for t >= 1,
   the skip connection from the layer input h. X, prod and tmp hold one chunk each. */
static PetscErrorCode LayerNodes(HMEval e, const HMLayer *L, PetscBool residual, const double *h, PetscInt a0, PetscInt a1, const double *agg, double *X, double *tmp, double *prod, double *scw, double *out)
{
  HMModel        m    = e->model;
  const PetscInt dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target), nc = a1 - a0;
  const int     *elem = e->elem + a0;

  PetscFunctionBegin;
  {
    HM_ROOF_TIC(t0);
    /* in the channel-innermost layout throughout: X holds each target block as [m][w] */
    PetscCall(PetscArrayzero(X, nc * dtg));
    HMLinearApplyT(&L->linear, nc, agg, dmid, X, dtg);
    for (PetscInt k = 0; k < nc * dtg; k++) X[k] /= m->avg_num_neighbors;
    if (!residual) {
      PetscCall(PetscArrayzero(tmp, nc * dtg));
      HMSkipTPApplyT(&L->skip, nc, elem, X, dtg, tmp, dtg);
      PetscCall(PetscArraycpy(X, tmp, nc * dtg));
    }
    HM_ROOF_TOC(HM_ROOF_LINEAR, t0);
  }
  PetscCall(LayerProduct(e, L, residual, h, a0, a1, X, tmp, prod, scw, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Atoms a0 .. a1-1 from the interaction output X (chunk rows, target irreps, each block as [m][w]) to the layer output out: the
   symmetric contraction, the product linear map and, for t >= 1, the skip connection from h. */
static PetscErrorCode LayerProduct(HMEval e, const HMLayer *L, PetscBool residual, const double *h, PetscInt a0, PetscInt a1, const double *X, double *tmp, double *prod, double *scw, double *out)
{
  HMModel        m   = e->model;
  const PetscInt dtg = HMIrrepsDim(&L->target), nc = a1 - a0, dH = m->dimH;
  const int     *elem = e->elem + a0;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(HMLog.symcon, 0, 0, 0, 0));
  {
    HM_ROOF_TIC(t0);
    HMSymContractionApply(&L->prod, &L->target, nc, elem, X, dtg, PETSC_TRUE, prod, dH, scw);
    HM_ROOF_TOC(HM_ROOF_SYMCON, t0);
  }
  PetscCall(PetscLogEventEnd(HMLog.symcon, 0, 0, 0, 0));
  {
    HM_ROOF_TIC(t0);
    HMLinearApply(&L->prod_linear, nc, prod, dH, 0.0, out + a0 * dH, dH);
    if (residual) {
      /* the skip connection from this layer's input h (kept by the caller) */
      HMSkipTPApply(&L->skip, nc, elem, h + a0 * dH, dH, 0.0, tmp, dH);
      for (PetscInt k = 0; k < nc * dH; k++) out[a0 * dH + k] += tmp[k];
    }
    HM_ROOF_TOC(HM_ROOF_LINEAR, t0);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---- -precision single: the radial MLP, the tensor product, the linear map after it and the first layer's
   skip on the message in float ---- */

PetscErrorCode HMLayerSingleSetUp(HMLayer *L, PetscBool skip)
{
  HMLayerSingle *S;

  PetscFunctionBegin;
  if (L->single) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscNew(&S));
  PetscCall(PetscCalloc1(L->mlp.nlayers, &S->mlp));
  for (int i = 0; i < L->mlp.nlayers; i++) PetscCall(HMGemmPackS(L->mlp.h[i + 1], L->mlp.h[i], L->mlp.W[i], L->mlp.h[i + 1], &S->mlp[i]));
  PetscCall(PetscCalloc1(L->linear.ninstr + 1, &S->lin));
  for (int k = 0; k < L->linear.ninstr; k++) {
    const PetscInt ma = L->linear.in.b[L->linear.ia[k]].mul, mb = L->linear.out.b[L->linear.ib[k]].mul;
    if (ma > 0 && mb > 0) PetscCall(HMGemmPackS(mb, ma, L->linear.W + L->linear.woff[k], mb, &S->lin[k]));
  }
  if (skip) {
    const HMSkipTP *sk = &L->skip;
    PetscCall(PetscCalloc1(sk->ninstr * sk->nel + 1, &S->skip));
    for (int k = 0; k < sk->ninstr; k++) {
      const PetscInt ma = sk->in.b[sk->ia[k]].mul, mb = sk->out.b[sk->ib[k]].mul;
      for (int el = 0; el < sk->nel && ma > 0 && mb > 0; el++) PetscCall(HMGemmPackS(mb, ma, sk->W + sk->woff[k] + (PetscInt)el * mb, sk->nel * mb, &S->skip[k * sk->nel + el]));
    }
  }
  L->single = S;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLayerSingleDestroy(HMLayer *L)
{
  HMLayerSingle *S = L->single;

  PetscFunctionBegin;
  if (!S) PetscFunctionReturn(PETSC_SUCCESS);
  for (int i = 0; i < L->mlp.nlayers; i++) PetscCall(HMGemmPackedSDestroy(&S->mlp[i]));
  for (int k = 0; k < L->linear.ninstr; k++) PetscCall(HMGemmPackedSDestroy(&S->lin[k]));
  for (int k = 0; S->skip && k < L->skip.ninstr * L->skip.nel; k++) PetscCall(HMGemmPackedSDestroy(&S->skip[k]));
  PetscCall(PetscFree(S->mlp));
  PetscCall(PetscFree(S->lin));
  PetscCall(PetscFree(S->skip));
  PetscCall(PetscFree(L->single));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* LayerNodes in float up to the interaction output: the linear map, / avg_num_neighbors and the first layer's
   skip tensor product (per element), then X in double, in the same channel-innermost layout, for the symmetric
   contraction (float64 in both precisions). */
static PetscErrorCode LayerNodesS(HMEval e, const HMLayer *L, PetscBool residual, const double *h, PetscInt a0, PetscInt a1, const float *aggT, float *XT, float *tmpT, double *X, double *tmp, double *prod, double *scw, double *out)
{
  HMModel              m    = e->model;
  const HMLayerSingle *S    = L->single;
  const PetscInt       dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target), nc = a1 - a0;
  const int           *elem = e->elem + a0;
  const float         *src  = XT;

  PetscFunctionBegin;
  {
    HM_ROOF_TIC(t0);
    const float inv = (float)(1.0 / m->avg_num_neighbors);
    PetscCall(PetscArrayzero(XT, nc * dtg));
    HMLinearApplyTS(&L->linear, S->lin, nc, aggT, dmid, XT, dtg);
    for (PetscInt k = 0; k < nc * dtg; k++) XT[k] *= inv;
    if (!residual) {
      PetscCall(PetscArrayzero(tmpT, nc * dtg));
      HMSkipTPApplyTS(&L->skip, S->skip, nc, elem, XT, dtg, tmpT, dtg);
      src = tmpT;
    }
    /* back to double, in the same layout */
    for (PetscInt k = 0; k < nc * dtg; k++) X[k] = src[k];
    HM_ROOF_TOC(HM_ROOF_LINEAR, t0);
  }
  PetscCall(LayerProduct(e, L, residual, h, a0, a1, X, tmp, prod, scw, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The analytic flop and byte counts of one layer on n atoms and the edges of g (the roofline table). */
static void LayerCost(HMEval e, const HMLayer *L, PetscBool residual, const HMGraph *g, PetscInt n, PetscInt nradial)
{
  HMModel        m   = e->model;
  const PetscInt dtg = HMIrrepsDim(&L->target);

  /* -precision single: the float stages move 4-byte values */
  const double bs    = e->precision == HM_PRECISION_SINGLE ? 0.5 : 1.0;
  double       by[3] = {0, 0, 0};

  HMLinearCost(&L->linear_up, n, &HMRoofline[HM_ROOF_LINEAR].flops, &HMRoofline[HM_ROOF_LINEAR].bytes);
  HMConvTPCost(&L->tp, g->nedges, n, &HMRoofline[HM_ROOF_CONV].flops, &by[0]);
  HMRadialMLPCost(&L->mlp, nradial, &HMRoofline[HM_ROOF_RADIAL].flops, &by[1]);
  HMLinearCost(&L->linear, n, &HMRoofline[HM_ROOF_LINEAR].flops, &by[2]);
  HMRoofline[HM_ROOF_LINEAR].flops += (double)n * dtg;
  if (!residual) HMSkipTPCost(&L->skip, n, &HMRoofline[HM_ROOF_LINEAR].flops, &by[2]);
  HMRoofline[HM_ROOF_CONV].bytes += bs * by[0];
  HMRoofline[HM_ROOF_RADIAL].bytes += bs * by[1];
  HMRoofline[HM_ROOF_LINEAR].bytes += bs * by[2];
  HMSymContractionCost(&L->prod, &L->target, n, e->elem, &HMRoofline[HM_ROOF_SYMCON].flops, &HMRoofline[HM_ROOF_SYMCON].bytes);
  HMLinearCost(&L->prod_linear, n, &HMRoofline[HM_ROOF_LINEAR].flops, &HMRoofline[HM_ROOF_LINEAR].bytes);
  if (residual) {
    HMSkipTPCost(&L->skip, n, &HMRoofline[HM_ROOF_LINEAR].flops, &HMRoofline[HM_ROOF_LINEAR].bytes);
    HMRoofline[HM_ROOF_LINEAR].flops += (double)n * m->dimH;
  }
}

/* One interaction + product layer: h (n x dim in_ir) -> out (n x dimH); any layer L on graph g with its
   halo and radial basis (the extra Hessian layers run on the Hessian graph, src/model/hessextra.c);
   residual = a layer t >= 1 (skip from the layer input). */
PetscErrorCode HMEvalLayerForward(HMEval e, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, double *out)
{
  HMModel         m = e->model;
  const PetscInt  n = e->n, nl = e->nl, din = HMIrrepsDim(&L->in_ir), dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target);
  const PetscInt  chunk = PetscMin(HM_LAYER_ATOM_CHUNK, PetscMax(n, 1)), dtmp = PetscMax(dtg, m->dimH);
  const PetscInt  nw     = L->tp.weight_numel;
  const PetscBool single = (PetscBool)(e->precision == HM_PRECISION_SINGLE);
  double         *x, *agg = NULL, *X, *tmp, *prod, *scw, *buf;
  float          *xT = NULL, *aggT = NULL, *XT = NULL, *tmpT = NULL;
  PetscInt        maxmul = 0;
  RadialPairs     P;

  PetscFunctionBegin;
  PetscCheck(g->n == n, PETSC_COMM_SELF, PETSC_ERR_PLIB, "layer graph has %" PetscInt_FMT " senders for %" PetscInt_FMT " owned atoms", g->n, n);
  PetscCheck(!single || L->single, PETSC_COMM_SELF, PETSC_ERR_ORDER, "single-precision weights of the layer are not set up");
  /* memory: the layer input x for the owned and ghost atoms, plus one chunk of each per-atom work array;
     the channel-major transposes are done in place, atom by atom */
  for (int k = 0; k < L->in_ir.n; k++) maxmul = PetscMax(maxmul, L->in_ir.b[k].mul);
  PetscCall(PetscMalloc1(nl * din + 1, &x));
  PetscCall(PetscMalloc1(PetscMax(din, dmid) + 1, &buf));
  {
    HM_ROOF_TIC(t0);
    HMLinearApply(&L->linear_up, n, h, din, 0.0, x, din);
    HM_ROOF_TOC(HM_ROOF_LINEAR, t0);
  }
  /* the senders of the owned atoms' messages include ghosts within r_max: fetch their features */
  PetscCall(HMDecompHaloExchange(e->dd, halo, din, x));
  {
    HM_ROOF_TIC(t0);
    if (single) PetscCall(PetscMalloc1(nl * din + 1, &xT));
    for (PetscInt i = 0; i < nl; i++) {
      HMConvTPTransposeIn(&L->tp, x + i * din, buf);
      if (single)
        for (PetscInt k = 0; k < din; k++) xT[i * din + k] = (float)buf[k];
      else PetscCall(PetscArraycpy(x + i * din, buf, din));
    }
    HM_ROOF_TOC(HM_ROOF_CONV, t0);
  }
  if (single) PetscCall(PetscFree(x));
  /* radial weights once per pair of directed edges (RadialPairs), across the atom chunks in edge order */
  P.cap       = PetscMin(PetscMax(4 * HM_EDGE_CHUNK, HM_PAIR_BYTES / (PetscInt)(sizeof(double) * (nw + 1))), g->nedges + HM_EDGE_CHUNK);
  P.head      = 0;
  P.ncomputed = 0;
  P.w         = NULL;
  P.wS = P.rbS = P.mlpwS = NULL;
  PetscCall(PetscMalloc3(g->nedges + 1, &P.slot, P.cap, &P.owner, 2 * HM_EDGE_CHUNK, &P.len));
  if (single) PetscCall(PetscMalloc3((P.cap + HM_EDGE_CHUNK) * nw, &P.wS, HM_EDGE_CHUNK * m->num_bessel, &P.rbS, 2 * HM_EDGE_CHUNK * L->mlp.maxw, &P.mlpwS));
  else PetscCall(PetscMalloc1((P.cap + HM_EDGE_CHUNK) * nw, &P.w));
  for (PetscInt k = 0; k < P.cap; k++) P.owner[k] = -1;
  PetscCall(PetscMalloc2(HM_EDGE_CHUNK * m->num_bessel, &P.rb, 2 * HM_EDGE_CHUNK * L->mlp.maxw, &P.mlpw));
  PetscCall(PetscMalloc4(chunk * dtg + 1, &X, chunk * dtmp + 1, &tmp, chunk * m->dimH + 1, &prod, HMSymContractionWorkSize(&L->prod) + 1, &scw));
  if (single) PetscCall(PetscMalloc3(chunk * dmid + 1, &aggT, chunk * dtg + 1, &XT, chunk * dtg + 1, &tmpT));
  else PetscCall(PetscMalloc1(chunk * dmid + 1, &agg));
  for (PetscInt a0 = 0; a0 < n; a0 += chunk) {
    const PetscInt a1 = PetscMin(n, a0 + chunk);
    if (single) {
      PetscCall(LayerAggregate(e, L, g, radial, &P, NULL, xT, a0, a1, NULL, aggT, maxmul));
      PetscCall(LayerNodesS(e, L, residual, h, a0, a1, aggT, XT, tmpT, X, tmp, prod, scw, out));
    } else {
      PetscCall(LayerAggregate(e, L, g, radial, &P, x, NULL, a0, a1, agg, NULL, maxmul));
      PetscCall(LayerNodes(e, L, residual, h, a0, a1, agg, X, tmp, prod, scw, out));
    }
  }
  PetscCall(PetscFree4(X, tmp, prod, scw));
  PetscCall(PetscFree(agg));
  PetscCall(PetscFree3(aggT, XT, tmpT));
  PetscCall(PetscFree2(P.rb, P.mlpw));
  PetscCall(PetscFree3(P.wS, P.rbS, P.mlpwS));
  PetscCall(PetscFree(P.w));
  PetscCall(PetscFree3(P.slot, P.owner, P.len));
  PetscCall(PetscFree(buf));
  PetscCall(PetscFree(x));
  PetscCall(PetscFree(xT));
  LayerCost(e, L, residual, g, n, P.ncomputed);
  PetscFunctionReturn(PETSC_SUCCESS);
}

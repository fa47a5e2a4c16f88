/* Evaluation of a HIP-MACE model on one structure: MACE layers, energy, and the HIP head blocks. */
#include "model/modelimpl.h"
#include <hipmace/so3.h>
#include <limits.h>
#include <hipmace/log.h>
#include "hessian/folded.h"
#include "model/hessextra.h" /* hoextra */

/* Edges are processed in chunks so that per-edge radial weights never exist for the whole graph. */
#define HM_EDGE_CHUNK 256

const char *const HMEdgeKernels[] = {"direct", "folded", "tabulated", "HMEdgeKernel", "HM_EDGE_KERNEL_", NULL};

/* Minimum distance between two atoms; closer pairs are an input error (the radial basis divides by d). */
#define HM_MIN_DISTANCE 0.1

PetscErrorCode HMEvalCreate(HMModel m, HMSystem sys, HMEval *ev)
{
  HMEval      e;
  double      hcut;
  const int  *Z;
  PetscMPIInt rank;
  const char *src = "(structure)";
  struct {
    int v, i;
  } bad = {INT_MAX, 0}, gbad;

  PetscFunctionBegin;
  PetscCall(PetscNew(&e));
  e->model = m;
  PetscCallMPI(MPI_Comm_rank(m->comm, &rank));
  if (rank == 0 && sys) PetscCall(HMSystemGetSource(sys, &src));
  PetscCall(HMModelGetCutoffs(m, NULL, NULL, &hcut));
  {
    /* -hessian_prune false builds the Hessian graph at hessian_r_max even where every edge beyond the
       effective cutoff is exactly zero (a check that pruning changes nothing; the matrix gets denser) */
    PetscBool prune = PETSC_TRUE;
    PetscCall(PetscOptionsGetBool(NULL, NULL, "-hessian_prune", &prune, NULL));
    if (!prune) hcut = m->hessian_r_max;
  }
  e->hcut = hcut;
  {
    const char *const ptypes[] = {"rcb", "grid", "HMPartitionType", "HM_PARTITION_", NULL};
    PetscEnum         pt       = (PetscEnum)HM_PARTITION_RCB;
    PetscCall(PetscOptionsGetEnum(NULL, NULL, "-partition", ptypes, &pt, NULL));
    PetscCall(HMDecompCreate(m->comm, sys, (HMPartitionType)pt, m->r_max, hcut, &e->dd));
  }
  PetscCall(HMDecompGetSizes(e->dd, &e->N, &e->n, &e->nl, &e->rstart));
  PetscCall(HMDecompGetLocalAtoms(e->dd, &e->gid, &e->pidx, &Z, NULL, NULL));
  PetscCall(HMDecompGetGraphs(e->dd, &e->g, &e->gh));
  {
    PetscEnum k = (PetscEnum)HM_EDGE_KERNEL_FOLDED;
    PetscCall(PetscOptionsGetEnum(NULL, NULL, "-hessian_kernel", HMEdgeKernels, &k, NULL));
    e->kernel    = (HMEdgeKernel)k;
    e->table_tol = 1e-10;
    PetscCall(PetscOptionsGetReal(NULL, NULL, "-hessian_table_tol", &e->table_tol, NULL));
    /* every rank reads the same options: the check is collective */
    PetscCheck(e->kernel != HM_EDGE_KERNEL_TABULATED || (PetscIsNormalReal(e->table_tol) && e->table_tol >= 1e-13), m->comm, PETSC_ERR_USER_INPUT, "-hessian_table_tol %g: expected a number >= 1e-13 (below that the round-off of the exact radial network dominates)", e->table_tol);
  }
  PetscCall(PetscMalloc1(e->nl + 1, &e->elem));
  for (PetscInt i = 0; i < e->nl; i++) {
    e->elem[i] = HMModelElementIndex(m, Z[i]);
    if (e->elem[i] < 0 && e->gid[i] < bad.v) {
      bad.v = (int)e->gid[i];
      bad.i = Z[i];
    }
  }
  /* every rank reports the same first offending atom, so the error is collective */
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  PetscCheck(gbad.v == INT_MAX, m->comm, PETSC_ERR_ARG_WRONG, "%s: atom %d is %s, an element the model %s was not trained on", src, gbad.v + 1, HMElementSymbol(gbad.i), m->path);
  bad.v = INT_MAX;
  for (PetscInt k = 0; k < e->g->nedges; k++)
    if (e->g->len[k] < HM_MIN_DISTANCE) {
      const PetscInt a = e->gid[e->g->sender[k]], b = e->gid[e->g->receiver[k]];
      if (PetscMin(a, b) < bad.v) {
        bad.v = (int)PetscMin(a, b);
        bad.i = (int)PetscMax(a, b);
      }
    }
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  PetscCheck(gbad.v == INT_MAX, m->comm, PETSC_ERR_ARG_WRONG, "%s: atoms %d and %d (or a periodic image) are closer than %g A", src, gbad.v + 1, gbad.i + 1, HM_MIN_DISTANCE);
  *ev = e;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalDestroy(HMEval *ev)
{
  HMEval e = *ev;
  PetscFunctionBegin;
  if (!e) PetscFunctionReturn(PETSC_SUCCESS);
  for (int t = 0; t < HM_MAX_LAYERS; t++) {
    PetscCall(PetscFree(e->feats[t]));
    PetscCall(PetscFree(e->xh[t]));
  }
  PetscCall(PetscFree(e->node_energy));
  PetscCall(PetscFree(e->elem));
  PetscCall(PetscFree(e->G));
  PetscCall(HMFoldedDestroy(&e->folded));
  PetscCall(HMDecompDestroy(&e->dd));
  PetscCall(PetscFree(e));
  *ev = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetGraph(HMEval e, const HMGraph **g, const HMGraph **gh)
{
  PetscFunctionBegin;
  if (g) *g = e->g;
  if (gh) *gh = e->gh;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetDecomp(HMEval e, HMDecomp *dd)
{
  PetscFunctionBegin;
  *dd = e->dd;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetHessianCutoff(HMEval e, double *hcut)
{
  PetscFunctionBegin;
  *hcut = e->hcut;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One interaction + product layer: h (n x dim in_ir) -> out (n x dimH). hoextra: generalised to any
   layer L on graph g with its halo and radial basis (the extra Hessian layers run on the Hessian graph,
   src/model/hessextra.c); residual = a layer t >= 1 (skip from the layer input). */
PetscErrorCode HMEvalLayerForward(HMEval e, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, double *out)
{
  HMModel        m = e->model;
  const int      t = residual ? 1 : 0;
  const PetscInt n = e->n, nl = e->nl, din = HMIrrepsDim(&L->in_ir), dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target);
  const PetscInt nsh = (m->max_ell + 1) * (m->max_ell + 1), nw = L->tp.weight_numel;
  double        *x, *agg, *X, *prod, *sc = NULL, *rb, *w, *Y, *vec, *mlpw, *cy, *scw, *xT, *aggT;
  PetscInt       maxmul = 0;

  PetscFunctionBegin;
  for (int k = 0; k < L->in_ir.n; k++) maxmul = PetscMax(maxmul, L->in_ir.b[k].mul);
  PetscCall(PetscMalloc4(nl * din + 1, &x, n * dmid + 1, &agg, n * dtg + 1, &X, n * m->dimH + 1, &prod));
  PetscCall(PetscMalloc2(nl * din + 1, &xT, n * dmid + 1, &aggT));
  PetscCall(PetscMalloc6(HM_EDGE_CHUNK * m->num_bessel, &rb, HM_EDGE_CHUNK * nw, &w, HM_EDGE_CHUNK * nsh, &Y, HM_EDGE_CHUNK * 3, &vec, 2 * HM_EDGE_CHUNK * L->mlp.maxw, &mlpw, L->tp.maxcy + maxmul + 1, &cy));
  PetscCall(PetscMalloc1(HMSymContractionWorkSize(&L->prod), &scw));
  if (t > 0) {
    PetscCall(PetscMalloc1(n * m->dimH, &sc));
    HMSkipTPApply(&L->skip, n, e->elem, h, m->dimH, 0.0, sc, m->dimH);
  }
  HMLinearApply(&L->linear_up, n, h, din, 0.0, x, din);
  /* the senders of the owned atoms' messages include ghosts within r_max: fetch their features */
  PetscCall(HMDecompHaloExchange(e->dd, halo, din, x));
  for (PetscInt i = 0; i < nl; i++) HMConvTPTransposeIn(&L->tp, x + i * din, xT + i * din);
  PetscCall(PetscArrayzero(aggT, n * dmid));
  /* gather: the messages into receiver r come from the neighbours of r (both directions are in the
     graph), with the edge vector of the reversed edge; the sum order is the canonical edge order */
  for (PetscInt e0 = 0; e0 < g->nedges; e0 += HM_EDGE_CHUNK) {
    const PetscInt ne = PetscMin(HM_EDGE_CHUNK, g->nedges - e0);
    for (PetscInt k = 0; k < ne; k++)
      for (int a = 0; a < 3; a++) vec[3 * k + a] = -g->vec[3 * (e0 + k) + a];
    HMRadialBasisEvalBatch(radial, ne, g->len + e0, rb);
    PetscCall(PetscLogEventBegin(HMLog.radial, 0, 0, 0, 0));
    HMRadialMLPApply(&L->mlp, ne, rb, w, mlpw);
    PetscCall(PetscLogEventEnd(HMLog.radial, 0, 0, 0, 0));
    PetscCall(HMSphericalHarmonics(m->max_ell, ne, vec, Y));
    PetscCall(PetscLogEventBegin(HMLog.conv, 0, 0, 0, 0));
    for (PetscInt k = 0; k < ne; k++) {
      const PetscInt r = g->sender[e0 + k], s = g->receiver[e0 + k];
      HMConvTPApplyT(&L->tp, xT + s * din, Y + k * nsh, w + k * nw, aggT + r * dmid, cy);
    }
    PetscCall(PetscLogEventEnd(HMLog.conv, 0, 0, 0, 0));
  }
  for (PetscInt i = 0; i < n; i++) HMConvTPTransposeOut(&L->tp, aggT + i * dmid, agg + i * dmid);
  HMLinearApply(&L->linear, n, agg, dmid, 0.0, X, dtg);
  for (PetscInt k = 0; k < n * dtg; k++) X[k] /= m->avg_num_neighbors;
  if (t == 0) {
    double *tmp;
    PetscCall(PetscMalloc1(n * dtg, &tmp));
    HMSkipTPApply(&L->skip, n, e->elem, X, dtg, 0.0, tmp, dtg);
    PetscCall(PetscArraycpy(X, tmp, n * dtg));
    PetscCall(PetscFree(tmp));
  }
  PetscCall(PetscLogEventBegin(HMLog.symcon, 0, 0, 0, 0));
  HMSymContractionApply(&L->prod, &L->target, n, e->elem, X, dtg, prod, m->dimH, scw);
  PetscCall(PetscLogEventEnd(HMLog.symcon, 0, 0, 0, 0));
  HMLinearApply(&L->prod_linear, n, prod, m->dimH, 0.0, out, m->dimH);
  if (sc)
    for (PetscInt k = 0; k < n * m->dimH; k++) out[k] += sc[k];
  PetscCall(PetscFree(sc));
  PetscCall(PetscFree(scw));
  PetscCall(PetscFree6(rb, w, Y, vec, mlpw, cy));
  PetscCall(PetscFree4(x, agg, X, prod));
  PetscCall(PetscFree2(xT, aggT));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalForward(HMEval e)
{
  HMModel        m = e->model;
  const PetscInt n = e->n;
  double        *A, *h0, *inter, *tmp;

  PetscFunctionBegin;
  if (e->forward_done) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscCalloc1(n * m->nel + 1, &A));
  PetscCall(PetscMalloc1(n * m->C + 1, &h0));
  for (PetscInt i = 0; i < n; i++) A[i * m->nel + e->elem[i]] = 1.0;
  HMLinearApply(&m->embedding, n, A, m->nel, 0.0, h0, m->C);
  for (int t = 0; t < m->nlayers; t++) {
    PetscCall(PetscMalloc1(n * m->dimH + 1, &e->feats[t]));
    PetscCall(PetscLogStagePush(HMLog.layer[PetscMin(t, HM_LOG_MAX_LAYERS - 1)]));
    PetscCall(HMEvalLayerForward(e, &m->layer[t], t > 0 ? PETSC_TRUE : PETSC_FALSE, e->g, HM_HALO_NEAR, &m->radial, t == 0 ? h0 : e->feats[t - 1], e->feats[t]));
    PetscCall(PetscLogStagePop());
  }
  PetscCall(HMEvalHessExtraForward(e)); /* hoextra: extra Hessian layers (num_interactions_hessian), src/model/hessextra.c */
  /* readouts: linear on every layer but the last, gated MLP on the last */
  PetscCall(PetscCalloc1(n + 1, &inter));
  PetscCall(PetscMalloc1(n * m->MLP.b[0].mul + 1, &tmp));
  for (int t = 0; t < m->nlayers; t++) {
    HMLayer *L = &m->layer[t];
    if (t < m->nlayers - 1) HMLinearApply(&L->readout, n, e->feats[t], m->dimH, 1.0, inter, 1);
    else {
      const PetscInt dm = m->MLP.b[0].mul;
      HMLinearApply(&L->readout, n, e->feats[t], m->dimH, 0.0, tmp, dm);
      for (PetscInt k = 0; k < n * dm; k++) tmp[k] = HMSiLUNorm(tmp[k]);
      HMLinearApply(&L->readout2, n, tmp, dm, 1.0, inter, 1);
    }
  }
  PetscCall(PetscMalloc1(n + 1, &e->node_energy));
  {
    double *parts, sums[2];
    PetscCall(PetscMalloc1(2 * n + 1, &parts));
    for (PetscInt i = 0; i < n; i++) {
      const double e0 = m->e0[e->elem[i]], ni = m->scale * inter[i] + m->shift;
      e->node_energy[i] = e0 + ni;
      parts[2 * i]      = e0;
      parts[2 * i + 1]  = ni;
    }
    /* sum(e0) + sum(interaction), each summed exactly and rounded once: independent of the rank count */
    PetscCall(HMDecompSumExact(e->dd, 2, parts, sums));
    e->energy = sums[0] + sums[1];
    PetscCall(PetscFree(parts));
  }
  PetscCall(PetscFree(tmp));
  PetscCall(PetscFree(inter));
  PetscCall(PetscFree(h0));
  PetscCall(PetscFree(A));
  e->forward_done = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetEnergy(HMEval e, double *energy, const double **node_energy)
{
  PetscFunctionBegin;
  PetscCheck(e->forward_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalForward() must be called first");
  if (energy) *energy = e->energy;
  if (node_energy) *node_energy = e->node_energy;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetNodeFeatures(HMEval e, PetscInt t, PetscInt *dim, const double **f)
{
  PetscFunctionBegin;
  PetscCheck(e->forward_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalForward() must be called first");
  PetscCheck(t >= 0 && t < e->model->nlayers + e->model->nhx, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "layer %" PetscInt_FMT " out of range", t);
  if (dim) *dim = e->model->dimH;
  if (f) *f = e->feats[t];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalNodeBlocks(HMEval e, double n9[], double D[])
{
  HMModel        m = e->model;
  const PetscInt n = e->n, dO = HMIrrepsDim(&m->O);
  double        *diag, *z;

  PetscFunctionBegin;
  PetscCall(HMEvalForward(e));
  PetscCall(PetscCalloc1(n * dO + 1, &diag));
  PetscCall(PetscMalloc1(n * 9 + 1, &z));
  {
    double *dt;
    PetscCall(PetscMalloc1(n * dO + 1, &dt));
    for (int k = 0; k < m->hnl; k++) {
      HMLinearApply(&m->proj_nodes_layerwise, n, e->feats[m->hl0 + k], m->dimH, 0.0, dt, dO);
      for (PetscInt i = 0; i < n * dO; i++) diag[i] += m->hw[k] * dt[i];
    }
    PetscCall(PetscFree(dt));
  }
  HMLinearApply(&m->proj_nodes, n, diag, dO, 0.0, z, 9);
  if (n9) PetscCall(PetscArraycpy(n9, z, n * 9));
  if (D)
    for (PetscInt i = 0; i < n; i++) HMIrreps9ToCartesian(z + 9 * i, D + 9 * i);
  PetscCall(PetscFree(z));
  PetscCall(PetscFree(diag));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalSetEdgeKernel(HMEval e, HMEdgeKernel k)
{
  PetscFunctionBegin;
  e->kernel = k;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalPrepareHIP(HMEval e)
{
  HMModel        m  = e->model;
  const PetscInt dH = m->dimH;
  PetscFunctionBegin;
  PetscCall(HMEvalForward(e));
  if (e->kernel != HM_EDGE_KERNEL_DIRECT) {
    if (!e->G) {
      const double *f[HM_MAX_LAYERS];
      PetscInt      nd;
      PetscCall(HMFoldedCreate(m, &e->folded));
      if (e->kernel == HM_EDGE_KERNEL_TABULATED) PetscCall(HMFoldedSetRadialTable(e->folded, HM_MIN_DISTANCE, e->table_tol));
      nd = HMFoldedNodeDim(e->folded);
      for (int k = 0; k < m->hnl; k++) f[k] = e->feats[m->hl0 + k];
      PetscCall(PetscMalloc1(e->nl * nd + 1, &e->G));
      PetscCall(HMFoldedNodeTensor(e->folded, e->n, f, e->G));
      /* ghosts within the Hessian cutoff send their G instead of every layer's features */
      PetscCall(HMDecompHaloExchange(e->dd, HM_HALO_FAR, nd, e->G));
    }
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  for (int k = 0; k < m->hnl; k++)
    if (!e->xh[k]) {
      PetscCall(PetscMalloc1(e->nl * dH + 1, &e->xh[k]));
      HMLinearApply(&m->hi_linear_up, e->n, e->feats[m->hl0 + k], dH, 0.0, e->xh[k], dH);
      /* edges of owned atoms start at ghosts within the Hessian cutoff too */
      PetscCall(HMDecompHaloExchange(e->dd, HM_HALO_FAR, dH, e->xh[k]));
    }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Folded kernel: e9/M of s -> r and, when s2 is given, M21 of the reversed edges. The kernel writes the
   irreps form into the output arrays, converted to Cartesian blocks in place (9 doubles either way). */
static PetscErrorCode HMEvalEdgeBlockPairs_Folded(HMEval e, PetscInt ne, const PetscInt s1[], const PetscInt s2[], const double vec[], double e9[], double M[], double M21[])
{
  double *out = e9 ? e9 : M;
  double  fedge, fpair;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(HMLog.edge_kernel, 0, 0, 0, 0));
  const double tstart = MPI_Wtime();
  PetscCall(HMFoldedEdgesBoth(e->folded, ne, s1, s2, vec, e->G, out, s2 ? M21 : NULL));
  for (PetscInt k = 0; k < ne; k++) {
    double t[9];
    if (M) {
      PetscCall(PetscArraycpy(t, out + 9 * k, 9));
      HMIrreps9ToCartesian(t, M + 9 * k);
    }
    if (s2 && M21) {
      PetscCall(PetscArraycpy(t, M21 + 9 * k, 9));
      HMIrreps9ToCartesian(t, M21 + 9 * k);
    }
  }
  PetscCall(HMFoldedGetFlops(e->folded, &fedge, NULL));
  PetscCall(HMFoldedGetPairFlops(e->folded, &fpair));
  e->edge_evals += s2 ? 2 * ne : ne;
  e->edge_flops += s2 ? ne * fpair : ne * fedge;
  e->edge_seconds += MPI_Wtime() - tstart;
  PetscCall(PetscLogEventEnd(HMLog.edge_kernel, 0, 0, 0, 0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static double direct_edge_flops(HMModel);

PetscErrorCode HMEvalEdgeBlocks(HMEval e, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[])
{
  HMModel        m = e->model;
  const PetscInt dH = m->dimH, dmid = m->hi_tp.dim_mid, dO = HMIrrepsDim(&m->O);
  const PetscInt nsh = (m->hedge_lmax + 1) * (m->hedge_lmax + 1), nw = m->hi_tp.weight_numel;
  double        *rb, *w, *Y, *mlpw, *cy, *raw, *lin, *off, *offt, *z;

  PetscFunctionBegin;
  PetscCall(HMEvalPrepareHIP(e));
  if (e->kernel != HM_EDGE_KERNEL_DIRECT) {
    PetscCall(HMEvalEdgeBlockPairs_Folded(e, ne, sender, NULL, vec, e9, M, NULL));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscLogEventBegin(HMLog.edge_kernel, 0, 0, 0, 0));
  const double tstart = MPI_Wtime();
  PetscCall(PetscMalloc6(HM_EDGE_CHUNK * m->num_bessel, &rb, HM_EDGE_CHUNK * nw, &w, HM_EDGE_CHUNK * nsh, &Y, 2 * HM_EDGE_CHUNK * m->hi_mlp.maxw, &mlpw, m->hi_tp.maxcy + 1, &cy, HM_EDGE_CHUNK * dmid, &raw));
  PetscCall(PetscMalloc4(HM_EDGE_CHUNK * dH, &lin, HM_EDGE_CHUNK * dO, &off, HM_EDGE_CHUNK * dO, &offt, HM_EDGE_CHUNK * 9, &z));
  for (PetscInt e0 = 0; e0 < ne; e0 += HM_EDGE_CHUNK) {
    const PetscInt nc = PetscMin(HM_EDGE_CHUNK, ne - e0);
    for (PetscInt k = 0; k < nc; k++) {
      const double *v = vec + 3 * (e0 + k);
      HMRadialBasisEval(&m->hradial, PetscSqrtReal(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), rb + k * m->num_bessel);
    }
    HMRadialMLPApply(&m->hi_mlp, nc, rb, w, mlpw);
    PetscCall(HMSphericalHarmonics(m->hedge_lmax, nc, vec + 3 * e0, Y));
    PetscCall(PetscArrayzero(off, nc * dO));
    for (int l = 0; l < m->hnl; l++) {
      for (PetscInt k = 0; k < nc; k++) HMConvTPApply(&m->hi_tp, e->xh[l] + sender[e0 + k] * dH, Y + k * nsh, w + k * nw, 0.0, raw + k * dmid, cy);
      HMLinearApply(&m->hi_linear, nc, raw, dmid, 0.0, lin, dH);
      HMLinearApply(&m->message_proj, nc, lin, dH, 0.0, offt, dO);
      for (PetscInt k = 0; k < nc * dO; k++) off[k] += m->hw[l] * offt[k];
    }
    HMLinearApply(&m->proj_edges, nc, off, dO, 0.0, z, 9);
    if (e9) PetscCall(PetscArraycpy(e9 + 9 * e0, z, nc * 9));
    if (M)
      for (PetscInt k = 0; k < nc; k++) HMIrreps9ToCartesian(z + 9 * k, M + 9 * (e0 + k));
  }
  PetscCall(PetscFree4(lin, off, offt, z));
  PetscCall(PetscFree6(rb, w, Y, mlpw, cy, raw));
  e->edge_evals += ne;
  e->edge_flops += ne * direct_edge_flops(m);
  e->edge_seconds += MPI_Wtime() - tstart;
  PetscCall(PetscLogEventEnd(HMLog.edge_kernel, 0, 0, 0, 0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Floating-point operations of one directed-edge evaluation by the direct kernel (multiply and add
   counted separately), from the model's dimensions. */
static double direct_edge_flops(HMModel m)
{
  double f = 0;
  for (int i = 0; i < m->hi_mlp.nlayers; i++) f += 2.0 * m->hi_mlp.h[i] * m->hi_mlp.h[i + 1];
  for (int k = 0; k < m->hi_tp.ninstr; k++) {
    const int d1 = 2 * m->hi_tp.in1.b[m->hi_tp.i1[k]].l + 1, d2 = 2 * m->hi_tp.in2.b[m->hi_tp.i2[k]].l + 1, dO = 2 * m->hi_tp.mid.b[k].l + 1;
    f += m->hnl * (2.0 * d1 * d2 * dO + m->hi_tp.in1.b[m->hi_tp.i1[k]].mul * (2.0 * d1 * dO + 2.0 * dO));
  }
  {
    const HMLinear *lins[2] = {&m->hi_linear, &m->message_proj};
    for (int q = 0; q < 2; q++)
      for (int k = 0; k < lins[q]->ninstr; k++) f += m->hnl * 2.0 * lins[q]->in.b[lins[q]->ia[k]].mul * lins[q]->out.b[lins[q]->ib[k]].mul * (2 * lins[q]->in.b[lins[q]->ia[k]].l + 1);
  }
  for (int k = 0; k < m->proj_edges.ninstr; k++) f += 2.0 * m->proj_edges.in.b[m->proj_edges.ia[k]].mul * (2 * m->proj_edges.in.b[m->proj_edges.ia[k]].l + 1);
  return f;
}

PetscErrorCode HMEvalEdgeBlockPairs(HMEval e, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[])
{
  PetscFunctionBegin;
  PetscCall(HMEvalPrepareHIP(e));
  if (e->kernel != HM_EDGE_KERNEL_DIRECT) PetscCall(HMEvalEdgeBlockPairs_Folded(e, np, s1, s2, v, NULL, M12, M21));
  else {
    double *vr;
    PetscCall(PetscMalloc1(3 * np + 1, &vr));
    for (PetscInt k = 0; k < 3 * np; k++) vr[k] = -v[k];
    PetscCall(HMEvalEdgeBlocks(e, np, s1, v, NULL, M12));
    PetscCall(HMEvalEdgeBlocks(e, np, s2, vr, NULL, M21));
    PetscCall(PetscFree(vr));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetEdgeKernelStats(HMEval e, const char **name, PetscInt64 *evals, double *seconds, double *flops)
{
  PetscFunctionBegin;
  if (name) *name = HMEdgeKernels[e->kernel];
  if (evals) *evals = e->edge_evals;
  if (seconds) *seconds = e->edge_seconds;
  if (flops) *flops = e->edge_flops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetHIPHaloWidth(HMEval e, PetscInt *width)
{
  PetscFunctionBegin;
  /* what the HIP head's halo exchange moves per ghost: the folded tensor G, or every used layer's
     hessian_interaction.linear_up features */
  if (e->kernel != HM_EDGE_KERNEL_DIRECT && e->folded) *width = HMFoldedNodeDim(e->folded);
  else *width = e->model->hnl * e->model->dimH;
  PetscFunctionReturn(PETSC_SUCCESS);
}

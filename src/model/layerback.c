/* Reverse pass of one MACE interaction + product layer (the adjoint of HMEvalLayerForward, layer.c). */
#include "model/layerback.h"
#include <hipmace/so3.h>
#include <hipmace/log.h>

#define HM_EDGE_CHUNK_B 128

/* Y(-v) = (-1)^l Y(v) for the real spherical harmonics of degree l (exact: every term is a monomial of
   degree l in the components of the normalised vector). */
static void ShFlip(PetscInt lmax, const double *Y, double *Yf)
{
  for (PetscInt l = 0; l <= lmax; l++)
    for (PetscInt k = l * l; k < (l + 1) * (l + 1); k++) Yf[k] = (l % 2) ? -Y[k] : Y[k];
}

/* The layer's forward up to the symmetric contraction input X (and x with its halo), as layer.c computes
   them (the same calls in the same order, so X is bitwise the forward's). */
static PetscErrorCode LayerRecompute(HMEval e, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, double *x, double *xT, double *X)
{
  HMModel        m = e->model;
  const PetscInt n = e->n, nl = e->nl, din = HMIrrepsDim(&L->in_ir), dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target);
  const PetscInt nsh = (m->max_ell + 1) * (m->max_ell + 1), nw = L->tp.weight_numel;
  double        *agg, *rb, *w, *Y, *vec, *mlpw, *cy, *aggT;
  PetscInt       maxmul = 0;

  PetscFunctionBegin;
  for (int k = 0; k < L->in_ir.n; k++) maxmul = PetscMax(maxmul, L->in_ir.b[k].mul);
  PetscCall(PetscMalloc2(n * dmid + 1, &agg, n * dmid + 1, &aggT));
  PetscCall(PetscMalloc6(HM_EDGE_CHUNK_B * m->num_bessel, &rb, HM_EDGE_CHUNK_B * nw, &w, HM_EDGE_CHUNK_B * nsh, &Y, HM_EDGE_CHUNK_B * 3, &vec, 2 * HM_EDGE_CHUNK_B * L->mlp.maxw, &mlpw, L->tp.maxcy + maxmul + 1, &cy));
  HMLinearApply(&L->linear_up, n, h, din, 0.0, x, din);
  PetscCall(HMDecompHaloExchange(e->dd, halo, din, x));
  for (PetscInt i = 0; i < nl; i++) HMConvTPTransposeIn(&L->tp, x + i * din, xT + i * din);
  PetscCall(PetscArrayzero(aggT, n * dmid));
  for (PetscInt e0 = 0; e0 < g->nedges; e0 += HM_EDGE_CHUNK_B) {
    const PetscInt ne = PetscMin(HM_EDGE_CHUNK_B, g->nedges - e0);
    for (PetscInt k = 0; k < ne; k++)
      for (int a = 0; a < 3; a++) vec[3 * k + a] = -g->vec[3 * (e0 + k) + a];
    HMRadialBasisEvalBatch(radial, ne, g->len + e0, rb);
    HMRadialMLPApply(&L->mlp, ne, rb, w, mlpw);
    PetscCall(HMSphericalHarmonics(m->max_ell, ne, vec, Y));
    for (PetscInt k = 0; k < ne; k++) HMConvTPApplyT(&L->tp, xT + g->receiver[e0 + k] * din, Y + k * nsh, w + k * nw, aggT + g->sender[e0 + k] * dmid, cy);
  }
  for (PetscInt i = 0; i < n; i++) HMConvTPTransposeOut(&L->tp, aggT + i * dmid, agg + i * dmid);
  HMLinearApply(&L->linear, n, agg, dmid, 0.0, X, dtg);
  for (PetscInt k = 0; k < n * dtg; k++) X[k] /= m->avg_num_neighbors;
  if (!residual) {
    double *tmp;
    PetscCall(PetscMalloc1(n * dtg + 1, &tmp));
    HMSkipTPApply(&L->skip, n, e->elem, X, dtg, 0.0, tmp, dtg);
    PetscCall(PetscArraycpy(X, tmp, n * dtg));
    PetscCall(PetscFree(tmp));
  }
  PetscCall(PetscFree6(rb, w, Y, vec, mlpw, cy));
  PetscCall(PetscFree2(agg, aggT));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalLayerBackward(HMEval e, const HMLayer *L, PetscBool residual, const HMGraph *g, HMHaloType halo, const HMRadialBasis *radial, const double *h, const double *dout, double *dh, double *ge)
{
  HMModel        m = e->model;
  const PetscInt n = e->n, nl = e->nl, din = HMIrrepsDim(&L->in_ir), dmid = L->tp.dim_mid, dtg = HMIrrepsDim(&L->target);
  const PetscInt nsh = (m->max_ell + 1) * (m->max_ell + 1), nw = L->tp.weight_numel, nb = m->num_bessel;
  const PetscInt ntpw = HMConvTPBackwardWorkSize(&L->tp), nmlpw = HMRadialMLPBackwardWorkSize(&L->mlp, HM_EDGE_CHUNK_B);
  double        *x, *xT, *X, *gp, *gX, *gagg, *gaggT, *dx, *dxT, *tpw, *scw;
  double        *rb, *drbv, *drb, *w, *dw, *Y, *dYv, *dY, *Yf, *vec, *mlpw;

  PetscFunctionBegin;
  PetscCheck(L->tp.dim_in2 == nsh, PETSC_COMM_SELF, PETSC_ERR_PLIB, "tensor product's second input is not the spherical harmonics up to l=%d", m->max_ell);
  PetscCall(PetscMalloc6(nl * din + 1, &x, n * dtg + 1, &X, n * m->dimH + 1, &gp, n * dtg + 1, &gX, n * dmid + 1, &gagg, n * din + 1, &dx));
  PetscCall(PetscMalloc3(nl * din + 1, &xT, nl * dmid + 1, &gaggT, n * din + 1, &dxT));
  PetscCall(LayerRecompute(e, L, residual, g, halo, radial, h, x, xT, X));
  /* out = prod_linear(symcontract(X)) (+ skip(h)) */
  HMLinearApplyTranspose(&L->prod_linear, n, dout, m->dimH, 0.0, gp, m->dimH);
  PetscCall(PetscMalloc1(HMSymContractionBackwardWorkSize(&L->prod) + 1, &scw));
  PetscCall(PetscLogEventBegin(HMLog.symcon, 0, 0, 0, 0));
  HMSymContractionBackward(&L->prod, &L->target, n, e->elem, X, dtg, gp, m->dimH, gX, scw);
  PetscCall(PetscLogEventEnd(HMLog.symcon, 0, 0, 0, 0));
  PetscCall(PetscFree(scw));
  if (!residual) { /* X = skip(Xpre) on the message: gX <- skip^T gX */
    HMSkipTPApplyTranspose(&L->skip, n, e->elem, gX, dtg, 0.0, X, dtg);
    PetscCall(PetscArraycpy(gX, X, n * dtg));
  }
  for (PetscInt k = 0; k < n * dtg; k++) gX[k] /= m->avg_num_neighbors;
  HMLinearApplyTranspose(&L->linear, n, gX, dtg, 0.0, gagg, dmid);
  /* pull: the receivers' message gradients, ghosts included, so that each owner differentiates its own
     atoms' outgoing messages over its own edge list in the canonical order */
  for (PetscInt i = 0; i < n; i++) HMConvTPTransposeOutBack(&L->tp, gagg + i * dmid, gaggT + i * dmid);
  PetscCall(HMDecompHaloExchange(e->dd, halo, dmid, gaggT));
  PetscCall(PetscArrayzero(dxT, n * din));
  PetscCall(PetscMalloc6(HM_EDGE_CHUNK_B * nb, &rb, HM_EDGE_CHUNK_B * nb, &drbv, HM_EDGE_CHUNK_B * nb, &drb, HM_EDGE_CHUNK_B * nw, &w, HM_EDGE_CHUNK_B * nw, &dw, HM_EDGE_CHUNK_B * nsh, &Y));
  PetscCall(PetscMalloc6(HM_EDGE_CHUNK_B * nsh * 3, &dYv, HM_EDGE_CHUNK_B * nsh, &dY, nsh, &Yf, HM_EDGE_CHUNK_B * 3, &vec, 2 * HM_EDGE_CHUNK_B * L->mlp.maxw + 1, &mlpw, ntpw + 1, &tpw));
  {
    double *bw;
    PetscCall(PetscMalloc1(nmlpw + 1, &bw));
    for (PetscInt e0 = 0; e0 < g->nedges; e0 += HM_EDGE_CHUNK_B) {
      const PetscInt ne = PetscMin(HM_EDGE_CHUNK_B, g->nedges - e0);
      for (PetscInt k = 0; k < ne; k++) {
        for (int a = 0; a < 3; a++) vec[3 * k + a] = -g->vec[3 * (e0 + k) + a];
        HMRadialBasisEvalDeriv(radial, g->len[e0 + k], rb + k * nb, drbv + k * nb);
      }
      HMRadialMLPApply(&L->mlp, ne, rb, w, mlpw);
      PetscCall(HMSphericalHarmonicsGrad(m->max_ell, ne, vec, Y, dYv));
      PetscCall(PetscLogEventBegin(HMLog.conv, 0, 0, 0, 0));
      for (PetscInt k = 0; k < ne; k++) {
        const PetscInt r = g->sender[e0 + k], s = g->receiver[e0 + k];
        /* message s -> r (into the owned atom): gradient wrt its Y and radial weights */
        HMConvTPBackwardT(&L->tp, xT + s * din, Y + k * nsh, w + k * nw, gaggT + r * dmid, NULL, dY + k * nsh, dw + k * nw, tpw);
        /* message r -> s (owned sender, edge vector -vec): gradient wrt the sender's features (not
           needed for the first layer, whose input is the element embedding) */
        if (dh) {
          ShFlip(m->max_ell, Y + k * nsh, Yf);
          HMConvTPBackwardT(&L->tp, xT + r * din, Yf, w + k * nw, gaggT + s * dmid, dxT + r * din, NULL, NULL, tpw);
        }
      }
      PetscCall(PetscLogEventEnd(HMLog.conv, 0, 0, 0, 0));
      HMRadialMLPBackward(&L->mlp, ne, rb, dw, drb, bw);
      for (PetscInt k = 0; k < ne; k++) {
        const double *v = g->vec + 3 * (e0 + k), len = g->len[e0 + k];
        double        dl = 0, dv[3] = {0, 0, 0};
        for (PetscInt b = 0; b < nb; b++) dl += drb[k * nb + b] * drbv[k * nb + b];
        for (PetscInt j = 0; j < nsh; j++)
          for (int a = 0; a < 3; a++) dv[a] += dY[k * nsh + j] * dYv[(k * nsh + j) * 3 + a];
        /* the message used -vec: d/dvec = -d/d(-vec); the distance's d len/d vec = vec / len */
        for (int a = 0; a < 3; a++) ge[3 * (e0 + k) + a] += dl * (v[a] / len) - dv[a];
      }
    }
    PetscCall(PetscFree(bw));
  }
  if (dh) {
    for (PetscInt i = 0; i < n; i++) HMConvTPTransposeInBack(&L->tp, dxT + i * din, dx + i * din);
    HMLinearApplyTranspose(&L->linear_up, n, dx, din, 0.0, dh, HMIrrepsDim(&L->in_ir));
    if (residual) HMSkipTPApplyTranspose(&L->skip, n, e->elem, dout, m->dimH, 1.0, dh, din);
  }
  PetscCall(PetscFree6(rb, drbv, drb, w, dw, Y));
  PetscCall(PetscFree6(dYv, dY, Yf, vec, mlpw, tpw));
  PetscCall(PetscFree6(x, X, gp, gX, gagg, dx));
  PetscCall(PetscFree3(xT, gaggT, dxT));
  PetscFunctionReturn(PETSC_SUCCESS);
}

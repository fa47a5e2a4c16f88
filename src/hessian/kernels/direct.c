/* Direct HIP edge kernel: the reference's sequence of operations per edge (tensor product, linear maps, layer sum). */
#include "hessian/hessianimpl.h"
#include <hipmace/so3.h>
#include <limits.h>

typedef struct {
  double *xh[HM_MAX_LAYERS]; /* hessian_interaction.linear_up(features) of the used layers, [nl][dimH] */
  double  flops;             /* per directed edge */
} Direct;

/* Floating-point operations of one directed-edge evaluation (multiply and add counted separately), from
   the model's dimensions. */
static double DirectEdgeFlops(HMModel m)
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

static PetscErrorCode Prepare_Direct(HMHessian h)
{
  Direct        *d  = (Direct *)h->data;
  HMModel        m  = h->model;
  const PetscInt dH = m->dimH;
  PetscInt       n, nl;
  HMDecomp       dd;

  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, NULL, &n, &nl, NULL));
  PetscCall(HMEvalGetDecomp(h->ev, &dd));
  {
    HMPrecision p;
    PetscCall(HMEvalGetPrecision(h->ev, &p));
    if (p == HM_PRECISION_SINGLE) PetscCall(PetscPrintf(m->comm, "hipmace: note: -precision single: the direct edge kernel runs in float64 (only the folded kernel has a float32 version)\n"));
  }
  for (int k = 0; k < m->hnl; k++)
    if (!d->xh[k]) {
      const double *f;
      PetscCall(HMEvalGetNodeFeatures(h->ev, m->hl0 + k, NULL, &f));
      PetscCall(PetscMalloc1(nl * dH + 1, &d->xh[k]));
      HMLinearApply(&m->hi_linear_up, n, f, dH, 0.0, d->xh[k], dH);
      /* edges of owned atoms start at ghosts within the Hessian cutoff too */
      PetscCall(HMDecompHaloExchange(dd, HM_HALO_FAR, dH, d->xh[k]));
    }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode EdgeBlocks_Direct(HMHessian h, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[])
{
  Direct        *d  = (Direct *)h->data;
  HMModel        m  = h->model;
  const PetscInt dH = m->dimH, dmid = m->hi_tp.dim_mid, dO = HMIrrepsDim(&m->O);
  const PetscInt nsh = (m->hedge_lmax + 1) * (m->hedge_lmax + 1), nw = m->hi_tp.weight_numel;
  double        *rb, *w, *Y, *mlpw, *cy, *raw, *lin, *off, *offt, *z;

  PetscFunctionBegin;
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
      for (PetscInt k = 0; k < nc; k++) HMConvTPApply(&m->hi_tp, d->xh[l] + sender[e0 + k] * dH, Y + k * nsh, w + k * nw, 0.0, raw + k * dmid, cy);
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
  h->edge_evals += ne;
  h->edge_flops += ne * d->flops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Each direction on its own: the reversed edges have vector -v. */
static PetscErrorCode Pairs_Direct(HMHessian h, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[])
{
  double *vr;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(3 * np + 1, &vr));
  for (PetscInt k = 0; k < 3 * np; k++) vr[k] = -v[k];
  PetscCall(EdgeBlocks_Direct(h, np, s1, v, NULL, M12));
  PetscCall(EdgeBlocks_Direct(h, np, s2, vr, NULL, M21));
  PetscCall(PetscFree(vr));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Every used layer's hessian_interaction.linear_up features. */
static PetscErrorCode HaloWidth_Direct(HMHessian h, PetscInt *width)
{
  PetscFunctionBegin;
  *width = h->model->hnl * h->model->dimH;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Memory_Direct(HMHessian h, double *bytes)
{
  PetscInt nl;
  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, NULL, NULL, &nl, NULL));
  *bytes = h->model->hnl * (double)nl * h->model->dimH * 8.0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Flops_Direct(HMHessian h, double *per_edge, double *per_pair)
{
  Direct *d = (Direct *)h->data;
  PetscFunctionBegin;
  if (per_edge) *per_edge = d->flops;
  if (per_pair) *per_pair = 2 * d->flops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Only the owned rows: the ghost rows are some other rank's owned rows. */
static PetscErrorCode CheckFinite_Direct(HMHessian h, int *atom, int *k)
{
  Direct *d = (Direct *)h->data;
  PetscFunctionBegin;
  for (int l = 0; l < h->model->hnl; l++)
    if (d->xh[l]) {
      const int a = HMHessianLowestBadAtom(h, h->model->dimH, d->xh[l]);
      if (a != INT_MAX) {
        *atom = a;
        *k    = l;
        break;
      }
    }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Destroy_Direct(HMHessian h)
{
  Direct *d = (Direct *)h->data;
  PetscFunctionBegin;
  for (int k = 0; k < HM_MAX_LAYERS; k++) PetscCall(PetscFree(d->xh[k]));
  PetscCall(PetscFree(h->data));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCreate_Direct(HMHessian h)
{
  Direct *d;
  PetscFunctionBegin;
  PetscCall(PetscNew(&d));
  static const struct _HMHessianKernelOps ops = {.prepare = Prepare_Direct, .edgeblocks = EdgeBlocks_Direct, .pairs = Pairs_Direct, .halowidth = HaloWidth_Direct, .memory = Memory_Direct, .flops = Flops_Direct, .checkfinite = CheckFinite_Direct, .destroy = Destroy_Direct};
  d->flops                                    = DirectEdgeFlops(h->model);
  h->data                                     = d;
  h->ops[0]                                   = ops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

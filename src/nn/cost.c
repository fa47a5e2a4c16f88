/* Analytic operation counts of the layer kernels (see cost.h): counted from the loops of linear.c, radial.c, tp.c and symcontract.c. */
#include "nn/cost.h"

/* The per-irrep products of HMLinearApply and HMSkipTPApply (same loops): per row d mul_b outputs, each a
   sum of mul_a multiply-adds, scaled by alpha and added; nel weight matrices per instruction. */
static void BlockMapCost(const HMIrreps *in, const HMIrreps *out, int ninstr, const int ia[], const int ib[], int nel, PetscInt dim_in, PetscInt dim_out, PetscInt n, double *flops, double *bytes)
{
  double f = 0, w = 0;
  for (int k = 0; k < ninstr; k++) {
    const HMIrrep *a = &in->b[ia[k]], *b = &out->b[ib[k]];
    const double   d = 2 * a->l + 1;
    f += d * b->mul * (2.0 * a->mul + 2.0);
    w += (double)a->mul * b->mul * nel;
  }
  *flops += f * n;
  *bytes += 8.0 * ((double)n * (dim_in + 2 * dim_out) + w);
}

void HMLinearCost(const HMLinear *lin, PetscInt n, double *flops, double *bytes)
{
  BlockMapCost(&lin->in, &lin->out, lin->ninstr, lin->ia, lin->ib, 1, lin->dim_in, lin->dim_out, n, flops, bytes);
}

void HMSkipTPCost(const HMSkipTP *s, PetscInt n, double *flops, double *bytes)
{
  BlockMapCost(&s->in, &s->out, s->ninstr, s->ia, s->ib, s->nel, s->dim_in, s->dim_out, n, flops, bytes);
}

void HMRadialMLPCost(const HMRadialMLP *mlp, PetscInt n, double *flops, double *bytes)
{
  double f = 0, w = 0;
  for (int i = 0; i < mlp->nlayers; i++) {
    f += 2.0 * mlp->h[i] * mlp->h[i + 1];
    if (i < mlp->nlayers - 1) f += 6.0 * mlp->h[i + 1];
    w += (double)mlp->h[i] * mlp->h[i + 1];
  }
  *flops += f * n;
  /* inputs and outputs of the network, weights once; the hidden activations stay in cache */
  *bytes += 8.0 * ((double)n * (mlp->h[0] + mlp->h[mlp->nlayers]) + w);
}

void HMConvTPCost(const HMConvTP *tp, PetscInt nedges, PetscInt nrecv, double *flops, double *bytes)
{
  double f = 0, in = 0;
  for (int k = 0; k < tp->ninstr; k++) {
    const HMIrrep *a  = &tp->in1.b[tp->i1[k]];
    const double   d1 = 2 * a->l + 1, dO = 2 * tp->mid.b[k].l + 1;
    /* the sparse 3j contraction with y, then per (c, u): d1 multiply-adds and the scaled update */
    f += 2.0 * (tp->cnz_off[k + 1] - tp->cnz_off[k]);
    f += dO * a->mul * (2.0 * d1 + 3.0);
    in += (double)a->mul * d1;
  }
  *flops += f * nedges;
  *bytes += 8.0 * ((double)nedges * (in + tp->dim_in2 + tp->weight_numel) + 2.0 * nrecv * tp->dim_mid);
}

void HMSymContractionCost(const HMSymContraction *sc, const HMIrreps *target, PetscInt n, const int elem[], double *flops, double *bytes)
{
  const int nel = sc->nout > 0 ? sc->c[0].nel : 0;
  double    f = 0, uw = 0, nbatch = 0;

  for (int k = 0; k < sc->nout; k++) {
    const HMContraction *ct = &sc->c[k];
    for (int nu = 1; nu <= ct->corr; nu++) {
      /* per channel: a multiply and an add per row of U_nu, nu - 1 multiplies and one add per run */
      f += (double)sc->C * (2.0 * ct->npair[nu] + (double)ct->ngroup[nu] * nu);
      uw += (double)ct->npair[nu] * sc->C;
    }
  }
  for (int e = 0; e < nel; e++) {
    PetscInt ne = 0;
    for (PetscInt z = 0; z < n; z++) ne += elem[z] == e;
    nbatch += (double)((ne + 7) / 8);
  }
  *flops += f * n;
  *bytes += 8.0 * ((double)n * (HMIrrepsDim(target) + HMIrrepsDim(&sc->out)) + nbatch * uw);
}

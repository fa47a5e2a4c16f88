/* e3nn o3.Linear and the one-hot FullyConnectedTensorProduct (skip_tp), as row-blocked products. */
#include "nn/nnimpl.h"
#include <petscblaslapack.h>

/* Rows per scan of HMSkipTPApply's grouping by element. */
#define HM_SKIP_ROWS 256

void HMLinearChunked_Private(PetscInt nz, const PetscInt *zlist, int d, int nin, int nout, double alpha, const double *B, PetscInt ldb, const HMGemmPacked *Bp, const double *in, PetscInt ldin, double *out, PetscInt ldout)
{
  double         it[HM_LIN_BUF], ot[HM_LIN_BUF];
  const PetscInt wide = (PetscInt)d * PetscMax(nin, nout);

  for (PetscInt z0 = 0; z0 < nz; z0 += HM_LIN_BUF / wide) {
    const PetscInt nc = PetscMin(HM_LIN_BUF / wide, nz - z0);
    for (PetscInt i = 0; i < nc; i++) {
      const double *iz = in + (zlist ? zlist[z0 + i] : z0 + i) * ldin;
      for (int u = 0; u < nin; u++)
        for (int mm = 0; mm < d; mm++) it[(i * d + mm) * nin + u] = iz[u * d + mm];
    }
    if (Bp) HMGemmRowsPacked(nc * d, alpha, it, nin, Bp, 0.0, ot, nout);
    else HMGemmRows(nc * d, nout, nin, alpha, it, nin, B, ldb, 0.0, ot, nout);
    for (PetscInt i = 0; i < nc; i++) {
      double *oz = out + (zlist ? zlist[z0 + i] : z0 + i) * ldout;
      for (int w = 0; w < nout; w++)
        for (int mm = 0; mm < d; mm++) oz[w * d + mm] += ot[(i * d + mm) * nout + w];
    }
  }
}

/* Y_z[w, m] += alpha sum_u W[u, w] X_z[u, m] for the rows z of zlist (or 0 .. nz-1): X_z is ma x d and
   Y_z mb x d inside each row (m fastest). The rows (z, m) are copied out transposed so that the product
   is one HMGemmRows over all of them, with W read once per tile instead of once per row (a BLAS call
   per row repacks W every time, which cost as much as the arithmetic). Row-independent like
   HMGemmRows. */
static void ApplyBlock(PetscInt nz, const PetscInt *zlist, int d, int ma, int mb, double alpha, const double *W, PetscInt ldw, const HMGemmPacked *Wp, const double *x, PetscInt ldx, double *y, PetscInt ldy)
{
  if ((PetscInt)d * PetscMax(ma, mb) > HM_LIN_BUF) {
    for (PetscInt i = 0; i < nz; i++) {
      const PetscInt z = zlist ? zlist[i] : i;
      /* row-major Y_z = alpha W^T X_z + Y_z as the column-major product Y_z^T = alpha X_z^T W + Y_z^T */
      const PetscBLASInt m_ = (PetscBLASInt)d, n_ = (PetscBLASInt)mb, k_ = (PetscBLASInt)ma, lw = (PetscBLASInt)ldw;
      const double       one = 1.0;
      BLASgemm_("N", "T", &m_, &n_, &k_, &alpha, x + z * ldx, &m_, W, &lw, &one, y + z * ldy, &m_);
    }
    return;
  }
  HMLinearChunked_Private(nz, zlist, d, ma, mb, alpha, W, ldw, Wp, x, ldx, y, ldy);
}

/* The instructions of a map between irreps: every (input block a, output block b) with the same l and
   parity, in the order of a then b; woff[k] is the offset of instruction k's weights, nel matrices of
   mul_a x mul_b each. Returns the number of weights. */
static PetscErrorCode MatchBlocks(const HMIrreps *in, const HMIrreps *out, int nel, int *ninstr, int **ia, int **ib, PetscInt **woff, double **alpha, PetscInt *nweights)
{
  int n = 0;

  PetscFunctionBegin;
  for (int a = 0; a < in->n; a++)
    for (int b = 0; b < out->n; b++)
      if (in->b[a].l == out->b[b].l && in->b[a].p == out->b[b].p) n++;
  *ninstr = n;
  PetscCall(PetscMalloc4(n + 1, ia, n + 1, ib, n + 1, woff, n + 1, alpha));
  n         = 0;
  *nweights = 0;
  for (int a = 0; a < in->n; a++)
    for (int b = 0; b < out->n; b++)
      if (in->b[a].l == out->b[b].l && in->b[a].p == out->b[b].p) {
        (*ia)[n]   = a;
        (*ib)[n]   = b;
        (*woff)[n] = *nweights;
        *nweights += (PetscInt)in->b[a].mul * nel * out->b[b].mul;
        n++;
      }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLinearSetUp(HMLinear *lin, const HMIrreps *in, const HMIrreps *out, const double *W, PetscInt64 numel, const char name[])
{
  PetscInt off;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(lin, sizeof(*lin)));
  lin->in      = *in;
  lin->out     = *out;
  lin->dim_in  = HMIrrepsDim(in);
  lin->dim_out = HMIrrepsDim(out);
  lin->W       = W;
  PetscCall(MatchBlocks(in, out, 1, &lin->ninstr, &lin->ia, &lin->ib, &lin->woff, &lin->alpha, &off));
  for (int k = 0; k < lin->ninstr; k++) {
    double fan = 0;
    for (int k2 = 0; k2 < lin->ninstr; k2++)
      if (lin->ib[k2] == lin->ib[k]) fan += in->b[lin->ia[k2]].mul;
    lin->alpha[k] = fan > 0 ? 1.0 / PetscSqrtReal(fan) : 0.0;
  }
  PetscCheck(numel == off, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "tensor '%s' has %" PetscInt64_FMT " weights but the linear map %s needs %" PetscInt_FMT, name, numel, "between its irreps", off);
  PetscCall(PetscCalloc1(lin->ninstr + 1, &lin->Wp));
  for (int k = 0; k < lin->ninstr; k++) {
    const PetscInt ma = in->b[lin->ia[k]].mul, mb = out->b[lin->ib[k]].mul;
    if (ma > 0 && mb > 0) PetscCall(HMGemmPack(mb, ma, W + lin->woff[k], mb, &lin->Wp[k]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLinearDestroy(HMLinear *lin)
{
  PetscFunctionBegin;
  for (int k = 0; k < lin->ninstr && lin->Wp; k++) PetscCall(HMGemmPackedDestroy(&lin->Wp[k]));
  PetscCall(PetscFree(lin->Wp));
  PetscCall(PetscFree4(lin->ia, lin->ib, lin->woff, lin->alpha));
  PetscCall(PetscMemzero(lin, sizeof(*lin)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static void ZeroRows(PetscInt n, PetscInt dim, double *y, PetscInt ldy)
{
  for (PetscInt z = 0; z < n; z++) memset(y + z * ldy, 0, (size_t)dim * sizeof(double));
}

void HMLinearApply(const HMLinear *lin, PetscInt n, const double *x, PetscInt ldx, double beta, double *y, PetscInt ldy)
{
  if (beta == 0.0) ZeroRows(n, lin->dim_out, y, ldy);
  for (int k = 0; k < lin->ninstr; k++) {
    const HMIrrep *a = &lin->in.b[lin->ia[k]], *b = &lin->out.b[lin->ib[k]];
    const int      d  = 2 * a->l + 1;
    const double  *W  = lin->W + lin->woff[k];
    const double  *xa = x + HMIrrepsOffset(&lin->in, lin->ia[k]);
    double        *yb = y + HMIrrepsOffset(&lin->out, lin->ib[k]);

    if (a->mul == 0 || b->mul == 0) continue;
    if (d == 1) {
      /* scalars: Y[z,w] += alpha X[z,u] W[u,w] over all rows */
      HMGemmRowsPacked(n, lin->alpha[k], xa, ldx, &lin->Wp[k], 1.0, yb, ldy);
    } else {
      ApplyBlock(n, NULL, d, a->mul, b->mul, lin->alpha[k], W, b->mul, &lin->Wp[k], xa, ldx, yb, ldy);
    }
  }
}

PetscErrorCode HMSkipTPSetUp(HMSkipTP *s, const HMIrreps *in, int nel, const HMIrreps *out, const double *W, PetscInt64 numel, const char name[])
{
  PetscInt off;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(s, sizeof(*s)));
  s->in      = *in;
  s->out     = *out;
  s->dim_in  = HMIrrepsDim(in);
  s->dim_out = HMIrrepsDim(out);
  s->nel     = nel;
  s->W       = W;
  /* FullyConnectedTensorProduct instruction order: input block, (one-hot block), output block */
  PetscCall(MatchBlocks(in, out, nel, &s->ninstr, &s->ia, &s->ib, &s->woff, &s->alpha, &off));
  for (int k = 0; k < s->ninstr; k++) s->alpha[k] = in->b[s->ia[k]].mul > 0 ? 1.0 / PetscSqrtReal((double)in->b[s->ia[k]].mul * nel) : 0.0;
  PetscCheck(numel == off, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "tensor '%s' has %" PetscInt64_FMT " weights but the tensor product needs %" PetscInt_FMT, name, numel, off);
  PetscCall(PetscCalloc1(s->ninstr * nel + 1, &s->Wp));
  for (int k = 0; k < s->ninstr; k++) {
    const PetscInt ma = in->b[s->ia[k]].mul, mb = out->b[s->ib[k]].mul;
    for (int el = 0; el < nel && ma > 0 && mb > 0; el++) PetscCall(HMGemmPack(mb, ma, W + s->woff[k] + (PetscInt)el * mb, nel * mb, &s->Wp[k * nel + el]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSkipTPDestroy(HMSkipTP *s)
{
  PetscFunctionBegin;
  for (int k = 0; k < s->ninstr * s->nel && s->Wp; k++) PetscCall(HMGemmPackedDestroy(&s->Wp[k]));
  PetscCall(PetscFree(s->Wp));
  PetscCall(PetscFree4(s->ia, s->ib, s->woff, s->alpha));
  PetscCall(PetscMemzero(s, sizeof(*s)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The rows z0 .. z0 + nc - 1 of element el, into zl; their count. */
static PetscInt ElementRows(const int elem[], PetscInt z0, PetscInt nc, int el, PetscInt zl[])
{
  PetscInt nl = 0;
  for (PetscInt i = 0; i < nc; i++)
    if (elem[z0 + i] == el) zl[nl++] = z0 + i;
  return nl;
}

void HMSkipTPApply(const HMSkipTP *s, PetscInt n, const int elem[], const double *x, PetscInt ldx, double beta, double *y, PetscInt ldy)
{
  if (beta == 0.0) ZeroRows(n, s->dim_out, y, ldy);
  for (int k = 0; k < s->ninstr; k++) {
    const HMIrrep *a = &s->in.b[s->ia[k]], *b = &s->out.b[s->ib[k]];
    const int      d  = 2 * a->l + 1;
    const PetscInt xo = HMIrrepsOffset(&s->in, s->ia[k]), yo = HMIrrepsOffset(&s->out, s->ib[k]);
    const int      ldw = s->nel * b->mul; /* W[u, e, w]: row stride over u */

    if (a->mul == 0 || b->mul == 0) continue;
    /* rows of one element share W_e: one product per element and block of rows */
    for (PetscInt z0 = 0; z0 < n; z0 += HM_SKIP_ROWS) {
      const PetscInt nc = PetscMin(HM_SKIP_ROWS, n - z0);
      for (int el = 0; el < s->nel; el++) {
        PetscInt       zl[HM_SKIP_ROWS];
        const PetscInt nl = ElementRows(elem, z0, nc, el, zl);
        if (nl) ApplyBlock(nl, zl, d, a->mul, b->mul, s->alpha[k], s->W + s->woff[k] + (PetscInt)el * b->mul, ldw, &s->Wp[k * s->nel + el], x + xo, ldx, y + yo, ldy);
      }
    }
  }
}

/* y += alpha_k x_a W_k per instruction k and component m over the rows (their [m][u] blocks are rows of mul_a
   values, ldx apart from atom to atom): Wp[k * nper + el] */
static void ApplyT(int ninstr, const int *ia, const int *ib, const double *alpha, const HMIrreps *in, const HMIrreps *out, const HMGemmPacked *Wp, int nper, int el, PetscInt n, const PetscInt *rows, const double *xT, PetscInt ldx, double *yT, PetscInt ldy)
{
  for (int k = 0; k < ninstr; k++) {
    const HMIrrep *a = &in->b[ia[k]], *b = &out->b[ib[k]];
    const PetscInt xo = HMIrrepsOffset(in, ia[k]), yo = HMIrrepsOffset(out, ib[k]);
    if (a->mul == 0 || b->mul == 0) continue;
    for (int m = 0; m < 2 * a->l + 1; m++) HMGemmRowsPackedIndexed(n, rows, alpha[k], xT + xo + m * a->mul, ldx, &Wp[k * nper + el], 1.0, yT + yo + m * b->mul, ldy);
  }
}

void HMLinearApplyT(const HMLinear *lin, PetscInt n, const double *xT, PetscInt ldx, double *yT, PetscInt ldy)
{
  ApplyT(lin->ninstr, lin->ia, lin->ib, lin->alpha, &lin->in, &lin->out, lin->Wp, 1, 0, n, NULL, xT, ldx, yT, ldy);
}

void HMSkipTPApplyT(const HMSkipTP *s, PetscInt n, const int elem[], const double *xT, PetscInt ldx, double *yT, PetscInt ldy)
{
  for (PetscInt z0 = 0; z0 < n; z0 += HM_SKIP_ROWS) {
    const PetscInt nc = PetscMin(HM_SKIP_ROWS, n - z0);
    for (int el = 0; el < s->nel; el++) {
      PetscInt       zl[HM_SKIP_ROWS];
      const PetscInt nl = ElementRows(elem, z0, nc, el, zl);
      if (nl) ApplyT(s->ninstr, s->ia, s->ib, s->alpha, &s->in, &s->out, s->Wp, s->nel, el, nl, zl, xT, ldx, yT, ldy);
    }
  }
}

/* ApplyT in float, with the maps' weights rounded to float (Wp) */
static void ApplyTS(int ninstr, const int *ia, const int *ib, const double *alpha, const HMIrreps *in, const HMIrreps *out, const HMGemmPackedS *Wp, int nper, int el, PetscInt n, const PetscInt *rows, const float *xT, PetscInt ldx, float *yT, PetscInt ldy)
{
  for (int k = 0; k < ninstr; k++) {
    const HMIrrep *a = &in->b[ia[k]], *b = &out->b[ib[k]];
    const PetscInt xo = HMIrrepsOffset(in, ia[k]), yo = HMIrrepsOffset(out, ib[k]);
    if (a->mul == 0 || b->mul == 0) continue;
    for (int m = 0; m < 2 * a->l + 1; m++) HMGemmRowsPackedS(n, rows, (float)alpha[k], xT + xo + m * a->mul, ldx, &Wp[k * nper + el], 1.0f, yT + yo + m * b->mul, ldy);
  }
}

void HMLinearApplyTS(const HMLinear *lin, const HMGemmPackedS Wp[], PetscInt n, const float *xT, PetscInt ldx, float *yT, PetscInt ldy)
{
  ApplyTS(lin->ninstr, lin->ia, lin->ib, lin->alpha, &lin->in, &lin->out, Wp, 1, 0, n, NULL, xT, ldx, yT, ldy);
}

void HMSkipTPApplyTS(const HMSkipTP *s, const HMGemmPackedS Wp[], PetscInt n, const int elem[], const float *xT, PetscInt ldx, float *yT, PetscInt ldy)
{
  for (PetscInt z0 = 0; z0 < n; z0 += HM_SKIP_ROWS) {
    const PetscInt nc = PetscMin(HM_SKIP_ROWS, n - z0);
    for (int el = 0; el < s->nel; el++) {
      PetscInt       zl[HM_SKIP_ROWS];
      const PetscInt nl = ElementRows(elem, z0, nc, el, zl);
      if (nl) ApplyTS(s->ninstr, s->ia, s->ib, s->alpha, &s->in, &s->out, Wp, s->nel, el, nl, zl, xT, ldx, yT, ldy);
    }
  }
}

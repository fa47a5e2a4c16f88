/* Radial features: Bessel basis with polynomial envelope, and the radial MLP (FullyConnectedNet). */
#include "nn/nnimpl.h"

void HMRadialBasisEval(const HMRadialBasis *rb, double d, double out[])
{
  const double env = HMPolynomialCutoff(d, rb->rc, rb->p);
  for (int k = 0; k < rb->nbessel; k++) out[k] = rb->prefactor * (PetscSinReal(rb->freq[k] * d) / d) * env;
}

PetscErrorCode HMRadialMLPSetUp(HMRadialMLP *mlp, HMSafetensors st, const char prefix[], PetscInt h0, PetscInt nhidden, const PetscInt hidden[], PetscInt hlast)
{
  char                name[256];
  int                 nl = 0;
  const HMTensorInfo *info;
  const char         *path;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(mlp, sizeof(*mlp)));
  PetscCall(HMSafetensorsGetPath(st, &path));
  for (;;) {
    PetscCall(PetscSNPrintf(name, sizeof(name), "%s.layer%d.weight", prefix, nl));
    PetscCall(HMSafetensorsFind(st, name, &info));
    if (!info) break;
    nl++;
  }
  PetscCheck(nl >= 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s.layer0.weight' is missing", path, prefix);
  PetscCheck(hidden == NULL || nl == nhidden + 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: radial MLP '%s' has %d layers but the config's radial_MLP implies %d", path, prefix, nl, (int)nhidden + 1);
  mlp->nlayers = nl;
  PetscCall(PetscMalloc1(nl + 1, &mlp->h));
  PetscCall(PetscCalloc1(nl, &mlp->W));
  PetscCall(PetscCalloc1(nl, &mlp->Wp));
  mlp->h[0] = h0;
  for (int i = 0; i < nl; i++) {
    PetscInt64    shape[2] = {mlp->h[i], -1};
    const double *W;
    PetscCall(PetscSNPrintf(name, sizeof(name), "%s.layer%d.weight", prefix, i));
    if (i == nl - 1) shape[1] = hlast;
    else if (hidden) shape[1] = hidden[i];
    PetscCall(HMSafetensorsGetF64(st, name, 2, shape, &W));
    PetscCall(HMSafetensorsFind(st, name, &info));
    mlp->h[i + 1] = (PetscInt)info->shape[1];
    PetscCall(PetscMalloc1(mlp->h[i] * mlp->h[i + 1], &mlp->W[i]));
    /* e3nn divides the weights by sqrt(fan_in) before the product: keep that rounding */
    for (PetscInt k = 0; k < mlp->h[i] * mlp->h[i + 1]; k++) mlp->W[i][k] = W[k] / PetscSqrtReal((double)mlp->h[i]);
    PetscCall(HMGemmPack(mlp->h[i + 1], mlp->h[i], mlp->W[i], mlp->h[i + 1], &mlp->Wp[i]));
  }
  mlp->maxw = 0;
  for (int i = 0; i <= nl; i++) mlp->maxw = PetscMax(mlp->maxw, mlp->h[i]);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRadialMLPDestroy(HMRadialMLP *mlp)
{
  PetscFunctionBegin;
  for (int i = 0; i < mlp->nlayers; i++) {
    PetscCall(PetscFree(mlp->W[i]));
    if (mlp->Wp) PetscCall(HMGemmPackedDestroy(&mlp->Wp[i]));
  }
  PetscCall(PetscFree(mlp->W));
  PetscCall(PetscFree(mlp->Wp));
  PetscCall(PetscFree(mlp->h));
  PetscCall(PetscMemzero(mlp, sizeof(*mlp)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

void HMRadialMLPApply(const HMRadialMLP *mlp, PetscInt n, const double *x, double *out, double *work)
{
  const double *cur    = x;
  double       *buf[2] = {work, work + n * mlp->maxw};

  if (n == 0) return;
  for (int i = 0; i < mlp->nlayers; i++) {
    const int last = i == mlp->nlayers - 1;
    double   *dst  = last ? out : buf[i % 2];
    HMGemmRowsPacked(n, 1.0, cur, mlp->h[i], &mlp->Wp[i], 0.0, dst, mlp->h[i + 1]);
    if (!last) HMSiLUNormArray(n * mlp->h[i + 1], dst);
    cur = dst;
  }
}

void HMRadialMLPApplyS(const HMRadialMLP *mlp, const HMGemmPackedS Wp[], PetscInt n, const float *x, float *out, float *work)
{
  const float *cur    = x;
  float       *buf[2] = {work, work + n * mlp->maxw};

  if (n == 0) return;
  for (int i = 0; i < mlp->nlayers; i++) {
    const int last = i == mlp->nlayers - 1;
    float    *dst  = last ? out : buf[i % 2];
    HMGemmRowsPackedS(n, NULL, 1.0f, cur, mlp->h[i], &Wp[i], 0.0f, dst, mlp->h[i + 1]);
    if (!last) HMSiLUNormArrayS(n * mlp->h[i + 1], dst);
    cur = dst;
  }
}

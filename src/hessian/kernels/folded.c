/* Folded HIP edge kernel: per-atom tensors G and a cheap per-edge contraction (hessian/folded.h); also the tabulated kernel's body. */
#include "hessian/hessianimpl.h"
#include "hessian/folded.h"
#include <hipmace/so3.h>
#include <limits.h>

typedef struct {
  HMFolded  folded; /* folded constants of the model's HIP head */
  double   *G;      /* folded per-atom tensors of owned atoms and far ghosts, [nl][nodedim] */
  float    *GS;     /* -precision single: G rounded to float (then G is freed), or NULL */
  PetscBool tabulated;
} Folded;

PetscErrorCode HMHessianFoldedPrepare(HMHessian h)
{
  Folded       *d = (Folded *)h->data;
  HMModel       m = h->model;
  const double *f[HM_MAX_LAYERS];
  PetscInt      nd, n, nl;
  HMDecomp      dd;

  PetscFunctionBegin;
  if (d->G || d->GS) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMEvalGetSizes(h->ev, NULL, &n, &nl, NULL));
  PetscCall(HMEvalGetDecomp(h->ev, &dd));
  PetscCall(HMFoldedCreate(m, &d->folded));
  if (d->tabulated) PetscCall(HMFoldedSetRadialTable(d->folded, HM_MIN_DISTANCE, h->table_tol));
  nd = HMFoldedNodeDim(d->folded);
  for (int k = 0; k < m->hnl; k++) PetscCall(HMEvalGetNodeFeatures(h->ev, m->hl0 + k, NULL, &f[k]));
  PetscCall(PetscMalloc1(nl * nd + 1, &d->G));
  PetscCall(HMFoldedNodeTensor(d->folded, n, f, d->G));
  /* the ghost rows of G are not touched yet (not resident): without the features the peak is the larger of
     features + owned G and the whole G, not their sum */
  if (h->release_features) PetscCall(HMEvalReleaseNodeFeatures(h->ev));
  /* ghosts within the Hessian cutoff send their G instead of every layer's features */
  PetscCall(HMDecompHaloExchange(dd, HM_HALO_FAR, nd, d->G));
  {
    HMPrecision p;
    PetscCall(HMEvalGetPrecision(h->ev, &p));
    /* the tabulated kernel's table is float64; the run says so rather than report float32 it did not use */
    if (p == HM_PRECISION_SINGLE && d->tabulated) PetscCall(PetscPrintf(m->comm, "hipmace: note: -precision single: the tabulated edge kernel runs in float64 (only the folded kernel has a float32 version)\n"));
    if (p == HM_PRECISION_SINGLE && !d->tabulated) {
      PetscCall(HMFoldedSetSingle(d->folded));
      PetscCall(PetscMalloc1(nl * nd + 1, &d->GS));
      for (PetscInt q = 0; q < nl * nd; q++) d->GS[q] = (float)d->G[q];
      PetscCall(PetscFree(d->G));
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* e9/M of s -> r and, when s2 is given, M21 of the reversed edges. The kernel writes the irreps form
   into the output arrays, converted to Cartesian blocks in place (9 doubles either way). */
static PetscErrorCode BlocksFolded(HMHessian h, PetscInt ne, const PetscInt s1[], const PetscInt s2[], const double vec[], double e9[], double M[], double M21[])
{
  Folded *d   = (Folded *)h->data;
  double *out = e9 ? e9 : M;
  double  fedge, fpair;

  PetscFunctionBegin;
  if (d->GS) PetscCall(HMFoldedEdgesBothS(d->folded, ne, s1, s2, vec, d->GS, out, s2 ? M21 : NULL));
  else PetscCall(HMFoldedEdgesBoth(d->folded, ne, s1, s2, vec, d->G, out, s2 ? M21 : NULL));
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
  PetscCall(HMFoldedGetFlops(d->folded, &fedge, NULL, &fpair));
  h->edge_evals += s2 ? 2 * ne : ne;
  h->edge_flops += s2 ? ne * fpair : ne * fedge;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode EdgeBlocks_Folded(HMHessian h, PetscInt ne, const PetscInt sender[], const double vec[], double e9[], double M[])
{
  PetscFunctionBegin;
  PetscCall(BlocksFolded(h, ne, sender, NULL, vec, e9, M, NULL));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One radial network per pair. */
static PetscErrorCode Pairs_Folded(HMHessian h, PetscInt np, const PetscInt s1[], const PetscInt s2[], const double v[], double M12[], double M21[])
{
  PetscFunctionBegin;
  PetscCall(BlocksFolded(h, np, s1, s2, v, NULL, M12, M21));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The folded tensor G. */
static PetscErrorCode HaloWidth_Folded(HMHessian h, PetscInt *width)
{
  Folded *d = (Folded *)h->data;
  PetscFunctionBegin;
  *width = HMFoldedNodeDim(d->folded);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Per-atom folded tensors G of owned atoms and far ghosts, plus the kernel's work arrays (2.2 MB at the
   default model's widths, 1.5 MB more in single precision) and the tabulated kernel's radial table (0.4-1.2 MB at 1e-8 .. 1e-12). */
static PetscErrorCode Memory_Folded(HMHessian h, double *bytes)
{
  HMFolded f;
  PetscInt nl;
  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, NULL, NULL, &nl, NULL));
  PetscCall(HMFoldedCreate(h->model, &f));
  {
    /* -precision single: G and its float copy side by side while it is rounded */
    HMPrecision p;
    PetscCall(HMEvalGetPrecision(h->ev, &p));
    *bytes = (double)nl * (double)HMFoldedNodeDim(f) * (p == HM_PRECISION_SINGLE ? 12.0 : 8.0) + 6.0 * 1048576.0;
  }
  PetscCall(HMFoldedDestroy(&f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Flops_Folded(HMHessian h, double *per_edge, double *per_pair)
{
  Folded *d = (Folded *)h->data;
  PetscFunctionBegin;
  PetscCall(HMFoldedGetFlops(d->folded, per_edge, NULL, per_pair));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* G is not scanned: a non-finite feature is caught by HMEvalCheckFinite and reaches every block. */
static PetscErrorCode CheckFinite_Folded(HMHessian h, int *atom, int *k)
{
  PetscFunctionBegin;
  (void)h, (void)atom, (void)k;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Destroy_Folded(HMHessian h)
{
  Folded *d = (Folded *)h->data;
  PetscFunctionBegin;
  PetscCall(PetscFree(d->G));
  PetscCall(PetscFree(d->GS));
  PetscCall(HMFoldedDestroy(&d->folded));
  PetscCall(PetscFree(h->data));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianFoldedSetUp(HMHessian h, PetscBool tabulated)
{
  Folded *d;
  PetscFunctionBegin;
  PetscCall(PetscNew(&d));
  static const struct _HMHessianKernelOps ops = {.prepare = HMHessianFoldedPrepare, .edgeblocks = EdgeBlocks_Folded, .pairs = Pairs_Folded, .halowidth = HaloWidth_Folded, .memory = Memory_Folded, .flops = Flops_Folded, .checkfinite = CheckFinite_Folded, .destroy = Destroy_Folded};
  d->tabulated                                = tabulated;
  h->data                                     = d;
  h->ops[0]                                   = ops;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCreate_Folded(HMHessian h)
{
  PetscFunctionBegin;
  PetscCall(HMHessianFoldedSetUp(h, PETSC_FALSE));
  PetscFunctionReturn(PETSC_SUCCESS);
}

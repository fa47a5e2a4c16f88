/* Numerical guards of the Hessian: non-finite kernel inputs and Hessian blocks, reported collectively by input atom. */
#include "hessian/hessianimpl.h"
#include <limits.h>
#include <math.h>

typedef struct {
  PetscInt        n, nl, rstart;
  const PetscInt *gid, *pidx;
} Local;

int HMHessianLowestBadAtom(HMHessian h, PetscInt w, const double *a)
{
  int             best = INT_MAX;
  PetscInt        n;
  const PetscInt *gid;
  if (HMEvalGetSizes(h->ev, NULL, &n, NULL, NULL) || HMEvalGetLocalAtoms(h->ev, &gid, NULL)) return INT_MAX;
  for (PetscInt i = 0; i < n; i++)
    for (PetscInt k = 0; k < w; k++)
      if (!isfinite(a[i * w + k])) {
        if (gid[i] < best) best = (int)gid[i];
        break;
      }
  return best;
}

/* Input index of the local atom (owned or ghost) with partition index p; -1 if not held here. */
static PetscInt LocalInputIndex(const Local *e, PetscInt p)
{
  if (p >= e->rstart && p < e->rstart + e->n) return e->gid[p - e->rstart];
  for (PetscInt i = e->n; i < e->nl; i++)
    if (e->pidx[i] == p) return e->gid[i];
  return -1;
}

/* The kernel's per-atom inputs: the lowest atom of the first used layer with a non-finite entry. */
static PetscErrorCode CheckInputs(HMHessian h)
{
  HMModel m = h->model;
  struct {
    int v, i;
  } bad    = {INT_MAX, INT_MAX}, gbad;
  int atom = INT_MAX, k = 0;

  PetscFunctionBegin;
  if (h->setup) PetscCall((*h->ops->checkfinite)(h, &atom, &k));
  if (atom != INT_MAX) bad.v = k, bad.i = atom;
  /* MINLOC compares v first, then the index: the earliest layer, then the lowest atom */
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  PetscCheck(gbad.v == INT_MAX, m->comm, PETSC_ERR_FP, "atom %d: HIP-head input features of layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, m->hl0 + gbad.v + 1, m->path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCheckFinite(HMHessian h, Mat H)
{
  HMModel   m = h->model;
  Local     L, *e = &L;
  PetscInt  rlo, rhi;
  PetscBool sym;
  struct {
    int v, i;
  } bad = {INT_MAX, INT_MAX}, gbad;

  PetscFunctionBegin;
  PetscCall(CheckInputs(h));
  if (!H) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMEvalGetSizes(h->ev, NULL, &L.n, &L.nl, &L.rstart));
  PetscCall(HMEvalGetLocalAtoms(h->ev, &L.gid, &L.pidx));
  PetscCall(PetscObjectTypeCompareAny((PetscObject)H, &sym, MATSBAIJ, MATSEQSBAIJ, MATMPISBAIJ, ""));
  PetscCall(MatGetOwnershipRange(H, &rlo, &rhi));
  /* SBAIJ hands out rows only between these two calls */
  if (sym) PetscCall(MatGetRowUpperTriangular(H));
  for (PetscInt r = rlo; r < rhi; r++) {
    PetscInt           nc;
    const PetscInt    *cols;
    const PetscScalar *vals;
    PetscCall(MatGetRow(H, r, &nc, &cols, &vals));
    for (PetscInt k = 0; k < nc; k++)
      if (!isfinite(PetscRealPart(vals[k]))) {
        const PetscInt a = e->gid[r / 3 - e->rstart], b = LocalInputIndex(e, cols[k] / 3);
        const int      lo = (int)PetscMin(a, b < 0 ? a : b), hi = (int)PetscMax(a, b);
        if (lo < bad.v || (lo == bad.v && hi < bad.i)) bad.v = lo, bad.i = hi;
      }
    PetscCall(MatRestoreRow(H, r, &nc, &cols, &vals));
  }
  if (sym) PetscCall(MatRestoreRowUpperTriangular(H));
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  if (gbad.v == INT_MAX) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(gbad.v != gbad.i, m->comm, PETSC_ERR_FP, "atom %d: diagonal Hessian block is not finite (NaN or Inf); model %s", gbad.v + 1, m->path);
  SETERRQ(m->comm, PETSC_ERR_FP, "atoms %d and %d: Hessian block is not finite (NaN or Inf); model %s", gbad.v + 1, gbad.i + 1, m->path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

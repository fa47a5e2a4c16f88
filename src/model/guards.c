/* Numerical guards: non-finite node features, energies, HIP inputs and Hessian blocks, reported collectively by input atom. */
#include "model/modelimpl.h"
#include <limits.h>
#include <math.h>

/* What was found first; ordered so that MPI_MINLOC on (stage, atom) picks the earliest stage of the
   pipeline and, within it, the lowest input index. */
enum {
  GUARD_FEATURES = 0, /* + layer: node features after interaction layer t */
  GUARD_ENERGY   = HM_MAX_LAYERS,
  GUARD_HIP      = HM_MAX_LAYERS + 1, /* + k: HIP-head inputs of used layer k */
  GUARD_NONE     = INT_MAX
};

/* Lowest input index among this rank's owned atoms whose row of width w is not all finite, INT_MAX if none. */
static int lowest_bad_atom(HMEval e, PetscInt w, const double *a)
{
  int best = INT_MAX;
  for (PetscInt i = 0; i < e->n; i++)
    for (PetscInt k = 0; k < w; k++)
      if (!isfinite(a[i * w + k])) {
        if (e->gid[i] < best) best = (int)e->gid[i];
        break;
      }
  return best;
}

PetscErrorCode HMEvalCheckFinite(HMEval e)
{
  HMModel m = e->model;
  struct {
    int v, i;
  } bad = {GUARD_NONE, INT_MAX}, gbad;

  PetscFunctionBegin;
  if (e->forward_done) {
    for (int t = 0; t < m->nlayers + m->nhx && bad.v == GUARD_NONE; t++) { /* hoextra: and the extra Hessian layers */
      const int a = lowest_bad_atom(e, m->dimH, e->feats[t]);
      if (a != INT_MAX) bad.v = GUARD_FEATURES + t, bad.i = a;
    }
    if (bad.v == GUARD_NONE) {
      const int a = lowest_bad_atom(e, 1, e->node_energy);
      if (a != INT_MAX) bad.v = GUARD_ENERGY, bad.i = a;
    }
  }
  /* only the owned rows of the HIP inputs: the ghost rows are some other rank's owned rows */
  for (int k = 0; k < m->hnl && bad.v == GUARD_NONE; k++)
    if (e->xh[k]) {
      const int a = lowest_bad_atom(e, m->dimH, e->xh[k]);
      if (a != INT_MAX) bad.v = GUARD_HIP + k, bad.i = a;
    }
  /* MINLOC compares v first, then the index: the earliest stage, then the lowest atom */
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  if (gbad.v == GUARD_NONE) PetscFunctionReturn(PETSC_SUCCESS);
  if (gbad.v < GUARD_ENERGY && gbad.v - GUARD_FEATURES >= m->nlayers)
    SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node features after extra Hessian interaction layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, gbad.v - GUARD_FEATURES - m->nlayers + 1, m->path);
  if (gbad.v < GUARD_ENERGY)
    SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node features after interaction layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, gbad.v - GUARD_FEATURES + 1, m->path);
  if (gbad.v == GUARD_ENERGY) SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node energy is not finite (NaN or Inf); model %s", gbad.i + 1, m->path);
  SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: HIP-head input features of layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, m->hl0 + gbad.v - GUARD_HIP + 1, m->path);
}

/* Input index of the local atom (owned or ghost) with partition index p; -1 if not held here. */
static PetscInt local_input_index(HMEval e, PetscInt p)
{
  if (p >= e->rstart && p < e->rstart + e->n) return e->gid[p - e->rstart];
  for (PetscInt i = e->n; i < e->nl; i++)
    if (e->pidx[i] == p) return e->gid[i];
  return -1;
}

PetscErrorCode HMEvalCheckHessianFinite(HMEval e, Mat H)
{
  HMModel   m = e->model;
  PetscInt  rlo, rhi;
  PetscBool sym;
  struct {
    int v, i;
  } bad = {INT_MAX, INT_MAX}, gbad;

  PetscFunctionBegin;
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
        const PetscInt a = e->gid[r / 3 - e->rstart], b = local_input_index(e, cols[k] / 3);
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

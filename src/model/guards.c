/* Numerical guard of the forward pass: non-finite node features and energies, reported collectively by input atom. */
#include "model/evalimpl.h"
#include <limits.h>
#include <math.h>

/* What was found first; ordered so that MPI_MINLOC on (stage, atom) picks the earliest stage of the
   pipeline and, within it, the lowest input index. */
enum {
  GUARD_FEATURES = 0, /* + layer: node features after interaction layer t */
  GUARD_ENERGY   = HM_MAX_LAYERS,
  GUARD_NONE     = INT_MAX
};

/* Lowest input index among this rank's owned atoms whose row of width w is not all finite, INT_MAX if none. */
static int LowestBadAtom(HMEval e, PetscInt w, const double *a)
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

void HMEvalScanFeatures(HMEval e, int *stage, int *atom)
{
  HMModel m = e->model;
  *stage = GUARD_NONE, *atom = INT_MAX;
  for (int t = 0; t < m->nlayers + m->nhx && *stage == GUARD_NONE; t++) { /* hoextra: and the extra Hessian layers */
    const int a = LowestBadAtom(e, m->dimH, e->feats[t]);
    if (a != INT_MAX) *stage = GUARD_FEATURES + t, *atom = a;
  }
}

PetscErrorCode HMEvalCheckFinite(HMEval e)
{
  HMModel m = e->model;
  struct {
    int v, i;
  } bad = {GUARD_NONE, INT_MAX}, gbad;

  PetscFunctionBegin;
  if (e->forward_done) {
    if (e->feats_released) bad.v = e->feats_bad[0], bad.i = e->feats_bad[1];
    else HMEvalScanFeatures(e, &bad.v, &bad.i);
    if (bad.v == GUARD_NONE) {
      const int a = LowestBadAtom(e, 1, e->node_energy);
      if (a != INT_MAX) bad.v = GUARD_ENERGY, bad.i = a;
    }
  }
  /* MINLOC compares v first, then the index: the earliest stage, then the lowest atom */
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  if (gbad.v == GUARD_NONE) PetscFunctionReturn(PETSC_SUCCESS);
  if (gbad.v < GUARD_ENERGY && gbad.v - GUARD_FEATURES >= m->nlayers)
    SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node features after extra Hessian interaction layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, gbad.v - GUARD_FEATURES - m->nlayers + 1, m->path);
  if (gbad.v < GUARD_ENERGY)
    SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node features after interaction layer %d are not finite (NaN or Inf); model %s", gbad.i + 1, gbad.v - GUARD_FEATURES + 1, m->path);
  SETERRQ(m->comm, PETSC_ERR_FP, "atom %d: node energy is not finite (NaN or Inf); model %s", gbad.i + 1, m->path);
}

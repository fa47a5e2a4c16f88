/* Extra interaction + product layers on the Hessian graph (hip-mace num_interactions_hessian,
   MODEL_FORMAT_headopts.md section 3): residual interaction + product layers that refine the node
   features for the HIP head only (energy and forces are computed before them).

   Where they run: every owned atom i, with messages from its neighbours in the Hessian graph (within
   the Hessian cutoff), so the inputs of the senders come over the far halo. Their outputs are needed on
   owned atoms and far ghosts by the HIP head, which already exchanges its own per-atom inputs (the
   folded tensor G, or hessian_interaction.linear_up of every used layer) over the far halo: computing
   the extra layers for owned atoms only is enough, and their output is never exchanged itself.

   Cutoff: with a shared radial network the radial features of an edge longer than r_max are exactly
   zero, so are its conv_tp weights (the radial MLP has no biases, SiLU(0) = 0) and its message; the
   Hessian graph pruned at min(r_max, hessian_r_max) (HMModelGetCutoffs) then gives the same bits as the
   unpruned one (an exact zero added to a sum changes nothing). With a separate network the graph is not
   pruned. */
#include "model/hessextra.h"
#include <hipmace/log.h>

PetscErrorCode HMEvalHessExtraForward(HMEval e)
{
  HMModel        m = e->model;
  const PetscInt n = e->n;

  PetscFunctionBegin;
  /* with hessian_use_last_layer_only the reference computes them and ignores them: so do we (their
     features stay available through HMEvalGetNodeFeatures) */
  for (int k = 0; k < m->nhx; k++) {
    const int t = m->nlayers + k;
    PetscCall(PetscMalloc1(n * m->dimH + 1, &e->feats[t]));
    PetscCall(PetscLogStagePush(HMLog.layer[PetscMin(t, HM_LOG_MAX_LAYERS - 1)]));
    PetscCall(HMEvalLayerForward(e, &m->hx[k], PETSC_TRUE, e->gh, HM_HALO_FAR, &m->hradial, e->feats[t - 1], e->feats[t]));
    PetscCall(PetscLogStagePop());
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

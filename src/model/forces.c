/* Analytic forces and stress: the reverse pass of the energy through the readouts and the main MACE layers,
   distributed and bitwise the same on any rank count. */
#include "model/evalimpl.h"
#include "sys/sysimpl.h"
#include "model/layerback.h"
#include <hipmace/so3.h>
#include <hipmace/log.h>

/* dE/d feats[t] of the readouts (energy = sum e0 + scale * sum readouts + shift per atom): rows [n][dimH]. */
static PetscErrorCode ReadoutGrad(HMEval e, int t, double *g)
{
  HMModel        m = e->model;
  const HMLayer *L = &m->layer[t];
  const PetscInt n = e->n;
  double        *one;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(n + 1, &one));
  for (PetscInt i = 0; i < n; i++) one[i] = m->scale;
  if (t < m->nlayers - 1) HMLinearApplyTranspose(&L->readout, n, one, 1, 0.0, g, m->dimH);
  else {
    const PetscInt dm = m->MLP.b[0].mul;
    double        *pre, *d;
    PetscCall(PetscMalloc2(n * dm + 1, &pre, n * dm + 1, &d));
    HMLinearApply(&L->readout, n, e->feats[t], m->dimH, 0.0, pre, dm);
    HMLinearApplyTranspose(&L->readout2, n, one, 1, 0.0, d, dm);
    for (PetscInt k = 0; k < n * dm; k++) d[k] *= HMSiLUNormDeriv(pre[k]);
    HMLinearApplyTranspose(&L->readout, n, d, dm, 0.0, g, m->dimH);
    PetscCall(PetscFree2(pre, d));
  }
  PetscCall(PetscFree(one));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalComputeForces(HMEval e)
{
  HMModel        m = e->model;
  const HMGraph *g = e->g;
  const PetscInt n = e->n, ne = g->nedges;
  double        *ge, *rev, *gout, *gin, *h0 = NULL, fmax = 0;
  PetscBool      hascell, pbc[3];
  double         cell[9];

  PetscFunctionBegin;
  if (e->forces_done) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMEvalForward(e));
  PetscCall(PetscCalloc1(3 * ne + 1, &ge));
  PetscCall(PetscMalloc2(n * m->dimH + 1, &gout, n * m->dimH + 1, &gin));
  {
    double *A;
    PetscCall(PetscCalloc1(n * m->nel + 1, &A));
    PetscCall(PetscMalloc1(n * m->C + 1, &h0));
    for (PetscInt i = 0; i < n; i++) A[i * m->nel + e->elem[i]] = 1.0;
    HMLinearApply(&m->embedding, n, A, m->nel, 0.0, h0, m->C);
    PetscCall(PetscFree(A));
  }
  /* layers in reverse order: gout = dE/d feats[t] (readout of t + the next layer's input gradient) */
  PetscCall(ReadoutGrad(e, m->nlayers - 1, gout));
  for (int t = m->nlayers - 1; t >= 0; t--) {
    PetscCall(HMEvalLayerBackward(e, &m->layer[t], t > 0 ? PETSC_TRUE : PETSC_FALSE, g, HM_HALO_NEAR, &m->radial, t == 0 ? h0 : e->feats[t - 1], gout, t > 0 ? gin : NULL, ge));
    if (t > 0) {
      PetscCall(ReadoutGrad(e, t - 1, gout));
      for (PetscInt k = 0; k < n * m->dimH; k++) gout[k] += gin[k];
    }
  }
  PetscCall(PetscFree2(gout, gin));
  PetscCall(PetscFree(h0));
  /* F_i = -dE/dpos_i = sum over the edges i -> j of (dE/dvec_ij - dE/dvec_ji), in the canonical order */
  PetscCall(PetscMalloc1(3 * ne + 1, &rev));
  PetscCall(HMDecompEdgeReverse(e->dd, HM_HALO_NEAR, 3, ge, rev));
  if (!e->forces) PetscCall(PetscMalloc1(3 * n + 1, &e->forces));
  for (PetscInt i = 0; i < n; i++) {
    double f[3] = {0, 0, 0};
    for (PetscInt k = g->offset[i]; k < g->offset[i + 1]; k++)
      for (int a = 0; a < 3; a++) f[a] += ge[3 * k + a] - rev[3 * k + a];
    for (int a = 0; a < 3; a++) e->forces[3 * i + a] = f[a];
    fmax = PetscMax(fmax, PetscSqrtReal(f[0] * f[0] + f[1] * f[1] + f[2] * f[2]));
  }
  PetscCall(PetscFree(rev));
  {
    /* numerical guard: the same message on every rank, naming the lowest input atom */
    PetscInt bad = PETSC_MAX_INT, gbad;
    for (PetscInt i = 0; i < n; i++)
      if (PetscIsInfOrNanReal(e->forces[3 * i]) || PetscIsInfOrNanReal(e->forces[3 * i + 1]) || PetscIsInfOrNanReal(e->forces[3 * i + 2])) bad = PetscMin(bad, e->gid[i]);
    PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPIU_INT, MPI_MIN, m->comm));
    PetscCheck(gbad == PETSC_MAX_INT, m->comm, PETSC_ERR_FP, "atom %" PetscInt_FMT ": non-finite force (the model's energy is not differentiable here)", gbad + 1);
  }
  PetscCallMPI(MPI_Allreduce(&fmax, &e->fmax, 1, MPI_DOUBLE, MPI_MAX, m->comm));
  /* stress: dE/d strain_ab = sum over all directed edges of dE/dvec_a vec_b; per atom in the canonical
     order, then the exact sum over atoms */
  PetscCall(HMDecompGetCell(e->dd, &hascell, cell, pbc));
  e->has_stress = (PetscBool)(hascell && pbc[0] && pbc[1] && pbc[2]);
  PetscCall(PetscArrayzero(e->stress, 9));
  if (e->has_stress) {
    double *vir, sums[9];
    double  V = HMMat3Det(cell);
    PetscCall(PetscCalloc1(9 * n + 1, &vir));
    for (PetscInt i = 0; i < n; i++)
      for (PetscInt k = g->offset[i]; k < g->offset[i + 1]; k++)
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) vir[9 * i + 3 * a + b] += ge[3 * k + a] * g->vec[3 * k + b];
    PetscCall(HMDecompSumExact(e->dd, 9, vir, sums));
    V = PetscAbsReal(V);
    for (int k = 0; k < 9; k++) e->stress[k] = sums[k] / V;
    PetscCall(PetscFree(vir));
  }
  PetscCall(PetscFree(ge));
  e->forces_done = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetForces(HMEval e, const double **f)
{
  PetscFunctionBegin;
  PetscCheck(e->forces_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalComputeForces() must be called first");
  *f = e->forces;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetStress(HMEval e, PetscBool *has, double stress[9])
{
  PetscFunctionBegin;
  PetscCheck(e->forces_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalComputeForces() must be called first");
  if (has) *has = e->has_stress;
  if (stress) PetscCall(PetscArraycpy(stress, e->stress, 9));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetMaxForce(HMEval e, double *fmax)
{
  PetscFunctionBegin;
  PetscCheck(e->forces_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalComputeForces() must be called first");
  *fmax = e->fmax;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Evaluation of a HIP-MACE model on one structure: partition, graphs, MACE layers, energy and node features. */
#include "model/evalimpl.h"
#include "sys/sysimpl.h"
#include "nn/cost.h"
#include <hipmace/so3.h>
#include <limits.h>
#include <hipmace/log.h>
#include "model/layer.h"
#include "model/hessextra.h"

static const char *const HMPartitionTypes[] = {"rcb", "grid", "HMPartitionType", "HM_PARTITION_", NULL};
static const char *const HMPrecisions[]     = {"double", "single", "HMPrecision", "HM_PRECISION_", NULL};

PetscErrorCode HMEvalCreate(HMModel m, HMEval *ev)
{
  HMEval e;
  PetscFunctionBegin;
  PetscCall(PetscNew(&e));
  e->model = m;
  e->ptype = HM_PARTITION_RCB;
  *ev      = e;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMEval, Model, HMModel, model)

PetscErrorCode HMEvalSetPartitionType(HMEval e, HMPartitionType t)
{
  PetscFunctionBegin;
  PetscCheck(!e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetPartitionType() must come before HMEvalSetSystem()");
  e->ptype = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMEval, PartitionType, HMPartitionType, ptype)

/* A change of precision takes effect at the next forward pass (the features are recomputed). */
PetscErrorCode HMEvalSetPrecision(HMEval e, HMPrecision p)
{
  PetscFunctionBegin;
  if (p != e->precision) e->forward_done = PETSC_FALSE;
  e->precision = p;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMEval, Precision, HMPrecision, precision)

PetscErrorCode HMEvalSetHessianCutoff(HMEval e, double hcut)
{
  PetscFunctionBegin;
  if (hcut <= 0) PetscCall(HMModelGetCutoffs(e->model, NULL, NULL, &hcut));
  PetscCheck(!e->dd || hcut == e->hcut, e->model->comm, PETSC_ERR_ORDER, "the Hessian graph's cutoff (-hessian_prune) must be set before HMEvalSetSystem()");
  e->hcut = hcut;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_PREFIX(HMEval)

PetscErrorCode HMEvalSetFromOptions(HMEval e)
{
  PetscEnum pt = (PetscEnum)e->ptype;
  PetscBool set;
  PetscFunctionBegin;
  PetscOptionsBegin(e->model->comm, e->prefix, "HIP-MACE evaluation options", "HMEval");
  PetscCall(PetscOptionsEnum("-partition", "spatial decomposition over the MPI ranks", "HMEvalSetPartitionType", HMPartitionTypes, pt, &pt, &set));
  if (set) PetscCall(HMEvalSetPartitionType(e, (HMPartitionType)pt));
  {
    PetscEnum pr = (PetscEnum)e->precision;
    PetscCall(PetscOptionsEnum("-precision", "arithmetic (single: float32 radial MLPs, tensor products and linear maps of the layers, and the HIP edge kernel)", "HMEvalSetPrecision", HMPrecisions, pr, &pr, &set));
    if (set) PetscCall(HMEvalSetPrecision(e, (HMPrecision)pr));
  }
  PetscOptionsEnd();
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Local sizes, atoms, graphs and the model element of every local atom, from the decomposition; the lowest
   input atom of an element the model does not know (INT_MAX: none) and its atomic number. */
static PetscErrorCode LoadLocal(HMEval e, int *badatom, int *badZ)
{
  const int *Z;

  PetscFunctionBegin;
  PetscCall(HMDecompGetSizes(e->dd, &e->N, &e->n, &e->nl, &e->rstart));
  PetscCall(HMDecompGetLocalAtoms(e->dd, &e->gid, &e->pidx, &Z, NULL, NULL));
  PetscCall(HMDecompGetGraphs(e->dd, &e->g, &e->gh));
  PetscCall(PetscFree(e->elem));
  PetscCall(PetscMalloc1(e->nl + 1, &e->elem));
  *badatom = INT_MAX;
  *badZ    = 0;
  for (PetscInt i = 0; i < e->nl; i++) {
    e->elem[i] = HMModelElementIndex(e->model, Z[i]);
    if (e->elem[i] < 0 && e->gid[i] < *badatom) {
      *badatom = (int)e->gid[i];
      *badZ    = Z[i];
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Collective: refuses atoms closer than HM_MIN_DISTANCE and warns about close contacts (below 0.5 A); sys (rank 0,
   may be NULL) names the atoms, e->src the structure. */
static PetscErrorCode CheckDistances(HMEval e, HMSystem sys)
{
  HMModel     m = e->model;
  PetscMPIInt rank;
  const char *src = e->src ? e->src : "(structure)";
  struct {
    int v, i;
  } bad = {INT_MAX, 0}, gbad;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(m->comm, &rank));
  for (PetscInt k = 0; k < e->g->nedges; k++)
    if (e->g->len[k] < HM_MIN_DISTANCE) {
      const PetscInt a = e->gid[e->g->sender[k]], b = e->gid[e->g->receiver[k]];
      if (PetscMin(a, b) < bad.v) {
        bad.v = (int)PetscMin(a, b);
        bad.i = (int)PetscMax(a, b);
      }
    }
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  PetscCheck(gbad.v == INT_MAX, m->comm, PETSC_ERR_ARG_WRONG, "%s: atoms %d and %d (or a periodic image) are closer than %g A", src, gbad.v + 1, gbad.i + 1, HM_MIN_DISTANCE);
  {
    /* close contacts (below 0.5 A, far shorter than any bond): a warning naming the closest pair */
    double      mine[3] = {PETSC_MAX_REAL, -1, -1}, *all;
    PetscMPIInt size;
    int         best = 0;

    for (PetscInt k = 0; k < e->g->nedges; k++)
      if (e->g->len[k] < 0.5 && e->g->len[k] < mine[0]) {
        mine[0] = e->g->len[k];
        mine[1] = (double)PetscMin(e->gid[e->g->sender[k]], e->gid[e->g->receiver[k]]);
        mine[2] = (double)PetscMax(e->gid[e->g->sender[k]], e->gid[e->g->receiver[k]]);
      }
    PetscCallMPI(MPI_Comm_size(m->comm, &size));
    PetscCall(PetscMalloc1(3 * (size_t)size, &all));
    PetscCallMPI(MPI_Allgather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, m->comm));
    for (int r = 1; r < size; r++)
      if (all[3 * r] < all[3 * best]) best = r;
    if (all[3 * best] < 0.5) {
      char a[512], b[512];

      PetscCall(PetscSNPrintf(a, sizeof(a), "atom %d", (int)all[3 * best + 1] + 1));
      PetscCall(PetscSNPrintf(b, sizeof(b), "atom %d", (int)all[3 * best + 2] + 1));
      if (rank == 0 && sys) {
        PetscCall(HMSystemDescribeAtom(sys, (PetscInt)all[3 * best + 1], a, sizeof(a)));
        PetscCall(HMSystemDescribeAtom(sys, (PetscInt)all[3 * best + 2], b, sizeof(b)));
      }
      PetscCall(PetscPrintf(m->comm, "%s: warning: close contact: %s and %s are %.3f A apart (or a periodic image; below 0.5 A, far shorter than a bond): check the structure\n", src, a, b, all[3 * best]));
    }
    PetscCall(PetscFree(all));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalSetSystem(HMEval e, HMSystem sys)
{
  HMModel     m = e->model;
  PetscMPIInt rank;
  struct {
    int v, i;
  } bad = {INT_MAX, 0}, gbad;

  PetscFunctionBegin;
  PetscCheck(!e->dd, m->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() was called already (one structure per HMEval; HMEvalSetPositions() moves its atoms)");
  PetscCallMPI(MPI_Comm_rank(m->comm, &rank));
  if (rank == 0 && sys) {
    const char *src;
    PetscCall(HMSystemGetSource(sys, &src));
    PetscCall(PetscStrallocpy(src, &e->src));
  }
  if (e->hcut <= 0) PetscCall(HMModelGetCutoffs(m, NULL, NULL, &e->hcut));
  PetscCall(HMDecompCreate(m->comm, sys, e->ptype, m->r_max, e->hcut, &e->dd));
  PetscCall(LoadLocal(e, &bad.v, &bad.i));
  /* every rank reports the same first offending atom, so the error is collective */
  PetscCallMPI(MPI_Allreduce(&bad, &gbad, 1, MPI_2INT, MPI_MINLOC, m->comm));
  if (gbad.v != INT_MAX) {
    char who[512]; /* file, line, serial, residue and chain for a PDB input (rank 0 holds the system) */

    PetscCall(PetscSNPrintf(who, sizeof(who), "%s: atom %d", e->src ? e->src : "(structure)", gbad.v + 1));
    if (rank == 0 && sys) PetscCall(HMSystemDescribeAtom(sys, gbad.v, who, sizeof(who)));
    PetscCallMPI(MPI_Bcast(who, (PetscMPIInt)sizeof(who), MPI_CHAR, 0, m->comm));
    SETERRQ(m->comm, PETSC_ERR_ARG_WRONG, "%s is %s, an element the model %s was not trained on", who, HMElementSymbol(gbad.i), m->path);
  }
  PetscCall(CheckDistances(e, sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalSetPositions(HMEval e, const double pos[])
{
  int badatom, badZ;

  PetscFunctionBegin;
  PetscCheck(e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() must be called before HMEvalSetPositions()");
  PetscCall(HMDecompSetPositions(e->dd, pos));
  PetscCall(LoadLocal(e, &badatom, &badZ)); /* the same atoms: every element is known */
  /* everything computed at the old geometry is stale */
  for (int t = 0; t < HM_MAX_LAYERS; t++) PetscCall(PetscFree(e->feats[t]));
  e->forward_done   = PETSC_FALSE;
  e->feats_released = PETSC_FALSE;
  e->forces_done    = PETSC_FALSE;
  PetscCall(CheckDistances(e, NULL));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalDestroy(HMEval *ev)
{
  HMEval e = *ev;
  PetscFunctionBegin;
  if (!e) PetscFunctionReturn(PETSC_SUCCESS);
  for (int t = 0; t < HM_MAX_LAYERS; t++) PetscCall(PetscFree(e->feats[t]));
  PetscCall(PetscFree(e->node_energy));
  PetscCall(PetscFree(e->forces));
  PetscCall(PetscFree(e->elem));
  PetscCall(PetscFree(e->prefix));
  PetscCall(PetscFree(e->src));
  PetscCall(HMDecompDestroy(&e->dd));
  PetscCall(PetscFree(e));
  *ev = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetGraph(HMEval e, const HMGraph **g, const HMGraph **gh)
{
  PetscFunctionBegin;
  if (g) *g = e->g;
  if (gh) *gh = e->gh;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetSizes(HMEval e, PetscInt *N, PetscInt *n, PetscInt *nl, PetscInt *rstart)
{
  PetscFunctionBegin;
  PetscCheck(e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() must be called first");
  if (N) *N = e->N;
  if (n) *n = e->n;
  if (nl) *nl = e->nl;
  if (rstart) *rstart = e->rstart;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetLocalAtoms(HMEval e, const PetscInt **gid, const PetscInt **pidx)
{
  PetscFunctionBegin;
  PetscCheck(e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() must be called first");
  if (gid) *gid = e->gid;
  if (pidx) *pidx = e->pidx;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMEval, Decomp, HMDecomp, dd)

PetscErrorCode HMEvalGetHessianCutoff(HMEval e, double *hcut)
{
  PetscFunctionBegin;
  if (e->hcut <= 0) PetscCall(HMModelGetCutoffs(e->model, NULL, NULL, &e->hcut));
  *hcut = e->hcut;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalForward(HMEval e)
{
  HMModel        m = e->model;
  const PetscInt n = e->n;
  double        *A, *h0, *inter, *tmp;

  PetscFunctionBegin;
  if (e->forward_done && !e->feats_released) PetscFunctionReturn(PETSC_SUCCESS);
  /* after HMEvalReleaseNodeFeatures: the same pass again, bitwise the same features and energy */
  e->feats_released = PETSC_FALSE;
  PetscCheck(e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() must be called first");
  if (e->precision == HM_PRECISION_SINGLE) {
    for (int t = 0; t < m->nlayers; t++) PetscCall(HMLayerSingleSetUp(&m->layer[t], t == 0 ? PETSC_TRUE : PETSC_FALSE));
    for (int k = 0; k < m->nhx; k++) PetscCall(HMLayerSingleSetUp(&m->hx[k], PETSC_FALSE));
  }
  PetscCall(PetscCalloc1(n * m->nel + 1, &A));
  PetscCall(PetscMalloc1(n * m->C + 1, &h0));
  for (PetscInt i = 0; i < n; i++) A[i * m->nel + e->elem[i]] = 1.0;
  HMLinearApply(&m->embedding, n, A, m->nel, 0.0, h0, m->C);
  PetscCall(PetscFree(A));
  for (int t = 0; t < m->nlayers; t++) {
    PetscCall(PetscMalloc1(n * m->dimH + 1, &e->feats[t]));
    PetscCall(PetscLogStagePush(HMLog.layer[PetscMin(t, HM_LOG_MAX_LAYERS - 1)]));
    PetscCall(HMEvalLayerForward(e, &m->layer[t], t > 0 ? PETSC_TRUE : PETSC_FALSE, e->g, HM_HALO_NEAR, &m->radial, t == 0 ? h0 : e->feats[t - 1], e->feats[t]));
    PetscCall(PetscLogStagePop());
    if (t == 0) PetscCall(PetscFree(h0));
  }
  PetscCall(HMEvalHessExtraForward(e)); /* hoextra: extra Hessian layers (num_interactions_hessian), src/model/hessextra.c */
  /* readouts: linear on every layer but the last, gated MLP on the last */
  PetscCall(PetscCalloc1(n + 1, &inter));
  PetscCall(PetscMalloc1(n * m->MLP.b[0].mul + 1, &tmp));
  {
    const double t0 = MPI_Wtime(); /* roofline counters (hipmace/log.h) */
    double      *fl = &HMRoofline[HM_ROOF_READOUT].flops, *by = &HMRoofline[HM_ROOF_READOUT].bytes;
    for (int t = 0; t < m->nlayers; t++) {
      HMLayer *L = &m->layer[t];
      HMLinearCost(&L->readout, n, fl, by);
      if (t < m->nlayers - 1) HMLinearApply(&L->readout, n, e->feats[t], m->dimH, 1.0, inter, 1);
      else {
        const PetscInt dm = m->MLP.b[0].mul;
        HMLinearApply(&L->readout, n, e->feats[t], m->dimH, 0.0, tmp, dm);
        for (PetscInt k = 0; k < n * dm; k++) tmp[k] = HMSiLUNorm(tmp[k]);
        HMLinearApply(&L->readout2, n, tmp, dm, 1.0, inter, 1);
        HMLinearCost(&L->readout2, n, fl, by);
        *fl += 6.0 * n * dm;
      }
    }
    HMRoofline[HM_ROOF_READOUT].seconds += MPI_Wtime() - t0;
  }
  if (!e->node_energy) PetscCall(PetscMalloc1(n + 1, &e->node_energy)); /* kept by a release of the features */
  {
    double *parts, sums[2];
    PetscCall(PetscMalloc1(2 * n + 1, &parts));
    for (PetscInt i = 0; i < n; i++) {
      const double e0 = m->e0[e->elem[i]], ni = m->scale * inter[i] + m->shift;
      e->node_energy[i] = e0 + ni;
      parts[2 * i]      = e0;
      parts[2 * i + 1]  = ni;
    }
    /* sum(e0) + sum(interaction), each summed exactly and rounded once: independent of the rank count */
    PetscCall(HMDecompSumExact(e->dd, 2, parts, sums));
    e->energy = sums[0] + sums[1];
    PetscCall(PetscFree(parts));
  }
  PetscCall(PetscFree(tmp));
  PetscCall(PetscFree(inter));
  PetscCall(PetscFree(h0)); /* freed after layer 0 already, unless the model has no layer */
  e->forward_done = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetEnergy(HMEval e, double *energy, const double **node_energy)
{
  PetscFunctionBegin;
  PetscCheck(e->forward_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalForward() must be called first");
  if (energy) *energy = e->energy;
  if (node_energy) *node_energy = e->node_energy;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetNodeFeatures(HMEval e, PetscInt t, PetscInt *dim, const double **f)
{
  PetscFunctionBegin;
  PetscCheck(e->forward_done, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMEvalForward() must be called first");
  if (e->feats_released) PetscCall(HMEvalForward(e));
  PetscCheck(t >= 0 && t < e->model->nlayers + e->model->nhx, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "layer %" PetscInt_FMT " out of range", t);
  if (dim) *dim = e->model->dimH;
  if (f) *f = e->feats[t];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalReleaseNodeFeatures(HMEval e)
{
  PetscFunctionBegin;
  if (!e->forward_done || e->feats_released) PetscFunctionReturn(PETSC_SUCCESS);
  /* HMEvalCheckFinite reports from this scan once the features are gone */
  HMEvalScanFeatures(e, &e->feats_bad[0], &e->feats_bad[1]);
  for (int t = 0; t < HM_MAX_LAYERS; t++) PetscCall(PetscFree(e->feats[t]));
  e->feats_released = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalGetMemoryEstimate(HMEval e, double *persistent, double *layer)
{
  HMModel      m = e->model;
  const double n = (double)e->n, nl = (double)e->nl, d = 8.0;

  PetscFunctionBegin;
  PetscCheck(e->dd, e->model->comm, PETSC_ERR_ORDER, "HMEvalSetSystem() must be called first");
  *persistent = (m->nlayers + m->nhx) * n * m->dimH * d + 4 * n * d; /* features (and the extra Hessian layers'), energies */
  {
    /* the halo exchanges keep their packing buffers (PetscSF caches them): ghosts x the widest layer input */
    PetscInt nnear, nfar;
    double   wnear = 0, wfar = 0;
    PetscCall(HMDecompGetHaloSize(e->dd, HM_HALO_NEAR, &nnear));
    PetscCall(HMDecompGetHaloSize(e->dd, HM_HALO_FAR, &nfar));
    for (int t = 0; t < m->nlayers; t++) wnear = PetscMax(wnear, (double)HMIrrepsDim(&m->layer[t].in_ir));
    for (int t = 0; t < m->nhx; t++) wfar = PetscMax(wfar, (double)HMIrrepsDim(&m->hx[t].in_ir));
    *persistent += ((double)nnear * wnear + (double)nfar * wfar) * d;
  }
  *layer = 0;
  for (int t = 0; t < m->nlayers + m->nhx; t++) { /* the interaction layers, then the extra Hessian layers */
    const HMLayer *L   = t < m->nlayers ? &m->layer[t] : &m->hx[t - m->nlayers];
    const double   din = (double)HMIrrepsDim(&L->in_ir), dtg = (double)HMIrrepsDim(&L->target);
    const double   dmid = (double)L->tp.dim_mid, dh = (double)m->dimH;
    /* src/model/layer.c: the layer input x of the owned and ghost atoms, and the work arrays of one chunk of
       HM_LAYER_ATOM_CHUNK owned atoms (aggregated messages, linear output, skip product, product) */
    const double nc = PetscMin(n, (double)HM_LAYER_ATOM_CHUNK);
    const double lt = nl * din + nc * (dmid + dtg + PetscMax(dtg, dh) + dh) + (double)HMSymContractionWorkSize(&L->prod);
    *layer          = PetscMax(*layer, lt * d);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

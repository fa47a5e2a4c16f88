/* Memory estimate of an evaluation, made before any large allocation, and the check against the
   memory a rank may use. */
#include "model/modelimpl.h"
#include <hipmace/log.h>
#include <stdio.h>
#include "hessian/folded.h"

PetscErrorCode HMEvalGetMemoryEstimate(HMEval ev, MatType type, PetscBool input_order_copy, double *now, double *peak)
{
  HMModel    m = ev->model;
  const double n = (double)ev->n, nl = (double)ev->nl, d = 8.0;
  double     feats, layer = 0, hip, mat, rss = HMMemoryRSS(PETSC_FALSE);
  PetscInt64 blocks;
  PetscBool  sym = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(HMEvalGetHessianBlockCount(ev, &blocks, NULL));
  if (type) {
    PetscBool s1, s2;
    PetscCall(PetscStrcmp(type, MATSBAIJ, &s1));
    PetscCall(PetscStrcmp(type, MATMPISBAIJ, &s2));
    sym = (PetscBool)(s1 || s2);
  }
  feats = (m->nlayers + m->nhx) * n * m->dimH * d + 4 * n * d; /* features (hoextra: and the extra Hessian layers'), energies */
  for (int t = 0; t < m->nlayers; t++) {
    const HMLayer *L   = &m->layer[t];
    const double   din = (double)HMIrrepsDim(&L->in_ir), dtg = (double)HMIrrepsDim(&L->target);
    const double   lt  = (nl * din + n * L->tp.dim_mid + 2 * n * dtg + 2 * n * m->dimH) * d + HMSymContractionWorkSize(&L->prod) * d;
    layer              = PetscMax(layer, lt);
  }
  /* matrix: 3x3 values + column index per block, row bookkeeping; SBAIJ keeps about half the blocks */
  {
    const double b = sym ? 0.5 * (double)blocks + 0.5 * n : (double)blocks;
    mat            = b * (9 * d + 4) + n * 48;
    if (input_order_copy) mat += (double)blocks * (9 * (d + 4)) + n * 3 * 16; /* AIJ-like copy in input order */
  }
  /* HIP head: per-atom kernel inputs of owned atoms and ghosts, node blocks, the work list of pairs */
  if (ev->kernel != HM_EDGE_KERNEL_DIRECT) {
    /* per-atom folded tensors G of owned atoms and far ghosts, plus the kernel's work arrays (2.2 MB at
       the default model's widths) and the tabulated kernel's radial table (0.4-1.2 MB at 1e-8 .. 1e-12) */
    HMFolded f;
    PetscCall(HMFoldedCreate(m, &f));
    hip = nl * (double)HMFoldedNodeDim(f) * d + 4.0 * 1048576.0;
    PetscCall(HMFoldedDestroy(&f));
  } else hip = m->hnl * nl * m->dimH * d;
  hip += 18 * n * d + (double)blocks * 0.5 * 80;
  *now  = rss;
  *peak = rss + feats + PetscMax(layer, hip + mat);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalCheckMemory(HMEval ev, MatType type, PetscBool input_order_copy, double limit_per_rank, double *peak_max, double *peak_total)
{
  MPI_Comm    comm = ev->model->comm, node;
  double      now, peak, extra, node_extra, avail, mx, tot;
  PetscMPIInt nrank;

  PetscFunctionBegin;
  PetscCall(HMEvalGetMemoryEstimate(ev, type, input_order_copy, &now, &peak));
  PetscCall(MPIU_Allreduce(&peak, &mx, 1, MPI_DOUBLE, MPI_MAX, comm));
  PetscCall(MPIU_Allreduce(&peak, &tot, 1, MPI_DOUBLE, MPI_SUM, comm));
  if (peak_max) *peak_max = mx;
  if (peak_total) *peak_total = tot;
  /* what is still to be allocated on this node must fit in the node's available memory */
  extra = peak - now;
  PetscCallMPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  PetscCall(MPIU_Allreduce(&extra, &node_extra, 1, MPI_DOUBLE, MPI_SUM, node));
  PetscCallMPI(MPI_Comm_size(node, &nrank));
  PetscCallMPI(MPI_Comm_free(&node));
  avail = HMMemoryAvailable();
  {
    int bad = (avail > 0 && node_extra > avail) || (limit_per_rank > 0 && peak > limit_per_rank), anybad;
    PetscCallMPI(MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_LOR, comm));
    PetscCheck(!anybad, comm, PETSC_ERR_MEM,
               "the run needs an estimated %.0f MB on the largest rank (%.0f MB in total) but %s; use more ranks or nodes",
               mx / 1048576.0, tot / 1048576.0, limit_per_rank > 0 && mx > limit_per_rank ? "the -memory_limit per rank is smaller" : "a node does not have that much memory available");
  }
  (void)nrank;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Memory estimate of a Hessian run (forward pass, HIP head, matrix), made before any large allocation,
   and the check against the memory a rank may use. */
#include "hessian/hessianimpl.h"
#include "sys/sysimpl.h"
#include <hipmace/log.h>
#include <hipmace/so3.h>
#include <stdio.h>

PetscErrorCode HMHessianGetMemoryEstimate(HMHessian h, PetscBool input_order_copy, double *now, double *peak)
{
  PetscInt     ni;
  double       n, feats, layer, hip, mat, gbuf, halo, hnear, rss = HMMemoryRSS(PETSC_FALSE);
  PetscInt     nfar, nnear;
  const double d = 8.0;
  PetscInt64   blocks;
  MatType      type = h->mattype;
  PetscBool    sym  = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, NULL, &ni, NULL, NULL));
  n = (double)ni;
  PetscCall(HMHessianGetBlockCount(h, &blocks, NULL));
  {
    PetscBool s1, s2;
    PetscCall(PetscStrcmp(type, MATSBAIJ, &s1));
    PetscCall(PetscStrcmp(type, MATMPISBAIJ, &s2));
    sym = (PetscBool)(s1 || s2);
  }
  PetscCall(HMEvalGetMemoryEstimate(h->ev, &feats, &layer));
  /* matrix: 3x3 values + column index per block, row bookkeeping; SBAIJ keeps about half the blocks */
  {
    const double b = sym ? 0.5 * (double)blocks + 0.5 * n : (double)blocks;
    mat            = b * (9 * d + 4) + n * 48;
    if (input_order_copy) mat += (double)blocks * (9 * (d + 4)) + n * 3 * 16; /* AIJ-like copy in input order */
  }
  /* HIP head: per-atom kernel inputs of owned atoms and ghosts, node blocks, the work list of pairs */
  PetscCall((*h->ops->memory)(h, &hip));
  {
    /* the far halo's cached packing buffer: the kernel's per-atom inputs of as many atoms as there are far
       ghosts; the forward pass's (HMEvalGetMemoryEstimate): ghosts x the widest layer input */
    HMDecomp dd;
    HMModel  m     = h->model;
    double   wnear = 0, wfar = 0;
    PetscCall(HMEvalGetDecomp(h->ev, &dd));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_FAR, &nfar));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_NEAR, &nnear));
    gbuf = hip * (double)nfar / (double)PetscMax(ni + nfar, 1);
    for (int t = 0; t < m->nlayers; t++) wnear = PetscMax(wnear, (double)HMIrrepsDim(&m->layer[t].in_ir));
    for (int t = 0; t < m->nhx; t++) wfar = PetscMax(wfar, (double)HMIrrepsDim(&m->hx[t].in_ir));
    hnear = (double)nnear * wnear * d;
    halo  = hnear + (double)nfar * wfar * d;
  }
  {
    /* stages after the forward pass (hessian/assemble.c): its near halo buffers go first; the kernel's
       per-atom inputs of the owned atoms are made from the node features, which then go before the ghost
       copies arrive (untouched rows are not resident), so that stage holds the larger of features + owned
       inputs and all inputs + their halo buffer; at the matrix stage the work list is built 2048 owned atoms
       at a time: at most its share of the pairs */
    const double fe    = (double)(h->model->nlayers + h->model->nhx) * n * h->model->dimH * d;
    const double owned = hip * n / PetscMax(n + (double)nfar, 1.0);
    const double nodes = 18 * n * d; /* node blocks and the diagonal */
    const double work  = (double)blocks * 0.5 * 80 * PetscMin(1.0, 2048.0 / PetscMax(n, 1.0));
    const double fwd   = feats + layer;
    const double gst   = feats - fe - hnear + nodes + PetscMax(fe + owned, hip + gbuf);
    const double mst   = feats - fe - halo + nodes + hip + work + mat;
    /* huge pages: a 2 MB page touched in part (ghost rows not yet received, the ends of arrays) is resident
       whole; measured +3-4% of the peak at 10^5 and 10^6 atoms (docs/SCALING.md), allowed for as 5% */
    const double hp = HMMemoryHugeMappings_Private() ? 1.05 : 1.0;
    *now            = rss;
    *peak           = rss + hp * PetscMax(fwd, PetscMax(gst, mst));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianCheckMemory(HMHessian h, PetscBool input_order_copy, double limit_per_rank, double *peak_max, double *peak_total)
{
  MPI_Comm    comm = h->model->comm, node;
  double      now, peak, extra, node_extra, avail, mx, tot;
  PetscMPIInt nrank;

  PetscFunctionBegin;
  PetscCall(HMHessianGetMemoryEstimate(h, input_order_copy, &now, &peak));
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

/* Assembly of the HIP Hessian into a distributed PETSc block matrix (bs 3), with exact preallocation: every
   rank writes the block rows of its own atoms; a pair of atoms on two ranks is evaluated once, by one of them,
   which also sends the other its block (an off-process entry, stashed until the assembly). */
#include "hessian/hessianimpl.h"
#include <hipmace/so3.h>
#include <hipmace/log.h>

/* Atoms per chunk of HMHessianNodeBlocks. */
#define HM_NODE_CHUNK 1024

/* directed-edge evaluations per batch (two per image of a pair) */
#define HM_PAIR_BATCH 1024

static PetscBool IsSymType(MatType type)
{
  PetscBool s1, s2, s3;
  PetscStrcmp(type, MATSBAIJ, &s1);
  PetscStrcmp(type, MATMPISBAIJ, &s2);
  PetscStrcmp(type, MATSEQSBAIJ, &s3);
  return (PetscBool)(s1 || s2 || s3);
}

static PetscBool ShiftPositive(const int *s)
{
  if (s[0] != 0) return (PetscBool)(s[0] > 0);
  if (s[1] != 0) return (PetscBool)(s[1] > 0);
  return (PetscBool)(s[2] > 0);
}

/* What the assembly reads of the evaluation (eval.h accessors). */
typedef struct {
  PetscInt        N, n, rstart;
  const PetscInt *gid, *pidx;
  const HMGraph  *gh;
  MPI_Comm        comm;
} Atoms;

static PetscErrorCode GetAtoms(HMHessian h, Atoms *a)
{
  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, &a->N, &a->n, NULL, &a->rstart));
  PetscCall(HMEvalGetLocalAtoms(h->ev, &a->gid, &a->pidx));
  PetscCall(HMEvalGetGraph(h->ev, NULL, &a->gh));
  a->comm = h->model->comm;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static inline PetscBool Owned(const Atoms *ev, PetscInt p)
{
  return (PetscBool)(p >= ev->rstart && p < ev->rstart + ev->n);
}

/* A pair of the owned atom gi and the atom gj of another rank (input indices) is evaluated by the rank of the
   smaller index when gi + gj is even, else by the rank of the larger: both ranks make the same choice, and
   each evaluates about half of the pairs they share (the evaluation is the same arithmetic on either). */
static inline PetscBool EvaluatesCross(PetscInt gi, PetscInt gj)
{
  return (PetscBool)((gi + gj) % 2 == 0 ? gi < gj : gi > gj);
}

PetscErrorCode HMHessianGetBlockCount(HMHessian h, PetscInt64 *local, PetscInt64 *total)
{
  Atoms          A, *ev = &A;
  const HMGraph *g;
  PetscInt64     cnt = 0, tot;
  PetscFunctionBegin;
  PetscCall(GetAtoms(h, ev));
  g = ev->gh;
  for (PetscInt i = 0; i < g->n; i++) {
    cnt++;
    for (PetscInt e = g->offset[i]; e < g->offset[i + 1]; e++)
      if (ev->gid[g->receiver[e]] != ev->gid[i] && (e == g->offset[i] || ev->gid[g->receiver[e - 1]] != ev->gid[g->receiver[e]])) cnt++;
  }
  if (local) *local = cnt;
  PetscCallMPI(MPI_Allreduce(&cnt, &tot, 1, MPIU_INT64, MPI_SUM, ev->comm));
  if (total) *total = tot;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One directed-edge pair of a block: term = M(s1, v) + M(s2, -v)^T. */
typedef struct {
  PetscInt  s1, s2;
  double    v[3];
  int       kind;     /* 0: pair image, 1: self image */
  PetscInt  row, col; /* local index of the two atoms of the pair (the block is H[row, col]) */
  PetscBool last;     /* last image of its block: insert */
  PetscBool flip;     /* the accumulated term is H[col, row]; transpose for H[row, col] */
} Work;

static void Transpose3(const double *A, double *B)
{
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) B[3 * a + b] = A[3 * b + a];
}

/* Matrix with exact preallocation of the Owned block rows: diagonal + one block per distinct neighbour. */
static PetscErrorCode CreateMatrix(const Atoms *ev, MatType type, PetscBool sym, Mat *Hout)
{
  const HMGraph *g = ev->gh;
  const PetscInt n = ev->n;
  PetscInt      *dnnz, *onnz, *dnnzu, *onnzu;
  Mat            H;

  PetscFunctionBegin;
  PetscCall(PetscCalloc4(n + 1, &dnnz, n + 1, &onnz, n + 1, &dnnzu, n + 1, &onnzu));
  for (PetscInt i = 0; i < n; i++) {
    dnnz[i] = dnnzu[i] = 1;
    for (PetscInt e = g->offset[i]; e < g->offset[i + 1]; e++) {
      const PetscInt j = g->receiver[e], pj = ev->pidx[j];
      if (ev->gid[j] == ev->gid[i] || (e > g->offset[i] && ev->gid[g->receiver[e - 1]] == ev->gid[j])) continue;
      if (Owned(ev, pj)) dnnz[i]++;
      else onnz[i]++;
      if (pj > ev->pidx[i]) {
        if (Owned(ev, pj)) dnnzu[i]++;
        else onnzu[i]++;
      }
    }
  }
  PetscCall(MatCreate(ev->comm, &H));
  PetscCall(MatSetSizes(H, 3 * n, 3 * n, 3 * ev->N, 3 * ev->N));
  PetscCall(MatSetBlockSize(H, 3));
  PetscCall(MatSetType(H, type));
  PetscCall(MatXAIJSetPreallocation(H, 3, dnnz, onnz, dnnzu, onnzu));
  PetscCall(MatSetOption(H, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_TRUE));
  if (sym) {
    PetscCall(MatSetOption(H, MAT_NO_OFF_PROC_ENTRIES, PETSC_TRUE));
    PetscCall(MatSetOption(H, MAT_SYMMETRIC, PETSC_TRUE));
  }
  PetscCall(PetscFree4(dnnz, onnz, dnnzu, onnzu));

  *Hout = H;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The work list of directed-edge pairs this rank evaluates (w = NULL: only counted, so that the list is
   allocated once at its exact length). */
static void FillWork(const Atoms *ev, PetscBool sym, PetscInt i0, PetscInt i1, Work *w, PetscInt *nwout)
{
  const HMGraph *g  = ev->gh;
  PetscInt       nw = 0;

  /* Work list, in the canonical order that makes every block independent of the partition: a pair
     (a, b) with input index a < b is summed over the images of b seen from a, in ascending image order,
     as M(a -> b) + M(b -> a)^T; whichever rank evaluates it (the owner of a, of b, or both) does exactly
     the same arithmetic. The edge vector of b -> a is exactly -(vector of a -> b). */
  for (PetscInt i = i0; i < i1; i++) {
    const PetscInt gi = ev->gid[i];
    PetscInt       e  = g->offset[i];
    while (e < g->offset[i + 1]) {
      const PetscInt j0 = g->receiver[e], gj = ev->gid[j0];
      PetscInt       e1 = e;
      while (e1 < g->offset[i + 1] && ev->gid[g->receiver[e1]] == gj) e1++;
      /* group [e, e1): the images of atom gj */
      PetscBool need = PETSC_TRUE;
      if (gj < gi && Owned(ev, ev->pidx[j0])) need = PETSC_FALSE;                                        /* done from j's row */
      if (sym && gj != gi && ev->pidx[j0] < ev->pidx[i] && !Owned(ev, ev->pidx[j0])) need = PETSC_FALSE; /* lower triangle of another rank */
      if (!sym && gj != gi && !Owned(ev, ev->pidx[j0]) && !EvaluatesCross(gi, gj)) need = PETSC_FALSE;   /* the other rank's */
      if (need)
        for (PetscInt k = 0; k < e1 - e; k++) {
          const PetscInt ee = gj < gi ? e1 - 1 - k : e + k;
          const PetscInt j  = g->receiver[ee];
          if (gj == gi && !ShiftPositive(g->shift + 3 * ee)) continue;
          if (!w) {
            nw++;
            continue;
          }
          Work *x = &w[nw++];
          x->row  = i;
          x->col  = j;
          x->kind = gj == gi ? 1 : 0;
          x->flip = (PetscBool)(gj < gi);
          x->last = PETSC_FALSE;
          if (gj < gi) {
            /* sender order from the smaller index j: M(j -> i) + M(i -> j)^T, vector of j -> i */
            x->s1 = j;
            x->s2 = i;
            for (int a = 0; a < 3; a++) x->v[a] = -g->vec[3 * ee + a];
          } else {
            x->s1 = i;
            x->s2 = j;
            for (int a = 0; a < 3; a++) x->v[a] = g->vec[3 * ee + a];
          }
        }
      if (w && need && nw > 0 && w[nw - 1].row == i && !w[nw - 1].kind) w[nw - 1].last = PETSC_TRUE;
      e = e1;
    }
  }
  *nwout = nw;
}

/* owned atoms per slice of the work list: the list is built and evaluated slice by slice (a few MB) */
#define HM_WORK_ROWS 2048

/* The work list of the rows [i0, i1): a block's images all belong to one row, so slices are independent. */
static PetscErrorCode BuildWork(const Atoms *ev, PetscBool sym, PetscInt i0, PetscInt i1, Work **w, PetscInt *cap, PetscInt *nwout)
{
  PetscInt nw;
  PetscFunctionBegin;
  FillWork(ev, sym, i0, i1, NULL, &nw);
  if (nw > *cap) {
    PetscCall(PetscFree(*w));
    PetscCall(PetscMalloc1(nw + 1, w));
    *cap = nw;
  }
  FillWork(ev, sym, i0, i1, *w, nwout);
  PetscCheck(*nwout == nw, PETSC_COMM_SELF, PETSC_ERR_PLIB, "work list count changed");
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Evaluates the work list in batches and inserts the finished off-diagonal blocks; self images go to diag. */
static PetscErrorCode EvaluateWork(HMHessian h, const Atoms *ev, PetscBool sym, const Work *w, PetscInt nw, double *diag, Mat H, double *last)
{
  PetscInt *snd;
  double   *M, *vec, acc[9];

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(2 * HM_PAIR_BATCH, &snd, 3 * HM_PAIR_BATCH, &vec, 18 * HM_PAIR_BATCH, &M));
  {
    PetscInt  k0   = 0;
    PetscBool open = PETSC_FALSE;
    while (k0 < nw) {
      PetscCall(HMProgress(PETSC_COMM_SELF, "HIP head, owned atoms", (double)w[k0].row, (double)ev->n, last));
      const PetscInt nb = PetscMin(HM_PAIR_BATCH, nw - k0);
      for (PetscInt k = 0; k < nb; k++) {
        const Work *x          = &w[k0 + k];
        snd[k]                 = x->s1;
        snd[HM_PAIR_BATCH + k] = x->s2;
        for (int a = 0; a < 3; a++) vec[3 * k + a] = x->v[a];
      }
      PetscCall(HMHessianEdgeBlockPairs(h, nb, snd, snd + HM_PAIR_BATCH, vec, M, M + 9 * HM_PAIR_BATCH));
      for (PetscInt k = 0; k < nb; k++) {
        const Work   *x  = &w[k0 + k];
        const double *M1 = M + 9 * k, *M2 = M + 9 * HM_PAIR_BATCH + 9 * k;
        double        B[9];
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) B[3 * a + b] = M1[3 * a + b] + M2[3 * b + a];
        if (x->kind == 1) {
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) diag[9 * x->row + 3 * a + b] += B[3 * a + b] + B[3 * b + a];
          continue;
        }
        if (!open) {
          for (int q = 0; q < 9; q++) acc[q] = B[q];
          open = PETSC_TRUE;
        } else
          for (int q = 0; q < 9; q++) acc[q] += B[q];
        if (x->last) {
          /* acc is H[smaller, larger]; write the block rows this rank owns */
          const PetscInt pi = ev->pidx[x->row], pj = ev->pidx[x->col];
          const double  *Hij, *Hji;
          double         T[9];
          Transpose3(acc, T);
          Hij = x->flip ? T : acc;
          Hji = x->flip ? acc : T;
          /* baij: both blocks, the second possibly another rank's row (a shared pair is evaluated once);
             sbaij: the upper block, evaluated by the rank of its row */
          if (!sym || pi < pj) PetscCall(MatSetValuesBlocked(H, 1, &pi, 1, &pj, Hij, INSERT_VALUES));
          if (!sym || (Owned(ev, pj) && pj < pi)) PetscCall(MatSetValuesBlocked(H, 1, &pj, 1, &pi, Hji, INSERT_VALUES));
          open = PETSC_FALSE;
        }
      }
      k0 += nb;
    }
  }
  PetscCall(PetscFree3(snd, vec, M));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianAssemble(HMHessian h, Mat *Hout)
{
  Atoms     A, *ev = &A;
  PetscInt  n, nw, cap = 0;
  double    last = 0;
  MatType   type = h->mattype;
  PetscBool sym;
  Mat       H = NULL;
  double   *D, *diag;
  Work     *w = NULL;

  PetscFunctionBegin;
  PetscCall(GetAtoms(h, ev));
  n   = ev->n;
  sym = IsSymType(type);
  PetscCall(HMEvalForward(h->ev));
  {
    /* the forward pass's halo exchanges are done: the buffers PetscSF kept from them go before G is made */
    HMDecomp dd;
    PetscCall(HMEvalGetDecomp(h->ev, &dd));
    PetscCall(HMDecompHaloReleaseBuffers(dd, HM_HALO_NEAR));
  }
  PetscCall(PetscLogStagePush(HMLog.hip));
  PetscCall(PetscMalloc2(9 * n + 1, &D, 9 * n + 1, &diag));
  /* the node blocks first: then the kernel needs the node features only for its own per-atom inputs of
     the owned atoms and releases them before their ghost copies arrive (the memory peak of the run) */
  PetscCall(HMHessianNodeBlocks(h, NULL, D));
  h->release_features = PETSC_TRUE;
  PetscCall(HMHessianSetUp(h));
  h->release_features = PETSC_FALSE;
  /* the kernel's per-atom inputs and the node blocks are all the rest needs of the node features */
  PetscCall(HMEvalReleaseNodeFeatures(h->ev));
  {
    /* and the halo exchanges are done: the buffers PetscSF kept from them go too */
    HMDecomp dd;
    PetscCall(HMEvalGetDecomp(h->ev, &dd));
    PetscCall(HMDecompHaloReleaseBuffers(dd, HM_HALO_NEAR));
    PetscCall(HMDecompHaloReleaseBuffers(dd, HM_HALO_FAR));
  }
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) diag[9 * i + 3 * a + b] = D[9 * i + 3 * a + b] + D[9 * i + 3 * b + a];
  PetscCall(CreateMatrix(ev, type, sym, &H));
  for (PetscInt i0 = 0; i0 < n; i0 += HM_WORK_ROWS) {
    PetscCall(BuildWork(ev, sym, i0, PetscMin(n, i0 + HM_WORK_ROWS), &w, &cap, &nw));
    PetscCall(EvaluateWork(h, ev, sym, w, nw, diag, H, &last));
  }
  for (PetscInt i = 0; i < n; i++) {
    const PetscInt pi = ev->pidx[i];
    PetscCall(MatSetValuesBlocked(H, 1, &pi, 1, &pi, diag + 9 * i, INSERT_VALUES));
  }
  PetscCall(PetscLogStagePop());
  PetscCall(PetscLogStagePush(HMLog.assembly));
  PetscCall(PetscFree(w));
  PetscCall(PetscFree2(D, diag));
  PetscCall(MatAssemblyBegin(H, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(H, MAT_FINAL_ASSEMBLY));
  PetscCall(PetscLogStagePop());
  *Hout = H;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianInputOrder(HMHessian h, Mat H, Mat *Hin)
{
  PetscMPIInt size, rank;
  MPI_Comm    comm = h->model->comm;
  PetscInt    N;
  HMDecomp    dd;
  PetscFunctionBegin;
  PetscCall(HMEvalGetSizes(h->ev, &N, NULL, NULL, NULL));
  PetscCall(HMEvalGetDecomp(h->ev, &dd));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (size == 1) {
    MatType type;
    PetscCall(MatGetType(H, &type));
    if (IsSymType(type)) {
      PetscCall(MatConvert(H, MATAIJ, MAT_INITIAL_MATRIX, Hin));
      PetscFunctionReturn(PETSC_SUCCESS);
    }
    /* one rank: the partition order is the input order */
    PetscCall(PetscObjectReference((PetscObject)H));
    *Hin = H;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  {
    AO             ao;
    IS             is;
    Mat            A = H;
    PetscBool      sym;
    MatType        type;
    const PetscInt lo = (PetscInt)(((PetscInt64)N * rank) / size), hi = (PetscInt)(((PetscInt64)N * (rank + 1)) / size);
    PetscInt      *idx;
    PetscCall(HMDecompGetAO(dd, &ao));
    PetscCall(PetscMalloc1(hi - lo + 1, &idx));
    for (PetscInt k = lo; k < hi; k++) idx[k - lo] = k;
    PetscCall(AOApplicationToPetsc(ao, hi - lo, idx));
    PetscCall(ISCreateBlock(comm, 3, hi - lo, idx, PETSC_COPY_VALUES, &is));
    PetscCall(PetscFree(idx));
    PetscCall(MatGetType(H, &type));
    sym = IsSymType(type);
    if (sym) PetscCall(MatConvert(H, MATAIJ, MAT_INITIAL_MATRIX, &A));
    PetscCall(MatCreateSubMatrix(A, is, is, MAT_INITIAL_MATRIX, Hin));
    if (sym) PetscCall(MatDestroy(&A));
    PetscCall(ISDestroy(&is));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMHessianNodeBlocks(HMHessian h, double n9[], double D[])
{
  HMModel        m  = h->model;
  const PetscInt dO = HMIrrepsDim(&m->O);
  PetscInt       n, chunk;
  double        *diag, *z, *dt;

  PetscFunctionBegin;
  PetscCall(HMEvalForward(h->ev));
  PetscCall(HMEvalGetSizes(h->ev, NULL, &n, NULL, NULL));
  /* atoms in chunks: the linear maps are row-independent, so the blocks are the same bits as in one pass,
     and the work arrays (2 dO doubles per atom) exist for one chunk only — they were the memory peak of
     the Hessian stage otherwise */
  chunk = PetscMin(HM_NODE_CHUNK, PetscMax(n, 1));
  PetscCall(PetscMalloc3(chunk * dO + 1, &diag, chunk * dO + 1, &dt, chunk * 9 + 1, &z));
  for (PetscInt i0 = 0; i0 < n; i0 += chunk) {
    const PetscInt nc = PetscMin(chunk, n - i0);
    PetscCall(PetscArrayzero(diag, nc * dO));
    for (int k = 0; k < m->hnl; k++) {
      const double *f;
      PetscCall(HMEvalGetNodeFeatures(h->ev, m->hl0 + k, NULL, &f));
      HMLinearApply(&m->proj_nodes_layerwise, nc, f + i0 * m->dimH, m->dimH, 0.0, dt, dO);
      for (PetscInt i = 0; i < nc * dO; i++) diag[i] += m->hw[k] * dt[i];
    }
    HMLinearApply(&m->proj_nodes, nc, diag, dO, 0.0, z, 9);
    if (n9) PetscCall(PetscArraycpy(n9 + 9 * i0, z, nc * 9));
    if (D)
      for (PetscInt i = 0; i < nc; i++) HMIrreps9ToCartesian(z + 9 * i, D + 9 * (i0 + i));
  }
  PetscCall(PetscFree3(diag, dt, z));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Assembly of the HIP Hessian into a PETSc block matrix (bs 3) with exact preallocation. */
#include "model/modelimpl.h"
#include <hipmace/so3.h>

/* pairs (i, j >= i) are processed in batches: each needs the two directed blocks M(i->j), M(j->i) */
#define HM_PAIR_BATCH 1024

static PetscBool is_sym_type(MatType type)
{
  PetscBool s1, s2, s3;
  PetscStrcmp(type, MATSBAIJ, &s1);
  PetscStrcmp(type, MATMPISBAIJ, &s2);
  PetscStrcmp(type, MATSEQSBAIJ, &s3);
  return (PetscBool)(s1 || s2 || s3);
}

/* Edge e of the Hessian graph is a "pair head" when it starts the run of edges (i -> j, all
   shifts) with j > i, or is a self-image edge (i -> i, shift > 0 lexicographically). */
static PetscBool shift_positive(const int *s)
{
  if (s[0] != 0) return (PetscBool)(s[0] > 0);
  if (s[1] != 0) return (PetscBool)(s[1] > 0);
  return (PetscBool)(s[2] > 0);
}

PetscErrorCode HMEvalGetHessianBlockCount(HMEval ev, PetscInt64 *nblocks)
{
  const HMGraph *g = &ev->gh;
  PetscInt64     cnt = 0;
  PetscFunctionBegin;
  for (PetscInt i = 0; i < g->n; i++) {
    cnt++;
    for (PetscInt e = g->offset[i]; e < g->offset[i + 1]; e++)
      if (g->receiver[e] != i && (e == g->offset[i] || g->receiver[e - 1] != g->receiver[e])) cnt++;
  }
  *nblocks = cnt;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalAssembleHessian(HMEval ev, MatType type, Mat *Hout)
{
  const HMGraph *g = &ev->gh;
  const PetscInt n = ev->n;
  PetscBool      sym;
  Mat            H;
  PetscInt      *dnnz, *onnz, *dnnzu, *onnzu;
  double        *D, *diag, *M, *vec, *blk;
  PetscInt      *snd, *pe, npair;
  PetscMPIInt    size;

  PetscFunctionBegin;
  if (!type) type = MATBAIJ;
  sym = is_sym_type(type);
  PetscCallMPI(MPI_Comm_size(ev->model->comm, &size));
  PetscCheck(size == 1, ev->model->comm, PETSC_ERR_SUP, "the serial engine assembles on one rank only");

  /* exact preallocation: one block per distinct neighbour plus the diagonal */
  PetscCall(PetscCalloc4(n + 1, &dnnz, n + 1, &onnz, n + 1, &dnnzu, n + 1, &onnzu));
  for (PetscInt i = 0; i < n; i++) {
    dnnz[i] = dnnzu[i] = 1;
    for (PetscInt e = g->offset[i]; e < g->offset[i + 1]; e++) {
      const PetscInt j = g->receiver[e];
      if (j == i || (e > g->offset[i] && g->receiver[e - 1] == j)) continue;
      dnnz[i]++;
      if (j > i) dnnzu[i]++;
    }
  }
  PetscCall(MatCreate(ev->model->comm, &H));
  PetscCall(MatSetSizes(H, 3 * n, 3 * n, PETSC_DETERMINE, PETSC_DETERMINE));
  PetscCall(MatSetBlockSize(H, 3));
  PetscCall(MatSetType(H, type));
  PetscCall(MatXAIJSetPreallocation(H, 3, dnnz, onnz, dnnzu, onnzu));
  PetscCall(MatSetOption(H, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_TRUE));
  PetscCall(MatSetOption(H, MAT_NO_OFF_PROC_ENTRIES, PETSC_TRUE));
  if (sym) PetscCall(MatSetOption(H, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(PetscFree4(dnnz, onnz, dnnzu, onnzu));

  /* diagonal blocks start as D_i + D_i^T; self-image pairs add into them below */
  PetscCall(PetscMalloc2(9 * n + 1, &D, 9 * n + 1, &diag));
  PetscCall(HMEvalNodeBlocks(ev, NULL, D));
  for (PetscInt i = 0; i < n; i++)
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) diag[9 * i + 3 * a + b] = D[9 * i + 3 * a + b] + D[9 * i + 3 * b + a];

  PetscCall(PetscMalloc5(2 * HM_PAIR_BATCH, &snd, 6 * HM_PAIR_BATCH, &vec, 18 * HM_PAIR_BATCH, &M, HM_PAIR_BATCH, &pe, 9, &blk));
  /* pending block of pair (i, j): accumulated over the images of j */
  {
    PetscInt cur_i = -1, cur_j = -1;
    double   acc[9] = {0};
    PetscInt e = 0;
    while (e < g->nedges) {
      npair = 0;
      for (; e < g->nedges && npair < HM_PAIR_BATCH; e++) {
        const PetscInt i = g->sender[e], j = g->receiver[e];
        if (j < i || (j == i && !shift_positive(g->shift + 3 * e))) continue;
        pe[npair]            = e;
        snd[2 * npair]       = i;
        snd[2 * npair + 1]   = j;
        for (int a = 0; a < 3; a++) {
          vec[6 * npair + a]     = g->vec[3 * e + a];
          vec[6 * npair + 3 + a] = -g->vec[3 * e + a];
        }
        npair++;
      }
      PetscCall(HMEvalEdgeBlocks(ev, 2 * npair, snd, vec, NULL, M));
      for (PetscInt p = 0; p < npair; p++) {
        const PetscInt ee = pe[p], i = g->sender[ee], j = g->receiver[ee];
        const double  *Mij = M + 18 * p, *Mji = M + 18 * p + 9;
        double         B[9];
        /* B = M(i->j) + M(j->i)^T for this image */
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) B[3 * a + b] = Mij[3 * a + b] + Mji[3 * b + a];
        if (i == j) {
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) diag[9 * i + 3 * a + b] += B[3 * a + b] + B[3 * b + a];
          continue;
        }
        if (i != cur_i || j != cur_j) {
          if (cur_i >= 0) {
            PetscCall(MatSetValuesBlocked(H, 1, &cur_i, 1, &cur_j, acc, INSERT_VALUES));
            if (!sym) {
              for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) blk[3 * a + b] = acc[3 * b + a];
              PetscCall(MatSetValuesBlocked(H, 1, &cur_j, 1, &cur_i, blk, INSERT_VALUES));
            }
          }
          cur_i = i;
          cur_j = j;
          for (int k = 0; k < 9; k++) acc[k] = B[k];
        } else
          for (int k = 0; k < 9; k++) acc[k] += B[k];
      }
    }
    if (cur_i >= 0) {
      PetscCall(MatSetValuesBlocked(H, 1, &cur_i, 1, &cur_j, acc, INSERT_VALUES));
      if (!sym) {
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) blk[3 * a + b] = acc[3 * b + a];
        PetscCall(MatSetValuesBlocked(H, 1, &cur_j, 1, &cur_i, blk, INSERT_VALUES));
      }
    }
  }
  for (PetscInt i = 0; i < n; i++) PetscCall(MatSetValuesBlocked(H, 1, &i, 1, &i, diag + 9 * i, INSERT_VALUES));
  PetscCall(PetscFree5(snd, vec, M, pe, blk));
  PetscCall(PetscFree2(D, diag));
  PetscCall(MatAssemblyBegin(H, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(H, MAT_FINAL_ASSEMBLY));
  *Hout = H;
  PetscFunctionReturn(PETSC_SUCCESS);
}

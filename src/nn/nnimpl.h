/* Neural-network building blocks of MACE in e3nn 0.4.4 numerics (weights point into the model file); private to the library. */
#pragma once

#include <hipmace/so3.h>
#include <hipmace/io.h>

/* C = alpha A B + beta C (row-major), each element a sum in ascending order of fused multiply-adds: a
   row's result does not depend on the other rows (unlike BLAS kernels, whose edge cases depend on the
   row position). */
PETSC_EXTERN void HMGemmRows(PetscInt m, PetscInt n, PetscInt k, double alpha, const double *A, PetscInt lda, const double *B, PetscInt ldb, double beta, double *C, PetscInt ldc);
/* C[rows[i]] = A[rows[i]] B for i < m (row-major, row strides lda and ldc): rows of A that share one B,
   with the same per-element arithmetic as HMGemmRows. */
PETSC_EXTERN void HMGemmRowsIndexed(PetscInt m, const PetscInt rows[], PetscInt n, PetscInt k, const double *A, PetscInt lda, const double *B, PetscInt ldb, double *C, PetscInt ldc);
/* A fixed B (k x n, a weight matrix) stored once in the product kernel's layout: blocks of 32 columns, each
   k x 32 contiguous and 64-byte aligned (the last block zero-padded). HMGemmRowsPacked(m, alpha, A, lda, P, beta, C, ldc)
   is C = alpha A B + beta C with the same bits as HMGemmRows(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc), without copying B's
   blocks on every call. */
typedef struct {
  PetscInt n, k;
  double  *B, *mem;
} HMGemmPacked;
PETSC_EXTERN PetscErrorCode HMGemmPack(PetscInt n, PetscInt k, const double *B, PetscInt ldb, HMGemmPacked *);
PETSC_EXTERN PetscErrorCode HMGemmPackedDestroy(HMGemmPacked *);
PETSC_EXTERN void           HMGemmRowsPacked(PetscInt m, double alpha, const double *A, PetscInt lda, const HMGemmPacked *, double beta, double *C, PetscInt ldc);
/* The same for the rows rows[0..m-1] of A and C (NULL: 0 .. m-1). */
PETSC_EXTERN void HMGemmRowsPackedIndexed(PetscInt m, const PetscInt rows[], double alpha, const double *A, PetscInt lda, const HMGemmPacked *, double beta, double *C, PetscInt ldc);

/* Single precision (src/nn/gemms.c, the -precision single path of the layers): a fixed B (k x n) rounded to
   float once, in blocks of 64 columns (k x 64 contiguous, 64-byte aligned, the last block zero-padded).
   HMGemmRowsPackedS: C[i] = alpha A[i] B + beta C[i] for the rows i = rows[0..m-1] (or 0 .. m-1) of A and C
   (row strides lda, ldc), each element a chain of float FMAs in ascending k: row-independent like HMGemmRows. */
typedef struct {
  PetscInt n, k;
  float   *B, *mem;
} HMGemmPackedS;
PETSC_EXTERN PetscErrorCode HMGemmPackS(PetscInt n, PetscInt k, const double *B, PetscInt ldb, HMGemmPackedS *);
PETSC_EXTERN PetscErrorCode HMGemmPackedSDestroy(HMGemmPackedS *);
PETSC_EXTERN void           HMGemmRowsPackedS(PetscInt m, const PetscInt rows[], float alpha, const float *A, PetscInt lda, const HMGemmPackedS *, float beta, float *C, PetscInt ldc);
/* C[i] = A[i] B for the rows i = rows[0..m-1] (or 0 .. m-1), B (k x n) row-major with row stride ldb, unpacked: the
   same per-element arithmetic as HMGemmRowsPackedS. */
PETSC_EXTERN void HMGemmRowsS(PetscInt m, const PetscInt rows[], PetscInt n, PetscInt k, const float *A, PetscInt lda, const float *B, PetscInt ldb, float *C, PetscInt ldc);

/* o3.Linear without biases: y[b][w,m] = alpha_b sum_{(a,b)} sum_u W_ab[u,w] x[a][u,m]. */
typedef struct {
  HMIrreps      in, out;
  PetscInt      dim_in, dim_out;
  int           ninstr;
  int          *ia, *ib; /* [ninstr] input / output block */
  PetscInt     *woff;    /* [ninstr] offset of W_ab in the flat weight */
  double       *alpha;   /* [ninstr] */
  const double *W;
  HMGemmPacked *Wp; /* [ninstr] W_ab in the product kernel's layout */
} HMLinear;

PETSC_EXTERN PetscErrorCode HMLinearSetUp(HMLinear *, const HMIrreps *in, const HMIrreps *out, const double *W, PetscInt64 numel, const char name[]);
PETSC_EXTERN PetscErrorCode HMLinearDestroy(HMLinear *);
/* y = Linear(x) for n rows (row strides ldx, ldy); y is overwritten (beta = 0) or accumulated (beta = 1). */
PETSC_EXTERN void HMLinearApply(const HMLinear *, PetscInt n, const double *x, PetscInt ldx, double beta, double *y, PetscInt ldy);
/* Out_z[w, m] += alpha sum_u B[u, w] In_z[u, m] over the rows z of zlist (or 0 .. nz-1), In_z nin x d and Out_z
   nout x d inside each row (m fastest), for d * max(nin, nout) <= HM_LIN_BUF: the rows (z, m) are copied out
   transposed so that the product is one HMGemmRows over a chunk of them, with B read once per tile instead of
   once per row, and added back. Row-independent like HMGemmRows. Used by the forward (B = W) and the backward
   (B = W^T) of the linear maps. */
#define HM_LIN_BUF 4096
PETSC_INTERN void HMLinearChunked_Private(PetscInt nz, const PetscInt *zlist, int d, int nin, int nout, double alpha, const double *B, PetscInt ldb, const HMGemmPacked *Bp, const double *in, PetscInt ldin, double *out, PetscInt ldout);

/* e3nn FullyConnectedNet without biases, normalised SiLU between layers, none after the last. */
typedef struct {
  int           nlayers;
  PetscInt     *h;  /* [nlayers+1] widths */
  double      **W;  /* [nlayers] W_i / sqrt(h_i), owned copies, row-major [h_i][h_{i+1}] */
  HMGemmPacked *Wp; /* [nlayers] the same W_i in the product kernel's layout (HMGemmPack) */
  PetscInt      maxw;
} HMRadialMLP;

/* Reads prefix.layer{i}.weight, i = 0.., checking the chain of widths; h0 and hlast are the expected
   input and output widths (hidden widths are taken from the file and compared with hidden[] if given). */
PETSC_EXTERN PetscErrorCode HMRadialMLPSetUp(HMRadialMLP *, HMSafetensors, const char prefix[], PetscInt h0, PetscInt nhidden, const PetscInt hidden[], PetscInt hlast);
PETSC_EXTERN PetscErrorCode HMRadialMLPDestroy(HMRadialMLP *);
/* out[n][h_last] for n inputs x[n][h_0]; work must hold 2*n*maxw doubles. */
PETSC_EXTERN void HMRadialMLPApply(const HMRadialMLP *, PetscInt n, const double *x, double *out, double *work);
/* The same in float with the layers' weights rounded to float once (Wp[nlayers], HMGemmPackS of W[i]). */
PETSC_EXTERN void HMRadialMLPApplyS(const HMRadialMLP *, const HMGemmPackedS Wp[], PetscInt n, const float *x, float *out, float *work);

/* Bessel basis times polynomial envelope (RadialEmbeddingBlock with apply_cutoff). */
typedef struct {
  int     nbessel, p;
  double  rc, prefactor;
  double *freq; /* [nbessel] */
} HMRadialBasis;

PETSC_EXTERN void HMRadialBasisEval(const HMRadialBasis *, double d, double out[]);
/* out[n][nbessel] for n distances: HMRadialBasisEval's formula with a vectorised sine on AVX-512
   (within 2 ulp of libm), the same instructions for every distance. */
PETSC_EXTERN void HMRadialBasisEvalBatch(const HMRadialBasis *, PetscInt n, const double d[], double out[]);
/* x = silu_n(x) in place (normalised SiLU, HMSiLUNorm): on AVX-512 a vectorised exp and reciprocal,
   within a few ulp of HMSiLUNorm, the same instructions for every element; elsewhere HMSiLUNorm. */
PETSC_EXTERN void HMSiLUNormArray(PetscInt n, double x[]);
/* x = silu_n(x) in place for floats: evaluated in double (HMSiLUNormArray) and rounded once. */
PETSC_EXTERN void   HMSiLUNormArrayS(PetscInt n, float x[]);
PETSC_EXTERN double HMPolynomialCutoff(double d, double rc, int p);

/* "uvu" tensor product with external per-edge weights (instructions of tp_out_irreps_with_instructions). */
typedef struct {
  HMIrreps       in1, in2, mid;
  PetscInt       dim_in1, dim_in2, dim_mid, weight_numel;
  int            ninstr;
  int           *i1, *i2, *io; /* [ninstr] */
  PetscInt      *woff;         /* [ninstr] */
  double        *pw;           /* [ninstr] sqrt(2 l_out + 1) */
  const double **C;            /* [ninstr] 3j tensors [2l1+1][2l2+1][2lo+1] */
  PetscInt       maxcy;
  /* the non-zero entries of each C[k] (most of a 3j tensor is zero), by slot a (2lo+1) + c, then b:
     entries cnz_off[k] .. cnz_off[k+1]-1 */
  PetscInt *cnz_off;
  int      *cnz_slot, *cnz_b;
  double   *cnz_val;
  PetscInt *x1off, *x2off; /* [ninstr] offsets of each instruction's input blocks */
} HMConvTP;

/* The 3j constants are taken from prefix._compiled_main_left_right._w3j_l1_l2_l3 in st when present
   (the exact values the reference used, e.g. float32-rounded in a model trained in single precision),
   else computed; st may be NULL. */
PETSC_EXTERN PetscErrorCode HMConvTPSetUp(HMConvTP *, const HMIrreps *in1, const HMIrreps *in2, const HMIrreps *target, HMSafetensors st, const char prefix[]);
PETSC_EXTERN PetscErrorCode HMConvTPDestroy(HMConvTP *);
/* mid (+)= TP(x1, x2, w) for one edge; work needs maxcy doubles. beta: 0 overwrite, 1 accumulate. */
PETSC_EXTERN void HMConvTPApply(const HMConvTP *, const double *x1, const double *x2, const double *w, double beta, double *mid, double *work);

/* The same product in "channel-innermost" layouts, so the loops over channels vectorise: xT holds each
   input block as [m][u] instead of [u][m], midT each output block as [c][u]. Same arithmetic per
   element as HMConvTPApply (accumulating, beta = 1); work needs maxcy + max multiplicity doubles. */
PETSC_EXTERN void HMConvTPTransposeIn(const HMConvTP *, const double *x1, double *x1T);
PETSC_EXTERN void HMConvTPApplyT(const HMConvTP *, const double *x1T, const double *x2, const double *w, double *midT, double *work);
PETSC_EXTERN void HMConvTPTransposeOut(const HMConvTP *, const double *midT, double *mid);
/* HMConvTPApplyT in single precision (-precision single): x1T, w and midT in float, the 3j contraction with
   the harmonics x2 in double and rounded once per entry; work needs maxcy doubles and maxcy floats. */
PETSC_EXTERN void HMConvTPApplyTS(const HMConvTP *, const float *x1T, const double *x2, const float *w, float *midT, double *work, float *works);
/* Their inverses (the reverse pass): x1T -> x1 and mid -> midT. */
PETSC_EXTERN void HMConvTPTransposeInBack(const HMConvTP *, const double *x1T, double *x1);
PETSC_EXTERN void HMConvTPTransposeOutBack(const HMConvTP *, const double *mid, double *midT);

/* FullyConnectedTensorProduct(irreps, n_el x 0e -> irreps_out) with a one-hot second input. */
typedef struct {
  HMIrreps      in, out;
  PetscInt      dim_in, dim_out;
  int           nel, ninstr;
  int          *ia, *ib;
  PetscInt     *woff;
  double       *alpha;
  const double *W;
  HMGemmPacked *Wp; /* [ninstr][nel] W_ab of each element in the product kernel's layout */
} HMSkipTP;

PETSC_EXTERN PetscErrorCode HMSkipTPSetUp(HMSkipTP *, const HMIrreps *in, int nel, const HMIrreps *out, const double *W, PetscInt64 numel, const char name[]);
PETSC_EXTERN PetscErrorCode HMSkipTPDestroy(HMSkipTP *);
PETSC_EXTERN void           HMSkipTPApply(const HMSkipTP *, PetscInt n, const int elem[], const double *x, PetscInt ldx, double beta, double *y, PetscInt ldy);
/* The linear map and the skip tensor product in the channel-innermost layout (each block of a row as [m][u], as
   the convolution tensor product leaves its output): y += map(x) for the rows 0 .. n-1, the same bits as the
   maps above followed by the transposition (the same products per element, added to y in the same order). */
PETSC_EXTERN void HMLinearApplyT(const HMLinear *, PetscInt n, const double *xT, PetscInt ldx, double *yT, PetscInt ldy);
PETSC_EXTERN void HMSkipTPApplyT(const HMSkipTP *, PetscInt n, const int elem[], const double *xT, PetscInt ldx, double *yT, PetscInt ldy);
/* The same in float (-precision single) with the maps' weights rounded to float once, Wp in the order of the
   instructions (HMSkipTP: Wp[k * nel + element]). */
PETSC_EXTERN void HMLinearApplyTS(const HMLinear *, const HMGemmPackedS Wp[], PetscInt n, const float *xT, PetscInt ldx, float *yT, PetscInt ldy);
PETSC_EXTERN void HMSkipTPApplyTS(const HMSkipTP *, const HMGemmPackedS Wp[], PetscInt n, const int elem[], const float *xT, PetscInt ldx, float *yT, PetscInt ldy);

/* One Contraction of the symmetric contraction: output irrep L, correlation nu_max, sparse U. */
typedef struct {
  int           L, corr, nel;
  PetscInt      C, Q;
  PetscInt      K[8]; /* K_nu, nu = 1..corr */
  PetscInt      nnz[8];
  PetscInt     *row[8];   /* [nnz] index over (M, q1..q_nu) flattened */
  int          *kk[8];    /* [nnz] */
  double       *val[8];   /* [nnz] */
  const double *W[8];     /* [nel][K_nu][C] */
  PetscInt      maxstate; /* (2L+1) Q^(corr-1) */
  /* U contracted with the weights once per element (as the reference does before touching the
     features): for each distinct row r = prow[p] of U_nu with a non-zero entry, Uw_nu[e][p][c] =
     sum_k U_nu[r, k] W_nu[e, k, c], stored in blocks of channels (see symcontract.c) */
  PetscInt  npair[8];
  PetscInt *prow[8];   /* [npair] row index r */
  int      *pM[8];     /* [npair] output component M of the row */
  int      *pq[8];     /* [npair][nu] coupling indices q1..q_nu of the row */
  PetscInt  ngroup[8]; /* runs of rows sharing (M, q1..q_{nu-1}) */
  PetscInt *gstart[8]; /* [ngroup+1] first pair of each run */
  double   *Uw[8];     /* [nel][channel block][npair][channel in the block], 64-byte aligned */
  double   *Uwmem[8];  /* allocations holding Uw */
} HMContraction;

typedef struct {
  HMIrreps       coupling; /* target irreps without multiplicity, dim Q */
  HMIrreps       out;      /* hidden irreps */
  int            nout;
  HMContraction *c;
  PetscInt       C, Q, maxstate;
} HMSymContraction;

PETSC_EXTERN PetscErrorCode HMSymContractionSetUp(HMSymContraction *, HMSafetensors, const char prefix[], const HMIrreps *target, const HMIrreps *hidden, int corr, int nel);
PETSC_EXTERN PetscErrorCode HMSymContractionDestroy(HMSymContraction *);
/* out[M][c] = sum_nu sum_r Uw_nu[e][r][c] X[q1][c] ... X[q_nu][c]: the recursion of the reference
   (contract the last index, add the next U, repeat) expanded into a sparse polynomial, which needs no
   dense (2L+1) Q^(corr-1) intermediate per node.
   X: interaction output for n nodes, irreps `target` (all multiplicities C), row stride ldx, each block as [c][m]
   (e3nn's layout) or, with xT, as [m][c] (the channel-innermost layout of HMLinearApplyT);
   out: hidden irreps, row stride ldo. work: HMSymContractionWorkSize doubles. */
PETSC_EXTERN PetscInt HMSymContractionWorkSize(const HMSymContraction *);
/* The features of the nodes zb[0..B-1] (rows of X, stride ldx, C channels of the target irreps, Q = their
   total dimension) into Xt[c / cw][q][b][c % cw], ldq doubles per q: the layout the contraction kernels and
   their backward read. */
PETSC_EXTERN void HMSymContractionGatherNodes(const HMIrreps *target, PetscInt C, PetscInt Q, int cw, PetscInt ldq, int B, const PetscInt zb[], const double *X, PetscInt ldx, PetscBool xT, double *Xt);
PETSC_EXTERN void HMSymContractionApply(const HMSymContraction *, const HMIrreps *target, PetscInt n, const int elem[], const double *X, PetscInt ldx, PetscBool xT, double *out, PetscInt ldo, double *work);

/* ---- Backward (vector-Jacobian) kernels, src/nn/grad.c: dy is the gradient of a scalar with respect
   to a block's output, the kernels return the gradient with respect to its inputs. ---- */

/* dx (= beta dx) += J^T dy of HMLinearApply for n rows (beta 0 overwrite, 1 accumulate). */
PETSC_EXTERN void HMLinearApplyTranspose(const HMLinear *, PetscInt n, const double *dy, PetscInt ldy, double beta, double *dx, PetscInt ldx);
/* dx (= beta dx) += J^T dy of HMSkipTPApply (the one-hot element input is not differentiated). */
PETSC_EXTERN void HMSkipTPApplyTranspose(const HMSkipTP *, PetscInt n, const int elem[], const double *dy, PetscInt ldy, double beta, double *dx, PetscInt ldx);
/* val[k] as HMRadialBasisEval (bitwise) and dval[k] = d val[k] / d d (envelope and prefactor included;
   0 at and beyond the cutoff). */
PETSC_EXTERN void HMRadialBasisEvalDeriv(const HMRadialBasis *, double d, double val[], double dval[]);
/* dx[n][h0] = J^T dout of HMRadialMLPApply at inputs x[n][h0] (overwritten; the forward activations
   are recomputed, with the forward's arithmetic). work: HMRadialMLPBackwardWorkSize doubles. */
PETSC_EXTERN PetscInt HMRadialMLPBackwardWorkSize(const HMRadialMLP *, PetscInt n);
PETSC_EXTERN void     HMRadialMLPBackward(const HMRadialMLP *, PetscInt n, const double *x, const double *dout, double *dx, double *work);
/* Gradient of <dmid, TP(x1, x2, w)> for one edge: dx1 (dim_in1) accumulated (+=), dx2 (dim_in2) and
   dw (weight_numel) overwritten; any of the three may be NULL (that part is skipped).
   work: HMConvTPBackwardWorkSize doubles (enough for both variants). */
PETSC_EXTERN PetscInt HMConvTPBackwardWorkSize(const HMConvTP *);
PETSC_EXTERN void     HMConvTPBackward(const HMConvTP *, const double *x1, const double *x2, const double *w, const double *dmid, double *dx1, double *dx2, double *dw, double *work);
/* The same in HMConvTPApplyT's layouts: x1T and dx1T as [m][u] per input block, dmidT as [c][u]. */
PETSC_EXTERN void HMConvTPBackwardT(const HMConvTP *, const double *x1T, const double *x2, const double *w, const double *dmidT, double *dx1T, double *dx2, double *dw, double *work);
/* dX[n][ldx] (the target's dim overwritten) = d(sum out dout)/dX of HMSymContractionApply.
   work: HMSymContractionBackwardWorkSize doubles. */
PETSC_EXTERN PetscInt HMSymContractionBackwardWorkSize(const HMSymContraction *);
PETSC_EXTERN void     HMSymContractionBackward(const HMSymContraction *, const HMIrreps *target, PetscInt n, const int elem[], const double *X, PetscInt ldx, const double *dout, PetscInt ldo, double *dX, double *work);

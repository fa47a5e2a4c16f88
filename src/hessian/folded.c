/* Folded HIP edge kernel: the linear tail of the HIP head folded into per-node tensors G (DESIGN.md). */
#include "hessian/folded.h"
#include "hessian/radtable.h"
#include <hipmace/so3.h>
#include "nn/simd.h"
#include <petscblaslapack.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* Edges per chunk: the hidden radial layers of a chunk are one row-blocked product each, and a chunk
   spans several senders, so the reversed direction finds each receiver several times (one read of its
   G for all). 1024 (the assembly's pair batch) keeps the chunk's work arrays (z, Y, T, Tr: about 1.5 MB
   for the default model) in this machine's 2 MB L2; 512 measured 3% slower, 2048 the same. */
#define FOLD_EDGE_CHUNK 1024
/* Edges per block of the Clebsch-Gordan contraction (its transposed operands stay in L1). */
#define FOLD_CG_BLOCK 64
/* Nodes per chunk of HMFoldedNodeTensor (bounds its work arrays, independent of the node count). */
#define FOLD_NODE_CHUNK 64

/* The Clebsch-Gordan loop (vectorised by the compiler) is compiled for AVX-512, AVX2 and the baseline,
   picked at load time (GCC function multi-versioning), for builds that target baseline x86-64. It
   reorders no sum and uses HM_FMA, exactly rounded or a plain multiply-add in every version of one
   build, so all versions give the same bits. The products, SiLU and sines use AVX-512 intrinsics when
   the build targets it (nn/gemm.c, nn/vecmath.c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  #define FOLD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
  #define FOLD_CLONES
#endif

struct _p_HMFolded {
  HMModel  m;
  PetscInt dimH, nb, nsh, nout;
  int      lmax;
  /* hidden radial layers (weights owned by the model); their output z has K entries */
  int      nhid;
  PetscInt K, maxw;
  /* kept paths p: input block of x (offset xoff, mul channels of dimension d1), columns ja .. ja+d1 of
     the node tensor, P_p[K][mul] = pw_p Omega_p[u] W_last[kappa, woff_p + u] */
  int           np;
  PetscInt     *xoff, *mul, *d1, *ja;
  double       *P;
  PetscInt     *poff;
  HMGemmPacked *Pt;           /* [np] P_p^T (mul x K) in the product kernel's layout */
  double       *nT;           /* node tensor of a chunk, rows (node, a), K columns */
  PetscInt      nka, nodedim; /* nodedim = K * nka, G_s laid out [kappa][nka] */
  /* Clebsch-Gordan contraction as a list: e9[o] += c * Y[b] * T[j]; crev = (-1)^l2 c for -vec */
  PetscInt ncg;
  int     *cg_j, *cg_b, *cg_o;
  double  *cg_c, *cg_crev;
  /* work arrays, sized once */
  double   *rb, *zw, *dist, *Y, *T, *Tr, *Tt, *Yt, *Ot, *fbar, *xbar;
  PetscInt *perm; /* [2 * FOLD_EDGE_CHUNK]: sort of a chunk's receivers and its scratch */
  double    flops_edge, flops_pair, flops_node;
  /* optional table of the hidden radial layers (the tabulated kernel) */
  HMRadialTable table;
  /* -precision single (HMFoldedSetSingle): the hidden radial layers' weights, the CG constants and the work
     arrays in float */
  HMGemmPackedS *WpS;
  float         *zS, *rbS, *TS, *TrS, *TtS, *YtS, *OtS, *cgS, *cgrevS;
};

/* Channel-space offsets of an irreps (one number per channel, m dropped): returns the total. */
static PetscInt ChanOffsets(const HMIrreps *ir, PetscInt off[])
{
  PetscInt o = 0;
  for (int b = 0; b < ir->n; b++) {
    off[b] = o;
    o += ir->b[b].mul;
  }
  return o;
}

/* Pulls a covector on the output channels of an o3.Linear back to its input channels. A Linear acts
   on the channel index only (the same matrix for every m), so one component m stands for all. */
static void PullBack(const HMLinear *lin, const PetscInt offin[], PetscInt nin, const PetscInt offout[], const double rout[], double rin[])
{
  for (PetscInt i = 0; i < nin; i++) rin[i] = 0.0;
  for (int k = 0; k < lin->ninstr; k++) {
    const int     a = lin->ia[k], b = lin->ib[k], ma = lin->in.b[a].mul, mb = lin->out.b[b].mul;
    const double *W = lin->W + lin->woff[k];
    for (int u = 0; u < ma; u++) {
      double s = 0;
      for (int w = 0; w < mb; w++) s += W[u * mb + w] * rout[offout[b] + w];
      rin[offin[a] + u] += lin->alpha[k] * s;
    }
  }
}

/* The folded kernel's requirements on the HIP head: radial network and edge irreps matching the tensor
   product, and output blocks of distinct irreps of multiplicity 1 (the fold assigns each path to one). */
static PetscErrorCode CheckFoldable(HMFolded f)
{
  const HMModel      m   = f->m;
  const HMConvTP    *tp  = &m->hi_tp;
  const HMRadialMLP *mlp = &m->hi_mlp;

  PetscFunctionBegin;
  PetscCheck(mlp->nlayers >= 1 && mlp->h[0] == f->nb && mlp->h[mlp->nlayers] == tp->weight_numel, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HIP radial network widths do not match the tensor product", m->path);
  PetscCheck(HMIrrepsDim(&tp->in2) == f->nsh, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HIP tensor product edge irreps do not match hessian_edge_lmax %d", m->path, m->hedge_lmax);
  for (int q = 0; q < m->OUT.n; q++) {
    PetscCheck(m->OUT.b[q].mul == 1, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: HIP edge output block %d has multiplicity %d, the folded kernel needs 1", m->path, q, m->OUT.b[q].mul);
    for (int q2 = 0; q2 < q; q2++) PetscCheck(m->OUT.b[q2].l != m->OUT.b[q].l || m->OUT.b[q2].p != m->OUT.b[q].p, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: HIP edge output has two blocks of irrep l=%d", m->path, m->OUT.b[q].l);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* CG list of the kept paths keep_q[np] (ncg non-zero coefficients), grouped by path so T and Y are read in order. */
static PetscErrorCode BuildCGList(HMFolded f, PetscInt ncg, const PetscInt keep_q[], const int q_of[])
{
  const HMModel   m   = f->m;
  const HMConvTP *tp  = &m->hi_tp;
  const HMIrreps *mid = &tp->mid;

  PetscFunctionBegin;
  f->ncg = ncg;
  PetscCall(PetscMalloc5(ncg + 1, &f->cg_j, ncg + 1, &f->cg_b, ncg + 1, &f->cg_o, ncg + 1, &f->cg_c, ncg + 1, &f->cg_crev));
  ncg = 0;
  for (int i = 0; i < f->np; i++) {
    const int      p = (int)keep_q[i], k = tp->io[p], q = q_of[k];
    const int      l2 = tp->in2.b[tp->i2[p]].l;
    const int      d1 = (int)f->d1[i], d2 = 2 * l2 + 1, dO = 2 * mid->b[k].l + 1;
    const PetscInt yoff = HMIrrepsOffset(&tp->in2, tp->i2[p]), ooff = HMIrrepsOffset(&m->OUT, q);
    for (int a = 0; a < d1; a++)
      for (int b = 0; b < d2; b++)
        for (int c = 0; c < dO; c++) {
          const double C = tp->C[p][(a * d2 + b) * dO + c];
          if (C == 0.0) continue;
          f->cg_j[ncg]    = (int)(f->ja[i] + a);
          f->cg_b[ncg]    = (int)(yoff + b);
          f->cg_o[ncg]    = (int)(ooff + c);
          f->cg_c[ncg]    = C;
          f->cg_crev[ncg] = (l2 % 2) ? -C : C;
          ncg++;
        }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Operation counts per edge, per pair and per node. */
static void CountFlops(HMFolded f)
{
  const HMModel      m   = f->m;
  const HMRadialMLP *mlp = &m->hi_mlp;

  /* silu_n(x) = c x / (1 + exp(-x)) is 4 flops */
  f->flops_edge = 0;
  for (int i = 0; i < f->nhid; i++) f->flops_edge += 2.0 * mlp->h[i] * mlp->h[i + 1] + 4.0 * mlp->h[i + 1];
  f->flops_pair = f->flops_edge + 2.0 * (2.0 * f->K * f->nka + 3.0 * f->ncg);
  f->flops_edge += 2.0 * f->K * f->nka + 3.0 * f->ncg;
  f->flops_node = 2.0 * m->hnl * f->dimH;
  for (int k = 0; k < m->hi_linear_up.ninstr; k++) {
    const HMIrrep *a = &m->hi_linear_up.in.b[m->hi_linear_up.ia[k]], *b = &m->hi_linear_up.out.b[m->hi_linear_up.ib[k]];
    f->flops_node += 2.0 * a->mul * b->mul * (2 * a->l + 1);
  }
  for (int i = 0; i < f->np; i++) f->flops_node += 2.0 * f->K * f->mul[i] * f->d1[i];
}

PetscErrorCode HMFoldedCreate(HMModel m, HMFolded *out)
{
  HMFolded           f;
  const HMConvTP    *tp  = &m->hi_tp;
  const HMRadialMLP *mlp = &m->hi_mlp;
  const HMIrreps    *mid = &tp->mid;
  PetscInt           offOUT[HM_MAX_IRREP_BLOCKS], offO[HM_MAX_IRREP_BLOCKS], offH[HM_MAX_IRREP_BLOCKS], offM[HM_MAX_IRREP_BLOCKS];
  PetscInt           nOUT, nO, nH, nM, *keep_q;
  double            *rOUT, *rO, *rH, *rM, *Omega;
  const double      *Wlast;
  int                q_of[HM_MAX_IRREP_BLOCKS];
  PetscInt           Ptot = 0, ncg = 0;

  PetscFunctionBegin;
  PetscCall(PetscNew(&f));
  f->m    = m;
  f->dimH = m->dimH;
  f->nb   = m->num_bessel;
  f->lmax = m->hedge_lmax;
  f->nsh  = (PetscInt)(m->hedge_lmax + 1) * (m->hedge_lmax + 1);
  f->nout = HMIrrepsDim(&m->OUT);
  PetscCall(CheckFoldable(f));
  f->nhid = mlp->nlayers - 1;
  f->K    = mlp->h[mlp->nlayers - 1];
  f->maxw = mlp->maxw;
  Wlast   = mlp->W[mlp->nlayers - 1];

  /* Omega: pull the unit covector of each output block back through proj_edges, message_proj and
     hi_linear; the result on mid block k (= path k) is Omega_k, all alphas included */
  nOUT = ChanOffsets(&m->OUT, offOUT);
  nO   = ChanOffsets(&m->O, offO);
  nH   = ChanOffsets(&m->H, offH);
  nM   = ChanOffsets(mid, offM);
  PetscCheck(HMIrrepsDim(&m->proj_edges.in) == HMIrrepsDim(&m->O) && HMIrrepsDim(&m->message_proj.in) == m->dimH && m->hi_linear.in.n == mid->n, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HIP head linear maps do not chain", m->path);
  PetscCall(PetscMalloc5(nOUT + 1, &rOUT, nO + 1, &rO, nH + 1, &rH, nM + 1, &rM, nM + 1, &Omega));
  PetscCall(PetscMalloc1(mid->n + 1, &keep_q));
  for (PetscInt i = 0; i < nM; i++) Omega[i] = 0.0;
  for (int k = 0; k < mid->n; k++) q_of[k] = -1;
  for (int q = 0; q < m->OUT.n; q++) {
    for (PetscInt i = 0; i < nOUT; i++) rOUT[i] = 0.0;
    rOUT[offOUT[q]] = 1.0;
    PullBack(&m->proj_edges, offO, nO, offOUT, rOUT, rO);
    PullBack(&m->message_proj, offH, nH, offO, rO, rH);
    PullBack(&m->hi_linear, offM, nM, offH, rH, rM);
    for (int k = 0; k < mid->n; k++) {
      PetscBool nz = PETSC_FALSE;
      if (mid->b[k].l != m->OUT.b[q].l || mid->b[k].p != m->OUT.b[q].p) continue;
      for (int u = 0; u < mid->b[k].mul; u++) {
        Omega[offM[k] + u] = rM[offM[k] + u];
        if (rM[offM[k] + u] != 0.0) nz = PETSC_TRUE;
      }
      if (nz) q_of[k] = q;
    }
  }

  /* kept paths (tensor-product instruction p writes mid block io[p]) */
  PetscCall(PetscMalloc5(tp->ninstr + 1, &f->xoff, tp->ninstr + 1, &f->mul, tp->ninstr + 1, &f->d1, tp->ninstr + 1, &f->ja, tp->ninstr + 1, &f->poff));
  f->np  = 0;
  f->nka = 0;
  for (int p = 0; p < tp->ninstr; p++) {
    const int      k = tp->io[p], q = q_of[k];
    const HMIrrep *a = &tp->in1.b[tp->i1[p]];
    if (q < 0 || a->mul == 0) continue;
    keep_q[f->np]  = p;
    f->xoff[f->np] = HMIrrepsOffset(&tp->in1, tp->i1[p]);
    f->mul[f->np]  = a->mul;
    f->d1[f->np]   = 2 * a->l + 1;
    f->ja[f->np]   = f->nka;
    f->poff[f->np] = Ptot;
    f->nka += 2 * a->l + 1;
    Ptot += f->K * a->mul;
    {
      const int d1 = 2 * a->l + 1, d2 = 2 * tp->in2.b[tp->i2[p]].l + 1, dO = 2 * mid->b[k].l + 1;
      for (int q3 = 0; q3 < d1 * d2 * dO; q3++)
        if (tp->C[p][q3] != 0.0) ncg++;
    }
    f->np++;
  }
  f->nodedim = f->K * f->nka;
  PetscCall(PetscMalloc1(Ptot + 1, &f->P));
  for (int i = 0; i < f->np; i++) {
    const int p = (int)keep_q[i], k = tp->io[p];
    double   *P = f->P + f->poff[i];
    for (PetscInt kap = 0; kap < f->K; kap++)
      for (PetscInt u = 0; u < f->mul[i]; u++) P[kap * f->mul[i] + u] = tp->pw[p] * Omega[offM[k] + u] * Wlast[kap * tp->weight_numel + tp->woff[p] + u];
  }
  {
    PetscInt maxd1 = 1, maxkm = 1;
    double  *PT;

    for (int i = 0; i < f->np; i++) {
      maxd1 = PetscMax(maxd1, f->d1[i]);
      maxkm = PetscMax(maxkm, f->K * f->mul[i]);
    }
    PetscCall(PetscCalloc1(f->np + 1, &f->Pt));
    PetscCall(PetscMalloc1(maxkm, &PT));
    for (int i = 0; i < f->np; i++) {
      const double *P = f->P + f->poff[i];
      for (PetscInt kap = 0; kap < f->K; kap++)
        for (PetscInt u = 0; u < f->mul[i]; u++) PT[u * f->K + kap] = P[kap * f->mul[i] + u];
      PetscCall(HMGemmPack(f->K, f->mul[i], PT, f->K, &f->Pt[i]));
    }
    PetscCall(PetscFree(PT));
    PetscCall(PetscMalloc1(FOLD_NODE_CHUNK * maxd1 * f->K, &f->nT));
  }

  PetscCall(BuildCGList(f, ncg, keep_q, q_of));
  PetscCall(PetscFree(keep_q));
  PetscCall(PetscFree5(rOUT, rO, rH, rM, Omega));

  PetscCall(PetscMalloc5(FOLD_EDGE_CHUNK * f->nb, &f->rb, 2 * FOLD_EDGE_CHUNK * f->maxw, &f->zw, FOLD_EDGE_CHUNK * f->nsh, &f->Y, FOLD_EDGE_CHUNK * f->nka + 1, &f->T, 2 * FOLD_EDGE_CHUNK, &f->perm));
  PetscCall(PetscMalloc4(FOLD_CG_BLOCK * f->nka + 1, &f->Tt, FOLD_CG_BLOCK * f->nsh, &f->Yt, FOLD_CG_BLOCK * f->nout, &f->Ot, FOLD_EDGE_CHUNK * f->nka + 1, &f->Tr));
  PetscCall(PetscMalloc3(FOLD_NODE_CHUNK * f->dimH, &f->fbar, FOLD_NODE_CHUNK * f->dimH, &f->xbar, FOLD_EDGE_CHUNK, &f->dist));

  CountFlops(f);
  *out = f;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFoldedDestroy(HMFolded *fp)
{
  HMFolded f = *fp;
  PetscFunctionBegin;
  if (!f) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree5(f->xoff, f->mul, f->d1, f->ja, f->poff));
  PetscCall(PetscFree(f->P));
  for (int i = 0; i < f->np && f->Pt; i++) PetscCall(HMGemmPackedDestroy(&f->Pt[i]));
  PetscCall(PetscFree(f->Pt));
  PetscCall(PetscFree(f->nT));
  PetscCall(PetscFree5(f->cg_j, f->cg_b, f->cg_o, f->cg_c, f->cg_crev));
  PetscCall(PetscFree5(f->rb, f->zw, f->Y, f->T, f->perm));
  PetscCall(PetscFree4(f->Tt, f->Yt, f->Ot, f->Tr));
  PetscCall(PetscFree3(f->fbar, f->xbar, f->dist));
  PetscCall(HMRadialTableDestroy(&f->table));
  if (f->WpS) {
    for (int i = 0; i < f->nhid; i++) PetscCall(HMGemmPackedSDestroy(&f->WpS[i]));
    PetscCall(PetscFree(f->WpS));
    PetscCall(PetscFree5(f->zS, f->rbS, f->TS, f->TrS, f->TtS));
    PetscCall(PetscFree4(f->YtS, f->OtS, f->cgS, f->cgrevS));
  }
  PetscCall(PetscFree(f));
  *fp = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFoldedSetRadialTable(HMFolded f, double rmin, double tol)
{
  const HMRadialMLP *mlp = &f->m->hi_mlp;
  double             rad = 0, tab;

  PetscFunctionBegin;
  PetscCall(HMRadialTableDestroy(&f->table));
  PetscCall(HMRadialTableCreate(&f->m->hradial, mlp, rmin, tol, &f->table));
  /* flops: the hidden layers are replaced by a degree-5 Horner sum per component */
  for (int i = 0; i < f->nhid; i++) rad += 2.0 * mlp->h[i] * mlp->h[i + 1] + 4.0 * mlp->h[i + 1];
  tab = 10.0 * f->K;
  f->flops_edge += tab - rad;
  f->flops_pair += tab - rad;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscInt HMFoldedNodeDim(HMFolded f)
{
  return f->nodedim;
}

PetscErrorCode HMFoldedGetFlops(HMFolded f, double *per_edge, double *per_node, double *per_pair)
{
  PetscFunctionBegin;
  if (per_edge) *per_edge = f->flops_edge;
  if (per_node) *per_node = f->flops_node;
  if (per_pair) *per_pair = f->flops_pair;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFoldedNodeTensor(HMFolded f, PetscInt n, const double *const feats[], double G[])
{
  HMModel        m  = f->m;
  const PetscInt dH = f->dimH;

  PetscFunctionBegin;
  for (PetscInt n0 = 0; n0 < n; n0 += FOLD_NODE_CHUNK) {
    const PetscInt nc = PetscMin(FOLD_NODE_CHUNK, n - n0);
    /* the aggregation weights commute with every linear map: apply them to the features first */
    for (PetscInt i = 0; i < nc; i++) {
      double *restrict fb = f->fbar + i * dH;
      const double *x0    = feats[0] + (n0 + i) * dH;
      for (PetscInt c = 0; c < dH; c++) fb[c] = m->hw[0] * x0[c];
      for (int t = 1; t < m->hnl; t++) {
        const double *xt = feats[t] + (n0 + i) * dH;
        const double  w  = m->hw[t];
        for (PetscInt c = 0; c < dH; c++) fb[c] += w * xt[c];
      }
    }
    HMLinearApply(&m->hi_linear_up, nc, f->fbar, dH, 0.0, f->xbar, dH);
    /* G_s[kappa][ja_p + a] = sum_u P_p[kappa][u] x[s][u, a]: for each path one product over the chunk's rows
       (s, a), x_p transposed into fbar (free after the linear map), then scattered into G */
    for (int p = 0; p < f->np; p++) {
      const PetscInt d1 = f->d1[p], mul = f->mul[p], K = f->K;
      double        *xt = f->fbar;

      for (PetscInt i = 0; i < nc; i++) {
        const double *x = f->xbar + i * dH + f->xoff[p];
        for (PetscInt a = 0; a < d1; a++)
          for (PetscInt u = 0; u < mul; u++) xt[(i * d1 + a) * mul + u] = x[u * d1 + a];
      }
      HMGemmRowsPacked(nc * d1, 1.0, xt, mul, &f->Pt[p], 0.0, f->nT, K);
      for (PetscInt i = 0; i < nc; i++) {
        double *Gs = G + (n0 + i) * f->nodedim + f->ja[p];
        for (PetscInt a = 0; a < d1; a++)
          for (PetscInt kap = 0; kap < K; kap++) Gs[kap * f->nka + a] = f->nT[(i * d1 + a) * K + kap];
      }
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* f->dist[k] = |vec[k]| for the nc edges of a chunk */
static void EdgeLengths(HMFolded f, PetscInt nc, const double vec[])
{
  for (PetscInt k = 0; k < nc; k++) {
    const double *v = vec + 3 * k;
    f->dist[k]      = PetscSqrtReal(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  }
}

/* Hidden radial layers of nc edges: *z = z[nc][K] (a work array, or rb without hidden layers), from
   the table when there is one. */
static PetscErrorCode RadialHidden(HMFolded f, PetscInt nc, const double vec[], const double **z)
{
  const HMRadialMLP *mlp = &f->m->hi_mlp;
  const double      *cur = f->rb;
  double            *buf[2];

  PetscFunctionBegin;
  EdgeLengths(f, nc, vec);
  if (f->table) {
    PetscCall(HMRadialTableEval(f->table, nc, f->dist, f->zw));
    *z = f->zw;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  buf[0] = f->zw;
  buf[1] = f->zw + FOLD_EDGE_CHUNK * f->maxw;
  HMRadialBasisEvalBatch(&f->m->hradial, nc, f->dist, f->rb);
  for (int i = 0; i < f->nhid; i++) {
    const PetscInt hi = mlp->h[i], ho = mlp->h[i + 1];
    double        *dst = buf[i % 2];
    /* row-independent product: an edge's result must not depend on its batch (bitwise rank invariance) */
    HMGemmRowsPacked(nc, 1.0, cur, hi, &mlp->Wp[i], 0.0, dst, ho);
    HMSiLUNormArray(nc * ho, dst);
    cur = dst;
  }
  *z = cur;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Stable sort of 0 .. n-1 by key (non-negative): least-significant-digit radix sort, 8 bits a pass. */
static void SortByKey(PetscInt n, const PetscInt key[], PetscInt perm[], PetscInt tmp[])
{
  PetscInt kmax = 0, *src = perm, *dst = tmp;
  for (PetscInt i = 0; i < n; i++) {
    perm[i] = i;
    kmax    = PetscMax(kmax, key[i]);
  }
  for (int sh = 0; sh == 0 || (kmax >> sh) > 0; sh += 8) {
    PetscInt cnt[257] = {0}, *t;
    for (PetscInt i = 0; i < n; i++) cnt[((key[src[i]] >> sh) & 255) + 1]++;
    for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
    for (PetscInt i = 0; i < n; i++) dst[cnt[(key[src[i]] >> sh) & 255]++] = src[i];
    t   = src;
    src = dst;
    dst = t;
  }
  if (src != perm) memcpy(perm, src, sizeof(PetscInt) * (size_t)n);
}

/* T[e][j] = sum_kappa z[e][kappa] G[node[e]][kappa][j]. Edges are grouped by node so that a node's G
   (K x nka) is read once for the whole group and the product runs at the speed of the FMA units; the
   groups are formed from a sort of the chunk's nodes when they are not consecutive (the reversed
   direction). An edge's arithmetic is the same in any group (HMGemmRows*), so the grouping leaves no
   trace in the bits. In double (z, G, T) or, with zS set, in float (zS, GS, TS: -precision single). */
static void ContractGroups(HMFolded f, PetscInt nc, const PetscInt node[], PetscBool sorted, const double *z, const double *G, double *T, const float *zS, const float *GS, float *TS)
{
  const PetscInt K = f->K, nka = f->nka, nd = f->nodedim;
  PetscInt      *perm = sorted ? NULL : f->perm;

  if (nka == 0) return;
  if (perm) SortByKey(nc, node, perm, f->perm + FOLD_EDGE_CHUNK);
  for (PetscInt i = 0; i < nc;) {
    const PetscInt a  = perm ? perm[i] : i;
    PetscInt       i1 = i + 1;
    while (i1 < nc && node[perm ? perm[i1] : i1] == node[a]) i1++;
    if (zS) {
      if (perm) HMGemmRowsS(i1 - i, perm + i, nka, K, zS, K, GS + node[a] * nd, nka, TS, nka);
      else HMGemmRowsS(i1 - i, NULL, nka, K, zS + i * K, K, GS + node[a] * nd, nka, TS + i * nka, nka);
    } else if (perm) HMGemmRowsIndexed(i1 - i, perm + i, nka, K, z, K, G + node[a] * nd, nka, T, nka);
    else HMGemmRows(i1 - i, nka, K, 1.0, z + i * K, K, G + node[a] * nd, nka, 0.0, T + i * nka, nka);
    i = i1;
  }
}

/* e9[e][o] = sum over the CG list of (c Y[e][b]) T[e][j], terms in list order, and the same with crev
   and Tr for the reversed edges (either may be skipped). Vectorised over edges: T, Y and the outputs
   are transposed to [component][edge] for blocks of FOLD_CG_BLOCK edges (kept in L1, Y once for both
   directions); each lane runs the same fused multiply-adds as a scalar loop would. */
FOLD_CLONES static void contract_CG(HMFolded f, PetscInt nc, const double *T, double *e9, const double *Tr, double *e9rev)
{
  const PetscInt nka = f->nka, nsh = f->nsh, nout = f->nout, ncg = f->ncg;
  const int     *cj = f->cg_j, *cb = f->cg_b, *co = f->cg_o;
  double        *Tt = f->Tt, *Yt = f->Yt, *Ot = f->Ot;

  for (PetscInt e0 = 0; e0 < nc; e0 += FOLD_CG_BLOCK) {
    const PetscInt nb = PetscMin(FOLD_CG_BLOCK, nc - e0);
    for (PetscInt e = 0; e < nb; e++) {
      const double *y = f->Y + (e0 + e) * nsh;
      for (PetscInt b = 0; b < nsh; b++) Yt[b * FOLD_CG_BLOCK + e] = y[b];
    }
    for (int dir = 0; dir < 2; dir++) {
      const double *TT = dir ? Tr : T, *c = dir ? f->cg_crev : f->cg_c;
      double       *out = dir ? e9rev : e9;
      if (!out) continue;
      for (PetscInt e = 0; e < nb; e++) {
        const double *t = TT + (e0 + e) * nka;
        for (PetscInt j = 0; j < nka; j++) Tt[j * FOLD_CG_BLOCK + e] = t[j];
      }
      for (PetscInt q = 0; q < nout * FOLD_CG_BLOCK; q++) Ot[q] = 0.0;
      for (PetscInt i = 0; i < ncg; i++) {
        const double ci          = c[i];
        double *restrict o       = Ot + co[i] * FOLD_CG_BLOCK;
        const double *restrict y = Yt + cb[i] * FOLD_CG_BLOCK;
        const double *restrict t = Tt + cj[i] * FOLD_CG_BLOCK;
        for (PetscInt e = 0; e < nb; e++) o[e] = HM_FMA(ci * y[e], t[e], o[e]);
      }
      for (PetscInt e = 0; e < nb; e++)
        for (PetscInt q = 0; q < nout; q++) out[(e0 + e) * nout + q] = Ot[q * FOLD_CG_BLOCK + e];
    }
  }
}

PetscErrorCode HMFoldedEdgesBoth(HMFolded f, PetscInt ne, const PetscInt sender[], const PetscInt receiver[], const double vec[], const double G[], double e9[], double e9rev[])
{
  PetscFunctionBegin;
  PetscCheck(!e9rev || receiver, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "receivers are needed for the reversed edges");
  for (PetscInt e0 = 0; e0 < ne; e0 += FOLD_EDGE_CHUNK) {
    const PetscInt nc = PetscMin(FOLD_EDGE_CHUNK, ne - e0);
    const double  *z  = NULL;
    PetscCall(RadialHidden(f, nc, vec + 3 * e0, &z));
    /* Y(-v) = (-1)^l Y(v) exactly (each component is a product of l coordinates): the sign sits in
       the reversed CG list */
    PetscCall(HMSphericalHarmonics(f->lmax, nc, vec + 3 * e0, f->Y));
    if (e9) ContractGroups(f, nc, sender + e0, PETSC_TRUE, z, G, f->T, NULL, NULL, NULL);
    if (e9rev) ContractGroups(f, nc, receiver + e0, PETSC_FALSE, z, G, f->Tr, NULL, NULL, NULL);
    contract_CG(f, nc, f->T, e9 ? e9 + e0 * f->nout : NULL, f->Tr, e9rev ? e9rev + e0 * f->nout : NULL);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFoldedEdgesErrorBound(HMFolded f, PetscInt ne, const PetscInt sender[], const double vec[], const double G[], double zerr, double bound[])
{
  double *gabs;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(f->nka + 1, &gabs));
  for (PetscInt e0 = 0; e0 < ne; e0 += FOLD_EDGE_CHUNK) {
    const PetscInt nc = PetscMin(FOLD_EDGE_CHUNK, ne - e0);
    PetscCall(HMSphericalHarmonics(f->lmax, nc, vec + 3 * e0, f->Y));
    for (PetscInt k = 0; k < nc; k++) {
      const double *Gs = G + sender[e0 + k] * f->nodedim, *y = f->Y + k * f->nsh;
      double       *b = bound + (e0 + k) * f->nout;
      for (PetscInt j = 0; j < f->nka; j++) {
        gabs[j] = 0;
        for (PetscInt kap = 0; kap < f->K; kap++) gabs[j] += PetscAbsReal(Gs[kap * f->nka + j]);
      }
      for (PetscInt q = 0; q < f->nout; q++) b[q] = 0;
      for (PetscInt i = 0; i < f->ncg; i++) b[f->cg_o[i]] += PetscAbsReal(f->cg_c[i]) * PetscAbsReal(y[f->cg_b[i]]) * gabs[f->cg_j[i]];
      for (PetscInt q = 0; q < f->nout; q++) b[q] *= zerr;
    }
  }
  PetscCall(PetscFree(gabs));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFoldedEdges(HMFolded f, PetscInt ne, const PetscInt sender[], const double vec[], const double G[], double e9[])
{
  PetscFunctionBegin;
  PetscCall(HMFoldedEdgesBoth(f, ne, sender, NULL, vec, G, e9, NULL));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---- -precision single: the per-edge part in float (G, the node tensor, is formed in double and rounded once) ---- */

PetscErrorCode HMFoldedSetSingle(HMFolded f)
{
  const HMRadialMLP *mlp = &f->m->hi_mlp;

  PetscFunctionBegin;
  if (f->WpS) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscCalloc1(f->nhid + 1, &f->WpS));
  for (int i = 0; i < f->nhid; i++) PetscCall(HMGemmPackS(mlp->h[i + 1], mlp->h[i], mlp->W[i], mlp->h[i + 1], &f->WpS[i]));
  PetscCall(PetscMalloc5(2 * FOLD_EDGE_CHUNK * PetscMax(f->maxw, f->K), &f->zS, FOLD_EDGE_CHUNK * f->nb, &f->rbS, FOLD_EDGE_CHUNK * f->nka + 1, &f->TS, FOLD_EDGE_CHUNK * f->nka + 1, &f->TrS, FOLD_CG_BLOCK * f->nka + 1, &f->TtS));
  PetscCall(PetscMalloc4(FOLD_CG_BLOCK * f->nsh, &f->YtS, FOLD_CG_BLOCK * f->nout, &f->OtS, f->ncg + 1, &f->cgS, f->ncg + 1, &f->cgrevS));
  for (PetscInt i = 0; i < f->ncg; i++) {
    f->cgS[i]    = (float)f->cg_c[i];
    f->cgrevS[i] = (float)f->cg_crev[i];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* RadialHidden in float: z[nc][K] (the basis, or the table's z, computed in double and rounded once) */
static PetscErrorCode RadialHiddenS(HMFolded f, PetscInt nc, const double vec[], const float **z)
{
  const HMRadialMLP *mlp = &f->m->hi_mlp;
  const float       *cur = f->rbS;
  float             *buf[2];

  PetscFunctionBegin;
  EdgeLengths(f, nc, vec);
  if (f->table) {
    PetscCall(HMRadialTableEval(f->table, nc, f->dist, f->zw));
    for (PetscInt q = 0; q < nc * f->K; q++) f->zS[q] = (float)f->zw[q];
    *z = f->zS;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  buf[0] = f->zS;
  buf[1] = f->zS + FOLD_EDGE_CHUNK * PetscMax(f->maxw, f->K);
  HMRadialBasisEvalBatch(&f->m->hradial, nc, f->dist, f->rb);
  for (PetscInt q = 0; q < nc * f->nb; q++) f->rbS[q] = (float)f->rb[q];
  for (int i = 0; i < f->nhid; i++) {
    const PetscInt hi = mlp->h[i], ho = mlp->h[i + 1];
    float         *dst = buf[i % 2];
    HMGemmRowsPackedS(nc, NULL, 1.0f, cur, hi, &f->WpS[i], 0.0f, dst, ho);
    HMSiLUNormArrayS(nc * ho, dst);
    cur = dst;
  }
  *z = cur;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* contract_CG in float, the outputs rounded to double */
FOLD_CLONES static void contract_CGS(HMFolded f, PetscInt nc, const float *T, double *e9, const float *Tr, double *e9rev)
{
  const PetscInt nka = f->nka, nsh = f->nsh, nout = f->nout, ncg = f->ncg;
  const int     *cj = f->cg_j, *cb = f->cg_b, *co = f->cg_o;
  float         *Tt = f->TtS, *Yt = f->YtS, *Ot = f->OtS;

  for (PetscInt e0 = 0; e0 < nc; e0 += FOLD_CG_BLOCK) {
    const PetscInt nb = PetscMin(FOLD_CG_BLOCK, nc - e0);
    for (PetscInt e = 0; e < nb; e++) {
      const double *y = f->Y + (e0 + e) * nsh;
      for (PetscInt b = 0; b < nsh; b++) Yt[b * FOLD_CG_BLOCK + e] = (float)y[b];
    }
    for (int dir = 0; dir < 2; dir++) {
      const float *TT = dir ? Tr : T, *c = dir ? f->cgrevS : f->cgS;
      double      *out = dir ? e9rev : e9;
      if (!out) continue;
      for (PetscInt e = 0; e < nb; e++) {
        const float *t = TT + (e0 + e) * nka;
        for (PetscInt j = 0; j < nka; j++) Tt[j * FOLD_CG_BLOCK + e] = t[j];
      }
      for (PetscInt q = 0; q < nout * FOLD_CG_BLOCK; q++) Ot[q] = 0.0f;
      for (PetscInt i = 0; i < ncg; i++) {
        const float ci          = c[i];
        float *restrict o       = Ot + co[i] * FOLD_CG_BLOCK;
        const float *restrict y = Yt + cb[i] * FOLD_CG_BLOCK;
        const float *restrict t = Tt + cj[i] * FOLD_CG_BLOCK;
        for (PetscInt e = 0; e < nb; e++) o[e] = fmaf(ci * y[e], t[e], o[e]);
      }
      for (PetscInt e = 0; e < nb; e++)
        for (PetscInt q = 0; q < nout; q++) out[(e0 + e) * nout + q] = Ot[q * FOLD_CG_BLOCK + e];
    }
  }
}

PetscErrorCode HMFoldedEdgesBothS(HMFolded f, PetscInt ne, const PetscInt sender[], const PetscInt receiver[], const double vec[], const float G[], double e9[], double e9rev[])
{
  PetscFunctionBegin;
  PetscCheck(f->WpS, PETSC_COMM_SELF, PETSC_ERR_ORDER, "HMFoldedSetSingle() first");
  PetscCheck(!e9rev || receiver, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "receivers are needed for the reversed edges");
  for (PetscInt e0 = 0; e0 < ne; e0 += FOLD_EDGE_CHUNK) {
    const PetscInt nc = PetscMin(FOLD_EDGE_CHUNK, ne - e0);
    const float   *z  = NULL;
    PetscCall(RadialHiddenS(f, nc, vec + 3 * e0, &z));
    PetscCall(HMSphericalHarmonics(f->lmax, nc, vec + 3 * e0, f->Y));
    if (e9) ContractGroups(f, nc, sender + e0, PETSC_TRUE, NULL, NULL, NULL, z, G, f->TS);
    if (e9rev) ContractGroups(f, nc, receiver + e0, PETSC_FALSE, NULL, NULL, NULL, z, G, f->TrS);
    contract_CGS(f, nc, f->TS, e9 ? e9 + e0 * f->nout : NULL, f->TrS, e9rev ? e9rev + e0 * f->nout : NULL);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

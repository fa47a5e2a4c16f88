/* HMCellFilter: positions and a periodic cell as one optimisation vector (-optimize_cell true, docs/OPTIMIZE.md). */
#include "optimize/optimizeimpl.h"
#include "sys/sysimpl.h"

#define NC        6    /* strain components */
#define FD_STRAIN 1e-4 /* forward-difference step of the Hessian's cell columns, in strain */

/* the lower-triangular entries of U - I: xx yy zz yx zx zy */
static const int Row[NC] = {0, 1, 2, 1, 2, 2}, Col[NC] = {0, 1, 2, 0, 0, 1};

struct _p_HMCellFilter {
  MPI_Comm          comm;
  PetscMPIInt       rank, owner; /* owner: the last rank, which holds the cell entries after its atoms */
  HMCellObjectiveFn fn;
  void             *ctx;
  PetscInt          n, N;           /* atom coordinates on this rank, in all */
  double            cell0[9], L, P; /* start cell (rows), scale of the cell entries (A), pressure (eV/A^3) */
  Vec               r0, r, gr;      /* the objective's layout: start positions, positions, gradient */
  HMCellMonitorFn   mon;
  void             *monctx;
};

static void Mul3(const double A[9], const double B[9], double C[9])
{
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) C[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] + A[3 * i + 2] * B[6 + j];
}

/* per atom of a (n entries): b_i = M a_i (trans: M^T a_i) */
static PetscErrorCode ApplyPerAtom(PetscInt n, const double M[9], PetscBool trans, Vec a, Vec b)
{
  const PetscScalar *x;
  PetscScalar       *y;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(a, &x));
  PetscCall(VecGetArray(b, &y));
  for (PetscInt i = 0; i < n; i += 3) { /* a and b may be the same vector */
    double t[3] = {0, 0, 0};
    for (int p = 0; p < 3; p++)
      for (int q = 0; q < 3; q++) t[p] += (trans ? M[3 * q + p] : M[3 * p + q]) * x[i + q];
    for (int p = 0; p < 3; p++) y[i + p] = t[p];
  }
  PetscCall(VecRestoreArray(b, &y));
  PetscCall(VecRestoreArrayRead(a, &x));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the optimiser's vector x -> its atom part (the objective's layout) and its 6 cell entries (on every rank) */
static PetscErrorCode Split(HMCellFilter cf, Vec x, Vec atoms, double c[NC])
{
  const PetscScalar *xa;
  PetscScalar       *a;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(x, &xa));
  if (atoms) {
    PetscCall(VecGetArrayWrite(atoms, &a));
    for (PetscInt i = 0; i < cf->n; i++) a[i] = xa[i];
    PetscCall(VecRestoreArrayWrite(atoms, &a));
  }
  if (cf->rank == cf->owner)
    for (int k = 0; k < NC; k++) c[k] = xa[cf->n + k];
  PetscCall(VecRestoreArrayRead(x, &xa));
  PetscCallMPI(MPI_Bcast(c, NC, MPI_DOUBLE, cf->owner, cf->comm));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode Join(HMCellFilter cf, Vec atoms, const double c[NC], Vec x)
{
  const PetscScalar *a;
  PetscScalar       *xa;

  PetscFunctionBegin;
  PetscCall(VecGetArrayWrite(x, &xa));
  PetscCall(VecGetArrayRead(atoms, &a));
  for (PetscInt i = 0; i < cf->n; i++) xa[i] = a[i];
  PetscCall(VecRestoreArrayRead(atoms, &a));
  if (cf->rank == cf->owner)
    for (int k = 0; k < NC; k++) xa[cf->n + k] = c[k];
  PetscCall(VecRestoreArrayWrite(x, &xa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the deformation U = I + e (lower triangular, e = the cell entries / L) and the cell C0 U at x */
static PetscErrorCode Deformation(HMCellFilter cf, Vec x, Vec atoms, double U[9], double cell[9])
{
  double c[NC];

  PetscFunctionBegin;
  PetscCall(Split(cf, x, atoms, c));
  for (int k = 0; k < 9; k++) U[k] = (k % 4 == 0);
  for (int k = 0; k < NC; k++) U[3 * Row[k] + Col[k]] += c[k] / cf->L;
  Mul3(cf->cell0, U, cell);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterCreate(Vec r, const double cell[9], HMCellObjectiveFn fn, void *ctx, HMCellFilter *out)
{
  HMCellFilter cf;
  PetscMPIInt  size;
  PetscInt     N;
  double       V0;

  PetscFunctionBegin;
  V0 = PetscAbsReal(HMMat3Det(cell));
  PetscCall(VecGetSize(r, &N));
  PetscCheck(V0 > 0 && PetscIsNormalReal(V0) && N > 0, PetscObjectComm((PetscObject)r), PETSC_ERR_ARG_WRONG, "HMCellFilterCreate: no atoms, or a cell of zero (or non-finite) volume");
  PetscCall(PetscNew(&cf));
  PetscCall(PetscObjectGetComm((PetscObject)r, &cf->comm));
  PetscCallMPI(MPI_Comm_rank(cf->comm, &cf->rank));
  PetscCallMPI(MPI_Comm_size(cf->comm, &size));
  cf->owner = size - 1;
  cf->fn    = fn;
  cf->ctx   = ctx;
  PetscCall(VecGetLocalSize(r, &cf->n));
  PetscCall(VecGetSize(r, &cf->N));
  for (int k = 0; k < 9; k++) cf->cell0[k] = cell[k];
  /* a strain e changes neighbour distances as much as moving each atom by e (V0/N)^(1/3); in the 2-norm over atoms */
  cf->L = PetscPowReal((double)(cf->N / 3), 1.0 / 6.0) * PetscCbrtReal(V0);
  PetscCall(VecDuplicate(r, &cf->r0));
  PetscCall(VecCopy(r, cf->r0));
  PetscCall(VecDuplicate(r, &cf->r));
  PetscCall(VecDuplicate(r, &cf->gr));
  *out = cf;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterDestroy(HMCellFilter *p)
{
  PetscFunctionBegin;
  if (!*p) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(VecDestroy(&(*p)->r0));
  PetscCall(VecDestroy(&(*p)->r));
  PetscCall(VecDestroy(&(*p)->gr));
  PetscCall(PetscFree(*p));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterSetPressure(HMCellFilter cf, double gpa)
{
  PetscFunctionBegin;
  PetscCheck(PetscIsNormalReal(gpa) || gpa == 0, cf->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_pressure %g: not a finite pressure (GPa)", gpa);
  cf->P = gpa / HM_EV_A3_GPA;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterSetFromOptions(HMCellFilter cf)
{
  double gpa = cf->P * HM_EV_A3_GPA;

  PetscFunctionBegin;
  PetscOptionsBegin(cf->comm, NULL, "Variable-cell optimisation", "HMCellFilter");
  PetscCall(PetscOptionsReal("-optimize_pressure", "Target pressure, GPa: the cell minimises the enthalpy E + P V", "HMCellFilterSetPressure", gpa, &gpa, NULL));
  PetscOptionsEnd();
  PetscCall(HMCellFilterSetPressure(cf, gpa));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterCreateVec(HMCellFilter cf, Vec *x)
{
  const double zero[NC] = {0};

  PetscFunctionBegin;
  PetscCall(VecCreateMPI(cf->comm, cf->n + (cf->rank == cf->owner ? NC : 0), cf->N + NC, x));
  PetscCall(Join(cf, cf->r0, zero, *x));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterGetState(HMCellFilter cf, Vec x, Vec r, double cell[9])
{
  double U[9];

  PetscFunctionBegin;
  PetscCall(Deformation(cf, x, cf->r, U, cell));
  PetscCall(ApplyPerAtom(cf->n, U, PETSC_TRUE, cf->r, r)); /* r_i = q_i U (rows): U^T q_i */
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* E + P V and its gradient in the optimiser's coordinates at x: (U g_i) for the atoms, V (U^-T (stress + P))_jk / L
   for the cell entries; the objective's stress and (want_h) Hessian */
static PetscErrorCode Gradient(HMCellFilter cf, Vec x, PetscBool want_h, double *E, Vec g, double stress[9], double U[9], Mat *Hr)
{
  double cell[9], Ui[9], M[9], c[NC], V;
  Mat    none = NULL;

  PetscFunctionBegin;
  PetscCall(Deformation(cf, x, cf->r, U, cell));
  PetscCall(ApplyPerAtom(cf->n, U, PETSC_TRUE, cf->r, cf->r));
  if (Hr) *Hr = NULL;
  PetscCall((*cf->fn)(cf->r, cell, (PetscBool)(want_h && Hr), E, cf->gr, stress, Hr ? Hr : &none, cf->ctx));
  PetscCall(MatDestroy(&none));
  V = PetscAbsReal(HMMat3Det(cell));
  *E += cf->P * V;
  HMMat3Inverse(U, Ui);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      M[3 * i + j] = 0;
      for (int k = 0; k < 3; k++) M[3 * i + j] += V * Ui[3 * k + i] * (stress[3 * k + j] + (k == j) * cf->P);
    }
  for (int k = 0; k < NC; k++) c[k] = M[3 * Row[k] + Col[k]] / cf->L;
  PetscCall(ApplyPerAtom(cf->n, U, PETSC_FALSE, cf->gr, cf->gr));
  PetscCall(Join(cf, cf->gr, c, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The Hessian in the optimiser's coordinates: [[U H U^T (per atom pair), C], [C^T, K]] with H the objective's d2E/dr2,
   C (atoms x 6) and K (6 x 6, symmetrised) the cell columns by forward differences of the gradient. */
typedef struct {
  HMCellFilter cf;
  Mat          H;
  double       U[9], K[NC * NC];
  Vec          col[NC], va, t1, t2;
} HessCtx;

static PetscErrorCode HessDestroy(void *p)
{
  HessCtx *h = (HessCtx *)p;

  PetscFunctionBegin;
  PetscCall(MatDestroy(&h->H));
  for (int k = 0; k < NC; k++) PetscCall(VecDestroy(&h->col[k]));
  PetscCall(VecDestroy(&h->va));
  PetscCall(VecDestroy(&h->t1));
  PetscCall(VecDestroy(&h->t2));
  PetscCall(PetscFree(h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HessMult(Mat A, Vec v, Vec y)
{
  HessCtx    *h;
  double      vc[NC], yc[NC];
  PetscScalar dots[NC];

  PetscFunctionBegin;
  PetscCall(MatShellGetContext(A, &h));
  PetscCall(Split(h->cf, v, h->va, vc));
  PetscCall(ApplyPerAtom(h->cf->n, h->U, PETSC_TRUE, h->va, h->t1));
  PetscCall(MatMult(h->H, h->t1, h->t2));
  PetscCall(ApplyPerAtom(h->cf->n, h->U, PETSC_FALSE, h->t2, h->t2));
  PetscCall(VecMAXPY(h->t2, NC, vc, h->col));
  PetscCall(VecMDot(h->va, NC, h->col, dots));
  for (int i = 0; i < NC; i++) {
    yc[i] = dots[i];
    for (int j = 0; j < NC; j++) yc[i] += h->K[NC * i + j] * vc[j];
  }
  PetscCall(Join(h->cf, h->t2, yc, y));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the columns of the cell entries: (g(x + hq e_k) - g(x)) / hq, hq = L 1e-4 (a strain of 1e-4) */
static PetscErrorCode CellColumns(HMCellFilter cf, Vec x, Vec g, HessCtx *h)
{
  Vec    xk, gk;
  double hq = cf->L * FD_STRAIN, Kc[NC * NC], U[9], st[9], E;

  PetscFunctionBegin;
  PetscCall(VecDuplicate(x, &xk));
  PetscCall(VecDuplicate(x, &gk));
  for (int k = 0; k < NC; k++) {
    double c[NC];
    PetscCall(VecCopy(x, xk));
    if (cf->rank == cf->owner) PetscCall(VecSetValue(xk, cf->N + k, hq, ADD_VALUES));
    PetscCall(VecAssemblyBegin(xk));
    PetscCall(VecAssemblyEnd(xk));
    PetscCall(Gradient(cf, xk, PETSC_FALSE, &E, gk, st, U, NULL));
    PetscCall(VecAXPY(gk, -1.0, g));
    PetscCall(VecScale(gk, 1.0 / hq));
    PetscCall(VecDuplicate(cf->r, &h->col[k]));
    PetscCall(Split(cf, gk, h->col[k], c));
    for (int i = 0; i < NC; i++) Kc[NC * i + k] = c[i];
  }
  for (int i = 0; i < NC; i++)
    for (int j = 0; j < NC; j++) h->K[NC * i + j] = 0.5 * (Kc[NC * i + j] + Kc[NC * j + i]);
  PetscCall(VecDestroy(&xk));
  PetscCall(VecDestroy(&gk));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* takes the reference Hr */
static PetscErrorCode BuildHessian(HMCellFilter cf, Vec x, Vec g, const double U[9], Mat Hr, Mat *H)
{
  HessCtx *h;
  PetscInt nl, Ng;

  PetscFunctionBegin;
  PetscCall(PetscNew(&h));
  h->cf = cf;
  h->H  = Hr;
  for (int k = 0; k < 9; k++) h->U[k] = U[k];
  PetscCall(CellColumns(cf, x, g, h));
  PetscCall(VecDuplicate(cf->r, &h->va));
  PetscCall(VecDuplicate(cf->r, &h->t1));
  PetscCall(VecDuplicate(cf->r, &h->t2));
  PetscCall(VecGetLocalSize(x, &nl));
  PetscCall(VecGetSize(x, &Ng));
  PetscCall(MatCreateShell(cf->comm, nl, nl, Ng, Ng, h, H));
  PetscCall(MatShellSetOperation(*H, MATOP_MULT, (void (*)(void))HessMult));
  PetscCall(MatShellSetContextDestroy(*H, HessDestroy));
  PetscCall(MatSetOption(*H, MAT_SYMMETRIC, PETSC_TRUE));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterEvaluate(HMOptimizer o, Vec x, PetscBool want_h, double *E, Vec g, Mat *H, void *ctx)
{
  HMCellFilter cf = (HMCellFilter)ctx;
  double       U[9], stress[9];
  Mat          Hr = NULL;

  PetscFunctionBegin;
  (void)o;
  *H = NULL;
  PetscCall(Gradient(cf, x, want_h, E, g, stress, U, &Hr));
  if (Hr) PetscCall(BuildHessian(cf, x, g, U, Hr, H));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Gaussian elimination with partial pivoting, A (n x n, row-major) and b overwritten; b becomes the solution */
static PetscErrorCode Solve6(double A[NC * NC], double b[NC])
{
  PetscFunctionBegin;
  for (int k = 0; k < NC; k++) {
    int p = k;
    for (int i = k + 1; i < NC; i++)
      if (PetscAbsReal(A[NC * i + k]) > PetscAbsReal(A[NC * p + k])) p = i;
    PetscCheck(A[NC * p + k] != 0, PETSC_COMM_SELF, PETSC_ERR_MAT_LU_ZRPVT, "variable cell: singular deformation (a cell of zero volume?)");
    for (int j = 0; j < NC; j++) {
      double t      = A[NC * k + j];
      A[NC * k + j] = A[NC * p + j];
      A[NC * p + j] = t;
    }
    {
      double t = b[k];
      b[k]     = b[p];
      b[p]     = t;
    }
    for (int i = k + 1; i < NC; i++) {
      double f = A[NC * i + k] / A[NC * k + k];
      for (int j = k; j < NC; j++) A[NC * i + j] -= f * A[NC * k + j];
      b[i] -= f * b[k];
    }
  }
  for (int k = NC - 1; k >= 0; k--) {
    for (int j = k + 1; j < NC; j++) b[k] -= A[NC * k + j] * b[j];
    b[k] /= A[NC * k + k];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The cell, the stress and the largest |stress + P| at (x, g), from the gradient's cell entries alone: they are
   m_jk = V (U^-T S)_jk for the lower entries jk, S = stress + P symmetric; solved for S (6 x 6). fmax: of the
   forces, -U^-1 (U g_i). */
PetscErrorCode HMCellFilterCellInfo(HMOptimizer o, Vec x, Vec g, double cell[9], double stress[9], double *smax, double *fmax, void *ctx)
{
  HMCellFilter cf = (HMCellFilter)ctx;
  double       U[9], Ui[9], V, m[NC], A[NC * NC];

  PetscFunctionBegin;
  (void)o;
  PetscCall(Deformation(cf, x, NULL, U, cell));
  PetscCall(Split(cf, g, cf->gr, m));
  V = PetscAbsReal(HMMat3Det(cell));
  HMMat3Inverse(U, Ui);
  PetscCall(ApplyPerAtom(cf->n, Ui, PETSC_FALSE, cf->gr, cf->gr));
  PetscCall(HMOptimizerMaxAtomNorm(cf->gr, fmax));
  for (int k = 0; k < NC; k++) { /* column k: the symmetric unit matrix B_k (entries (Row, Col) and (Col, Row)) */
    double B[9]            = {0}, M[9];
    B[3 * Row[k] + Col[k]] = B[3 * Col[k] + Row[k]] = 1;
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) M[3 * i + j] = V * (Ui[i] * B[j] + Ui[3 + i] * B[3 + j] + Ui[6 + i] * B[6 + j]);
    for (int i = 0; i < NC; i++) A[NC * i + k] = M[3 * Row[i] + Col[i]];
  }
  for (int k = 0; k < NC; k++) m[k] *= cf->L;
  PetscCall(Solve6(A, m));
  *smax = 0;
  for (int k = 0; k < NC; k++) {
    *smax                       = PetscMax(*smax, PetscAbsReal(m[k]));
    stress[3 * Row[k] + Col[k]] = m[k] - (Row[k] == Col[k]) * cf->P;
    stress[3 * Col[k] + Row[k]] = stress[3 * Row[k] + Col[k]];
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the optimiser's monitor: the physical state (positions, cell, E = (E + P V) - P V, g_i = U^-1 (U g_i)) */
static PetscErrorCode Monitor(HMOptimizer o, PetscInt step, Vec x, double E, Vec g, void *ctx)
{
  HMCellFilter cf = (HMCellFilter)ctx;
  double       U[9], Ui[9], cell[9], c[NC];

  PetscFunctionBegin;
  PetscCall(Deformation(cf, x, cf->r, U, cell));
  PetscCall(ApplyPerAtom(cf->n, U, PETSC_TRUE, cf->r, cf->r));
  HMMat3Inverse(U, Ui);
  PetscCall(Split(cf, g, cf->gr, c));
  PetscCall(ApplyPerAtom(cf->n, Ui, PETSC_FALSE, cf->gr, cf->gr));
  PetscCall((*cf->mon)(o, step, cf->r, cell, E - cf->P * PetscAbsReal(HMMat3Det(cell)), cf->gr, cf->monctx));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMCellFilterSetUp(HMCellFilter cf, HMOptimizer o, HMCellMonitorFn mon, void *monctx)
{
  PetscFunctionBegin;
  PetscCall(HMOptimizerSetObjective(o, HMCellFilterEvaluate, cf));
  PetscCall(HMOptimizerSetCell(o, NC, cf->P, HMCellFilterCellInfo, cf));
  cf->mon    = mon;
  cf->monctx = monctx;
  if (mon) PetscCall(HMOptimizerSetMonitor(o, Monitor, cf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

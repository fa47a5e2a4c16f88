/* The optimiser's objective for a HIP-MACE model: energy, gradient and the predicted Hessian at given positions. */
#include "optimize/optimizeimpl.h"
#include <hipmace/eval.h>
#include <hipmace/hessian.h>

struct _p_HMEvalObjective {
  MPI_Comm   comm;
  HMModel    model;
  PetscInt   N;            /* atoms */
  PetscInt   rstart, nloc; /* this rank's block of atoms in the optimiser's layout (that of x) */
  HMSystem   sys;          /* the atoms of the block (distributed), at the positions last set */
  double     cell[9];
  PetscBool  hascell, pbc[3];
  double     fd_h;   /* > 0: gradient by central differences of the energy (checks); 0: analytic forces */
  double     fd_hh;  /* > 0: the Hessian by central differences of the gradient (checks); 0: the predicted one */
  HMEval     ev;     /* built at the first evaluation, moved by HMEvalSetPositions afterwards */
  VecScatter toev;   /* optimiser vector -> the owned atoms of ev in its local order */
  Vec        xo, go; /* positions and gradient in ev's local order */
  PetscInt   nE, nH;
};

PetscErrorCode HMEvalObjectiveCreate(MPI_Comm comm, HMModel model, HMSystem sys, HMEvalObjective *op)
{
  HMEvalObjective o;
  PetscMPIInt     rank, size;
  double          hdr[14] = {0};

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(PetscNew(&o));
  o->comm  = comm;
  o->model = model;
  o->fd_h  = 0;
  if (!rank) { /* a whole structure on rank 0, or rank 0's part of a distributed one */
    PetscBool dist;
    PetscInt  n, N;
    PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMEvalObjectiveCreate: no structure on rank 0");
    PetscCall(HMSystemGetSize(sys, &n));
    PetscCall(HMSystemGetDistribution(sys, &dist, &N, NULL));
    PetscCall(HMSystemGetCell(sys, &o->hascell, o->cell, o->pbc));
    hdr[0] = (double)(dist ? N : n);
    hdr[1] = o->hascell;
    for (int k = 0; k < 9; k++) hdr[2 + k] = o->cell[k];
    for (int k = 0; k < 3; k++) hdr[11 + k] = o->pbc[k];
  }
  PetscCallMPI(MPI_Bcast(hdr, 14, MPI_DOUBLE, 0, comm));
  o->N       = (PetscInt)hdr[0];
  o->hascell = hdr[1] != 0;
  for (int k = 0; k < 9; k++) o->cell[k] = hdr[2 + k];
  for (int k = 0; k < 3; k++) o->pbc[k] = hdr[11 + k] != 0;
  /* PETSc's default block layout of x (HMEvalObjectiveCreateVec); each rank keeps only its block */
  o->nloc   = o->N / size + (rank < o->N % size);
  o->rstart = (o->N / size) * rank + PetscMin(rank, o->N % size);
  PetscCall(HMSystemRedistribute(comm, sys, o->rstart, o->nloc, &o->sys));
  *op = o;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveDestroy(HMEvalObjective *op)
{
  HMEvalObjective o = *op;

  PetscFunctionBegin;
  if (!o) PetscFunctionReturn(PETSC_SUCCESS);
  {
    VecScatter *sc[] = {&o->toev};
    Vec        *v[]  = {&o->xo, &o->go};
    for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(sc); k++) PetscCall(VecScatterDestroy(sc[k]));
    for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(v); k++) PetscCall(VecDestroy(v[k]));
  }
  PetscCall(HMEvalDestroy(&o->ev));
  PetscCall(HMSystemDestroy(&o->sys));
  PetscCall(PetscFree(o));
  *op = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveSetFromOptions(HMEvalObjective o)
{
  PetscFunctionBegin;
  PetscOptionsBegin(o->comm, NULL, "Optimiser objective (HIP-MACE model)", "HMEvalObjective");
  PetscCall(PetscOptionsReal("-optimize_fd_step", "Gradient by central differences of the energy with this step, A (0: analytic forces)", "", o->fd_h, &o->fd_h, NULL));
  PetscCall(PetscOptionsReal("-optimize_fd_hessian", "The optimiser's Hessian by central differences of the gradient with this step, A: the Hessian of the model's own energy, 6N gradients each (checks, HORM's baseline; 0: the predicted Hessian)", "", o->fd_hh, &o->fd_hh, NULL));
  PetscOptionsEnd();
  PetscCheck(o->fd_h >= 0 && o->fd_h < 0.1, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_fd_step %g: must be in [0, 0.1) A (0 = analytic forces)", o->fd_h);
  PetscCheck(o->fd_hh >= 0 && o->fd_hh < 0.1, o->comm, PETSC_ERR_ARG_OUTOFRANGE, "-optimize_fd_hessian %g: must be in [0, 0.1) A (0 = the predicted Hessian)", o->fd_hh);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveCreateVec(HMEvalObjective o, Vec *x)
{
  const double *p;
  PetscScalar  *a;

  PetscFunctionBegin;
  PetscCall(VecCreateMPI(o->comm, 3 * o->nloc, 3 * o->N, x));
  PetscCall(VecSetBlockSize(*x, 3));
  PetscCall(HMSystemGetPositions(o->sys, &p));
  PetscCall(VecGetArrayWrite(*x, &a));
  for (PetscInt i = 0; i < 3 * o->nloc; i++) a[i] = p[i];
  PetscCall(VecRestoreArrayWrite(*x, &a));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveGetRigid(HMEvalObjective o, HMOptimizerRigid *r)
{
  PetscFunctionBegin;
  *r = (o->pbc[0] || o->pbc[1] || o->pbc[2]) ? HM_OPTIMIZER_RIGID_TRANSLATIONS : HM_OPTIMIZER_RIGID_ALL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveGetCounts(HMEvalObjective o, PetscInt *nE, PetscInt *nH)
{
  PetscFunctionBegin;
  if (nE) *nE = o->nE;
  if (nH) *nH = o->nH;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* x (this rank's block) -> the positions of o->sys */
static PetscErrorCode SetLocalPositions(HMEvalObjective o, Vec x)
{
  const PetscScalar *a;

  PetscFunctionBegin;
  PetscCall(VecGetArrayRead(x, &a));
  PetscCall(HMSystemSetPositions(o->sys, a));
  PetscCall(VecRestoreArrayRead(x, &a));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* a distributed copy of the structure at the positions x (every rank its block) */
static PetscErrorCode MakeSystem(HMEvalObjective o, Vec x, HMSystem *sys)
{
  PetscFunctionBegin;
  PetscCall(SetLocalPositions(o, x));
  PetscCall(HMSystemRedistribute(o->comm, o->sys, o->rstart, o->nloc, sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveGetSystem(HMEvalObjective o, Vec x, HMSystem *sys)
{
  PetscFunctionBegin;
  PetscCall(MakeSystem(o, x, sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* (H + H^T) / 2 in place: the HIP head's blocks and difference columns are not exactly symmetric */
static PetscErrorCode Symmetrize(Mat H)
{
  Mat Ht;

  PetscFunctionBegin;
  PetscCall(MatTranspose(H, MAT_INITIAL_MATRIX, &Ht));
  PetscCall(MatAXPY(H, 1.0, Ht, UNKNOWN_NONZERO_PATTERN));
  PetscCall(MatScale(H, 0.5));
  PetscCall(MatDestroy(&Ht));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Hessian in input order, moved to the optimiser's rows (layout of x) and symmetrised */
static PetscErrorCode HessianToLayout(HMHessian hs, Mat H, Vec x, Mat *Hx)
{
  Mat       Hin;
  PetscInt  lo, hi, hlo, hhi;
  PetscBool same, all;
  MPI_Comm  comm;

  PetscFunctionBegin;
  PetscCall(PetscObjectGetComm((PetscObject)x, &comm));
  PetscCall(HMHessianInputOrder(hs, H, &Hin));
  PetscCall(VecGetOwnershipRange(x, &lo, &hi));
  PetscCall(MatGetOwnershipRange(Hin, &hlo, &hhi));
  same = (PetscBool)(lo == hlo && hi == hhi);
  PetscCall(MPIU_Allreduce(&same, &all, 1, MPIU_BOOL, MPI_LAND, comm));
  if (all) *Hx = Hin;
  else {
    IS is;
    PetscCall(ISCreateStride(comm, hi - lo, lo, 1, &is));
    PetscCall(ISSetBlockSize(is, 3));
    PetscCall(MatCreateSubMatrix(Hin, is, is, MAT_INITIAL_MATRIX, Hx));
    PetscCall(ISDestroy(&is));
    PetscCall(MatDestroy(&Hin));
  }
  PetscCall(MatConvert(*Hx, MATAIJ, MAT_INPLACE_MATRIX, Hx)); /* a private copy in a type every product handles */
  PetscCall(Symmetrize(*Hx));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* o->ev at the positions x: built from the distributed structure the first time (the partition of that geometry),
   afterwards moved by HMEvalSetPositions through the scatter toev (no gather, no repartition) */
static PetscErrorCode SetPositions(HMEvalObjective o, Vec x)
{
  const PetscScalar *a;

  PetscFunctionBegin;
  if (!o->ev) {
    HMSystem        sys;
    HMHessian       hs;
    const PetscInt *gid;
    PetscInt        n;
    IS              is;

    PetscCall(MakeSystem(o, x, &sys));
    PetscCall(HMEvalCreate(o->model, &o->ev));
    PetscCall(HMEvalSetFromOptions(o->ev));
    PetscCall(HMHessianCreate(o->ev, &hs)); /* the Hessian's options set the cutoff of its graph */
    PetscCall(HMHessianSetFromOptions(hs));
    PetscCall(HMEvalSetSystem(o->ev, sys));
    PetscCall(HMHessianDestroy(&hs));
    PetscCall(HMSystemDestroy(&sys));
    PetscCall(HMEvalGetSizes(o->ev, NULL, &n, NULL, NULL));
    PetscCall(HMEvalGetLocalAtoms(o->ev, &gid, NULL));
    PetscCall(ISCreateBlock(o->comm, 3, n, gid, PETSC_COPY_VALUES, &is));
    PetscCall(VecCreateMPI(o->comm, 3 * n, 3 * o->N, &o->xo));
    PetscCall(VecDuplicate(o->xo, &o->go));
    PetscCall(VecScatterCreate(x, is, o->xo, NULL, &o->toev));
    PetscCall(ISDestroy(&is));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(VecScatterBegin(o->toev, x, o->xo, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(o->toev, x, o->xo, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecGetArrayRead(o->xo, &a));
  PetscCall(HMEvalSetPositions(o->ev, a));
  PetscCall(VecRestoreArrayRead(o->xo, &a));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* energy (and Hessian, gradient) at the positions x */
static PetscErrorCode Evaluate(HMEvalObjective o, Vec x, PetscBool want_h, double *E, Mat *Hx, Vec g)
{
  HMEval ev;

  PetscFunctionBegin;
  PetscCall(SetPositions(o, x));
  ev = o->ev;
  PetscCall(HMEvalForward(ev));
  PetscCall(HMEvalCheckFinite(ev));
  PetscCall(HMEvalGetEnergy(ev, E, NULL));
  o->nE++;
  if (g) { /* g = -F: the owned atoms in ev's order, scattered back to the optimiser's layout */
    const double *f;
    PetscScalar  *ga;
    PetscInt      n;
    PetscCall(HMEvalComputeForces(ev));
    PetscCall(HMEvalGetForces(ev, &f));
    PetscCall(HMEvalGetSizes(ev, NULL, &n, NULL, NULL));
    PetscCall(VecGetArrayWrite(o->go, &ga));
    for (PetscInt k = 0; k < 3 * n; k++) ga[k] = -f[k];
    PetscCall(VecRestoreArrayWrite(o->go, &ga));
    PetscCall(VecScatterBegin(o->toev, o->go, g, INSERT_VALUES, SCATTER_REVERSE));
    PetscCall(VecScatterEnd(o->toev, o->go, g, INSERT_VALUES, SCATTER_REVERSE));
  }
  if (want_h) {
    HMHessian hs;
    Mat       H;
    PetscCall(HMHessianCreate(ev, &hs));
    PetscCall(HMHessianSetFromOptions(hs));
    PetscCall(HMHessianAssemble(hs, &H));
    PetscCall(HMHessianCheckFinite(hs, H));
    PetscCall(HessianToLayout(hs, H, x, Hx));
    PetscCall(MatDestroy(&H));
    PetscCall(HMHessianDestroy(&hs));
    o->nH++;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode EvaluateGradient(HMEvalObjective, Vec, double *, Vec, Mat *);

/* The Hessian of the model's energy by central differences of the gradient (-optimize_fd_hessian h): column k from the
   gradients at x +- h e_k (every rank runs each evaluation; the owner of coordinate k moves it), each rank keeping its
   rows' nonzero entries (the gradient of atoms beyond the model's interaction range does not change: the matrix stays
   sparse), symmetrised as the predicted one. 6N gradient evaluations. */
static PetscErrorCode DifferenceHessian(HMEvalObjective o, Vec x, Mat *H)
{
  Vec                xp, gp, gm;
  PetscInt           lo, hi, n3 = 3 * o->N;
  double             h = o->fd_hh, Ed;
  const PetscScalar *a, *b;

  PetscFunctionBegin;
  PetscCall(VecGetOwnershipRange(x, &lo, &hi));
  PetscCall(VecDuplicate(x, &xp));
  PetscCall(VecDuplicate(x, &gp));
  PetscCall(VecDuplicate(x, &gm));
  PetscCall(MatCreateAIJ(o->comm, hi - lo, hi - lo, n3, n3, 48, NULL, 48, NULL, H));
  PetscCall(MatSetOption(*H, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
  for (PetscInt k = 0; k < n3; k++) {
    for (int side = 0; side < 2; side++) {
      PetscScalar *c;
      PetscCall(VecCopy(x, xp));
      PetscCall(VecGetArray(xp, &c));
      if (k >= lo && k < hi) c[k - lo] += side ? -h : h;
      PetscCall(VecRestoreArray(xp, &c));
      PetscCall(EvaluateGradient(o, xp, &Ed, side ? gm : gp, NULL));
    }
    PetscCall(VecGetArrayRead(gp, &a));
    PetscCall(VecGetArrayRead(gm, &b));
    for (PetscInt i = lo; i < hi; i++) {
      double d = (a[i - lo] - b[i - lo]) / (2 * h);
      if (d != 0) PetscCall(MatSetValue(*H, i, k, d, INSERT_VALUES));
    }
    PetscCall(VecRestoreArrayRead(gp, &a));
    PetscCall(VecRestoreArrayRead(gm, &b));
  }
  PetscCall(MatAssemblyBegin(*H, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*H, MAT_FINAL_ASSEMBLY));
  PetscCall(Symmetrize(*H));
  PetscCall(VecDestroy(&xp));
  PetscCall(VecDestroy(&gp));
  PetscCall(VecDestroy(&gm));
  o->nH++;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveEvaluate(HMOptimizer opt, Vec x, PetscBool want_h, double *E, Vec g, Mat *H, void *ctx)
{
  HMEvalObjective o = (HMEvalObjective)ctx;

  PetscFunctionBegin;
  (void)opt;
  *H = NULL;
  if (want_h && o->fd_hh > 0) PetscCall(DifferenceHessian(o, x, H)); /* first: it moves the evaluation elsewhere */
  PetscCall(EvaluateGradient(o, x, E, g, want_h && o->fd_hh == 0 ? H : NULL));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* energy and gradient at x (the analytic forces, or central differences of the energy, -optimize_fd_step), and the
   predicted Hessian with H */
static PetscErrorCode EvaluateGradient(HMEvalObjective o, Vec x, double *E, Vec g, Mat *H)
{
  Vec      xp;
  PetscInt lo, hi;

  PetscFunctionBegin;
  PetscCall(Evaluate(o, x, (PetscBool)(H != NULL), E, H, o->fd_h > 0 ? NULL : g));
  if (o->fd_h == 0) PetscFunctionReturn(PETSC_SUCCESS);
  /* gradient: central differences of the energy, one coordinate at a time (every rank runs each evaluation;
     the owner of coordinate k in x's layout moves it and keeps the difference) */
  PetscCall(VecDuplicate(x, &xp));
  PetscCall(VecGetOwnershipRange(x, &lo, &hi));
  for (PetscInt k = 0; k < 3 * o->N; k++) {
    double       Ep, Em, p0 = 0;
    PetscScalar *a;
    PetscCall(VecCopy(x, xp));
    PetscCall(VecGetArray(xp, &a));
    if (k >= lo && k < hi) {
      p0        = a[k - lo];
      a[k - lo] = p0 + o->fd_h;
    }
    PetscCall(VecRestoreArray(xp, &a));
    PetscCall(Evaluate(o, xp, PETSC_FALSE, &Ep, NULL, NULL));
    PetscCall(VecGetArray(xp, &a));
    if (k >= lo && k < hi) a[k - lo] = p0 - o->fd_h;
    PetscCall(VecRestoreArray(xp, &a));
    PetscCall(Evaluate(o, xp, PETSC_FALSE, &Em, NULL, NULL));
    if (k >= lo && k < hi) PetscCall(VecSetValue(g, k, (Ep - Em) / (2 * o->fd_h), INSERT_VALUES));
  }
  PetscCall(VecAssemblyBegin(g));
  PetscCall(VecAssemblyEnd(g));
  PetscCall(VecDestroy(&xp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the finite-difference gradient (-optimize_fd_step) covers the positions only */
static PetscErrorCode CheckNoDifferences(HMEvalObjective o)
{
  PetscFunctionBegin;
  PetscCheck(o->fd_h == 0, o->comm, PETSC_ERR_SUP, "-optimize_fd_step with -optimize_cell true: the differences do not cover the cell");
  PetscCheck(o->fd_hh == 0, o->comm, PETSC_ERR_SUP, "-optimize_fd_hessian with -optimize_cell true: the differences do not cover the cell");
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the evaluation and its scatter are for one cell: dropped, the next evaluation builds them for this one */
PetscErrorCode HMEvalObjectiveSetCell(HMEvalObjective o, const double cell[9])
{
  PetscBool same = PETSC_TRUE;

  PetscFunctionBegin;
  PetscCheck(o->hascell, o->comm, PETSC_ERR_ARG_WRONG, "HMEvalObjectiveSetCell: the structure has no cell");
  for (int k = 0; k < 9; k++) same = (PetscBool)(same && cell[k] == o->cell[k]);
  if (same) PetscFunctionReturn(PETSC_SUCCESS);
  for (int k = 0; k < 9; k++) o->cell[k] = cell[k];
  PetscCall(HMSystemSetCell(o->sys, cell));
  PetscCall(VecScatterDestroy(&o->toev));
  PetscCall(VecDestroy(&o->xo));
  PetscCall(VecDestroy(&o->go));
  PetscCall(HMEvalDestroy(&o->ev));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveEvaluateCell(Vec r, const double cell[9], PetscBool want_h, double *E, Vec g, double stress[9], Mat *H, void *ctx)
{
  HMEvalObjective o = (HMEvalObjective)ctx;
  PetscBool       has;

  PetscFunctionBegin;
  PetscCall(CheckNoDifferences(o));
  PetscCall(HMEvalObjectiveSetCell(o, cell));
  *H = NULL;
  PetscCall(Evaluate(o, r, want_h, E, want_h ? H : NULL, g));
  PetscCall(HMEvalGetStress(o->ev, &has, stress));
  PetscCheck(has, o->comm, PETSC_ERR_PLIB, "variable cell: the evaluation gave no stress");
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveCreateCellFilter(HMEvalObjective o, Vec r, HMCellFilter *cf)
{
  PetscFunctionBegin;
  PetscCheck(o->hascell, o->comm, PETSC_ERR_ARG_WRONG, "-optimize_cell true needs a cell periodic along x, y and z: the structure has no cell");
  PetscCheck(o->pbc[0] && o->pbc[1] && o->pbc[2], o->comm, PETSC_ERR_ARG_WRONG, "-optimize_cell true needs a cell periodic along x, y and z: the structure's pbc is \"%s %s %s\" (the stress of a slab, wire or molecule is not defined)", o->pbc[0] ? "T" : "F", o->pbc[1] ? "T" : "F", o->pbc[2] ? "T" : "F");
  PetscCall(CheckNoDifferences(o));
  PetscCall(HMCellFilterCreate(r, o->cell, HMEvalObjectiveEvaluateCell, o, cf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

struct _p_HMTrajectory {
  HMEvalObjective eo;
  HMOrderedFile   f; /* written at its temporary name, renamed to the path at the end */
};

PetscErrorCode HMEvalObjectiveTrajectoryCreate(HMEvalObjective eo, const char path[], HMTrajectory *tp)
{
  HMTrajectory t;

  PetscFunctionBegin;
  PetscCall(PetscNew(&t));
  t->eo = eo;
  PetscCall(HMFileOrderedOpen(eo->comm, path, &t->f));
  *tp = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMTrajectoryDestroy(HMTrajectory *tp)
{
  HMTrajectory t = *tp;

  PetscFunctionBegin;
  if (!t) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMFileOrderedCommit(&t->f));
  PetscCall(PetscFree(t));
  *tp = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One frame per accepted step, every rank writing its block of atoms (ordered MPI-IO file): no rank holds all.
   cell: the cell of the frame (variable cell), else the structure's. */
static PetscErrorCode WriteFrame(HMTrajectory t, PetscInt step, Vec x, const double cell[9], double E, Vec g)
{
  HMEvalObjective    eo = t->eo;
  double             fmax, *f;
  const PetscScalar *ga;
  char               comment[1024];
  size_t             k = 0;

  PetscFunctionBegin;
  PetscCall(HMOptimizerMaxAtomNorm(g, &fmax));
  PetscCall(SetLocalPositions(eo, x));
  if (eo->hascell) {
    const double *c = cell ? cell : eo->cell;
    k += HMXYZLatticeField(c, comment, sizeof(comment));
  }
  snprintf(comment + k, sizeof(comment) - k, "Properties=species:S:1:pos:R:3:forces:R:3 energy=%.17g step=%" PetscInt_FMT " fmax=%.6e pbc=\"%s %s %s\"", E, step, fmax, eo->pbc[0] ? "T" : "F", eo->pbc[1] ? "T" : "F", eo->pbc[2] ? "T" : "F");
  PetscCall(PetscMalloc1(3 * eo->nloc + 1, &f));
  PetscCall(VecGetArrayRead(g, &ga));
  for (PetscInt i = 0; i < 3 * eo->nloc; i++) f[i] = -ga[i];
  PetscCall(VecRestoreArrayRead(g, &ga));
  PetscCall(HMSystemWriteXYZFrame(eo->sys, t->f, comment, PETSC_FALSE, f));
  PetscCall(PetscFree(f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveTrajectoryMonitor(HMOptimizer opt, PetscInt step, Vec x, double E, Vec g, void *ctx)
{
  PetscFunctionBegin;
  (void)opt;
  PetscCall(WriteFrame((HMTrajectory)ctx, step, x, NULL, E, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMEvalObjectiveTrajectoryCellMonitor(HMOptimizer opt, PetscInt step, Vec r, const double cell[9], double E, Vec g, void *ctx)
{
  PetscFunctionBegin;
  (void)opt;
  PetscCall(WriteFrame((HMTrajectory)ctx, step, r, cell, E, g));
  PetscFunctionReturn(PETSC_SUCCESS);
}

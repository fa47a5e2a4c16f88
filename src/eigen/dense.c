/* Full spectrum: the projected operator P Ht P + alpha V V^T as a block-cyclic dense matrix, solved by ScaLAPACK pdsyevd. */
#include "eigenimpl.h"
#include <petscblaslapack.h>
#if defined(HM_HAVE_ELPA)
  #include <elpa/elpa.h>
#endif

/* BLACS / ScaLAPACK entry points (libscalapack-openmpi); Fortran character lengths passed explicitly. */
extern int  Csys2blacs_handle(MPI_Comm);
extern void Cfree_blacs_system_handle(int);
extern void Cblacs_gridinit(int *, const char *, int, int);
extern void Cblacs_gridinfo(int, int *, int *, int *, int *);
extern void Cblacs_gridexit(int);
extern int  numroc_(const int *, const int *, const int *, const int *, const int *);
extern void descinit_(int *, const int *, const int *, const int *, const int *, const int *, const int *, const int *, const int *, int *);
extern void pdsyevd_(const char *, const char *, const int *, double *, const int *, const int *, const int *, double *, double *, const int *, const int *, const int *, double *, const int *, int *, const int *, int *, size_t, size_t);

/* global index of local block-cyclic index l (source process 0) */
static inline PetscInt HMBlockCyclicGlobal(PetscInt l, int nb, int myp, int np)
{
  return ((l / nb) * np + myp) * nb + l % nb;
}

/* -modes_dense_solver: the dense eigensolver of -modes full. */
static const char *const HMDenseSolvers[] = {"scalapack", "elpa", "HMDenseSolver", "HM_DENSE_", NULL};

#if defined(HM_HAVE_ELPA)
/* All eigenpairs of the block-cyclic matrix A (the full matrix, both triangles, as ELPA requires) by
   ELPA's two-stage solver on the same BLACS layout: eigenvalues ascending in w, vectors in Z. */
static PetscErrorCode DenseElpa(MPI_Comm comm, int n, int mloc, int nlocc, int nb, int myrow, int mycol, double *A, double *w, double *Z)
{
  elpa_t e;
  int    err;

  PetscFunctionBegin;
  PetscCheck(elpa_init(ELPA_API_VERSION) == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: API version %d is not supported by the library", ELPA_API_VERSION);
  e = elpa_allocate(&err);
  PetscCheck(err == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: elpa_allocate failed (%d)", err);
  elpa_set(e, "na", n, &err);
  elpa_set(e, "nev", n, &err);
  elpa_set(e, "local_nrows", mloc, &err);
  elpa_set(e, "local_ncols", nlocc, &err);
  elpa_set(e, "nblk", nb, &err);
  elpa_set(e, "mpi_comm_parent", (int)MPI_Comm_c2f(comm), &err);
  elpa_set(e, "process_row", myrow, &err);
  elpa_set(e, "process_col", mycol, &err);
  PetscCheck(err == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: setting the matrix layout failed (%d)", err);
  PetscCheck(elpa_setup(e) == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: elpa_setup failed");
  elpa_set(e, "solver", ELPA_SOLVER_2STAGE, &err);
  PetscCheck(err == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: cannot select the two-stage solver (%d)", err);
  elpa_eigenvectors(e, A, w, Z, &err);
  PetscCheck(err == ELPA_OK, comm, PETSC_ERR_LIB, "ELPA: elpa_eigenvectors failed (%d) on the %d x %d projected Hessian", err, n, n);
  elpa_deallocate(e, &err);
  elpa_uninit(&err);
  PetscFunctionReturn(PETSC_SUCCESS);
}
#endif

/* The block-cyclic layout of the ndof x ndof dense matrix on a BLACS grid over all ranks. */
typedef struct {
  int       nprow, npcol, myrow, mycol, ctxt, sysctxt, n, nb, mloc, nlocc, lld, desc[9];
  PetscInt *Ir, *Jc; /* global rows / columns of the local block-cyclic rows / columns */
} HMDenseLayout;

static PetscErrorCode HMDenseLayoutCreate_Private(HMProj *p, HMDenseLayout *L)
{
  PetscMPIInt size;
  int         izero = 0, info;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(p->comm, &size));
  PetscCall(PetscMPIIntCast(p->ndof, &L->n));
  for (L->nprow = (int)PetscSqrtReal((double)size); size % L->nprow; L->nprow--) {}
  L->npcol   = size / L->nprow;
  L->sysctxt = Csys2blacs_handle(p->comm);
  L->ctxt    = L->sysctxt;
  Cblacs_gridinit(&L->ctxt, "Row", L->nprow, L->npcol);
  Cblacs_gridinfo(L->ctxt, &L->nprow, &L->npcol, &L->myrow, &L->mycol);
  PetscCheck(L->myrow >= 0 && L->mycol >= 0, p->comm, PETSC_ERR_LIB, "BLACS grid %d x %d does not contain this rank", L->nprow, L->npcol);
  L->nb    = (int)PetscMax(2, PetscMin(32, (L->n + 2 * PetscMax(L->nprow, L->npcol) - 1) / (2 * PetscMax(L->nprow, L->npcol))));
  L->mloc  = numroc_(&L->n, &L->nb, &L->myrow, &izero, &L->nprow);
  L->nlocc = numroc_(&L->n, &L->nb, &L->mycol, &izero, &L->npcol);
  L->lld   = PetscMax(1, L->mloc);
  descinit_(L->desc, &L->n, &L->n, &L->nb, &L->nb, &izero, &izero, &L->ctxt, &L->lld, &info);
  PetscCheck(info == 0, p->comm, PETSC_ERR_LIB, "ScaLAPACK descinit failed (info %d)", info);
  PetscCall(PetscMalloc2(L->mloc + 1, &L->Ir, L->nlocc + 1, &L->Jc));
  for (int l = 0; l < L->mloc; l++) L->Ir[l] = HMBlockCyclicGlobal(l, L->nb, L->myrow, L->nprow);
  for (int l = 0; l < L->nlocc; l++) L->Jc[l] = HMBlockCyclicGlobal(l, L->nb, L->mycol, L->npcol);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode HMDenseLayoutDestroy_Private(HMDenseLayout *L)
{
  PetscFunctionBegin;
  PetscCall(PetscFree2(L->Ir, L->Jc));
  Cblacs_gridexit(L->ctxt);
  Cfree_blacs_system_handle(L->sysctxt);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A = the local block-cyclic blocks of Ht, fetched from the row-distributed sparse matrix. */
static PetscErrorCode HMDenseFillHt_Private(HMProj *p, const HMDenseLayout *L, double *A)
{
  IS   isr, isc;
  Mat *sub;

  PetscFunctionBegin;
  PetscCall(ISCreateGeneral(PETSC_COMM_SELF, L->mloc, L->Ir, PETSC_USE_POINTER, &isr));
  PetscCall(ISCreateGeneral(PETSC_COMM_SELF, L->nlocc, L->Jc, PETSC_USE_POINTER, &isc));
  PetscCall(MatCreateSubMatrices(p->Ht, 1, &isr, &isc, MAT_INITIAL_MATRIX, &sub));
  for (int r = 0; r < L->mloc; r++) {
    PetscInt           nc;
    const PetscInt    *cols;
    const PetscScalar *vals;
    PetscCall(MatGetRow(sub[0], r, &nc, &cols, &vals));
    for (PetscInt c = 0; c < nc; c++) A[r + (size_t)cols[c] * L->lld] = PetscRealPart(vals[c]);
    PetscCall(MatRestoreRow(sub[0], r, &nc, &cols, &vals));
  }
  PetscCall(MatDestroySubMatrices(1, &sub));
  PetscCall(ISDestroy(&isr));
  PetscCall(ISDestroy(&isc));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The rows of U = [V W] (2k columns) that the local block-cyclic rows (Ur, mloc x 2k) and columns (Uc, nlocc x 2k)
   need, column-major, gathered from the ranks that own them. */
static PetscErrorCode HMDenseGatherU_Private(HMProj *p, const HMDenseLayout *L, int k2, double *Ur, double *Uc)
{
  double       *ug;
  const double *ul;
  PetscInt      rs, *idx;
  IS            isu;
  Vec           Ug, Ul;
  VecScatter    sc;

  PetscFunctionBegin;
  PetscCall(VecCreateMPI(p->comm, p->nloc * k2, p->ndof * k2, &Ug));
  PetscCall(VecGetOwnershipRange(Ug, &rs, NULL));
  PetscCheck(rs == p->rstart * k2, p->comm, PETSC_ERR_PLIB, "unexpected layout of the rigid-body work vector");
  PetscCall(VecGetArray(Ug, &ug));
  for (PetscInt r = 0; r < p->nloc; r++)
    for (PetscInt j = 0; j < p->k; j++) {
      ug[r * k2 + j]        = p->V[r + j * p->nloc];
      ug[r * k2 + p->k + j] = p->W[r + j * p->nloc];
    }
  PetscCall(VecRestoreArray(Ug, &ug));
  PetscCall(PetscMalloc1((size_t)(L->mloc + L->nlocc) * k2 + 1, &idx));
  for (int r = 0; r < L->mloc; r++)
    for (int c = 0; c < k2; c++) idx[(size_t)r * k2 + c] = L->Ir[r] * k2 + c;
  for (int q = 0; q < L->nlocc; q++)
    for (int c = 0; c < k2; c++) idx[(size_t)(L->mloc + q) * k2 + c] = L->Jc[q] * k2 + c;
  PetscCall(ISCreateGeneral(PETSC_COMM_SELF, (L->mloc + L->nlocc) * k2, idx, PETSC_OWN_POINTER, &isu));
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, (L->mloc + L->nlocc) * k2, &Ul));
  PetscCall(VecScatterCreate(Ug, isu, Ul, NULL, &sc));
  PetscCall(VecScatterBegin(sc, Ug, Ul, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(sc, Ug, Ul, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterDestroy(&sc));
  PetscCall(ISDestroy(&isu));
  PetscCall(VecDestroy(&Ug));
  PetscCall(VecGetArrayRead(Ul, &ul));
  for (int r = 0; r < L->mloc; r++)
    for (int c = 0; c < k2; c++) Ur[r + (size_t)c * L->mloc] = ul[(size_t)r * k2 + c];
  for (int q = 0; q < L->nlocc; q++)
    for (int c = 0; c < k2; c++) Uc[q + (size_t)c * L->nlocc] = ul[(size_t)(L->mloc + q) * k2 + c];
  PetscCall(VecRestoreArrayRead(Ul, &ul));
  PetscCall(VecDestroy(&Ul));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A += U S U^T with U = [V W], S = [[C + alpha I, -I], [-I, 0]]: turns Ht into P Ht P + alpha V V^T exactly, the
   rigid directions becoming eigenvectors with eigenvalue alpha. */
static PetscErrorCode HMDenseLowRankUpdate_Private(HMProj *p, const HMDenseLayout *L, double *A)
{
  int    k2 = (int)(2 * p->k);
  double S[4 * HM_MAX_RIGID * HM_MAX_RIGID], *Ur, *Uc, *T;

  PetscFunctionBegin;
  if (!k2) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscArrayzero(S, k2 * k2));
  for (PetscInt i = 0; i < p->k; i++) {
    for (PetscInt j = 0; j < p->k; j++) S[i + j * k2] = p->C[i + j * p->k];
    S[i + i * k2] += p->alpha;
    S[i + (p->k + i) * k2] = -1.0;
    S[(p->k + i) + i * k2] = -1.0;
  }
  /* column-major copies: Ur (mloc x k2), Uc (nlocc x k2), T = Ur S */
  PetscCall(PetscMalloc3((size_t)L->mloc * k2 + 1, &Ur, (size_t)L->nlocc * k2 + 1, &Uc, (size_t)L->mloc * k2 + 1, &T));
  PetscCall(HMDenseGatherU_Private(p, L, k2, Ur, Uc));
  for (int r = 0; r < L->mloc; r++)
    for (int c = 0; c < k2; c++) {
      double s = 0;
      for (int d = 0; d < k2; d++) s += Ur[r + (size_t)d * L->mloc] * S[d + c * k2];
      T[r + (size_t)c * L->mloc] = s;
    }
  if (L->mloc && L->nlocc) {
    PetscBLASInt bm = L->mloc, bn = L->nlocc, bk = k2, blld = L->lld, bmt = L->mloc, bnc = L->nlocc;
    double       one = 1.0;
    PetscCallBLAS("BLASgemm", BLASgemm_("N", "T", &bm, &bn, &bk, &one, T, &bmt, Uc, &bnc, &one, A, &blld));
  }
  PetscCall(PetscFree3(Ur, Uc, T));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* All eigenpairs of the block-cyclic A: eigenvalues ascending in w, vectors in Z (which = 0 ScaLAPACK, 1 ELPA). */
static PetscErrorCode HMDenseEigen_Private(HMProj *p, const HMDenseLayout *L, PetscInt which, double *A, double *w, double *Z)
{
  int        ione = 1, info, lwork = -1, liwork = -1, iwq, n = L->n, *iwork;
  double     wq, *work;
  const int *desc = L->desc;

  PetscFunctionBegin;
#if !defined(HM_HAVE_ELPA)
  PetscCheck(which == 0, p->comm, PETSC_ERR_SUP, "-modes_dense_solver elpa: hipmace was built without ELPA (install libelpa-dev and reconfigure)");
#else
  if (which == 1) {
    PetscCall(DenseElpa(p->comm, n, L->mloc, L->nlocc, L->nb, L->myrow, L->mycol, A, w, Z));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
#endif
  pdsyevd_("V", "U", &n, A, &ione, &ione, desc, w, Z, &ione, &ione, desc, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
  PetscCheck(info == 0, p->comm, PETSC_ERR_LIB, "ScaLAPACK pdsyevd workspace query failed (info %d)", info);
  lwork  = (int)wq + 1;
  liwork = PetscMax(iwq, 1);
  PetscCall(PetscMalloc2(lwork, &work, liwork, &iwork));
  pdsyevd_("V", "U", &n, A, &ione, &ione, desc, w, Z, &ione, &ione, desc, work, &lwork, iwork, &liwork, &info, 1, 1);
  PetscCheck(info == 0, p->comm, PETSC_ERR_LIB, "ScaLAPACK pdsyevd failed (info %d) on the %d x %d projected Hessian", info, n, n);
  PetscCall(PetscFree2(work, iwork));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveDense_Private(HMModes m, HMProj *p)
{
  HMDenseLayout L;
  PetscInt      nvib = p->ndof - p->k, qn = 0, which = 0; /* -modes_dense_solver: 0 scalapack, 1 elpa */
  double       *A, *Z, *w;

  PetscFunctionBegin;
  PetscCall(HMDenseLayoutCreate_Private(p, &L));
  PetscCall(PetscCalloc2((size_t)L.lld * L.nlocc + 1, &A, (size_t)L.lld * L.nlocc + 1, &Z));
  PetscCall(PetscMalloc1(L.n + 1, &w));
  PetscCall(HMDenseFillHt_Private(p, &L, A));
  PetscCall(HMDenseLowRankUpdate_Private(p, &L, A));
  PetscCall(PetscOptionsGetEList(NULL, NULL, "-modes_dense_solver", HMDenseSolvers, 2, &which, NULL));
  PetscCall(HMDenseEigen_Private(p, &L, which, A, w, Z));
  /* rigid directions sit at alpha > ub >= every projected eigenvalue: they are the top k */
  if (p->k && nvib > 0) {
    PetscCheck(w[nvib] > p->ub && w[nvib - 1] <= p->ub + 1e-8 * PetscMax(1.0, PetscAbsReal(p->ub)), p->comm, PETSC_ERR_PLIB, "dense spectrum: rigid-body eigenvalues (alpha %g) not separated from the vibrational ones (%g, %g; bound %g)", p->alpha, w[nvib - 1], w[nvib], p->ub);
  }
  PetscCall(HMModesAllocate_Private(m, p, nvib));
  for (PetscInt i = 0; i < nvib; i++) m->lambda[i] = w[i];
  while (qn < L.nlocc && L.Jc[qn] < nvib) qn++;
  PetscCall(MatSetOption(m->X, MAT_ROW_ORIENTED, PETSC_FALSE));
  if (L.mloc && qn) PetscCall(MatSetValues(m->X, L.mloc, L.Ir, qn, L.Jc, Z, INSERT_VALUES));
  PetscCall(MatAssemblyBegin(m->X, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(m->X, MAT_FINAL_ASSEMBLY));
  PetscCall(MatSetOption(m->X, MAT_ROW_ORIENTED, PETSC_TRUE));
  PetscCall(PetscFree2(A, Z));
  PetscCall(PetscFree(w));
  PetscCall(PetscSNPrintf(m->method, sizeof(m->method), "full spectrum, %s (%d x %d grid, block %d)", which ? "ELPA two-stage" : "ScaLAPACK pdsyevd", L.nprow, L.npcol, L.nb));
  PetscCall(HMDenseLayoutDestroy_Private(&L));
  PetscFunctionReturn(PETSC_SUCCESS);
}

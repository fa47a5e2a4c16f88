/* HMModesCompute: the projected operator, the solver dispatch by type and basis, then residuals, the count of
   imaginary modes and harmonic thermochemistry. Apart from modes.c so that the solvers that create inner
   HMModes objects (rtb.c) do not form a circle with the dispatcher. */
#include "eigenimpl.h"
#include <math.h>

static PetscErrorCode HMModesResiduals_Private(HMModes m, HMProj *p)
{
  Mat A;
  Vec y;

  PetscFunctionBegin;
  PetscCall(HMProjCreateShell(p, 0.0, &A));
  PetscCall(MatCreateVecs(p->Ht, &y, NULL));
  for (PetscInt j = 0; j < m->n; j++) {
    Vec       x;
    PetscReal r;
    PetscCall(MatDenseGetColumnVecRead(m->X, j, &x));
    PetscCall(MatMult(A, x, y));
    PetscCall(VecAXPY(y, -m->lambda[j], x));
    PetscCall(MatDenseRestoreColumnVecRead(m->X, j, &x));
    PetscCall(VecNorm(y, NORM_2, &r));
    m->resid[j] = r;
  }
  PetscCall(VecDestroy(&y));
  PetscCall(MatDestroy(&A));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Quantum harmonic oscillators; imaginary (and exactly zero) modes are left out and counted. */
static PetscErrorCode HMModesThermo_Private(HMModes m)
{
  HMThermo *t  = &m->thermo;
  double    hc = HM_CODATA_H * HM_CODATA_C * 100.0 / HM_CODATA_E_CHARGE; /* eV cm */
  double    kB = HM_CODATA_KB / HM_CODATA_E_CHARGE;                      /* eV/K */
  double    T = m->temperature, kT = kB * T;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(t, sizeof(*t)));
  t->temperature = T;
  t->available   = m->complete;
  if (!m->complete) PetscFunctionReturn(PETSC_SUCCESS);
  for (PetscInt i = 0; i < m->n; i++) {
    double e = hc * m->cm1[i]; /* quantum h nu in eV */
    if (!(m->cm1[i] > 0)) {
      t->nimaginary += m->cm1[i] < 0;
      continue;
    }
    t->nused++;
    t->zpe += 0.5 * e;
    t->energy += 0.5 * e;
    t->free_energy += 0.5 * e;
    if (T > 0) {
      double x = e / kT, emx = exp(-x), l1 = log1p(-emx), bose = emx / (-expm1(-x));
      t->energy += e * bose;
      t->free_energy += kT * l1;
      t->entropy += kB * (x * bose - l1);
      t->heat_capacity += kB * x * x * bose * (1.0 + bose);
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Imaginary modes of the whole projected spectrum. A solver with a factorisation may have counted them by inertia
   (m->nimag >= 0). Otherwise the reported list knows them all when it is the whole spectrum, when it holds the lowest
   modes and reaches lambda >= 0, or when a window covers everything from the Gershgorin bound up to 0; else the
   list count is only a lower bound. */
static PetscErrorCode HMModesCountImaginary_Private(HMModes m, HMProj *p)
{
  PetscInt nlist = 0;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < m->n; i++) nlist += m->lambda[i] < 0;
  if (m->nimag >= 0) {
    m->nimag_exact = PETSC_TRUE;
    m->nimag       = PetscMax(m->nimag, nlist);
  } else {
    m->nimag       = nlist;
    m->nimag_exact = m->complete;
    if (m->type == HM_MODES_LOWEST && m->n > 0 && m->lambda[m->n - 1] >= 0) m->nimag_exact = PETSC_TRUE;
    if (m->type == HM_MODES_WINDOW && m->win[0] <= p->lb && m->win[1] >= 0) m->nimag_exact = PETSC_TRUE;
    if (m->approx) m->nimag_exact = PETSC_FALSE; /* Ritz values bound the eigenvalues from above: a lower bound */
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesCompute(HMModes m, Mat H, HMSystem sys)
{
  HMProj      *p = NULL;
  HMModesAtoms at;
  double       t0, tl[2], tg[2];

  PetscFunctionBegin;
  PetscCall(HMModesReset_Private(m));
  t0 = MPI_Wtime();
  PetscCall(HMModesAtomsGet_Private(H, sys, &at));
  PetscCall(HMProjCreate(H, &at, &p));
  p->icntl14  = m->icntl14;
  m->natoms   = p->ndof / 3;
  m->ndof     = p->ndof;
  m->nrigid   = p->k;
  m->linear   = p->linear;
  m->periodic = p->periodic;
  switch (m->type) {
  case HM_MODES_FULL:
    PetscCall(HMModesSolveDense_Private(m, p));
    break;
  case HM_MODES_WINDOW:
    PetscCall(HMModesSolveWindow_Private(m, p));
    break;
  case HM_MODES_LOWEST:
    if (m->basis == HM_MODES_BASIS_RTB) PetscCall(HMModesSolveRTB_Private(m, p, &at));
    else PetscCall(HMModesSolveLowest_Private(m, p));
    break;
  }
  for (PetscInt i = 0; i < m->n; i++) m->cm1[i] = HMModesEigenvalueToWavenumber(m->lambda[i]);
  PetscCall(HMModesResiduals_Private(m, p));
  m->complete = (PetscBool)(m->n == p->ndof - p->k);
  PetscCall(HMModesCountImaginary_Private(m, p));
  PetscCall(HMModesThermo_Private(m));
  m->computed        = PETSC_TRUE;
  m->stats.matvecs   = p->nmatvec;
  m->stats.pcapplies = p->npcapply;
  PetscCall(HMProjDestroy(&p));
  PetscCall(HMModesAtomsRestore_Private(&at));
  tl[0] = MPI_Wtime() - t0;
  tl[1] = m->stats.setup_seconds;
  PetscCall(MPIU_Allreduce(tl, tg, 2, MPI_DOUBLE, MPI_MAX, m->comm));
  m->stats.seconds       = tg[0];
  m->stats.setup_seconds = tg[1];
  PetscFunctionReturn(PETSC_SUCCESS);
}

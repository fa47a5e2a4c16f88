/* Private layout of HMOptimizer: the method's ops table, the state of the trust-region loop, the results. */
#pragma once

#include <hipmace/optimize.h>
#include <hipmace/sys.h>
#include <petscksp.h>
#include <slepceps.h>

#define HM_OPTIMIZER_CHECK_MAX     4    /* eigenpairs the curvature check looks at */
#define HM_OPTIMIZER_CHECK_STEP    5e-3 /* A: central differences of the gradient along a mode */
#define HM_OPTIMIZER_CHECK_ESCAPES 5    /* min: most escapes from saddles of the energy per solve */
#define HM_OPTIMIZER_TRUST_ERR     0.3  /* min's automatic corrections: on above this mean relative secant error */

typedef struct {
  /* the step s from the projected gradient Pg at the current point, and the model's predicted change g.s + s.B.s/2 */
  PetscErrorCode (*step)(HMOptimizer, Vec Pg, Vec s, double *pred);
  PetscErrorCode (*destroy)(HMOptimizer);
  PetscBool monotone; /* reject steps that raise the energy */
} HMOptimizerOps;

struct _p_HMOptimizer {
  MPI_Comm       comm;
  char          *prefix;
  char          *type_name;
  HMOptimizerOps ops;
  void          *data;

  HMOptimizerObjectiveFn obj;
  void                  *objctx;
  HMOptimizerMonitorFn   mon;
  void                  *monctx;

  double             fmax_tol;
  PetscInt           max_steps, hess_every;
  HMOptimizerHessian hessian;
  HMOptimizerRigid   rigid;
  double             radius0, radius_max; /* 0 = default */
  PetscBool3         keep_history_opt;    /* the user's choice; unknown: the method's default (min true, ts false) */
  PetscBool3         scale_hessian_opt;   /* likewise */
  PetscBool          keep_history;        /* in force during a solve: quasi-Newton corrections survive a new Hessian */
  PetscBool          scale_hessian;       /* in force: scale each new Hessian by a factor learnt from s.y / s.H s (SecantScale) */
  PetscBool          auto_corr;           /* min with neither option set: both corrections while the Hessian mispredicts */
  double             min_curv;            /* min: lowest curvature of the step's model, eV/A^2 */
  double             check_tol;           /* curvature check at the end (<= 0: none), eV/A^2 */

  /* variable cell (HMOptimizerSetCell): the last ncell entries (last rank) are not atoms */
  PetscInt          ncell;
  double            pressure; /* target pressure of the stress measure, eV/A^3 (reports) */
  HMOptimizerCellFn cellfn;
  void             *cellctx;
  double            smax_gpa; /* the user's tolerance, GPa (<= 0: default) */
  double            smax_tol; /* in force during the solve, eV/A^3 */

  /* state during HMOptimizerSolve */
  double    radius;
  Mat       H;      /* the objective's Hessian at the last point it was asked for (or NULL) */
  Mat       B;      /* MatLMVM: quasi-Newton corrections on top of H (J0) or a scaled identity */
  PetscInt  nupd;   /* quasi-Newton updates B holds on top of H (since the last Hessian, or all with keep_history) */
  double    hscale; /* the factor learnt for a new Hessian (-optimize_scale_hessian; 1 otherwise) */
  double    hcur;   /* the factor the current H carries */
  double    herr;   /* auto_corr: running mean of the Hessian's relative secant error |y - H s| / |y| */
  PetscBool trust;  /* auto_corr: herr below HM_OPTIMIZER_TRUST_ERR: H alone, unscaled */
  Mat       Pop;    /* shell P B P (and, with proj_mode, minus the followed mode) */
  Vec       rb[6];
  PetscInt  nrb;
  Vec       mode; /* ts: mode followed (unit, projected) */
  PetscBool proj_mode;
  double    shift; /* added to B in the shell product (min: negative curvature shifted away) */
  KSP       ksp;
  Vec       w1, w2;

  /* results */
  PetscBool converged;
  PetscInt  steps, rejected, nhess;
  double    E0, E, fmax, mode_eig;
  double    smax, cell[9], stress[9]; /* with ncell: at the last accepted point */
  double   *hE, *hF, *hS;
  PetscInt  nh, hcap;
  /* the curvature check at the last converged point (CurvatureCheck): the objective's Hessian's eigenvalues below
     -check_tol and the energy's curvature along their vectors; escapes from saddles of the energy (min) */
  PetscInt  nchk, escapes, chk_evals;
  PetscBool chk_done, chk_more;
  double    chk_lam[HM_OPTIMIZER_CHECK_MAX], chk_c[HM_OPTIMIZER_CHECK_MAX];
};

/* Entries of this rank's part of a vector that are atom coordinates (all but the cell's on the last rank). */
PETSC_INTERN PetscErrorCode HMOptimizerLocalAtomEntries_Private(HMOptimizer, Vec, PetscInt *n);

/* the curvature check's lines for HMOptimizerView */
PETSC_INTERN PetscErrorCode HMOptimizerCheckView_Private(HMOptimizer, PetscViewer);
/* min and ts (steps.c), chosen by o->type_name */
PETSC_INTERN PetscErrorCode HMOptimizerCreate_Builtin(HMOptimizer);
/* Rigid-body basis at x (orthonormal, 0, 3, 5 or 6 vectors in o->rb) and its projector. */
PETSC_INTERN PetscErrorCode HMOptimizerRigidBasis_Private(HMOptimizer, Vec x);
PETSC_INTERN PetscErrorCode HMOptimizerProject_Private(HMOptimizer, Vec v);
/* Krylov-Schur for the nev smallest eigenpairs of A (rigid directions deflated), solved (steps.c) */
PETSC_INTERN PetscErrorCode HMOptimizerLowestPairs_Private(HMOptimizer, Mat A, PetscInt nev, PetscBool abs, double tol, Vec init, PetscBool options, EPS *);
/* Trust-region Newton step with the shell operator as it is set (KSPSTCG), radius R. */
PETSC_INTERN PetscErrorCode HMOptimizerTRStep_Private(HMOptimizer, Vec rhs, double R, Vec s);

/* Private state of the normal-mode analysis and of the projected (Eckart) operator shared by its solvers. */
#pragma once

#include <hipmace/eigen.h>
#include <petscksp.h>
#include <slepceps.h>

#define HM_MAX_RIGID 6

struct _p_HMModes {
  MPI_Comm      comm;
  HMModesType   type;
  HMModesSolver solver;
  PetscInt      nreq;   /* lowest: modes asked for */
  double        win[2]; /* window in eigenvalues, eV/(A^2 amu) */
  PetscBool     win_set;
  double        temperature; /* K */
  double        tol;         /* eigensolver relative tolerance */
  PetscInt      crossover;   /* auto: direct below this many degrees of freedom, iterative from it */
  PetscInt      auto_sep;    /* auto: also direct from the crossover on when the graph separator has at most this many rows */
  double        amg_shift;   /* iterative: shift of the GAMG matrix Ht + mu I */
  PetscBool     amg_shift_set;
  PetscInt      icntl14;    /* starting MUMPS ICNTL(14) for the bordered pencil (-1: MUMPS default) */
  PetscInt      stage_its;  /* direct: restarts per shift before the converged modes are locked and the shift moves up (0: one shift) */
  HMModesBasis  basis;      /* lowest: full space or rigid-block reduction */
  PetscInt      block_size; /* rtb: atoms per spatial block without residues */
  PetscBool     rtb_refine; /* rtb: refine in the full space from the prolonged vectors */
  Vec          *init;       /* initial space handed to the iterative solver (rtb refinement), or NULL */
  PetscInt      ninit;
  char          molden[PETSC_MAX_PATH_LEN], nmd[PETSC_MAX_PATH_LEN], xyz[PETSC_MAX_PATH_LEN], table[PETSC_MAX_PATH_LEN];

  /* results */
  PetscBool    computed;
  char         method[320];
  PetscBool    approx; /* the modes are Ritz pairs of a reduced basis (RTB without refinement) */
  PetscInt     natoms, ndof, nrigid;
  PetscBool    linear, periodic;
  PetscInt     n;           /* reported modes */
  PetscInt     nimag;       /* imaginary modes (lambda < 0) of the whole projected spectrum, or a lower bound */
  PetscBool    nimag_exact; /* nimag counts all of them (inertia, or every negative mode is among the reported) */
  double      *lambda, *cm1, *resid;
  Mat          X;        /* MATDENSE ndof x n, H's row layout, mass-weighted unit vectors orthogonal to V */
  PetscBool    complete; /* the whole vibrational spectrum is known */
  HMThermo     thermo;
  HMModesStats stats; /* cost of the last HMModesCompute */
};

/* Mass-weighted Hessian and rigid-body basis, restricted to this rank's rows. */
typedef struct {
  MPI_Comm  comm;
  Mat       Ht; /* mass-weighted, symmetrised MATAIJ */
  PetscInt  ndof, nloc, rstart;
  PetscInt  k; /* rigid-body directions */
  PetscBool linear, periodic;
  double   *V;                              /* nloc x k, column-major, orthonormal over all ranks */
  double   *W;                              /* Ht V, nloc x k */
  double    C[HM_MAX_RIGID * HM_MAX_RIGID]; /* V^T Ht V */
  double   *minv_sqrt;                      /* 1/sqrt(m) per local row */
  double    lb, ub;                         /* Gershgorin bounds of Ht (hence of the projected spectrum) */
  double    alpha;                          /* where the shell operator places the rigid-body directions (above ub) */
  Vec       wx, wy;                         /* work vectors with Ht's layout */
  PetscInt  icntl14;                        /* MUMPS ICNTL(14) that factored the bordered pencil (-1: MUMPS default) */
  PetscInt  nretry;                         /* workspace enlargements so far */
  double    com[3], axis[3];                /* centre of mass; principal axis of the smallest moment of inertia (the longest) */
  PetscInt  nsep;                           /* rows coupled across the plane through com normal to axis */
  PetscInt  nmatvec;                        /* applications of the projected shell operator (HMProjCreateShell) */
  PetscInt  npcapply;                       /* applications of a preconditioner (iterative route) */
  double    hshift;                         /* Ht currently holds Ht + hshift I (iterative route's preconditioner); the shell subtracts it */
} HMProj;

/* This rank's atoms of a system in the Hessian's row layout (atoms [a0, a0 + na) of N in input order): views into a
   whole system, into a distributed one already in that layout, or into a copy redistributed to it (own). */
typedef struct {
  PetscInt           N, a0, na;
  const double      *pos, *mass; /* [na][3], [na] */
  const int         *Z;
  const HMAtomLabel *lab; /* NULL when the input has none */
  PetscBool          hascell, pbc[3];
  double             cell[9];
  HMSystem           sys; /* the system viewed (the caller's or own) */
  HMSystem           own;
} HMModesAtoms;
/* Collective on comm; H's rows decide the layout. Errors when the system's atom count does not match H. */
PETSC_INTERN PetscErrorCode HMModesAtomsGet_Private(Mat H, HMSystem, HMModesAtoms *);
PETSC_INTERN PetscErrorCode HMModesAtomsRestore_Private(HMModesAtoms *);

PETSC_INTERN PetscErrorCode HMProjCreate(Mat H, const HMModesAtoms *, HMProj **);
PETSC_INTERN PetscErrorCode HMProjDestroy(HMProj **);
/* x = column j of p->V (the local rows); a[] = the local entries of x. */
PETSC_INTERN PetscErrorCode HMProjGetColumn_Private(HMProj *, PetscInt j, Vec x);
PETSC_INTERN PetscErrorCode HMVecCopyToArray_Private(Vec x, double a[]);
/* Orthonormalises the k local columns of p->V over all ranks (two passes of modified Gram-Schmidt); why ends the
   message if a column vanishes. */
PETSC_INTERN PetscErrorCode HMProjOrthonormalize_Private(HMProj *, const char why[]);
/* Gershgorin bounds: every eigenvalue of A (hence, by Cauchy interlacing, of its compression) lies in [p->lb, p->ub];
   p->alpha a shift above them. */
PETSC_INTERN PetscErrorCode HMProjSetBounds_Private(HMProj *, Mat A);
/* p->W = A V (local rows, allocated by the caller) and p->C = V^T A V (on every rank) for the rigid-body basis V:
   what the exact projection (I - V V^T) A (I - V V^T) needs besides A itself. */
PETSC_INTERN PetscErrorCode HMProjSetGram_Private(HMProj *, Mat A);
/* y = V^T x (k numbers, reduced over ranks) and x <- x - V c. */
PETSC_INTERN PetscErrorCode HMProjVtx(HMProj *, Vec x, double c[]);
PETSC_INTERN PetscErrorCode HMProjProject(HMProj *, Vec x);
/* The k rigid-body directions V as vectors with Ht's layout (free with VecDestroyVecs(p->k, dv)). */
PETSC_INTERN PetscErrorCode HMProjGetRigidVecs(HMProj *, Vec **dv);
/* Shell operator A = P Ht P + alpha V V^T (alpha given) with MatMult and MatGetDiagonal. */
PETSC_INTERN PetscErrorCode HMProjCreateShell(HMProj *, double alpha, Mat *A);
/* Bordered pencil K = [Ht s V; s V^T 0], B = diag(I, 0): its finite eigenvalues are exactly those of
   P Ht P on range(P), and inertia(K - sigma B) = inertia(P Ht P - sigma on range(P)) + (k, k, 0). */
PETSC_INTERN PetscErrorCode HMProjCreateBordered(HMProj *, Mat *K, Mat *B);
/* MUMPS controls for factors of the bordered pencil (exact parallel inertia, null pivots, remembered workspace),
   and the check after a factorisation: retry = enlarge the workspace and factor again (INFO(1) = -8/-9/-11/-17). */
PETSC_INTERN PetscErrorCode HMProjMumpsPrepare(HMProj *, Mat F);
PETSC_INTERN PetscErrorCode HMProjMumpsCheck(HMProj *, Mat F, PetscBool *retry);
/* A factor of K - sigma B (MUMPS Cholesky, PCCHOLESKY in pc) kept across shifts of one pencil: zero-initialise. */
typedef struct {
  Mat    T;
  PC     pc;
  double sigma; /* the shift factored last */
} HMShiftFactor;
/* Factors K - sigma B into f (one analysis for all shifts) and counts the projected eigenvalues below sigma (its
   negative pivots minus k). */
PETSC_INTERN PetscErrorCode HMProjFactorShift(HMProj *, Mat K, Mat B, double sigma, HMShiftFactor *f, PetscInt *count);
PETSC_INTERN PetscErrorCode HMShiftFactorDestroy(HMShiftFactor *);

/* Solvers: each fills m->n, m->lambda (ascending) and m->X; registered by name (HMModesSolverRegister). */
typedef PetscErrorCode (*HMModesSolveFn)(HMModes, HMProj *);
PETSC_INTERN PetscErrorCode HMModesSolveIterative_Private(HMModes, HMProj *);
/* -modes lowest with m->solver (auto resolved by p's size) through the registry; RTB reduction (rtb.c). */
PETSC_INTERN PetscErrorCode HMModesSolveLowest_Private(HMModes, HMProj *);
/* solve(m, p) unless no vibrational mode is wanted (then an empty result): every lowest-mode route goes through here */
PETSC_INTERN PetscErrorCode HMModesSolveWith_Private(HMModes, HMProj *, HMModesSolveFn);
PETSC_INTERN PetscErrorCode HMModesSolveRTB_Private(HMModes, HMProj *, const HMModesAtoms *);
/* Shared pieces of the iterative routes. */
PETSC_INTERN PetscErrorCode HMModesEstimateLowest_Private(HMProj *, double *lmin, double *err);
PETSC_INTERN PetscErrorCode HMModesCollect_Private(HMModes, HMProj *, EPS, PetscInt nkeep);
/* A preconditioned eigensolver (type) for the nev lowest modes of the shell P Ht P + alpha V V^T (*A), V deflated,
   absolute residual target tol * operator scale, preconditioned by *pc (the caller sets its type, then EPSSetFromOptions). */
PETSC_INTERN PetscErrorCode HMModesShellEPSCreate_Private(HMModes, HMProj *, EPSType, PetscInt nev, EPS *, Mat *A, PC *pc);
/* LOBPCG block size for nev modes: guard vectors above nev (at most 16 in all, the search space [X R P] must fit). */
PETSC_INTERN PetscInt HMModesLOBPCGBlockSize_Private(HMProj *, PetscInt nev);
/* Solves, records the iterations and keeps the nev lowest converged pairs. */
PETSC_INTERN PetscErrorCode HMModesShellEPSSolve_Private(HMModes, HMProj *, EPS, PetscInt nev);
PETSC_INTERN PetscErrorCode HMModesSolveDense_Private(HMModes, HMProj *);
PETSC_INTERN PetscErrorCode HMModesSolveKrylovSchur_Private(HMModes, HMProj *);
PETSC_INTERN PetscErrorCode HMModesSolveLOBPCG_Private(HMModes, HMProj *);
PETSC_INTERN PetscErrorCode HMModesSolveWindow_Private(HMModes, HMProj *);
PETSC_INTERN PetscErrorCode HMModesCheckComputed_Private(HMModes);
/* Frees the results of the last HMModesCompute (modes.c). */
PETSC_INTERN PetscErrorCode HMModesReset_Private(HMModes);
/* Allocates result arrays and the mode matrix for n modes. */
PETSC_INTERN PetscErrorCode HMModesAllocate_Private(HMModes, HMProj *, PetscInt n);

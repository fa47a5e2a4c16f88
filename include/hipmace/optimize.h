/* Geometry optimisation (minimum) and transition-state search (first-order saddle) on an abstract objective. */
#pragma once

#include <petscmat.h>
#include <petscviewer.h>
#include <hipmace/sys.h>

/*
  What is solved: positions x (a distributed Vec, 3 entries per owned atom, A) with energy E(x) (eV) and gradient
  g = dE/dx (eV/A, i.e. minus the forces) from a callback, which may also return an assembled Hessian (eV/A^2;
  for hipmace the predicted HIP Hessian). Converged when the largest atomic gradient norm max_i |g_i| (the largest
  atomic force) is <= fmax.

  Every iteration is one trust-region step (the trust radius bounds the 2-norm of the whole step, A):
  - min: Newton step in the trust region, min_s g.s + 1/2 s.B.s with |s| <= R, solved by Steihaug-Toint CG
    (KSPSTCG) on the distributed operator P B P, so it needs only products with B (10^5 atoms: no dense
    algebra). Negative curvature of B leads the step to the trust boundary, downhill. A step that raises
    the energy is rejected and the radius shrunk.
  - ts: partitioned rational-function step: along the followed mode v of P B P (the lowest eigenpair from
    SLEPc at the first step, then the computed eigenvector with the largest overlap with the previous
    mode) the P-RFO maximising step, in the complement of v the trust-region Newton step above.
  B is the objective's Hessian at the last point where it was asked for (every -optimize_hessian_every K
  accepted steps), updated in between by limited-memory BFGS (min) or SR1 (ts) corrections built on top of
  it (PETSc MatLMVM with the Hessian as J0: O(m N) memory and work per step, never a dense N^2 update).
  With -optimize_hessian none the same optimiser runs on L-BFGS / L-SR1 from a scaled identity.
  P projects out the rigid-body directions (translations, and rotations about the centroid for a molecule)
  from the gradient, the Hessian and the step.
*/
typedef struct _p_HMOptimizer *HMOptimizer;

typedef const char *HMOptimizerType;
#define HMOPTIMIZERMIN "min"
#define HMOPTIMIZERTS  "ts"

typedef enum {
  HM_OPTIMIZER_HESSIAN_PREDICTED = 0, /* ask the objective for its Hessian every K steps */
  HM_OPTIMIZER_HESSIAN_NONE      = 1  /* never ask: quasi-Newton from a scaled identity */
} HMOptimizerHessian;
PETSC_EXTERN const char *const HMOptimizerHessians[];

typedef enum {
  HM_OPTIMIZER_RIGID_NONE         = 0, /* nothing projected (model problems, fixed atoms) */
  HM_OPTIMIZER_RIGID_TRANSLATIONS = 1, /* 3 translations (periodic cells) */
  HM_OPTIMIZER_RIGID_ALL          = 2  /* translations and rotations (molecules; 5 for a linear one) */
} HMOptimizerRigid;
PETSC_EXTERN const char *const HMOptimizerRigids[];

/* The objective at x: E (eV) and g (eV/A, same layout as x; filled by the callback). When want_hessian is set the
   callback may return in *H a new reference to an assembled symmetric Hessian with x's row layout (the optimiser
   destroys it), or NULL; otherwise it must leave *H NULL. Collective on the optimiser's communicator. */
typedef PetscErrorCode (*HMOptimizerObjectiveFn)(HMOptimizer, Vec x, PetscBool want_hessian, double *E, Vec g, Mat *H, void *ctx);
/* Called after the start and after every accepted step (step 0 = the start): for trajectories. */
typedef PetscErrorCode (*HMOptimizerMonitorFn)(HMOptimizer, PetscInt step, Vec x, double E, Vec g, void *ctx);

PETSC_EXTERN PetscErrorCode HMOptimizerCreate(MPI_Comm, HMOptimizer *);
PETSC_EXTERN PetscErrorCode HMOptimizerDestroy(HMOptimizer *);
/* Adds a method: create fills the ops table (src/optimize/optimizeimpl.h). Built in: min, ts. */
PETSC_EXTERN PetscErrorCode HMOptimizerRegister(const char name[], PetscErrorCode (*create)(HMOptimizer));
PETSC_EXTERN PetscErrorCode HMOptimizerSetType(HMOptimizer, HMOptimizerType);
PETSC_EXTERN PetscErrorCode HMOptimizerGetType(HMOptimizer, HMOptimizerType *);
PETSC_EXTERN PetscErrorCode HMOptimizerSetObjective(HMOptimizer, HMOptimizerObjectiveFn, void *ctx);
PETSC_EXTERN PetscErrorCode HMOptimizerSetMonitor(HMOptimizer, HMOptimizerMonitorFn, void *ctx);
/* Convergence: largest atomic gradient norm (eV/A, default 1e-3) and the most iterations (default 200). */
PETSC_EXTERN PetscErrorCode HMOptimizerSetTolerances(HMOptimizer, double fmax, PetscInt max_steps);
PETSC_EXTERN PetscErrorCode HMOptimizerSetHessian(HMOptimizer, HMOptimizerHessian, PetscInt every);
PETSC_EXTERN PetscErrorCode HMOptimizerSetRigid(HMOptimizer, HMOptimizerRigid);
/* Initial and largest trust radius (A, 2-norm of the whole step); 0 keeps the default (0.3; max(1, 0.1 sqrt(N))). */
PETSC_EXTERN PetscErrorCode HMOptimizerSetTrustRadius(HMOptimizer, double initial, double max);
PETSC_EXTERN PetscErrorCode HMOptimizerSetOptionsPrefix(HMOptimizer, const char[]);
/* Options: -[prefix]optimize min|ts, -optimize_fmax, -optimize_max_steps, -optimize_hessian predicted|none,
   -optimize_hessian_every K, -optimize_rigid none|translations|all, -optimize_trust_radius R0,
   -optimize_trust_max RMAX, -optimize_keep_history, -optimize_scale_hessian (min with neither given: both switched on
   while the Hessians mispredict the steps' gradient changes, docs/OPTIMIZE.md; ts and a variable cell: off), -optimize_check_curvature TOL,
   -optimize_min_curvature; the step's Krylov solver reads -optimize_ksp_*, the TS eigensolver -optimize_eps_*,
   the quasi-Newton matrix -optimize_mat_lmvm_* (e.g. -optimize_mat_lmvm_hist_size, pairs kept, default 5). */
PETSC_EXTERN PetscErrorCode HMOptimizerSetFromOptions(HMOptimizer);

/* Coordinates beyond the atoms (the cell of a variable-cell run, HMCellFilter): the last ncell entries of the
   vector (a multiple of 3, on the last rank) are not atoms. They are left out of fmax and of the rigid-body
   directions; after the start and every accepted step fn gives the cell (rows, A), the stress (3x3, eV/A^3, ASE's
   sign), the convergence measure smax (eV/A^3, the largest |stress_ij + P delta_ij| at a target pressure P) and
   fmax, the largest atomic force (the atom entries of g may be in other coordinates than the forces').
   Converged when fmax <= its tolerance and smax <= -optimize_smax (GPa; default the stress of ASE's
   UnitCellFilter criterion, fmax N / V of the start cell). min only: HMOptimizerSolve refuses ts. */
typedef PetscErrorCode (*HMOptimizerCellFn)(HMOptimizer, Vec x, Vec g, double cell[9], double stress[9], double *smax, double *fmax, void *ctx);
PETSC_EXTERN PetscErrorCode HMOptimizerSetCell(HMOptimizer, PetscInt ncell, double pressure, HMOptimizerCellFn, void *ctx); /* pressure: P, eV/A^3 (reports) */
/* The stress tolerance in GPa (<= 0: the default above); also -optimize_smax. */
PETSC_EXTERN PetscErrorCode HMOptimizerSetStressTolerance(HMOptimizer, double smax_gpa);
/* Collective: runs from x (3 entries per owned atom) and leaves the last accepted point in x. Not converging
   is not an error: ask HMOptimizerGetInfo. */
PETSC_EXTERN PetscErrorCode HMOptimizerSolve(HMOptimizer, Vec x);

/* The result of the last HMOptimizerSolve (as MatGetInfo: one struct instead of a getter per figure). */
typedef struct {
  PetscBool     converged;           /* fmax <= the tolerance */
  PetscInt      steps;               /* iterations: objective evaluations after the start, rejected steps included */
  PetscInt      rejected;            /* rejected steps */
  PetscInt      hessian_evaluations; /* Hessians asked of the objective */
  double        energy_initial, energy_final;
  double        fmax;            /* largest atomic force at the last accepted point, eV/A */
  double        mode_eigenvalue; /* ts: eigenvalue (eV/A^2, of the projected B) of the mode followed at the last step; 0 for min */
  PetscInt      nhistory;        /* start and every accepted step: accepted steps + 1 */
  const double *energies;        /* [nhistory], owned by the object */
  const double *fmax_history;    /* [nhistory], owned by the object */
  PetscBool     has_cell;        /* HMOptimizerSetCell: the cell was optimised too */
  double        smax;            /* largest |stress_ij + P delta_ij| at the last accepted point, eV/A^3 */
  double        smax_tolerance;  /* eV/A^3 */
  double        pressure;        /* the target pressure P, eV/A^3 */
  double        cell[9];         /* at the last accepted point, rows, A */
  double        stress[9];       /* at the last accepted point, eV/A^3 */
  const double *smax_history;    /* [nhistory], eV/A^3, owned by the object */
  /* The curvature check at the converged point (-optimize_check_curvature TOL, eV/A^2, default 0.01; not with a
     variable cell): the objective's Hessian's eigenvalues below -TOL (the lowest 4 at most, rigid directions removed)
     and the curvature of the energy along each eigenvector, from central differences of the gradient. min steps
     along a direction where the energy curves down too (a saddle of the energy) and minimises again, at most 5
     times. The check's evaluations are not counted in steps (the escape steps are). */
  PetscBool     curvature_checked;
  PetscInt      ncurvature, escapes;
  const double *hessian_eigenvalues; /* [ncurvature], eV/A^2 */
  const double *energy_curvatures;   /* [ncurvature], eV/A^2 */
} HMOptimizerInfo;
PETSC_EXTERN PetscErrorCode HMOptimizerGetInfo(HMOptimizer, HMOptimizerInfo *);
/* Largest atomic norm of g (3 entries per atom, whole atoms per rank). Collective. */
PETSC_EXTERN PetscErrorCode HMOptimizerMaxAtomNorm(Vec g, double *fmax);
PETSC_EXTERN PetscErrorCode HMOptimizerView(HMOptimizer, PetscViewer);

/* ---- the objective of a HIP-MACE model on a structure ---- */
#include <hipmace/model.h>
#include <hipmace/io.h>

/* Positions in input atom order, 3 per atom, in PETSc's default contiguous layout (whole atoms per rank); every
   evaluation rebuilds the partition and the graphs from the structure at the new positions (HMEvalSetSystem on a
   structure gathered to rank 0: O(N) memory and work on rank 0 per evaluation), so the optimiser's layout does not
   follow the partition. The predicted Hessian is HMHessianAssemble's, put in input order (HMHessianInputOrder),
   moved to the optimiser's row layout and symmetrised ((H + H^T)/2; the HIP head's blocks are not exactly
   symmetric). Gradient: the analytic forces (HMEvalComputeForces), or with -optimize_fd_step h > 0 central
   differences of the energy (6N energy evaluations; for checks). */
typedef struct _p_HMEvalObjective *HMEvalObjective;

/* comm: the model's communicator; sys: the whole structure on rank 0 (NULL elsewhere) or a distributed one
   (HMReaderLoadDistributed) on every rank. Each rank keeps a copy of its block of atoms in x's layout only. Collective. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveCreate(MPI_Comm, HMModel, HMSystem sys, HMEvalObjective *);
PETSC_EXTERN PetscErrorCode HMEvalObjectiveDestroy(HMEvalObjective *);
/* Options -optimize_fd_step (default 0 = analytic forces), -optimize_fd_hessian h (> 0: the Hessian handed to the
   optimiser is central differences of the gradient, the energy's own, 6N gradients; default 0 = predicted); the evaluation's own (-partition, -hessian_kernel, ...) are read at every evaluation. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveSetFromOptions(HMEvalObjective);
/* A new Vec with the structure's positions (input order). */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveCreateVec(HMEvalObjective, Vec *x);
/* Rigid-body directions for the optimiser: all for a molecule, translations when any axis is periodic. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveGetRigid(HMEvalObjective, HMOptimizerRigid *);
/* The structure at x, distributed: every rank its block of atoms in x's layout (masses, labels, cell and
   periodicity of the original; whole on one rank). Collective. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveGetSystem(HMEvalObjective, Vec x, HMSystem *sys);
/* The HMOptimizerObjectiveFn; ctx is the HMEvalObjective. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveEvaluate(HMOptimizer, Vec x, PetscBool want_hessian, double *E, Vec g, Mat *H, void *ctx);
/* Model evaluations so far (energies, Hessians). */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveGetCounts(HMEvalObjective, PetscInt *energies, PetscInt *hessians);
/* An "optimize" object added to a jansson JSON object (void * as in HMModesToJSON): method, hessian,
   hessian_every, converged, steps, rejected_steps, fmax, fmax_tolerance, energy_initial, energy_final,
   hessian_evaluations, energies[], fmax_per_step[] (start and every accepted step), and for ts the followed
   mode's eigenvalue. Rank 0 fills it; the other ranks may pass NULL. */
PETSC_EXTERN PetscErrorCode HMOptimizerToJSON(HMOptimizer, void *json_object);
/* The optimiser's monitor that appends every accepted point to an extended XYZ trajectory (ASE reads it):
   species, positions, forces (= -gradient, eV/A) per atom; energy, step, fmax (and the cell) in the comment.
   ctx: from HMEvalObjectiveTrajectoryCreate (truncates the file); destroy after the solve. */
typedef struct _p_HMTrajectory *HMTrajectory;
PETSC_EXTERN PetscErrorCode     HMEvalObjectiveTrajectoryCreate(HMEvalObjective, const char path[], HMTrajectory *);
PETSC_EXTERN PetscErrorCode     HMEvalObjectiveTrajectoryMonitor(HMOptimizer, PetscInt step, Vec x, double E, Vec g, void *ctx);
PETSC_EXTERN PetscErrorCode     HMTrajectoryDestroy(HMTrajectory *);

/* ---- variable cell (-optimize_cell true): positions and cell together ---- */
/* An objective of positions r (3 per owned atom, whole atoms per rank) and a cell periodic along x, y, z (rows =
   lattice vectors, A): E (eV), g = dE/dr (eV/A), the stress (1/V) dE/d(strain) (3x3 row-major, eV/A^3, ASE's sign),
   and when want_hessian optionally in *H a new reference to d2E/dr2 at fixed cell (eV/A^2, r's layout; NULL if
   none). Collective; the cell is the same on every rank. */
typedef PetscErrorCode (*HMCellObjectiveFn)(Vec r, const double cell[9], PetscBool want_hessian, double *E, Vec g, double stress[9], Mat *H, void *ctx);
/* Called after the start and every accepted step with the physical state: positions, cell, energy (E, not E + PV)
   and g = dE/dr. */
typedef PetscErrorCode (*HMCellMonitorFn)(HMOptimizer, PetscInt step, Vec r, const double cell[9], double E, Vec g, void *ctx);

/*
  HMCellFilter: the optimiser's objective on positions and cell (ASE's UnitCellFilter idea, docs/OPTIMIZE.md).
  The cell is C = C0 U with C0 the start cell and U = I + e lower triangular (6 strain components e: xx yy zz yx
  zx zy; rows stay in the standard orientation, no rotation), positions r_i = q_i U (row vectors), so the
  fractional coordinates q_i C0^-1 of the optimiser's atom coordinates q are those of the structure at every cell.
  The optimiser's vector is (q, L e), the 6 cell entries on the last rank, L = N^(1/6) V0^(1/3) A (a strain e
  changes the neighbour distances as much as moving every atom by e (V0/N)^(1/3): in the trust region's 2-norm it
  counts sqrt(N) times that). Objective E + P V (P: -optimize_pressure), gradient (U g_i; V (U^-T (stress + P))_jk / L
  for the lower entries jk). The Hessian: the objective's d2E/dr2 transformed (U H_ij U^T) for the atoms; the 6
  cell columns (cell block and atom-cell coupling) by forward differences of the gradient along each strain
  component (step 1e-4), the cell block symmetrised: 6 extra gradient evaluations per Hessian, as a shell matrix
  (no rank gathers the atoms).
*/
typedef struct _p_HMCellFilter *HMCellFilter;
/* r: the start positions (the objective's layout), cell: the start cell (same on every rank). Collective. */
PETSC_EXTERN PetscErrorCode HMCellFilterCreate(Vec r, const double cell[9], HMCellObjectiveFn, void *ctx, HMCellFilter *);
PETSC_EXTERN PetscErrorCode HMCellFilterDestroy(HMCellFilter *);
/* Target pressure (GPa; default 0): the objective is the enthalpy E + P V. Also -optimize_pressure. */
PETSC_EXTERN PetscErrorCode HMCellFilterSetPressure(HMCellFilter, double gpa);
PETSC_EXTERN PetscErrorCode HMCellFilterSetFromOptions(HMCellFilter);
/* The optimiser's vector at the start: the positions and 6 zero strain entries on the last rank. */
PETSC_EXTERN PetscErrorCode HMCellFilterCreateVec(HMCellFilter, Vec *x);
/* Makes the filter the optimiser's objective (HMOptimizerSetObjective, HMOptimizerSetCell) and, when mon is not NULL,
   its monitor (called with the physical state). */
PETSC_EXTERN PetscErrorCode HMCellFilterSetUp(HMCellFilter, HMOptimizer, HMCellMonitorFn mon, void *monctx);
/* The positions (into r, the objective's layout) and the cell at the optimiser's x. Collective. */
PETSC_EXTERN PetscErrorCode HMCellFilterGetState(HMCellFilter, Vec x, Vec r, double cell[9]);
/* The HMOptimizerObjectiveFn and HMOptimizerCellFn of the filter (ctx = the HMCellFilter). */
PETSC_EXTERN PetscErrorCode HMCellFilterEvaluate(HMOptimizer, Vec x, PetscBool want_hessian, double *E, Vec g, Mat *H, void *ctx);
PETSC_EXTERN PetscErrorCode HMCellFilterCellInfo(HMOptimizer, Vec x, Vec g, double cell[9], double stress[9], double *smax, double *fmax, void *ctx);

/* The HIP-MACE objective with a changing cell: refuses a structure that is not periodic along x, y and z (and
   -optimize_fd_step, whose differences do not cover the cell). */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveCreateCellFilter(HMEvalObjective, Vec r, HMCellFilter *);
/* The HMCellObjectiveFn of a model (ctx = the HMEvalObjective): moves its cell (the evaluation is rebuilt for the
   new cell) and evaluates energy, gradient, stress (and the predicted Hessian). */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveEvaluateCell(Vec r, const double cell[9], PetscBool want_hessian, double *E, Vec g, double stress[9], Mat *H, void *ctx);
/* The cell of the structure from now on (HMEvalObjectiveGetSystem, the next evaluation). Collective. */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveSetCell(HMEvalObjective, const double cell[9]);
/* The HMCellMonitorFn that appends a frame with the cell in Lattice= (ctx from HMEvalObjectiveTrajectoryCreate). */
PETSC_EXTERN PetscErrorCode HMEvalObjectiveTrajectoryCellMonitor(HMOptimizer, PetscInt step, Vec r, const double cell[9], double E, Vec g, void *ctx);

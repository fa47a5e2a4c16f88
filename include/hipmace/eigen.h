/* Normal-mode analysis of a Hessian: mass weighting, Eckart projection, eigensolvers, thermochemistry, mode files. */
#pragma once

#include <petscmat.h>
#include <petscviewer.h>
#include <hipmace/io.h>

/*
  What is computed: the spectrum of P Ht P restricted to the complement of the rigid-body space, where
  Ht = M^-1/2 H M^-1/2 is the mass-weighted Hessian and P = I - V V^T projects out the (mass-weighted,
  orthonormal) rigid-body directions V: 3 translations, plus 3 rotations (2 for a linear molecule) when no
  axis is periodic. The rigid-body directions themselves are never reported.

  Units: eigenvalues lambda in eV/(A^2 amu); wavenumbers nu = HMModesWavenumberFactor() * sqrt(lambda) in cm^-1,
  a negative lambda being reported as a negative wavenumber (imaginary mode).

  How P is applied (never formed; a HIP Hessian breaks the acoustic sum rule, so V is not an eigenspace of Ht and
  deflating V alone would give a different spectrum):
  - lowest, Krylov-Schur: shift-and-invert on the bordered pencil K = [Ht V; V^T 0], B = diag(I, 0) (MUMPS LDL^T).
    Its finite eigenpairs are exactly those of P Ht P on range(P), and inertia(K - s B) = (k, k, 0) + inertia of
    the projected operator minus s, so MUMPS inertia counts projected modes below a shift. The target is placed
    just below zero, or, when that count shows imaginary modes, below the lowest mode (verified by inertia), so
    the modes nearest the target are the lowest ones. In stages (-modes_stage_restarts): converged modes are locked
    and the shift moves up under the next one, again verified by inertia; one MUMPS analysis serves every shift.
  - lowest, LOBPCG: matrix-free shell P Ht P + alpha V V^T (alpha above the spectrum) with V as deflation space.
  - lowest, iterative: the same LOBPCG preconditioned by P (GAMG on Ht + mu I) P, V as GAMG's near-null space;
    no factorisation, memory O(N/P). auto picks direct (Krylov-Schur) below -modes_auto_crossover dof and for chains
    (a plane cut of the graph of at most -modes_auto_separator rows).
  - window: Krylov-Schur spectrum slicing on the same bordered pencil, MUMPS inertia (ICNTL(13)=ICNTL(24)=1).
  - full: P Ht P + alpha V V^T = Ht + U S U^T (U = [V, Ht V], rank 2k) assembled block-cyclically, ScaLAPACK
    pdsyevd; the k rigid directions are the eigenvalues at alpha and are dropped.
  The lowest/LOBPCG routes fall back to the dense route when every mode is asked for.
*/

/* CODATA 2018 (SI-exact values where the SI fixes them). */
#define HM_CODATA_E_CHARGE 1.602176634e-19   /* C (J per eV) */
#define HM_CODATA_AMU      1.66053906660e-27 /* kg */
#define HM_CODATA_C        299792458.0       /* m/s */
#define HM_CODATA_H        6.62607015e-34    /* J s */
#define HM_CODATA_KB       1.380649e-23      /* J/K */
#define HM_BOHR_ANG        0.529177210903    /* Bohr radius in Angstrom */

/* Wavenumber of a unit eigenvalue: sqrt(eV/(A^2 amu)) / (2 pi c) in cm^-1 (= 521.47090 from the constants above). */
PETSC_EXTERN double HMModesWavenumberFactor(void);
/* cm^-1 of an eigenvalue in eV/(A^2 amu): sign(lambda) * factor * sqrt(|lambda|); and back. */
PETSC_EXTERN double HMModesEigenvalueToWavenumber(double lambda);
PETSC_EXTERN double HMModesWavenumberToEigenvalue(double cm1);

typedef struct _p_HMModes *HMModes;

typedef enum {
  HM_MODES_LOWEST = 0, /* the K algebraically lowest modes (-nmodes K) */
  HM_MODES_WINDOW = 1, /* every mode with lambda (or wavenumber) in a window */
  HM_MODES_FULL   = 2  /* the whole spectrum (dense, ScaLAPACK) */
} HMModesType;
PETSC_EXTERN const char *const HMModesTypes[];

typedef enum {
  HM_MODES_SOLVER_KRYLOVSCHUR = 0, /* shift-and-invert Krylov-Schur with MUMPS (lowest modes) */
  HM_MODES_SOLVER_LOBPCG      = 1, /* LOBPCG on the projected operator (matrix-free, no preconditioner) */
  HM_MODES_SOLVER_ITERATIVE   = 2, /* LOBPCG on the projected operator, GAMG preconditioner: no factorisation */
  HM_MODES_SOLVER_AUTO        = 3, /* direct below -modes_auto_crossover degrees of freedom or for chains, iterative otherwise */
  HM_MODES_SOLVER_DIRECT      = 4  /* the same as krylovschur */
} HMModesSolver;
PETSC_EXTERN const char *const HMModesSolvers[];

typedef enum {
  HM_MODES_BASIS_FULL = 0, /* the full mass-weighted space */
  HM_MODES_BASIS_RTB  = 1  /* rigid blocks (residues or spatial clusters), 6 rigid-body vectors each (docs/MODES.md) */
} HMModesBasis;
PETSC_EXTERN const char *const HMModesBases[];

/* Harmonic vibrational thermochemistry (quantum oscillators), real modes only. */
typedef struct {
  PetscBool available;     /* only when the whole vibrational spectrum is known */
  double    temperature;   /* K */
  double    zpe;           /* zero-point energy, eV */
  double    energy;        /* vibrational internal energy incl. ZPE, eV */
  double    free_energy;   /* vibrational Helmholtz free energy incl. ZPE, eV */
  double    entropy;       /* eV/K */
  double    heat_capacity; /* Cv, eV/K */
  PetscInt  nused;         /* real modes that entered the sums */
  PetscInt  nimaginary;    /* modes with lambda < 0, left out and flagged */
} HMThermo;

/* Cost of the last HMModesCompute (all ranks hold the same figures). */
typedef struct {
  double   seconds;       /* wall time of HMModesCompute, slowest rank */
  double   setup_seconds; /* preconditioner (GAMG) set-up or the factorisations before the eigensolver, slowest rank */
  PetscInt iterations;    /* outer iterations of the eigensolver (0 for the dense route) */
  PetscInt matvecs;       /* products with the projected operator (shell) by the eigensolver and the estimates */
  PetscInt pcapplies;     /* preconditioner applications (ICC solves or multigrid V-cycles) of the iterative route */
} HMModesStats;

/* Starts SLEPc on top of PETSc if the caller has not (no SlepcFinalize needed then). */
PETSC_EXTERN PetscErrorCode HMModesCreate(MPI_Comm, HMModes *);
PETSC_EXTERN PetscErrorCode HMModesDestroy(HMModes *);
PETSC_EXTERN PetscErrorCode HMModesSetType(HMModes, HMModesType);
PETSC_EXTERN PetscErrorCode HMModesSetSolver(HMModes, HMModesSolver);
PETSC_EXTERN PetscErrorCode HMModesSetNumModes(HMModes, PetscInt);
/* Window in wavenumbers (cm^-1; negative = imaginary) or in eigenvalues (eV/(A^2 amu)); the last call wins. */
PETSC_EXTERN PetscErrorCode HMModesSetWindowWavenumbers(HMModes, double lo, double hi);
PETSC_EXTERN PetscErrorCode HMModesSetWindowEigenvalues(HMModes, double lo, double hi);
PETSC_EXTERN PetscErrorCode HMModesSetTemperature(HMModes, double);
PETSC_EXTERN PetscErrorCode HMModesSetTolerance(HMModes, double);
/* Rigid-block reduction of -modes lowest: basis, atoms per spatial block (no PDB residues), refinement in the full
   space started from the RTB vectors (exact modes) or the RTB modes as they are (PETSC_FALSE, the default). */
PETSC_EXTERN PetscErrorCode HMModesSetBasis(HMModes, HMModesBasis);
PETSC_EXTERN PetscErrorCode HMModesSetBlockSize(HMModes, PetscInt);
PETSC_EXTERN PetscErrorCode HMModesSetRTBRefine(HMModes, PetscBool);
/* Options: -modes lowest|window|full, -nmodes K, -window_cm1 LO,HI, -window_eigenvalue LO,HI,
   -modes_solver auto|direct|iterative|krylovschur|lobpcg, -modes_auto_crossover NDOF, -modes_auto_separator NROWS, -modes_amg_shift MU,
   -modes_mumps_icntl_14 PERCENT, -modes_stage_restarts N, -modes_basis full|rtb, -modes_block_size N, -modes_rtb_refine, -modes_tol, -temperature T, -modes_molden FILE, -modes_nmd FILE,
   -modes_xyz FILE, -modes_table FILE. The eigensolver still reads the usual -eps_* / -st_* options. */
PETSC_EXTERN PetscErrorCode HMModesSetFromOptions(HMModes);

/* H: 3N x 3N, block size 3, MATBAIJ / MATSBAIJ (upper triangle) / MATAIJ, eV/A^2, rows distributed in whole
   atoms; the system gives positions, masses and periodicity. Collective on H's communicator. */
PETSC_EXTERN PetscErrorCode HMModesCompute(HMModes, Mat H, HMSystem);

/* Reported modes in ascending order of lambda (rigid-body directions excluded). Arrays owned by the object. */
PETSC_EXTERN PetscErrorCode HMModesGetEigenvalues(HMModes, PetscInt *n, const double **lambda, const double **cm1);
/* ||P Ht P x - lambda x||_2 of each unit-norm mass-weighted mode x, in eV/(A^2 amu). */
PETSC_EXTERN PetscErrorCode HMModesGetResiduals(HMModes, const double **res);
/* Rigid-body directions projected out: 6, 5 for a linear molecule, 3 when any axis is periodic. */
PETSC_EXTERN PetscErrorCode HMModesGetNumRigid(HMModes, PetscInt *nrigid);
/* The mass-weighted orthonormal modes as a MATDENSE 3N x n with H's row layout (borrowed reference). */
PETSC_EXTERN PetscErrorCode HMModesGetVectors(HMModes, Mat *X);
PETSC_EXTERN PetscErrorCode HMModesGetThermo(HMModes, HMThermo *);
/* Imaginary modes (lambda < 0) of the whole projected spectrum, not only of the reported modes: exact (MUMPS inertia
   of the bordered pencil, or every negative mode reported) or, when exact is PETSC_FALSE, a lower bound. */
PETSC_EXTERN PetscErrorCode HMModesGetNumImaginary(HMModes, PetscInt *n, PetscBool *exact);

PETSC_EXTERN PetscErrorCode HMModesGetStats(HMModes, HMModesStats *);
/* One line naming the solver and its settings (the "method" of the JSON summary); owned by the object. */
PETSC_EXTERN PetscErrorCode HMModesGetMethod(HMModes, const char **);

/* Human-readable table (rank 0 writes). */
PETSC_EXTERN PetscErrorCode HMModesView(HMModes, PetscViewer);
/* Writers; each writes a temporary file and renames it on success. Collective. */
PETSC_EXTERN PetscErrorCode HMModesWriteTable(HMModes, const char path[]);
PETSC_EXTERN PetscErrorCode HMModesWriteMolden(HMModes, HMSystem, const char path[]);
PETSC_EXTERN PetscErrorCode HMModesWriteNMD(HMModes, HMSystem, const char path[]);
PETSC_EXTERN PetscErrorCode HMModesWriteXYZ(HMModes, HMSystem, const char path[]);
/* Whatever -modes_molden / -modes_nmd / -modes_xyz / -modes_table asked for. */
PETSC_EXTERN PetscErrorCode HMModesWriteFiles(HMModes, HMSystem);
/* Adds frequencies_cm1, eigenvalues and a "modes" object (method, residuals, thermo...) to a jansson json_t*
   object. Every rank may call it; the content is the same on all ranks. */
PETSC_EXTERN PetscErrorCode HMModesToJSON(HMModes, void *json_object);

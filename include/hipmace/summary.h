/* HMSummary: what a hipmace run reports — the results lines on stdout and the -summary JSON file. */
#pragma once

#include <hipmace/hessian.h>
#include <hipmace/eigen.h>
#include <hipmace/optimize.h>

typedef struct _p_HMSummary *HMSummary;

PETSC_EXTERN PetscErrorCode HMSummaryCreate(MPI_Comm, HMSummary *);
PETSC_EXTERN PetscErrorCode HMSummaryDestroy(HMSummary *);
/* The input files and the Hessian's storage type (as given on the command line). */
PETSC_EXTERN PetscErrorCode HMSummarySetInputs(HMSummary, const char structure[], const char model[], const char hessian_type[]);
/* Estimated peak bytes: largest rank and all ranks (HMHessianCheckMemory). */
PETSC_EXTERN PetscErrorCode HMSummarySetMemoryEstimate(HMSummary, double max_bytes, double total_bytes);
/* Wall-clock stages: Begin starts the clock; each Lap records the time since the previous lap (or the
   start) under name; End records "total" since Begin. */
PETSC_EXTERN PetscErrorCode HMSummaryTimingBegin(HMSummary);
PETSC_EXTERN PetscErrorCode HMSummaryTimingLap(HMSummary, const char name[]);
PETSC_EXTERN PetscErrorCode HMSummaryTimingEnd(HMSummary);
/* Energy, sizes, cutoffs and this rank's share of the work, read from an evaluated model (after the
   Hessian is assembled). */
PETSC_EXTERN PetscErrorCode HMSummarySetResults(HMSummary, HMModel, HMEval, HMHessian);
/* Forces (after HMEvalComputeForces; collective): the summary gets `forces` (N x 3, eV/A, input atom order),
   `fmax`, and for a cell periodic along x, y, z `stress` (3x3, eV/A^3) and `stress_voigt_GPa` (xx yy zz yz xz
   xy, as ASE); the results lines get fmax (and the pressure). Each rank keeps the forces of its block of input
   order, and HMSummaryWrite writes them there: no rank holds all N. */
PETSC_EXTERN PetscErrorCode HMSummarySetForces(HMSummary, HMEval);
/* src/app/forcesout.c. Collective: on rank 0 N, atomic numbers, positions and forces in input atom order
   (caller: PetscFree3(Z, pos, f)), NULL elsewhere. */
PETSC_EXTERN PetscErrorCode HMForcesGather(HMEval, PetscInt *N, int **Z, double **pos, double **f);
/* Collective: extended XYZ (Properties=species:S:1:pos:R:3:forces:R:3, energy=, Lattice, stress and pbc
   when periodic), as ASE reads it, written atomically: each rank formats a block of input order (atoms sent
   there all-to-all) and writes it with MPI-IO at the prefix sum of the formatted lengths; no rank holds all. */
PETSC_EXTERN PetscErrorCode HMForcesWriteXYZ(HMEval, const char path[]);
/* Normal modes to report (referenced, not owned; keep them alive until the summary is written). */
PETSC_EXTERN PetscErrorCode HMSummarySetModes(HMSummary, HMModes);
/* The optimiser that ran before (-optimize): an "optimize" object in the JSON (HMOptimizerToJSON). Borrowed. */
PETSC_EXTERN PetscErrorCode HMSummarySetOptimizer(HMSummary, HMOptimizer);
/* The results lines (atoms, energy, Hessian, then the modes if set). */
PETSC_EXTERN PetscErrorCode HMSummaryView(HMSummary, PetscViewer);
/* The one timings line. */
PETSC_EXTERN PetscErrorCode HMSummaryViewTimings(HMSummary, PetscViewer);
/* Collective: gathers the per-rank figures (the "parallel" object) on rank 0, which writes the JSON
   file atomically. */
PETSC_EXTERN PetscErrorCode HMSummaryWrite(HMSummary, const char path[]);

/* HMModes object: options, the lowest-mode solver registry, accessors, table and JSON summary (HMModesCompute,
   its residuals, counts and thermochemistry: compute.c). */
#include "eigenimpl.h"
#include <jansson.h>
#include <math.h>
#include <slepcsys.h>
#include "sys/sysimpl.h"

const char *const HMModesTypes[]   = {"lowest", "window", "full", "HMModesType", "HM_MODES_", NULL};
const char *const HMModesBases[]   = {"full", "rtb", "HMModesBasis", "HM_MODES_BASIS_", NULL};
const char *const HMModesSolvers[] = {"krylovschur", "lobpcg", "iterative", "auto", "direct", "HMModesSolver", "HM_MODES_SOLVER_", NULL};

static HMRegistry HMModesSolverList; /* lowest-mode solvers by name; "auto" is resolved before the look-up */

static const HMRegistryEntry HMModesSolverBuiltins[] = {
    {"krylovschur", (PetscVoidFunction)HMModesSolveKrylovSchur_Private},
    {"direct",      (PetscVoidFunction)HMModesSolveKrylovSchur_Private},
    {"lobpcg",      (PetscVoidFunction)HMModesSolveLOBPCG_Private     },
    {"iterative",   (PetscVoidFunction)HMModesSolveIterative_Private  },
};
#define HMModesSolverRegisterAll_Private() HMRegistryBegin(&HMModesSolverList, PETSC_STATIC_ARRAY_LENGTH(HMModesSolverBuiltins), HMModesSolverBuiltins)

/* Default crossover of -modes_solver auto, in degrees of freedom (3N): see docs/MODES.md for the measurement. */
#define HM_MODES_AUTO_CROSSOVER 6000
/* ... and of its separator rule, in rows of the separator (HMProjSeparator_Private): docs/MODES.md */
#define HM_MODES_AUTO_SEPARATOR 1000
/* direct route: restarts per shift before the next stage (docs/MODES.md) */
#define HM_MODES_STAGE_RESTARTS 10

double HMModesWavenumberFactor(void)
{
  /* sqrt(eV / (A^2 amu)) is an angular frequency in s^-1; divide by 2 pi c (c in cm/s) for cm^-1 */
  return PetscSqrtReal(HM_CODATA_E_CHARGE / (1e-20 * HM_CODATA_AMU)) / (2.0 * PETSC_PI * HM_CODATA_C * 100.0);
}

double HMModesEigenvalueToWavenumber(double lambda)
{
  double f = HMModesWavenumberFactor() * PetscSqrtReal(PetscAbsReal(lambda));
  return lambda < 0 ? -f : f;
}

double HMModesWavenumberToEigenvalue(double cm1)
{
  double x = cm1 / HMModesWavenumberFactor();
  return cm1 < 0 ? -x * x : x * x;
}

PetscErrorCode HMModesCreate(MPI_Comm comm, HMModes *out)
{
  HMModes m;

  PetscFunctionBegin;
  PetscCall(PetscNew(&m));
  PetscCall(HMSlepcInitialize_Private());
  PetscCall(HMModesSolverRegisterAll_Private());
  m->comm        = comm;
  m->type        = HM_MODES_LOWEST;
  m->solver      = HM_MODES_SOLVER_AUTO;
  m->crossover   = HM_MODES_AUTO_CROSSOVER;
  m->auto_sep    = HM_MODES_AUTO_SEPARATOR;
  m->nreq        = 20;
  m->temperature = 298.15;
  m->tol         = 1e-10;
  m->icntl14     = -1;
  m->stage_its   = HM_MODES_STAGE_RESTARTS;
  m->block_size  = 20;
  m->rtb_refine  = PETSC_FALSE;
  *out           = m;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesReset_Private(HMModes m)
{
  PetscFunctionBegin;
  PetscCall(PetscFree3(m->lambda, m->cm1, m->resid));
  PetscCall(MatDestroy(&m->X));
  m->n           = 0;
  m->computed    = PETSC_FALSE;
  m->complete    = PETSC_FALSE;
  m->nimag       = -1;
  m->nimag_exact = PETSC_FALSE;
  m->approx      = PETSC_FALSE;
  PetscCall(PetscMemzero(&m->thermo, sizeof(m->thermo)));
  PetscCall(PetscMemzero(&m->stats, sizeof(m->stats)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesDestroy(HMModes *pm)
{
  PetscFunctionBegin;
  if (!*pm) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMModesReset_Private(*pm));
  PetscCall(PetscFree(*pm));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET(HMModes, Type, HMModesType, type)

HM_ACCESSOR_SET(HMModes, Solver, HMModesSolver, solver)

PetscErrorCode HMModesSetNumModes(HMModes m, PetscInt k)
{
  PetscFunctionBegin;
  PetscCheck(k > 0, m->comm, PETSC_ERR_ARG_OUTOFRANGE, "-nmodes must be positive, got %" PetscInt_FMT, k);
  m->nreq = k;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSetWindowEigenvalues(HMModes m, double lo, double hi)
{
  PetscFunctionBegin;
  PetscCheck(lo < hi, m->comm, PETSC_ERR_ARG_OUTOFRANGE, "window [%g, %g]: the lower end must be below the upper end", lo, hi);
  m->win[0]  = lo;
  m->win[1]  = hi;
  m->win_set = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSetWindowWavenumbers(HMModes m, double lo, double hi)
{
  PetscFunctionBegin;
  PetscCheck(lo < hi, m->comm, PETSC_ERR_ARG_OUTOFRANGE, "-window_cm1 %g,%g: the lower end must be below the upper end", lo, hi);
  PetscCall(HMModesSetWindowEigenvalues(m, HMModesWavenumberToEigenvalue(lo), HMModesWavenumberToEigenvalue(hi)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSetTemperature(HMModes m, double T)
{
  PetscFunctionBegin;
  PetscCheck(T >= 0 && PetscIsNormalReal(T + 1.0), m->comm, PETSC_ERR_ARG_OUTOFRANGE, "-temperature must be a non-negative number of kelvin, got %g", T);
  m->temperature = T;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSetTolerance(HMModes m, double tol)
{
  PetscFunctionBegin;
  PetscCheck(tol > 0 && tol < 1, m->comm, PETSC_ERR_ARG_OUTOFRANGE, "-modes_tol must be in (0, 1), got %g", tol);
  m->tol = tol;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSetFromOptions(HMModes m)
{
  PetscInt  t = (PetscInt)m->type, s = (PetscInt)m->solver, nw = 2, k = m->nreq, bas = (PetscInt)m->basis;
  PetscReal w[2], T = m->temperature, tol = m->tol;
  PetscBool flg;

  PetscFunctionBegin;
  PetscOptionsBegin(m->comm, NULL, "Normal-mode analysis", "HMModes");
  PetscCall(PetscOptionsEList("-modes", "Which modes: lowest K, all in a window, or the full spectrum", "HMModesSetType", HMModesTypes, 3, HMModesTypes[t], &t, NULL));
  PetscCall(PetscOptionsEList("-modes_solver", "Solver for -modes lowest: auto (direct below -modes_auto_crossover), direct = krylovschur (MUMPS shift-and-invert, exact imaginary count), iterative (LOBPCG + GAMG, no factorisation), lobpcg (no preconditioner)", "HMModesSetSolver", HMModesSolvers, 5, HMModesSolvers[s], &s, NULL));
  PetscCall(PetscOptionsBoundedInt("-modes_auto_crossover", "-modes_solver auto: direct below this many degrees of freedom (3N), iterative from it", "HMModesSetSolver", m->crossover, &m->crossover, NULL, 0));
  PetscCall(PetscOptionsBoundedInt("-modes_auto_separator", "-modes_solver auto: direct also from the crossover on when a plane normal to the longest axis cuts the Hessian's graph across at most this many rows (chains, fibres; 0 = never)", "HMModesSetSolver", m->auto_sep, &m->auto_sep, NULL, 0));
  PetscCall(PetscOptionsReal("-modes_amg_shift", "-modes_solver iterative: shift mu of the GAMG preconditioner matrix Ht + mu I (default: from a Lanczos estimate of the lowest mode)", "HMModesSetFromOptions", m->amg_shift, &m->amg_shift, &m->amg_shift_set));
  PetscCall(PetscOptionsEList("-modes_basis", "-modes lowest in the full space or reduced to rigid blocks (RTB: PDB residues, else spatial clusters)", "HMModesSetFromOptions", HMModesBases, 2, HMModesBases[bas], &bas, NULL));
  PetscCall(PetscOptionsBoundedInt("-modes_block_size", "-modes_basis rtb without PDB residues: about this many atoms per spatial block", "HMModesSetFromOptions", m->block_size, &m->block_size, NULL, 1));
  PetscCall(PetscOptionsBool("-modes_rtb_refine", "-modes_basis rtb: refine with the iterative solver started from the RTB vectors (exact modes; measured to save under 5% of the iterations, docs/MODES.md); default: report the RTB modes (approximate)", "HMModesSetFromOptions", m->rtb_refine, &m->rtb_refine, NULL));
  PetscCall(PetscOptionsInt("-nmodes", "Number of lowest modes", "HMModesSetNumModes", k, &k, &flg));
  if (flg) PetscCall(HMModesSetNumModes(m, k));
  PetscCall(PetscOptionsRealArray("-window_cm1", "Wavenumber window LO,HI in cm^-1 (negative = imaginary)", "HMModesSetWindowWavenumbers", w, &nw, &flg));
  if (flg) {
    PetscCheck(nw == 2, m->comm, PETSC_ERR_ARG_WRONG, "-window_cm1 needs two numbers LO,HI, got %" PetscInt_FMT, nw);
    PetscCall(HMModesSetWindowWavenumbers(m, w[0], w[1]));
  }
  nw = 2;
  PetscCall(PetscOptionsRealArray("-window_eigenvalue", "Eigenvalue window LO,HI in eV/(A^2 amu)", "HMModesSetWindowEigenvalues", w, &nw, &flg));
  if (flg) {
    PetscCheck(nw == 2, m->comm, PETSC_ERR_ARG_WRONG, "-window_eigenvalue needs two numbers LO,HI, got %" PetscInt_FMT, nw);
    PetscCall(HMModesSetWindowEigenvalues(m, w[0], w[1]));
  }
  PetscCall(PetscOptionsReal("-temperature", "Temperature for the thermochemistry (K)", "HMModesSetTemperature", T, &T, &flg));
  if (flg) PetscCall(HMModesSetTemperature(m, T));
  PetscCall(PetscOptionsReal("-modes_tol", "Relative tolerance of the iterative eigensolvers", "HMModesSetTolerance", tol, &tol, &flg));
  if (flg) PetscCall(HMModesSetTolerance(m, tol));
  PetscCall(PetscOptionsBoundedInt("-modes_stage_restarts", "-modes_solver direct: Krylov-Schur restarts per shift; then the converged modes are locked and the shift moves up below the next one (0 = one shift)", "HMModesSetFromOptions", m->stage_its, &m->stage_its, NULL, 0));
  PetscCall(PetscOptionsBoundedInt("-modes_mumps_icntl_14", "Starting MUMPS workspace increase (percent, ICNTL(14)) for the bordered pencil; enlarged automatically when MUMPS reports INFO(1)=-8/-9", "HMModesSetFromOptions", m->icntl14, &m->icntl14, NULL, -1));
  PetscCall(PetscOptionsString("-modes_molden", "Write the modes in Molden format", "HMModesWriteMolden", m->molden, m->molden, sizeof(m->molden), NULL));
  PetscCall(PetscOptionsString("-modes_nmd", "Write the modes in NMD format (VMD NMWiz)", "HMModesWriteNMD", m->nmd, m->nmd, sizeof(m->nmd), NULL));
  PetscCall(PetscOptionsString("-modes_xyz", "Write the modes as extended XYZ frames", "HMModesWriteXYZ", m->xyz, m->xyz, sizeof(m->xyz), NULL));
  PetscCall(PetscOptionsString("-modes_table", "Write the plain-text table of modes", "HMModesWriteTable", m->table, m->table, sizeof(m->table), NULL));
  PetscOptionsEnd();
  m->type   = (HMModesType)t;
  m->solver = (HMModesSolver)s;
  m->basis  = (HMModesBasis)bas;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesGetNumImaginary(HMModes m, PetscInt *n, PetscBool *exact)
{
  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  if (n) *n = m->nimag;
  if (exact) *exact = m->nimag_exact;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveLowest_Private(HMModes m, HMProj *p)
{
  HMModesSolver  s = m->solver;
  HMModesSolveFn solve;

  PetscFunctionBegin;
  if (s == HM_MODES_SOLVER_AUTO) {
    /* a sparse Cholesky factor costs what its separators cost: small below the crossover, and at any size for a
       chain or fibre, whose plane cut stays a few hundred rows (an alanine helix: 78 rows at 2k-20k atoms; water: 1,806
       rows at 2k atoms, 11,799 at 20k) */
    if (p->ndof < m->crossover) s = HM_MODES_SOLVER_DIRECT;
    else if (m->auto_sep > 0 && p->nsep <= m->auto_sep) s = HM_MODES_SOLVER_DIRECT;
    else s = HM_MODES_SOLVER_ITERATIVE;
  }
  PetscCall(HMRegistryFind(&HMModesSolverList, HMModesSolvers[s], &solve));
  PetscCheck(solve, m->comm, PETSC_ERR_ARG_UNKNOWN_TYPE, "-modes_solver %s: no such lowest-mode solver", HMModesSolvers[s]);
  PetscCall(HMModesSolveWith_Private(m, p, solve));
  if (m->solver == HM_MODES_SOLVER_AUTO && p->ndof >= m->crossover) {
    char note[160];
    PetscCall(PetscSNPrintf(note, sizeof(note), " [auto: %s, %" PetscInt_FMT " dof >= %" PetscInt_FMT ", separator %" PetscInt_FMT " rows %s %" PetscInt_FMT "]", HMModesSolvers[s], p->ndof, m->crossover, p->nsep, p->nsep <= m->auto_sep ? "<=" : ">", m->auto_sep));
    PetscCall(PetscStrlcat(m->method, note, sizeof(m->method)));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesSolveWith_Private(HMModes m, HMProj *p, HMModesSolveFn solve)
{
  PetscFunctionBegin;
  /* no vibrational mode to find (a single atom, or every direction rigid): an empty result, no solver */
  if (PetscMin(m->nreq, p->ndof - p->k) <= 0) PetscCall(HMModesAllocate_Private(m, p, 0));
  else PetscCall((*solve)(m, p));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesCheckComputed_Private(HMModes m)
{
  PetscFunctionBegin;
  PetscCheck(m->computed, m->comm, PETSC_ERR_ORDER, "call HMModesCompute() first");
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModesGetEigenvalues(HMModes m, PetscInt *n, const double **lambda, const double **cm1)
{
  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  if (n) *n = m->n;
  if (lambda) *lambda = m->lambda;
  if (cm1) *cm1 = m->cm1;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_IF(HMModes, Residuals, const double *, resid, PetscCall(HMModesCheckComputed_Private(obj)))

HM_ACCESSOR_GET_IF(HMModes, NumRigid, PetscInt, nrigid, PetscCall(HMModesCheckComputed_Private(obj)))

HM_ACCESSOR_GET_IF(HMModes, Vectors, Mat, X, PetscCall(HMModesCheckComputed_Private(obj)))

HM_ACCESSOR_GET_IF(HMModes, Stats, HMModesStats, stats, PetscCall(HMModesCheckComputed_Private(obj)))

HM_ACCESSOR_GET_IF(HMModes, Method, const char *, method, PetscCall(HMModesCheckComputed_Private(obj)))

HM_ACCESSOR_GET_IF(HMModes, Thermo, HMThermo, thermo, PetscCall(HMModesCheckComputed_Private(obj)))

PetscErrorCode HMModesView(HMModes m, PetscViewer viewer)
{
  PetscBool iascii;

  PetscFunctionBegin;
  if (!viewer) PetscCall(PetscViewerASCIIGetStdout(m->comm, &viewer));
  PetscCall(PetscObjectTypeCompare((PetscObject)viewer, PETSCVIEWERASCII, &iascii));
  if (!iascii) PetscFunctionReturn(PETSC_SUCCESS);
  if (!m->computed) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "Normal modes: not computed\n"));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "Normal modes: %s\n", m->method));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  %" PetscInt_FMT " atoms, %" PetscInt_FMT " rigid-body directions projected out (%s), %" PetscInt_FMT " modes reported\n", m->natoms, m->nrigid, m->periodic ? "periodic: translations" : (m->linear ? "linear molecule" : (m->nrigid < 6 ? "translations" : "translations and rotations")), m->n));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  %6s %22s %16s %12s\n", "mode", "eigenvalue/(eV/A^2/amu)", "wavenumber/cm-1", "residual"));
  if (m->nimag > 0) PetscCall(PetscViewerASCIIPrintf(viewer, "  %s%" PetscInt_FMT " imaginary mode(s) in the whole spectrum%s\n", m->nimag_exact ? "" : "at least ", m->nimag, m->nimag_exact ? "" : " (no factorisation to count them all)"));
  for (PetscInt i = 0; i < m->n; i++) PetscCall(PetscViewerASCIIPrintf(viewer, "  %6" PetscInt_FMT " %22.12e %15.4f%s %12.3e\n", i + 1, m->lambda[i], m->cm1[i], m->cm1[i] < 0 ? "i" : " ", m->resid[i]));
  if (m->thermo.available) {
    const HMThermo *t = &m->thermo;
    PetscCall(PetscViewerASCIIPrintf(viewer, "  Harmonic vibrational thermochemistry at %g K (%" PetscInt_FMT " real modes%s):\n", t->temperature, t->nused, t->nimaginary ? ", imaginary modes left out" : ""));
    if (t->nimaginary) PetscCall(PetscViewerASCIIPrintf(viewer, "    WARNING: %" PetscInt_FMT " imaginary mode(s): not a minimum\n", t->nimaginary));
    PetscCall(PetscViewerASCIIPrintf(viewer, "    zero-point energy   %.10f eV\n    internal energy     %.10f eV\n    free energy (F)     %.10f eV\n    entropy             %.10e eV/K\n    heat capacity (Cv)  %.10e eV/K\n", t->zpe, t->energy, t->free_energy, t->entropy, t->heat_capacity));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static json_t *HMJSONReal(double x)
{
  /* JSON has no NaN / infinity */
  return PetscIsInfOrNanReal(x) ? json_null() : json_real(x);
}

PetscErrorCode HMModesToJSON(HMModes m, void *jobj)
{
  json_t *root = (json_t *)jobj, *f, *e, *r, *o;
  int     bad  = 0;

  PetscFunctionBegin;
  PetscCall(HMModesCheckComputed_Private(m));
  PetscCheck(root && json_is_object(root), m->comm, PETSC_ERR_ARG_WRONG, "HMModesToJSON needs a JSON object");
  f = json_array();
  e = json_array();
  r = json_array();
  for (PetscInt i = 0; i < m->n; i++) {
    bad |= json_array_append_new(f, HMJSONReal(m->cm1[i]));
    bad |= json_array_append_new(e, HMJSONReal(m->lambda[i]));
    bad |= json_array_append_new(r, HMJSONReal(m->resid[i]));
  }
  bad |= json_object_set_new(root, "frequencies_cm1", f);
  bad |= json_object_set_new(root, "eigenvalues", e);
  o = json_object();
  bad |= json_object_set_new(o, "method", json_string(m->method));
  bad |= json_object_set_new(o, "type", json_string(HMModesTypes[m->type]));
  bad |= json_object_set_new(o, "eigenvalue_units", json_string("eV/(A^2 amu)"));
  bad |= json_object_set_new(o, "wavenumber_factor_cm1", json_real(HMModesWavenumberFactor()));
  bad |= json_object_set_new(o, "n_modes", json_integer((json_int_t)m->n));
  bad |= json_object_set_new(o, "n_rigid_projected", json_integer((json_int_t)m->nrigid));
  bad |= json_object_set_new(o, "linear", json_boolean(m->linear));
  bad |= json_object_set_new(o, "periodic", json_boolean(m->periodic));
  bad |= json_object_set_new(o, "complete", json_boolean(m->complete));
  /* over the whole projected spectrum, not just the reported modes; a lower bound when n_imaginary_exact is false */
  bad |= json_object_set_new(o, "n_imaginary", json_integer((json_int_t)m->nimag));
  bad |= json_object_set_new(o, "n_imaginary_exact", json_boolean(m->nimag_exact));
  bad |= json_object_set_new(o, "residual_norms", r);
  if (m->thermo.available) {
    const HMThermo *t  = &m->thermo;
    json_t         *th = json_object();
    bad |= json_object_set_new(th, "temperature_K", json_real(t->temperature));
    bad |= json_object_set_new(th, "zpe_eV", HMJSONReal(t->zpe));
    bad |= json_object_set_new(th, "internal_energy_eV", HMJSONReal(t->energy));
    bad |= json_object_set_new(th, "free_energy_eV", HMJSONReal(t->free_energy));
    bad |= json_object_set_new(th, "entropy_eV_per_K", HMJSONReal(t->entropy));
    bad |= json_object_set_new(th, "heat_capacity_eV_per_K", HMJSONReal(t->heat_capacity));
    bad |= json_object_set_new(th, "n_real_modes", json_integer((json_int_t)t->nused));
    bad |= json_object_set_new(th, "n_imaginary_excluded", json_integer((json_int_t)t->nimaginary));
    bad |= json_object_set_new(o, "thermo", th);
  }
  bad |= json_object_set_new(root, "modes", o);
  PetscCheck(!bad, PETSC_COMM_SELF, PETSC_ERR_MEM, "could not build the normal-mode JSON summary");
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Variable-cell minimisation (HMCellFilter, -optimize_cell): a shifted-force Morse fcc crystal whose equilibrium
   lattice constant comes from a golden-section search of its energy per atom; the filter's gradient and Hessian
   against differences; fixed against variable cell; 1 rank against all; the refusals (ts, not 3D-periodic). */
#include "hmtest.h"
#include <hipmace/optimize.h>
#include "sys/sysimpl.h"

#define EV_A3_GPA 160.21766208

/* Morse (D, alpha, r0) shifted-force at rc: value and first derivative go to zero at the cutoff. rc lies between
   the second (a = 3.544 A) and third (4.341 A) neighbour shells, > 0.35 A from both at the strains used here. */
static const double MD = 0.5, MA = 2.0, MR0 = 2.5, MRC = 3.95;

static double morse0(double r, double *d1, double *d2)
{
  double e = exp(-MA * (r - MR0));
  *d1      = MD * (-2 * MA * e * e + 2 * MA * e);
  *d2      = MD * (4 * MA * MA * e * e - 2 * MA * MA * e);
  return MD * (e * e - 2 * e);
}

static double pair(double r, double *d1, double *d2)
{
  double c1, c2, c0 = morse0(MRC, &c1, &c2), v = morse0(r, d1, d2);
  *d1 -= c1;
  return v - c0 - (r - MRC) * c1;
}

/* every position on every rank (a test objective may gather) */
static const double *gather(Vec r, VecScatter *sc, Vec *all)
{
  const PetscScalar *a;
  HM_T(VecScatterCreateToAll(r, sc, all));
  HM_T(VecScatterBegin(*sc, r, *all, INSERT_VALUES, SCATTER_FORWARD));
  HM_T(VecScatterEnd(*sc, r, *all, INSERT_VALUES, SCATTER_FORWARD));
  HM_T(VecGetArrayRead(*all, &a));
  return a;
}

/* The periodic crystal: owned atom i against every atom j and image n with |r_j + n C - r_i| < rc. */
static PetscErrorCode crystal(Vec r, const double cell[9], PetscBool want, double *E, Vec g, double stress[9], Mat *H, void *ctx)
{
  PetscInt           lo, hi, N;
  const PetscScalar *x;
  PetscScalar       *ga;
  VecScatter         sc;
  Vec                all;
  double             El = 0, sl[9] = {0}, ci[9], V = fabs(HMMat3Det(cell));
  int                nm[3];
  MPI_Comm           comm;

  PetscFunctionBegin;
  (void)ctx;
  PetscCall(PetscObjectGetComm((PetscObject)r, &comm));
  PetscCall(VecGetOwnershipRange(r, &lo, &hi));
  PetscCall(VecGetSize(r, &N));
  x = gather(r, &sc, &all);
  HMMat3Inverse(cell, ci);
  for (int k = 0; k < 3; k++) nm[k] = (int)ceil(MRC * sqrt(ci[k] * ci[k] + ci[3 + k] * ci[3 + k] + ci[6 + k] * ci[6 + k])) + 1;
  *H = NULL;
  if (want) {
    PetscCall(MatCreateAIJ(comm, hi - lo, hi - lo, N, N, N, NULL, N, NULL, H));
    PetscCall(MatSetOption(*H, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
  }
  PetscCall(VecGetArray(g, &ga));
  for (PetscInt i = lo; i < hi; i++) ga[i - lo] = 0;
  for (PetscInt i = lo / 3; i < hi / 3; i++) {
    double Hii[9] = {0};
    for (PetscInt j = 0; j < N / 3; j++) {
      double Hij[9] = {0};
      for (int n0 = -nm[0]; n0 <= nm[0]; n0++)
        for (int n1 = -nm[1]; n1 <= nm[1]; n1++)
          for (int n2 = -nm[2]; n2 <= nm[2]; n2++) {
            double d[3], rr, d1, d2;
            for (int a = 0; a < 3; a++) d[a] = x[3 * j + a] - x[3 * i + a] + n0 * cell[a] + n1 * cell[3 + a] + n2 * cell[6 + a];
            rr = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            if (rr >= MRC || rr < 1e-9) continue;
            El += 0.5 * pair(rr, &d1, &d2);
            for (int a = 0; a < 3; a++) {
              ga[3 * (i - lo / 3) + a] -= d1 * d[a] / rr;
              for (int b = 0; b < 3; b++) sl[3 * a + b] += 0.5 * d1 * d[a] * d[b] / rr;
            }
            if (j == i) continue; /* an atom and its own image move together */
            for (int a = 0; a < 3; a++)
              for (int b = 0; b < 3; b++) {
                double u = d[a] / rr, w = d[b] / rr, k = d2 * u * w + d1 / rr * ((a == b) - u * w);
                Hij[3 * a + b] -= k;
                Hii[3 * a + b] += k;
              }
          }
      if (want && j != i) {
        PetscInt rows[3] = {3 * i, 3 * i + 1, 3 * i + 2}, cols[3] = {3 * j, 3 * j + 1, 3 * j + 2};
        PetscCall(MatSetValues(*H, 3, rows, 3, cols, Hij, INSERT_VALUES));
      }
    }
    if (want) {
      PetscInt rows[3] = {3 * i, 3 * i + 1, 3 * i + 2};
      PetscCall(MatSetValues(*H, 3, rows, 3, rows, Hii, INSERT_VALUES));
    }
  }
  PetscCall(VecRestoreArray(g, &ga));
  PetscCall(VecRestoreArrayRead(all, &x));
  PetscCall(VecScatterDestroy(&sc));
  PetscCall(VecDestroy(&all));
  PetscCall(MPIU_Allreduce(&El, E, 1, MPI_DOUBLE, MPI_SUM, comm));
  PetscCall(MPIU_Allreduce(sl, stress, 9, MPI_DOUBLE, MPI_SUM, comm));
  for (int k = 0; k < 9; k++) stress[k] /= V;
  if (want) {
    PetscCall(MatAssemblyBegin(*H, MAT_FINAL_ASSEMBLY));
    PetscCall(MatAssemblyEnd(*H, MAT_FINAL_ASSEMBLY));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the same crystal at a fixed cell, as a plain optimiser objective */
static PetscErrorCode crystal_fixed(HMOptimizer o, Vec x, PetscBool want, double *E, Vec g, Mat *H, void *ctx)
{
  double st[9];
  PetscFunctionBegin;
  (void)o;
  PetscCall(crystal(x, (const double *)ctx, want, E, g, st, H, NULL));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* fcc, 2 x 2 x 2 conventional cells: 32 atoms, fractional coordinates of the cell */
#define NREP 2
#define NAT  (4 * NREP * NREP * NREP)
static void fcc_fractional(double f[3 * NAT])
{
  const double b[4][3] = {
      {0,   0,   0  },
      {0.5, 0.5, 0  },
      {0.5, 0,   0.5},
      {0,   0.5, 0.5}
  };
  int k = 0;
  for (int i = 0; i < NREP; i++)
    for (int j = 0; j < NREP; j++)
      for (int l = 0; l < NREP; l++)
        for (int m = 0; m < 4; m++, k++) {
          f[3 * k]     = (i + b[m][0]) / NREP;
          f[3 * k + 1] = (j + b[m][1]) / NREP;
          f[3 * k + 2] = (l + b[m][2]) / NREP;
        }
}

/* energy per atom of the perfect crystal with lattice constant a, plus P V per atom (rank-local, PETSC_COMM_SELF) */
static double enthalpy_per_atom(double a, double P)
{
  double f[3 * NAT], cell[9] = {0}, E, st[9];
  Vec    r;
  Mat    H;
  fcc_fractional(f);
  cell[0] = cell[4] = cell[8] = NREP * a;
  HM_T(VecCreateSeq(PETSC_COMM_SELF, 3 * NAT, &r));
  for (PetscInt i = 0; i < 3 * NAT; i++) HM_T(VecSetValue(r, i, f[i] * NREP * a, INSERT_VALUES));
  HM_T(VecAssemblyBegin(r));
  HM_T(VecAssemblyEnd(r));
  {
    Vec g;
    HM_T(VecDuplicate(r, &g));
    HM_T(crystal(r, cell, PETSC_FALSE, &E, g, st, &H, NULL));
    HM_T(VecDestroy(&g));
  }
  HM_T(VecDestroy(&r));
  return E / NAT + P * a * a * a / 4;
}

/* the equilibrium lattice constant at pressure P (eV/A^3) by golden-section search of the enthalpy per atom */
static double golden(double P)
{
  const double gr = (sqrt(5.0) - 1) / 2;
  double       lo = 3.2, hi = 3.9, c = hi - gr * (hi - lo), d = lo + gr * (hi - lo), fc = enthalpy_per_atom(c, P), fd = enthalpy_per_atom(d, P);
  while (hi - lo > 1e-9) {
    if (fc < fd) {
      hi = d;
      d  = c;
      fd = fc;
      c  = hi - gr * (hi - lo);
      fc = enthalpy_per_atom(c, P);
    } else {
      lo = c;
      c  = d;
      fc = fd;
      d  = lo + gr * (hi - lo);
      fd = enthalpy_per_atom(d, P);
    }
  }
  return 0.5 * (lo + hi);
}

static unsigned long long lcg_state;
static double             gauss(void)
{
  double u[2];
  for (int k = 0; k < 2; k++) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    u[k]      = ((lcg_state >> 11) + 0.5) / 9007199254740992.0;
  }
  return sqrt(-2 * log(u[0])) * cos(2 * PETSC_PI * u[1]);
}

/* The start: the crystal at a = 3.55 A in a cell strained by a few % (lower triangular: standard orientation),
   atoms 0.05 A off their sites. */
static void strained_start(double cell[9], double pos[3 * NAT])
{
  const double S[9] = {1.03, 0, 0, 0.012, 0.975, 0, -0.015, 0.02, 1.01};
  double       f[3 * NAT];
  fcc_fractional(f);
  for (int k = 0; k < 9; k++) cell[k] = NREP * 3.55 * S[k];
  lcg_state = 15;
  for (int i = 0; i < NAT; i++)
    for (int a = 0; a < 3; a++) pos[3 * i + a] = f[3 * i] * cell[a] + f[3 * i + 1] * cell[3 + a] + f[3 * i + 2] * cell[6 + a] + 0.05 * gauss();
}

static Vec positions(MPI_Comm comm, const double *pos)
{
  PetscMPIInt size, rank;
  PetscInt    lo, hi;
  Vec         r;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &rank);
  HM_T(VecCreateMPI(comm, 3 * (NAT / size + (rank < NAT % size)), 3 * NAT, &r));
  HM_T(VecGetOwnershipRange(r, &lo, &hi));
  for (PetscInt i = lo; i < hi; i++) HM_T(VecSetValue(r, i, pos[i], INSERT_VALUES));
  HM_T(VecAssemblyBegin(r));
  HM_T(VecAssemblyEnd(r));
  return r;
}

typedef struct {
  PetscBool converged;
  PetscInt  steps, nh;
  double    E, fmax, smax, smax_tol, cell[9], stress[9], pos[3 * NAT], hE[256], hF[256], hS[256];
  double    monE[256], monV[256]; /* what the monitor was given: E and the cell's volume */
  PetscInt  nmon;
} Run;

static PetscErrorCode monitor(HMOptimizer o, PetscInt step, Vec r, const double cell[9], double E, Vec g, void *ctx)
{
  Run *out = (Run *)ctx;
  PetscFunctionBegin;
  (void)o;
  (void)r;
  (void)g;
  if (step < 256) {
    out->monE[step] = E;
    out->monV[step] = fabs(HMMat3Det(cell));
    out->nmon       = step + 1;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* cell: variable cell at pressure P (GPa); otherwise positions at the start cell */
static void run(MPI_Comm comm, PetscBool cell, double pgpa, HMOptimizerHessian hess, Run *out)
{
  double       cell0[9], pos[3 * NAT];
  Vec          r, x, all;
  VecScatter   sc;
  HMCellFilter cf = NULL;
  HMOptimizer  o;

  memset(out, 0, sizeof(*out));
  strained_start(cell0, pos);
  r = positions(comm, pos);
  HM_T(HMOptimizerCreate(comm, &o));
  HM_T(HMOptimizerSetTolerances(o, 1e-5, 200));
  HM_T(HMOptimizerSetStressTolerance(o, 1e-4)); /* GPa */
  HM_T(HMOptimizerSetHessian(o, hess, 1));
  HM_T(HMOptimizerSetRigid(o, HM_OPTIMIZER_RIGID_TRANSLATIONS));
  HM_T(HMOptimizerSetFromOptions(o));
  if (cell) {
    HM_T(HMCellFilterCreate(r, cell0, crystal, NULL, &cf));
    HM_T(HMCellFilterSetPressure(cf, pgpa));
    HM_T(HMCellFilterCreateVec(cf, &x));
    HM_T(HMCellFilterSetUp(cf, o, monitor, out));
  } else {
    HM_T(VecDuplicate(r, &x));
    HM_T(VecCopy(r, x));
    HM_T(HMOptimizerSetObjective(o, crystal_fixed, cell0));
  }
  HM_T(HMOptimizerSolve(o, x));
  {
    HMOptimizerInfo info;
    HM_T(HMOptimizerGetInfo(o, &info));
    out->converged = info.converged;
    out->steps     = info.steps;
    out->E         = info.energy_final;
    out->fmax      = info.fmax;
    out->smax      = info.smax;
    out->smax_tol  = info.smax_tolerance;
    out->nh        = PetscMin(info.nhistory, 256);
    for (PetscInt k = 0; k < out->nh; k++) {
      out->hE[k] = info.energies[k];
      out->hF[k] = info.fmax_history[k];
      out->hS[k] = info.smax_history[k];
    }
    for (int k = 0; k < 9; k++) {
      out->cell[k]   = cell ? info.cell[k] : cell0[k];
      out->stress[k] = info.stress[k];
    }
    assert_int_equal(info.has_cell, cell);
  }
  if (cell) {
    double c[9];
    HM_T(HMCellFilterGetState(cf, x, r, c));
    for (int k = 0; k < 9; k++) assert_true(c[k] == out->cell[k]);
  } else HM_T(VecCopy(x, r));
  {
    const double *a = gather(r, &sc, &all);
    memcpy(out->pos, a, sizeof(out->pos));
    HM_T(VecRestoreArrayRead(all, &a));
    HM_T(VecScatterDestroy(&sc));
    HM_T(VecDestroy(&all));
  }
  if (getenv("HM_OPT_VERBOSE")) HM_T(HMOptimizerView(o, NULL));
  HM_T(HMOptimizerDestroy(&o));
  HM_T(HMCellFilterDestroy(&cf));
  HM_T(VecDestroy(&x));
  HM_T(VecDestroy(&r));
}

/* largest distance (A) of the atoms from their fcc sites in the final cell, a common translation removed */
static double site_error(const Run *R)
{
  double f[3 * NAT], ci[9], s0[3], worst = 0;
  fcc_fractional(f);
  HMMat3Inverse(R->cell, ci);
  for (int i = 0; i < NAT; i++) {
    double s[3], d[3], e[3];
    for (int b = 0; b < 3; b++) s[b] = R->pos[3 * i] * ci[b] + R->pos[3 * i + 1] * ci[3 + b] + R->pos[3 * i + 2] * ci[6 + b];
    if (!i)
      for (int b = 0; b < 3; b++) s0[b] = s[b];
    for (int b = 0; b < 3; b++) {
      d[b] = (s[b] - s0[b]) - (f[3 * i + b] - f[b]);
      d[b] -= round(d[b]);
    }
    for (int a = 0; a < 3; a++) e[a] = d[0] * R->cell[a] + d[1] * R->cell[3 + a] + d[2] * R->cell[6 + a];
    worst = fmax(worst, sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]));
  }
  return worst;
}

/* the final cell against the cubic cell of lattice constant a (it stays lower triangular: exactly NREP a I) */
static double cell_error(const Run *R, double a)
{
  double worst = 0;
  for (int k = 0; k < 9; k++) worst = fmax(worst, fabs(R->cell[k] - (k % 4 == 0) * NREP * a));
  return worst;
}

static void test_crystal(void **state)
{
  Run    rv, rf, rp, rn;
  double a0 = golden(0), P = 5.0, aP = golden(P / EV_A3_GPA);
  (void)state;
  run(PETSC_COMM_WORLD, PETSC_TRUE, 0, HM_OPTIMIZER_HESSIAN_PREDICTED, &rv);
  run(PETSC_COMM_WORLD, PETSC_FALSE, 0, HM_OPTIMIZER_HESSIAN_PREDICTED, &rf);
  run(PETSC_COMM_WORLD, PETSC_TRUE, P, HM_OPTIMIZER_HESSIAN_PREDICTED, &rp);
  run(PETSC_COMM_WORLD, PETSC_TRUE, 0, HM_OPTIMIZER_HESSIAN_NONE, &rn);
  print_message("fcc Morse: a0 %.9f A (golden section), variable cell %d steps a %.9f (cell error %.2e A, sites %.2e A, smax %.2e GPa); fixed cell %d steps E %.9f vs %.9f; P = 5 GPa: a %.9f vs %.9f (%d steps); L-BFGS %d steps\n", a0, (int)rv.steps, rv.cell[0] / NREP, cell_error(&rv, a0), site_error(&rv), rv.smax * EV_A3_GPA, (int)rf.steps, rf.E, rv.E,
                aP, rp.cell[0] / NREP, (int)rp.steps, (int)rn.steps);
  /* converged: fmax <= 1e-5 eV/A and every |stress_ij| <= 1e-4 GPa */
  assert_true(rv.converged && rf.converged && rp.converged && rn.converged);
  assert_true(rv.smax <= 1e-4 / EV_A3_GPA && rv.fmax <= 1e-5);
  for (int k = 0; k < 9; k++) assert_true(fabs(rv.stress[k]) <= 1e-4 / EV_A3_GPA);
  /* the lattice constant: a residual stress s changes a by a s / (3 B) (B = 210 GPa): 1e-4 GPa -> 6e-7 A; the
     golden section is good to ~1e-7 A (the energy's round-off near its minimum); 1e-5 A leaves a margin of 10 */
  assert_true(cell_error(&rv, a0) < 1e-5 * NREP);
  assert_true(cell_error(&rn, a0) < 1e-5 * NREP);
  /* on the sites: fmax 1e-5 eV/A over a curvature of ~4 eV/A^2 is ~3e-6 A */
  assert_true(site_error(&rv) < 1e-4 && site_error(&rp) < 1e-4);
  /* the minimum is the perfect crystal: its energy per atom from the lattice sum, to the tolerances' order */
  assert_true(fabs(rv.E - NAT * enthalpy_per_atom(a0, 0)) < 1e-8 * NAT);
  /* the cell's degrees of freedom lower the energy below the fixed cell's minimum (a strain of a few %) */
  assert_true(rv.E < rf.E - 0.01);
  assert_true(fabs(rv.E - rn.E) < 1e-8 * NAT);
  /* under pressure: the lattice constant of the enthalpy minimum, the stress -P I */
  assert_true(cell_error(&rp, aP) < 1e-5 * NREP);
  for (int k = 0; k < 9; k++) assert_true(fabs(rp.stress[k] + (k % 4 == 0) * P / EV_A3_GPA) <= 1e-4 / EV_A3_GPA);
  /* the monitor gets the energy, not the enthalpy: history = E + P V of the monitor's cell */
  assert_int_equal(rp.nmon, rp.nh);
  for (PetscInt k = 0; k < rp.nh; k++) assert_true(fabs(rp.hE[k] - (rp.monE[k] + P / EV_A3_GPA * rp.monV[k])) < 1e-10 * fabs(rp.hE[k]));
  /* the stress measure decreases overall */
  assert_true(rv.hS[rv.nh - 1] < 1e-3 * rv.hS[0]);
  /* Newton with the exact atom Hessian and difference cell columns: few steps, fewer than L-BFGS */
  assert_true(rv.steps < rn.steps);
}

/* The filter's gradient against central differences of E + P V, its stress from the gradient against the
   objective's, and its Hessian's products against differences of the gradient, at a deformed cell. */
static void test_filter_derivatives(void **state)
{
  double       cell0[9], pos[3 * NAT], E, Ep, Em, U[9], cell[9], st[9], stv[9], smax, fm, fmv, err = 0, gmax = 0;
  Vec          r, x, g, xp, gp, gm, v, Hv;
  Mat          H;
  HMCellFilter cf;
  PetscInt     lo, hi, N;
  const double P = 2.0;
  (void)state;
  (void)U;
  strained_start(cell0, pos);
  r = positions(PETSC_COMM_WORLD, pos);
  HM_T(HMCellFilterCreate(r, cell0, crystal, NULL, &cf));
  HM_T(HMCellFilterSetPressure(cf, P));
  HM_T(HMCellFilterCreateVec(cf, &x));
  HM_T(VecGetOwnershipRange(x, &lo, &hi));
  HM_T(VecGetSize(x, &N));
  /* a deformed cell: the 6 cell entries set to a few % of strain (in units of L, whatever L is) */
  {
    double c[9], L;
    HM_T(HMCellFilterGetState(cf, x, r, c));
    L = pow((double)NAT, 1.0 / 6.0) * cbrt(fabs(HMMat3Det(cell0)));
    for (PetscInt k = 0; k < 6; k++)
      if (N - 6 + k >= lo && N - 6 + k < hi) HM_T(VecSetValue(x, N - 6 + k, L * 0.02 * (k % 2 ? -1 : 1) * (1 + 0.3 * k), INSERT_VALUES));
    HM_T(VecAssemblyBegin(x));
    HM_T(VecAssemblyEnd(x));
  }
  HM_T(VecDuplicate(x, &g));
  HM_T(VecDuplicate(x, &xp));
  HM_T(VecDuplicate(x, &gp));
  HM_T(VecDuplicate(x, &gm));
  HM_T(VecDuplicate(x, &v));
  HM_T(VecDuplicate(x, &Hv));
  HM_T(HMCellFilterEvaluate(NULL, x, PETSC_TRUE, &E, g, &H, cf));
  assert_non_null(H);
  for (PetscInt k = 0; k < N; k++) { /* 102 coordinates: the 96 atoms' and the 6 cell entries */
    const double h  = 1e-5;
    double       gk = 0;
    Mat          none;
    HM_T(VecCopy(x, xp));
    if (k >= lo && k < hi) HM_T(VecSetValue(xp, k, h, ADD_VALUES));
    HM_T(VecAssemblyBegin(xp));
    HM_T(VecAssemblyEnd(xp));
    HM_T(HMCellFilterEvaluate(NULL, xp, PETSC_FALSE, &Ep, gp, &none, cf));
    HM_T(VecCopy(x, xp));
    if (k >= lo && k < hi) HM_T(VecSetValue(xp, k, -h, ADD_VALUES));
    HM_T(VecAssemblyBegin(xp));
    HM_T(VecAssemblyEnd(xp));
    HM_T(HMCellFilterEvaluate(NULL, xp, PETSC_FALSE, &Em, gp, &none, cf));
    if (k >= lo && k < hi) {
      const PetscScalar *ga;
      HM_T(VecGetArrayRead(g, &ga));
      gk = ga[k - lo];
      HM_T(VecRestoreArrayRead(g, &ga));
      err  = fmax(err, fabs(gk - (Ep - Em) / (2 * h)));
      gmax = fmax(gmax, fabs(gk));
    }
  }
  (void)MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
  (void)MPI_Allreduce(MPI_IN_PLACE, &gmax, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
  print_message("filter gradient vs central differences (h 1e-5): largest error %.2e eV/A, largest component %.2e\n", err, gmax);
  /* central differences of h = 1e-5 on a Morse energy of ~60 eV: truncation ~1e-10, round-off ~1e-14 * 60 / 1e-5 */
  assert_true(err < 1e-6 && gmax > 0.1);
  /* the stress recovered from the gradient's cell entries is the objective's at the state's cell */
  HM_T(HMCellFilterCellInfo(NULL, x, g, cell, st, &smax, &fm, cf));
  {
    Vec    rr, gg;
    double Ed;
    Mat    none;
    HM_T(VecDuplicate(r, &rr));
    HM_T(VecDuplicate(r, &gg));
    HM_T(HMCellFilterGetState(cf, x, rr, cell));
    HM_T(crystal(rr, cell, PETSC_FALSE, &Ed, gg, stv, &none, NULL));
    for (int k = 0; k < 9; k++) assert_true(fabs(st[k] - stv[k]) < 1e-12);
    HM_T(HMOptimizerMaxAtomNorm(gg, &fmv)); /* fmax: of the forces at the state, not of the optimiser's U g_i */
    assert_true(fabs(fm - fmv) < 1e-12 * fmv);
    for (int k = 0; k < 9; k++) assert_true(fabs(smax) >= fabs(stv[k] + (k % 4 == 0) * P / EV_A3_GPA) - 1e-12);
    /* the fractional coordinates of the state's positions are those of x's atom entries in the start cell */
    {
      double             ci[9], c0i[9], worst = 0;
      const PetscScalar *ra, *xa;
      PetscInt           nl;
      HMMat3Inverse(cell, ci);
      HMMat3Inverse(cell0, c0i);
      HM_T(VecGetLocalSize(rr, &nl));
      HM_T(VecGetArrayRead(rr, &ra));
      HM_T(VecGetArrayRead(x, &xa));
      for (PetscInt i = 0; i < nl; i += 3)
        for (int b = 0; b < 3; b++) {
          double s  = ra[i] * ci[b] + ra[i + 1] * ci[3 + b] + ra[i + 2] * ci[6 + b];
          double s0 = xa[i] * c0i[b] + xa[i + 1] * c0i[3 + b] + xa[i + 2] * c0i[6 + b];
          worst     = fmax(worst, fabs(s - s0));
        }
      HM_T(VecRestoreArrayRead(x, &xa));
      HM_T(VecRestoreArrayRead(rr, &ra));
      assert_true(worst < 1e-13);
    }
    HM_T(VecDestroy(&rr));
    HM_T(VecDestroy(&gg));
  }
  /* H v against (g(x + e v) - g(x - e v)) / 2e for a random v: the atom block is exact, the cell columns are
     forward differences of strain 1e-4 (relative error ~1e-4 x the third derivative's scale): 1e-2 relative */
  HM_T(VecSetRandom(v, NULL));
  HM_T(VecShift(v, -0.5));
  HM_T(VecNormalize(v, NULL));
  HM_T(MatMult(H, v, Hv));
  {
    const double e = 1e-5;
    double       nd, nh;
    Mat          none;
    HM_T(VecWAXPY(xp, e, v, x));
    HM_T(HMCellFilterEvaluate(NULL, xp, PETSC_FALSE, &Ep, gp, &none, cf));
    HM_T(VecWAXPY(xp, -e, v, x));
    HM_T(HMCellFilterEvaluate(NULL, xp, PETSC_FALSE, &Em, gm, &none, cf));
    HM_T(VecAXPY(gp, -1.0, gm));
    HM_T(VecScale(gp, 0.5 / e));
    HM_T(VecNorm(Hv, NORM_2, &nh));
    HM_T(VecAXPY(Hv, -1.0, gp));
    HM_T(VecNorm(Hv, NORM_2, &nd));
    print_message("filter Hessian along a random direction: |H v| %.4f, |H v - dg/dx v| %.2e\n", nh, nd);
    assert_true(nh > 0.1 && nd < 1e-2 * nh);
  }
  HM_T(MatDestroy(&H));
  {
    Vec *w[] = {&g, &xp, &gp, &gm, &v, &Hv, &x, &r};
    for (size_t k = 0; k < sizeof(w) / sizeof(w[0]); k++) HM_T(VecDestroy(w[k]));
  }
  HM_T(HMCellFilterDestroy(&cf));
}

/* The same variable-cell run on rank 0 alone and on every rank: the same steps, energies and stresses. */
static void test_ranks(void **state)
{
  Run         a, b;
  PetscMPIInt rank;
  (void)state;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  if (!rank) run(PETSC_COMM_SELF, PETSC_TRUE, 1.0, HM_OPTIMIZER_HESSIAN_PREDICTED, &a);
  (void)MPI_Bcast(&a, (int)sizeof(Run), MPI_BYTE, 0, PETSC_COMM_WORLD);
  run(PETSC_COMM_WORLD, PETSC_TRUE, 1.0, HM_OPTIMIZER_HESSIAN_PREDICTED, &b);
  assert_true(a.converged && b.converged);
  assert_int_equal(a.steps, b.steps);
  assert_int_equal(a.nh, b.nh);
  for (PetscInt k = 0; k < a.nh; k++) {
    assert_true(fabs(a.hE[k] - b.hE[k]) <= 1e-10 * PetscMax(1.0, fabs(a.hE[k])));
    assert_true(fabs(a.hF[k] - b.hF[k]) <= 1e-8 * PetscMax(1e-3, a.hF[k]));
    assert_true(fabs(a.hS[k] - b.hS[k]) <= 1e-8 * PetscMax(1e-4 / EV_A3_GPA, a.hS[k]));
  }
  for (int k = 0; k < 9; k++) assert_true(fabs(a.cell[k] - b.cell[k]) < 1e-10);
}

/* -optimize ts with a cell is refused */
static void test_refuse_ts(void **state)
{
  double         cell0[9], pos[3 * NAT];
  Vec            r, x;
  HMCellFilter   cf;
  HMOptimizer    o;
  PetscErrorCode ierr;
  (void)state;
  strained_start(cell0, pos);
  r = positions(PETSC_COMM_WORLD, pos);
  HM_T(HMOptimizerCreate(PETSC_COMM_WORLD, &o));
  HM_T(HMOptimizerSetType(o, HMOPTIMIZERTS));
  HM_T(HMCellFilterCreate(r, cell0, crystal, NULL, &cf));
  HM_T(HMCellFilterCreateVec(cf, &x));
  HM_T(HMCellFilterSetUp(cf, o, NULL, NULL));
  HM_MUST_FAIL(ierr, HMOptimizerSolve(o, x), (void)0, "-optimize ts with a variable cell was not refused");
  HM_T(HMOptimizerDestroy(&o));
  HM_T(HMCellFilterDestroy(&cf));
  HM_T(VecDestroy(&x));
  HM_T(VecDestroy(&r));
}

HM_TEST_MAIN_OF(test_filter_derivatives, test_crystal, test_ranks, test_refuse_ts)

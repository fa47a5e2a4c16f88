/* Normal-mode analysis: every solver route against an independent dense LAPACK analysis, analytic molecules,
   Eckart-projection invariance, rank-count invariance (run under mpiexec too), thermochemistry and mode files. */
#include "hmtest.h"
#include <hipmace/eigen.h>
#include <petscblaslapack.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ */
/* test data                                                                                          */

typedef struct {
  PetscInt n; /* atoms */
  int     *Z;
  double  *pos; /* n x 3 */
  double  *H;   /* 3n x 3n row-major, eV/A^2 */
} Mol;

static void mol_free(Mol *m)
{
  free(m->Z);
  free(m->pos);
  free(m->H);
}

/* file in the golden folder (prefix "") or the demo fixtures (prefix "s<k>_", Hessian "<prefix>ref_hessian") */
static void mol_load(const char *path, const char *prefix, Mol *m)
{
  HMSafetensors       st;
  const HMTensorInfo *zi;
  const double       *pos, *H;
  PetscInt64          ps[2] = {-1, 3}, hs[2];
  char                name[64];

  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &st));
  snprintf(name, sizeof(name), "%satomic_numbers", prefix);
  HM_T(HMSafetensorsGetInfo(st, name, HM_DTYPE_I64, &zi));
  m->n  = (PetscInt)zi->numel;
  ps[0] = m->n;
  hs[0] = hs[1] = 3 * m->n;
  snprintf(name, sizeof(name), "%spositions", prefix);
  HM_T(HMSafetensorsGetF64(st, name, 2, ps, &pos));
  snprintf(name, sizeof(name), "%s%s", prefix, prefix[0] ? "ref_hessian" : "hessian");
  HM_T(HMSafetensorsGetF64(st, name, 2, hs, &H));
  m->Z   = malloc(sizeof(int) * (size_t)m->n);
  m->pos = malloc(sizeof(double) * (size_t)(3 * m->n));
  m->H   = malloc(sizeof(double) * (size_t)(9 * m->n * m->n));
  for (PetscInt i = 0; i < m->n; i++) m->Z[i] = (int)((const PetscInt64 *)zi->data)[i];
  memcpy(m->pos, pos, sizeof(double) * (size_t)(3 * m->n));
  memcpy(m->H, H, sizeof(double) * (size_t)(9 * m->n * m->n));
  HM_T(HMSafetensorsClose(&st));
}

static void golden_mol(const char *model, const char *mol, Mol *m)
{
  char path[PETSC_MAX_PATH_LEN], name[96];
  snprintf(name, sizeof(name), "fixture_%s_%s.safetensors", model, mol);
  hm_golden_path(name, path, sizeof(path));
  mol_load(path, "", m);
}

static void demo_mol(int k, Mol *m)
{
  char path[PETSC_MAX_PATH_LEN], prefix[16];
  snprintf(path, sizeof(path), "%s/demo_test_fixtures.safetensors", hm_models_dir());
  snprintf(prefix, sizeof(prefix), "s%d_", k);
  mol_load(path, prefix, m);
}

/* Distributed Hessian of the requested type from the dense one; every rank inserts its own rows. */
static Mat mol_matrix(MPI_Comm comm, const Mol *m, MatType type)
{
  Mat       A;
  PetscInt  N3 = 3 * m->n, rs, re;
  PetscBool sbaij;

  HM_T(MatCreate(comm, &A));
  HM_T(MatSetSizes(A, PETSC_DECIDE, PETSC_DECIDE, N3, N3));
  HM_T(MatSetBlockSize(A, 3));
  HM_T(MatSetType(A, type));
  HM_T(MatSetUp(A));
  HM_T(PetscStrcmp(type, MATSBAIJ, &sbaij));
  if (sbaij) HM_T(MatSetOption(A, MAT_IGNORE_LOWER_TRIANGULAR, PETSC_TRUE));
  HM_T(MatGetOwnershipRange(A, &rs, &re));
  for (PetscInt i = rs; i < re; i++)
    for (PetscInt j = 0; j < N3; j++)
      if (m->H[i * N3 + j] != 0.0) HM_T(MatSetValue(A, i, j, m->H[i * N3 + j], INSERT_VALUES));
  HM_T(MatAssemblyBegin(A, MAT_FINAL_ASSEMBLY));
  HM_T(MatAssemblyEnd(A, MAT_FINAL_ASSEMBLY));
  return A;
}

static HMSystem mol_system(MPI_Comm comm, const Mol *m, PetscBool periodic)
{
  HMSystem  sys;
  double    cell[9] = {30, 0, 0, 0, 30, 0, 0, 0, 30};
  PetscBool pbc[3]  = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  HM_T(HMSystemCreate(comm, m->n, m->Z, m->pos, periodic ? cell : NULL, periodic ? pbc : NULL, &sys));
  return sys;
}

/* ------------------------------------------------------------------------------------------------ */
/* independent dense reference: mass weighting, 6 (or 5) raw rigid vectors orthonormalised by MGS with
   rank detection, explicit P Ht P, LAPACK dsyev, drop the eigenvectors that lie in span(V)          */

static PetscInt ref_rigid(const Mol *m, const double *mass, PetscBool periodic, double *Q /* 3n x 6, col-major */)
{
  PetscInt N3 = 3 * m->n, k = 0;
  double   com[3] = {0, 0, 0}, M = 0;
  double  *cand = malloc(sizeof(double) * (size_t)(6 * N3));

  for (PetscInt a = 0; a < m->n; a++) {
    M += mass[a];
    for (int d = 0; d < 3; d++) com[d] += mass[a] * m->pos[3 * a + d];
  }
  for (int d = 0; d < 3; d++) com[d] /= M;
  for (int c = 0; c < 6; c++)
    for (PetscInt a = 0; a < m->n; a++) {
      double r[3] = {m->pos[3 * a] - com[0], m->pos[3 * a + 1] - com[1], m->pos[3 * a + 2] - com[2]}, e[3] = {0, 0, 0}, v[3];
      double sm = sqrt(mass[a]);
      if (c < 3) {
        v[0] = v[1] = v[2] = 0;
        v[c]               = 1;
      } else {
        e[c - 3] = 1;
        v[0]     = e[1] * r[2] - e[2] * r[1];
        v[1]     = e[2] * r[0] - e[0] * r[2];
        v[2]     = e[0] * r[1] - e[1] * r[0];
      }
      for (int d = 0; d < 3; d++) cand[c * N3 + 3 * a + d] = sm * v[d];
    }
  for (int c = 0; c < (periodic ? 3 : 6); c++) {
    double *v = cand + c * N3, n0 = 0, n1 = 0;
    for (PetscInt i = 0; i < N3; i++) n0 += v[i] * v[i];
    for (int pass = 0; pass < 2; pass++)
      for (PetscInt j = 0; j < k; j++) {
        double d = 0;
        for (PetscInt i = 0; i < N3; i++) d += Q[j * N3 + i] * v[i];
        for (PetscInt i = 0; i < N3; i++) v[i] -= d * Q[j * N3 + i];
      }
    for (PetscInt i = 0; i < N3; i++) n1 += v[i] * v[i];
    if (n1 <= 1e-14 * n0 || n0 == 0) continue; /* dependent: the missing rotation of a linear molecule */
    for (PetscInt i = 0; i < N3; i++) Q[k * N3 + i] = v[i] / sqrt(n1);
    k++;
  }
  free(cand);
  return k;
}

/* Returns the number of vibrational eigenvalues written to lam (ascending). */
static PetscInt ref_spectrum(const Mol *m, const double *mass, PetscBool periodic, double *lam, PetscInt *krigid)
{
  PetscInt     N3 = 3 * m->n, k, nv = 0;
  double      *Q = malloc(sizeof(double) * (size_t)(6 * N3)), *Ht = malloc(sizeof(double) * (size_t)(N3 * N3));
  double      *P = malloc(sizeof(double) * (size_t)(N3 * N3)), *T = malloc(sizeof(double) * (size_t)(N3 * N3)), *w = malloc(sizeof(double) * (size_t)N3);
  double      *ov = malloc(sizeof(double) * (size_t)N3), *work;
  PetscBLASInt n = (PetscBLASInt)N3, lwork = (PetscBLASInt)(64 * N3), info;

  k = ref_rigid(m, mass, periodic, Q);
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) Ht[i * N3 + j] = m->H[i * N3 + j] / sqrt(mass[i / 3] * mass[j / 3]);
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) {
      double s = (i == j);
      for (PetscInt c = 0; c < k; c++) s -= Q[c * N3 + i] * Q[c * N3 + j];
      P[i * N3 + j] = s;
    }
  /* T = P Ht P (symmetric; stored as a column-major array for LAPACK, same thing) */
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) {
      double s = 0;
      for (PetscInt l = 0; l < N3; l++) s += Ht[i * N3 + l] * P[l * N3 + j];
      T[i * N3 + j] = s;
    }
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) {
      double s = 0;
      for (PetscInt l = 0; l < N3; l++) s += P[i * N3 + l] * T[l * N3 + j];
      Ht[i * N3 + j] = s;
    }
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < i; j++) Ht[i * N3 + j] = Ht[j * N3 + i] = 0.5 * (Ht[i * N3 + j] + Ht[j * N3 + i]);
  work = malloc(sizeof(double) * (size_t)lwork);
  LAPACKsyev_("V", "U", &n, Ht, &n, w, work, &lwork, &info);
  assert_int_equal(info, 0);
  /* overlap of each eigenvector (column j of Ht) with span(Q); drop the k largest */
  for (PetscInt j = 0; j < N3; j++) {
    double o = 0;
    for (PetscInt c = 0; c < k; c++) {
      double d = 0;
      for (PetscInt i = 0; i < N3; i++) d += Q[c * N3 + i] * Ht[j * N3 + i];
      o += d * d;
    }
    ov[j] = o;
  }
  for (PetscInt c = 0; c < k; c++) {
    PetscInt best = -1;
    for (PetscInt j = 0; j < N3; j++)
      if (ov[j] >= 0 && (best < 0 || ov[j] > ov[best])) best = j;
    assert_true(ov[best] > 0.99); /* the rigid directions are exact eigenvectors of P Ht P */
    ov[best] = -1;
  }
  for (PetscInt j = 0; j < N3; j++)
    if (ov[j] >= 0) lam[nv++] = w[j];
  *krigid = k;
  free(Q);
  free(Ht);
  free(P);
  free(T);
  free(w);
  free(ov);
  free(work);
  return nv;
}

static const double *sys_masses(HMSystem sys)
{
  const double *m;
  HM_T(HMSystemGetMasses(sys, &m));
  return m;
}

/* Runs one route; returns the library's eigenvalues (malloc'd copy). */
static double *run_route(MPI_Comm comm, const Mol *mol, MatType mtype, HMModesType type, HMModesSolver solver, PetscInt K, const double win[2], PetscInt *n, PetscInt *nrigid, PetscBool periodic)
{
  HMModes       m;
  Mat           H   = mol_matrix(comm, mol, mtype);
  HMSystem      sys = mol_system(comm, mol, periodic);
  const double *lam, *res;
  double       *out;

  HM_T(HMModesCreate(comm, &m));
  HM_T(HMModesSetType(m, type));
  HM_T(HMModesSetSolver(m, solver));
  if (K > 0) HM_T(HMModesSetNumModes(m, K));
  if (win) HM_T(HMModesSetWindowEigenvalues(m, win[0], win[1]));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, n, &lam, NULL));
  HM_T(HMModesGetResiduals(m, &res));
  HM_T(HMModesGetNumRigid(m, nrigid));
  out = malloc(sizeof(double) * (size_t)(*n + 1));
  memcpy(out, lam, sizeof(double) * (size_t)*n);
  for (PetscInt i = 1; i < *n; i++) assert_true(lam[i] >= lam[i - 1]);
  /* residual of a converged unit mode: far below the spectrum scale */
  for (PetscInt i = 0; i < *n; i++) assert_true(res[i] < 1e-6 * PetscMax(1.0, hm_max_abs(*n, lam)));
  HM_T(HMModesDestroy(&m));
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
  return out;
}

/* ------------------------------------------------------------------------------------------------ */

static void test_constant(void **state)
{
  (void)state;
  /* the issue quotes 521.4709 (4 decimals); CODATA 2018 gives 521.470898... */
  assert_true(fabs(HMModesWavenumberFactor() - 521.4709) < 5e-5);
  assert_true(fabs(HMModesEigenvalueToWavenumber(1.0) - HMModesWavenumberFactor()) < 1e-12);
  assert_true(fabs(HMModesEigenvalueToWavenumber(-4.0) + 2 * HMModesWavenumberFactor()) < 1e-12);
  assert_true(fabs(HMModesWavenumberToEigenvalue(HMModesEigenvalueToWavenumber(-0.37)) + 0.37) < 1e-15);
}

static const char *gmols[] = {"mol08", "mol09", "mol11", "mol13", "mol21"};

/* Full spectrum against LAPACK on all golden molecules (both models) and the demo fixtures. Tolerance 1e-10
   relative to the largest |lambda|: both sides are backward-stable dense solvers (errors ~ 1e-15 ||A||);
   also the acceptance figure: cm^-1 within 1e-6 or 1e-8 relative. */
static void check_full(MPI_Comm comm, Mol *mol, MatType mtype)
{
  HMSystem sys = mol_system(PETSC_COMM_SELF, mol, PETSC_FALSE);
  double  *ref = malloc(sizeof(double) * (size_t)(3 * mol->n)), *lam, scale;
  PetscInt nref, kref, n, k;

  nref = ref_spectrum(mol, sys_masses(sys), PETSC_FALSE, ref, &kref);
  lam  = run_route(comm, mol, mtype, HM_MODES_FULL, HM_MODES_SOLVER_KRYLOVSCHUR, 0, NULL, &n, &k, PETSC_FALSE);
  assert_int_equal(k, kref);
  assert_int_equal(n, nref);
  assert_int_equal(n, 3 * mol->n - 6);
  scale = hm_max_abs(n, ref);
  for (PetscInt i = 0; i < n; i++) {
    double c0 = HMModesEigenvalueToWavenumber(ref[i]), c1 = HMModesEigenvalueToWavenumber(lam[i]);
    if (fabs(lam[i] - ref[i]) > 1e-10 * scale) fail_msg("mode %d: %.15g vs LAPACK %.15g", (int)i, lam[i], ref[i]);
    assert_true(fabs(c0 - c1) <= 1e-6 || fabs(c0 - c1) <= 1e-8 * fabs(c0));
  }
  free(ref);
  free(lam);
  HM_T(HMSystemDestroy(&sys));
}

static void test_full_golden(void **state)
{
  (void)state;
  for (size_t i = 0; i < 5; i++) {
    Mol m;
    golden_mol("small", gmols[i], &m);
    check_full(PETSC_COMM_WORLD, &m, MATBAIJ);
    mol_free(&m);
    golden_mol("default", gmols[i], &m);
    check_full(PETSC_COMM_WORLD, &m, MATBAIJ);
    mol_free(&m);
  }
}

static void test_full_demo_and_types(void **state)
{
  (void)state;
  for (int k = 0; k < 10; k++) {
    Mol m;
    demo_mol(k, &m);
    check_full(PETSC_COMM_WORLD, &m, k % 3 == 0 ? MATBAIJ : (k % 3 == 1 ? MATSBAIJ : MATAIJ));
    mol_free(&m);
  }
}

/* Every route agrees with every other: lowest K by Krylov-Schur (MUMPS) and by LOBPCG, a window, the full
   spectrum, for BAIJ / SBAIJ / AIJ input. Tolerance 1e-9 relative to the spectrum scale: the iterative
   solvers stop at relative residual 1e-10, and for symmetric matrices eigenvalue errors are below the residual. */
static void check_routes(MPI_Comm comm, Mol *mol, PetscInt K)
{
  PetscInt n, k, nf;
  double  *full = run_route(comm, mol, MATBAIJ, HM_MODES_FULL, 0, 0, NULL, &nf, &k, PETSC_FALSE), scale = hm_max_abs(nf, full), win[2];
  MatType  types[3] = {MATBAIJ, MATSBAIJ, MATAIJ};

  for (int t = 0; t < 3; t++) {
    double *ks = run_route(comm, mol, types[t], HM_MODES_LOWEST, HM_MODES_SOLVER_KRYLOVSCHUR, K, NULL, &n, &k, PETSC_FALSE);
    assert_int_equal(n, K);
    for (PetscInt i = 0; i < n; i++)
      if (fabs(ks[i] - full[i]) > 1e-9 * scale) fail_msg("Krylov-Schur (%s) mode %d: %.15g vs full %.15g", types[t], (int)i, ks[i], full[i]);
    free(ks);
  }
  {
    double *lo = run_route(comm, mol, MATAIJ, HM_MODES_LOWEST, HM_MODES_SOLVER_LOBPCG, K, NULL, &n, &k, PETSC_FALSE);
    assert_int_equal(n, K);
    for (PetscInt i = 0; i < n; i++)
      if (fabs(lo[i] - full[i]) > 1e-9 * scale) fail_msg("LOBPCG mode %d: %.15g vs full %.15g", (int)i, lo[i], full[i]);
    free(lo);
  }
  {
    /* factorisation-free: LOBPCG + GAMG on the same projected operator (near-zero modes of relaxed molecules) */
    double *it = run_route(comm, mol, MATBAIJ, HM_MODES_LOWEST, HM_MODES_SOLVER_ITERATIVE, K, NULL, &n, &k, PETSC_FALSE);
    assert_int_equal(n, K);
    for (PetscInt i = 0; i < n; i++)
      if (fabs(it[i] - full[i]) > 1e-8 * scale) fail_msg("iterative mode %d: %.15g vs full %.15g", (int)i, it[i], full[i]);
    free(it);
  }
  /* window between modes 2 and K+4 (ends at midpoints so the count is unambiguous) */
  {
    PetscInt i0 = 1, i1 = K + 3;
    double  *wi;
    assert_true(i1 + 1 < nf);
    win[0] = 0.5 * (full[i0 - 1] + full[i0]);
    win[1] = 0.5 * (full[i1] + full[i1 + 1]);
    wi     = run_route(comm, mol, MATSBAIJ, HM_MODES_WINDOW, 0, 0, win, &n, &k, PETSC_FALSE);
    assert_int_equal(n, i1 - i0 + 1);
    for (PetscInt i = 0; i < n; i++)
      if (fabs(wi[i] - full[i0 + i]) > 1e-9 * scale) fail_msg("window mode %d: %.15g vs full %.15g", (int)i, wi[i], full[i0 + i]);
    free(wi);
  }
  free(full);
}

static void test_routes_agree(void **state)
{
  (void)state;
  for (size_t i = 0; i < 5; i++) {
    Mol m;
    golden_mol("small", gmols[i], &m);
    check_routes(PETSC_COMM_WORLD, &m, 10);
    mol_free(&m);
  }
  for (int k = 0; k < 10; k += 5) { /* s5 has an imaginary mode, s0 none */
    Mol m;
    demo_mol(k, &m);
    check_routes(PETSC_COMM_WORLD, &m, 8);
    mol_free(&m);
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* analytic molecules                                                                                 */

/* adds k g g^T for a 3n gradient g */
static void add_outer(PetscInt N3, double *H, const double *g, double k)
{
  for (PetscInt i = 0; i < N3; i++)
    for (PetscInt j = 0; j < N3; j++) H[i * N3 + j] += k * g[i] * g[j];
}

/* Spring along the bond a-b: E = k/2 (u.(x_b - x_a))^2 */
static void add_stretch(const Mol *m, PetscInt a, PetscInt b, double k)
{
  PetscInt N3 = 3 * m->n;
  double   u[3], L = 0, *g = calloc((size_t)N3, sizeof(double));
  for (int d = 0; d < 3; d++) {
    u[d] = m->pos[3 * b + d] - m->pos[3 * a + d];
    L += u[d] * u[d];
  }
  for (int d = 0; d < 3; d++) {
    g[3 * b + d] = u[d] / sqrt(L);
    g[3 * a + d] = -u[d] / sqrt(L);
  }
  add_outer(N3, m->H, g, k);
  free(g);
}

static void analytic_axis(double u[3], double e1[3], double e2[3])
{
  /* an axis in no special direction, and two unit vectors perpendicular to it */
  double n;
  u[0] = 0.3;
  u[1] = -0.5;
  u[2] = 0.81;
  n    = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
  for (int d = 0; d < 3; d++) u[d] /= n;
  e1[0] = u[1];
  e1[1] = -u[0];
  e1[2] = 0;
  n     = sqrt(e1[0] * e1[0] + e1[1] * e1[1]);
  for (int d = 0; d < 3; d++) e1[d] /= n;
  e2[0] = u[1] * e1[2] - u[2] * e1[1];
  e2[1] = u[2] * e1[0] - u[0] * e1[2];
  e2[2] = u[0] * e1[1] - u[1] * e1[0];
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_analytic(void **state)
{
  double u[3], e1[3], e2[3], r = 1.16, kst = 95.0, kb = 3.3;
  (void)state;
  analytic_axis(u, e1, e2);
  /* harmonic diatomic C-O: one mode, lambda = k (1/m1 + 1/m2) */
  {
    Mol      m = {2, NULL, NULL, NULL};
    PetscInt n, k;
    double  *lam, exact;
    m.Z    = malloc(2 * sizeof(int));
    m.pos  = malloc(6 * sizeof(double));
    m.H    = calloc(36, sizeof(double));
    m.Z[0] = 6;
    m.Z[1] = 8;
    for (int d = 0; d < 3; d++) {
      m.pos[d]     = 1.0 + 0.1 * d;
      m.pos[3 + d] = m.pos[d] + 1.13 * u[d];
    }
    add_stretch(&m, 0, 1, kst);
    exact = kst * (1.0 / HMElementMass(6) + 1.0 / HMElementMass(8));
    for (int route = 0; route < 3; route++) {
      lam = run_route(PETSC_COMM_WORLD, &m, MATBAIJ, route == 0 ? HM_MODES_FULL : HM_MODES_LOWEST, route == 2 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_KRYLOVSCHUR, 3, NULL, &n, &k, PETSC_FALSE);
      assert_int_equal(k, 5);
      assert_int_equal(n, 1);
      /* exact arithmetic gives exact; round-off only */
      if (fabs(lam[0] - exact) > 1e-11 * exact) fail_msg("diatomic route %d: %.15g vs %.15g", route, lam[0], exact);
      free(lam);
    }
    mol_free(&m);
  }
  /* linear symmetric triatomic O=C=O: stretches k/mO and k (1/mO + 2/mC), doubly degenerate bend
     kb/r^2 (2/mO + 4/mC) from E = kb/2 theta^2, theta = sum of transverse tilts of the two bonds */
  {
    Mol      m = {3, NULL, NULL, NULL};
    PetscInt n, k;
    double  *lam, exact[4], mO = HMElementMass(8), mC = HMElementMass(6);
    m.Z    = malloc(3 * sizeof(int));
    m.pos  = malloc(9 * sizeof(double));
    m.H    = calloc(81, sizeof(double));
    m.Z[0] = 8;
    m.Z[1] = 6;
    m.Z[2] = 8;
    for (int d = 0; d < 3; d++) {
      m.pos[3 + d] = -0.7 + 0.2 * d;
      m.pos[d]     = m.pos[3 + d] - r * u[d];
      m.pos[6 + d] = m.pos[3 + d] + r * u[d];
    }
    add_stretch(&m, 0, 1, kst);
    add_stretch(&m, 1, 2, kst);
    for (int t = 0; t < 2; t++) {
      const double *e = t ? e2 : e1;
      double        g[9];
      for (int d = 0; d < 3; d++) {
        g[d]     = e[d] / r;
        g[3 + d] = -2 * e[d] / r;
        g[6 + d] = e[d] / r;
      }
      add_outer(9, m.H, g, kb);
    }
    exact[0] = exact[1] = kb / (r * r) * (2 / mO + 4 / mC);
    exact[2]            = kst / mO;
    exact[3]            = kst * (1 / mO + 2 / mC);
    qsort(exact, 4, sizeof(double), cmp_double);
    for (int route = 0; route < 3; route++) {
      lam = run_route(PETSC_COMM_WORLD, &m, route == 1 ? MATSBAIJ : MATAIJ, route == 0 ? HM_MODES_FULL : HM_MODES_LOWEST, route == 2 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_KRYLOVSCHUR, 4, NULL, &n, &k, PETSC_FALSE);
      assert_int_equal(k, 5);
      assert_int_equal(n, 4);
      for (int i = 0; i < 4; i++)
        if (fabs(lam[i] - exact[i]) > 1e-10 * exact[3]) fail_msg("triatomic route %d mode %d: %.15g vs %.15g", route, i, lam[i], exact[i]);
      free(lam);
    }
    mol_free(&m);
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* The reported spectrum is that of P Ht P: adding any rigid-body coupling Ht + V G^T + G V^T (which a
   mere deflation of V would see) must leave every route's eigenvalues unchanged, and the modes must be
   orthogonal to V. Periodic systems project translations only.                                     */

static void test_projection(void **state)
{
  Mol           m, m2;
  HMSystem      sys;
  const double *mass;
  double       *Q, *ref, *lam;
  PetscInt      N3, k, nref, n, kk;
  PetscRandom   rnd;
  (void)state;

  golden_mol("small", "mol11", &m);
  N3  = 3 * m.n;
  sys = mol_system(PETSC_COMM_SELF, &m, PETSC_FALSE);
  HM_T(HMSystemGetMasses(sys, &mass));
  Q = malloc(sizeof(double) * (size_t)(6 * N3));
  k = ref_rigid(&m, mass, PETSC_FALSE, Q);
  assert_int_equal(k, 6);
  ref  = malloc(sizeof(double) * (size_t)N3);
  nref = ref_spectrum(&m, mass, PETSC_FALSE, ref, &kk);
  m2   = m;
  m2.H = malloc(sizeof(double) * (size_t)(N3 * N3));
  memcpy(m2.H, m.H, sizeof(double) * (size_t)(N3 * N3));
  HM_T(PetscRandomCreate(PETSC_COMM_SELF, &rnd));
  for (PetscInt c = 0; c < k; c++) {
    double *g = malloc(sizeof(double) * (size_t)N3);
    for (PetscInt i = 0; i < N3; i++) HM_T(PetscRandomGetValueReal(rnd, &g[i]));
    /* mass-weighted V g^T + g V^T, back to Cartesian */
    for (PetscInt i = 0; i < N3; i++)
      for (PetscInt j = 0; j < N3; j++) m2.H[i * N3 + j] += sqrt(mass[i / 3] * mass[j / 3]) * (Q[c * N3 + i] * g[j] + g[i] * Q[c * N3 + j]);
    free(g);
  }
  HM_T(PetscRandomDestroy(&rnd));
  for (int route = 0; route < 4; route++) {
    double win[2] = {ref[2] - 1e-3, ref[9] + 1e-3};
    lam           = run_route(PETSC_COMM_WORLD, &m2, MATBAIJ, route == 0 ? HM_MODES_FULL : (route == 3 ? HM_MODES_WINDOW : HM_MODES_LOWEST), route == 2 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_KRYLOVSCHUR, 10, route == 3 ? win : NULL, &n, &kk, PETSC_FALSE);
    assert_int_equal(kk, 6);
    if (route == 0) assert_int_equal(n, nref);
    for (PetscInt i = 0; i < n; i++) {
      double r0 = ref[i + (route == 3 ? 2 : 0)];
      if (fabs(lam[i] - r0) > 1e-9 * hm_max_abs(nref, ref)) fail_msg("route %d mode %d: %.15g vs unperturbed %.15g", route, (int)i, lam[i], r0);
    }
    free(lam);
  }
  /* modes orthogonal to the rigid-body space, in the library's own output */
  {
    HMModes            mm;
    Mat                H  = mol_matrix(PETSC_COMM_WORLD, &m2, MATBAIJ), X, Xs;
    HMSystem           sw = mol_system(PETSC_COMM_WORLD, &m2, PETSC_FALSE);
    PetscInt           nx;
    const PetscScalar *xa;
    HM_T(HMModesCreate(PETSC_COMM_WORLD, &mm));
    HM_T(HMModesSetType(mm, HM_MODES_FULL));
    HM_T(HMModesCompute(mm, H, sw));
    HM_T(HMModesGetVectors(mm, &X));
    HM_T(MatGetSize(X, NULL, &nx));
    assert_int_equal(nx, nref);
    HM_T(MatCreateRedundantMatrix(X, 0, PETSC_COMM_SELF, MAT_INITIAL_MATRIX, &Xs));
    HM_T(MatDenseGetArrayRead(Xs, &xa));
    for (PetscInt j = 0; j < nx; j++) {
      double nn = 0;
      for (PetscInt i = 0; i < N3; i++) nn += xa[j * N3 + i] * xa[j * N3 + i];
      assert_true(fabs(nn - 1) < 1e-12);
      for (PetscInt c = 0; c < k; c++) {
        double d = 0;
        for (PetscInt i = 0; i < N3; i++) d += Q[c * N3 + i] * xa[j * N3 + i];
        assert_true(fabs(d) < 1e-12);
      }
    }
    HM_T(MatDenseRestoreArrayRead(Xs, &xa));
    HM_T(MatDestroy(&Xs));
    HM_T(HMModesDestroy(&mm));
    HM_T(MatDestroy(&H));
    HM_T(HMSystemDestroy(&sw));
  }
  /* periodic: only translations are removed */
  {
    double  *rp = malloc(sizeof(double) * (size_t)N3);
    PetscInt np = ref_spectrum(&m, mass, PETSC_TRUE, rp, &kk);
    assert_int_equal(kk, 3);
    lam = run_route(PETSC_COMM_WORLD, &m, MATBAIJ, HM_MODES_FULL, 0, 0, NULL, &n, &kk, PETSC_TRUE);
    assert_int_equal(kk, 3);
    assert_int_equal(n, np);
    for (PetscInt i = 0; i < n; i++) assert_true(fabs(lam[i] - rp[i]) <= 1e-10 * hm_max_abs(np, rp));
    free(lam);
    free(rp);
  }
  free(Q);
  free(ref);
  free(m2.H);
  mol_free(&m);
  HM_T(HMSystemDestroy(&sys));
}

/* ------------------------------------------------------------------------------------------------ */
/* Rank-count invariance: the same analysis on PETSC_COMM_WORLD (run by meson under mpiexec -n 3 as well)
   and on a single rank agree to 1e-10 relative (only the summation order differs).                    */

static void test_rank_invariance(void **state)
{
  Mol m;
  (void)state;
  golden_mol("small", "mol21", &m);
  for (int route = 0; route < 4; route++) {
    PetscInt      n1, nw, k;
    double        win[2] = {-0.05, 0.1};
    HMModesType   t      = route == 0 ? HM_MODES_FULL : (route == 3 ? HM_MODES_WINDOW : HM_MODES_LOWEST);
    HMModesSolver s      = route == 2 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_KRYLOVSCHUR;
    double       *a      = run_route(PETSC_COMM_SELF, &m, MATBAIJ, t, s, 12, win, &n1, &k, PETSC_FALSE);
    double       *b      = run_route(PETSC_COMM_WORLD, &m, MATSBAIJ, t, s, 12, win, &nw, &k, PETSC_FALSE);
    assert_int_equal(n1, nw);
    assert_true(n1 > 0);
    for (PetscInt i = 0; i < n1; i++)
      if (fabs(a[i] - b[i]) > 1e-10 * hm_max_abs(n1, a)) fail_msg("route %d mode %d: %.15g (1 rank) vs %.15g", route, (int)i, a[i], b[i]);
    free(a);
    free(b);
  }
  mol_free(&m);
}

/* A wavenumber window (negative = imaginary) selects exactly the modes whose cm^-1 lie inside; a single atom
   has no vibrations on any route. */
static void test_window_cm1_and_single_atom(void **state)
{
  Mol      m;
  PetscInt n, k, nf;
  double  *full, *wi, lo, hi;
  (void)state;
  golden_mol("default", "mol13", &m);
  full = run_route(PETSC_COMM_WORLD, &m, MATBAIJ, HM_MODES_FULL, 0, 0, NULL, &nf, &k, PETSC_FALSE);
  lo   = 0.5 * (HMModesEigenvalueToWavenumber(full[3]) + HMModesEigenvalueToWavenumber(full[4]));
  hi   = 0.5 * (HMModesEigenvalueToWavenumber(full[20]) + HMModesEigenvalueToWavenumber(full[21]));
  assert_true(lo < 0 && hi > 0); /* the window straddles imaginary and real modes */
  {
    HMModes       mm;
    Mat           H   = mol_matrix(PETSC_COMM_WORLD, &m, MATAIJ);
    HMSystem      sys = mol_system(PETSC_COMM_WORLD, &m, PETSC_FALSE);
    const double *lam;
    char          opt[256];
    snprintf(opt, sizeof(opt), "-modes window -window_cm1 %.17g,%.17g", lo, hi);
    HM_T(PetscOptionsInsertString(NULL, opt));
    HM_T(HMModesCreate(PETSC_COMM_WORLD, &mm));
    HM_T(HMModesSetFromOptions(mm));
    HM_T(PetscOptionsClearValue(NULL, "-modes"));
    HM_T(PetscOptionsClearValue(NULL, "-window_cm1"));
    HM_T(HMModesCompute(mm, H, sys));
    HM_T(HMModesGetEigenvalues(mm, &n, &lam, NULL));
    assert_int_equal(n, 17);
    for (PetscInt i = 0; i < n; i++) assert_true(fabs(lam[i] - full[4 + i]) <= 1e-9 * hm_max_abs(nf, full));
    HM_T(HMModesDestroy(&mm));
    HM_T(MatDestroy(&H));
    HM_T(HMSystemDestroy(&sys));
  }
  free(full);
  mol_free(&m);

  m.n    = 1;
  m.Z    = malloc(sizeof(int));
  m.pos  = calloc(3, sizeof(double));
  m.H    = calloc(9, sizeof(double));
  m.Z[0] = 8;
  m.H[0] = m.H[4] = m.H[8] = 0.3; /* a lone atom's Hessian (violates the sum rule) is all rigid-body */
  for (int route = 0; route < 4; route++) {
    double win[2] = {-1, 1};
    wi            = run_route(PETSC_COMM_WORLD, &m, MATBAIJ, route == 0 ? HM_MODES_FULL : (route == 3 ? HM_MODES_WINDOW : HM_MODES_LOWEST), route == 2 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_KRYLOVSCHUR, 5, win, &n, &k, PETSC_FALSE);
    assert_int_equal(k, 3);
    assert_int_equal(n, 0);
    free(wi);
  }
  mol_free(&m);
}

/* ------------------------------------------------------------------------------------------------ */
/* thermochemistry, JSON and files                                                                    */

static void test_thermo_json_files(void **state)
{
  Mol           m;
  HMModes       mm;
  Mat           H;
  HMSystem      sys;
  HMThermo      th;
  PetscInt      n;
  const double *lam, *cm1;
  double        zpe = 0, F = 0, S = 0, Cv = 0, U = 0, T = 250.0, kB = 1.380649e-23 / 1.602176634e-19, hc = 6.62607015e-34 * 299792458.0 * 100 / 1.602176634e-19;
  PetscInt      nreal = 0;
  char          dir[] = "/tmp/hm_eigen_XXXXXX", path[4][64], opt[1024];
  PetscMPIInt   rank;
  (void)state;

  assert_int_equal(MPI_Comm_rank(PETSC_COMM_WORLD, &rank), MPI_SUCCESS);
  if (rank == 0) assert_non_null(mkdtemp(dir));
  assert_int_equal(MPI_Bcast(dir, (int)sizeof(dir), MPI_CHAR, 0, PETSC_COMM_WORLD), MPI_SUCCESS);
  snprintf(path[0], sizeof(path[0]), "%s/m.molden", dir);
  snprintf(path[1], sizeof(path[1]), "%s/m.nmd", dir);
  snprintf(path[2], sizeof(path[2]), "%s/m.xyz", dir);
  snprintf(path[3], sizeof(path[3]), "%s/m.txt", dir);
  snprintf(opt, sizeof(opt), "-modes full -temperature 250 -modes_molden %s -modes_nmd %s -modes_xyz %s -modes_table %s", path[0], path[1], path[2], path[3]);
  HM_T(PetscOptionsInsertString(NULL, opt));

  demo_mol(5, &m); /* one imaginary mode */
  H   = mol_matrix(PETSC_COMM_WORLD, &m, MATBAIJ);
  sys = mol_system(PETSC_COMM_WORLD, &m, PETSC_FALSE);
  HM_T(HMModesCreate(PETSC_COMM_WORLD, &mm));
  HM_T(HMModesSetFromOptions(mm));
  HM_T(PetscOptionsClearValue(NULL, "-modes"));
  HM_T(PetscOptionsClearValue(NULL, "-temperature"));
  HM_T(PetscOptionsClearValue(NULL, "-modes_molden"));
  HM_T(PetscOptionsClearValue(NULL, "-modes_nmd"));
  HM_T(PetscOptionsClearValue(NULL, "-modes_xyz"));
  HM_T(PetscOptionsClearValue(NULL, "-modes_table"));
  HM_T(HMModesCompute(mm, H, sys));
  HM_T(HMModesGetEigenvalues(mm, &n, &lam, &cm1));
  assert_int_equal(n, 3 * m.n - 6);
  HM_T(HMModesGetThermo(mm, &th));
  assert_true(th.available);
  assert_int_equal(th.nimaginary, 1);

  /* independent evaluation of the textbook formulas; agreement to round-off (1e-12 relative) */
  for (PetscInt i = 0; i < n; i++) {
    double e, x;
    if (cm1[i] <= 0) continue;
    nreal++;
    e = hc * cm1[i];
    x = e / (kB * T);
    zpe += e / 2;
    U += e / 2 + e / (exp(x) - 1);
    F += e / 2 + kB * T * log(1 - exp(-x));
    S += kB * (x / (exp(x) - 1) - log(1 - exp(-x)));
    Cv += kB * x * x * exp(x) / ((exp(x) - 1) * (exp(x) - 1));
  }
  assert_int_equal(th.nused, nreal);
  assert_true(fabs(th.temperature - T) < 1e-12);
  assert_true(fabs(th.zpe - zpe) < 1e-12 * zpe);
  assert_true(fabs(th.energy - U) < 1e-12 * U);
  assert_true(fabs(th.free_energy - F) < 1e-12 * fabs(F));
  assert_true(fabs(th.entropy - S) < 1e-11 * S);
  assert_true(fabs(th.heat_capacity - Cv) < 1e-11 * Cv);
  /* thermodynamic consistency: F = U - T S */
  assert_true(fabs(th.free_energy - (th.energy - T * th.entropy)) < 1e-12 * th.energy);
  /* a realistic molecule (1000-3800 cm^-1 stretches) has a ZPE of a few eV */
  assert_true(th.zpe > 1.0 && th.zpe < 10.0);

  /* JSON */
  {
    json_t *root = json_object(), *f, *e, *mo;
    HM_T(HMModesToJSON(mm, root));
    f  = json_object_get(root, "frequencies_cm1");
    e  = json_object_get(root, "eigenvalues");
    mo = json_object_get(root, "modes");
    assert_true(json_is_array(f) && json_is_array(e) && json_is_object(mo));
    assert_int_equal(json_array_size(f), n);
    for (PetscInt i = 0; i < n; i++) {
      assert_true(json_real_value(json_array_get(f, i)) == cm1[i]);
      assert_true(json_real_value(json_array_get(e, i)) == lam[i]);
    }
    assert_int_equal(json_integer_value(json_object_get(mo, "n_imaginary")), 1);
    assert_true(json_is_true(json_object_get(mo, "n_imaginary_exact")));
    assert_int_equal(json_integer_value(json_object_get(mo, "n_rigid_projected")), 6);
    assert_true(fabs(json_real_value(json_object_get(json_object_get(mo, "thermo"), "zpe_eV")) - th.zpe) == 0);
    json_decref(root);
  }

  HM_T(HMModesWriteFiles(mm, sys));
  if (rank == 0) { /* the table: '#' comment lines, then one numeric row per mode (numpy.loadtxt reads it), imaginary as negative wavenumbers */
    FILE *fp = fopen(path[3], "r");
    char  line[512];
    int   rows = 0, nneg = 0;
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
      int    k;
      double l, w, r;
      if (line[0] == '#') continue;
      assert_int_equal(sscanf(line, "%d %lf %lf %lf", &k, &l, &w, &r), 4);
      assert_int_equal(k, rows + 1);
      assert_true(fabs(w - cm1[rows]) <= 1e-4 * PetscMax(1.0, fabs(cm1[rows]))); /* printed with 4 decimals */
      if (w < 0) nneg++;
      rows++;
    }
    fclose(fp);
    assert_int_equal(rows, (int)n);
    assert_int_equal(nneg, 1);
  }
  if (rank == 0) {
    FILE    *fp;
    char     line[65536];
    PetscInt nvib = 0, nfreq = -1, nmode = 0, nframes = 0, ncoord = 0;
    double   f0      = 0;
    int      section = 0;
    /* Molden: one FREQ entry and one block per mode, FR-COORD in bohr */
    fp = fopen(path[0], "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
      if (strstr(line, "[FREQ]")) {
        section = 1;
        nfreq   = 0;
        continue;
      }
      if (line[0] == '[') {
        section = strstr(line, "[FR-COORD]") ? 2 : 0;
        continue;
      }
      if (section == 1) {
        if (nfreq == 0) f0 = atof(line);
        nfreq++;
      }
      if (section == 2 && ncoord == 0) {
        double x;
        assert_int_equal(sscanf(line, "%*s %lf", &x), 1);
        assert_true(fabs(x * 0.529177210903 - m.pos[0]) < 1e-10);
        ncoord++;
      }
      if (strstr(line, "vibration")) nvib++;
    }
    fclose(fp);
    assert_int_equal(nfreq, n);
    assert_int_equal(nvib, n);
    assert_true(fabs(f0 - cm1[0]) < 1e-6);
    assert_true(f0 < 0);
    /* NMD: coordinates and n mode lines of 3N numbers */
    fp = fopen(path[1], "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
      if (!strncmp(line, "mode ", 5)) {
        int   cnt = 0;
        char *tok = strtok(line + 5, " \n");
        for (; tok; tok = strtok(NULL, " \n")) {
          /* index, scale factor (RMS amplitude in A: finite and positive, imaginary modes too), 3N components */
          if (cnt == 1) assert_true(atof(tok) > 0 && atof(tok) < 10);
          cnt++;
        }
        assert_int_equal(cnt, 2 + 3 * m.n);
        nmode++;
      }
    }
    fclose(fp);
    assert_int_equal(nmode, n);
    /* extended XYZ: n frames of N atoms */
    fp = fopen(path[2], "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
      assert_int_equal(atoi(line), m.n);
      assert_non_null(fgets(line, sizeof(line), fp));
      assert_non_null(strstr(line, "Properties=species:S:1:pos:R:3:mode:R:3"));
      for (PetscInt a = 0; a < m.n; a++) assert_non_null(fgets(line, sizeof(line), fp));
      nframes++;
    }
    fclose(fp);
    assert_int_equal(nframes, n);
    fp = fopen(path[3], "r");
    assert_non_null(fp);
    fclose(fp);
    /* nothing temporary left behind */
    {
      char cmd[PETSC_MAX_PATH_LEN + 64];
      snprintf(cmd, sizeof(cmd), "ls %s | grep -c tmp > /dev/null", dir);
      assert_int_not_equal(system(cmd), 0);
      snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
      assert_int_equal(system(cmd), 0);
    }
  }
  /* writing into a missing folder fails cleanly on every rank */
  {
    PetscErrorCode ierr;
    HM_T(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    ierr = HMModesWriteMolden(mm, sys, "/nonexistent-dir/x.molden");
    HM_T(PetscPopErrorHandler());
    assert_int_equal(ierr, PETSC_ERR_FILE_OPEN);
  }
  HM_T(HMModesDestroy(&mm));
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
  mol_free(&m);
}

/* ------------------------------------------------------------------------------------------------ */
/* imaginary-mode counts over the whole spectrum, not only over the reported modes                    */

static void count_route(MPI_Comm comm, const Mol *mol, HMModesType type, HMModesSolver solver, PetscInt K, const char *icntl14, PetscInt *nimag, PetscBool *exact)
{
  HMModes  m;
  Mat      H   = mol_matrix(comm, mol, MATBAIJ);
  HMSystem sys = mol_system(comm, mol, PETSC_FALSE);

  HM_T(HMModesCreate(comm, &m));
  HM_T(HMModesSetType(m, type));
  HM_T(HMModesSetSolver(m, solver));
  HM_T(HMModesSetNumModes(m, K));
  if (icntl14) {
    HM_T(PetscOptionsSetValue(NULL, "-modes_mumps_icntl_14", icntl14));
    HM_T(HMModesSetFromOptions(m));
    HM_T(PetscOptionsClearValue(NULL, "-modes_mumps_icntl_14"));
  }
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetNumImaginary(m, nimag, exact));
  HM_T(HMModesDestroy(&m));
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
}

/* H - s M shifts every projected eigenvalue by -s: with s between modes 7 and 8 exactly 7 are imaginary. Asking
   for 3 lowest modes, the direct route still counts all 7 (MUMPS inertia, also with the smallest starting
   workspace), LOBPCG says "at least 3"; asking for 10, the list itself reaches lambda >= 0. */
static void test_imaginary_count(void **state)
{
  Mol           m;
  PetscInt      nf, k, N3, ni;
  PetscBool     ex;
  double       *full, s;
  const double *mass;
  HMSystem      sys;

  (void)state;
  golden_mol("small", "mol21", &m);
  full = run_route(PETSC_COMM_WORLD, &m, MATBAIJ, HM_MODES_FULL, 0, 0, NULL, &nf, &k, PETSC_FALSE);
  assert_true(nf > 12 && full[7] > full[6]);
  s    = 0.5 * (full[6] + full[7]);
  N3   = 3 * m.n;
  sys  = mol_system(PETSC_COMM_SELF, &m, PETSC_FALSE);
  mass = sys_masses(sys);
  for (PetscInt i = 0; i < N3; i++) m.H[i * N3 + i] -= s * mass[i / 3];
  HM_T(HMSystemDestroy(&sys));

  count_route(PETSC_COMM_WORLD, &m, HM_MODES_FULL, 0, 1, NULL, &ni, &ex);
  assert_int_equal(ni, 7);
  assert_true(ex);
  count_route(PETSC_COMM_WORLD, &m, HM_MODES_LOWEST, HM_MODES_SOLVER_KRYLOVSCHUR, 3, NULL, &ni, &ex);
  assert_int_equal(ni, 7);
  assert_true(ex);
  count_route(PETSC_COMM_WORLD, &m, HM_MODES_LOWEST, HM_MODES_SOLVER_KRYLOVSCHUR, 3, "0", &ni, &ex);
  assert_int_equal(ni, 7);
  assert_true(ex);
  count_route(PETSC_COMM_WORLD, &m, HM_MODES_LOWEST, HM_MODES_SOLVER_KRYLOVSCHUR, 10, NULL, &ni, &ex);
  assert_int_equal(ni, 7);
  assert_true(ex);
  /* 3 modes asked for: a lower bound. (With a block of exactly 3 vectors LOBPCG stagnated at 2 converged on 3 ranks
     in about one run of three; the block now carries guard vectors beyond the modes asked for.) */
  count_route(PETSC_COMM_WORLD, &m, HM_MODES_LOWEST, HM_MODES_SOLVER_LOBPCG, 3, NULL, &ni, &ex);
  assert_int_equal(ni, 3);
  assert_false(ex);
  count_route(PETSC_COMM_WORLD, &m, HM_MODES_LOWEST, HM_MODES_SOLVER_LOBPCG, 10, NULL, &ni, &ex);
  assert_int_equal(ni, 7);
  assert_true(ex);
  free(full);
  mol_free(&m);
}

/* HMModesGetStats / HMModesGetMethod: the cost figures hipmace-bench -bench_modes prints. */
static void test_stats(void **state)
{
  Mol          mol;
  HMModesStats st;
  const char  *method;

  (void)state;
  golden_mol("small", "mol21", &mol);
  for (int route = 0; route < 3; route++) {
    HMModes  m;
    Mat      H   = mol_matrix(PETSC_COMM_WORLD, &mol, MATBAIJ);
    HMSystem sys = mol_system(PETSC_COMM_WORLD, &mol, PETSC_FALSE);
    HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
    HM_T(HMModesSetType(m, route == 2 ? HM_MODES_FULL : HM_MODES_LOWEST));
    HM_T(HMModesSetSolver(m, route == 0 ? HM_MODES_SOLVER_LOBPCG : HM_MODES_SOLVER_DIRECT));
    HM_T(HMModesSetNumModes(m, 5));
    HM_T(HMModesCompute(m, H, sys));
    HM_T(HMModesGetStats(m, &st));
    HM_T(HMModesGetMethod(m, &method));
    assert_true(strlen(method) > 0);
    assert_true(st.seconds >= 0 && st.setup_seconds >= 0);
    assert_int_equal(st.pcapplies, 0); /* no preconditioner below 600 vibrational degrees of freedom */
    if (route < 2) assert_true(st.iterations >= 1);
    else assert_int_equal(st.iterations, 0);
    /* the residual check alone multiplies every reported mode once */
    assert_true(st.matvecs >= (route == 2 ? 57 : 5) + (route == 0 ? st.iterations : 0));
    HM_T(HMModesDestroy(&m));
    HM_T(HMSystemDestroy(&sys));
    HM_T(MatDestroy(&H));
  }
  mol_free(&mol);
}

/* The linearity rule (src/eigen/project.c): a triatomic bent by 0.2 degrees (smallest/largest principal moment
   8e-7) is linear, 5 rigid-body directions and 3N-5 modes; bent by 1 degree (2e-5) or 10 it is not (6, 3N-6).
   Any Hessian will do for the count: an SPD diagonal one. */
static void test_nearly_linear(void **state)
{
  const double angles[3] = {179.8, 179.0, 170.0};
  const int    want[3]   = {5, 6, 6};
  (void)state;
  for (int c = 0; c < 3; c++) {
    Mol      m;
    double   a = 0.5 * angles[c] * PETSC_PI / 180.0, d = 1.16;
    HMModes  mm;
    HMSystem sys;
    Mat      H;
    PetscInt nr, n;
    m.n    = 3;
    m.Z    = malloc(3 * sizeof(int));
    m.pos  = calloc(9, sizeof(double));
    m.H    = calloc(81, sizeof(double));
    m.Z[0] = 6;
    m.Z[1] = m.Z[2] = 8;
    m.pos[3]        = d * sin(a);
    m.pos[4]        = d * cos(a);
    m.pos[6]        = -d * sin(a);
    m.pos[7]        = d * cos(a);
    for (int i = 0; i < 9; i++) m.H[i * 9 + i] = 1.0 + i;
    H   = mol_matrix(PETSC_COMM_WORLD, &m, MATBAIJ);
    sys = mol_system(PETSC_COMM_WORLD, &m, PETSC_FALSE);
    HM_T(HMModesCreate(PETSC_COMM_WORLD, &mm));
    HM_T(HMModesSetType(mm, HM_MODES_FULL));
    HM_T(HMModesCompute(mm, H, sys));
    HM_T(HMModesGetNumRigid(mm, &nr));
    HM_T(HMModesGetEigenvalues(mm, &n, NULL, NULL));
    assert_int_equal(nr, want[c]);
    assert_int_equal(n, 9 - want[c]);
    HM_T(HMModesDestroy(&mm));
    HM_T(HMSystemDestroy(&sys));
    HM_T(MatDestroy(&H));
    mol_free(&m);
  }
}

/* A long object is not linear when its atoms lie off its axis: 200 atoms on a helix of radius 1.5 A, 12 A rise per
   atom (2,388 A long; smallest/largest principal moment 4.7e-6, below the ratio rule's 1e-5, but 1.5 A rms off the
   axis): 6 rigid-body directions and 3N-6 modes. The same atoms on the axis (radius 0.001 A) stay linear (5). */
static void test_long_helix_not_linear(void **state)
{
  const double radius[2] = {1.5, 1e-3};
  const int    want[2]   = {6, 5};
  const int    N         = 200;
  (void)state;
  for (int c = 0; c < 2; c++) {
    Mol      m;
    HMModes  mm;
    HMSystem sys;
    Mat      H;
    PetscInt nr, n;
    m.n   = N;
    m.Z   = malloc((size_t)N * sizeof(int));
    m.pos = calloc((size_t)(3 * N), sizeof(double));
    m.H   = calloc((size_t)(9 * N * N), sizeof(double));
    for (int i = 0; i < N; i++) {
      const double t   = i * 100.0 * PETSC_PI / 180.0;
      m.Z[i]           = 6;
      m.pos[3 * i]     = radius[c] * cos(t);
      m.pos[3 * i + 1] = radius[c] * sin(t);
      m.pos[3 * i + 2] = 12.0 * i;
    }
    for (int i = 0; i < 3 * N; i++) m.H[i * 3 * N + i] = 1.0 + 0.01 * i;
    H   = mol_matrix(PETSC_COMM_WORLD, &m, MATBAIJ);
    sys = mol_system(PETSC_COMM_WORLD, &m, PETSC_FALSE);
    HM_T(HMModesCreate(PETSC_COMM_WORLD, &mm));
    HM_T(HMModesSetType(mm, HM_MODES_LOWEST));
    HM_T(HMModesSetSolver(mm, HM_MODES_SOLVER_DIRECT));
    HM_T(HMModesSetNumModes(mm, 4));
    HM_T(HMModesCompute(mm, H, sys));
    HM_T(HMModesGetNumRigid(mm, &nr));
    HM_T(HMModesGetEigenvalues(mm, &n, NULL, NULL));
    assert_int_equal(nr, want[c]);
    assert_int_equal(n, 4);
    HM_T(HMModesDestroy(&mm));
    HM_T(HMSystemDestroy(&sys));
    HM_T(MatDestroy(&H));
    mol_free(&m);
  }
}

HM_TEST_MAIN_OF(test_constant, test_full_golden, test_full_demo_and_types, test_analytic, test_projection, test_routes_agree, test_rank_invariance, test_window_cm1_and_single_atom, test_nearly_linear, test_long_helix_not_linear, test_thermo_json_files, test_imaginary_count, test_stats)

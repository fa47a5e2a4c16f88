/* Rigid-block (RTB) reduction of the lowest modes (demo model): RTB eigenvalues bound the exact ones from above and
   their modes overlap the exact ones; RTB-refined modes equal the dense spectrum; residue blocks from a PDB file. */
#include "hmtest.h"
#include <hipmace/eigen.h>
#include <hipmace/builder.h>

static PetscErrorCode build_water(MPI_Comm comm, HMSystem *s)
{
  return HMBuildWaterBox(comm, 150, 1, s);
}

static PetscErrorCode build_helix(MPI_Comm comm, HMSystem *s)
{
  return HMBuildPeptide(comm, 25, "helix", PETSC_TRUE, s);
}

static PetscErrorCode build_molecule(MPI_Comm comm, HMSystem *s)
{
  return HMBuildPeptide(comm, 2, "strand", PETSC_TRUE, s);
}

#define HM_RTB_PDB "rtb_helix_residues.pdb"

/* The helix written by the test as a PDB file, atoms grouped 10 to a residue (chain A, residues 1..). */
static PetscErrorCode build_pdb(MPI_Comm comm, HMSystem *s)
{
  return HMSystemLoad(comm, HM_RTB_PDB, s);
}

static void write_pdb(void)
{
  HMSystem      h;
  PetscInt      n;
  const double *x;
  const int    *Z;
  PetscMPIInt   rank;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  if (rank == 0) {
    FILE *fp = fopen(HM_RTB_PDB, "w");
    assert_non_null(fp);
    HM_T(build_helix(PETSC_COMM_SELF, &h));
    HM_T(HMSystemGetSize(h, &n));
    HM_T(HMSystemGetPositions(h, &x));
    HM_T(HMSystemGetAtomicNumbers(h, &Z));
    for (PetscInt i = 0; i < n; i++) {
      const char *el = HMElementSymbol(Z[i]);
      fprintf(fp, "ATOM  %5d %-4s ALA A%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s\n", (int)(i + 1), el, (int)(i / 10 + 1), x[3 * i], x[3 * i + 1], x[3 * i + 2], el);
    }
    fprintf(fp, "END\n");
    fclose(fp);
    HM_T(HMSystemDestroy(&h));
  }
  MPI_Barrier(PETSC_COMM_WORLD);
}

typedef struct {
  PetscInt     n, nimag;
  PetscBool    exact;
  double      *lam;
  Mat          X;
  char         method[192];
  HMModesStats st;
} Result;

static void solve(Mat H, HMSystem sys, HMModesType type, HMModesSolver solver, HMModesBasis basis, PetscBool refine, PetscInt K, Result *r)
{
  HMModes       m;
  const double *lam;
  const char   *method;
  Mat           X;

  HM_T(HMModesCreate(PETSC_COMM_WORLD, &m));
  HM_T(HMModesSetType(m, type));
  HM_T(HMModesSetSolver(m, solver));
  HM_T(HMModesSetBasis(m, basis));
  HM_T(HMModesSetRTBRefine(m, refine));
  HM_T(HMModesSetNumModes(m, K));
  HM_T(HMModesCompute(m, H, sys));
  HM_T(HMModesGetEigenvalues(m, &r->n, &lam, NULL));
  HM_T(HMModesGetNumImaginary(m, &r->nimag, &r->exact));
  HM_T(HMModesGetVectors(m, &X));
  HM_T(HMModesGetMethod(m, &method));
  HM_T(HMModesGetStats(m, &r->st));
  snprintf(r->method, sizeof(r->method), "%s", method);
  HM_T(MatDuplicate(X, MAT_COPY_VALUES, &r->X));
  r->lam = malloc(sizeof(double) * (size_t)(r->n + 1));
  memcpy(r->lam, lam, sizeof(double) * (size_t)r->n);
  for (PetscInt i = 1; i < r->n; i++) assert_true(lam[i] >= lam[i - 1]);
  HM_T(HMModesDestroy(&m));
}

static void result_free(Result *r)
{
  free(r->lam);
  HM_T(MatDestroy(&r->X));
}

/* Largest |<t, x_j>| over the mass-weighted unit translations t: zero when no rigid translation is in a mode. */
static double translation_content(HMSystem sys, Mat X, PetscInt n)
{
  const double *mass;
  PetscInt      rs, re, N;
  double        worst = 0, M = 0;
  HM_T(HMSystemGetMasses(sys, &mass));
  HM_T(HMSystemGetSize(sys, &N));
  for (PetscInt a = 0; a < N; a++) M += mass[a];
  HM_T(MatGetOwnershipRange(X, &rs, &re));
  for (PetscInt j = 0; j < n; j++) {
    Vec           x;
    const double *xa;
    double        d[3] = {0, 0, 0};
    HM_T(MatDenseGetColumnVecRead(X, j, &x));
    HM_T(VecGetArrayRead(x, &xa));
    for (PetscInt i = rs; i < re; i++) d[i % 3] += PetscSqrtReal(mass[i / 3] / M) * xa[i - rs];
    HM_T(VecRestoreArrayRead(x, &xa));
    HM_T(MatDenseRestoreColumnVecRead(X, j, &x));
    MPI_Allreduce(MPI_IN_PLACE, d, 3, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    for (int k = 0; k < 3; k++) worst = PetscMax(worst, PetscAbsReal(d[k]));
  }
  return worst;
}

/* Overlap of RTB mode j with the span of the lowest nf exact modes: || Xf^T x_j ||. */
static void overlaps(Mat Xf, PetscInt nf, Mat Xr, PetscInt nr, double *ov)
{
  Mat           C;
  const double *c;
  PetscInt      lda;
  Mat           Xs;
  HM_T(MatDenseGetSubMatrix(Xf, PETSC_DECIDE, PETSC_DECIDE, 0, nf, &Xs));
  HM_T(MatTransposeMatMult(Xs, Xr, MAT_INITIAL_MATRIX, PETSC_DEFAULT, &C));
  HM_T(MatDenseRestoreSubMatrix(Xf, &Xs));
  {
    Mat Cl;
    HM_T(MatCreateRedundantMatrix(C, 0, PETSC_COMM_SELF, MAT_INITIAL_MATRIX, &Cl));
    HM_T(MatConvert(Cl, MATSEQDENSE, MAT_INPLACE_MATRIX, &Cl));
    HM_T(MatDenseGetLDA(Cl, &lda));
    HM_T(MatDenseGetArrayRead(Cl, &c));
    for (PetscInt j = 0; j < nr; j++) {
      double s = 0;
      for (PetscInt i = 0; i < nf; i++) s += c[i + j * lda] * c[i + j * lda];
      ov[j] = PetscSqrtReal(s);
    }
    HM_T(MatDenseRestoreArrayRead(Cl, &c));
    HM_T(MatDestroy(&Cl));
  }
  HM_T(MatDestroy(&C));
}

/* approx: check the unrefined RTB modes; overlap: and require their overlap with the exact ones (a chain molecule,
   whose lowest modes are collective; an unrelaxed water box's lowest modes are single-molecule librations that
   20-atom spatial blocks cannot represent) */
static void check_system(const char *what, PetscErrorCode (*build)(MPI_Comm, HMSystem *), PetscInt K, PetscBool approx, PetscBool overlap)
{
  Mat         H;
  HMSystem    sys;
  Result      full, rtb, ref, it;
  PetscMPIInt size;
  double      scale;

  hm_demo_hessian(build, &H, &sys);
  solve(H, sys, HM_MODES_FULL, HM_MODES_SOLVER_AUTO, HM_MODES_BASIS_FULL, PETSC_FALSE, K, &full);
  scale = hm_max_abs(full.n, full.lam);
  /* refined: the dense eigenvalues to 1e-8 of the spectrum scale (the tolerance of the other iterative routes) */
  solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_AUTO, HM_MODES_BASIS_RTB, PETSC_TRUE, K, &ref);
  assert_int_equal(ref.n, K);
  for (PetscInt i = 0; i < K; i++)
    if (fabs(ref.lam[i] - full.lam[i]) > 1e-8 * scale) fail_msg("%s RTB-refined mode %d: %.15g vs full %.15g", what, (int)i, ref.lam[i], full.lam[i]);
  assert_true(translation_content(sys, ref.X, ref.n) < 1e-8);
  if (approx) {
    double ov[64], omin = 1;
    solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_AUTO, HM_MODES_BASIS_RTB, PETSC_FALSE, K, &rtb);
    assert_true(rtb.n == K && K <= 16);
    assert_true(strstr(rtb.method, "RTB, approximate") != NULL);
    assert_false(rtb.exact);
    assert_true(translation_content(sys, rtb.X, rtb.n) < 1e-8);
    /* Ritz values of a subspace: each at or above the exact eigenvalue of the same rank (Cauchy interlacing) */
    for (PetscInt i = 0; i < K; i++)
      if (rtb.lam[i] < full.lam[i] - 1e-9 * scale) fail_msg("%s RTB mode %d: %.15g below the exact %.15g", what, (int)i, rtb.lam[i], full.lam[i]);
    overlaps(full.X, 4 * K, rtb.X, K, ov);
    for (PetscInt j = 0; j < K; j++) omin = PetscMin(omin, ov[j]);
    print_message("%s: RTB %s; lowest %.6g vs exact %.6g; overlap with the lowest %d exact modes: min %.3f (mode 1 %.3f)\n", what, rtb.method, rtb.lam[0], full.lam[0], (int)(4 * K), omin, ov[0]);
    /* the RTB subspace keeps the collective low-frequency motions: every RTB mode lies mostly (> 70% of its norm
       squared) in the span of the 4K lowest exact modes */
    for (PetscInt j = 0; j < K && overlap; j++)
      if (!(ov[j] * ov[j] > 0.7)) fail_msg("%s RTB mode %d: overlap %.3f with the lowest %d exact modes", what, (int)j, ov[j], (int)(4 * K));
    {
      /* each rank only the atoms of its rows (as the driver passes them): blocks and projector built without
         gathering the structure give the same blocks and the same reduced problem. On 7 ranks the RTB solve is not
         reproducible to the last bit from run to run (the same build, the same input: ~1e-14 relative), so rounding
         is allowed: 1e-10 of the spectrum scale is far above it and far below what one atom in a wrong block
         changes */
      HMSystem mine;
      PetscInt rs, re;
      Result   dist;
      HM_T(MatGetOwnershipRange(H, &rs, &re));
      HM_T(HMSystemRedistribute(PETSC_COMM_WORLD, sys, rs / 3, (re - rs) / 3, &mine));
      {
        PetscBool   d;
        PetscMPIInt np;
        MPI_Comm_size(PETSC_COMM_WORLD, &np);
        HM_T(HMSystemGetDistribution(mine, &d, NULL, NULL));
        assert_true(d == (PetscBool)(np > 1)); /* several ranks: the distributed route */
      }
      solve(H, mine, HM_MODES_LOWEST, HM_MODES_SOLVER_AUTO, HM_MODES_BASIS_RTB, PETSC_FALSE, K, &dist);
      assert_int_equal(dist.n, rtb.n);
      assert_string_equal(dist.method, rtb.method); /* the same number of blocks and reduced dof */
      for (PetscInt i = 0; i < K; i++)
        if (fabs(dist.lam[i] - rtb.lam[i]) > 1e-10 * scale) fail_msg("%s RTB mode %d from the distributed structure: %.17g vs %.17g", what, (int)i, dist.lam[i], rtb.lam[i]);
      overlaps(rtb.X, K, dist.X, K, ov);
      for (PetscInt j = 0; j < K; j++)
        if (!(ov[j] > 1 - 1e-8)) fail_msg("%s RTB mode %d from the distributed structure: overlap %.12f with the modes of the whole", what, (int)j, ov[j]);
      result_free(&dist);
      HM_T(HMSystemDestroy(&mine));
    }
    result_free(&rtb);
  }
  /* the iterations refinement saves, against the iterative route from its default start (one rank only: CI time) */
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  if (size > 1) it = ref;
  else solve(H, sys, HM_MODES_LOWEST, HM_MODES_SOLVER_ITERATIVE, HM_MODES_BASIS_FULL, PETSC_FALSE, K, &it);
  print_message("%s: refined %s: %d iterations, %d products, %d V-cycles; iterative from random: %d, %d, %d\n", what, ref.method, (int)ref.st.iterations, (int)ref.st.matvecs, (int)ref.st.pcapplies, (int)it.st.iterations, (int)it.st.matvecs, (int)it.st.pcapplies);
  if (size == 1) result_free(&it);
  result_free(&full);
  result_free(&ref);
  HM_T(HMSystemDestroy(&sys));
  HM_T(MatDestroy(&H));
}

static void test_molecule(void **state)
{
  (void)state;
  check_system("dipeptide", build_molecule, 6, PETSC_FALSE, PETSC_FALSE);
}

static void test_water(void **state)
{
  (void)state;
  check_system("water 450", build_water, 8, PETSC_TRUE, PETSC_FALSE);
}

static void test_helix(void **state)
{
  (void)state;
  check_system("helix ala25", build_helix, 8, PETSC_TRUE, PETSC_TRUE);
}

static void test_pdb_residues(void **state)
{
  (void)state;
  write_pdb();
  check_system("helix from PDB, 10-atom residues", build_pdb, 8, PETSC_TRUE, PETSC_TRUE);
}

HM_TEST_MAIN_OF(test_molecule, test_water, test_helix, test_pdb_residues)

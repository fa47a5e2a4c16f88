/* Rank-count invariance of the distributed engine (run under mpiexec -n k): energy and Hessian equal the
   one-rank result bit for bit, on molecules, a cluster and periodic cells (with images); so do exact sums. */
#include "hmtest.h"
#include <hipmace/decomp.h>
#include <hipmace/hessian.h>
#include <hipmace/builder.h>
#include <petscmat.h>
#include <unistd.h>
#include <math.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double   urand(void)
{
  return hm_urand(&rng);
}

/* n atoms in the box [0,L)^3 (or a given cell), at least dmin apart (minimum image when periodic). */
static void random_atoms(PetscInt n, const double cell[9], PetscBool periodic, double dmin, int *Z, double *pos)
{
  hm_random_atoms(&rng, n, cell, periodic, dmin, Z, pos);
}

/* Collective check: every rank asserts the same global verdict (no rank left waiting). */
static void assert_all(int ok, const char *what)
{
  int all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, PETSC_COMM_WORLD);
  if (!all) fail_msg("%s", what);
}

/* Set by test_unpruned: the distributed evaluation runs with -hessian_prune false and must still equal
   the pruned one-rank result bit for bit (every block beyond r_max is exactly zero); compare() leaves
   the two block counts in last_blocks (distributed, one rank). */
static PetscBool  dist_unpruned = PETSC_FALSE;
static PetscInt64 last_blocks[2];

/* Forward pass, energy and the Hessian assembled as mtype, with its block count. */
static void forward_assemble(HMEval ev, HMHessian hs, const char *mtype, double *E, Mat *H, PetscInt64 *nb)
{
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, E, NULL));
  HM_T(HMHessianSetMatType(hs, mtype));
  HM_T(HMHessianAssemble(hs, H));
  HM_T(HMHessianGetBlockCount(hs, NULL, nb));
}

static void compare(const char *model_path, PetscInt n, const int *Z, const double *pos, const double *cell, const PetscBool *pbc, const char *mtype)
{
  HMModel     mw, ms;
  HMSystem    sys = NULL;
  HMEval      ew, es;
  HMHessian   hw_, hs_;
  Mat         Hw, Hin, Hs;
  double      Ew, Es;
  PetscMPIInt rank, size;
  PetscInt    lo, hi, diff = 0;
  double      maxd = 0;
  PetscInt64  nbw, nbs;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, cell, pbc, &sys));
  /* reference: one rank (every rank computes it alone) */
  HM_T(HMModelLoad(PETSC_COMM_SELF, model_path, &ms));
  HM_T(hm_eval_create(ms, sys, NULL, &es, &hs_));
  forward_assemble(es, hs_, mtype, &Es, &Hs, &nbs);
  /* distributed */
  HM_T(HMModelLoad(PETSC_COMM_WORLD, model_path, &mw));
  if (dist_unpruned) HM_T(PetscOptionsSetValue(NULL, "-hessian_prune", "false"));
  HM_T(hm_eval_create(mw, rank == 0 ? sys : NULL, NULL, &ew, &hw_));
  if (dist_unpruned) HM_T(PetscOptionsClearValue(NULL, "-hessian_prune"));
  forward_assemble(ew, hw_, mtype, &Ew, &Hw, &nbw);
  HM_T(HMHessianInputOrder(hw_, Hw, &Hin));
  print_message("[%d/%d] %s N=%d %s: energy %.15g vs %.15g, blocks %lld vs %lld\n", rank, size, model_path, (int)n, mtype, Ew, Es, (long long)nbw, (long long)nbs);
  assert_all(Ew == Es, "energy differs from the one-rank value");
  last_blocks[0] = nbw;
  last_blocks[1] = nbs;
  if (dist_unpruned) {
    double hw, hs, hrmax;
    HM_T(HMEvalGetHessianCutoff(ew, &hw));
    HM_T(HMEvalGetHessianCutoff(es, &hs));
    HM_T(HMModelGetCutoffs(mw, NULL, &hrmax, NULL));
    assert_all(hw == hrmax && hs < hw && nbw >= nbs, "unpruned: cutoff or block count not as expected");
  } else assert_all(nbw == nbs, "block count differs from the one-rank value");
  /* bitwise comparison of every owned row of the input-ordered matrix with the one-rank matrix */
  {
    Mat A = Hs;
    if (!strcmp(mtype, MATSBAIJ)) HM_T(MatConvert(Hs, MATAIJ, MAT_INITIAL_MATRIX, &A));
    HM_T(MatGetOwnershipRange(Hin, &lo, &hi));
    for (PetscInt r = lo; r < hi; r++) {
      PetscInt           nc1, nc2;
      const PetscInt    *c1, *c2;
      const PetscScalar *v1, *v2;
      double             d1[4096], d2[4096];
      HM_T(MatGetRow(Hin, r, &nc1, &c1, &v1));
      HM_T(MatGetRow(A, r, &nc2, &c2, &v2));
      /* compare as dense rows (stored zeros may differ between storage formats) */
      for (PetscInt c = 0; c < 3 * n; c++) d1[c] = d2[c] = 0;
      for (PetscInt k = 0; k < nc1; k++) d1[c1[k]] = v1[k];
      for (PetscInt k = 0; k < nc2; k++) d2[c2[k]] = v2[k];
      for (PetscInt c = 0; c < 3 * n; c++) {
        diff += d1[c] != d2[c];
        maxd = PetscMax(maxd, PetscAbsReal(d1[c] - d2[c]));
      }
      HM_T(MatRestoreRow(Hin, r, &nc1, &c1, &v1));
      HM_T(MatRestoreRow(A, r, &nc2, &c2, &v2));
    }
    if (A != Hs) HM_T(MatDestroy(&A));
  }
  if (diff) print_message("[%d] %d Hessian entries differ, by up to %.3g\n", rank, (int)diff, maxd);
  assert_all(diff == 0, "Hessian differs from the one-rank matrix");
  HM_T(MatDestroy(&Hin));
  HM_T(MatDestroy(&Hw));
  HM_T(MatDestroy(&Hs));
  HM_T(HMHessianDestroy(&hw_));
  HM_T(HMHessianDestroy(&hs_));
  HM_T(HMEvalDestroy(&ew));
  HM_T(HMEvalDestroy(&es));
  HM_T(HMModelDestroy(&mw));
  HM_T(HMModelDestroy(&ms));
  HM_T(HMSystemDestroy(&sys));
}

/* A golden fixture's molecule (at most 64 atoms): its atom count, Z and positions (kept open in *fx). */
static PetscInt fixture_molecule(const char *file, HMSafetensors *fx, int Z[64], const double **pos)
{
  char                p[PETSC_MAX_PATH_LEN];
  const HMTensorInfo *zi, *pi;
  hm_golden_path(file, p, sizeof(p));
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, p, fx));
  HM_T(HMSafetensorsGetInfo(*fx, "atomic_numbers", HM_DTYPE_I64, &zi));
  HM_T(HMSafetensorsGetInfo(*fx, "positions", HM_DTYPE_F64, &pi));
  assert_true(zi->numel <= 64);
  for (PetscInt i = 0; i < zi->numel; i++) Z[i] = (int)((const PetscInt64 *)zi->data)[i];
  *pos = (const double *)pi->data;
  return (PetscInt)zi->numel;
}

static void test_fixture_molecule(void **state)
{
  char           m[PETSC_MAX_PATH_LEN];
  HMSafetensors  fx;
  int            Z[64];
  const double  *pos;
  const PetscInt nf = fixture_molecule("fixture_default_mol21.safetensors", &fx, Z, &pos);
  (void)state;
  hm_golden_path("model_default.safetensors", m, sizeof(m));
  compare(m, nf, Z, pos, NULL, NULL, MATBAIJ);
  compare(m, nf, Z, pos, NULL, NULL, MATSBAIJ);
  HM_T(HMSafetensorsClose(&fx));
}

static void test_cluster(void **state)
{
  const PetscInt n      = 90;
  const double   box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10};
  int            Z[90];
  double         pos[270];
  char           m[PETSC_MAX_PATH_LEN];
  (void)state;
  random_atoms(n, box, PETSC_FALSE, 1.1, Z, pos);
  hm_golden_path("model_small.safetensors", m, sizeof(m));
  compare(m, n, Z, pos, NULL, NULL, MATBAIJ);
  snprintf(m, sizeof(m), "%s/demo_hipmace.safetensors", hm_models_dir());
  compare(m, n, Z, pos, NULL, NULL, MATSBAIJ);
}

static void test_periodic(void **state)
{
  /* cells thinner than 2 x hessian_r_max (7 A): several images of a pair, and atoms see their own images */
  const double    ortho[9] = {6.5, 0, 0, 0, 7.0, 0, 0, 0, 7.5}, tric[9] = {7.0, 0, 0, 1.8, 6.6, 0, -1.2, 1.5, 7.2};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE}, slab[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_FALSE};
  int             Z[24];
  double          pos[72];
  char            m[PETSC_MAX_PATH_LEN];
  (void)state;
  hm_golden_path("model_small.safetensors", m, sizeof(m));
  random_atoms(24, ortho, PETSC_TRUE, 1.2, Z, pos);
  compare(m, 24, Z, pos, ortho, all, MATBAIJ);
  random_atoms(20, tric, PETSC_TRUE, 1.2, Z, pos);
  compare(m, 20, Z, pos, tric, all, MATBAIJ);
  compare(m, 20, Z, pos, tric, slab, MATSBAIJ);
}

/* More ranks than atoms (empty ranks), and the Cartesian rank-grid partition. */
static void test_empty_ranks_and_grid(void **state)
{
  const int    Z[3]   = {8, 1, 1};
  const double pos[9] = {0.0, 0.0, 0.1173, 0.0, 0.7572, -0.4692, 0.0, -0.7572, -0.4692};
  int          Zc[40];
  double       pc[120];
  const double box[9] = {9, 0, 0, 0, 8, 0, 0, 0, 10};
  char         m[PETSC_MAX_PATH_LEN];
  (void)state;
  hm_golden_path("model_small.safetensors", m, sizeof(m));
  compare(m, 3, Z, pos, NULL, NULL, MATBAIJ);
  random_atoms(40, box, PETSC_FALSE, 1.1, Zc, pc);
  HM_T(PetscOptionsSetValue(NULL, "-partition", "grid"));
  compare(m, 40, Zc, pc, NULL, NULL, MATBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-partition"));
}

/* Every system builder's output (water box, diamond crystal, packed cluster, peptide): bitwise equal
   to one rank. Sizes are kept small: 2 cores run up to 8 ranks here. */
static void test_builder_systems(void **state)
{
  const char *kinds[4] = {"water", "diamond", "cluster", "peptide"};
  const int   sizes[4] = {60, 64, 50, 40};
  char        m[PETSC_MAX_PATH_LEN], mol[PETSC_MAX_PATH_LEN];
  (void)state;
  snprintf(m, sizeof(m), "%s/demo_hipmace.safetensors", hm_models_dir());
  snprintf(mol, sizeof(mol), "%s/default.xyz", getenv("HIPMACE_INPUTS_DIR") ? getenv("HIPMACE_INPUTS_DIR") : "inputs");
  for (int k = 0; k < 4; k++) {
    HMSystem      sys;
    PetscInt      n;
    const int    *Z;
    const double *pos;
    double        cell[9];
    PetscBool     hc, pbc[3];
    HM_T(HMBuildSystem(PETSC_COMM_SELF, kinds[k], sizes[k], 7, mol, &sys));
    HM_T(HMSystemGetSize(sys, &n));
    HM_T(HMSystemGetAtomicNumbers(sys, &Z));
    HM_T(HMSystemGetPositions(sys, &pos));
    HM_T(HMSystemGetCell(sys, &hc, cell, pbc));
    print_message("builder system %s: %d atoms\n", kinds[k], (int)n);
    compare(m, n, Z, pos, hc ? cell : NULL, hc ? pbc : NULL, k % 2 ? MATSBAIJ : MATBAIJ);
    HM_T(HMSystemDestroy(&sys));
  }
}

/* Exact-zero pruning across ranks: a model without a separate Hessian radial network (the small golden
   model edited), its Hessian built up to hessian_r_max (7 A) on k ranks, against the one built up to
   r_max (5 A) on one rank: equal entry for entry, although the distributed graph, far halo and matrix
   hold the extra pairs. */
static void test_unpruned(void **state)
{
  const PetscInt  n      = 90;
  const double    box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10}, ortho[9] = {6.5, 0, 0, 0, 7.0, 0, 0, 0, 7.5};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  int             Z[90];
  double          pos[270];
  char            src[PETSC_MAX_PATH_LEN], dst[PETSC_MAX_PATH_LEN] = "/tmp/hm_test_mpi_XXXXXX";
  PetscMPIInt     rank;
  (void)state;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_golden_path("model_small.safetensors", src, sizeof(src));
  if (rank == 0) {
    assert_non_null(mkdtemp(dst));
    strcat(dst, "/small_shared.safetensors");
    hm_write_variant(src, dst, "{\"hessian_separate_radial_network\": false}", "hessian_radial_embedding.");
  }
  HM_T(MPI_Bcast(dst, sizeof(dst), MPI_CHAR, 0, PETSC_COMM_WORLD));
  dist_unpruned = PETSC_TRUE;
  random_atoms(n, box, PETSC_FALSE, 1.1, Z, pos);
  compare(dst, n, Z, pos, NULL, NULL, MATBAIJ);
  assert_all(last_blocks[0] > last_blocks[1], "unpruned: no extra blocks, the comparison would be vacuous");
  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", "direct"));
  compare(dst, n, Z, pos, NULL, NULL, MATSBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  random_atoms(24, ortho, PETSC_TRUE, 1.2, Z, pos);
  compare(dst, 24, Z, pos, ortho, all, MATBAIJ);
  /* the tabulated kernel: the table is built identically on every rank, and an edge's z does not
     depend on its batch */
  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", "tabulated"));
  compare(dst, 24, Z, pos, ortho, all, MATBAIJ);
  random_atoms(n, box, PETSC_FALSE, 1.1, Z, pos);
  compare(dst, n, Z, pos, NULL, NULL, MATBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  dist_unpruned = PETSC_FALSE;
  MPI_Barrier(PETSC_COMM_WORLD);
  if (rank == 0) {
    assert_int_equal(unlink(dst), 0);
    *strrchr(dst, '/') = '\0';
    assert_int_equal(rmdir(dst), 0);
  }
}

/* A variant of model_hoextra (num_interactions_hessian): a separate Hessian radial network (the extra
   layers then see the edges between r_max and hessian_r_max, sent over the far halo) and two extra
   layers (the second a copy of the first with its weights scaled), with a fourth aggregation logit. */
typedef struct {
  char       name[160];
  HMDType    dtype;
  int        ndim;
  PetscInt64 shape[8], numel;
  double    *data; /* 8-byte words, I64 or F64 */
} VarTensor;

static void add_tensor(VarTensor *T, int *nt, const HMTensorInfo *t, const char *name, double scale)
{
  VarTensor *v = &T[(*nt)++];
  snprintf(v->name, sizeof(v->name), "%s", name);
  v->dtype = t->dtype;
  v->ndim  = t->ndim;
  v->numel = t->numel;
  for (int d = 0; d < t->ndim; d++) v->shape[d] = t->shape[d];
  v->data = malloc(8 * (size_t)(t->numel + 1));
  if (t->numel) memcpy(v->data, t->data, 8 * (size_t)t->numel);
  if (t->dtype == HM_DTYPE_F64)
    for (PetscInt64 k = 0; k < t->numel; k++) v->data[k] *= scale;
}

static void write_hoextra_variant(const char *src, const char *dst)
{
  HMSafetensors st;
  const char   *cfgtxt;
  json_t       *cfg;
  PetscInt      n;
  int           nt = 0;
  VarTensor    *T;
  HMTensorInfo *info;
  json_error_t  jerr;
  const double  hr = 6.0;

  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, src, &st));
  HM_T(HMSafetensorsGetNumTensors(st, &n));
  T = calloc((size_t)(2 * n + 8), sizeof(VarTensor));
  for (PetscInt i = 0; i < n; i++) {
    const HMTensorInfo *t;
    char                nm[160];
    HM_T(HMSafetensorsGetTensorByIndex(st, i, &t));
    add_tensor(T, &nt, t, t->name, 1.0);
    if (!strcmp(t->name, "hessian_layer_weights_param")) {
      VarTensor *v        = &T[nt - 1];
      v->data             = realloc(v->data, 8 * (size_t)(v->numel + 1));
      v->data[v->numel++] = 0.35;
      v->shape[0]++;
    }
    if (!strncmp(t->name, "radial_embedding.", 17)) {
      snprintf(nm, sizeof(nm), "hessian_%s", t->name);
      add_tensor(T, &nt, t, nm, 1.0);
      if (strstr(nm, "r_max")) T[nt - 1].data[0] = hr;
      if (strstr(nm, "prefactor")) T[nt - 1].data[0] = sqrt(2.0 / hr);
      if (strstr(nm, "bessel_weights"))
        for (PetscInt64 k = 0; k < t->numel; k++) T[nt - 1].data[k] = PETSC_PI * (double)(k + 1) / hr;
    }
    if (!strncmp(t->name, "hessian_interactions.0.", 23) || !strncmp(t->name, "hessian_products.0.", 19)) {
      const char *rest = strstr(t->name, ".0.") + 3;
      const int   w    = strlen(t->name) >= 6 && (!strcmp(t->name + strlen(t->name) - 6, "weight") || strstr(rest, "weights"));
      snprintf(nm, sizeof(nm), "%s.1.%s", !strncmp(t->name, "hessian_products", 16) ? "hessian_products" : "hessian_interactions", rest);
      add_tensor(T, &nt, t, nm, w ? 0.8 : 1.0);
    }
  }
  HM_T(HMSafetensorsGetMetadata(st, "config", &cfgtxt));
  cfg = json_loads(cfgtxt, 0, &jerr);
  assert_non_null(cfg);
  json_object_set_new(cfg, "hessian_separate_radial_network", json_true());
  json_object_set_new(cfg, "num_interactions_hessian", json_integer(2));
  /* the tensors as views of T for the writer */
  info = calloc((size_t)nt + 1, sizeof(HMTensorInfo));
  for (int i = 0; i < nt; i++) {
    info[i].name  = T[i].name;
    info[i].dtype = T[i].dtype;
    info[i].ndim  = T[i].ndim;
    info[i].numel = T[i].numel;
    info[i].data  = T[i].data;
    for (int d = 0; d < T[i].ndim; d++) info[i].shape[d] = T[i].shape[d];
  }
  hm_write_safetensors(dst, "hip-mace-safetensors-1", cfg, nt, info);
  for (int i = 0; i < nt; i++) free(T[i].data);
  free(info);
  free(T);
  json_decref(cfg);
  HM_T(HMSafetensorsClose(&st));
}

/* num_interactions_hessian: the extra layers on the Hessian graph run on owned atoms with their
   senders' inputs over the far halo; everything bitwise equal to one rank, with both edge kernels,
   for the golden model (shared radial network: pruned at r_max, and unpruned) and for the variant
   whose extra layers see edges up to hessian_r_max. */
static void test_hoextra(void **state)
{
  const PetscInt  n      = 90;
  const double    box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10}, ortho[9] = {6.5, 0, 0, 0, 7.0, 0, 0, 0, 7.5};
  const PetscBool all[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  char            m[PETSC_MAX_PATH_LEN], dst[PETSC_MAX_PATH_LEN] = "/tmp/hm_test_mpi_XXXXXX";
  HMSafetensors   fx;
  int             Z[90], Zf[64];
  double          pos[270];
  const double   *posf;
  PetscMPIInt     rank;
  const PetscInt  nf = fixture_molecule("fixture_hoextra_mol21.safetensors", &fx, Zf, &posf);
  (void)state;

  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_golden_path("model_hoextra.safetensors", m, sizeof(m));
  compare(m, nf, Zf, posf, NULL, NULL, MATBAIJ);
  random_atoms(n, box, PETSC_FALSE, 1.1, Z, pos);
  compare(m, n, Z, pos, NULL, NULL, MATSBAIJ);
  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", "direct"));
  compare(m, nf, Zf, posf, NULL, NULL, MATSBAIJ);
  compare(m, n, Z, pos, NULL, NULL, MATBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  /* exact-zero pruning holds for the extra layers too: their messages beyond r_max are exactly zero */
  dist_unpruned = PETSC_TRUE;
  compare(m, n, Z, pos, NULL, NULL, MATBAIJ);
  assert_all(last_blocks[0] > last_blocks[1], "unpruned: no extra blocks, the comparison would be vacuous");
  dist_unpruned = PETSC_FALSE;
  HM_T(HMSafetensorsClose(&fx));

  if (rank == 0) {
    assert_non_null(mkdtemp(dst));
    strcat(dst, "/hoextra_sep2.safetensors");
    write_hoextra_variant(m, dst);
  }
  HM_T(MPI_Bcast(dst, sizeof(dst), MPI_CHAR, 0, PETSC_COMM_WORLD));
  compare(dst, n, Z, pos, NULL, NULL, MATBAIJ);
  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", "direct"));
  compare(dst, n, Z, pos, NULL, NULL, MATSBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  random_atoms(24, ortho, PETSC_TRUE, 1.2, Z, pos);
  compare(dst, 24, Z, pos, ortho, all, MATBAIJ);
  MPI_Barrier(PETSC_COMM_WORLD);
  if (rank == 0) {
    assert_int_equal(unlink(dst), 0);
    *strrchr(dst, '/') = '\0';
    assert_int_equal(rmdir(dst), 0);
  }
}

/* HMDecompSumExact over the ranks, RCB and grid partitions (empty ranks with the 5-atom set): bitwise the
   one-rank sum and, where known, the exact value, on sets where a naive sum depends on the order. */
static void sum_exact_check(PetscInt n, PetscInt nv, const double *vals, const double *expect)
{
  HMSystem    sys;
  int        *Z   = malloc(sizeof(int) * (size_t)n);
  double     *pos = malloc(sizeof(double) * (size_t)(3 * n)), ref[8], got[8];
  PetscMPIInt rank;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  hm_grid_atoms(n, 10, Z, pos);
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, NULL, NULL, &sys));
  for (int t = 0; t < 3; t++) {
    /* t = 0: the one-rank reference, every rank alone; 1, 2: distributed by RCB and by the rank grid */
    const MPI_Comm  comm = t ? PETSC_COMM_WORLD : PETSC_COMM_SELF;
    HMDecomp        dd;
    PetscInt        no;
    const PetscInt *gid;
    double         *own;
    HM_T(HMDecompCreate(comm, t == 0 || rank == 0 ? sys : NULL, t == 2 ? HM_PARTITION_GRID : HM_PARTITION_RCB, 1.0, 1.0, &dd));
    HM_T(HMDecompGetSizes(dd, NULL, &no, NULL, NULL));
    HM_T(HMDecompGetLocalAtoms(dd, &gid, NULL, NULL, NULL, NULL));
    own = malloc(sizeof(double) * (size_t)(no * nv + 1));
    for (PetscInt i = 0; i < no; i++)
      for (PetscInt c = 0; c < nv; c++) own[i * nv + c] = vals[gid[i] * nv + c];
    HM_T(HMDecompSumExact(dd, nv, own, t ? got : ref));
    if (t) {
      print_message("[%d] sum of %d values, %s partition, %d owned: %a ... (one rank: %a)\n", rank, (int)n, t == 2 ? "grid" : "RCB", (int)no, got[nv - 1], ref[nv - 1]);
      assert_all(!memcmp(got, ref, sizeof(double) * (size_t)nv), "exact sum differs from the one-rank sum");
    }
    free(own);
    HM_T(HMDecompDestroy(&dd));
  }
  for (PetscInt c = 0; c < nv; c++)
    if (expect && expect[c] == expect[c]) assert_all(ref[c] == expect[c], "exact sum differs from the known value");
  HM_T(HMSystemDestroy(&sys));
  free(pos);
  free(Z);
}

/* -precision single: the float32 layers keep the bitwise rank-count invariance (both evaluations in single
   precision; the one-rank matrix differs from the double one, test_single checks by how much), on a golden
   molecule, a 90-atom cluster with the demo model and the extra Hessian layers of the hoextra model. */
static void test_single(void **state)
{
  const PetscInt n      = 90;
  const double   box[9] = {11, 0, 0, 0, 9, 0, 0, 0, 10};
  char           m[PETSC_MAX_PATH_LEN];
  HMSafetensors  fx;
  int            Z[90], Zf[64];
  double         pos[270];
  const double  *posf;
  const PetscInt nf = fixture_molecule("fixture_default_mol21.safetensors", &fx, Zf, &posf);
  (void)state;

  HM_T(PetscOptionsSetValue(NULL, "-precision", "single"));
  hm_golden_path("model_default.safetensors", m, sizeof(m));
  compare(m, nf, Zf, posf, NULL, NULL, MATBAIJ);
  random_atoms(n, box, PETSC_FALSE, 1.1, Z, pos);
  snprintf(m, sizeof(m), "%s/demo_hipmace.safetensors", hm_models_dir());
  compare(m, n, Z, pos, NULL, NULL, MATSBAIJ);
  hm_golden_path("model_hoextra.safetensors", m, sizeof(m));
  compare(m, n, Z, pos, NULL, NULL, MATBAIJ);
  HM_T(PetscOptionsClearValue(NULL, "-precision"));
  HM_T(HMSafetensorsClose(&fx));
}

static void test_sum_exact(void **state)
{
  const PetscInt n = 600, nv = 4;
  double        *v = malloc(sizeof(double) * (size_t)(n * nv)), expect[4] = {300, NAN, NAN, NAN};
  const double   few[5] = {1e308, 1, 1e308, -1e308, -1e308}, one = 1;
  (void)state;
  for (PetscInt i = 0; i < n; i++) {
    const double quad[4] = {1e16, 1, -1e16, 1};
    const double m = (double)(uint64_t)(urand() * 9007199254740992.0), r = urand();
    v[i * nv]     = quad[i % 4];                                                 /* exactly 2 per group of four */
    v[i * nv + 1] = ldexp(m, (int)(r * 2000) - 1053) * (urand() < 0.5 ? -1 : 1); /* 2^-1053 .. 2^1000 */
    /* x in the first half, -(x + k 2^-19) in the second: the sum is 11 digits below the terms */
    v[i * nv + 2] = i < n / 2 ? ldexp(m, -19) : -v[(i - n / 2) * nv + 2] - ldexp(floor(r * 2001) - 1000, -19);
    v[i * nv + 3] = ldexp(floor(r * 4503599627370496.0) - 2251799813685248.0, -1074); /* subnormals */
  }
  sum_exact_check(n, nv, v, expect);
  sum_exact_check(5, 1, few, &one); /* fewer atoms than ranks at 8; a naive sum overflows */
  free(v);
}

HM_TEST_MAIN_OF(test_builder_systems, test_empty_ranks_and_grid, test_fixture_molecule, test_cluster, test_periodic, test_unpruned, test_hoextra, test_single, test_sum_exact)

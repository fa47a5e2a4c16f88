/* Exact-zero pruning: without a separate Hessian radial network the Hessian built up to hessian_r_max
   (-hessian_prune false) equals the pruned one (graph at r_max) entry for entry, with either kernel. */
#include "hmtest.h"
#include <hipmace/hessian.h>
#include <hipmace/builder.h>
#include <petscmat.h>
#include <petsctime.h>
#include <unistd.h>

typedef struct {
  double     E, hcut, seconds, mem; /* energy, cutoff in force, assembly wall time, estimated peak - now */
  PetscInt64 hedges, evals, blocks; /* Hessian graph edges, directed edges evaluated, stored blocks */
  double    *H;                     /* dense, row-major (3n x 3n) */
  Mat        A;                     /* the assembled matrix, for its block structure */
} Run;

/* One evaluation with -hessian_kernel and -hessian_prune set for HMHessianSetFromOptions (where they are read). */
static void run(HMModel m, HMSystem sys, const char *kernel, PetscBool prune, Run *r)
{
  HMEval         ev;
  HMHessian      hs;
  const HMGraph *gh;
  const char    *kname;
  PetscInt       n;
  double         t0, t1, now;

  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", kernel));
  HM_T(PetscOptionsSetValue(NULL, "-hessian_prune", prune ? "true" : "false"));
  HM_T(hm_eval_create(m, sys, NULL, &ev, &hs));
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  HM_T(PetscOptionsClearValue(NULL, "-hessian_prune"));
  HM_T(HMEvalGetHessianCutoff(ev, &r->hcut));
  HM_T(HMEvalGetGraph(ev, NULL, &gh));
  r->hedges = gh->nedges;
  HM_T(HMHessianGetMemoryEstimate(hs, PETSC_FALSE, &now, &r->mem));
  r->mem -= now;
  HM_T(HMEvalForward(ev));
  HM_T(HMEvalGetEnergy(ev, &r->E, NULL));
  HM_T(PetscTime(&t0));
  HM_T(HMHessianAssemble(hs, &r->A));
  HM_T(PetscTime(&t1));
  r->seconds = t1 - t0;
  HM_T(HMHessianGetBlockCount(hs, NULL, &r->blocks));
  HM_T(HMHessianGetKernelStats(hs, &kname, &r->evals, NULL, NULL));
  assert_string_equal(kname, kernel); /* the option took effect */
  HM_T(HMSystemGetSize(sys, &n));
  r->H = hm_dense_of(r->A, 3 * n);
  HM_T(HMHessianDestroy(&hs));
  HM_T(HMEvalDestroy(&ev));
}

static void run_free(Run *r)
{
  HM_T(MatDestroy(&r->A));
  free(r->H);
}

/* Pairs i < j with r_max <= |r_ij| < hessian_r_max (no periodic images): the blocks pruning leaves out. */
static PetscInt64 far_pairs(HMSystem sys, double rmax, double hrmax)
{
  const double *pos;
  PetscInt      n;
  PetscInt64    c = 0;
  HM_T(HMSystemGetSize(sys, &n));
  HM_T(HMSystemGetPositions(sys, &pos));
  for (PetscInt i = 0; i < n; i++)
    for (PetscInt j = i + 1; j < n; j++) {
      double d2 = 0;
      for (int a = 0; a < 3; a++) d2 += (pos[3 * i + a] - pos[3 * j + a]) * (pos[3 * i + a] - pos[3 * j + a]);
      c += d2 >= rmax * rmax && d2 < hrmax * hrmax;
    }
  return c;
}

static void compare_pruning(const char *label, HMModel m, HMSystem sys, const char *kernel, PetscBool periodic)
{
  Run        p, u;
  double     rmax, hrmax, hcut;
  PetscInt   n, N3, diff = 0;
  PetscInt64 extra = 0, negzero = 0, missing = 0;
  PetscInt  *inp;

  HM_T(HMModelGetCutoffs(m, &rmax, &hrmax, &hcut));
  HM_T(HMSystemGetSize(sys, &n));
  N3 = 3 * n;
  run(m, sys, kernel, PETSC_TRUE, &p);
  run(m, sys, kernel, PETSC_FALSE, &u);
  assert_true(p.hcut == hcut && hcut == rmax && rmax < hrmax);
  assert_true(u.hcut == hrmax);
  /* there is something to prune (else this test could not fail), and the unpruned run built,
     evaluated and stored it */
  assert_true(u.hedges > p.hedges);
  assert_true(u.evals > p.evals);
  /* in a cell a few A wide nearly every pair has some image within r_max: new blocks need not appear */
  assert_true(periodic ? u.blocks >= p.blocks : u.blocks > p.blocks);
  /* the memory estimate counts the blocks and ghosts in force (its peak is the larger of the layers' and
     the HIP head's, so for a small system it need not grow) */
  assert_true(u.mem >= p.mem);
  if (!periodic) assert_true(u.blocks - p.blocks == 2 * far_pairs(sys, rmax, hrmax));
  /* same main graph and layers: the energy is the same computation */
  assert_true(u.E == p.E);
  /* every entry equal; == on purpose, so +0 and -0 count as equal: an edge beyond r_max may give -0
     (0 times a negative weight), where the pruned matrix has an implicit +0 */
  for (PetscInt k = 0; k < N3 * N3; k++) diff += u.H[k] != p.H[k];
  /* the blocks stored only in the unpruned matrix are exactly zero; the pruned structure is a subset */
  inp = malloc(sizeof(PetscInt) * (size_t)N3);
  for (PetscInt r = 0; r < N3; r++) {
    PetscInt           nc;
    const PetscInt    *c;
    const PetscScalar *v;
    for (PetscInt k = 0; k < N3; k++) inp[k] = 0;
    HM_T(MatGetRow(p.A, r, &nc, &c, NULL));
    for (PetscInt k = 0; k < nc; k++) inp[c[k]] = 1;
    HM_T(MatRestoreRow(p.A, r, &nc, &c, NULL));
    HM_T(MatGetRow(u.A, r, &nc, &c, &v));
    for (PetscInt k = 0; k < nc; k++) {
      if (inp[c[k]]) {
        inp[c[k]] = 2;
        continue;
      }
      extra++;
      if (v[k] != 0.0) diff++;
      negzero += v[k] == 0.0 && signbit(v[k]);
    }
    HM_T(MatRestoreRow(u.A, r, &nc, &c, &v));
    for (PetscInt k = 0; k < N3; k++) missing += inp[k] == 1;
  }
  free(inp);
  print_message("%-22s %-6s %3d atoms: Hessian edges %6lld pruned (%g A) / %6lld unpruned (%g A), blocks %5lld / %5lld, "
                "%lld extra entries (%lld are -0), est. memory %+.2f MB, assembly %.4f / %.4f s, energy %.15g\n",
                label, kernel, (int)n, (long long)p.hedges, p.hcut, (long long)u.hedges, u.hcut, (long long)p.blocks, (long long)u.blocks, (long long)extra, (long long)negzero, (u.mem - p.mem) / 1048576.0, p.seconds,
                u.seconds, u.E);
  assert_true(extra == 9 * (u.blocks - p.blocks));
  assert_true(missing == 0);
  assert_int_equal(diff, 0);
  run_free(&p);
  run_free(&u);
}

static void test_pruned_equals_unpruned(void **state)
{
  const char *models[]  = {"small", "default"};
  const char *kernels[] = {"folded", "direct", "tabulated"};
  char        dir[]     = "/tmp/hm_test_prune_XXXXXX", mol[PETSC_MAX_PATH_LEN];
  HMSystem    mol21, dimer, water;
  (void)state;

  assert_non_null(mkdtemp(dir));
  hm_golden_path("mol21.xyz", mol, sizeof(mol));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, mol, &mol21));                 /* 7 of its 210 pairs are 5.0-5.5 A apart */
  HM_T(HMBuildCluster(PETSC_COMM_SELF, mol21, 2, 3.0, 11, &dimer)); /* two copies >= 3 A apart */
  HM_T(HMBuildWaterBox(PETSC_COMM_SELF, 8, 5, &water));             /* periodic: images beyond r_max */
  for (int i = 0; i < 2; i++) {
    char      src[PETSC_MAX_PATH_LEN], dst[PETSC_MAX_PATH_LEN], name[64];
    HMModel   m;
    HMEval    ev;
    HMHessian hs;
    double    hrmax, c;

    snprintf(name, sizeof(name), "model_%s.safetensors", models[i]);
    hm_golden_path(name, src, sizeof(src));
    /* with its own Hessian radial network the golden model has nothing to prune */
    HM_T(HMModelLoad(PETSC_COMM_SELF, src, &m));
    HM_T(HMModelGetCutoffs(m, NULL, &hrmax, NULL));
    for (int pr = 0; pr < 2; pr++) {
      HM_T(PetscOptionsSetValue(NULL, "-hessian_prune", pr ? "true" : "false"));
      HM_T(hm_eval_create(m, mol21, NULL, &ev, &hs));
      HM_T(PetscOptionsClearValue(NULL, "-hessian_prune"));
      HM_T(HMEvalGetHessianCutoff(ev, &c));
      assert_true(c == hrmax);
      HM_T(HMHessianDestroy(&hs));
      HM_T(HMEvalDestroy(&ev));
    }
    HM_T(HMModelDestroy(&m));

    snprintf(dst, sizeof(dst), "%s/%s_shared.safetensors", dir, models[i]);
    hm_write_variant(src, dst, "{\"hessian_separate_radial_network\": false}", "hessian_radial_embedding.");
    HM_T(HMModelLoad(PETSC_COMM_SELF, dst, &m));
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof(name), "%s-shared/mol21", models[i]);
      compare_pruning(name, m, mol21, kernels[k], PETSC_FALSE);
      snprintf(name, sizeof(name), "%s-shared/2xmol21", models[i]);
      compare_pruning(name, m, dimer, kernels[k], PETSC_FALSE);
      /* hessian_r_max 16 A in a 6 A cell is ~10^4 images per atom: the small model only */
      if (i == 0) compare_pruning("small-shared/water24", m, water, kernels[k], PETSC_TRUE);
    }
    HM_T(HMModelDestroy(&m));
    assert_int_equal(unlink(dst), 0);
  }
  HM_T(HMSystemDestroy(&water));
  HM_T(HMSystemDestroy(&dimer));
  HM_T(HMSystemDestroy(&mol21));
  assert_int_equal(rmdir(dir), 0);
}

HM_TEST_MAIN_OF(test_pruned_equals_unpruned)

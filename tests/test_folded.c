/* The folded HIP edge kernel agrees with the direct path and the reference on every model variant. */
#include "hmtest.h"
#include <hipmace/hessian.h>
#include <hipmace/so3.h>
#include "model/modelimpl.h"
#include "hessian/folded.h"
#include <string.h>
#include <unistd.h>

/* Folded and direct paths sum the same products in a different order (the layer weights are applied
   before linear_up, the linear maps are composed first); for sums of ~1e3-1e5 terms of mixed sign the
   round-off stays below ~1e-14 relative to the largest output, so 1e-12 leaves margin while catching
   any dropped path or misplaced constant (those give O(1) relative errors). */
#define TOL_DIRECT 1e-12
/* The reference itself agrees with the direct path to ~1e-14 (test_fixtures); 1e-11 as there. */
#define TOL_REF 1e-11

static const char *mols[] = {"mol08", "mol09", "mol11", "mol13", "mol21"};

/* Node tensor of all atoms of an evaluated structure (caller frees). */
static double *node_tensor(HMModel m, HMEval ev, PetscInt n, HMFolded f)
{
  const double *feats[HM_MAX_LAYERS];
  double       *G = malloc(sizeof(double) * (size_t)(n * HMFoldedNodeDim(f) + 1));
  for (int k = 0; k < m->hnl; k++) HM_T(HMEvalGetNodeFeatures(ev, m->hl0 + k, NULL, &feats[k]));
  HM_T(HMFoldedNodeTensor(f, n, feats, G));
  return G;
}

/* Folded (one direction, both directions, shuffled edge order) against the direct path and, when
   given, the reference e9. Returns max|e9|. */
static double check_edges(const char *label, HMModel m, HMEval ev, PetscInt n, PetscInt ne, const PetscInt *snd, const PetscInt *rcv, const double *vec, const double *e9ref)
{
  HMFolded  f;
  double   *G, *ed = malloc(sizeof(double) * 9 * (size_t)(ne + 1)), *ef = malloc(sizeof(double) * 9 * (size_t)(ne + 1));
  double   *eb = malloc(sizeof(double) * 9 * (size_t)(ne + 1)), *er = malloc(sizeof(double) * 9 * (size_t)(ne + 1));
  double   *edr = malloc(sizeof(double) * 9 * (size_t)(ne + 1)), *vr = malloc(sizeof(double) * 3 * (size_t)(ne + 1));
  double   *ep = malloc(sizeof(double) * 9 * (size_t)(ne + 1)), *vp = malloc(sizeof(double) * 3 * (size_t)(ne + 1));
  PetscInt *sp = malloc(sizeof(PetscInt) * (size_t)(ne + 1)), *perm = malloc(sizeof(PetscInt) * (size_t)(ne + 1));
  double    scale, err, errb, errr, errp, erre, erref = 0;
  HMHessian hd, hf;

  HM_T(HMFoldedCreate(m, &f));
  G = node_tensor(m, ev, n, f);
  /* the engine's default kernel is the folded one: the reference point here is the direct kernel */
  HM_T(HMHessianCreate(ev, &hd));
  HM_T(HMHessianSetType(hd, HMHESSIANDIRECT));
  HM_T(HMHessianEdgeBlocks(hd, ne, snd, vec, ed, NULL));
  HM_T(HMFoldedEdges(f, ne, snd, vec, G, ef));
  scale = PetscMax(hm_max_abs(9 * ne, ed), 1e-300);
  err   = hm_max_abs_diff(9 * ne, ef, ed) / scale;

  /* both directions: the forward half is the same computation as HMFoldedEdges (bitwise), the reverse
     half is compared with the direct path on the reversed edges */
  for (PetscInt e = 0; e < 3 * ne; e++) vr[e] = -vec[e];
  HM_T(HMHessianEdgeBlocks(hd, ne, rcv, vr, edr, NULL));
  HM_T(HMFoldedEdgesBoth(f, ne, snd, rcv, vec, G, eb, er));
  errb = hm_max_abs_diff(9 * ne, eb, ef);
  errr = hm_max_abs_diff(9 * ne, er, edr) / PetscMax(hm_max_abs(9 * ne, edr), 1e-300);
  /* Y(-v) = (-1)^l Y(v) holds exactly in floating point, so the reversed half equals a direct call */
  HM_T(HMFoldedEdges(f, ne, rcv, vr, G, ep));
  assert_true(hm_max_abs_diff(9 * ne, er, ep) == 0.0);

  /* shuffled order: no sender runs, every edge takes the per-edge loop */
  for (PetscInt e = 0; e < ne; e++) perm[e] = e;
  srand(7);
  for (PetscInt e = ne - 1; e > 0; e--) {
    PetscInt j = rand() % (e + 1), t = perm[e];
    perm[e] = perm[j];
    perm[j] = t;
  }
  for (PetscInt e = 0; e < ne; e++) {
    sp[e] = snd[perm[e]];
    for (int a = 0; a < 3; a++) vp[3 * e + a] = vec[3 * perm[e] + a];
  }
  HM_T(HMFoldedEdges(f, ne, sp, vp, G, ep));
  errp = 0;
  for (PetscInt e = 0; e < ne; e++)
    for (int q = 0; q < 9; q++) errp = PetscMax(errp, PetscAbsReal(ep[9 * e + q] - ed[9 * perm[e] + q]));
  errp /= scale;

  /* the kernel as wired into the engine (its own batching and G) */
  HM_T(HMHessianCreate(ev, &hf));
  HM_T(HMHessianSetType(hf, HMHESSIANFOLDED));
  HM_T(HMHessianEdgeBlocks(hf, ne, snd, vec, ep, NULL));
  erre = hm_max_abs_diff(9 * ne, ep, ed) / scale;

  if (e9ref) erref = hm_max_abs_diff(9 * ne, ef, e9ref) / PetscMax(hm_max_abs(9 * ne, e9ref), 1e-300);
  print_message("%-30s %5d edges max|e9| %7.3g  folded-direct %.1e  reversed %.1e  shuffled %.1e  engine %.1e  both-fwd %.0e%s", label, (int)ne, scale, err, errr, errp, erre, errb, e9ref ? "" : "\n");
  if (e9ref) print_message("  folded-ref %.1e\n", erref);
  assert_true(scale > 1e-3); /* the comparison is not vacuous */
  assert_true(err <= TOL_DIRECT);
  assert_true(errr <= TOL_DIRECT);
  assert_true(errp <= TOL_DIRECT);
  assert_true(erre <= TOL_DIRECT);
  assert_true(errb == 0.0);
  assert_true(erref <= TOL_REF);
  HM_T(HMHessianDestroy(&hd));
  HM_T(HMHessianDestroy(&hf));
  HM_T(HMFoldedDestroy(&f));
  HM_FREE_ALL(G, ed, ef, eb, er, edr, vr, ep, vp, sp, perm);
  return scale;
}

/* A golden fixture evaluated by a model on one rank: its system, the forward evaluation and the
   fixture's Hessian edge list (senders, receivers, vectors). */
typedef struct {
  HMSafetensors fx;
  HMSystem      sys;
  HMEval        ev;
  PetscInt      n, Eh, *snd, *rcv;
  double       *vec;
} FixtureRun;

static void fixture_run_open(HMModel m, const char *model, const char *mol, FixtureRun *r)
{
  hm_load_fixture(model, mol, &r->fx, &r->sys);
  HM_T(HMEvalCreate(m, &r->ev));
  HM_T(HMEvalSetSystem(r->ev, r->sys));
  HM_T(HMEvalForward(r->ev));
  HM_T(HMSystemGetSize(r->sys, &r->n));
  r->Eh = hm_fixture_edges(r->fx, r->sys, &r->snd, &r->rcv, &r->vec);
}

static void fixture_run_close(FixtureRun *r)
{
  free(r->snd);
  free(r->rcv);
  free(r->vec);
  HM_T(HMEvalDestroy(&r->ev));
  HM_T(HMSystemDestroy(&r->sys));
  HM_T(HMSafetensorsClose(&r->fx));
}

static void check_model_file(const char *path, const char *label, const char *fixture_model, int nmols, PetscBool use_ref)
{
  HMModel m;
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  for (int k = 0; k < nmols; k++) {
    const int     mk = nmols == 5 ? k : (k == 0 ? 0 : 4); /* a subset: the smallest and the largest */
    FixtureRun    r;
    const double *e9ref = NULL;
    char          lab[96];

    fixture_run_open(m, fixture_model, mols[mk], &r);
    if (use_ref) {
      const HMTensorInfo *info;
      HM_T(HMSafetensorsGetInfo(r.fx, "edge_irreps9", HM_DTYPE_F64, &info));
      assert_int_equal(info->numel, 9 * r.Eh);
      e9ref = (const double *)info->data;
    }
    snprintf(lab, sizeof(lab), "%s/%s", label, mols[mk]);
    check_edges(lab, m, r.ev, r.n, r.Eh, r.snd, r.rcv, r.vec, e9ref);
    fixture_run_close(&r);
  }
  HM_T(HMModelDestroy(&m));
}

static void test_golden(void **state)
{
  const char *models[] = {"small", "default"};
  (void)state;
  for (int i = 0; i < 2; i++) {
    char path[PETSC_MAX_PATH_LEN], name[64];
    snprintf(name, sizeof(name), "model_%s.safetensors", models[i]);
    hm_golden_path(name, path, sizeof(path));
    check_model_file(path, models[i], models[i], 5, PETSC_TRUE);
  }
  {
    /* extra Hessian layers (num_interactions_hessian): three used layers in the fold */
    char path[PETSC_MAX_PATH_LEN];
    hm_golden_path("model_hoextra.safetensors", path, sizeof(path));
    check_model_file(path, "hoextra", "hoextra", 2, PETSC_TRUE);
  }
}

/* The demo model (shared radial network, edge lmax 2) on a test structure with edges from HMGraphBuild. */
static void test_demo(void **state)
{
  char                path[PETSC_MAX_PATH_LEN];
  HMModel             m;
  HMSafetensors       fx;
  const HMTensorInfo *zi;
  const double       *pos;
  PetscInt64          shp[2] = {-1, 3};
  double              hcut;
  (void)state;

  snprintf(path, sizeof(path), "%s/demo_hipmace.safetensors", hm_models_dir());
  HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
  HM_T(HMModelGetCutoffs(m, NULL, NULL, &hcut));
  snprintf(path, sizeof(path), "%s/demo_test_fixtures.safetensors", hm_models_dir());
  HM_T(HMSafetensorsOpen(PETSC_COMM_SELF, path, &fx));
  for (int k = 0; k < 10; k += 3) {
    char     name[64];
    PetscInt n, *rcv;
    int     *Z;
    HMSystem sys;
    HMEval   ev;
    HMGraph  g;

    snprintf(name, sizeof(name), "s%d_atomic_numbers", k);
    HM_T(HMSafetensorsGetInfo(fx, name, HM_DTYPE_I64, &zi));
    n      = (PetscInt)zi->numel;
    shp[0] = n;
    Z      = malloc(sizeof(int) * (size_t)n);
    for (PetscInt i = 0; i < n; i++) Z[i] = (int)((const PetscInt64 *)zi->data)[i];
    snprintf(name, sizeof(name), "s%d_positions", k);
    HM_T(HMSafetensorsGetF64(fx, name, 2, shp, &pos));
    HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, NULL, NULL, &sys));
    HM_T(HMEvalCreate(m, &ev));
    HM_T(HMEvalSetSystem(ev, sys));
    HM_T(HMEvalForward(ev));
    HM_T(HMGraphBuild(n, pos, NULL, NULL, hcut, &g));
    rcv = g.receiver;
    snprintf(name, sizeof(name), "demo/s%d", k);
    check_edges(name, m, ev, n, g.nedges, g.sender, rcv, g.vec, NULL);
    HM_T(HMGraphDestroy(&g));
    HM_T(HMEvalDestroy(&ev));
    HM_T(HMSystemDestroy(&sys));
    free(Z);
  }
  HM_T(HMSafetensorsClose(&fx));
  HM_T(HMModelDestroy(&m));
}

/* ---- model files with an edited config (every tensor copied, shapes unchanged) ---- */

static void test_variants(void **state)
{
  struct {
    const char *model, *label, *edits, *drop;
    int         hnl, learnable, separate;
  } v[] = {
      {"small",   "small/mean",             "{\"hessian_aggregation\": \"mean\"}",                                                                                    NULL,                        2, 0, 1},
      {"small",   "small/last-layer",       "{\"hessian_use_last_layer_only\": true}",                                                                                NULL,                        1, 1, 1},
      {"small",   "small/shared-radial",    "{\"hessian_separate_radial_network\": false}",                                                                           "hessian_radial_embedding.", 2, 1, 0},
      {"small",   "small/mean+last+shared", "{\"hessian_aggregation\": \"mean\", \"hessian_use_last_layer_only\": true, \"hessian_separate_radial_network\": false}", "hessian_radial_embedding.", 1, 0, 0},
      {"default", "default/mean+shared",    "{\"hessian_aggregation\": \"mean\", \"hessian_separate_radial_network\": false}",                                        "hessian_radial_embedding.", 2, 0, 0},
      {"default", "default/last-layer",     "{\"hessian_use_last_layer_only\": true}",                                                                                NULL,                        1, 1, 1},
  };
  char dir[] = "/tmp/hm_test_folded_XXXXXX";
  (void)state;

  assert_non_null(mkdtemp(dir));
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    char    src[PETSC_MAX_PATH_LEN], dst[PETSC_MAX_PATH_LEN], name[64];
    HMModel m;
    snprintf(name, sizeof(name), "model_%s.safetensors", v[i].model);
    hm_golden_path(name, src, sizeof(src));
    snprintf(dst, sizeof(dst), "%s/variant%d.safetensors", dir, (int)i);
    hm_write_variant(src, dst, v[i].edits, v[i].drop);
    /* the edit took effect (else the variant would silently repeat the golden case) */
    HM_T(HMModelLoad(PETSC_COMM_SELF, dst, &m));
    assert_int_equal(m->hnl, v[i].hnl);
    assert_int_equal(m->learnable, v[i].learnable);
    assert_int_equal(m->separate_radial, v[i].separate);
    HM_T(HMModelDestroy(&m));
    check_model_file(dst, v[i].label, v[i].model, 2, PETSC_FALSE);
    assert_int_equal(unlink(dst), 0);
  }
  assert_int_equal(rmdir(dir), 0);
}

/* ---- in-memory HIP heads with irreps no model file here has ---- */

static double rnd(unsigned long long *s)
{
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double *rnd_array(PetscInt n, double gain, unsigned long long *s)
{
  double *a = malloc(sizeof(double) * (size_t)(n + 1));
  for (PetscInt i = 0; i < n; i++) a[i] = gain * rnd(s);
  return a;
}

static PetscInt linear_numel(const HMIrreps *in, const HMIrreps *out)
{
  PetscInt n = 0;
  for (int a = 0; a < in->n; a++)
    for (int b = 0; b < out->n; b++)
      if (in->b[a].l == out->b[b].l && in->b[a].p == out->b[b].p) n += (PetscInt)in->b[a].mul * out->b[b].mul;
  return n;
}

static void rnd_linear(HMLinear *lin, const HMIrreps *in, const HMIrreps *out, unsigned long long *s)
{
  const PetscInt n = linear_numel(in, out);
  HM_T(HMLinearSetUp(lin, in, out, rnd_array(n, 1.7, s), n, "synthetic"));
}

/* e9 of one edge by the direct formula, as the direct kernel computes it, from x_t = linear_up(feats_t). */
static void direct_edge(HMModel m, double *const xh[], PetscInt s, const double v[3], double e9[])
{
  const HMConvTP *tp = &m->hi_tp;
  double          rb[32], Y[25], *w = malloc(sizeof(double) * (size_t)tp->weight_numel), *work = malloc(sizeof(double) * 2 * (size_t)m->hi_mlp.maxw);
  double         *raw = malloc(sizeof(double) * (size_t)tp->dim_mid), *lin = malloc(sizeof(double) * (size_t)m->dimH), *off = calloc((size_t)HMIrrepsDim(&m->O), sizeof(double));
  double         *offt = malloc(sizeof(double) * (size_t)HMIrrepsDim(&m->O)), *cy = malloc(sizeof(double) * (size_t)(tp->maxcy + 1));

  HMRadialBasisEval(&m->hradial, PetscSqrtReal(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), rb);
  HMRadialMLPApply(&m->hi_mlp, 1, rb, w, work);
  HM_T(HMSphericalHarmonics(m->hedge_lmax, 1, v, Y));
  for (int t = 0; t < m->hnl; t++) {
    HMConvTPApply(tp, xh[t] + s * m->dimH, Y, w, 0.0, raw, cy);
    HMLinearApply(&m->hi_linear, 1, raw, tp->dim_mid, 0.0, lin, m->dimH);
    HMLinearApply(&m->message_proj, 1, lin, m->dimH, 0.0, offt, HMIrrepsDim(&m->O));
    for (PetscInt k = 0; k < HMIrrepsDim(&m->O); k++) off[k] += m->hw[t] * offt[k];
  }
  HMLinearApply(&m->proj_edges, 1, off, HMIrrepsDim(&m->O), 0.0, e9, 9);
  free(w);
  free(work);
  free(raw);
  free(lin);
  free(off);
  free(offt);
  free(cy);
}

static void check_synthetic(const char *Hs, int F, int lmax, int nhid, int hnl, PetscBool sorted, unsigned long long seed)
{
  struct _p_HMModel *m;
  unsigned long long s = seed;
  const PetscInt     n = 9, ne = 700; /* more edges than one chunk */
  double            *feats[HM_MAX_LAYERS], *xh[HM_MAX_LAYERS], *G, *vec, *ef, *ed, *efr, *edr, scale, err, errr;
  PetscInt          *snd, *rcv;
  HMFolded           f;
  const PetscInt     hidden[3] = {12, 7, 10};
  double             sw        = 0;

  HM_T(PetscCalloc1(1, &m));
  m->path = (char *)"synthetic";
  HM_T(HMIrrepsParse(Hs, &m->H));
  m->dimH  = HMIrrepsDim(&m->H);
  m->F     = F;
  m->O.n   = 3;
  m->OUT.n = 3;
  for (int l = 0; l < 3; l++) {
    m->O.b[l]   = (HMIrrep){F, l, 1};
    m->OUT.b[l] = (HMIrrep){1, l, 1};
  }
  m->hedge_lmax = lmax;
  m->shh.n      = 0;
  for (int l = 0; l <= lmax; l++) m->shh.b[m->shh.n++] = (HMIrrep){1, l, l % 2 ? -1 : 1};
  m->num_bessel = 8;
  m->hradial    = (HMRadialBasis){8, 5, 6.0, PetscSqrtReal(2.0 / 6.0), m->hradial_freq};
  for (int k = 0; k < 8; k++) m->hradial_freq[k] = PETSC_PI / 6.0 * (k + 1);
  rnd_linear(&m->hi_linear_up, &m->H, &m->H, &s);
  HM_T(HMConvTPSetUp(&m->hi_tp, &m->H, &m->shh, &m->H, NULL, NULL));
  rnd_linear(&m->hi_linear, &m->hi_tp.mid, &m->H, &s);
  rnd_linear(&m->message_proj, &m->H, &m->O, &s);
  rnd_linear(&m->proj_edges, &m->O, &m->OUT, &s);
  /* radial network with nhid hidden layers (weights stored / sqrt(fan_in), as HMRadialMLPSetUp does) */
  m->hi_mlp.nlayers = nhid + 1;
  m->hi_mlp.h       = malloc(sizeof(PetscInt) * (size_t)(nhid + 2));
  m->hi_mlp.W       = malloc(sizeof(double *) * (size_t)(nhid + 1));
  m->hi_mlp.h[0]    = 8;
  for (int i = 0; i < nhid; i++) m->hi_mlp.h[i + 1] = hidden[i];
  m->hi_mlp.h[nhid + 1] = m->hi_tp.weight_numel;
  m->hi_mlp.maxw        = 0;
  for (int i = 0; i <= nhid + 1; i++) m->hi_mlp.maxw = PetscMax(m->hi_mlp.maxw, m->hi_mlp.h[i]);
  for (int i = 0; i <= nhid; i++) m->hi_mlp.W[i] = rnd_array(m->hi_mlp.h[i] * m->hi_mlp.h[i + 1], 1.7 / PetscSqrtReal((double)m->hi_mlp.h[i]), &s);
  m->hi_mlp.Wp = calloc((size_t)(nhid + 1), sizeof(HMGemmPacked));
  for (int i = 0; i <= nhid; i++) HM_T(HMGemmPack(m->hi_mlp.h[i + 1], m->hi_mlp.h[i], m->hi_mlp.W[i], m->hi_mlp.h[i + 1], &m->hi_mlp.Wp[i]));
  m->hnl = hnl;
  for (int t = 0; t < hnl; t++) sw += (m->hw[t] = 1.5 + rnd(&s));
  for (int t = 0; t < hnl; t++) m->hw[t] /= sw;

  for (int t = 0; t < hnl; t++) {
    feats[t] = rnd_array(n * m->dimH, 1.0, &s);
    xh[t]    = malloc(sizeof(double) * (size_t)(n * m->dimH));
    HMLinearApply(&m->hi_linear_up, n, feats[t], m->dimH, 0.0, xh[t], m->dimH);
  }
  snd = malloc(sizeof(PetscInt) * (size_t)ne);
  vec = rnd_array(3 * ne, 3.5, &s); /* lengths up to ~6 = the cutoff: some edges are exactly zero */
  for (PetscInt e = 0; e < ne; e++) snd[e] = sorted ? e * n / ne : (PetscInt)((rnd(&s) + 1.0) * 0.5 * n) % n;
  ef  = malloc(sizeof(double) * 9 * (size_t)ne);
  ed  = malloc(sizeof(double) * 9 * (size_t)ne);
  efr = malloc(sizeof(double) * 9 * (size_t)ne);
  edr = malloc(sizeof(double) * 9 * (size_t)ne);
  rcv = malloc(sizeof(PetscInt) * (size_t)ne);
  for (PetscInt e = 0; e < ne; e++) direct_edge(m, xh, snd[e], vec + 3 * e, ed + 9 * e);

  HM_T(HMFoldedCreate(m, &f));
  G = malloc(sizeof(double) * (size_t)(n * HMFoldedNodeDim(f) + 1));
  HM_T(HMFoldedNodeTensor(f, n, (const double *const *)feats, G));
  HM_T(HMFoldedEdges(f, ne, snd, vec, G, ef));
  scale = hm_max_abs(9 * ne, ed);
  err   = hm_max_abs_diff(9 * ne, ef, ed) / scale;
  /* reversed directions r -> s (edge vector -v) from HMFoldedEdgesBoth */
  for (PetscInt e = 0; e < ne; e++) {
    double vr[3] = {-vec[3 * e], -vec[3 * e + 1], -vec[3 * e + 2]};
    rcv[e]       = (PetscInt)((rnd(&s) + 1.0) * 0.5 * n) % n;
    direct_edge(m, xh, rcv[e], vr, edr + 9 * e);
  }
  HM_T(HMFoldedEdgesBoth(f, ne, snd, rcv, vec, G, NULL, efr));
  errr = hm_max_abs_diff(9 * ne, efr, edr) / hm_max_abs(9 * ne, edr);
  print_message("synthetic H=%-30s F=%d lmax=%d hidden=%d layers=%d %s: %d paths, max|e9| %.3g, folded-direct %.1e, reversed %.1e\n", Hs, F, lmax, nhid, hnl, sorted ? "sorted  " : "shuffled", m->hi_tp.ninstr, scale, err, errr);
  assert_true(scale > 1e-3);
  assert_true(err <= TOL_DIRECT);
  assert_true(errr <= TOL_DIRECT);
  free(rcv);
  free(efr);
  free(edr);

  HM_T(HMFoldedDestroy(&f));
  free(G);
  free(ef);
  free(ed);
  free(vec);
  free(snd);
  for (int t = 0; t < hnl; t++) {
    free(feats[t]);
    free(xh[t]);
  }
  for (int i = 0; i <= nhid; i++) {
    free(m->hi_mlp.W[i]);
    HM_T(HMGemmPackedDestroy(&m->hi_mlp.Wp[i]));
  }
  free(m->hi_mlp.W);
  free(m->hi_mlp.Wp);
  free(m->hi_mlp.h);
  free((void *)m->hi_linear_up.W);
  free((void *)m->hi_linear.W);
  free((void *)m->message_proj.W);
  free((void *)m->proj_edges.W);
  HM_T(HMLinearDestroy(&m->hi_linear_up));
  HM_T(HMLinearDestroy(&m->hi_linear));
  HM_T(HMLinearDestroy(&m->message_proj));
  HM_T(HMLinearDestroy(&m->proj_edges));
  HM_T(HMConvTPDestroy(&m->hi_tp));
  HM_T(PetscFree(m));
}

static void test_synthetic(void **state)
{
  (void)state;
  /* several 0e blocks, both parities of l = 1, odd l = 2, l = 3; edge lmax 0..3; 0..3 hidden radial
     layers; 1..3 aggregated layers; a feature space without 0e; multiplicities differing per block */
  check_synthetic("2x0e+3x1e+2x0e+2x1o+1x2e+2x3o", 3, 2, 2, 2, PETSC_TRUE, 1);
  check_synthetic("2x0e+3x1e+2x0e+2x1o+1x2e+2x3o", 3, 2, 2, 2, PETSC_FALSE, 2);
  check_synthetic("4x0e+4x1o+4x2e", 5, 0, 0, 1, PETSC_TRUE, 3);
  check_synthetic("3x0o+3x1e+2x2e+3x3o+1x2o", 4, 3, 1, 3, PETSC_TRUE, 4);
  check_synthetic("5x0e+2x0e+3x2e+1x1e+2x3e", 2, 1, 3, 2, PETSC_FALSE, 5);
  check_synthetic("3x0e+3x1o+3x2e+3x3o", 4, 3, 3, 3, PETSC_TRUE, 6);
}

/* ---- timing: default model, fixture mol21 ---- */

/* ---- the tabulated kernel: table error propagated to every edge block and Hessian entry ---- */

/* Tabulated against exact z on one structure (edges snd -> rcv, vectors vec): every e9 component within
   the propagated bound (HMFoldedEdgesErrorBound with zerr = tol), plus round-off; and the assembled
   Hessian of the tabulated kernel within the bound carried through the Cartesian map and the sum of the
   two directions of each pair. Returns the largest |difference| / bound. */
static double check_tabulated(const char *label, HMModel m, HMSystem sys, HMEval ev, PetscInt n, PetscInt ne, const PetscInt *snd, const PetscInt *rcv, const double *vec, double tol)
{
  HMFolded  f, ft;
  double   *G, *e9, *e9t, *b, A[9][9], worst = 0, dmax = 0, *Hf, *Ht, *Hb;
  PetscInt  N3 = 3 * n;
  Mat       H;
  HMEval    evt;
  HMHessian hf, ht;

  HM_T(HMFoldedCreate(m, &f));
  HM_T(HMFoldedCreate(m, &ft));
  HM_T(HMFoldedSetRadialTable(ft, 0.1, tol));
  G   = node_tensor(m, ev, n, f);
  e9  = malloc(sizeof(double) * 9 * (size_t)ne);
  e9t = malloc(sizeof(double) * 9 * (size_t)ne);
  b   = malloc(sizeof(double) * 9 * (size_t)ne);
  HM_T(HMFoldedEdges(f, ne, snd, vec, G, e9));
  HM_T(HMFoldedEdges(ft, ne, snd, vec, G, e9t));
  HM_T(HMFoldedEdgesErrorBound(f, ne, snd, vec, G, tol, b));
  for (PetscInt k = 0; k < 9 * ne; k++) {
    /* round-off of the two evaluations: a few ulp of |e9| (the bound itself is ~1e4 times larger) */
    const double d = PetscAbsReal(e9t[k] - e9[k]), slack = 1e-14 * PetscMax(1.0, PetscAbsReal(e9[k]));
    assert_true(d <= b[k] + slack);
    dmax  = PetscMax(dmax, d);
    worst = PetscMax(worst, d / (b[k] + slack));
  }
  /* the table is really in use: the results differ (by far less than the bound) */
  assert_true(dmax > 0.0);

  /* Hessian: H_sr = M(s -> r) + M(r -> s)^T with M = A e9, so |dH_sr[a][b]| <= sum_o |A_ab,o| b_o over
     both directions; node blocks do not depend on z */
  for (int o = 0; o < 9; o++) {
    double u[9] = {0}, c[9];
    u[o]        = 1.0;
    HMIrreps9ToCartesian(u, c);
    for (int ab = 0; ab < 9; ab++) A[ab][o] = PetscAbsReal(c[ab]);
  }
  Hb = calloc((size_t)(N3 * N3), sizeof(double));
  for (PetscInt e = 0; e < ne; e++)
    for (int a = 0; a < 3; a++)
      for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int o = 0; o < 9; o++) s += A[3 * a + c][o] * b[9 * e + o];
        Hb[(3 * snd[e] + a) * N3 + 3 * rcv[e] + c] += s;
        Hb[(3 * rcv[e] + c) * N3 + 3 * snd[e] + a] += s;
      }
  HM_T(HMHessianCreate(ev, &hf));
  HM_T(HMHessianAssemble(hf, &H));
  HM_T(HMHessianDestroy(&hf));
  Hf = hm_dense_of(H, N3);
  HM_T(MatDestroy(&H));
  HM_T(PetscOptionsSetValue(NULL, "-hessian_kernel", "tabulated"));
  {
    char t[32];
    snprintf(t, sizeof(t), "%g", tol);
    HM_T(PetscOptionsSetValue(NULL, "-hessian_table_tol", t));
  }
  HM_T(hm_eval_create(m, sys, NULL, &evt, &ht));
  HM_T(PetscOptionsClearValue(NULL, "-hessian_kernel"));
  HM_T(PetscOptionsClearValue(NULL, "-hessian_table_tol"));
  HM_T(HMHessianAssemble(ht, &H));
  Ht = hm_dense_of(H, N3);
  {
    const char *kname;
    HM_T(HMHessianGetKernelStats(ht, &kname, NULL, NULL, NULL));
    assert_string_equal(kname, "tabulated");
  }
  {
    double hmax = 0, hd = 0;
    for (PetscInt k = 0; k < N3 * N3; k++) {
      const double d = PetscAbsReal(Ht[k] - Hf[k]), slack = 1e-14 * PetscMax(1.0, PetscAbsReal(Hf[k]));
      assert_true(d <= Hb[k] + slack);
      hd   = PetscMax(hd, d);
      hmax = PetscMax(hmax, Hb[k]);
    }
    print_message("%s tol %g: edge blocks max|diff| %.2e (largest diff/bound %.3f); Hessian max|diff| %.2e, bound <= %.2e\n", label, tol, dmax, worst, hd, hmax);
  }
  HM_T(MatDestroy(&H));
  HM_T(HMHessianDestroy(&ht));
  HM_T(HMEvalDestroy(&evt));
  HM_T(HMFoldedDestroy(&f));
  HM_T(HMFoldedDestroy(&ft));
  HM_FREE_ALL(G, e9, e9t, b, Hf, Ht, Hb);
  return worst;
}

static void test_tabulated(void **state)
{
  const char  *models[] = {"small", "default", "hoextra"};
  const double tols[]   = {1e-8, 1e-10};
  (void)state;
  for (int i = 0; i < 3; i++) {
    char       path[PETSC_MAX_PATH_LEN], name[64], lab[64];
    HMModel    m;
    FixtureRun r;

    snprintf(name, sizeof(name), "model_%s.safetensors", models[i]);
    hm_golden_path(name, path, sizeof(path));
    HM_T(HMModelLoad(PETSC_COMM_SELF, path, &m));
    fixture_run_open(m, models[i], "mol21", &r);
    snprintf(lab, sizeof(lab), "%s/mol21", models[i]);
    for (int t = 0; t < 2; t++) check_tabulated(lab, m, r.sys, r.ev, r.n, r.Eh, r.snd, r.rcv, r.vec, tols[t]);
    fixture_run_close(&r);
    HM_T(HMModelDestroy(&m));
  }
}

HM_TEST_MAIN_OF(test_synthetic, test_golden, test_demo, test_variants, test_tabulated)

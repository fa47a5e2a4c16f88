/* Loading and validating a HIP-MACE model file: config JSON, tensor checks, layer set-up. */
#include "model/modelimpl.h"
#include "model/layer.h"
#include "sys/sysimpl.h"
#include <jansson.h>

typedef struct {
  json_t     *cfg;
  const char *path;
} Cfg;

static PetscErrorCode CfgGet(Cfg *c, const char key[], json_t **v)
{
  PetscFunctionBegin;
  *v = json_object_get(c->cfg, key);
  PetscCheck(*v, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config is missing the key '%s'", c->path, key);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode CfgNumber(Cfg *c, const char key[], double *x)
{
  json_t *v;
  PetscFunctionBegin;
  PetscCall(CfgGet(c, key, &v));
  if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
  PetscCheck(json_is_number(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' must be a number", c->path, key);
  *x = json_number_value(v);
  PetscCheck(PetscIsNormalReal(*x) || *x == 0.0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' is not finite", c->path, key);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode CfgInt(Cfg *c, const char key[], int lo, int hi, int *x)
{
  json_t *v;
  PetscFunctionBegin;
  PetscCall(CfgGet(c, key, &v));
  PetscCheck(json_is_integer(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' must be an integer", c->path, key);
  PetscCheck(json_integer_value(v) >= lo && json_integer_value(v) <= hi, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config key '%s' = %lld is outside the supported range [%d, %d]", c->path, key, (long long)json_integer_value(v), lo, hi);
  *x = (int)json_integer_value(v);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode CfgString(Cfg *c, const char key[], const char **s)
{
  json_t *v;
  PetscFunctionBegin;
  PetscCall(CfgGet(c, key, &v));
  PetscCheck(json_is_string(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' must be a string", c->path, key);
  *s = json_string_value(v);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode CfgBool(Cfg *c, const char key[], int *b)
{
  json_t *v;
  PetscFunctionBegin;
  PetscCall(CfgGet(c, key, &v));
  PetscCheck(json_is_boolean(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' must be true or false", c->path, key);
  *b = json_is_true(v);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Option that must be off (false / null / absent / "None"): refused by name otherwise. */
static PetscErrorCode CfgRefuse(Cfg *c, const char key[], const char what[])
{
  json_t *v = json_object_get(c->cfg, key);
  PetscFunctionBegin;
  if (!v || json_is_null(v) || json_is_false(v)) PetscFunctionReturn(PETSC_SUCCESS);
  if (json_is_string(v) && (!strcmp(json_string_value(v), "None") || !strcmp(json_string_value(v), ""))) PetscFunctionReturn(PETSC_SUCCESS);
  if (json_is_integer(v) && json_integer_value(v) == 0) PetscFunctionReturn(PETSC_SUCCESS);
  SETERRQ(PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option '%s' (%s) is not supported by hipmace", c->path, key, what);
}

static PetscErrorCode CfgRequireString(Cfg *c, const char key[], const char want[])
{
  const char *s = NULL;
  PetscFunctionBegin;
  PetscCall(CfgString(c, key, &s));
  PetscCheck(!strcmp(s, want), PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option %s = '%s' is not supported (only '%s')", c->path, key, s, want);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode CfgIntList(Cfg *c, json_t *v, const char key[], int maxn, int *n, PetscInt out[])
{
  PetscFunctionBegin;
  PetscCheck(json_is_array(v), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' must be a list of integers", c->path, key);
  *n = (int)json_array_size(v);
  PetscCheck(*n <= maxn, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config key '%s' has more than %d entries", c->path, key, maxn);
  for (int i = 0; i < *n; i++) {
    json_t *e = json_array_get(v, (size_t)i);
    PetscCheck(json_is_integer(e) && json_integer_value(e) > 0 && json_integer_value(e) < 100000, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key '%s' entry %d must be a positive integer", c->path, key, i);
    out[i] = (PetscInt)json_integer_value(e);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A float64 weight tensor of any length (its length is checked by the user); counted as parameters. */
static PetscErrorCode GetFlat(HMModel m, const char name[], const double **W, PetscInt64 *numel)
{
  const HMTensorInfo *info;
  PetscInt64          shape[1] = {-1};
  PetscFunctionBegin;
  PetscCall(HMSafetensorsGetF64(m->st, name, 1, shape, W));
  PetscCall(HMSafetensorsFind(m->st, name, &info));
  *numel = info->numel;
  m->nparams += info->numel;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GetLinear(HMModel m, const char name[], const HMIrreps *in, const HMIrreps *out, HMLinear *lin)
{
  const double *W     = NULL;
  PetscInt64    numel = 0;
  PetscFunctionBegin;
  PetscCall(GetFlat(m, name, &W, &numel));
  PetscCall(HMLinearSetUp(lin, in, out, W, numel, name));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GetScalar(HMModel m, const char name[], double *x)
{
  const double *v;
  PetscFunctionBegin;
  PetscCall(HMSafetensorsGetF64(m->st, name, 0, NULL, &v));
  *x = v[0];
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GetRadial(HMModel m, const char prefix[], double rc, HMRadialBasis *rb, double *freq)
{
  char              name[256];
  const double     *w;
  const PetscInt64 *p;
  PetscInt64        shape[1] = {m->num_bessel};
  double            r1 = 0, r2 = 0;
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.bessel_fn.bessel_weights", prefix));
  PetscCall(HMSafetensorsGetF64(m->st, name, 1, shape, &w));
  for (int k = 0; k < m->num_bessel; k++) freq[k] = w[k];
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.bessel_fn.prefactor", prefix));
  PetscCall(GetScalar(m, name, &rb->prefactor));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.bessel_fn.r_max", prefix));
  PetscCall(GetScalar(m, name, &r1));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.cutoff_fn.r_max", prefix));
  PetscCall(GetScalar(m, name, &r2));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.cutoff_fn.p", prefix));
  PetscCall(HMSafetensorsGetI64(m->st, name, 0, NULL, &p));
  PetscCheck(r1 == rc && r2 == rc, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: '%s' radial cutoffs (%g, %g) differ from the config (%g)", m->path, prefix, r1, r2, rc);
  PetscCheck(p[0] == m->p_cut, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' = %lld differs from num_polynomial_cutoff %d", m->path, name, (long long)p[0], m->p_cut);
  rb->nbessel = m->num_bessel;
  rb->p       = m->p_cut;
  rb->rc      = rc;
  rb->freq    = freq;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One interaction layer: under ipre its linear_up, conv_tp (with the radial MLP conv_tp_weights),
   linear and skip_tp (from skip_in to skip_in), under ppre its symmetric contraction and linear; the
   layer's in_ir, target and corr are set by the caller. Counts the parameters. */
static PetscErrorCode GetLayer(HMModel m, HMLayer *L, const char ipre[], const char ppre[], const HMIrreps *sh, const HMIrreps *skip_in, int nrh, const PetscInt radial_hidden[])
{
  char          name[256];
  const double *W     = NULL;
  PetscInt64    numel = 0;

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.linear_up.weight", ipre));
  PetscCall(GetLinear(m, name, &L->in_ir, &L->in_ir, &L->linear_up));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.conv_tp", ipre));
  PetscCall(HMConvTPSetUp(&L->tp, &L->in_ir, sh, &L->target, m->st, name));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.conv_tp_weights", ipre));
  PetscCall(HMRadialMLPSetUp(&L->mlp, m->st, name, m->num_bessel, nrh, radial_hidden, L->tp.weight_numel));
  for (int i = 0; i < L->mlp.nlayers; i++) m->nparams += L->mlp.h[i] * L->mlp.h[i + 1];
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.linear.weight", ipre));
  PetscCall(GetLinear(m, name, &L->tp.mid, &L->target, &L->linear));
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.skip_tp.weight", ipre));
  PetscCall(GetFlat(m, name, &W, &numel));
  PetscCall(HMSkipTPSetUp(&L->skip, skip_in, m->nel, skip_in, W, numel, name));
  PetscCall(HMSymContractionSetUp(&L->prod, m->st, ppre, &L->target, &m->H, L->corr, m->nel));
  for (int k = 0; k < L->prod.nout; k++)
    for (int nu = 1; nu <= L->corr; nu++) m->nparams += (PetscInt64)m->nel * L->prod.c[k].K[nu] * L->prod.C;
  PetscCall(PetscSNPrintf(name, sizeof(name), "%s.linear.weight", ppre));
  PetscCall(GetLinear(m, name, &m->H, &m->H, &L->prod_linear));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode SetupLayers(HMModel m, Cfg *c)
{
  HMIrreps Ifirst, Irest, S, tmp, C0, one;
  PetscInt radial_hidden[16];
  int      nrh, has0o = 0;
  json_t  *v;
  char     name[256], pre[128], ppre[128];
  PetscFunctionBegin;
  PetscCall(CfgGet(c, "radial_MLP", &v));
  PetscCall(CfgIntList(c, v, "radial_MLP", 16, &nrh, radial_hidden));
  C0.n     = 1;
  C0.b[0]  = (HMIrrep){(int)m->C, 0, 1};
  one.n    = 1;
  one.b[0] = (HMIrrep){1, 0, 1};
  /* I1 = (S * C).sort().simplify(); with 0o in H the later layers target both parities */
  tmp.n = 0;
  for (int l = 0; l <= m->max_ell; l++) tmp.b[tmp.n++] = (HMIrrep){(int)m->C, l, l % 2 ? -1 : 1};
  HMIrrepsSort(&tmp, &tmp, NULL);
  HMIrrepsSimplify(&tmp, &Ifirst);
  for (int k = 0; k < m->H.n; k++)
    if (m->H.b[k].l == 0 && m->H.b[k].p == -1) has0o = 1;
  if (has0o) {
    tmp.n = 0;
    for (int l = 0; l <= m->max_ell; l++) {
      tmp.b[tmp.n++] = (HMIrrep){(int)m->C, l, 1};
      tmp.b[tmp.n++] = (HMIrrep){(int)m->C, l, -1};
    }
    HMIrrepsSort(&tmp, &Irest, NULL);
  } else Irest = Ifirst;
  S = m->sh;
  for (int t = 0; t < m->nlayers; t++) {
    HMLayer *L = &m->layer[t];
    L->in_ir   = t == 0 ? C0 : m->H;
    L->target  = t == 0 ? Ifirst : Irest;
    PetscCall(PetscSNPrintf(pre, sizeof(pre), "interactions.%d", t));
    PetscCall(PetscSNPrintf(ppre, sizeof(ppre), "products.%d", t));
    PetscCall(GetLayer(m, L, pre, ppre, &S, t == 0 ? &L->target : &m->H, nrh, radial_hidden));
    if (t < m->nlayers - 1) {
      PetscCall(PetscSNPrintf(name, sizeof(name), "readouts.%d.linear.weight", t));
      PetscCall(GetLinear(m, name, &m->H, &one, &L->readout));
    } else {
      PetscCall(PetscSNPrintf(name, sizeof(name), "readouts.%d.linear_1.weight", t));
      PetscCall(GetLinear(m, name, &m->H, &m->MLP, &L->readout));
      PetscCall(PetscSNPrintf(name, sizeof(name), "readouts.%d.linear_2.weight", t));
      PetscCall(GetLinear(m, name, &m->MLP, &one, &L->readout2));
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode SetupHip(HMModel m, Cfg *c)
{
  PetscInt radial_hidden[16];
  int      nrh;
  json_t  *v;
  PetscFunctionBegin;
  m->O.n    = 3;
  m->O.b[0] = (HMIrrep){m->F, 0, 1};
  m->O.b[1] = (HMIrrep){m->F, 1, 1};
  m->O.b[2] = (HMIrrep){m->F, 2, 1};
  m->OUT.n  = 3;
  for (int l = 0; l < 3; l++) m->OUT.b[l] = (HMIrrep){1, l, 1};
  m->shh.n = 0;
  for (int l = 0; l <= m->hedge_lmax; l++) m->shh.b[m->shh.n++] = (HMIrrep){1, l, l % 2 ? -1 : 1};
  if (m->separate_radial) PetscCall(GetRadial(m, "hessian_radial_embedding", m->hessian_r_max, &m->hradial, m->hradial_freq));
  else m->hradial = m->radial;
  PetscCall(GetLinear(m, "hessian_proj_nodes_layerwise.weight", &m->H, &m->O, &m->proj_nodes_layerwise));
  PetscCall(GetLinear(m, "hessian_proj_nodes.weight", &m->O, &m->OUT, &m->proj_nodes));
  PetscCall(GetLinear(m, "hessian_proj_edges.weight", &m->O, &m->OUT, &m->proj_edges));
  PetscCall(GetLinear(m, "hessian_message_proj.weight", &m->H, &m->O, &m->message_proj));
  PetscCall(GetLinear(m, "hessian_interaction.linear_up.weight", &m->H, &m->H, &m->hi_linear_up));
  PetscCall(HMConvTPSetUp(&m->hi_tp, &m->H, &m->shh, &m->H, m->st, "hessian_interaction.conv_tp"));
  v = json_object_get(c->cfg, "hessian_radial_MLP");
  if (!v || json_is_null(v)) PetscCall(CfgGet(c, "radial_MLP", &v));
  PetscCall(CfgIntList(c, v, "hessian_radial_MLP", 16, &nrh, radial_hidden));
  PetscCall(HMRadialMLPSetUp(&m->hi_mlp, m->st, "hessian_interaction.conv_tp_weights", m->num_bessel, nrh, radial_hidden, m->hi_tp.weight_numel));
  for (int i = 0; i < m->hi_mlp.nlayers; i++) m->nparams += m->hi_mlp.h[i] * m->hi_mlp.h[i + 1];
  PetscCall(GetLinear(m, "hessian_interaction.linear.weight", &m->hi_tp.mid, &m->H, &m->hi_linear));
  /* layers entering the HIP head and their aggregation weights */
  m->hl0 = m->last_layer_only ? m->nlayers - 1 : 0;
  m->hnl = m->last_layer_only ? 1 : m->nlayers + m->nhx; /* hoextra: the extra Hessian layers enter the aggregation */
  if (m->learnable && m->hnl > 1) {
    PetscInt64          shape[1] = {-1};
    const double       *lg;
    const HMTensorInfo *info;
    double              mx = -PETSC_MAX_REAL, s = 0;
    PetscCall(HMSafetensorsGetF64(m->st, "hessian_layer_weights_param", 1, shape, &lg));
    PetscCall(HMSafetensorsFind(m->st, "hessian_layer_weights_param", &info));
    PetscCheck(info->numel >= m->hnl, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor 'hessian_layer_weights_param' has %lld entries, %d needed", m->path, (long long)info->numel, m->hnl);
    for (int t = 0; t < m->hnl; t++) mx = PetscMax(mx, lg[t]);
    for (int t = 0; t < m->hnl; t++) s += (m->hw[t] = PetscExpReal(lg[t] - mx));
    for (int t = 0; t < m->hnl; t++) m->hw[t] /= s;
    m->nparams += info->numel;
  } else
    for (int t = 0; t < m->hnl; t++) m->hw[t] = 1.0 / m->hnl;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* hoextra: the num_interactions_hessian extra layers hessian_interactions.k / hessian_products.k
   (MODEL_FORMAT_headopts.md section 3): residual interaction blocks of the main layers' shapes (input
   and output hidden_irreps, the main spherical harmonics and radial_MLP, the target irreps of the main
   layers t >= 1) and products of correlation correlation[-1]. */
static PetscErrorCode SetupHessianLayers(HMModel m, Cfg *c)
{
  PetscInt radial_hidden[16];
  int      nrh;
  json_t  *v;
  char     pre[128], ppre[128];
  HMIrreps target;
  PetscFunctionBegin;
  v = json_object_get(c->cfg, "num_interactions_hessian");
  if (v && !json_is_null(v)) PetscCall(CfgInt(c, "num_interactions_hessian", 0, HM_MAX_LAYERS - m->nlayers, &m->nhx));
  if (!m->nhx) PetscFunctionReturn(PETSC_SUCCESS);
  /* the reference feeds the Hessian edge attributes and radial features into blocks built for the main
     ones, without checking the sizes */
  PetscCheck(m->hedge_lmax == m->max_ell, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: num_interactions_hessian = %d needs hessian_edge_lmax (%d) = max_ell (%d)", m->path, m->nhx, m->hedge_lmax, m->max_ell);
  PetscCall(CfgGet(c, "radial_MLP", &v));
  PetscCall(CfgIntList(c, v, "radial_MLP", 16, &nrh, radial_hidden));
  /* the target irreps of the main layers t >= 1: (sh x C), both parities when hidden_irreps has 0o */
  {
    HMIrreps tmp;
    int      has0o = 0;
    for (int k = 0; k < m->H.n; k++)
      if (m->H.b[k].l == 0 && m->H.b[k].p == -1) has0o = 1;
    tmp.n = 0;
    for (int l = 0; l <= m->max_ell; l++) {
      if (has0o || l % 2 == 0) tmp.b[tmp.n++] = (HMIrrep){(int)m->C, l, 1};
      if (has0o || l % 2 == 1) tmp.b[tmp.n++] = (HMIrrep){(int)m->C, l, -1};
    }
    if (has0o) HMIrrepsSort(&tmp, &target, NULL);
    else {
      HMIrrepsSort(&tmp, &tmp, NULL);
      HMIrrepsSimplify(&tmp, &target);
    }
  }
  for (int k = 0; k < m->nhx; k++) {
    HMLayer *L = &m->hx[k];
    L->in_ir   = m->H;
    L->target  = target;
    L->corr    = m->layer[m->nlayers - 1].corr;
    PetscCall(PetscSNPrintf(pre, sizeof(pre), "hessian_interactions.%d", k));
    PetscCall(PetscSNPrintf(ppre, sizeof(ppre), "hessian_products.%d", k));
    PetscCall(GetLayer(m, L, pre, ppre, &m->sh, &m->H, nrh, radial_hidden));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The architecture choices the engine implements; everything else is refused by name. */
static PetscErrorCode ModelCheckArchitecture(Cfg *cp)
{
  const char *path = cp->path;
  json_t     *v;
  PetscFunctionBegin;
  if (json_object_get(cp->cfg, "model_class")) PetscCall(CfgRequireString(cp, "model_class", "ScaleShiftMACE"));
  PetscCall(CfgRequireString(cp, "interaction_cls", "RealAgnosticResidualInteractionBlock"));
  PetscCall(CfgRequireString(cp, "interaction_cls_first", "RealAgnosticInteractionBlock"));
  PetscCall(CfgRequireString(cp, "gate", "silu"));
  PetscCall(CfgRequireString(cp, "radial_type", "bessel"));
  PetscCall(CfgRequireString(cp, "readout_cls", "NonLinearReadoutBlock"));
  PetscCall(CfgRefuse(cp, "pair_repulsion", "ZBL pair repulsion"));
  PetscCall(CfgRefuse(cp, "distance_transform", "distance transform"));
  PetscCall(CfgRefuse(cp, "use_reduced_cg", "reduced Clebsch-Gordan basis"));
  PetscCall(CfgRefuse(cp, "use_so3", "SO(3) instead of O(3)"));
  PetscCall(CfgRefuse(cp, "use_agnostic_product", "element-agnostic product"));
  PetscCall(CfgRefuse(cp, "use_last_readout_only", "last readout only"));
  PetscCall(CfgRefuse(cp, "use_embedding_readout", "embedding readout"));
  PetscCall(CfgRefuse(cp, "embedding_specs", "extra embeddings"));
  PetscCall(CfgRefuse(cp, "edge_irreps", "edge_irreps different from hidden_irreps"));
  /* the reference implementation (hip-mace 932fee5, e3nn 0.4.4) cannot evaluate these either
     (MODEL_FORMAT_headopts.md): its edge gate receives 72 values where it needs 88, and e3nn 0.4.4 has
     no LayerNorm, so no trained model can carry them */
  PetscCall(CfgRefuse(cp, "hessian_use_edge_gates", "Hessian edge gates; the reference hip-mace cannot evaluate them either: its gate gets 72 values where it needs 88"));
  PetscCall(CfgRefuse(cp, "hessian_diag_norm", "Hessian diagonal norm layer; the reference hip-mace cannot build it either: e3nn 0.4.4 has no LayerNorm"));
  PetscCall(CfgRefuse(cp, "hessian_off_diag_norm", "Hessian off-diagonal norm layer; the reference hip-mace cannot build it either: e3nn 0.4.4 has no LayerNorm"));
  {
    int b;
    PetscCall(CfgBool(cp, "apply_cutoff", &b));
    PetscCheck(b, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option apply_cutoff = false is not supported", path);
    PetscCall(CfgBool(cp, "hip", &b));
    PetscCheck(b, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option hip = false: the model has no HIP Hessian head", path);
    if (json_object_get(cp->cfg, "hessian_use_radial")) {
      PetscCall(CfgBool(cp, "hessian_use_radial", &b));
      PetscCheck(b, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option hessian_use_radial = false is not supported", path);
    }
  }
  PetscCall(CfgGet(cp, "heads", &v));
  PetscCheck(json_is_array(v) && json_array_size(v) == 1, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option 'heads': only single-head models are supported", path);

  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The scalar hyper-parameters and the irreps of the config. */
static PetscErrorCode ModelReadHyper(HMModel m, Cfg *cp)
{
  const char *path = cp->path, *s = NULL;
  PetscFunctionBegin;
  PetscCall(CfgNumber(cp, "r_max", &m->r_max));
  PetscCall(CfgNumber(cp, "hessian_r_max", &m->hessian_r_max));
  PetscCheck(m->r_max > 0 && m->hessian_r_max > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config cutoffs r_max and hessian_r_max must be positive", path);
  PetscCall(CfgNumber(cp, "avg_num_neighbors", &m->avg_num_neighbors));
  PetscCheck(m->avg_num_neighbors > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key 'avg_num_neighbors' must be positive", path);
  PetscCall(CfgInt(cp, "num_bessel", 1, 32, &m->num_bessel));
  PetscCall(CfgInt(cp, "num_polynomial_cutoff", 1, 32, &m->p_cut));
  PetscCall(CfgInt(cp, "max_ell", 0, 3, &m->max_ell));
  PetscCall(CfgInt(cp, "num_interactions", 1, HM_MAX_LAYERS, &m->nlayers));
  PetscCall(CfgInt(cp, "hessian_feature_dim", 1, 100000, &m->F));
  PetscCall(CfgInt(cp, "hessian_edge_lmax", 0, 3, &m->hedge_lmax));
  PetscCall(CfgBool(cp, "hessian_separate_radial_network", &m->separate_radial));
  PetscCall(CfgBool(cp, "hessian_use_last_layer_only", &m->last_layer_only));
  PetscCall(CfgString(cp, "hessian_aggregation", &s));
  PetscCheck(!strcmp(s, "learnable") || !strcmp(s, "mean"), PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config option hessian_aggregation = '%s' is not supported (learnable, mean)", path, s);
  m->learnable = !strcmp(s, "learnable");
  PetscCall(CfgString(cp, "hidden_irreps", &s));
  PetscCall(HMIrrepsParse(s, &m->H));
  for (int k = 0; k < m->H.n; k++) PetscCheck(m->H.b[k].l <= 3, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: hidden_irreps '%s': l > 3 is not supported", path, s);
  PetscCheck(HMIrrepsContains(&m->H, 0, 1), PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: hidden_irreps '%s' has no 0e block", path, s);
  m->C = 0;
  for (int k = 0; k < m->H.n; k++)
    if (m->H.b[k].l == 0 && m->H.b[k].p == 1) m->C += m->H.b[k].mul;
  m->dimH = HMIrrepsDim(&m->H);
  PetscCall(CfgString(cp, "MLP_irreps", &s));
  PetscCall(HMIrrepsParse(s, &m->MLP));
  PetscCheck(m->MLP.n == 1 && m->MLP.b[0].l == 0 && m->MLP.b[0].p == 1, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: MLP_irreps '%s' must be scalars (Nx0e)", path, s);
  m->sh.n = 0;
  for (int l = 0; l <= m->max_ell; l++) m->sh.b[m->sh.n++] = (HMIrrep){1, l, l % 2 ? -1 : 1};

  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The elements, their reference energies, scale/shift and the tensors repeating config values. */
static PetscErrorCode ModelReadElements(HMModel m, Cfg *cp)
{
  const char *path = cp->path;
  json_t     *v;
  PetscFunctionBegin;
  /* elements */
  PetscCall(CfgGet(cp, "atomic_numbers", &v));
  PetscCheck(json_is_array(v) && json_array_size(v) >= 1 && json_array_size(v) <= HM_MAX_ELEMENTS, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config key 'atomic_numbers' must be a list of 1..%d integers", path, HM_MAX_ELEMENTS);
  m->nel = (int)json_array_size(v);
  {
    PetscInt64        shape[1] = {m->nel}, shape2[2] = {1, m->nel};
    const PetscInt64 *z;
    const double     *e0;
    json_t           *ae;
    PetscCall(HMSafetensorsGetI64(m->st, "atomic_numbers", 1, shape, &z));
    for (int e = 0; e < m->nel; e++) {
      json_t *ze = json_array_get(v, (size_t)e);
      PetscCheck(json_is_integer(ze) && json_integer_value(ze) >= 1 && json_integer_value(ze) <= HM_MAX_Z, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config 'atomic_numbers' entry %d is not an element number", path, e);
      m->Z[e] = (int)json_integer_value(ze);
      PetscCheck(z[e] == m->Z[e], PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor 'atomic_numbers' differs from the config at entry %d", path, e);
    }
    if (json_object_get(cp->cfg, "num_elements")) {
      int ne;
      PetscCall(CfgInt(cp, "num_elements", 1, HM_MAX_ELEMENTS, &ne));
      PetscCheck(ne == m->nel, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: config num_elements = %d but atomic_numbers has %d entries", path, ne, m->nel);
    }
    PetscCall(HMSafetensorsGetF64(m->st, "atomic_energies_fn.atomic_energies", 2, shape2, &e0));
    for (int e = 0; e < m->nel; e++) m->e0[e] = e0[e];
    ae = json_object_get(cp->cfg, "atomic_energies");
    (void)ae;
  }
  {
    PetscInt64    shape[1] = {1};
    const double *x;
    PetscCall(HMSafetensorsGetF64(m->st, "scale_shift.scale", 1, shape, &x));
    m->scale = x[0];
    PetscCall(HMSafetensorsGetF64(m->st, "scale_shift.shift", 1, shape, &x));
    m->shift = x[0];
  }
  {
    double x = 0;
    PetscCall(GetScalar(m, "r_max", &x));
    PetscCheck(x == m->r_max, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor 'r_max' (%g) differs from the config (%g)", path, x, m->r_max);
    PetscCall(GetScalar(m, "hessian_r_max", &x));
    PetscCheck(x == m->hessian_r_max, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor 'hessian_r_max' (%g) differs from the config (%g)", path, x, m->hessian_r_max);
  }
  {
    const PetscInt64 *ni;
    PetscCall(HMSafetensorsGetI64(m->st, "num_interactions", 0, NULL, &ni));
    PetscCheck(ni[0] == m->nlayers, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor 'num_interactions' differs from the config", path);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Everything HMModelLoad does after allocating m; the parsed config is returned in *cfg (freed by the
   caller, also on error). */
static PetscErrorCode ModelLoad(HMModel m, MPI_Comm comm, const char path[], json_t **cfg)
{
  const char  *fmt = NULL, *cfgtxt = NULL;
  json_error_t jerr;
  Cfg          c;
  json_t      *v;
  PetscFunctionBegin;
  m->comm = comm;
  PetscCall(PetscStrallocpy(path, &m->path));
  PetscCall(HMSafetensorsOpen(comm, path, &m->st));
  PetscCall(HMSafetensorsGetMetadata(m->st, "format", &fmt));
  PetscCheck(fmt && !strcmp(fmt, "hip-mace-safetensors-1"), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: metadata 'format' is %s%s%s, expected 'hip-mace-safetensors-1'", path, fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
  PetscCall(HMSafetensorsGetMetadata(m->st, "config", &cfgtxt));
  PetscCheck(cfgtxt, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: metadata 'config' is missing", path);
  c.cfg  = json_loads(cfgtxt, 0, &jerr);
  c.path = path;
  *cfg   = c.cfg;
  PetscCheck(c.cfg && json_is_object(c.cfg), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: metadata 'config' is not a JSON object (%s at column %d)", path, c.cfg ? "not an object" : jerr.text, jerr.column);

  PetscCall(ModelCheckArchitecture(&c));
  PetscCall(ModelReadHyper(m, &c));
  PetscCall(ModelReadElements(m, &c));
  /* correlation: one number or one per layer */
  PetscCall(CfgGet(&c, "correlation", &v));
  for (int t = 0; t < m->nlayers; t++) {
    json_t *ct = json_is_array(v) ? json_array_get(v, (size_t)t) : v;
    PetscCheck(ct && json_is_integer(ct) && json_integer_value(ct) >= 1 && json_integer_value(ct) <= 4, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: config key 'correlation' must be an integer 1..4 or a list of them (one per layer)", path);
    m->layer[t].corr = (int)json_integer_value(ct);
  }
  PetscCall(GetRadial(m, "radial_embedding", m->r_max, &m->radial, m->radial_freq));
  {
    HMIrreps in, out;
    in.n     = 1;
    in.b[0]  = (HMIrrep){m->nel, 0, 1};
    out.n    = 1;
    out.b[0] = (HMIrrep){(int)m->C, 0, 1};
    PetscCall(GetLinear(m, "node_embedding.linear.weight", &in, &out, &m->embedding));
  }
  PetscCall(SetupLayers(m, &c));
  PetscCall(SetupHessianLayers(m, &c)); /* hoextra */
  PetscCall(SetupHip(m, &c));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModelLoad(MPI_Comm comm, const char path[], HMModel *model)
{
  HMModel        m;
  json_t        *cfg = NULL;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  *model = NULL;
  PetscCall(PetscNew(&m));
  /* a model file refused half-way must not leak what was set up so far (library callers go on) */
  ierr = ModelLoad(m, comm, path, &cfg);
  if (cfg) json_decref(cfg);
  if (ierr) {
    PetscCall(HMModelDestroy(&m));
    PetscFunctionReturn(ierr);
  }
  *model = m;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LinearsDestroy(size_t n, HMLinear *lin[])
{
  PetscFunctionBegin;
  for (size_t k = 0; k < n; k++) PetscCall(HMLinearDestroy(lin[k]));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The parts of one interaction + product layer (a main layer or an extra Hessian layer; readouts only on
   main layers, readout2 only on the last: destroying an unset part is a no-op). */
static PetscErrorCode LayerDestroy(HMLayer *L)
{
  HMLinear *lin[] = {&L->linear_up, &L->linear, &L->prod_linear, &L->readout, &L->readout2};

  PetscFunctionBegin;
  PetscCall(LinearsDestroy(PETSC_STATIC_ARRAY_LENGTH(lin), lin));
  PetscCall(HMRadialMLPDestroy(&L->mlp));
  PetscCall(HMConvTPDestroy(&L->tp));
  PetscCall(HMSkipTPDestroy(&L->skip));
  PetscCall(HMSymContractionDestroy(&L->prod));
  PetscCall(HMLayerSingleDestroy(L));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMModelDestroy(HMModel *model)
{
  HMModel m = *model;
  PetscFunctionBegin;
  if (!m) PetscFunctionReturn(PETSC_SUCCESS);
  {
    HMLinear *lin[] = {&m->embedding, &m->proj_nodes_layerwise, &m->proj_nodes, &m->proj_edges, &m->message_proj, &m->hi_linear_up, &m->hi_linear};
    PetscCall(LinearsDestroy(PETSC_STATIC_ARRAY_LENGTH(lin), lin));
  }
  for (int t = 0; t < m->nlayers; t++) PetscCall(LayerDestroy(&m->layer[t]));
  for (int k = 0; k < m->nhx; k++) PetscCall(LayerDestroy(&m->hx[k])); /* hoextra */
  PetscCall(HMRadialMLPDestroy(&m->hi_mlp));
  PetscCall(HMConvTPDestroy(&m->hi_tp));
  PetscCall(HMSafetensorsClose(&m->st));
  PetscCall(PetscFree(m->path));
  PetscCall(PetscFree(m));
  *model = NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMModel, Path, const char *, path)

PetscErrorCode HMModelGetCutoffs(HMModel m, double *r_max, double *hessian_r_max, double *hcut)
{
  PetscFunctionBegin;
  if (r_max) *r_max = m->r_max;
  if (hessian_r_max) *hessian_r_max = m->hessian_r_max;
  /* without a separate Hessian radial network the shared envelope vanishes at r_max: every longer
     Hessian edge has zero radial features, hence zero weights and an exactly zero block */
  if (hcut) *hcut = m->separate_radial ? m->hessian_r_max : PetscMin(m->hessian_r_max, m->r_max);
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET(HMModel, NumInteractions, PetscInt, nlayers)

HM_ACCESSOR_GET(HMModel, FeatureDim, PetscInt, dimH)

PetscErrorCode HMModelGetHaloWidths(HMModel m, PetscInt width[], PetscInt *hip)
{
  PetscFunctionBegin;
  for (int t = 0; t < m->nlayers; t++) width[t] = HMIrrepsDim(&m->layer[t].in_ir);
  if (hip) *hip = m->hnl * m->dimH;
  PetscFunctionReturn(PETSC_SUCCESS);
}

int HMModelElementIndex(HMModel m, int Z)
{
  for (int e = 0; e < m->nel; e++)
    if (m->Z[e] == Z) return e;
  return -1;
}

PetscErrorCode HMModelView(HMModel m, PetscViewer viewer)
{
  char   buf[512];
  double hcut;
  PetscFunctionBegin;
  PetscCall(HMModelGetCutoffs(m, NULL, NULL, &hcut));
  PetscCall(PetscViewerASCIIPrintf(viewer, "HIP-MACE model %s\n", m->path));
  HMIrrepsToString(&m->H, buf, sizeof(buf));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  hidden irreps %s, %d interaction layers, correlation", buf, m->nlayers));
  for (int t = 0; t < m->nlayers; t++) PetscCall(PetscViewerASCIIPrintf(viewer, " %d", m->layer[t].corr));
  PetscCall(PetscViewerASCIIPrintf(viewer, ", max_ell %d\n", m->max_ell));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  elements:"));
  for (int e = 0; e < m->nel; e++) PetscCall(PetscViewerASCIIPrintf(viewer, " %s", HMElementSymbol(m->Z[e])));
  /* the file records the element table (atomic_numbers, with an E0 each), not which elements the training data had */
  PetscCall(PetscViewerASCIIPrintf(viewer, " (the model's element table; the file does not record which of them the training data contained: see the model's documentation)"));
  PetscCall(PetscViewerASCIIPrintf(viewer, "\n  r_max %g A, %d Bessel functions, polynomial cutoff p = %d\n", m->r_max, m->num_bessel, m->p_cut));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  HIP head: feature dim %d, hessian_r_max %g A, edge lmax %d, aggregation %s over %d layer(s), %s radial network\n", m->F, m->hessian_r_max, m->hedge_lmax, m->learnable ? "learnable" : "mean", m->hnl,
                                   m->separate_radial ? "separate" : "shared"));
  if (m->nhx) /* hoextra */
    PetscCall(PetscViewerASCIIPrintf(viewer, "  %d extra Hessian interaction layer(s) (num_interactions_hessian) on the Hessian graph, correlation %d, %s radial network, %s\n", m->nhx, m->hx[0].corr, m->separate_radial ? "separate" : "shared",
                                     m->last_layer_only ? "computed but not used (hessian_use_last_layer_only, as the reference)" : "aggregated with the main layers"));
  PetscCall(PetscViewerASCIIPrintf(viewer, "  effective Hessian cutoff %g A\n", hcut));
  {
    const HMTensorInfo *dead;
    PetscCall(HMSafetensorsFind(m->st, "hessian_interaction.skip_tp.weight", &dead));
    PetscCall(PetscViewerASCIIPrintf(viewer, "  parameters %lld used by the forward pass", (long long)m->nparams));
    if (dead) PetscCall(PetscViewerASCIIPrintf(viewer, " (+%lld in hessian_interaction.skip_tp, which the reference computes and discards)", (long long)dead->numel));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "  node features %" PetscInt_FMT " doubles per atom per layer (%.1f kB per atom for all layers)\n", m->dimH, (double)m->dimH * (m->nlayers + m->nhx) * 8.0 / 1024.0));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* MACE symmetric contraction with the generalised Clebsch-Gordan U matrices stored sparse. */
#include <hipmace/nn.h>

static PetscInt ipow(PetscInt b, int e)
{
  PetscInt r = 1;
  while (e-- > 0) r *= b;
  return r;
}

PetscErrorCode HMSymContractionSetUp(HMSymContraction *sc, HMSafetensors st, const char prefix[], const HMIrreps *target, const HMIrreps *hidden, int corr, int nel)
{
  const char *path;
  PetscInt    C = target->b[0].mul, Q = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(sc, sizeof(*sc)));
  PetscCall(HMSafetensorsGetPath(st, &path));
  PetscCheck(corr >= 1 && corr <= 7, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: correlation %d is not supported (1..7)", path, corr);
  for (int k = 0; k < target->n; k++) {
    PetscCheck(target->b[k].mul == C, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %s: all blocks of the interaction irreps must have the same multiplicity", path, prefix);
    Q += 2 * target->b[k].l + 1;
  }
  for (int k = 0; k < hidden->n; k++) PetscCheck(hidden->b[k].mul == C, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: hidden_irreps must have equal multiplicities (MACE requirement)", path);
  sc->C    = C;
  sc->Q    = Q;
  sc->out  = *hidden;
  sc->nout = hidden->n;
  PetscCall(PetscCalloc1(hidden->n, &sc->c));
  sc->maxstate = 0;
  for (int k = 0; k < hidden->n; k++) {
    HMContraction *c = &sc->c[k];
    const int      L = hidden->b[k].l, d = 2 * L + 1;
    c->L           = L;
    c->corr        = corr;
    c->nel         = nel;
    c->C           = C;
    c->Q           = Q;
    for (int nu = 1; nu <= corr; nu++) {
      char                name[256];
      const HMTensorInfo *info;
      PetscInt64          shape[10];
      int                 nd = 0;
      const double       *U, *W;
      PetscInt            rows, cnt = 0;

      PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.U_matrix_%d", prefix, k, nu));
      PetscCall(HMSafetensorsGetInfo(st, name, HM_DTYPE_F64, &info));
      if (L > 0) shape[nd++] = d;
      for (int q = 0; q < nu; q++) shape[nd++] = Q;
      shape[nd++] = -1;
      PetscCall(HMSafetensorsGetF64(st, name, nd, shape, &U));
      c->K[nu] = (PetscInt)info->shape[nd - 1];
      rows     = d * ipow(Q, nu);
      for (PetscInt t = 0; t < rows * c->K[nu]; t++)
        if (U[t] != 0.0) cnt++;
      c->nnz[nu] = cnt;
      PetscCall(PetscMalloc3(cnt + 1, &c->row[nu], cnt + 1, &c->kk[nu], cnt + 1, &c->val[nu]));
      cnt = 0;
      for (PetscInt t = 0; t < rows * c->K[nu]; t++)
        if (U[t] != 0.0) {
          c->row[nu][cnt] = t / c->K[nu];
          c->kk[nu][cnt]  = (int)(t % c->K[nu]);
          c->val[nu][cnt] = U[t];
          cnt++;
        }
      if (nu == corr) PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.weights_max", prefix, k));
      else PetscCall(PetscSNPrintf(name, sizeof(name), "%s.symmetric_contractions.contractions.%d.weights.%d", prefix, k, corr - 1 - nu));
      {
        PetscInt64 ws[3] = {nel, c->K[nu], C};
        PetscCall(HMSafetensorsGetF64(st, name, 3, ws, &W));
      }
      c->W[nu] = W;
      /* fold the weights into U per element: distinct rows are runs, since the non-zeros come in
         increasing flat index (row-major over r, then k) */
      {
        PetscInt np = 0;
        for (PetscInt t = 0; t < c->nnz[nu]; t++)
          if (t == 0 || c->row[nu][t] != c->row[nu][t - 1]) np++;
        c->npair[nu] = np;
        PetscCall(PetscMalloc1(np + 1, &c->prow[nu]));
        PetscCall(PetscMalloc1(np + 1, &c->pM[nu]));
        PetscCall(PetscMalloc1(nu * np + 1, &c->pq[nu]));
        PetscCall(PetscCalloc1(nel * np * C + 1, &c->Uw[nu]));
        np = -1;
        for (PetscInt t = 0; t < c->nnz[nu]; t++) {
          /* (rows of one run share everything but the last index q_nu: their sum over q_nu is one
             multiply per entry, the shared prefix product is applied once per run) */
          if (t == 0 || c->row[nu][t] != c->row[nu][t - 1]) {
            PetscInt r = c->row[nu][t];
            c->prow[nu][++np] = r;
            for (int i = nu - 1; i >= 0; i--) {
              c->pq[nu][np * nu + i] = (int)(r % Q);
              r /= Q;
            }
            c->pM[nu][np] = (int)r;
          }
          for (int e = 0; e < nel; e++) {
            double       *u = c->Uw[nu] + ((PetscInt)e * c->npair[nu] + np) * C;
            const double *w = W + ((PetscInt)e * c->K[nu] + c->kk[nu][t]) * C;
            for (PetscInt cc = 0; cc < C; cc++) u[cc] += c->val[nu][t] * w[cc];
          }
        }
        {
          PetscInt ng = 0;
          for (PetscInt p = 0; p < c->npair[nu]; p++)
            if (p == 0 || c->prow[nu][p] / Q != c->prow[nu][p - 1] / Q) ng++;
          c->ngroup[nu] = ng;
          PetscCall(PetscMalloc1(ng + 1, &c->gstart[nu]));
          ng = 0;
          for (PetscInt p = 0; p < c->npair[nu]; p++)
            if (p == 0 || c->prow[nu][p] / Q != c->prow[nu][p - 1] / Q) c->gstart[nu][ng++] = p;
          c->gstart[nu][ng] = c->npair[nu];
        }
      }
    }
    c->maxstate  = d * ipow(Q, corr - 1);
    sc->maxstate = PetscMax(sc->maxstate, c->maxstate);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSymContractionDestroy(HMSymContraction *sc)
{
  PetscFunctionBegin;
  for (int k = 0; k < sc->nout; k++)
    for (int nu = 1; nu <= sc->c[k].corr; nu++) {
      PetscCall(PetscFree3(sc->c[k].row[nu], sc->c[k].kk[nu], sc->c[k].val[nu]));
      PetscCall(PetscFree(sc->c[k].prow[nu]));
      PetscCall(PetscFree(sc->c[k].pM[nu]));
      PetscCall(PetscFree(sc->c[k].pq[nu]));
      PetscCall(PetscFree(sc->c[k].gstart[nu]));
      PetscCall(PetscFree(sc->c[k].Uw[nu]));
    }
  PetscCall(PetscFree(sc->c));
  PetscCall(PetscMemzero(sc, sizeof(*sc)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscInt HMSymContractionWorkSize(const HMSymContraction *sc)
{
  return sc->C * (sc->Q + 2 * 7 + 2);
}

void HMSymContractionApply(const HMSymContraction *sc, const HMIrreps *target, PetscInt n, const int elem[], const double *X, PetscInt ldx, double *out, PetscInt ldo, double *work)
{
  const PetscInt C = sc->C, Q = sc->Q;
  double        *Xt = work, *acc = work + Q * C, *prod = acc + 7 * C;

  for (PetscInt z = 0; z < n; z++) {
    const double *x = X + z * ldx;
    const int     e = elem[z];
    PetscInt      q0 = 0, xo = 0, oo = 0;

    /* Xt[q][c]: channel-innermost copy of the node's features (q runs over the coupling irreps) */
    for (int k = 0; k < target->n; k++) {
      const int d = 2 * target->b[k].l + 1;
      for (PetscInt c = 0; c < C; c++)
        for (int m = 0; m < d; m++) Xt[(q0 + m) * C + c] = x[xo + c * d + m];
      q0 += d;
      xo += C * d;
    }
    for (int k = 0; k < sc->nout; k++) {
      const HMContraction *ct = &sc->c[k];
      const int            d  = 2 * ct->L + 1;
      for (PetscInt q = 0; q < d * C; q++) acc[q] = 0.0;
      for (int nu = 1; nu <= ct->corr; nu++) {
        const double *Uw = ct->Uw[nu] + (PetscInt)e * ct->npair[nu] * C;
        for (PetscInt g = 0; g < ct->ngroup[nu]; g++) {
          const PetscInt p0 = ct->gstart[nu][g], p1 = ct->gstart[nu][g + 1];
          const int     *q  = ct->pq[nu] + p0 * nu;
          double        *a  = acc + (PetscInt)ct->pM[nu][p0] * C;
          /* s = sum over the run of Uw[p] X[q_nu(p)] */
          for (PetscInt c = 0; c < C; c++) prod[c] = 0.0;
          for (PetscInt p = p0; p < p1; p++) {
            const double *u = Uw + p * C, *xl = Xt + (PetscInt)ct->pq[nu][p * nu + nu - 1] * C;
            for (PetscInt c = 0; c < C; c++) prod[c] += u[c] * xl[c];
          }
          /* times the shared prefix X[q1] ... X[q_{nu-1}] */
          for (int i = 0; i < nu - 1; i++) {
            const double *xi = Xt + (PetscInt)q[i] * C;
            for (PetscInt c = 0; c < C; c++) prod[c] *= xi[c];
          }
          for (PetscInt c = 0; c < C; c++) a[c] += prod[c];
        }
      }
      /* out[c*d + M] = acc[M][c] (e3nn channel-major layout of the block) */
      for (PetscInt c = 0; c < C; c++)
        for (int M = 0; M < d; M++) out[z * ldo + oo + c * d + M] = acc[M * C + c];
      oo += C * d;
    }
  }
}

/* HMSummary: the results lines of a run and its -summary JSON file (natoms, energy, timings, per-rank
   figures for scaling studies, normal modes). */
#include <hipmace/summary.h>
#include "sys/sysimpl.h"
#include <hipmace/app.h>
#include <hipmace/log.h>
#include <jansson.h>
#include "appimpl.h"

#define HM_SUMMARY_MAXTIMINGS 16

struct _p_HMSummary {
  MPI_Comm comm;
  char     structure[PETSC_MAX_PATH_LEN], model[PETSC_MAX_PATH_LEN], htype[16];
  double   mem_max, mem_tot;
  double   tstart, tlast;
  int      ntm;
  char     tname[HM_SUMMARY_MAXTIMINGS][32];
  double   t[HM_SUMMARY_MAXTIMINGS];
  /* results (this rank's share where it says so) */
  PetscBool   have_results;
  PetscInt    natoms, nlayers, nowned, nnear, nfar, hipw, widths[16];
  PetscInt64  nblocks, lblocks;
  double      energy, rmax, hrmax, hcut;
  HMPrecision precision; /* of the interaction layers */
  HMModes     modes;
  HMOptimizer opt; /* -optimize: its results (borrowed) */
  /* forces (HMSummarySetForces): this rank's block of input order, atoms [flo, flo + fnb), as [fnb][8]
     records (input index, Z, position, force); no rank holds all */
  PetscBool have_forces, have_stress;
  PetscInt  flo, fnb;
  double   *fblk, fmax, stress[9];
};

/* 1 eV/A^3 in GPa */

PetscErrorCode HMSummaryCreate(MPI_Comm comm, HMSummary *out)
{
  HMSummary s;
  PetscFunctionBegin;
  PetscCall(PetscNew(&s));
  s->comm = comm;
  *out    = s;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummaryDestroy(HMSummary *s)
{
  PetscFunctionBegin;
  if (*s) PetscCall(PetscFree((*s)->fblk));
  PetscCall(PetscFree(*s));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummarySetInputs(HMSummary s, const char structure[], const char model[], const char htype[])
{
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(s->structure, structure, sizeof(s->structure)));
  PetscCall(PetscStrncpy(s->model, model, sizeof(s->model)));
  PetscCall(PetscStrncpy(s->htype, htype, sizeof(s->htype)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummarySetMemoryEstimate(HMSummary s, double max_bytes, double total_bytes)
{
  PetscFunctionBegin;
  s->mem_max = max_bytes;
  s->mem_tot = total_bytes;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummaryTimingBegin(HMSummary s)
{
  PetscFunctionBegin;
  s->tstart = s->tlast = MPI_Wtime();
  s->ntm               = 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode AddTiming(HMSummary s, const char name[], double t)
{
  PetscFunctionBegin;
  PetscCheck(s->ntm < HM_SUMMARY_MAXTIMINGS, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "summary: at most %d timings", HM_SUMMARY_MAXTIMINGS);
  PetscCall(PetscStrncpy(s->tname[s->ntm], name, sizeof(s->tname[0])));
  s->t[s->ntm++] = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummaryTimingLap(HMSummary s, const char name[])
{
  const double now = MPI_Wtime();
  PetscFunctionBegin;
  PetscCall(AddTiming(s, name, now - s->tlast));
  s->tlast = now;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummaryTimingEnd(HMSummary s)
{
  PetscFunctionBegin;
  PetscCall(AddTiming(s, "total", s->tlast - s->tstart));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The one place that reads the evaluation's results. */
PetscErrorCode HMSummarySetResults(HMSummary s, HMModel model, HMEval ev, HMHessian hs)
{
  HMDecomp dd;
  PetscFunctionBegin;
  PetscCall(HMEvalGetEnergy(ev, &s->energy, NULL));
  PetscCall(HMEvalGetDecomp(ev, &dd));
  PetscCall(HMDecompGetSizes(dd, &s->natoms, &s->nowned, NULL, NULL));
  PetscCall(HMDecompGetHaloSize(dd, HM_HALO_NEAR, &s->nnear));
  PetscCall(HMDecompGetHaloSize(dd, HM_HALO_FAR, &s->nfar));
  PetscCall(HMHessianGetBlockCount(hs, &s->lblocks, &s->nblocks));
  PetscCall(HMModelGetCutoffs(model, &s->rmax, &s->hrmax, NULL));
  PetscCall(HMEvalGetHessianCutoff(ev, &s->hcut)); /* the one in force (-hessian_prune false: hessian_r_max) */
  PetscCall(HMEvalGetPrecision(ev, &s->precision));
  PetscCall(HMModelGetNumInteractions(model, &s->nlayers));
  PetscCheck(s->nlayers <= 16, PETSC_COMM_SELF, PETSC_ERR_SUP, "summary: %" PetscInt_FMT " interaction layers; at most 16 supported", s->nlayers);
  PetscCall(HMModelGetHaloWidths(model, s->widths, NULL));
  PetscCall(HMHessianGetHaloWidth(hs, &s->hipw));
  s->have_results = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummarySetForces(HMSummary s, HMEval ev)
{
  PetscInt N;
  PetscFunctionBegin;
  PetscCall(PetscFree(s->fblk));
  PetscCall(HMForcesToBlocks_Private(ev, &N, &s->flo, &s->fnb, &s->fblk));
  PetscCall(HMEvalGetMaxForce(ev, &s->fmax));
  PetscCall(HMEvalGetStress(ev, &s->have_stress, s->stress));
  s->have_forces = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET(HMSummary, Modes, HMModes, modes)

HM_ACCESSOR_SET(HMSummary, Optimizer, HMOptimizer, opt)

PetscErrorCode HMSummaryView(HMSummary s, PetscViewer v)
{
  PetscFunctionBegin;
  PetscCheck(s->have_results, s->comm, PETSC_ERR_ORDER, "HMSummarySetResults() first");
  PetscCall(PetscViewerASCIIPrintf(v, "hipmace %s: %" PetscInt_FMT " atoms (%s), model %s\n", HM_VERSION, s->natoms, s->structure, s->model));
  PetscCall(PetscViewerASCIIPrintf(v, "  energy            %.10f eV\n", s->energy));
  PetscCall(PetscViewerASCIIPrintf(v, "  Hessian           %" PetscInt_FMT " x %" PetscInt_FMT ", %lld stored 3x3 blocks (%s), cutoff %g A (hessian_r_max %g A)\n", 3 * s->natoms, 3 * s->natoms, (long long)s->nblocks, s->htype, s->hcut, s->hrmax));
  if (s->precision == HM_PRECISION_SINGLE) PetscCall(PetscViewerASCIIPrintf(v, "  precision         single: the layers' radial MLPs, tensor products and linear maps, and the folded HIP edge kernel, in float32\n"));
  if (s->have_forces) PetscCall(PetscViewerASCIIPrintf(v, "  forces            max |F| %.6f eV/A\n", s->fmax));
  if (s->have_stress) PetscCall(PetscViewerASCIIPrintf(v, "  stress            pressure %.6f GPa (-trace/3)\n", -(s->stress[0] + s->stress[4] + s->stress[8]) / 3 * HM_EV_A3_GPA));
  if (s->modes) PetscCall(HMModesView(s->modes, v));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSummaryViewTimings(HMSummary s, PetscViewer v)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(v, "  timings [s]      "));
  for (int k = 0; k < s->ntm; k++) PetscCall(PetscViewerASCIIPrintf(v, " %s %.3f", s->tname[k], s->t[k]));
  PetscCall(PetscViewerASCIIPrintf(v, "\n"));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static double Timing(HMSummary s, const char name[])
{
  for (int k = 0; k < s->ntm; k++)
    if (!strcmp(s->tname[k], name)) return s->t[k];
  return 0.0;
}

/* The "parallel" object (rank 0; NULL elsewhere): per-rank atoms, blocks, ghosts and peak RSS, halo
   bytes, per-stage max/min over ranks and the load imbalance of the distributed work. */
static PetscErrorCode ParallelJSON(HMSummary s, json_t **out)
{
  double      tmax[HM_SUMMARY_MAXTIMINGS], tmin[HM_SUMMARY_MAXTIMINGS], rss_kb = HMMemoryRSS(PETSC_TRUE) / 1024.0, mine[6], *all = NULL;
  PetscMPIInt size, rank;
  PetscFunctionBegin;
  *out = NULL;
  PetscCallMPI(MPI_Comm_size(s->comm, &size));
  PetscCallMPI(MPI_Comm_rank(s->comm, &rank));
  for (int k = 0; k < s->ntm; k++) tmax[k] = tmin[k] = s->t[k];
  PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmax, s->ntm, MPI_DOUBLE, MPI_MAX, s->comm));
  PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmin, s->ntm, MPI_DOUBLE, MPI_MIN, s->comm));
  mine[0] = (double)s->nowned;
  mine[1] = (double)s->lblocks;
  mine[2] = (double)s->nnear;
  mine[3] = (double)s->nfar;
  mine[4] = rss_kb / 1024.0;
  mine[5] = Timing(s, "layers") + Timing(s, "hessian"); /* the work that is spread over the ranks */
  if (rank == 0) PetscCall(PetscMalloc1(6 * size, &all));
  PetscCallMPI(MPI_Gather(mine, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, 0, s->comm));
  if (rank == 0) {
    const char *names[5] = {"atoms_per_rank", "hessian_blocks_per_rank", "halo_atoms_near_per_rank", "halo_atoms_far_per_rank", "peak_rss_mb_per_rank"};
    json_t     *par = json_object(), *tx = json_object(), *tn = json_object(), *hb = json_array();
    double      wmax = 0, wsum = 0, nearmax = 0, farmax = 0;
    for (int c = 0; c < 5; c++) {
      json_t *a = json_array();
      for (PetscMPIInt q = 0; q < size; q++) json_array_append_new(a, c == 4 ? json_real(all[6 * q + c]) : json_integer((json_int_t)all[6 * q + c]));
      json_object_set_new(par, names[c], a);
    }
    for (PetscMPIInt q = 0; q < size; q++) {
      wmax = PetscMax(wmax, all[6 * q + 5]);
      wsum += all[6 * q + 5];
      nearmax = PetscMax(nearmax, all[6 * q + 2]);
      farmax  = PetscMax(farmax, all[6 * q + 3]);
    }
    /* load imbalance of the distributed work: slowest rank / mean */
    json_object_set_new(par, "load_imbalance", json_real(wsum > 0 ? wmax / (wsum / size) : 1.0));
    for (PetscInt t = 0; t < s->nlayers; t++) json_array_append_new(hb, json_real(nearmax * s->widths[t] * 8.0));
    json_object_set_new(par, "halo_bytes_per_layer_max_rank", hb);
    json_object_set_new(par, "halo_bytes_hip_max_rank", json_real(farmax * s->hipw * 8.0));
    for (int k = 0; k < s->ntm; k++) {
      json_object_set_new(tx, s->tname[k], json_real(tmax[k]));
      json_object_set_new(tn, s->tname[k], json_real(tmin[k]));
    }
    json_object_set_new(par, "timings_max", tx);
    json_object_set_new(par, "timings_min", tn);
    PetscCall(PetscFree(all));
    *out = par;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The "forces" array's elements of this rank's block, formatted exactly as json_dumps(JSON_INDENT(2) |
   JSON_REAL_PRECISION(17)) formats them at depth 1 of the summary: each atom's [fx, fy, fz] by jansson itself,
   re-indented, after "\n" (the first atom) or ",\n". */
static PetscErrorCode ForcesPartJSON(HMSummary s, char **buf, size_t *len, size_t *cap)
{
  PetscFunctionBegin;
  for (PetscInt k = 0; k < s->fnb; k++) {
    const double *r  = s->fblk + 8 * k;
    json_t       *jf = json_pack("[fff]", r[5], r[6], r[7]);
    char         *t  = jf ? json_dumps(jf, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;

    json_decref(jf);
    PetscCheck(t, PETSC_COMM_SELF, PETSC_ERR_MEM, "summary: cannot format the forces of atom %" PetscInt_FMT, s->flo + k + 1);
    {
      char   ind[256]; /* t: "[\n  fx,\n  fy,\n  fz\n]", at most 4 lines of 30 characters */
      size_t m = 0;

      for (const char *c = t; *c && m + 6 < sizeof(ind); c++) {
        ind[m++] = *c;
        if (*c == '\n')
          for (int q = 0; q < 4; q++) ind[m++] = ' ';
      }
      ind[m] = '\0';
      PetscCheck(m + 6 < sizeof(ind), PETSC_COMM_SELF, PETSC_ERR_PLIB, "summary: forces of atom %" PetscInt_FMT " formatted too long", s->flo + k + 1);
      free(t);
      PetscCall(HMBufferAppendf_Private(buf, len, cap, "%s\n    %s", s->flo + k ? "," : "", ind));
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The summary text is rank 0's; with forces, each rank writes the forces of its block of input order in its
   place in the file (HMFileWriteOrderedAtomic), so that no rank holds all N. */
#define HM_FORCES_PLACEHOLDER "@hipmace:forces@"

PetscErrorCode HMSummaryWrite(HMSummary s, const char path[])
{
  json_t     *par, *root, *jt;
  char       *text = NULL, *part;
  size_t      len = 0, cap = 4096;
  PetscMPIInt size, rank;
  int         bad = 0;
  PetscFunctionBegin;
  PetscCheck(s->have_results, s->comm, PETSC_ERR_ORDER, "HMSummarySetResults() first");
  PetscCallMPI(MPI_Comm_size(s->comm, &size));
  PetscCallMPI(MPI_Comm_rank(s->comm, &rank));
  PetscCall(ParallelJSON(s, &par));
  if (!rank) {
    root = json_object();
    jt   = json_object();
    json_object_set_new(root, "program", json_string("hipmace " HM_VERSION));
    json_object_set_new(root, "structure", json_string(s->structure));
    json_object_set_new(root, "model", json_string(s->model));
    json_object_set_new(root, "natoms", json_integer(s->natoms));
    json_object_set_new(root, "energy", json_real(s->energy));
    json_object_set_new(root, "energy_unit", json_string("eV"));
    json_object_set_new(root, "hessian_blocks", json_integer(s->nblocks));
    json_object_set_new(root, "hessian_type", json_string(s->htype));
    json_object_set_new(root, "hessian_cutoff", json_real(s->hcut));
    json_object_set_new(root, "hessian_r_max", json_real(s->hrmax));
    json_object_set_new(root, "r_max", json_real(s->rmax));
    json_object_set_new(root, "precision", json_string(s->precision == HM_PRECISION_SINGLE ? "single" : "double"));
    json_object_set_new(root, "ranks", json_integer(size));
    json_object_set_new(root, "memory_estimate_mb_max_rank", json_real(s->mem_max / 1048576.0));
    json_object_set_new(root, "memory_estimate_mb_total", json_real(s->mem_tot / 1048576.0));
    json_object_set_new(root, "peak_rss_mb_rank0", json_real(HMMemoryRSS(PETSC_TRUE) / 1048576.0));
    if (s->have_forces) {
      json_object_set_new(root, "forces", json_string(HM_FORCES_PLACEHOLDER));
      json_object_set_new(root, "fmax", json_real(s->fmax));
    }
    if (s->have_stress) {
      static const int voigt[6] = {0, 4, 8, 5, 2, 1}; /* xx yy zz yz xz xy */
      json_t          *js = json_array(), *jv = json_array();
      for (int a = 0; a < 3; a++) json_array_append_new(js, json_pack("[fff]", s->stress[3 * a], s->stress[3 * a + 1], s->stress[3 * a + 2]));
      for (int k = 0; k < 6; k++) json_array_append_new(jv, json_real(s->stress[voigt[k]] * HM_EV_A3_GPA));
      json_object_set_new(root, "stress", js);
      json_object_set_new(root, "stress_voigt_GPa", jv);
    }
    if (s->modes) PetscCall(HMModesToJSON(s->modes, root));
    if (s->opt) PetscCall(HMOptimizerToJSON(s->opt, root));
    json_object_set_new(root, "parallel", par);
    for (int k = 0; k < s->ntm; k++) json_object_set_new(jt, s->tname[k], json_real(s->t[k]));
    json_object_set_new(root, "timings", jt);
    text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    bad = !text;
  }
  PetscCallMPI(MPI_Bcast(&bad, 1, MPI_INT, 0, s->comm));
  PetscCheck(!bad, s->comm, PETSC_ERR_MEM, "%s: cannot format the summary JSON", path);
  PetscCall(PetscMalloc1(cap, &part));
  part[0] = '\0';
  if (!s->have_forces) {
    if (!rank) PetscCall(HMBufferAppendf_Private(&part, &len, &cap, "%s", text));
  } else {
    /* the summary around the placeholder: its head on rank 0, its tail on the last rank, after "]" */
    const char *ph = text ? strstr(text, "\"" HM_FORCES_PLACEHOLDER "\"") : NULL;

    PetscCheck(rank || ph, PETSC_COMM_SELF, PETSC_ERR_PLIB, "summary: the forces placeholder is missing");
    if (!rank) PetscCall(HMBufferAppendf_Private(&part, &len, &cap, "%.*s[", (int)(ph - text), text));
    PetscCall(ForcesPartJSON(s, &part, &len, &cap));
    if (rank == size - 1 && rank) {
      PetscMPIInt tl = 0;
      char       *tail;
      PetscCallMPI(MPI_Recv(&tl, 1, MPI_INT, 0, 0, s->comm, MPI_STATUS_IGNORE));
      PetscCall(PetscMalloc1(tl + 1, &tail));
      PetscCallMPI(MPI_Recv(tail, tl + 1, MPI_CHAR, 0, 1, s->comm, MPI_STATUS_IGNORE));
      PetscCall(HMBufferAppendf_Private(&part, &len, &cap, "\n  ]%s", tail));
      PetscCall(PetscFree(tail));
    } else if (rank == size - 1) PetscCall(HMBufferAppendf_Private(&part, &len, &cap, "\n  ]%s", ph + strlen("\"" HM_FORCES_PLACEHOLDER "\"")));
    else if (!rank) {
      const char *tail = ph + strlen("\"" HM_FORCES_PLACEHOLDER "\"");
      PetscMPIInt tl;
      PetscCall(PetscMPIIntCast((PetscCount)strlen(tail), &tl));
      PetscCallMPI(MPI_Send(&tl, 1, MPI_INT, size - 1, 0, s->comm));
      PetscCallMPI(MPI_Send(tail, tl + 1, MPI_CHAR, size - 1, 1, s->comm));
    }
  }
  if (text) free(text);
  PetscCall(HMFileWriteOrderedAtomic(s->comm, path, part, len));
  PetscCall(PetscFree(part));
  PetscFunctionReturn(PETSC_SUCCESS);
}

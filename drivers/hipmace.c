/* hipmace: HIP-MACE Hessian of a structure (energy, Hessian, summary) from the command line. */
#include <hipmace/model.h>
#include <hipmace/eigen.h>
#include <jansson.h>
#include <unistd.h>

static const char help[] = "hipmace: machine-learned (HIP-MACE) Hessians with PETSc.\n\n"
                           "  hipmace -structure FILE.xyz -model FILE.safetensors [options]\n\n"
                           "  -structure FILE        XYZ or extended XYZ (Lattice=, pbc=, masses column)\n"
                           "  -model FILE            HIP-MACE model (safetensors, hip-mace-safetensors-1)\n"
                           "  -model_info            print the model's architecture and exit (no -structure needed)\n"
                           "  -hessian_view VIEWER   write the Hessian (eV/A^2, rows 3i+a in input atom order), e.g. binary:H.bin\n"
                           "  -hessian_type baij|sbaij  storage of the Hessian (default baij; sbaij keeps the upper triangle)\n"
                           "  -summary FILE.json     write natoms, energy, hessian_blocks, ranks, timings as JSON\n"
                           "  -modes none|lowest|window|full  normal modes of the mass-weighted, Eckart-projected Hessian (default lowest)\n"
                           "  -nmodes K              number of lowest modes (default 20); -window_cm1 LO,HI for -modes window\n"
                           "  -temperature T         thermochemistry temperature, K (full spectrum; default 298.15)\n"
                           "  -modes_molden F, -modes_nmd F, -modes_xyz F, -modes_table F   normal-mode files\n"
                           "  -partition rcb|grid    spatial decomposition over the MPI ranks (default rcb)\n"
                           "  -memory_limit MB       refuse runs whose estimate exceeds this per rank (default: node's available memory)\n"
                           "  -log_view              PETSc performance report, one stage per phase\n\n";

typedef struct {
  const char *name;
  double      t;
} Timing;

/* Writes text to path atomically: temporary file in the same folder, then rename. */
static PetscErrorCode write_atomic(const char path[], const char *text)
{
  char  tmp[PETSC_MAX_PATH_LEN];
  FILE *f;
  int   ok;
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()));
  f = fopen(tmp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", path);
  ok = fputs(text, f) >= 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok) remove(tmp);
  PetscCheck(ok, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed (disk full?)", path);
  if (rename(tmp, path)) {
    remove(tmp);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: cannot rename the temporary file into place", path);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The whole structure on every rank (from rank 0), for the normal-mode analysis and its files. */
static PetscErrorCode bcast_system(MPI_Comm comm, HMSystem root, HMSystem *all)
{
  PetscMPIInt rank;
  PetscInt    n = 0;
  double      hdr[14] = {0};
  int        *Z;
  double     *pos, *mass;
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) {
    PetscBool hc, pbc[3];
    double    cell[9];
    PetscCall(HMSystemGetSize(root, &n));
    PetscCall(HMSystemGetCell(root, &hc, cell, pbc));
    hdr[0] = (double)n;
    hdr[1] = hc;
    for (int k = 0; k < 9; k++) hdr[2 + k] = cell[k];
    for (int k = 0; k < 3; k++) hdr[11 + k] = pbc[k];
  }
  PetscCallMPI(MPI_Bcast(hdr, 14, MPI_DOUBLE, 0, comm));
  n = (PetscInt)hdr[0];
  PetscCall(PetscMalloc3(n + 1, &Z, 3 * n + 1, &pos, n + 1, &mass));
  if (rank == 0) {
    const int    *z;
    const double *p, *m;
    PetscCall(HMSystemGetAtomicNumbers(root, &z));
    PetscCall(HMSystemGetPositions(root, &p));
    PetscCall(HMSystemGetMasses(root, &m));
    PetscCall(PetscArraycpy(Z, z, n));
    PetscCall(PetscArraycpy(pos, p, 3 * n));
    PetscCall(PetscArraycpy(mass, m, n));
  }
  PetscCallMPI(MPI_Bcast(Z, (PetscMPIInt)n, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(pos, (PetscMPIInt)(3 * n), MPI_DOUBLE, 0, comm));
  PetscCallMPI(MPI_Bcast(mass, (PetscMPIInt)n, MPI_DOUBLE, 0, comm));
  {
    const PetscBool pbc[3] = {hdr[11] != 0, hdr[12] != 0, hdr[13] != 0};
    PetscCall(HMSystemCreate(PETSC_COMM_SELF, n, Z, pos, hdr[1] != 0 ? hdr + 2 : NULL, hdr[1] != 0 ? pbc : NULL, all));
    PetscCall(HMSystemSetMasses(*all, mass));
  }
  PetscCall(PetscFree3(Z, pos, mass));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Fails early (before any work) if an output path cannot be created. */
static PetscErrorCode check_writable(const char opt[], const char path[])
{
  char  tmp[PETSC_MAX_PATH_LEN];
  FILE *f;
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()));
  f = fopen(tmp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s %s: cannot create the output file", opt, path);
  fclose(f);
  remove(tmp);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode hessian_view(Mat H, const char opt[])
{
  PetscViewer       viewer;
  PetscViewerFormat fmt;
  PetscBool         set;
  PetscFunctionBegin;
  PetscCall(PetscOptionsGetViewer(PetscObjectComm((PetscObject)H), NULL, NULL, opt, &viewer, &fmt, &set));
  if (set) {
    PetscCall(PetscViewerPushFormat(viewer, fmt));
    PetscCall(MatView(H, viewer));
    PetscCall(PetscViewerPopFormat(viewer));
    PetscCall(PetscOptionsRestoreViewer(&viewer));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  char          structure[PETSC_MAX_PATH_LEN] = "", model_path[PETSC_MAX_PATH_LEN] = "", summary[PETSC_MAX_PATH_LEN] = "";
  char          htype[16] = "baij";
  PetscBool     has_structure, has_model, has_summary, model_info = PETSC_FALSE;
  HMModel       model = NULL;
  HMSystem      sys   = NULL;
  HMEval        ev    = NULL;
  Mat           H     = NULL;
  PetscMPIInt   size, rank;
  PetscLogStage st_read, st_graph, st_layers, st_hip, st_eigen, st_out;
  Timing        tm[10];
  HMModes       modes = NULL;
  char          modes_type[16] = "lowest";
  int           ntm = 0;
  double        t0, t1, tstart, energy;
  PetscInt      natoms, nlayers;
  PetscInt64    nblocks;
  double        rmax, hrmax, hcut, mem_limit = 0, mem_max, mem_tot;
  PetscBool     view_set;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace options", NULL);
  PetscCall(PetscOptionsString("-structure", "structure file (XYZ / extended XYZ)", NULL, structure, structure, sizeof(structure), &has_structure));
  PetscCall(PetscOptionsString("-model", "HIP-MACE model file (.safetensors)", NULL, model_path, model_path, sizeof(model_path), &has_model));
  PetscCall(PetscOptionsBool("-model_info", "print the model and exit", NULL, model_info, &model_info, NULL));
  PetscCall(PetscOptionsString("-summary", "summary JSON file", NULL, summary, summary, sizeof(summary), &has_summary));
  PetscCall(PetscOptionsString("-hessian_type", "baij or sbaij", NULL, htype, htype, sizeof(htype), NULL));
  PetscCall(PetscOptionsString("-modes", "none, lowest, window or full", NULL, modes_type, modes_type, sizeof(modes_type), NULL));
  PetscCall(PetscOptionsReal("-memory_limit", "memory a rank may use, MB (0: what the node has available)", NULL, mem_limit, &mem_limit, NULL));
  PetscOptionsEnd();
  PetscCheck(has_model, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -model FILE.safetensors (see -help)");
  PetscCheck(!strcmp(htype, "baij") || !strcmp(htype, "sbaij"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-hessian_type %s: expected baij or sbaij", htype);
  PetscCheck(model_info || has_structure, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -structure FILE (see -help)");
  if (has_summary && rank == 0) PetscCall(check_writable("-summary", summary));

  PetscCall(PetscLogStageRegister("Read", &st_read));
  PetscCall(PetscLogStageRegister("Neighbours", &st_graph));
  PetscCall(PetscLogStageRegister("Layers", &st_layers));
  PetscCall(PetscLogStageRegister("HIP head+assembly", &st_hip));
  PetscCall(PetscLogStageRegister("Eigen", &st_eigen));
  PetscCall(PetscLogStageRegister("Output", &st_out));

  tstart = t0 = MPI_Wtime();
  PetscCall(PetscLogStagePush(st_read));
  PetscCall(HMModelLoad(PETSC_COMM_WORLD, model_path, &model));
  if (model_info) {
    PetscCall(HMModelView(model, PETSC_VIEWER_STDOUT_WORLD));
    PetscCall(PetscLogStagePop());
    PetscCall(HMModelDestroy(&model));
    PetscCall(PetscFinalize());
    return 0;
  }
  /* rank 0 reads the structure; HMEvalCreate partitions and scatters it */
  if (rank == 0) PetscCall(HMSystemLoad(PETSC_COMM_SELF, structure, &sys));
  PetscCall(PetscLogStagePop());
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"read", t1 - t0};

  t0 = t1;
  PetscCall(PetscLogStagePush(st_graph));
  PetscCall(HMEvalCreate(model, sys, &ev));
  if (strcmp(modes_type, "none")) {
    /* the mode analysis and its files still read the whole structure on every rank */
    HMSystem all;
    PetscCall(bcast_system(PETSC_COMM_WORLD, sys, &all));
    PetscCall(HMSystemDestroy(&sys));
    sys = all;
  } else PetscCall(HMSystemDestroy(&sys)); /* the ranks hold their own atoms from here on */
  PetscCall(PetscLogStagePop());
  PetscCall(PetscOptionsHasName(NULL, NULL, "-hessian_view", &view_set));
  PetscCall(HMEvalCheckMemory(ev, !strcmp(htype, "sbaij") ? MATSBAIJ : MATBAIJ, (PetscBool)(view_set && size > 1), mem_limit * 1048576.0, &mem_max, &mem_tot));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  memory estimate   %.1f MB on the largest rank, %.1f MB in total\n", mem_max / 1048576.0, mem_tot / 1048576.0));
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"neighbours", t1 - t0};

  t0 = t1;
  PetscCall(PetscLogStagePush(st_layers));
  PetscCall(HMEvalForward(ev));
  PetscCall(PetscLogStagePop());
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"layers", t1 - t0};

  t0 = t1;
  PetscCall(PetscLogStagePush(st_hip));
  PetscCall(HMEvalAssembleHessian(ev, !strcmp(htype, "sbaij") ? MATSBAIJ : MATBAIJ, &H));
  PetscCall(PetscLogStagePop());
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"hessian", t1 - t0};

  {
    Mat Hin;
    PetscCall(HMEvalHessianInputOrder(ev, H, &Hin));
    if (strcmp(modes_type, "none")) {
      t0 = t1;
      PetscCall(PetscLogStagePush(st_eigen));
      PetscCall(HMModesCreate(PETSC_COMM_WORLD, &modes));
      PetscCall(HMModesSetFromOptions(modes));
      PetscCall(HMModesCompute(modes, Hin, sys));
      PetscCall(PetscLogStagePop());
      t1          = MPI_Wtime();
      tm[ntm++] = (Timing){"modes", t1 - t0};
    }
    t0 = t1;
    PetscCall(PetscLogStagePush(st_out));
    PetscCall(hessian_view(Hin, "-hessian_view"));
    PetscCall(MatDestroy(&Hin));
    if (modes) PetscCall(HMModesWriteFiles(modes, sys));
  }
  PetscCall(HMEvalGetEnergy(ev, &energy, NULL));
  {
    HMDecomp dd;
    PetscCall(HMEvalGetDecomp(ev, &dd));
    PetscCall(HMDecompGetSizes(dd, &natoms, NULL, NULL, NULL));
  }
  PetscCall(HMEvalGetHessianBlockCount(ev, NULL, &nblocks));
  PetscCall(HMModelGetCutoffs(model, &rmax, &hrmax, &hcut));
  PetscCall(HMModelGetNumInteractions(model, &nlayers));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace %s: %" PetscInt_FMT " atoms (%s), model %s\n", HM_VERSION, natoms, structure, model_path));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  energy            %.10f eV\n", energy));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  Hessian           %" PetscInt_FMT " x %" PetscInt_FMT ", %lld stored 3x3 blocks (%s), cutoff %g A (hessian_r_max %g A)\n", 3 * natoms, 3 * natoms, (long long)nblocks, htype, hcut, hrmax));
  if (modes) PetscCall(HMModesView(modes, PETSC_VIEWER_STDOUT_WORLD));
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"output", t1 - t0};
  tm[ntm++] = (Timing){"total", t1 - tstart};
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "  timings [s]      "));
  for (int k = 0; k < ntm; k++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, " %s %.3f", tm[k].name, tm[k].t));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "\n"));
  /* per-rank figures for scaling studies: gathered on rank 0 (P numbers each) */
  json_t *par = NULL;
  if (has_summary) {
    double     tmax[10], tmin[10], rss_kb = 0, mine[6], *all = NULL;
    HMDecomp   dd;
    PetscInt   no, ng[2], widths[16], hipw;
    PetscInt64 lblocks;
    FILE      *f = fopen("/proc/self/status", "r");
    char       line[256];
    if (f) {
      while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6)) rss_kb = atof(line + 6);
      fclose(f);
    }
    for (int k = 0; k < ntm; k++) tmax[k] = tmin[k] = tm[k].t;
    PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmax, ntm, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmin, ntm, MPI_DOUBLE, MPI_MIN, PETSC_COMM_WORLD));
    PetscCall(HMEvalGetDecomp(ev, &dd));
    PetscCall(HMDecompGetSizes(dd, NULL, &no, NULL, NULL));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_NEAR, &ng[0]));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_FAR, &ng[1]));
    PetscCall(HMEvalGetHessianBlockCount(ev, &lblocks, NULL));
    PetscCall(HMModelGetHaloWidths(model, widths, &hipw));
    mine[0] = (double)no;
    mine[1] = (double)lblocks;
    mine[2] = (double)ng[0];
    mine[3] = (double)ng[1];
    mine[4] = rss_kb / 1024.0;
    mine[5] = tm[2].t + tm[3].t; /* layers + hessian: the work that is spread over the ranks */
    if (rank == 0) PetscCall(PetscMalloc1(6 * size, &all));
    PetscCallMPI(MPI_Gather(mine, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, 0, PETSC_COMM_WORLD));
    if (rank == 0) {
      const char *names[5] = {"atoms_per_rank", "hessian_blocks_per_rank", "halo_atoms_near_per_rank", "halo_atoms_far_per_rank", "peak_rss_mb_per_rank"};
      json_t     *tx = json_object(), *tn = json_object(), *hb = json_array();
      double      wmax = 0, wsum = 0, nearmax = 0, farmax = 0;
      par              = json_object();
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
      for (PetscInt t = 0; t < nlayers; t++) json_array_append_new(hb, json_real(nearmax * widths[t] * 8.0));
      json_object_set_new(par, "halo_bytes_per_layer_max_rank", hb);
      json_object_set_new(par, "halo_bytes_hip_max_rank", json_real(farmax * hipw * 8.0));
      for (int k = 0; k < ntm; k++) {
        json_object_set_new(tx, tm[k].name, json_real(tmax[k]));
        json_object_set_new(tn, tm[k].name, json_real(tmin[k]));
      }
      json_object_set_new(par, "timings_max", tx);
      json_object_set_new(par, "timings_min", tn);
      PetscCall(PetscFree(all));
    }
  }
  if (has_summary && rank == 0) {
    json_t *root = json_object(), *jt = json_object();
    char   *text;
    json_object_set_new(root, "program", json_string("hipmace " HM_VERSION));
    json_object_set_new(root, "structure", json_string(structure));
    json_object_set_new(root, "model", json_string(model_path));
    json_object_set_new(root, "natoms", json_integer(natoms));
    json_object_set_new(root, "energy", json_real(energy));
    json_object_set_new(root, "energy_unit", json_string("eV"));
    json_object_set_new(root, "hessian_blocks", json_integer(nblocks));
    json_object_set_new(root, "hessian_type", json_string(htype));
    json_object_set_new(root, "hessian_cutoff", json_real(hcut));
    json_object_set_new(root, "hessian_r_max", json_real(hrmax));
    json_object_set_new(root, "r_max", json_real(rmax));
    json_object_set_new(root, "ranks", json_integer(size));
    json_object_set_new(root, "memory_estimate_mb_max_rank", json_real(mem_max / 1048576.0));
    json_object_set_new(root, "memory_estimate_mb_total", json_real(mem_tot / 1048576.0));
    {
      double rss_kb = 0;
      FILE  *f      = fopen("/proc/self/status", "r");
      char   line[256];
      if (f) {
        while (fgets(line, sizeof(line), f))
          if (!strncmp(line, "VmHWM:", 6)) rss_kb = atof(line + 6);
        fclose(f);
      }
      json_object_set_new(root, "peak_rss_mb_rank0", json_real(rss_kb / 1024.0));
    }
    if (modes) PetscCall(HMModesToJSON(modes, root));
    json_object_set_new(root, "parallel", par);
    for (int k = 0; k < ntm; k++) json_object_set_new(jt, tm[k].name, json_real(tm[k].t));
    json_object_set_new(root, "timings", jt);
    text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    PetscCheck(text, PETSC_COMM_SELF, PETSC_ERR_MEM, "cannot format the summary JSON");
    PetscCall(write_atomic(summary, text));
    free(text);
  }
  PetscCall(PetscLogStagePop());

  PetscCall(HMModesDestroy(&modes));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(MatDestroy(&H));
  PetscCall(HMEvalDestroy(&ev));
  PetscCall(HMModelDestroy(&model));
  PetscCall(PetscFinalize());
  return 0;
}

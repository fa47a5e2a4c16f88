/* hipmace: HIP-MACE Hessian of a structure (energy, Hessian, summary) from the command line. */
#include <hipmace/hessian.h>
#include <hipmace/eigen.h>
#include <hipmace/log.h>
#include <jansson.h>
#include <unistd.h>
#include <errno.h>
#include <ctype.h>
#include <time.h>
#include <signal.h>

static const char help[] = "hipmace: machine-learned (HIP-MACE) Hessians with PETSc.\n\n"
                           "  hipmace -structure FILE.xyz -model FILE.safetensors [options]\n\n"
                           "  -structure FILE        XYZ or extended XYZ (Lattice=, pbc=, masses column)\n"
                           "  -model FILE            HIP-MACE model (safetensors, hip-mace-safetensors-1)\n"
                           "  -model_info            print the model's architecture and exit (no -structure needed)\n"
                           "  -hessian_view VIEWER   write the Hessian (eV/A^2, rows 3i+a in input atom order), e.g. binary:H.bin\n"
                           "  -hessian_type baij|sbaij  storage of the Hessian (default baij; sbaij keeps the upper triangle)\n"
                           "  -hessian_kernel folded|direct|tabulated  HIP edge kernel (default folded; tabulated: radial\n"
                           "                   features interpolated, |error| <= -hessian_table_tol per component, default 1e-10)\n"
                           "  -hessian_prune <bool>  leave out Hessian edges beyond r_max, which are exactly zero without a separate\n"
                           "                         Hessian radial network (default true; false builds them up to hessian_r_max)\n"
                           "  -summary FILE.json     write natoms, energy, hessian_blocks, ranks, timings as JSON\n"
                           "  -modes none|lowest|window|full  normal modes of the mass-weighted, Eckart-projected Hessian (default lowest)\n"
                           "  -nmodes K              number of lowest modes (default 20); -window_cm1 LO,HI for -modes window\n"
                           "  -temperature T         thermochemistry temperature, K (full spectrum; default 298.15)\n"
                           "  -modes_molden F, -modes_nmd F, -modes_xyz F, -modes_table F   normal-mode files\n"
                           "  -partition rcb|grid    spatial decomposition over the MPI ranks (default rcb)\n"
                           "  -memory_limit MB       refuse runs whose estimate exceeds this per rank (default: node's available memory)\n"
                           "  -log_view              PETSc performance report, one stage per phase\n"
                           "  -hm_traceback          on errors, PETSc's full traceback instead of one line\n\n";

typedef struct {
  const char *name;
  double      t;
} Timing;

/* Private duplicate of PETSC_COMM_WORLD for the error handler's barrier: it can never be matched
   against a collective that other ranks are inside of when the error strikes. */
static MPI_Comm err_comm = MPI_COMM_NULL;

/* An error waits this long for every other rank to meet an error too before it is treated as one
   rank's error (a message with the rank, then MPI_Abort). */
#define HM_ERROR_WAIT_SECONDS 5.0

/* PETSc's messages for unparsable option values ("Input string abc has no numeric value") do not say
   which option: prefix the option that was given that value. */
static void name_option(const char *msg, char *out, size_t len)
{
  const char *pre = "Input string ";
  char       *all = NULL, val[256], *tok, *save = NULL, *prev = NULL;
  size_t      k   = 0;

  snprintf(out, len, "%s", msg);
  if (strncmp(msg, pre, strlen(pre))) return;
  for (const char *c = msg + strlen(pre); *c && *c != ' ' && k < sizeof(val) - 1; c++) val[k++] = *c;
  val[k] = '\0';
  if (PetscOptionsGetAll(NULL, &all) || !all) return;
  for (tok = strtok_r(all, " ", &save); tok; prev = tok, tok = strtok_r(NULL, " ", &save))
    if (prev && prev[0] == '-' && !strcmp(tok, val)) {
      /* a message cut short at len is still one line */
      if (snprintf(out, len, "%s %s: %s", prev, val, msg) < 0) snprintf(out, len, "%s", msg);
      break;
    }
  PetscFree(all);
}

/* One-line errors ending every rank: replaces PETSc's multi-line traceback (kept with -hm_traceback).
   Called at the point of the error; never returns. If every rank meets an error (a collective check,
   or a file that each rank reads and finds wrong on its own), rank 0 prints its message once and all
   finalize quietly. Otherwise (one rank, or ranks that never arrive because they wait in a collective)
   the message is printed with the rank and MPI_Abort ends the job. */
static PetscErrorCode OneLineErrorHandler(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  PetscMPIInt wsize = 1, wrank = 0;
  const char *text  = mess;
  char        msg[1024];
  int         code = (n > 0 && n < 256) ? (int)n : 1, done = 0;
  size_t      k = 0;

  (void)comm, (void)line, (void)func, (void)file, (void)p, (void)ctx;
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  while (text && isspace((unsigned char)*text)) text++;
  if (!text || !*text) PetscErrorMessage(n, &text, NULL);
  /* one line: newlines inside the message become spaces */
  for (const char *c = text ? text : "unknown error"; *c && k < sizeof(msg) - 1; c++) msg[k++] = (*c == '\n' || *c == '\r') ? ' ' : *c;
  while (k > 0 && isspace((unsigned char)msg[k - 1])) k--;
  msg[k] = '\0';
  {
    char named[sizeof(msg)];
    name_option(msg, named, sizeof(named));
    memcpy(msg, named, sizeof(msg));
  }
  if (wsize > 1 && err_comm != MPI_COMM_NULL) {
    MPI_Request     req;
    const double    t0 = MPI_Wtime();
    struct timespec nap = {0, 1000000};
    MPI_Ibarrier(err_comm, &req);
    while (!done && MPI_Wtime() - t0 < HM_ERROR_WAIT_SECONDS) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (!done) nanosleep(&nap, NULL);
    }
  }
  if (wsize == 1 || done) {
    if (wrank == 0) fprintf(stderr, "hipmace: error: %s\n", msg);
    fflush(stderr);
    MPI_Finalize();
    exit(code);
  }
  fprintf(stderr, "[rank %d] hipmace: error: %s\n", (int)wrank, msg);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

/* A crash (SEGV, FPE, ...) is a bug, not an input error: one line, then _exit without touching MPI in a
   process whose memory may be corrupt (PETSc's MPI_Abort from the signal handler can wedge Open MPI's
   singleton daemon); mpiexec ends the other ranks when one exits without MPI_Finalize. */
static PetscErrorCode OneLineSignalHandler(int sig, void *ctx)
{
  PetscMPIInt wrank = 0;
  char        line[160];
  int         len;
  (void)ctx;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  len = snprintf(line, sizeof(line), "[rank %d] hipmace: error: internal error: caught signal %d (%s); please report it with the input files\n", (int)wrank, sig, sig == SIGSEGV ? "segmentation violation" : sig == SIGFPE ? "floating-point exception" : sig == SIGBUS ? "bus error" : "signal");
  if (len > 0 && write(STDERR_FILENO, line, (size_t)PetscMin(len, (int)sizeof(line) - 1)) < 0) len = 0;
  _exit(128 + sig);
}

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

/* -hessian_view VIEWER. A binary file (binary:FILE[:FORMAT]) is written under a temporary name, with
   its .info companion, and renamed into place only when complete; other viewers are used as given. */
static PetscErrorCode hessian_view(Mat H, const char opt[])
{
  MPI_Comm          comm = PetscObjectComm((PetscObject)H);
  char              spec[PETSC_MAX_PATH_LEN], tmp[PETSC_MAX_PATH_LEN + 32], a[PETSC_MAX_PATH_LEN + 40], b[PETSC_MAX_PATH_LEN + 8], *file, *fmt;
  PetscViewer       viewer;
  PetscViewerFormat format = PETSC_VIEWER_DEFAULT;
  PetscBool         set;
  PetscMPIInt       rank;
  int               pid = (int)getpid(), err = 0;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, opt, spec, sizeof(spec), &set));
  if (!set) PetscFunctionReturn(PETSC_SUCCESS);
  if (strncmp(spec, "binary:", 7)) {
    PetscCall(PetscOptionsGetViewer(comm, NULL, NULL, opt, &viewer, &format, &set));
    PetscCall(PetscViewerPushFormat(viewer, format));
    PetscCall(MatView(H, viewer));
    PetscCall(PetscViewerPopFormat(viewer));
    PetscCall(PetscOptionsRestoreViewer(&viewer));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  file = spec + 7;
  fmt  = strchr(file, ':');
  if (fmt) *fmt++ = '\0';
  if (fmt && *fmt) {
    PetscBool found;
    PetscCall(PetscEnumFind(PetscViewerFormats, fmt, (PetscEnum *)&format, &found));
    PetscCheck(found, comm, PETSC_ERR_USER_INPUT, "%s binary:%s:%s: unknown viewer format '%s'", opt, file, fmt, fmt);
  }
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Bcast(&pid, 1, MPI_INT, 0, comm));
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp.%d", file, pid));
  PetscCall(PetscViewerBinaryOpen(comm, tmp, FILE_MODE_WRITE, &viewer));
  PetscCall(PetscViewerPushFormat(viewer, format));
  PetscCall(MatView(H, viewer));
  PetscCall(PetscViewerPopFormat(viewer));
  PetscCall(PetscViewerDestroy(&viewer));
  if (rank == 0) {
    PetscCall(PetscSNPrintf(a, sizeof(a), "%s.info", tmp));
    PetscCall(PetscSNPrintf(b, sizeof(b), "%s.info", file));
    if (rename(tmp, file)) err = errno;
    else if (access(a, F_OK) == 0 && rename(a, b)) err = errno;
    if (err) {
      remove(tmp);
      remove(a);
    }
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  PetscCheck(!err, comm, PETSC_ERR_FILE_WRITE, "%s binary:%s: cannot rename the temporary file into place: %s", opt, file, strerror(err));
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
  HMHessian     hs    = NULL;
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
  {
    PetscBool tb = PETSC_FALSE;
    PetscCall(PetscOptionsHasName(NULL, NULL, "-hm_traceback", &tb));
    if (!tb) {
      PetscCallMPI(MPI_Comm_dup(PETSC_COMM_WORLD, &err_comm));
      PetscCall(PetscPushErrorHandler(OneLineErrorHandler, NULL));
      PetscCall(PetscPushSignalHandler(OneLineSignalHandler, NULL));
    }
  }
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
  PetscCheck(mem_limit >= 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-memory_limit %g: must be >= 0 (MB; 0 = what the node has available)", mem_limit);
  PetscCheck(!strcmp(htype, "baij") || !strcmp(htype, "sbaij"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-hessian_type %s: expected baij or sbaij", htype);
  PetscCheck(model_info || has_structure, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -structure FILE (see -help)");
  if (has_summary && rank == 0) PetscCall(check_writable("-summary", summary));
  {
    char      spec[PETSC_MAX_PATH_LEN];
    PetscBool hv;
    PetscCall(PetscOptionsGetString(NULL, NULL, "-hessian_view", spec, sizeof(spec), &hv));
    if (hv && rank == 0 && !strncmp(spec, "binary:", 7)) {
      char *colon = strchr(spec + 7, ':');
      if (colon) *colon = '\0';
      PetscCall(check_writable("-hessian_view", spec + 7));
    }
  }

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
  PetscCall(HMEvalCreate(model, &ev));
  PetscCall(HMEvalSetFromOptions(ev));
  PetscCall(HMHessianCreate(ev, &hs));
  PetscCall(HMHessianSetFromOptions(hs));
  PetscCall(HMEvalSetSystem(ev, sys));
  if (strcmp(modes_type, "none")) {
    /* the mode analysis and its files still read the whole structure on every rank */
    HMSystem all;
    PetscCall(bcast_system(PETSC_COMM_WORLD, sys, &all));
    PetscCall(HMSystemDestroy(&sys));
    sys = all;
  } else PetscCall(HMSystemDestroy(&sys)); /* the ranks hold their own atoms from here on */
  PetscCall(PetscLogStagePop());
  PetscCall(PetscOptionsHasName(NULL, NULL, "-hessian_view", &view_set));
  PetscCall(HMHessianCheckMemory(hs, (PetscBool)(view_set && size > 1), mem_limit * 1048576.0, &mem_max, &mem_tot));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace: %s, memory estimate %.1f MB on the largest rank, %.1f MB in total (Hessian; the mode analysis comes on top)\n", structure, mem_max / 1048576.0, mem_tot / 1048576.0));

  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"neighbours", t1 - t0};

  t0 = t1;
  PetscCall(PetscLogStagePush(st_layers));
  PetscCall(HMEvalForward(ev));
  PetscCall(HMEvalCheckFinite(ev)); /* node features of every layer, node energies */
  PetscCall(PetscLogStagePop());
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"layers", t1 - t0};

  t0 = t1;
  PetscCall(PetscLogStagePush(st_hip));
  PetscCall(HMHessianAssemble(hs, &H));
  PetscCall(HMEvalCheckFinite(ev));       /* node features and energies first */
  PetscCall(HMHessianCheckFinite(hs, H)); /* the HIP head's per-atom inputs, then every stored block */
  PetscCall(PetscLogStagePop());
  t1          = MPI_Wtime();
  tm[ntm++] = (Timing){"hessian", t1 - t0};

  {
    Mat       Hin = NULL;
    PetscBool view;
    /* the copy into input order is for the mode analysis and the written Hessian only (at 2·10^4 atoms
       per rank it costs a tenth of the run) */
    PetscCall(PetscOptionsHasName(NULL, NULL, "-hessian_view", &view));
    if (view || strcmp(modes_type, "none")) PetscCall(HMHessianInputOrder(hs, H, &Hin));
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
    if (Hin) PetscCall(hessian_view(Hin, "-hessian_view"));
    PetscCall(MatDestroy(&Hin));
    if (modes) PetscCall(HMModesWriteFiles(modes, sys));
  }
  PetscCall(HMEvalGetEnergy(ev, &energy, NULL));
  {
    HMDecomp dd;
    PetscCall(HMEvalGetDecomp(ev, &dd));
    PetscCall(HMDecompGetSizes(dd, &natoms, NULL, NULL, NULL));
  }
  PetscCall(HMHessianGetBlockCount(hs, NULL, &nblocks));
  PetscCall(HMModelGetCutoffs(model, &rmax, &hrmax, NULL));
  PetscCall(HMEvalGetHessianCutoff(ev, &hcut)); /* the one in force (-hessian_prune false: hessian_r_max) */
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
    double     tmax[10], tmin[10], rss_kb = HMMemoryRSS(PETSC_TRUE) / 1024.0, mine[6], *all = NULL;
    HMDecomp   dd;
    PetscInt   no, ng[2], widths[16], hipw;
    PetscInt64 lblocks;
    for (int k = 0; k < ntm; k++) tmax[k] = tmin[k] = tm[k].t;
    PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmax, ntm, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
    PetscCall(MPIU_Allreduce(MPI_IN_PLACE, tmin, ntm, MPI_DOUBLE, MPI_MIN, PETSC_COMM_WORLD));
    PetscCall(HMEvalGetDecomp(ev, &dd));
    PetscCall(HMDecompGetSizes(dd, NULL, &no, NULL, NULL));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_NEAR, &ng[0]));
    PetscCall(HMDecompGetHaloSize(dd, HM_HALO_FAR, &ng[1]));
    PetscCall(HMHessianGetBlockCount(hs, &lblocks, NULL));
    PetscCall(HMModelGetHaloWidths(model, widths, NULL));
    PetscCall(HMHessianGetHaloWidth(hs, &hipw));
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
    json_object_set_new(root, "peak_rss_mb_rank0", json_real(HMMemoryRSS(PETSC_TRUE) / 1048576.0));
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
  PetscCall(HMHessianDestroy(&hs));
  PetscCall(HMEvalDestroy(&ev));
  PetscCall(HMModelDestroy(&model));
  PetscCall(PetscFinalize());
  return 0;
}

/* hipmace: HIP-MACE Hessian of a structure (energy, Hessian, normal modes, summary) from the command line. */
#include <hipmace.h>

static const char help[] = "hipmace: machine-learned (HIP-MACE) Hessians with PETSc.\n\n"
                           "  hipmace -structure FILE.xyz -model FILE.safetensors [options]\n\n"
                           "  -structure FILE        XYZ/extended XYZ, PDB, LAMMPS data or hmb (by name or content; .gz read);\n"
                           "                   -structure_format, -frame, -pdb_model, -lammps_types, -pbc (docs/FORMATS.md)\n"
                           "  -model FILE            HIP-MACE model (safetensors, hip-mace-safetensors-1)\n"
                           "  -model_info            print the model's architecture and exit (no -structure needed)\n"
                           "  -hessian_view VIEWER   write the Hessian (eV/A^2, rows 3i+a in input atom order), e.g. binary:H.bin\n"
                           "  -hessian_type baij|sbaij  storage of the Hessian (default baij; sbaij keeps the upper triangle)\n"
                           "  -hessian_kernel folded|direct|tabulated  HIP edge kernel (default folded; tabulated: radial\n"
                           "                   features interpolated, |error| <= -hessian_table_tol per component, default 1e-10)\n"
                           "  -hessian_prune <bool>  leave out Hessian edges beyond r_max, which are exactly zero without a separate\n"
                           "                         Hessian radial network (default true; false builds them up to hessian_r_max)\n"
                           "  -summary FILE.json     write natoms, energy, hessian_blocks, ranks, timings as JSON\n"
                           "  -forces <bool>         forces (and stress if periodic) into the results and the summary; -forces_xyz F: extended XYZ\n"
                           "  -modes none|lowest|window|full  normal modes of the mass-weighted, Eckart-projected Hessian (default lowest)\n"
                           "  -nmodes K              number of lowest modes (default 20); -window_cm1 LO,HI for -modes window\n"
                           "  -temperature T         thermochemistry temperature, K (full spectrum; default 298.15)\n"
                           "  -modes_molden F, -modes_nmd F, -modes_xyz F, -modes_table F   normal-mode files\n"
                           "  -phonopy_fc F -phonopy_supercell NA,NB,NC   phonopy force constants of a periodic supercell (F.hdf5:\n"
                           "                   HDF5) with phonopy_disp.yaml (-phonopy_yaml F); -orca_hess F, -ase_vib F: ORCA .hess,\n"
                           "                   ASE VibrationsData JSON (docs/FORMATS.md; dense on rank 0, <= 3000 atoms)\n"
                           "  -optimize none|min|ts  minimise (or find a first-order saddle) first, then the Hessian and modes at the\n"
                           "                   result (docs/OPTIMIZE.md): -optimize_fmax (1e-3 eV/A), -optimize_max_steps (200),\n"
                           "                   -optimize_hessian predicted|none, -optimize_hessian_every K, -optimize_trajectory F,\n"
                           "                   -optimize_output F (.xyz, .pdb, .data, .hmb), -optimize_require_converged;\n"
                           "                   -optimize_cell true: min over positions and cell (3D-periodic), -optimize_smax GPa,\n"
                           "                   -optimize_pressure GPa; -optimize_check_curvature TOL (eV/A^2, 0.01; 0: off): at the\n"
                           "                   converged point the Hessian's eigenvalues below -TOL against the energy's own curvature;\n"
                           "                   -optimize_keep_history, -optimize_scale_hessian <bool> (min: automatic unless given);\n"
                           "                   -optimize_fd_hessian h: the Hessian of the energy by differences of the forces (checks)\n"
                           "  -partition rcb|grid    spatial decomposition over the MPI ranks (default rcb)\n"
                           "  -precision double|single  arithmetic (default double; single: float32 radial MLPs, tensor products, linear maps, HIP edge kernel)\n"
                           "  -read_parallel <bool>  every rank reads its part of a one-frame XYZ or LAMMPS data file, partitioned in parallel\n"
                           "                         (default true; PDB and gzip: rank 0 reads)\n"
                           "  -memory_limit MB       refuse runs whose estimate exceeds this per rank (default: node's available memory)\n"
                           "  -log_view              PETSc performance report, one stage per phase\n"
                           "  -hm_traceback          on errors, PETSc's full traceback instead of one line\n\n";

/* The command line, checked before any work (output paths included). */
typedef struct {
  char      structure[PETSC_MAX_PATH_LEN], model[PETSC_MAX_PATH_LEN], summary[PETSC_MAX_PATH_LEN];
  char      htype[16], modes[16];
  PetscBool has_summary, model_info, view, forces, has_fxyz, export;
  char      fxyz[PETSC_MAX_PATH_LEN];
  double    mem_limit;
  HMReader  reader; /* the structure reader with its options (-structure_format, -frame, ...) */
} Options;

static PetscErrorCode GetOptions(Options *o)
{
  PetscBool   has_structure, has_model;
  PetscMPIInt rank;
  PetscFunctionBegin;
  PetscCall(PetscMemzero(o, sizeof(*o)));
  PetscCall(PetscStrncpy(o->htype, "baij", sizeof(o->htype)));
  PetscCall(PetscStrncpy(o->modes, "lowest", sizeof(o->modes)));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace options", NULL);
  PetscCall(PetscOptionsString("-structure", "structure file (XYZ / extended XYZ, PDB, LAMMPS data; see -structure_format)", NULL, o->structure, o->structure, sizeof(o->structure), &has_structure));
  PetscCall(PetscOptionsString("-model", "HIP-MACE model file (.safetensors)", NULL, o->model, o->model, sizeof(o->model), &has_model));
  PetscCall(PetscOptionsBool("-model_info", "print the model and exit", NULL, o->model_info, &o->model_info, NULL));
  PetscCall(PetscOptionsString("-summary", "summary JSON file", NULL, o->summary, o->summary, sizeof(o->summary), &o->has_summary));
  PetscCall(PetscOptionsBool("-forces", "compute forces (and the stress of periodic cells)", NULL, o->forces, &o->forces, NULL));
  PetscCall(PetscOptionsString("-forces_xyz", "extended XYZ file with the forces (implies -forces)", NULL, o->fxyz, o->fxyz, sizeof(o->fxyz), &o->has_fxyz));
  PetscCall(PetscOptionsString("-hessian_type", "baij or sbaij", NULL, o->htype, o->htype, sizeof(o->htype), NULL));
  PetscCall(PetscOptionsString("-modes", "none, lowest, window or full", NULL, o->modes, o->modes, sizeof(o->modes), NULL));
  PetscCall(PetscOptionsReal("-memory_limit", "memory a rank may use, MB (0: what the node has available)", NULL, o->mem_limit, &o->mem_limit, NULL));
  PetscOptionsEnd();
  /* the reader's options (-structure_format, -frame, -pdb_model, -lammps_types, -pbc): checked and in -help on every rank */
  PetscCall(HMReaderCreate(PETSC_COMM_WORLD, &o->reader));
  PetscCall(HMReaderSetFromOptions(o->reader));
  PetscCheck(has_model, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -model FILE.safetensors (see -help)");
  PetscCheck(o->mem_limit >= 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-memory_limit %g: must be >= 0 (MB; 0 = what the node has available)", o->mem_limit);
  PetscCheck(!strcmp(o->htype, "baij") || !strcmp(o->htype, "sbaij"), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-hessian_type %s: expected baij or sbaij", o->htype);
  PetscCheck(o->model_info || has_structure, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -structure FILE (see -help)");
  if (o->has_summary && rank == 0) PetscCall(HMFileCheckWritable("-summary", o->summary));
  if (o->has_fxyz && rank == 0) PetscCall(HMFileCheckWritable("-forces_xyz", o->fxyz));
  o->forces = (PetscBool)(o->forces || o->has_fxyz);
  PetscCall(HMFileCheckViewerOption(PETSC_COMM_WORLD, "-hessian_view"));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-hessian_view", &o->view));
  PetscCall(HMExportCheckOptions(PETSC_COMM_WORLD, &o->export)); /* -phonopy_fc, -orca_hess, -ase_vib */
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Log stages of the run, in order. */
enum { READ,
       NEIGHBOURS,
       LAYERS,
       HIP,
       EIGEN,
       OUTPUT,
       NSTAGES };
static const char *const stage_names[NSTAGES] = {"Read", "Neighbours", "Layers", "HIP head+assembly", "Eigen", "Output"};

/* Energy and Hessian: the interaction layers, then the HIP head and the assembly, each checked for
   non-finite values and timed. */
static PetscErrorCode ComputeHessian(HMEval ev, HMHessian hs, PetscBool forces, const PetscLogStage st[], HMSummary sum, Mat *H)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(st[LAYERS]));
  PetscCall(HMEvalForward(ev));
  PetscCall(HMEvalCheckFinite(ev)); /* node features of every layer, node energies */
  PetscCall(PetscLogStagePop());
  PetscCall(HMSummaryTimingLap(sum, "layers"));
  /* forces before the HIP head: the assembly releases the node features the reverse pass reads */
  if (forces) PetscCall(HMEvalComputeForces(ev));
  if (forces) PetscCall(HMSummaryTimingLap(sum, "forces"));
  PetscCall(PetscLogStagePush(st[HIP]));
  PetscCall(HMHessianAssemble(hs, H));
  PetscCall(HMEvalCheckFinite(ev));        /* node features and energies first */
  PetscCall(HMHessianCheckFinite(hs, *H)); /* the HIP head's per-atom inputs, then every stored block */
  PetscCall(PetscLogStagePop());
  PetscCall(HMSummaryTimingLap(sum, "hessian"));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* What the outputs need from the evaluation (results, forces, the forces file), then the evaluation and the HIP head
   are freed: the mode analysis that follows gets their memory (at 10^6 atoms several GB per rank). */
static PetscErrorCode TakeResults(const Options *o, HMModel model, HMEval *ev, HMHessian *hs, HMSummary sum)
{
  PetscFunctionBegin;
  PetscCall(HMSummarySetResults(sum, model, *ev, *hs));
  if (o->forces) PetscCall(HMSummarySetForces(sum, *ev));
  if (o->has_fxyz) PetscCall(HMForcesWriteXYZ(*ev, o->fxyz));
  PetscCall(HMHessianDestroy(hs));
  PetscCall(HMEvalDestroy(ev));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The output stage: the written Hessian (then freed), the mode files, the summary and the timings. */
static PetscErrorCode WriteOutputs(const Options *o, HMSystem sys, HMModes modes, HMOptimizer opt, PetscLogStage stage, HMSummary sum, Mat *Hin)
{
  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(stage));
  if (*Hin) PetscCall(HMMatViewFromOptionAtomic(*Hin, "-hessian_view"));
  if (o->export) PetscCall(HMExportFromOptions(*Hin, sys, modes));
  PetscCall(MatDestroy(Hin));
  if (modes) PetscCall(HMModesWriteFiles(modes, sys));
  PetscCall(HMSummarySetModes(sum, modes));
  PetscCall(HMSummarySetOptimizer(sum, opt));
  PetscCall(HMSummaryView(sum, PETSC_VIEWER_STDOUT_WORLD));
  PetscCall(HMSummaryTimingLap(sum, "output"));
  PetscCall(HMSummaryTimingEnd(sum));
  PetscCall(HMSummaryViewTimings(sum, PETSC_VIEWER_STDOUT_WORLD));
  if (o->has_summary) PetscCall(HMSummaryWrite(sum, o->summary));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  Options       o;
  HMModel       model = NULL;
  HMSystem      sys   = NULL;
  HMEval        ev    = NULL;
  HMHessian     hs    = NULL;
  HMModes       modes = NULL;
  HMSummary     sum   = NULL;
  HMOptimizer   opt   = NULL;
  Mat           H = NULL, Hin = NULL;
  PetscBool     want_modes;
  PetscMPIInt   size, rank;
  PetscLogStage st[NSTAGES];
  double        mem_max, mem_tot;

  PetscCall(HMInitialize(&argc, &argv, NULL, help));
  PetscCall(HMPushErrorHandler("hipmace", PETSC_TRUE));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(GetOptions(&o));
  want_modes = (PetscBool)(strcmp(o.modes, "none") != 0);

  for (int k = 0; k < NSTAGES; k++) PetscCall(PetscLogStageRegister(stage_names[k], &st[k]));
  PetscCall(HMSummaryCreate(PETSC_COMM_WORLD, &sum));
  PetscCall(HMSummarySetInputs(sum, o.structure, o.model, o.htype));

  PetscCall(HMSummaryTimingBegin(sum));
  PetscCall(PetscLogStagePush(st[READ]));
  PetscCall(HMModelLoad(PETSC_COMM_WORLD, o.model, &model));
  if (o.model_info) {
    PetscCall(HMModelView(model, PETSC_VIEWER_STDOUT_WORLD));
    PetscCall(PetscLogStagePop());
    PetscCall(HMModelDestroy(&model));
    PetscCall(HMSummaryDestroy(&sum));
    PetscCall(HMReaderDestroy(&o.reader));
    PetscCall(HMFinalize());
    return 0;
  }
  /* every rank reads its part (-read_parallel), or rank 0 the whole; HMEvalSetSystem partitions it */
  PetscCall(HMStructureLoadFromOptions(PETSC_COMM_WORLD, o.reader, o.structure, PETSC_FALSE, &sys));
  PetscCall(HMReaderDestroy(&o.reader));
  PetscCall(PetscLogStagePop());
  PetscCall(HMSummaryTimingLap(sum, "read"));
  PetscCall(HMOptimizeStructureFromOptions(PETSC_COMM_WORLD, model, &sys, &opt));
  if (opt) PetscCall(HMSummaryTimingLap(sum, "optimize"));

  PetscCall(PetscLogStagePush(st[NEIGHBOURS]));
  PetscCall(HMEvalCreate(model, &ev));
  PetscCall(HMEvalSetFromOptions(ev));
  PetscCall(HMHessianCreate(ev, &hs));
  PetscCall(HMHessianSetFromOptions(hs));
  PetscCall(HMEvalSetSystem(ev, sys));
  if (!want_modes && !o.export) PetscCall(HMSystemDestroy(&sys)); /* the ranks hold their own atoms from here on */
  PetscCall(PetscLogStagePop());
  PetscCall(HMHessianCheckMemory(hs, (PetscBool)(o.view && size > 1), o.mem_limit * 1048576.0, &mem_max, &mem_tot));
  PetscCall(HMSummarySetMemoryEstimate(sum, mem_max, mem_tot));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace: %s, memory estimate %.1f MB on the largest rank, %.1f MB in total (Hessian; the mode analysis comes on top)\n", o.structure, mem_max / 1048576.0, mem_tot / 1048576.0));
  PetscCall(HMSummaryTimingLap(sum, "neighbours"));

  PetscCall(ComputeHessian(ev, hs, o.forces, st, sum, &H));

  /* the copy into input order is for the mode analysis and the written Hessian only (at 2·10^4 atoms
     per rank it costs a tenth of the run) */
  if (o.view || want_modes || o.export) PetscCall(HMHessianInputOrder(hs, H, &Hin));
  PetscCall(MatDestroy(&H)); /* (on one rank Hin may be H itself: then a reference is dropped) */
  PetscCall(TakeResults(&o, model, &ev, &hs, sum));
  if (want_modes || o.export) { /* each rank the atoms of its rows of Hin, for the modes and their files */
    HMSystem mine;
    PetscInt rs, re;
    PetscCall(MatGetOwnershipRange(Hin, &rs, &re));
    PetscCall(HMSystemRedistribute(PETSC_COMM_WORLD, sys, rs / 3, (re - rs) / 3, &mine));
    PetscCall(HMSystemDestroy(&sys));
    sys = mine;
  }
  if (want_modes) {
    PetscCall(PetscLogStagePush(st[EIGEN]));
    PetscCall(HMModesCreate(PETSC_COMM_WORLD, &modes));
    PetscCall(HMModesSetFromOptions(modes));
    PetscCall(HMModesCompute(modes, Hin, sys));
    PetscCall(PetscLogStagePop());
    PetscCall(HMSummaryTimingLap(sum, "modes"));
  }
  PetscCall(WriteOutputs(&o, sys, modes, opt, st[OUTPUT], sum, &Hin));

  PetscCall(HMSummaryDestroy(&sum));
  PetscCall(HMModesDestroy(&modes));
  PetscCall(HMOptimizerDestroy(&opt));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(HMModelDestroy(&model));
  PetscCall(HMFinalize());
  return 0;
}

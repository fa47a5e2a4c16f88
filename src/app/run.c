/* Steps of a command-line run that other programs can reuse: reading the structure (in parallel or on rank 0),
   the whole structure on every rank, and the optimisation of a structure from the -optimize_* options. */
#include <hipmace.h>

PetscErrorCode HMStructureLoadFromOptions(MPI_Comm comm, HMReader reader, const char path[], PetscBool whole, HMSystem *sys)
{
  PetscBool   par = PETSC_TRUE;
  PetscMPIInt rank;

  PetscFunctionBegin;
  *sys = NULL;
  PetscOptionsBegin(comm, NULL, "hipmace structure input", NULL);
  PetscCall(PetscOptionsBool("-read_parallel", "every rank reads its part of a one-frame XYZ file or a LAMMPS data file (hmb: by offsets; PDB and gzip: rank 0 reads)", NULL, par, &par, NULL));
  PetscOptionsEnd();
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (par && !whole) PetscCall(HMReaderLoadDistributed(reader, comm, path, sys));
  else if (rank == 0) PetscCall(HMReaderLoad(reader, PETSC_COMM_SELF, path, sys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemBcast(MPI_Comm comm, HMSystem root, HMSystem *all)
{
  PetscMPIInt rank;
  PetscInt    n       = 0;
  double      hdr[14] = {0};
  int        *Z;
  double     *pos, *mass;
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (root) {
    PetscBool dist;
    PetscCall(HMSystemGetDistribution(root, &dist, NULL, NULL));
    PetscCheck(!dist, comm, PETSC_ERR_ARG_WRONG, "HMSystemBcast: the structure was read in parallel (-read_parallel); the whole structure needs it read on rank 0");
  }
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
  if (rank == 0) { /* the PDB atom labels, for the mode files written by rank 0 */
    const HMAtomLabel *lab;
    PetscCall(HMSystemGetAtomLabels(root, &lab));
    PetscCall(HMSystemSetAtomLabels(*all, lab));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMOptimizeStructureFromOptions(MPI_Comm comm, HMModel model, HMSystem *sys, HMOptimizer *opt)
{
  char             method[16] = "none", traj[PETSC_MAX_PATH_LEN], out[PETSC_MAX_PATH_LEN];
  PetscBool        has_traj, has_out, require = PETSC_FALSE, cell = PETSC_FALSE;
  HMEvalObjective  eo;
  HMCellFilter     cf = NULL;
  HMTrajectory     tr = NULL;
  HMOptimizerRigid rigid;
  Vec              x, r = NULL;

  PetscFunctionBegin;
  *opt = NULL;
  PetscOptionsBegin(comm, NULL, "hipmace optimisation", NULL);
  PetscCall(PetscOptionsString("-optimize", "none, min or ts", NULL, method, method, sizeof(method), NULL));
  PetscCall(PetscOptionsString("-optimize_trajectory", "extended XYZ of every accepted step (energies, forces)", NULL, traj, traj, sizeof(traj), &has_traj));
  PetscCall(PetscOptionsString("-optimize_output", "final structure; format by name: .pdb, .data/.lmp (LAMMPS), .hmb, else extended XYZ", NULL, out, out, sizeof(out), &has_out));
  PetscCall(PetscOptionsBool("-optimize_require_converged", "exit with an error when the optimisation does not converge", NULL, require, &require, NULL));
  PetscCall(PetscOptionsBool("-optimize_cell", "min: optimise the cell too (3D-periodic structures; docs/OPTIMIZE.md)", NULL, cell, &cell, NULL));
  PetscOptionsEnd();
  if (!strcmp(method, "none")) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(!cell || !strcmp(method, "min"), comm, PETSC_ERR_SUP, "-optimize_cell true works with -optimize min only: a saddle search (-optimize %s) over the cell is not implemented", method);
  if (has_out) {
    PetscMPIInt rank;
    PetscCallMPI(MPI_Comm_rank(comm, &rank));
    if (!rank) PetscCall(HMFileCheckWritable("-optimize_output", out));
  }
  PetscCall(HMEvalObjectiveCreate(comm, model, *sys, &eo));
  PetscCall(HMEvalObjectiveSetFromOptions(eo));
  PetscCall(HMEvalObjectiveCreateVec(eo, &x));
  if (has_out) { /* what the output format cannot hold (PDB's atom count, the cell's orientation): now, not at the end */
    HMSystem start;
    PetscCall(HMEvalObjectiveGetSystem(eo, x, &start));
    PetscCall(HMSystemCheckWrite(start, out));
    PetscCall(HMSystemDestroy(&start));
  }
  if (cell) { /* the optimiser's vector: positions and the cell's 6 strain entries */
    r = x;
    PetscCall(HMEvalObjectiveCreateCellFilter(eo, r, &cf));
    PetscCall(HMCellFilterSetFromOptions(cf));
    PetscCall(HMCellFilterCreateVec(cf, &x));
  }
  PetscCall(HMEvalObjectiveGetRigid(eo, &rigid));
  PetscCall(HMOptimizerCreate(comm, opt));
  PetscCall(HMOptimizerSetObjective(*opt, HMEvalObjectiveEvaluate, eo));
  PetscCall(HMOptimizerSetRigid(*opt, rigid));
  PetscCall(HMOptimizerSetFromOptions(*opt));
  if (has_traj) PetscCall(HMEvalObjectiveTrajectoryCreate(eo, traj, &tr));
  if (cf) PetscCall(HMCellFilterSetUp(cf, *opt, tr ? HMEvalObjectiveTrajectoryCellMonitor : NULL, tr));
  else if (tr) PetscCall(HMOptimizerSetMonitor(*opt, HMEvalObjectiveTrajectoryMonitor, tr));
  PetscCall(HMOptimizerSolve(*opt, x));
  PetscCall(HMTrajectoryDestroy(&tr));
  if (cf) { /* the final positions and cell */
    double c[9];
    PetscCall(HMCellFilterGetState(cf, x, r, c));
    PetscCall(HMEvalObjectiveSetCell(eo, c));
    PetscCall(VecDestroy(&x));
    PetscCall(HMCellFilterDestroy(&cf));
    x = r;
  }
  PetscCall(HMOptimizerView(*opt, PETSC_VIEWER_STDOUT_WORLD));
  {
    HMOptimizerInfo info;
    PetscCall(HMOptimizerGetInfo(*opt, &info));
    if (!info.converged) {
      char what[128];
      PetscCall(PetscSNPrintf(what, sizeof(what), "fmax %.3e eV/A", info.fmax));
      if (info.has_cell) PetscCall(PetscSNPrintf(what, sizeof(what), "fmax %.3e eV/A, largest |stress + P| %.3e GPa", info.fmax, info.smax * HM_EV_A3_GPA));
      PetscCheck(!require, comm, PETSC_ERR_NOT_CONVERGED, "-optimize %s did not converge: %s after %" PetscInt_FMT " steps (-optimize_require_converged)", method, what, info.steps);
      PetscCall(PetscPrintf(comm, "hipmace: WARNING: -optimize %s did not converge (%s after %" PetscInt_FMT " steps); the Hessian and modes below are at the last point, not a stationary one\n", method, what, info.steps));
    }
  }
  PetscCall(HMSystemDestroy(sys));
  PetscCall(HMEvalObjectiveGetSystem(eo, x, sys));
  if (has_out) PetscCall(HMSystemWrite(*sys, out)); /* format by name; every rank its block of atoms (MPI-IO) */
  PetscCall(VecDestroy(&x));
  PetscCall(HMEvalObjectiveDestroy(&eo));
  PetscFunctionReturn(PETSC_SUCCESS);
}

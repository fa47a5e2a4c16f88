/* hipmace-convert: a structure file into hipmace's binary format (.hmb), read back in parallel by byte offsets
   (docs/FORMATS.md), or an .hmb file back into extended XYZ. */
#include <hipmace.h>
#include "hmmain.h"

static const char help[] = "hipmace-convert: structure files to and from hipmace's binary format (.hmb).\n\n"
                           "  hipmace-convert -structure IN -o OUT.hmb   (IN: any structure hipmace reads; reader options as\n"
                           "                   for hipmace: -structure_format, -frame, -pdb_model, -lammps_types, -pbc)\n"
                           "  hipmace-convert -structure IN.hmb -o OUT.xyz   (extended XYZ, written by rank 0)\n\n"
                           "  With several ranks, a one-frame XYZ, a LAMMPS data file or an .hmb input is read in parallel and OUT.hmb written\n"
                           "  collectively (MPI-IO): no rank holds all atoms. Other inputs are read on rank 0.\n\n";

static PetscErrorCode Run(void)
{
  char        in[PETSC_MAX_PATH_LEN] = "", out[PETSC_MAX_PATH_LEN] = "";
  PetscBool   has_in, has_out, to_hmb;
  HMReader    reader;
  HMSystem    sys = NULL;
  PetscMPIInt rank;
  size_t      len;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "hipmace-convert options", NULL);
  PetscCall(PetscOptionsString("-structure", "input structure file", NULL, in, in, sizeof(in), &has_in));
  PetscCall(PetscOptionsString("-o", "output file: .hmb (binary) or .xyz/.extxyz (from an .hmb input)", NULL, out, out, sizeof(out), &has_out));
  PetscOptionsEnd();
  PetscCall(HMReaderCreate(PETSC_COMM_WORLD, &reader));
  PetscCall(HMReaderSetFromOptions(reader));
  PetscCheck(has_in, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -structure FILE (see -help)");
  PetscCheck(has_out, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "missing -o FILE.hmb or FILE.xyz (see -help)");
  PetscCall(PetscStrlen(out, &len));
  to_hmb = (PetscBool)(len > 4 && !strcmp(out + len - 4, ".hmb"));
  PetscCheck(to_hmb || (len > 4 && !strcmp(out + len - 4, ".xyz")) || (len > 7 && !strcmp(out + len - 7, ".extxyz")), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "-o %s: name it .hmb (binary) or .xyz/.extxyz", out);
  if (!rank) PetscCall(HMFileCheckWritable("-o", out));
  if (to_hmb) {
    PetscBool dist = PETSC_FALSE;
    PetscCall(HMReaderLoadDistributed(reader, PETSC_COMM_WORLD, in, &sys));
    if (sys) PetscCall(HMSystemGetDistribution(sys, &dist, NULL, NULL));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &dist, 1, MPIU_BOOL, MPI_LOR, PETSC_COMM_WORLD));
    /* read in parallel: written collectively; read on rank 0 (other formats): written there */
    if (dist || !rank) PetscCall(HMSystemWriteHMB(sys, out));
  } else {
    if (!rank) {
      PetscCall(HMReaderLoad(reader, PETSC_COMM_SELF, in, &sys));
      PetscCall(HMSystemWriteXYZ(sys, out));
    }
  }
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hipmace-convert: %s -> %s\n", in, out));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(HMReaderDestroy(&reader));
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  return HMDriverMain(argc, argv, help, "hipmace-convert", Run);
}

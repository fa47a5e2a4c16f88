/* hipmace-example: the library from another program's point of view — energy, Hessian and the lowest
   normal modes of one structure through the public API only (#include <hipmace.h>, pkg-config hipmace). */
#include <hipmace.h>

static const char help[] = "hipmace-example: energy, Hessian and lowest modes through hipmace's public API.\n\n"
                           "  hipmace-example [-structure FILE] [-model FILE] [-nmodes K]\n"
                           "  (defaults: inputs/default.xyz, inputs/demo_hipmace.safetensors, 10)\n\n";

int main(int argc, char **argv)
{
  char          structure[PETSC_MAX_PATH_LEN] = "inputs/default.xyz", path[PETSC_MAX_PATH_LEN] = "inputs/demo_hipmace.safetensors";
  PetscInt      nmodes = 10, natoms, nfound;
  PetscInt64    nblocks;
  HMModel       model;
  HMSystem      sys;
  HMEval        ev;
  HMHessian     hs;
  HMModes       modes;
  Mat           H, Hin;
  double        energy;
  const double *lambda, *cm1;

  PetscCall(HMInitialize(&argc, &argv, NULL, help));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-structure", structure, sizeof(structure), NULL));
  PetscCall(PetscOptionsGetString(NULL, NULL, "-model", path, sizeof(path), NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-nmodes", &nmodes, NULL));

  /* every rank reads the (small) structure: the evaluation partitions rank 0's copy, the mode analysis
     uses the whole structure */
  PetscCall(HMModelLoad(PETSC_COMM_WORLD, path, &model));
  PetscCall(HMSystemLoad(PETSC_COMM_SELF, structure, &sys));
  PetscCall(HMSystemGetSize(sys, &natoms));

  /* energy and the distributed Hessian (eV/A^2), then the same matrix in input atom order */
  PetscCall(HMEvalCreate(model, &ev));
  PetscCall(HMEvalSetFromOptions(ev)); /* -partition */
  PetscCall(HMHessianCreate(ev, &hs));
  PetscCall(HMHessianSetFromOptions(hs)); /* -hessian_kernel, -hessian_type, ... */
  PetscCall(HMEvalSetSystem(ev, sys));    /* partitions the structure over the ranks */
  PetscCall(HMEvalForward(ev));
  PetscCall(HMEvalGetEnergy(ev, &energy, NULL));
  PetscCall(HMHessianAssemble(hs, &H));
  PetscCall(HMHessianGetBlockCount(hs, NULL, &nblocks));
  PetscCall(HMHessianInputOrder(hs, H, &Hin));

  /* lowest normal modes of the mass-weighted, Eckart-projected Hessian */
  PetscCall(HMModesCreate(PETSC_COMM_WORLD, &modes));
  PetscCall(HMModesSetType(modes, HM_MODES_LOWEST));
  PetscCall(HMModesSetNumModes(modes, nmodes));
  PetscCall(HMModesCompute(modes, Hin, sys));
  PetscCall(HMModesGetEigenvalues(modes, &nfound, &lambda, &cm1));

  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "structure %s: %" PetscInt_FMT " atoms\n", structure, natoms));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "energy %.17g eV\n", energy));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "hessian %" PetscInt_FMT " x %" PetscInt_FMT ", %lld stored 3x3 blocks\n", 3 * natoms, 3 * natoms, (long long)nblocks));
  for (PetscInt k = 0; k < nfound; k++) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "mode %3" PetscInt_FMT "  eigenvalue %.10e eV/A^2/amu  %10.4f cm-1\n", k + 1, lambda[k], cm1[k]));

  PetscCall(HMModesDestroy(&modes));
  PetscCall(MatDestroy(&Hin));
  PetscCall(MatDestroy(&H));
  PetscCall(HMHessianDestroy(&hs));
  PetscCall(HMEvalDestroy(&ev));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(HMModelDestroy(&model));
  PetscCall(HMFinalize());
  return 0;
}

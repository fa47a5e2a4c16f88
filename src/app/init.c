/* Package initialiser: PETSc, SLEPc, hipmace's log stages and events, once per process. */
#include <hipmace/app.h>
#include <hipmace/log.h>
#include <slepcsys.h>
#include "sys/sysimpl.h"

static PetscBool began_petsc = PETSC_FALSE;

PetscErrorCode HMInitializePackage(void)
{
  PetscFunctionBegin;
  PetscCall(HMSlepcInitialize_Private());
  PetscCall(HMSysInitializePackage()); /* log stages and events, -progress_interval */
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMInitialize(int *argc, char ***argv, const char file[], const char help[])
{
  PetscBool petsc;

  PetscFunctionBegin;
  PetscCall(PetscInitialized(&petsc));
  /* PETSc first, with the program's help text: its -help and -version output stay PETSc's */
  if (!petsc) {
    PetscCall(HMMemoryInstallAllocator_Private(argc ? *argc : 0, argv ? *argv : NULL));
    PetscCall(PetscInitialize(argc, argv, file, help));
    began_petsc = PETSC_TRUE;
  }
  PetscCall(HMInitializePackage());
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* No PetscFunctionBegin here: the stack it pushes would outlive PetscFinalize. */
PetscErrorCode HMFinalize(void)
{
  PetscBool      slepc = PETSC_FALSE;
  PetscErrorCode ierr;

  ierr = HMPopErrorHandler();
  if (!ierr) ierr = SlepcInitialized(&slepc);
  if (!ierr && slepc) ierr = SlepcFinalize();
  if (!ierr && began_petsc) {
    began_petsc = PETSC_FALSE;
    ierr        = PetscFinalize();
    HMMemoryAllocatorCleared_Private();
  }
  return ierr;
}

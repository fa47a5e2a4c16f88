/* Package-level helpers: name registries of implementations (HMRegistry in sysimpl.h, all emptied by one
   finalizer) and starting SLEPc on demand. */
#include "sys/sysimpl.h"
#include <slepcsys.h>

#define HM_MAX_REGISTRIES 16
static HMRegistry *HMRegistries[HM_MAX_REGISTRIES];
static int         HMNumRegistries = 0;

static PetscErrorCode HMRegistryFinalizeAll(void)
{
  PetscFunctionBegin;
  for (int k = 0; k < HMNumRegistries; k++) {
    HMRegistry *r = HMRegistries[k];

    PetscCall(PetscFunctionListDestroy(&r->list));
    for (PetscInt i = 0; i < r->n; i++) PetscCall(PetscFree(r->names[i]));
    r->n     = 0;
    r->begun = PETSC_FALSE;
  }
  HMNumRegistries = 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRegistryBegin(HMRegistry *r, PetscInt n, const HMRegistryEntry builtin[])
{
  PetscFunctionBegin;
  if (r->begun) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(HMNumRegistries < HM_MAX_REGISTRIES, PETSC_COMM_SELF, PETSC_ERR_SUP, "more than %d registries", HM_MAX_REGISTRIES);
  if (!HMNumRegistries) PetscCall(PetscRegisterFinalize(HMRegistryFinalizeAll));
  HMRegistries[HMNumRegistries++] = r;
  r->begun                        = PETSC_TRUE;
  for (PetscInt k = 0; k < n; k++) PetscCall(HMRegistryAdd_Private(r, builtin[k].name, builtin[k].fn));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRegistryAdd_Private(HMRegistry *r, const char name[], PetscVoidFunction fn)
{
  PetscBool known = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscFunctionListAdd(&r->list, name, fn));
  for (PetscInt k = 0; k < r->n && !known; k++) PetscCall(PetscStrcmp(r->names[k], name, &known));
  if (!known) {
    PetscCheck(r->n < HM_REGISTRY_MAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "more than %d implementations registered under one name list", HM_REGISTRY_MAX);
    PetscCall(PetscStrallocpy(name, &r->names[r->n++]));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRegistryFind_Private(HMRegistry *r, const char name[], PetscVoidFunction *fn)
{
  PetscFunctionBegin;
  PetscCall(PetscFunctionListFind(r->list, name, fn));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRegistryNames(HMRegistry *r, char buf[], size_t len)
{
  PetscFunctionBegin;
  buf[0] = 0;
  for (PetscInt k = 0; k < r->n; k++) {
    if (k) PetscCall(PetscStrlcat(buf, ", ", len));
    PetscCall(PetscStrlcat(buf, r->names[k], len));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMRegistrySwitch_Private(HMRegistry *r, MPI_Comm comm, const char option[], char **type_name, const char type[], PetscVoidFunction *fn)
{
  PetscBool same;

  PetscFunctionBegin;
  *fn = NULL;
  PetscCall(PetscStrcmp(*type_name, type, &same));
  if (same) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMRegistryFind_Private(r, type, fn));
  if (!*fn) {
    char names[1024];

    PetscCall(HMRegistryNames(r, names, sizeof(names)));
    SETERRQ(comm, PETSC_ERR_USER_INPUT, "%s %s: unknown (registered: %s)", option, type, names);
  }
  PetscCall(PetscFree(*type_name));
  PetscCall(PetscStrallocpy(type, type_name));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSlepcInitialize_Private(void)
{
  PetscBool slepc;

  PetscFunctionBegin;
  PetscCall(SlepcInitialized(&slepc));
  if (!slepc) PetscCall(SlepcInitializeNoArguments());
  PetscFunctionReturn(PETSC_SUCCESS);
}

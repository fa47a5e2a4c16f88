/* Private helpers shared by the classes of the library: one-line trivial accessors and name registries. */
#pragma once

#include <hipmace/sys.h>

/* A trivial accessor is one line in the class's file instead of seven; accessors that check, convert or keep
   extra state stay written out. The generated function carries the public name and its header declaration. */
#define HM_ACCESSOR_SET(Class, Name, Type, field)        \
  PetscErrorCode Class##Set##Name(Class obj, Type value) \
  {                                                      \
    PetscFunctionBegin;                                  \
    obj->field = value;                                  \
    PetscFunctionReturn(PETSC_SUCCESS);                  \
  }

/* A setter that also records that the value was given (flag = PETSC_TRUE), for options whose default depends on the
   input; rejects a NULL object. */
#define HM_ACCESSOR_SET_MARK(Class, Name, Type, field, flag)                                      \
  PetscErrorCode Class##Set##Name(Class obj, Type value)                                          \
  {                                                                                               \
    PetscFunctionBegin;                                                                           \
    PetscCheck(obj, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "%s: NULL object", PETSC_FUNCTION_NAME); \
    obj->field = value;                                                                           \
    obj->flag  = PETSC_TRUE;                                                                      \
    PetscFunctionReturn(PETSC_SUCCESS);                                                           \
  }

/* check is a statement run first (e.g. a PetscCall() of a precondition); use (void)0 when there is none. */
#define HM_ACCESSOR_GET_IF(Class, Name, Type, field, check) \
  PetscErrorCode Class##Get##Name(Class obj, Type *value)   \
  {                                                         \
    PetscFunctionBegin;                                     \
    check;                                                  \
    *value = obj->field;                                    \
    PetscFunctionReturn(PETSC_SUCCESS);                     \
  }

#define HM_ACCESSOR_GET(Class, Name, Type, field) HM_ACCESSOR_GET_IF(Class, Name, Type, field, (void)0)

/* A getter that rejects NULL object or output with the function's name (library entry points used by other programs). */
#define HM_ACCESSOR_GET_CHECKED(Class, Name, Type, field) \
  HM_ACCESSOR_GET_IF(Class, Name, Type, field, PetscCheck(obj &&value, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "%s: NULL argument", PETSC_FUNCTION_NAME))

/* XxxSetOptionsPrefix() for a class with a char *prefix field. */
#define HM_ACCESSOR_PREFIX(Class)                                        \
  PetscErrorCode Class##SetOptionsPrefix(Class obj, const char prefix[]) \
  {                                                                      \
    PetscFunctionBegin;                                                  \
    PetscCall(PetscFree(obj->prefix));                                   \
    if (prefix) PetscCall(PetscStrallocpy(prefix, &obj->prefix));        \
    PetscFunctionReturn(PETSC_SUCCESS);                                  \
  }

/* A registry of implementations by name (edge kernels, optimizers, mode solvers), as PETSc's XxxRegister():
   a PetscFunctionList plus the names in registration order for -help and error messages. Every registry is
   emptied at PetscFinalize(), so a later PetscInitialize() registers the built-ins again. */
#define HM_REGISTRY_MAX 32
typedef struct {
  PetscFunctionList list;
  PetscBool         begun;
  PetscInt          n;
  char             *names[HM_REGISTRY_MAX];
} HMRegistry;

typedef struct {
  const char       *name;
  PetscVoidFunction fn;
} HMRegistryEntry;

/* Adds the n built-in entries on the first call after start-up (every later call returns at once): call it
   before every use of r. A new built-in implementation is one line in the class's table. */
PetscErrorCode HMRegistryBegin(HMRegistry *r, PetscInt n, const HMRegistryEntry builtin[]);
PetscErrorCode HMRegistryAdd_Private(HMRegistry *r, const char name[], PetscVoidFunction fn);
PetscErrorCode HMRegistryFind_Private(HMRegistry *r, const char name[], PetscVoidFunction *fn);
/* For XxxSetType(): *fn = NULL when type equals *type_name (nothing to change); otherwise the implementation
   registered as type (an error naming the option and the registered names if there is none), and *type_name
   replaced by a copy of type. The caller then tears down the old implementation and calls *fn. */
PetscErrorCode HMRegistrySwitch_Private(HMRegistry *r, MPI_Comm comm, const char option[], char **type_name, const char type[], PetscVoidFunction *fn);
#define HMRegistrySwitch(r, comm, option, type_name, type, fn) HMRegistrySwitch_Private((r), (comm), (option), (type_name), (type), (PetscVoidFunction *)(fn))
/* "a, b, c" of the registered names, for messages */
PetscErrorCode HMRegistryNames(HMRegistry *r, char buf[], size_t len);
#define HMRegistryAdd(r, name, fn)  HMRegistryAdd_Private((r), (name), (PetscVoidFunction)(fn))
#define HMRegistryFind(r, name, fn) HMRegistryFind_Private((r), (name), (PetscVoidFunction *)(fn))

/* Starts SLEPc if it is not running: a program may have started PETSc only, and SLEPc started on top of it needs
   no finalize of its own (PETSc's ends it). Called by the objects that use SLEPc and by HMInitializePackage(). */
PetscErrorCode HMSlepcInitialize_Private(void);
/* PETSc's allocation routines: large arrays (-memory_return) as 2 MB-aligned mappings with transparent huge
   pages (src/sys/memory.c). Only before PetscInitialize; a no-op under AddressSanitizer, off Linux, or with
   PETSc's memory diagnostics (-malloc_*, -log_view_memory, -memory_view in argv or PETSC_OPTIONS). */
PetscErrorCode HMMemoryInstallAllocator_Private(int argc, char **argv);
/* PETSc's arrays of 16 MB and more are huge-page mappings now (the allocator is installed and -memory_return is on):
   a 2 MB page touched in part is resident whole, which memory estimates allow for. */
PetscBool HMMemoryHugeMappings_Private(void);
/* After a PetscFinalize that hipmace started: PETSc's own routines are back; a later HMInitialize installs again. */
void HMMemoryAllocatorCleared_Private(void);

/* 3x3 matrices, row-major: the determinant (a cell's signed volume) and the inverse (for a cell of rows a, b, c:
   fractional coordinates s = x inv, the columns of inv are the reciprocal vectors). */
static inline double HMMat3Det(const double a[9])
{
  return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
}

static inline void HMMat3Inverse(const double a[9], double b[9])
{
  const double d = HMMat3Det(a);
  b[0]           = (a[4] * a[8] - a[5] * a[7]) / d;
  b[1]           = (a[2] * a[7] - a[1] * a[8]) / d;
  b[2]           = (a[1] * a[5] - a[2] * a[4]) / d;
  b[3]           = (a[5] * a[6] - a[3] * a[8]) / d;
  b[4]           = (a[0] * a[8] - a[2] * a[6]) / d;
  b[5]           = (a[2] * a[3] - a[0] * a[5]) / d;
  b[6]           = (a[3] * a[7] - a[4] * a[6]) / d;
  b[7]           = (a[1] * a[6] - a[0] * a[7]) / d;
  b[8]           = (a[0] * a[4] - a[1] * a[3]) / d;
}

/* The cell accessors' copy-out (HMSystemGetCell, HMDecompGetCell): each output may be NULL. */
static inline void HMCellCopyOut_Private(PetscBool has, const double c[9], const PetscBool p[3], PetscBool *hascell, double cell[9], PetscBool pbc[3])
{
  if (hascell) *hascell = has;
  if (cell)
    for (int k = 0; k < 9; k++) cell[k] = c[k];
  if (pbc)
    for (int d = 0; d < 3; d++) pbc[d] = p[d];
}

/* An all-to-all with variable counts (src/sys/exchange.c). The pattern is made once, collectively, from the
   number of items this rank sends to each rank (one MPI_Alltoall of the counts, the displacements); then any
   number of arrays go along it, bs elements of an MPI datatype per item: forward, or reversed (an answer:
   each rank sends back as many items as it received from each rank, in the order received). The caller packs
   the send buffer in rank order (the items for rank q at sdisp[q] .. sdisp[q + 1] - 1) and allocates the
   receive buffer (nrecv items forward, nsend reversed); received items stand in source-rank order, those
   of rank q from rdisp[q]. Counts and displacements are MPI's int: the pattern refuses more than INT_MAX
   items sent or received by a rank. HMExchangeDestroy also frees what a failed HMExchangeCreate left. */
typedef struct {
  MPI_Comm     comm;
  PetscMPIInt  size;
  PetscMPIInt *scount, *sdisp; /* items to rank q, from sdisp[q]; sdisp[size] = nsend */
  PetscMPIInt *rcount, *rdisp; /* items from rank q, from rdisp[q]; rdisp[size] = nrecv */
  PetscInt     nsend, nrecv;
} HMExchange;

PetscErrorCode HMExchangeCreate(MPI_Comm comm, const PetscInt count[], HMExchange *x);
PetscErrorCode HMExchangeData_Private(const HMExchange *x, PetscBool reverse, MPI_Datatype type, PetscMPIInt bs, const void *sbuf, void *rbuf);
#define HMExchangeForward(x, type, bs, sbuf, rbuf) HMExchangeData_Private((x), PETSC_FALSE, (type), (bs), (sbuf), (rbuf))
#define HMExchangeReverse(x, type, bs, sbuf, rbuf) HMExchangeData_Private((x), PETSC_TRUE, (type), (bs), (sbuf), (rbuf))
PetscErrorCode HMExchangeDestroy(HMExchange *x);

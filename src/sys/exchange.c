/* All-to-all exchanges with variable counts (HMExchange in sysimpl.h): the counts' all-to-all and the
   displacements once, then the arrays along them, forward or reversed. */
#include "sys/sysimpl.h"
#include <limits.h>

PetscErrorCode HMExchangeCreate(MPI_Comm comm, const PetscInt count[], HMExchange *x)
{
  PetscMPIInt size;
  PetscInt64  s = 0, r = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(x, sizeof(*x)));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  for (PetscMPIInt q = 0; q < size; q++) {
    PetscCheck(count[q] >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMExchangeCreate: %" PetscInt_FMT " items for rank %d", count[q], (int)q);
    s += count[q];
  }
  PetscCheck(s <= INT_MAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMExchangeCreate: %" PetscInt64_FMT " items to send from one rank, more than MPI's int counts and displacements allow", s);
  x->comm = comm;
  x->size = size;
  PetscCall(PetscMalloc4(size, &x->scount, size + 1, &x->sdisp, size, &x->rcount, size + 1, &x->rdisp));
  x->sdisp[0] = 0;
  for (PetscMPIInt q = 0; q < size; q++) {
    x->scount[q]    = (PetscMPIInt)count[q];
    x->sdisp[q + 1] = x->sdisp[q] + x->scount[q];
  }
  PetscCallMPI(MPI_Alltoall(x->scount, 1, MPI_INT, x->rcount, 1, MPI_INT, comm));
  for (PetscMPIInt q = 0; q < size; q++) r += x->rcount[q];
  PetscCheck(r <= INT_MAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMExchangeCreate: %" PetscInt64_FMT " items to receive on one rank, more than MPI's int counts and displacements allow", r);
  x->rdisp[0] = 0;
  for (PetscMPIInt q = 0; q < size; q++) x->rdisp[q + 1] = x->rdisp[q] + x->rcount[q];
  x->nsend = (PetscInt)s;
  x->nrecv = (PetscInt)r;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One MPI_Alltoallv of items of bs elements of type (a contiguous datatype when bs > 1, so the counts stay
   in items): HMExchangeForward, HMExchangeReverse. */
PetscErrorCode HMExchangeData_Private(const HMExchange *x, PetscBool reverse, MPI_Datatype type, PetscMPIInt bs, const void *sbuf, void *rbuf)
{
  MPI_Datatype unit = type;

  PetscFunctionBegin;
  PetscCheck(bs >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMExchange: block size %d", (int)bs);
  if (bs > 1) {
    PetscCallMPI(MPI_Type_contiguous(bs, type, &unit));
    PetscCallMPI(MPI_Type_commit(&unit));
  }
  if (reverse) PetscCallMPI(MPI_Alltoallv(sbuf, x->rcount, x->rdisp, unit, rbuf, x->scount, x->sdisp, unit, x->comm));
  else PetscCallMPI(MPI_Alltoallv(sbuf, x->scount, x->sdisp, unit, rbuf, x->rcount, x->rdisp, unit, x->comm));
  if (bs > 1) PetscCallMPI(MPI_Type_free(&unit));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMExchangeDestroy(HMExchange *x)
{
  PetscFunctionBegin;
  PetscCall(PetscFree4(x->scount, x->sdisp, x->rcount, x->rdisp));
  PetscCall(PetscMemzero(x, sizeof(*x)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

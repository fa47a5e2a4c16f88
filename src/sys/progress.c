/* Progress messages of long loops, on rank 0 at most every -progress_interval seconds. */
#include <hipmace/sys.h>

static double interval = 30;

PetscErrorCode HMProgressSetInterval(double seconds)
{
  PetscFunctionBegin;
  PetscCheck(!PetscIsNanReal(seconds), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "-progress_interval: not a number");
  interval = seconds;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProgressGetInterval(double *seconds)
{
  PetscFunctionBegin;
  *seconds = interval;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMProgress(MPI_Comm comm, const char what[], double done, double total, double *last)
{
  PetscMPIInt rank;
  double      now;

  PetscFunctionBegin;
  if (interval <= 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank) PetscFunctionReturn(PETSC_SUCCESS);
  now = MPI_Wtime();
  if (*last == 0) *last = now;
  if (now - *last >= interval) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "  [progress] %s: %.0f of %.0f (%.1f%%) on rank 0\n", what, done, total, total > 0 ? 100.0 * done / total : 100.0));
    *last = now;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One-line error messages for programs built on hipmace (PETSc's traceback is kept with -hm_traceback). */
#include <hipmace/app.h>
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Private duplicate of PETSC_COMM_WORLD for the error handler's barrier: it can never be matched
   against a collective that other ranks are inside of when the error strikes. */
static MPI_Comm  err_comm    = MPI_COMM_NULL;
static char      program[64] = "hipmace";
static PetscBool pushed      = PETSC_FALSE;

/* An error waits this long for every other rank to meet an error too before it is treated as one
   rank's error (a message with the rank, then MPI_Abort). */
#define HM_ERROR_WAIT_SECONDS 5.0

/* PETSc's messages for unparsable option values ("Input string abc has no numeric value") do not say
   which option: prefix the option that was given that value. */
static void NameOption(const char *msg, char *out, size_t len)
{
  const char *pre = "Input string ";
  char       *all = NULL, val[256], *tok, *save = NULL, *prev = NULL;
  size_t      k = 0;

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

/* The message on one line (newlines become spaces), with the option named. */
static void OneLine(PetscErrorCode n, const char *mess, char msg[], size_t len)
{
  char named[1024];

  HMErrorMessageOneLine(n, mess, msg, len);
  NameOption(msg, named, sizeof(named));
  snprintf(msg, len, "%s", named);
}

/* Ends every rank at the point of the error; never returns. If every rank meets an error (a collective
   check, or a file that each rank reads and finds wrong on its own), rank 0 prints its message once and
   all finalize quietly. Otherwise (one rank, or ranks that never arrive because they wait in a
   collective) the message is printed with the rank and MPI_Abort ends the job. */
static PetscErrorCode EndRunErrorHandler(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  PetscMPIInt wsize = 1, wrank = 0;
  char        msg[1024];
  int         code = (n > 0 && n < 256) ? (int)n : 1, done = 0;

  (void)comm, (void)line, (void)func, (void)file, (void)p, (void)ctx;
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  OneLine(n, mess, msg, sizeof(msg));
  if (wsize > 1 && err_comm != MPI_COMM_NULL) {
    MPI_Request     req;
    const double    t0  = MPI_Wtime();
    struct timespec nap = {0, 1000000};
    MPI_Ibarrier(err_comm, &req);
    while (!done && MPI_Wtime() - t0 < HM_ERROR_WAIT_SECONDS) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (!done) nanosleep(&nap, NULL);
    }
  }
  if (wsize == 1 || done) {
    if (wrank == 0) fprintf(stderr, "%s: error: %s\n", program, msg);
    fflush(stderr);
    MPI_Finalize();
    exit(code);
  }
  fprintf(stderr, "[rank %d] %s: error: %s\n", (int)wrank, program, msg);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

/* Prints the first error once (rank 0) and lets it propagate to the caller. */
static PetscErrorCode ReturnErrorHandler(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  PetscMPIInt rank = 0;
  char        msg[1024];

  (void)comm, (void)line, (void)func, (void)file, (void)ctx;
  if (p != PETSC_ERROR_INITIAL) return n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    OneLine(n, mess, msg, sizeof(msg));
    fprintf(stderr, "%s: error: %s\n", program, msg);
  }
  return n;
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
  len = snprintf(line, sizeof(line), "[rank %d] %s: error: internal error: caught signal %d (%s); please report it with the input files\n", (int)wrank, program, sig, sig == SIGSEGV ? "segmentation violation" : sig == SIGFPE ? "floating-point exception" :
                     sig == SIGBUS                                                                                                                                                                                              ? "bus error" :
                                                                                                                                                                                                                                  "signal");
  if (len > 0 && write(STDERR_FILENO, line, (size_t)PetscMin(len, (int)sizeof(line) - 1)) < 0) len = 0;
  _exit(128 + sig);
}

PetscErrorCode HMPushErrorHandler(const char name[], PetscBool end_run)
{
  PetscBool tb = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(program, name, sizeof(program)));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-hm_traceback", &tb));
  if (tb || pushed) PetscFunctionReturn(PETSC_SUCCESS);
  if (end_run) {
    PetscCallMPI(MPI_Comm_dup(PETSC_COMM_WORLD, &err_comm));
    PetscCall(PetscPushErrorHandler(EndRunErrorHandler, NULL));
    PetscCall(PetscPushSignalHandler(OneLineSignalHandler, NULL));
  } else PetscCall(PetscPushErrorHandler(ReturnErrorHandler, NULL));
  pushed = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMPopErrorHandler(void)
{
  PetscFunctionBegin;
  if (!pushed) PetscFunctionReturn(PETSC_SUCCESS);
  pushed = PETSC_FALSE;
  PetscCall(PetscPopErrorHandler());
  if (err_comm != MPI_COMM_NULL) {
    PetscCall(PetscPopSignalHandler());
    PetscCallMPI(MPI_Comm_free(&err_comm));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

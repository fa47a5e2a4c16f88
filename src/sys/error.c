/* One-line error messages for programs: "<program>: error: <what and where>", the house form of every error a user meets. */
#include <hipmace/sys.h>
#include <ctype.h>
#include <string.h>

void HMErrorMessageOneLine(PetscErrorCode n, const char mess[], char out[], size_t len)
{
  const char *text = mess;
  size_t      k    = 0;

  if (!len) return;
  while (text && isspace((unsigned char)*text)) text++;
  if (!text || !*text) PetscErrorMessage(n, &text, NULL);
  for (const char *c = text ? text : "unknown error"; *c && k < len - 1; c++) out[k++] = (*c == '\n' || *c == '\r') ? ' ' : *c;
  while (k > 0 && isspace((unsigned char)out[k - 1])) k--;
  out[k] = '\0';
}

PetscErrorCode HMErrorHandlerOneLine(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  PetscMPIInt rank = 0;
  char        msg[1024];

  (void)comm, (void)line, (void)func, (void)file;
  if (p != PETSC_ERROR_INITIAL) return n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    HMErrorMessageOneLine(n, mess, msg, sizeof(msg));
    fprintf(stderr, "%s: error: %s\n", ctx ? (const char *)ctx : "hipmace", msg);
  }
  return n;
}

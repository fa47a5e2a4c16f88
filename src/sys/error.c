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

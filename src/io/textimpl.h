/* Line-oriented text scanning shared by the XYZ, PDB and LAMMPS readers (whole file in memory). */
#pragma once

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ioimpl.h"

typedef struct {
  MPI_Comm    comm;
  const char *path;
  char       *buf; /* whole file, NUL-terminated; lines are cut in place */
  char       *p, *end;
  PetscInt64  line; /* number of the line last returned by HMTextNextLine() */
  HMReader    opt;  /* the reader's options and notes; NULL: defaults */
} HMTextReader;

/* A whole-file text format: the size of its reader state (whose first member is the HMTextReader), the parser
   and what frees the parser's arrays (also after an error). */
typedef struct {
  size_t size;
  PetscErrorCode (*parse)(HMTextReader *, HMSystem *);
  PetscErrorCode (*reset)(HMTextReader *);
} HMTextFormat;

PETSC_INTERN const HMTextFormat HMTextFormatPDB, HMTextFormatLAMMPS;
/* Reads path with the format: on error *out is NULL and nothing is left allocated. */
PETSC_INTERN PetscErrorCode HMTextLoad_Private(const HMTextFormat *, HMReader opt, MPI_Comm, const char path[], HMSystem *out);

/* The whole file in t->buf (gunzipped if needed), the cursor at its start; t->buf is the caller's to free, also on error. */
PETSC_INTERN PetscErrorCode HMTextReaderOpen_Private(MPI_Comm, const char path[], HMTextReader *t);

/* Next line without its newline (and a DOS carriage return), cut in place; NULL at the end. */
static inline char *HMTextNextLine(HMTextReader *r)
{
  char  *s, *nl;
  size_t len;

  if (r->p >= r->end) return NULL;
  s  = r->p;
  nl = memchr(s, '\n', (size_t)(r->end - s));
  if (nl) {
    *nl  = '\0';
    r->p = nl + 1;
  } else r->p = r->end; /* the buffer carries a terminating NUL */
  len = strlen(s);
  if (len && s[len - 1] == '\r') s[len - 1] = '\0';
  r->line++;
  return s;
}

/* Text files with NUL bytes are binary or corrupt; reject them up front so that the string
   functions used per line cannot silently stop short. */
static inline PetscErrorCode HMTextCheckNul(HMTextReader *r)
{
  const char *nul = memchr(r->buf, '\0', (size_t)(r->end - r->buf));

  PetscFunctionBegin;
  if (nul) {
    PetscInt64 line = 1;

    for (const char *c = r->buf; c < nul; c++) line += *c == '\n';
    SETERRQ(r->comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": NUL byte in a text file", r->path, line);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static inline char *HMTextTrim(char *s)
{
  char *e;

  while (*s && isspace((unsigned char)*s)) s++;
  e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

/* Whitespace-separated tokens cut in place; only the first maxtok are stored, all are counted. */
static inline int HMTextSplit(char *s, char **tok, int maxtok)
{
  int count = 0;

  for (;;) {
    char *start;

    while (*s && isspace((unsigned char)*s)) s++;
    if (!*s) break;
    start = s;
    while (*s && !isspace((unsigned char)*s)) s++;
    if (count < maxtok) {
      tok[count] = start;
      if (*s) *s++ = '\0';
    }
    if (count < INT_MAX) count++;
  }
  return count;
}

/* Number of whitespace-separated tokens, the string left as it is. */
static inline int HMTextCountTokens(const char *s)
{
  int count = 0;

  for (;;) {
    while (*s && isspace((unsigned char)*s)) s++;
    if (!*s) break;
    while (*s && !isspace((unsigned char)*s)) s++;
    if (count < INT_MAX) count++;
  }
  return count;
}

/* The whole token must be a finite number (no trailing junk, no NaN/Inf). */
static inline PetscBool HMTextParseReal(const char *tok, double *v)
{
  char *end;

  errno = 0;
  *v    = strtod(tok, &end);
  return (PetscBool)(end != tok && *end == '\0' && isfinite(*v) && !isspace((unsigned char)tok[0]));
}

/* Decimal integer with optional sign, nothing else. */
static inline PetscBool HMTextParseLong(const char *tok, long long *v)
{
  char *end;

  if (!*tok || isspace((unsigned char)tok[0])) return PETSC_FALSE;
  errno = 0;
  *v    = strtoll(tok, &end, 10);
  return (PetscBool)(end != tok && *end == '\0' && errno != ERANGE);
}

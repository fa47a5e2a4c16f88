/* XYZ / extended-XYZ reader (one frame of a file of frames, -frame) and writer for HMSystem (full double precision). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "ioimpl.h"
#include "textimpl.h"
#include <stddef.h>

/* the line helpers shared with the PDB and LAMMPS readers */
#define Trim        HMTextTrim
#define SplitTokens HMTextSplit
#define ParseReal   HMTextParseReal
#define ParseLong   HMTextParseLong

/* Properties columns wider than this are certainly not a structure file. */
#define XYZ_MAX_COLUMNS 100000

#include "xyzimpl.h"

static PetscBool ParseBool(const char *tok, PetscBool *b)
{
  if (!strcasecmp(tok, "T") || !strcasecmp(tok, "True") || !strcmp(tok, "1")) *b = PETSC_TRUE;
  else if (!strcasecmp(tok, "F") || !strcasecmp(tok, "False") || !strcmp(tok, "0")) *b = PETSC_FALSE;
  else return PETSC_FALSE;
  return PETSC_TRUE;
}

/* Next key[=value] pair of an extended-XYZ comment, cut in place; *val is NULL for a bare word.
   Values may be quoted ("..." or '...') or braced ({...}); an unclosed quote runs to the end. */
static PetscBool NextPair(char **cursor, char **key, char **val)
{
  char *p = *cursor, *kend, *q;

  while (*p && isspace((unsigned char)*p)) p++;
  if (!*p) return PETSC_FALSE;
  *key = p;
  while (*p && !isspace((unsigned char)*p) && *p != '=') p++;
  kend = p;
  q    = p;
  while (*q && isspace((unsigned char)*q)) q++;
  if (*q == '=') {
    q++;
    while (*q && isspace((unsigned char)*q)) q++;
    if (*q == '"' || *q == '\'' || *q == '{') {
      const char close = *q == '{' ? '}' : *q;
      char      *e     = strchr(q + 1, close);

      *val = q + 1;
      if (e) {
        *e = '\0';
        p  = e + 1;
      } else p = q + strlen(q);
    } else {
      *val = q;
      while (*q && !isspace((unsigned char)*q)) q++;
      p = q;
      if (*p) *p++ = '\0';
    }
    *kend = '\0';
  } else {
    *val = NULL;
    p    = kend;
    if (*p) *p++ = '\0';
  }
  *cursor = p;
  return PETSC_TRUE;
}

/* Lattice and pbc values: separators are whitespace or commas, brackets are ignored. */
static void BlankSeparators(char *s)
{
  for (; *s; s++)
    if (*s == ',' || *s == '[' || *s == ']' || *s == '(' || *s == ')') *s = ' ';
}

/* Splits "a:b:c" in place; returns the current field and advances, NULL when exhausted. */
static char *NextField(char **p)
{
  char *f = *p, *c;

  if (!f) return NULL;
  c = strchr(f, ':');
  if (c) {
    *c = '\0';
    *p = c + 1;
  } else *p = NULL;
  return f;
}

/* The Properties columns hipmace reads (others are skipped): name, type, width and where the layout keeps the column. */
static const struct {
  const char *name;
  char        type;
  long        width;
  size_t      offset;
} XYZKnownColumns[] = {
    {"species", 'S', 1, offsetof(XYZLayout, colspecies)},
    {"Z",       'I', 1, offsetof(XYZLayout, colZ)      },
    {"pos",     'R', 3, offsetof(XYZLayout, colpos)    },
    {"masses",  'R', 1, offsetof(XYZLayout, colmass)   },
};

static PetscErrorCode ParseProperties(XYZReader *r, char *val, XYZLayout *L)
{
  char     *p    = val;
  long long cols = 0;

  PetscFunctionBegin;
  L->colspecies = L->colZ = L->colpos = L->colmass = -1;
  while (p) {
    char     *name = NextField(&p), *type = NextField(&p), *cnt = NextField(&p);
    long long width;
    char      t;

    PetscCheck(name && type && cnt, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties must be name:type:count triples", r->t.path, r->t.line);
    PetscCheck(strlen(type) == 1 && strchr("SRILsril", type[0]), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": property '%s' has type '%s' (expected S, R, I or L)", r->t.path, r->t.line, name, type);
    PetscCheck(ParseLong(cnt, &width) && width >= 1 && width <= XYZ_MAX_COLUMNS, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": property '%s' has column count '%s' (expected a positive integer)", r->t.path, r->t.line, name, cnt);
    t = (char)toupper((unsigned char)type[0]);
    for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(XYZKnownColumns); k++) {
      int *col = (int *)((char *)L + XYZKnownColumns[k].offset);

      if (strcmp(name, XYZKnownColumns[k].name)) continue;
      PetscCheck(*col < 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": property '%s' appears twice", r->t.path, r->t.line, name);
      PetscCheck(t == XYZKnownColumns[k].type && width == XYZKnownColumns[k].width, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": property '%s' must be %c:%ld, found %s:%s", r->t.path, r->t.line, name, XYZKnownColumns[k].type, XYZKnownColumns[k].width, type, cnt);
      *col = (int)cols;
    }
    cols += width;
    PetscCheck(cols <= XYZ_MAX_COLUMNS, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties declare more than %d columns", r->t.path, r->t.line, XYZ_MAX_COLUMNS);
  }
  PetscCheck(L->colspecies >= 0 || L->colZ >= 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties has no 'species' (S:1) or 'Z' (I:1) column", r->t.path, r->t.line);
  PetscCheck(L->colpos >= 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties has no 'pos' (R:3) column", r->t.path, r->t.line);
  L->ncols     = (int)cols;
  L->exactcols = PETSC_TRUE;
  L->hasprops  = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The value of a comment key that must appear once with exactly want tokens (tok has room for want + 1);
   marks it seen. */
static PetscErrorCode KeyTokens(XYZReader *r, const char *key, PetscBool *seen, char *val, char **tok, int want, const char *what)
{
  int ntok;

  PetscFunctionBegin;
  PetscCheck(!*seen, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s given twice", r->t.path, r->t.line, key);
  PetscCheck(val, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s has no value", r->t.path, r->t.line, key);
  BlankSeparators(val);
  ntok = SplitTokens(val, tok, want + 1);
  PetscCheck(ntok == want, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s needs %d %s, found %d", r->t.path, r->t.line, key, want, what, ntok);
  *seen = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Extended-XYZ keys in the comment line; anything else (free text, other keys) is ignored. */
static PetscErrorCode ParseComment(XYZReader *r, char *comment, XYZLayout *L)
{
  char *cursor = comment, *key, *val;

  PetscFunctionBegin;
  while (NextPair(&cursor, &key, &val)) {
    if (!strcasecmp(key, "Lattice")) {
      char *tok[10];

      PetscCall(KeyTokens(r, "Lattice", &L->haslattice, val, tok, 9, "numbers"));
      for (int k = 0; k < 9; k++) PetscCheck(ParseReal(tok[k], &L->cell[k]), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Lattice entry '%s' is not a finite number", r->t.path, r->t.line, tok[k]);
    } else if (!strcasecmp(key, "pbc")) {
      char *tok[4];

      PetscCall(KeyTokens(r, "pbc", &L->haspbc, val, tok, 3, "flags"));
      for (int d = 0; d < 3; d++) PetscCheck(ParseBool(tok[d], &L->pbc[d]), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": pbc flag '%s' is not T/F/True/False/1/0", r->t.path, r->t.line, tok[d]);
    } else if (!strcasecmp(key, "Properties")) {
      PetscCheck(!L->hasprops, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties given twice", r->t.path, r->t.line);
      PetscCheck(val, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Properties has no value", r->t.path, r->t.line);
      PetscCall(ParseProperties(r, val, L));
    }
  }
  if (!L->haspbc) {
    /* ASE: a Lattice without pbc means periodic in all three directions */
    for (int d = 0; d < 3; d++) L->pbc[d] = L->haslattice;
  }
  if (!L->haslattice)
    for (int d = 0; d < 3; d++) PetscCheck(!L->pbc[d], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": pbc marks axis %d periodic but no Lattice is given", r->t.path, r->t.line, d);
  if (L->haslattice) {
    char where[PETSC_MAX_PATH_LEN + 32];

    snprintf(where, sizeof(where), "%s:%" PetscInt64_FMT, r->t.path, r->t.line);
    PetscCall(HMSystemCheckCell_Private(r->t.comm, where, L->cell, L->pbc));
  }
  if (!L->hasprops) {
    L->ncols      = 4;
    L->exactcols  = PETSC_FALSE;
    L->colspecies = 0;
    L->colZ       = -1;
    L->colpos     = 1;
    L->colmass    = -1;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Species token: element symbol (any case) or atomic number. */
static PetscErrorCode ParseSpecies(XYZReader *r, const char *tok, PetscBool numeric_only, int *Z)
{
  long long z;

  PetscFunctionBegin;
  if (isdigit((unsigned char)tok[0]) || tok[0] == '+' || tok[0] == '-') {
    PetscCheck(ParseLong(tok, &z) && z >= 1 && z <= HM_MAX_Z, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atomic number '%s' is not in 1..%d", r->t.path, r->t.line, tok, HM_MAX_Z);
    *Z = (int)z;
  } else {
    PetscCheck(!numeric_only, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Z column entry '%s' is not an integer", r->t.path, r->t.line, tok);
    *Z = HMElementFromSymbol(tok);
    PetscCheck(*Z > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": unknown element symbol '%s'", r->t.path, r->t.line, tok);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A complete frame at p (count line, comment line, count atom lines), looked at without cutting
   lines: *next is where the following frame would start, *nlines the lines it spans. */
static PetscBool FrameAt(const char *p, const char *end, const char **next, PetscInt64 *nlines)
{
  char        num[32], *t;
  const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
  size_t      k  = nl ? (size_t)(nl - p) : (size_t)(end - p);
  long long   n;

  if (p >= end || k >= sizeof(num)) return PETSC_FALSE;
  memcpy(num, p, k);
  num[k] = '\0';
  t      = Trim(num);
  if (!isdigit((unsigned char)t[0]) || !ParseLong(t, &n) || n <= 0) return PETSC_FALSE;
  p = nl ? nl + 1 : end;
  for (long long i = 0; i < n + 1; i++) {
    if (p >= end) return PETSC_FALSE;
    nl = memchr(p, '\n', (size_t)(end - p));
    p  = nl ? nl + 1 : end;
  }
  *next   = p;
  *nlines = n + 2;
  return PETSC_TRUE;
}

/* Frames from p to the end; counting stops at anything that is not a complete frame. */
static PetscInt CountFrames(const char *p, const char *end)
{
  PetscInt   n = 0;
  PetscInt64 nl;

  while (FrameAt(p, end, &p, &nl)) n++;
  return n;
}

/* Positions the reader on the frame asked for (-frame) and notes the choice when the file has several. */
static PetscErrorCode SelectFrame(XYZReader *r, HMReader rd, PetscInt *frame, PetscInt *nframes)
{
  PetscInt want = rd && rd->frameset ? rd->frame : 0;

  PetscFunctionBegin;
  *nframes = CountFrames(r->t.p, r->t.end);
  if (want < 0) {
    PetscCheck(*nframes + want >= 0, r->t.comm, PETSC_ERR_USER_INPUT, "%s: -frame %" PetscInt_FMT " requested but the file has %" PetscInt_FMT " complete frame(s)", r->t.path, want, *nframes);
    want += *nframes;
  }
  PetscCheck(want == 0 || want < *nframes, r->t.comm, PETSC_ERR_USER_INPUT, "%s: -frame %" PetscInt_FMT " requested but the file has %" PetscInt_FMT " complete frame(s) (frames count from 0)", r->t.path, want, *nframes);
  for (PetscInt f = 0; f < want; f++) {
    const char *next;
    PetscInt64  nl;

    (void)FrameAt(r->t.p, r->t.end, &next, &nl);
    r->t.p = (char *)next;
    r->t.line += nl;
  }
  *frame = want;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One atom line (atom i of n, line r->t.line) into Z, x[3] and mass; r->tok holds the layout's columns. */
PetscErrorCode HMXYZParseAtom_Private(XYZReader *r, const XYZLayout *L, char *s, PetscInt i, long long n, int *Z, double x[3], double *mass)
{
  const int maxtok = L->exactcols ? L->ncols : 4;
  int       ntok;

  PetscFunctionBegin;
  ntok = SplitTokens(s, r->tok, maxtok);
  PetscCheck(ntok > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": blank line where atom %" PetscInt_FMT " of %lld was expected", r->t.path, r->t.line, i + 1, n);
  if (L->exactcols) PetscCheck(ntok == L->ncols, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %d columns but Properties declares %d", r->t.path, r->t.line, ntok, L->ncols);
  else PetscCheck(ntok >= 4, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": expected 'symbol x y z', found %d column(s)", r->t.path, r->t.line, ntok);
  if (L->colspecies >= 0) PetscCall(ParseSpecies(r, r->tok[L->colspecies], PETSC_FALSE, Z));
  else PetscCall(ParseSpecies(r, r->tok[L->colZ], PETSC_TRUE, Z));
  for (int d = 0; d < 3; d++) {
    const char *t = r->tok[L->colpos + d];

    PetscCheck(ParseReal(t, &x[d]), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": coordinate '%s' is not a finite number", r->t.path, r->t.line, t);
  }
  if (L->colmass >= 0) {
    const char *t = r->tok[L->colmass];

    PetscCheck(ParseReal(t, mass), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": mass '%s' is not a finite number", r->t.path, r->t.line, t);
    PetscCheck(*mass > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": mass %s must be positive", r->t.path, r->t.line, t);
  } else *mass = HMElementMass(*Z);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The count line and the comment line: the atom count and the column layout. */
PetscErrorCode HMXYZParseHeader_Private(XYZReader *r, long long *pn, XYZLayout *L)
{
  char     *s;
  long long n;

  PetscFunctionBegin;
  s = HMTextNextLine(&r->t);
  PetscCheck(s, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": empty file (expected the number of atoms)", r->t.path, r->t.line + 1);
  s = Trim(s);
  PetscCheck(isdigit((unsigned char)s[0]) && ParseLong(s, &n), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": '%s' is not an atom count (a positive integer alone on the line)", r->t.path, r->t.line, s);
  PetscCheck(n > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom count %lld must be positive", r->t.path, r->t.line, n);
  PetscCheck(n <= PETSC_MAX_INT / 3, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom count %lld is too large for this PetscInt build", r->t.path, r->t.line, n);

  s = HMTextNextLine(&r->t);
  PetscCheck(s, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": missing comment line", r->t.path, r->t.line + 1);
  PetscCall(PetscMemzero(L, sizeof(*L)));
  PetscCall(ParseComment(r, s, L));
  PetscCall(PetscMalloc1(L->exactcols ? L->ncols : 4, &r->tok));
  *pn = n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

void HMXYZSetCell_Private(HMSystem sys, const XYZLayout *L)
{
  sys->massgiven = L->colmass >= 0 ? PETSC_TRUE : PETSC_FALSE;
  sys->hascell   = L->haslattice;
  for (int k = 0; k < 9; k++) sys->cell[k] = L->haslattice ? L->cell[k] : 0.0;
  for (int d = 0; d < 3; d++) sys->pbc[d] = L->pbc[d];
}

static PetscErrorCode XYZParse(XYZReader *r, HMSystem sys)
{
  XYZLayout  L;
  char      *s;
  long long  n;
  PetscInt64 remaining = 0;

  PetscFunctionBegin;
  PetscCall(HMXYZParseHeader_Private(r, &n, &L));

  /* refuse an absurd count before allocating for it */
  for (const char *c = r->t.p; c < r->t.end; c++) remaining += *c == '\n';
  if (r->t.p < r->t.end && r->t.end[-1] != '\n') remaining++;
  PetscCheck(remaining >= n, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": file ends after %" PetscInt64_FMT " atom lines but line 1 announces %lld atoms", r->t.path, r->t.line + remaining, remaining, n);

  sys->n = (PetscInt)n;
  PetscCall(PetscMalloc3(sys->n, &sys->Z, 3 * sys->n, &sys->pos, sys->n, &sys->mass));
  for (PetscInt i = 0; i < sys->n; i++) {
    s = HMTextNextLine(&r->t);
    PetscCheck(s, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": file ends after %" PetscInt_FMT " of %lld atoms", r->t.path, r->t.line, i, n);
    PetscCall(HMXYZParseAtom_Private(r, &L, s, i, n, &sys->Z[i], &sys->pos[3 * i], &sys->mass[i]));
  }
  HMXYZSetCell_Private(sys, &L);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemLoadXYZ_Private(HMReader rd, MPI_Comm comm, const char path[], HMSystem *out)
{
  XYZReader      r;
  HMSystem       sys;
  PetscErrorCode ierr;
  PetscInt       frame = 0, nframes = 0;

  PetscFunctionBegin;
  PetscCheck(path && out, comm, PETSC_ERR_ARG_NULL, "HMSystemLoad: path and output must not be NULL");
  *out = NULL;
  PetscCall(PetscMemzero(&r, sizeof(r)));
  ierr = HMTextReaderOpen_Private(comm, path, &r.t);
  if (PetscUnlikely(ierr)) {
    PetscCall(PetscFree(r.t.buf));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  PetscCall(PetscNew(&sys));
  sys->comm = comm;
  PetscCall(PetscStrallocpy(path, &sys->source));
  ierr = HMTextCheckNul(&r.t);
  if (!ierr) ierr = SelectFrame(&r, rd, &frame, &nframes);
  if (!ierr) ierr = XYZParse(&r, sys);
  if (!ierr && rd && nframes > 1) {
    if (rd->frameset) ierr = HMReaderNote_Private(rd, "frame %" PetscInt_FMT " of %" PetscInt_FMT " read (-frame)", frame, nframes);
    else ierr = HMReaderNote_Private(rd, "the file has %" PetscInt_FMT " frames; frame 0 read (choose another with -frame K, counted from 0)", nframes);
  }
  PetscCall(PetscFree(r.tok));
  PetscCall(PetscFree(r.t.buf));
  if (PetscUnlikely(ierr)) {
    PetscCall(HMSystemDestroy(&sys));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  *out = sys;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Parallel reading of a LAMMPS data file (HMReaderLoadDistributed): every rank reads a byte range, the section
   keywords (a few dozen lines) are shared by every rank, the header and the Masses section are read by rank 0
   and broadcast, each rank parses the Atoms lines of its range with the serial reader's line parser, and a
   distributed sort by atom id (parallel selection of the splitters, one all-to-all) leaves every rank a contiguous
   run of the atoms in id order: bitwise the serial reader's system, no array of length N on any rank.
   Anything the serial reader would refuse sends the file to it on rank 0, whose message every rank raises. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "lammpsimpl.h"
#include "sliceimpl.h"
#include "sys/sysimpl.h"

/* more keywords than LAMMPS has sections (26, each at most once) mean a malformed file */
#define LMP_MAX_KEYWORDS 64
/* the header and the Masses section are read whole by rank 0: larger ones go to the serial reader */
#define LMP_MAX_SHARED_BYTES (64LL << 20)

/* A section keyword line: where it is, what it says, and how many data lines follow it on its rank. */
typedef struct {
  long long line, off, len; /* line number, byte offset of its start, its bytes with the newline */
  long long after;          /* data lines after it on its rank, up to the next keyword there or the range's end */
  int       rank, toolong;
  char      name[64], comment[64];
} LmpKeyword;

/* Lines that start in this rank's range, each copied, cut at its comment and trimmed; the slice is not changed. */
typedef struct {
  const HMSlice *sl;
  long long      pos, line; /* next line's offset in sl->buf; number of the line last returned */
  char          *tmp;
  size_t         cap;
  /* the line last returned: its text before any '#', trimmed; its comment (NULL if none); its byte offset and
     length with the newline; its kind: 0 nothing (the title, blank), 1 a data line, 2 a keyword, -1 the end */
  char     *t, *comment;
  long long off, len;
  int       kind;
} Walker;

static PetscErrorCode WalkerInit(Walker *w, const HMSlice *sl)
{
  PetscFunctionBegin;
  PetscCall(PetscMemzero(w, sizeof(*w)));
  w->sl   = sl;
  w->pos  = sl->first;
  w->line = sl->nlbefore;
  for (long long k = 0; k < sl->first; k++) w->line += sl->buf[k] == '\n';
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The next line of the range into w->t, comment, off, len and kind. */
static PetscErrorCode WalkerNext(Walker *w)
{
  const HMSlice *sl = w->sl;
  const char    *s, *nl;
  size_t         n;

  PetscFunctionBegin;
  w->t = w->comment = NULL;
  w->kind           = -1;
  if (w->pos >= sl->len || sl->b0 + w->pos >= sl->b1) PetscFunctionReturn(PETSC_SUCCESS);
  s      = sl->buf + w->pos;
  nl     = memchr(s, '\n', (size_t)(sl->len - w->pos));
  n      = nl ? (size_t)(nl - s) : (size_t)(sl->len - w->pos);
  w->off = sl->b0 + w->pos;
  w->len = nl ? (long long)n + 1 : (long long)n;
  w->pos += w->len;
  w->line++;
  if (n + 1 > w->cap) {
    PetscCall(PetscFree(w->tmp));
    w->cap = PetscMax(2 * w->cap, n + 1);
    PetscCall(PetscMalloc1(w->cap, &w->tmp));
  }
  PetscCall(PetscArraycpy(w->tmp, s, n));
  w->tmp[n] = '\0';
  if (n && w->tmp[n - 1] == '\r') w->tmp[n - 1] = '\0';
  w->comment = HMLmpCutComment(w->tmp);
  w->t       = HMTextTrim(w->tmp);
  w->kind    = w->line == 1 || !*w->t ? 0 : HMLmpLooksNumeric(w->t) ? 1 :
                                                                      2;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The layout of the whole file from every rank's range: keywords in file order, the data lines before the first
   keyword of each rank (seg0), and per keyword the number of data lines of its section (m). */
typedef struct {
  PetscMPIInt rank, size;
  LmpKeyword *kw;
  int         nkw, kw0; /* kw0: index of this rank's first keyword */
  long long  *seg0, *m;
  int         cur0; /* keyword whose section holds this rank's first data lines (-1: the header) */
} Layout;

static PetscErrorCode LayoutDestroy(Layout *L)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(L->kw));
  PetscCall(PetscFree2(L->seg0, L->m));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Collective. *ok false (on every rank) when the file has more keywords than any valid file. */
static PetscErrorCode LayoutBuild(MPI_Comm comm, const HMSlice *sl, Layout *L, PetscBool *ok)
{
  Walker      w;
  LmpKeyword *mine  = NULL;
  int         nmine = 0, total = 0, cap = 0;
  long long   seg0 = 0;
  PetscMPIInt nb, *counts, *displs;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(L, sizeof(*L)));
  PetscCallMPI(MPI_Comm_rank(comm, &L->rank));
  PetscCallMPI(MPI_Comm_size(comm, &L->size));
  PetscCall(WalkerInit(&w, sl));
  for (;;) {
    PetscCall(WalkerNext(&w));
    if (w.kind < 0) break;
    if (w.kind == 1) {
      if (nmine) mine[nmine - 1].after++;
      else seg0++;
    } else if (w.kind == 2) {
      LmpKeyword *k;

      if (nmine == cap) {
        LmpKeyword *nk;

        if (cap >= LMP_MAX_KEYWORDS) {
          nmine++; /* counted, not kept: the file is refused below */
          continue;
        }
        cap = cap ? 2 * cap : 8;
        PetscCall(PetscCalloc1(cap, &nk));
        if (nmine) PetscCall(PetscArraycpy(nk, mine, nmine));
        PetscCall(PetscFree(mine));
        mine = nk;
      }
      k       = &mine[nmine++];
      k->line = w.line;
      k->off  = w.off;
      k->len  = w.len;
      k->rank = L->rank;
      /* the serial reader matches the whole name and reads the style from the comment's first 63 characters */
      k->toolong = strlen(w.t) >= sizeof(k->name);
      snprintf(k->name, sizeof(k->name), "%s", w.t);
      snprintf(k->comment, sizeof(k->comment), "%s", w.comment ? w.comment : "");
    }
  }
  PetscCall(PetscFree(w.tmp));
  PetscCallMPI(MPI_Allreduce(&nmine, &total, 1, MPI_INT, MPI_SUM, comm));
  *ok = (PetscBool)(total > 0 && total <= LMP_MAX_KEYWORDS);
  if (!*ok) {
    PetscCall(PetscFree(mine));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  L->nkw = total;
  PetscCall(PetscMalloc1(total, &L->kw));
  PetscCall(PetscMalloc2(L->size, &counts, L->size, &displs));
  PetscCall(PetscMPIIntCast((PetscInt64)nmine * (PetscInt64)sizeof(LmpKeyword), &nb));
  PetscCallMPI(MPI_Allgather(&nb, 1, MPI_INT, counts, 1, MPI_INT, comm));
  displs[0] = 0;
  for (PetscMPIInt r = 1; r < L->size; r++) displs[r] = displs[r - 1] + counts[r - 1];
  L->kw0 = displs[L->rank] / (int)sizeof(LmpKeyword);
  PetscCallMPI(MPI_Allgatherv(mine, nb, MPI_BYTE, L->kw, counts, displs, MPI_BYTE, comm));
  PetscCall(PetscFree2(counts, displs));
  PetscCall(PetscFree(mine));

  PetscCall(PetscMalloc2(L->size, &L->seg0, total, &L->m));
  PetscCallMPI(MPI_Allgather(&seg0, 1, MPI_LONG_LONG, L->seg0, 1, MPI_LONG_LONG, comm));
  /* a section's data lines: those after its keyword on its rank, then the leading ones of the following ranks
     up to the rank of the next keyword */
  for (int j = 0; j < total; j++) {
    const int last = j + 1 < total ? L->kw[j + 1].rank : L->size - 1;

    L->m[j] = L->kw[j].after;
    if (j + 1 < total && L->kw[j + 1].rank == L->kw[j].rank) continue;
    for (int r = L->kw[j].rank + 1; r <= last; r++) L->m[j] += L->seg0[r];
  }
  L->cur0 = -1;
  for (int j = 0; j < total && L->kw[j].rank < L->rank; j++) L->cur0 = j;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The sections as the serial reader checks them: known, once each, not Bodies, announced in the header and with
   exactly the announced number of lines. *atoms, *masses: their keywords (-1: none). */
static PetscBool SectionsValid(const LmpReader *r, const Layout *L, int *atoms, int *masses)
{
  PetscBool seen[64] = {PETSC_FALSE};

  *atoms = *masses = -1;
  for (int j = 0; j < L->nkw; j++) {
    const int k = L->kw[j].toolong ? -1 : HMLmpSectionIndex_Private(L->kw[j].name);
    LmpCount  c;

    if (k < 0 || k >= 64 || seen[k]) return PETSC_FALSE;
    seen[k] = PETSC_TRUE;
    c       = HMLmpSectionCount_Private(k);
    if (c == CNT_BODIES || r->count[c] <= 0 || L->m[j] != r->count[c]) return PETSC_FALSE;
    if (!strcmp(L->kw[j].name, "Atoms")) *atoms = j;
    if (!strcmp(L->kw[j].name, "Masses")) *masses = j;
  }
  return (PetscBool)(*atoms >= 0);
}

/* Runs a local step under a handler that keeps its message instead of printing it; *ok false if it failed. */
#define LMP_TRY(ok, cap, call)                                         \
  do {                                                                 \
    if (*(ok)) {                                                       \
      PetscErrorCode e_;                                               \
      PetscCall(PetscPushErrorHandler(HMErrorCapture_Private, (cap))); \
      e_ = (call);                                                     \
      PetscCall(PetscPopErrorHandler());                               \
      if (e_) *(ok) = PETSC_FALSE;                                     \
    }                                                                  \
  } while (0)

/* The header up to the first keyword (and the keyword): read by rank 0, parsed on every rank. */
static PetscErrorCode ParseHeaderShared(MPI_Comm comm, int fd, LmpReader *r, const Layout *L, PetscBool *ok)
{
  HMErrorCapture  cap;
  char           *kw = NULL, *comment = NULL;
  const long long len = L->kw[0].off + L->kw[0].len;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  *ok = (PetscBool)(len <= LMP_MAX_SHARED_BYTES);
  if (!*ok) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMSliceBcastBytes_Private(comm, fd, r->t.path, 0, len, &r->t.buf));
  r->t.p    = r->t.buf;
  r->t.end  = r->t.buf + len;
  r->t.line = 0;
  LMP_TRY(ok, &cap, HMLmpParseHeader_Private(r, &kw, &comment));
  if (!kw) *ok = PETSC_FALSE;
  PetscCall(PetscFree(r->t.buf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The Masses section (keyword j): read by rank 0, parsed on every rank. */
static PetscErrorCode ParseMassesShared(MPI_Comm comm, int fd, long long fsize, LmpReader *r, const Layout *L, int j, PetscBool *ok)
{
  HMErrorCapture  cap;
  const long long off = L->kw[j].off, end = j + 1 < L->nkw ? L->kw[j + 1].off : fsize;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  *ok = (PetscBool)(end - off <= LMP_MAX_SHARED_BYTES);
  if (!*ok) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(HMSliceBcastBytes_Private(comm, fd, r->t.path, off, end - off, &r->t.buf));
  r->t.p    = r->t.buf;
  r->t.end  = r->t.buf + (end - off);
  r->t.line = L->kw[j].line - 1;
  (void)HMTextNextLine(&r->t); /* the keyword */
  LMP_TRY(ok, &cap, HMLmpParseMasses_Private(r, r->count[CNT_ATOM_TYPES]));
  PetscCall(PetscFree(r->t.buf));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The atom style: from the Atoms keyword's comment or -lammps_style, else from the column count of the section's
   first line, which the rank holding it broadcasts. */
static PetscErrorCode ResolveStyle(MPI_Comm comm, const HMSlice *sl, LmpReader *r, const Layout *L, int atoms, const LmpStyle **style, PetscBool *ok)
{
  HMErrorCapture cap;
  PetscMPIInt    owner   = L->kw[atoms].rank;
  long long      info[2] = {0, 0}; /* the first line's number and column count */

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  *style    = NULL;
  r->t.line = L->kw[atoms].line;
  LMP_TRY(ok, &cap, HMLmpStyleFromComment_Private(r, L->kw[atoms].comment, style));
  if (!*ok || *style) PetscFunctionReturn(PETSC_SUCCESS);
  if (!L->kw[atoms].after)
    for (owner = L->kw[atoms].rank + 1; owner < L->size && !L->seg0[owner]; owner++) {}
  if (L->rank == owner) {
    Walker w;
    int    cur = L->cur0;

    PetscCall(WalkerInit(&w, sl));
    for (;;) {
      PetscCall(WalkerNext(&w));
      if (w.kind < 0) break;
      cur += w.kind == 2;
      if (w.kind == 1 && cur == atoms) {
        info[0] = w.line;
        info[1] = HMTextCountTokens(w.t);
        break;
      }
    }
    PetscCall(PetscFree(w.tmp));
  }
  PetscCallMPI(MPI_Bcast(info, 2, MPI_LONG_LONG, owner, comm));
  r->t.line = info[0];
  LMP_TRY(ok, &cap, HMLmpStyleFromColumns_Private(r, (int)info[1], style));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* This rank's Atoms lines into r->atoms (r->natoms of them); *ok false at the first line the serial reader refuses. */
static PetscErrorCode ParseAtomsLocal(const HMSlice *sl, LmpReader *r, const Layout *L, int atoms, const LmpStyle *style, PetscBool *ok)
{
  HMErrorCapture cap;
  Walker         w;
  int            cur = L->cur0;
  long long      n   = cur == atoms ? L->seg0[L->rank] : 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  for (int j = L->kw0; j < L->nkw && L->kw[j].rank == L->rank; j++)
    if (j == atoms) n += L->kw[j].after;
  PetscCall(PetscMalloc1(n, &r->atoms));
  r->natoms = 0;
  PetscCall(WalkerInit(&w, sl));
  while (*ok) {
    PetscCall(WalkerNext(&w));
    if (w.kind < 0) break;
    cur += w.kind == 2;
    if (w.kind != 1 || cur != atoms) continue;
    PetscCheck(r->natoms < n, PETSC_COMM_SELF, PETSC_ERR_PLIB, "%s: more Atoms lines on this rank than counted", r->t.path);
    r->t.line = w.line;
    LMP_TRY(ok, &cap, HMLmpParseAtomLine_Private(r, style, w.t, &r->atoms[r->natoms]));
    r->natoms++;
  }
  PetscCall(PetscFree(w.tmp));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Number of atoms (sorted by id) with id <= v. */
static long long CountUpTo(const LmpAtom *a, PetscInt n, long long v)
{
  PetscInt lo = 0, hi = n;

  while (lo < hi) {
    const PetscInt mid = lo + (hi - lo) / 2;

    if (a[mid].id <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Collective. The atoms (any number on each rank, any order) sorted by id across comm: rank r ends with the atoms
   of global positions N r / P .. N (r + 1) / P - 1 in id order. The splitter of each rank boundary is the smallest
   id v with at least that many ids <= v, found by bisection on the id range for all boundaries at once (one
   reduction of P - 1 counts per halving); one all-to-all moves the atoms. *ok false if an id occurs twice. */
static PetscErrorCode SortById(MPI_Comm comm, long long N, LmpAtom **atoms, PetscInt *n, PetscInt *rstart, PetscBool *ok)
{
  PetscMPIInt size, rank;
  long long   lmin = LLONG_MAX, lmax = LLONG_MIN, gmin, gmax, *lo, *hi, *tgt, *cnt;
  long long   width;
  LmpAtom    *recv;
  PetscInt    nrecv = 0, *scnt;
  HMExchange  x;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (*n) qsort(*atoms, (size_t)*n, sizeof(LmpAtom), HMLmpCompareId_Private); /* qsort wants a buffer even for 0 */
  if (*n) {
    lmin = (*atoms)[0].id;
    lmax = (*atoms)[*n - 1].id;
  }
  PetscCallMPI(MPI_Allreduce(&lmin, &gmin, 1, MPI_LONG_LONG, MPI_MIN, comm));
  PetscCallMPI(MPI_Allreduce(&lmax, &gmax, 1, MPI_LONG_LONG, MPI_MAX, comm));
  PetscCall(PetscMalloc4(size + 1, &tgt, size, &lo, size, &hi, size, &cnt));
  for (PetscMPIInt j = 0; j <= size; j++) tgt[j] = N * (long long)j / size; /* N <= PETSC_MAX_INT / 3: no overflow */
  /* boundary j (1 .. P-1): C(lo) < tgt <= C(hi), C(v) the number of ids <= v; no atoms before it: v = gmin - 1 */
  for (PetscMPIInt j = 1; j < size; j++) {
    lo[j] = gmin - 1;
    hi[j] = tgt[j] ? gmax : gmin - 1;
  }
  do {
    width = 0;
    for (PetscMPIInt j = 1; j < size; j++) {
      cnt[j] = hi[j] - lo[j] > 1 ? CountUpTo(*atoms, *n, lo[j] + (hi[j] - lo[j]) / 2) : 0;
      width  = PetscMax(width, hi[j] - lo[j]);
    }
    if (width <= 1) break;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, cnt + 1, size - 1, MPI_LONG_LONG, MPI_SUM, comm));
    for (PetscMPIInt j = 1; j < size; j++) {
      const long long mid = lo[j] + (hi[j] - lo[j]) / 2;

      if (hi[j] - lo[j] <= 1) continue;
      if (cnt[j] >= tgt[j]) hi[j] = mid;
      else lo[j] = mid;
    }
  } while (width > 1);

  /* send: the atoms of rank j have ids in (hi[j], hi[j + 1]], hi[0] = -inf, hi[P] = +inf */
  PetscCall(PetscMalloc1(size, &scnt));
  {
    PetscInt i = 0;

    for (PetscMPIInt j = 0; j < size; j++) {
      const PetscInt i0 = i;

      while (i < *n && (j == size - 1 || (*atoms)[i].id <= hi[j + 1])) i++;
      scnt[j] = i - i0;
    }
  }
  PetscCall(HMExchangeCreate(comm, scnt, &x));
  nrecv = x.nrecv;
  PetscCall(PetscMalloc1(nrecv, &recv));
  PetscCall(HMExchangeForward(&x, MPI_BYTE, (PetscMPIInt)sizeof(LmpAtom), *atoms, recv));
  PetscCall(HMExchangeDestroy(&x));
  PetscCall(PetscFree(scnt));
  PetscCall(PetscFree(*atoms));
  *atoms = recv;
  *n     = nrecv;
  if (nrecv) qsort(recv, (size_t)nrecv, sizeof(LmpAtom), HMLmpCompareId_Private);
  /* the same id twice lands on one rank; without repeats every rank holds exactly its share */
  *ok = (PetscBool)(nrecv == tgt[rank + 1] - tgt[rank]);
  for (PetscInt i = 1; i < nrecv && *ok; i++) *ok = (PetscBool)(recv[i].id != recv[i - 1].id);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, ok, 1, MPIU_BOOL, MPI_LAND, comm));
  *rstart = (PetscInt)tgt[rank];
  PetscCall(PetscFree4(tgt, lo, hi, cnt));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The file refused or not understood by the parallel pass: rank 0 reads it with the serial reader; its error is
   raised on every rank. If it reads (a file too unusual for the parallel pass), *out stays NULL and the caller's
   serial path takes it. */
static PetscErrorCode SerialDecides(HMReader rd, MPI_Comm comm, const char path[])
{
  PetscMPIInt    rank;
  HMErrorCapture cap;
  int            code = 0;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  if (rd) PetscCall(PetscFree(rd->notes));
  if (!rank) {
    HMSystem       sys = NULL;
    PetscErrorCode ierr;

    PetscCall(PetscPushErrorHandler(HMErrorCapture_Private, &cap));
    ierr = HMTextLoad_Private(&HMTextFormatLAMMPS, rd, PETSC_COMM_SELF, path, &sys);
    PetscCall(PetscPopErrorHandler());
    code = (int)ierr;
    PetscCall(HMSystemDestroy(&sys));
    if (rd) PetscCall(PetscFree(rd->notes));
  }
  PetscCallMPI(MPI_Bcast(&code, 1, MPI_INT, 0, comm));
  if (!code) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCallMPI(MPI_Bcast(cap.msg, (PetscMPIInt)sizeof(cap.msg), MPI_CHAR, 0, comm));
  SETERRQ(comm, (PetscErrorCode)code, "%s", cap.msg);
}

/* The distributed system from this rank's atoms (in id order, global positions rstart ..). */
static PetscErrorCode BuildSystem(MPI_Comm comm, LmpReader *r, PetscInt rstart, HMSystem *out)
{
  HMSystem sys;

  PetscFunctionBegin;
  PetscCall(PetscNew(&sys));
  sys->comm        = comm;
  sys->distributed = PETSC_TRUE;
  sys->N           = (PetscInt)r->count[CNT_ATOMS];
  sys->rstart      = rstart;
  sys->n           = r->natoms;
  PetscCall(PetscStrallocpy(r->t.path, &sys->source));
  PetscCall(PetscMalloc3(sys->n, &sys->Z, 3 * sys->n, &sys->pos, sys->n, &sys->mass));
  for (PetscInt i = 0; i < sys->n; i++) {
    const LmpAtom *a = &r->atoms[i];

    sys->Z[i]    = r->typeZ[a->type];
    sys->mass[i] = r->massline0 ? r->mass[a->type] : HMElementMass(sys->Z[i]);
    for (int d = 0; d < 3; d++) sys->pos[3 * i + d] = a->x[d];
  }
  sys->massgiven = r->massline0 ? PETSC_TRUE : PETSC_FALSE;
  sys->hascell   = PETSC_TRUE;
  for (int k = 0; k < 9; k++) sys->cell[k] = r->cell[k];
  for (int d = 0; d < 3; d++) sys->pbc[d] = PETSC_TRUE;
  *out = sys;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* What the serial reader checks after the sections, on this rank's atoms: elements of the types present anywhere,
   a mass for each when the file has a Masses section, finite unwrapped positions, a valid cell. */
static PetscErrorCode CheckTypesAndCell(MPI_Comm comm, LmpReader *r, PetscBool *ok)
{
  HMErrorCapture  cap;
  const long long ntypes = r->count[CNT_ATOM_TYPES];
  PetscBool       good   = PETSC_TRUE;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&cap, sizeof(cap)));
  for (PetscInt i = 0; i < r->natoms; i++) r->used[r->atoms[i].type] = PETSC_TRUE;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, r->used, (PetscMPIInt)(ntypes + 1), MPIU_BOOL, MPI_LOR, comm));
  LMP_TRY(ok, &cap, HMLmpMapTypes_Private(r));
  if (*ok) {
    const PetscBool pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};

    LMP_TRY(ok, &cap, HMSystemCheckCell_Private(PETSC_COMM_SELF, r->t.path, r->cell, pbc));
  }
  for (PetscInt i = 0; *ok && i < r->natoms; i++) {
    const LmpAtom *a = &r->atoms[i];

    if (r->massline0 && !(r->mass[a->type] > 0)) good = PETSC_FALSE;
    if (!(r->typeZ[a->type] >= 1 && r->typeZ[a->type] <= HM_MAX_Z)) good = PETSC_FALSE;
    for (int d = 0; d < 3; d++)
      if (!isfinite(a->x[d])) good = PETSC_FALSE;
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &good, 1, MPIU_BOOL, MPI_LAND, comm));
  *ok = (PetscBool)(*ok && good);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LoadLammpsDistributed(HMReader rd, MPI_Comm comm, const char path[], int fd, long long fsize, HMSystem *out)
{
  HMSlice         sl;
  Layout          L;
  LmpReader       r;
  const LmpStyle *style = NULL;
  PetscBool       ok;
  int             atoms, masses;
  PetscInt        rstart = 0;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&sl, sizeof(sl)));
  PetscCall(PetscMemzero(&r, sizeof(r)));
  r.t.comm = PETSC_COMM_SELF; /* every rank parses identical shared bytes, or its own lines under capture */
  r.t.path = path;
  r.t.opt  = rd;
  PetscCall(HMSliceRead_Private(comm, fd, path, fsize, &sl));
  PetscCall(HMSliceCheckNul_Private(comm, path, &sl));
  PetscCall(LayoutBuild(comm, &sl, &L, &ok));
  if (ok) PetscCall(ParseHeaderShared(comm, fd, &r, &L, &ok));
  if (ok) {
    ok          = SectionsValid(&r, &L, &atoms, &masses);
    r.atomsline = ok ? L.kw[atoms].line : 0;
    if (ok && masses >= 0) PetscCall(ParseMassesShared(comm, fd, fsize, &r, &L, masses, &ok));
  }
  if (ok) PetscCall(ResolveStyle(comm, &sl, &r, &L, atoms, &style, &ok));
  if (ok) PetscCall(ParseAtomsLocal(&sl, &r, &L, atoms, style, &ok));
  PetscCall(PetscFree(sl.buf));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPIU_BOOL, MPI_LAND, comm));
  if (ok) PetscCall(SortById(comm, r.count[CNT_ATOMS], &r.atoms, &r.natoms, &rstart, &ok));
  if (ok) PetscCall(CheckTypesAndCell(comm, &r, &ok));
  if (ok) PetscCall(BuildSystem(comm, &r, rstart, out));
  PetscCall(LayoutDestroy(&L));
  PetscCall((*HMTextFormatLAMMPS.reset)(&r.t));
  if (!ok) PetscCall(SerialDecides(rd, comm, path));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemLoadLammpsDistributed_Private(HMReader rd, MPI_Comm comm, const char path[], HMSystem *out)
{
  PetscFunctionBegin;
  PetscCall(HMSliceLoad_Private(rd, comm, path, LoadLammpsDistributed, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

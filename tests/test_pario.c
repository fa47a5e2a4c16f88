/* Parallel structure input (HMReaderLoadDistributed) against the serial reader on the same files, written
   here with awkward layouts: DOS line endings, trailing blank lines, no final newline, a comment line longer
   than a rank's byte range, long atom lines straddling the split points, more ranks than lines. Every rank's
   atoms must be bitwise the serial reader's atoms rstart .. rstart + n - 1; erroneous files must give the
   serial reader's message (file and line) on every rank. Then the parallel partition
   (HMDecompPartitionDistributed) against the serial RCB and grid on random and tied lattice inputs. */
#include <petscsys.h>
#include <hipmace/io.h>
#include <hipmace/decomp.h>
#include <hipmace.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "hmrand.h"
#include "hmcheck.h"

static int         failures = 0;
static PetscMPIInt grank, gsize;
static char        lastmsg[2048];
static int         nerr;

static PetscErrorCode Capture(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm;
  (void)line;
  (void)fun;
  (void)file;
  (void)ctx;
  if (p == PETSC_ERROR_INITIAL && !nerr++) snprintf(lastmsg, sizeof(lastmsg), "%s", mess ? mess : "");
  return n;
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static double   urand(void)
{
  return hm_urand(&rng);
}

/* the test files; rank 0 writes them */
static void WriteFile(const char *path, const char *text)
{
  FILE *f = fopen(path, "wb");
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

static char *Cat(char *s, size_t *len, size_t *cap, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(4, 5);
static char *Cat(char *s, size_t *len, size_t *cap, const char *fmt, ...)
{
  va_list ap;
  int     k;
  char    tmp[65536];
  va_start(ap, fmt);
  k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (*len + (size_t)k + 1 > *cap) {
    *cap = 2 * (*cap + (size_t)k + 1);
    s    = realloc(s, *cap);
  }
  memcpy(s + *len, tmp, (size_t)k + 1);
  *len += (size_t)k;
  return s;
}

/* n atoms; style: 0 plain, 1 extended with cell and masses (atoms outside the cell), 2 extended with many
   extra columns; eol "\n" or "\r\n"; tail appended after the atoms; comment padding of pad characters */
static char *MakeXYZ(int n, int style, const char *eol, const char *tail, int pad, int zeros)
{
  static const char *sym[] = {"H", "C", "N", "O", "S"};
  size_t             len = 0, cap = 0;
  char              *s = NULL;
  s                    = Cat(s, &len, &cap, "  %d  %s", n, eol);
  if (style == 0) s = Cat(s, &len, &cap, "plain comment %s", "");
  if (style == 1) s = Cat(s, &len, &cap, "Lattice=\"11.5 0 0 0.5 12.25 0 0 0.75 13\" Properties=species:S:1:pos:R:3:masses:R:1 pbc=\"T T T\" energy=-1.5");
  if (style == 2) s = Cat(s, &len, &cap, "Properties=species:S:1:pos:R:3:junk:R:40 note='a quoted value'");
  for (int k = 0; k < pad; k++) s = Cat(s, &len, &cap, "%c", 'a' + k % 26);
  s = Cat(s, &len, &cap, "%s", eol);
  for (int i = 0; i < n; i++) {
    double x[3];
    for (int d = 0; d < 3; d++) x[d] = zeros && i % 3 == 0 ? (d == 1 ? -0.0 : 0.0) : 30 * urand() - 8;
    s = Cat(s, &len, &cap, "%s %.17g\t%.17g %.17g", sym[i % 5], x[0], x[1], x[2]);
    if (style == 1) s = Cat(s, &len, &cap, " %.6f", 1 + 20 * urand());
    if (style == 2)
      for (int c = 0; c < 40; c++) s = Cat(s, &len, &cap, " %.17g", urand());
    s = Cat(s, &len, &cap, "%s", i + 1 < n || tail ? eol : "");
  }
  if (tail) s = Cat(s, &len, &cap, "%s", tail);
  return s;
}

/* One read of path on comm, serial (HMReaderLoad) or distributed; the first error message (or "") in msg. */
static PetscErrorCode LoadOne(MPI_Comm comm, PetscBool distributed, const char *path, HMSystem *sys, char msg[2048])
{
  HMReader r;
  PetscFunctionBegin;
  PetscCall(HMReaderCreate(comm, &r));
  PetscCall(PetscPushErrorHandler(Capture, NULL));
  nerr       = 0;
  lastmsg[0] = '\0';
  if (distributed) (void)HMReaderLoadDistributed(r, comm, path, sys);
  else (void)HMReaderLoad(r, comm, path, sys);
  PetscCall(PetscStrncpy(msg, nerr ? lastmsg : "", 2048));
  PetscCall(PetscPopErrorHandler());
  PetscCall(HMReaderDestroy(&r));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LoadBoth(const char *path, HMSystem *ser, HMSystem *par, char sermsg[2048], char parmsg[2048])
{
  PetscFunctionBegin;
  PetscCall(LoadOne(PETSC_COMM_SELF, PETSC_FALSE, path, ser, sermsg));
  PetscCall(LoadOne(PETSC_COMM_WORLD, PETSC_TRUE, path, par, parmsg));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* expect: 1 parallel, 0 serial fallback (rank 0 alone) */
/* par (read on PETSC_COMM_WORLD, distributed or not) holds exactly ser's atoms, cell and notes. */
static PetscErrorCode CheckSame(const char *name, HMSystem ser, HMSystem par, int expect, PetscBool notes)
{
  PetscBool     dist = PETSC_FALSE;
  PetscInt      N = 0, rs = 0, n = 0, ns = 0, sum = 0, next = 0;
  const int    *Zp, *Zs;
  const double *pp, *ps, *mp, *ms;

  PetscFunctionBegin;
  PetscCall(HMSystemGetDistribution(par, &dist, &N, &rs));
  CHECK(dist == (PetscBool)(expect && gsize > 1), "%s: distributed %d, expected %d", name, (int)dist, expect);
  PetscCall(HMSystemGetSize(par, &n));
  PetscCall(HMSystemGetSize(ser, &ns));
  CHECK(N == ns, "%s: N %d vs %d", name, (int)N, (int)ns);
  if (dist) {
    PetscCallMPI(MPI_Allreduce(&n, &sum, 1, MPIU_INT, MPI_SUM, PETSC_COMM_WORLD));
    PetscCallMPI(MPI_Exscan(&n, &next, 1, MPIU_INT, MPI_SUM, PETSC_COMM_WORLD));
    if (!grank) next = 0;
    CHECK(sum == N && next == rs, "%s: atoms %d of %d, start %d expected %d", name, (int)sum, (int)N, (int)rs, (int)next);
  }
  {
    HMSystem       two[2] = {par, ser};
    const int    **Zv[2]  = {&Zp, &Zs};
    const double **pv[2] = {&pp, &ps}, **mv[2] = {&mp, &ms};
    for (int k = 0; k < 2; k++) {
      PetscCall(HMSystemGetAtomicNumbers(two[k], Zv[k]));
      PetscCall(HMSystemGetPositions(two[k], pv[k]));
      PetscCall(HMSystemGetMasses(two[k], mv[k]));
    }
  }
  if (n) {
    CHECK(!memcmp(Zp, Zs + rs, sizeof(int) * (size_t)n), "%s: Z differ", name);
    CHECK(!memcmp(pp, ps + 3 * rs, sizeof(double) * 3 * (size_t)n), "%s: positions differ", name);
    CHECK(!memcmp(mp, ms + rs, sizeof(double) * (size_t)n), "%s: masses differ", name);
  }
  {
    PetscBool   h1, h2, p1[3], p2[3];
    double      c1[9], c2[9];
    const char *n1, *n2;
    PetscCall(HMSystemGetCell(par, &h1, c1, p1));
    PetscCall(HMSystemGetCell(ser, &h2, c2, p2));
    CHECK(h1 == h2 && !memcmp(c1, c2, sizeof(c1)) && p1[0] == p2[0] && p1[1] == p2[1] && p1[2] == p2[2], "%s: cell differs", name);
    PetscCall(HMSystemGetNotes(par, &n1));
    PetscCall(HMSystemGetNotes(ser, &n2));
    CHECK(!notes || !strcmp(n1, n2), "%s: notes '%s' vs '%s'", name, n1, n2);
  }
  if (!grank) printf("%s: %d atoms, %s\n", name, (int)N, dist ? "read in parallel, identical" : "serial reader, identical");
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The serial system written as hmb (rank 0) and read back in parallel and serially: the same system. */
static PetscErrorCode CompareHMB(const char *name, HMSystem ser)
{
  char     path[PETSC_MAX_PATH_LEN], lab[PETSC_MAX_PATH_LEN], pmsg[2048], smsg[2048];
  HMSystem par = NULL, back = NULL;

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(path, sizeof(path), "pario_np%d_%s.hmb", gsize, name));
  PetscCall(PetscSNPrintf(lab, sizeof(lab), "%s as hmb", name));
  if (!grank) PetscCall(HMSystemWriteHMB(ser, path));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  PetscCall(LoadOne(PETSC_COMM_WORLD, PETSC_TRUE, path, &par, pmsg));
  PetscCall(LoadOne(PETSC_COMM_SELF, PETSC_FALSE, path, &back, smsg));
  CHECK(!pmsg[0] && !smsg[0] && par && back, "%s: hmb read back failed: '%s' / '%s'", lab, pmsg, smsg);
  if (par && back) {
    PetscCall(CheckSame(lab, ser, par, 1, PETSC_FALSE));
    PetscCall(CheckSame(lab, ser, back, 0, PETSC_FALSE));
  }
  PetscCall(HMSystemDestroy(&par));
  PetscCall(HMSystemDestroy(&back));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  if (!grank) remove(path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The distributed system written as extended XYZ by every rank (MPI-IO at offsets) and the serial one by rank 0
   alone: the same bytes. */
static PetscErrorCode CompareXYZOut(const char *name, HMSystem ser, HMSystem par)
{
  char path[2][PETSC_MAX_PATH_LEN];
  int  same = 1;

  PetscFunctionBegin;
  for (int k = 0; k < 2; k++) PetscCall(PetscSNPrintf(path[k], sizeof(path[k]), "pario_np%d_%s.%s.xyz", gsize, name, k ? "par" : "ser"));
  PetscCall(HMSystemWriteXYZ(par, path[1]));
  if (!grank) {
    FILE *f[2];
    int   a, b;
    PetscCall(HMSystemWriteXYZ(ser, path[0]));
    f[0] = fopen(path[0], "rb");
    f[1] = fopen(path[1], "rb");
    if (!f[0] || !f[1]) same = 0;
    while (same && (a = fgetc(f[0])) != EOF) same = (b = fgetc(f[1])) == a;
    if (same) same = fgetc(f[1]) == EOF;
    if (f[0]) fclose(f[0]);
    if (f[1]) fclose(f[1]);
    remove(path[0]);
    remove(path[1]);
  }
  PetscCallMPI(MPI_Bcast(&same, 1, MPI_INT, 0, PETSC_COMM_WORLD));
  CHECK(same, "%s: extended XYZ written in parallel differs from the serial writer's", name);
  if (!grank && same) printf("%s: extended XYZ written by every rank, identical to rank 0's\n", name);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* expect: 1 parallel, 0 serial fallback (rank 0 alone) */
static PetscErrorCode Compare(const char *name, const char *text, int expect)
{
  char     path[PETSC_MAX_PATH_LEN], sermsg[2048], parmsg[2048];
  HMSystem ser = NULL, par = NULL;

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(path, sizeof(path), "pario_np%d_%s", gsize, name));
  if (!grank) WriteFile(path, text);
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  PetscCall(LoadBoth(path, &ser, &par, sermsg, parmsg));
  CHECK(!strcmp(sermsg, parmsg), "%s: serial error '%s', parallel '%s'", name, sermsg, parmsg);
  if (sermsg[0]) {
    if (!grank) printf("%s: both report: %s\n", name, sermsg);
    goto done;
  }
  CHECK(ser && (par || (grank && !expect)), "%s: no system", name);
  if (!par) goto done;
  PetscCall(CheckSame(name, ser, par, expect, PETSC_TRUE));
  if (expect) PetscCall(CompareHMB(name, ser));
  if (expect) PetscCall(CompareXYZOut(name, ser, par));
done:
  PetscCall(HMSystemDestroy(&ser));
  PetscCall(HMSystemDestroy(&par));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  if (!grank) remove(path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Compare on a generated text, then free it. */
static PetscErrorCode CompareFree(const char *name, char *text, int expect)
{
  PetscFunctionBegin;
  PetscCall(Compare(name, text, expect));
  free(text);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Broken hmb files: the same one-line error on every rank, naming the file (and the atom). */
static PetscErrorCode TestHMBErrors(void)
{
  const int    Z[3]   = {8, 1, 1};
  const double pos[9] = {0, 0, 0, 0.76, 0.59, 0, -0.76, 0.59, 0};
  HMSystem     w;
  char         good[PETSC_MAX_PATH_LEN], bad[PETSC_MAX_PATH_LEN], msg[2048];
  struct {
    const char *what, *want;
    long        cut;  /* bytes cut from the end (truncation) */
    long        poke; /* offset of one byte overwritten, -1: none */
    int         value;
  } cases[] = {
      {"truncated",  "truncated or not an hmb file",  8, -1,      0   },
      {"badmagic",   "wrong magic bytes",             0, 1,       'X' },
      {"badversion", "hmb version 7",                 0, 8,       7   },
      {"badZ",       "atom 2: atomic number outside", 0, 128 + 4, 200 },
      {"nanpos",     "atom 3:",                       0, 215,     0x7f}, /* the high byte of atom 3's z (positions from byte 144) */
  };

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(good, sizeof(good), "pario_np%d_water.hmb", gsize));
  PetscCall(HMSystemCreate(PETSC_COMM_SELF, 3, Z, pos, NULL, NULL, &w));
  if (!grank) PetscCall(HMSystemWriteHMB(w, good));
  PetscCall(HMSystemDestroy(&w));
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    HMSystem sys = NULL;
    PetscCall(PetscSNPrintf(bad, sizeof(bad), "pario_np%d_%s.hmb", gsize, cases[k].what));
    if (!grank) {
      FILE         *f = fopen(good, "rb");
      unsigned char buf[4096];
      size_t        len = fread(buf, 1, sizeof(buf), f);
      fclose(f);
      if (cases[k].poke >= 0) {
        if (cases[k].poke == 215) buf[214] = 0xf8; /* with 0x7f above: exponent all ones, mantissa non-zero, a NaN */
        buf[cases[k].poke] = (unsigned char)cases[k].value;
      }
      f = fopen(bad, "wb");
      fwrite(buf, 1, len - (size_t)cases[k].cut, f);
      fclose(f);
    }
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    PetscCall(LoadOne(PETSC_COMM_WORLD, PETSC_TRUE, bad, &sys, msg));
    CHECK(!sys && strstr(msg, cases[k].want) && strstr(msg, bad), "%s: expected '%s' naming the file on every rank, got '%s'", cases[k].what, cases[k].want, msg);
    if (!grank) printf("%s: %s\n", cases[k].what, msg);
    PetscCall(HMSystemDestroy(&sys));
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    if (!grank) remove(bad);
  }
  if (!grank) remove(good);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode TestReader(void)
{
  char *t;
  PetscFunctionBegin;
  PetscCall(CompareFree("crlf.xyz", MakeXYZ(200, 0, "\r\n", "\r\n\r\n  \r\n", 0, 0), 1));
  PetscCall(CompareFree("ext_noeol.xyz", MakeXYZ(157, 1, "\n", NULL, 0, 1), 1));
  PetscCall(CompareFree("longlines.xyz", MakeXYZ(90, 2, "\n", "\n\n", 0, 0), 1));
  PetscCall(CompareFree("longcomment.xyz", MakeXYZ(40, 1, "\n", "\n", 30000, 0), 1));
  PetscCall(CompareFree("one.xyz", MakeXYZ(1, 0, "\n", "", 0, 0), 1));
  PetscCall(Compare("tiny.xyz", "2\n\nH 0 0 0\nH 0 0 0.74", 1));
  {
    char *f1 = MakeXYZ(30, 0, "\n", "", 0, 0), *f2 = MakeXYZ(31, 0, "\n", "", 0, 0), *both = malloc(strlen(f1) + strlen(f2) + 1);
    strcpy(both, f1);
    strcat(both, f2);
    PetscCall(Compare("frames.xyz", both, 0));
    free(f1);
    free(f2);
    free(both);
  }
  PetscCall(Compare("trailing_junk.xyz", "2\n\nH 0 0 0\nH 0 0 0.74\nnot a frame\n", 0));
  /* errors: the first one in the file, with its line, on every rank */
  t = MakeXYZ(120, 0, "\n", "", 0, 0);
  {
    char *p = t;
    for (int l = 0; l < 80; l++) p = strchr(p, '\n') + 1;
    p[2] = 'x'; /* line 81: a coordinate that is not a number */
    for (int l = 0; l < 20; l++) p = strchr(p, '\n') + 1;
    p[0] = 'Q'; /* line 101: an unknown element */
  }
  PetscCall(Compare("badcoord.xyz", t, 1));
  {
    char *p = t;
    for (int l = 0; l < 110; l++) p = strchr(p, '\n') + 1;
    p[3] = '\0'; /* a NUL byte late in the file: reported before the earlier errors */
    {
      size_t len = strlen(t) + strlen(p + 4) + 1;
      FILE  *f;
      char   path[64];
      snprintf(path, sizeof(path), "pario_np%d_nul.xyz", gsize);
      if (!grank) {
        f    = fopen(path, "wb");
        p[3] = '\0';
        fwrite(t, 1, len, f);
        fclose(f);
      }
    }
  }
  free(t);
  {
    char     path[64], sermsg[2048], parmsg[2048];
    HMSystem a = NULL, b = NULL;
    snprintf(path, sizeof(path), "pario_np%d_nul.xyz", gsize);
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    PetscCall(LoadBoth(path, &a, &b, sermsg, parmsg));
    CHECK(sermsg[0] && !strcmp(sermsg, parmsg), "nul: serial '%s', parallel '%s'", sermsg, parmsg);
    if (!grank) printf("nul.xyz: both report: %s\n", sermsg);
    PetscCall(HMSystemDestroy(&a));
    PetscCall(HMSystemDestroy(&b));
    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    if (!grank) remove(path);
  }
  t    = MakeXYZ(60, 0, "\n", "", 0, 0);
  t[2] = '7'; /* announces more atoms than the file has */
  PetscCall(Compare("short.xyz", t, 1));
  free(t);
  PetscCall(Compare("blank.xyz", "3\ncomment\nH 0 0 0\n\nH 0 0 1\nH 0 0 2\n", 1));
  PetscCall(Compare("header.xyz", "three\ncomment\nH 0 0 0\n", 1));
  PetscCall(Compare("empty.xyz", "", 1));
  PetscCall(Compare("badprops.xyz", "1\nProperties=species:S:1:pos:R:2\nH 0 0\n", 1));
  PetscCall(Compare("columns.xyz", "2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 1 5\n", 1));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* A LAMMPS data file of n atoms in 4 types. style: 0 'Atoms # atomic' with image flags on every third line,
   1 full style without a style comment (columns 7 or 10), 2 'Atoms # full'. Ids are 5 k + 3 in a shuffled order
   (gaps, not the file order); sections in an unusual order (Pair Coeffs, Atoms, Velocities, Masses, Bonds), a
   triclinic box, comments and blank lines between records; eol "\n" or "\r\n"; dupe: one id used twice. */
static char *MakeLammps(int n, int style, const char *eol, PetscBool masses, PetscBool dupe)
{
  static const double mass[4] = {1.008, 12.011, 14.007, 15.999};
  size_t              len = 0, cap = 0;
  char               *s  = NULL;
  int                *id = malloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) id[i] = 5 * i + 3;
  for (int i = n - 1; i > 0; i--) {
    const int j = (int)(urand() * (i + 1)), t = id[i];
    id[i] = id[j];
    id[j] = t;
  }
  if (dupe) id[n - 20] = id[2]; /* one id twice, far apart in the file */
  s = Cat(s, &len, &cap, "LAMMPS data file 42 atoms # a title that looks like a header%s%s", eol, eol);
  s = Cat(s, &len, &cap, "  %d atoms%s 2 bonds # two%s 4 atom types%s 1 bond types%s%s", n, eol, eol, eol, eol, eol);
  s = Cat(s, &len, &cap, "0.0 20.5 xlo xhi%s-1 19 ylo yhi%s0 21.25 zlo zhi%s1.5 0.25 -0.5 xy xz yz%s%s", eol, eol, eol, eol, eol);
  s = Cat(s, &len, &cap, "Pair Coeffs # lj/cut%s%s", eol, eol);
  for (int t = 1; t <= 4; t++) s = Cat(s, &len, &cap, "%d 0.1 3.%d%s", t, t, eol);
  s = Cat(s, &len, &cap, "%sAtoms%s%s%s", eol, style == 0 ? " # atomic" : style == 2 ? "   #   full  " :
                                                                                       "",
          eol, eol);
  for (int i = 0; i < n; i++) {
    const int type = 1 + i % 4;
    double    x[3];
    for (int d = 0; d < 3; d++) x[d] = 22 * urand() - 1;
    if (style == 0) s = Cat(s, &len, &cap, "%d %d %.17g %.17g %.17g", id[i], type, x[0], x[1], x[2]);
    else s = Cat(s, &len, &cap, " %d\t%d %d %.6f %.17g %.17g %.17g", id[i], 1 + i / 3, type, 0.1 * (type - 2), x[0], x[1], x[2]);
    if (i % 3 == 0) s = Cat(s, &len, &cap, " %d %d %d", i % 2 ? -1 : 1, 0, (i % 5) - 2);
    if (i % 7 == 0) s = Cat(s, &len, &cap, "   # atom %d %s", i, i % 14 ? "" : "with a long comment that makes the line straddle a rank boundary .............");
    s = Cat(s, &len, &cap, "%s", eol);
    if (i % 50 == 49) s = Cat(s, &len, &cap, "%s", eol);
  }
  s = Cat(s, &len, &cap, "%sVelocities%s%s", eol, eol, eol);
  for (int i = 0; i < n; i++) s = Cat(s, &len, &cap, "%d %.6f %.6f %.6f%s", id[i], urand(), urand(), urand(), eol);
  if (masses) {
    s = Cat(s, &len, &cap, "%sMasses%s%s", eol, eol, eol);
    for (int t = 4; t >= 1; t--) s = Cat(s, &len, &cap, "%d %.3f%s", t, mass[t - 1], eol);
  }
  s = Cat(s, &len, &cap, "%sBonds%s%s1 1 %d %d%s2 1 %d %d%s", eol, eol, eol, id[0], id[1], eol, id[2], id[3], eol);
  free(id);
  return s;
}

/* The n-th line (1-based) of text. */
static char *NthLine(char *text, int line)
{
  char *p = text;
  for (int l = 1; l < line && p; l++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  return p;
}

/* Parallel LAMMPS reading against the serial reader: good files bitwise, bad files the serial message on every rank. */
static PetscErrorCode TestLammps(void)
{
  char *t;
  PetscFunctionBegin;
  PetscCall(CompareFree("atomic.data", MakeLammps(300, 0, "\n", PETSC_TRUE, PETSC_FALSE), 1));
  PetscCall(CompareFree("full_nocomment.data", MakeLammps(211, 1, "\r\n", PETSC_TRUE, PETSC_FALSE), 1));
  PetscCall(CompareFree("full.data", MakeLammps(97, 2, "\n", PETSC_TRUE, PETSC_FALSE), 1));
  PetscCall(Compare("tiny.data", "t\n2 atoms\n1 atom types\n0 5 xlo xhi\n0 5 ylo yhi\n0 5 zlo zhi\nMasses\n1 1.008\nAtoms\n2 1 0 0 0.74\n1 1 0 0 0\n", 1));
  /* errors: the first one in the file, as the serial reader reports it, on every rank */
  PetscCall(CompareFree("nomasses.data", MakeLammps(300, 0, "\n", PETSC_FALSE, PETSC_FALSE), 1)); /* no masses: the elements of the types are unknown */
  t = MakeLammps(300, 0, "\n", PETSC_TRUE, PETSC_FALSE);
  {
    char *a = strstr(t, "\nAtoms"), *l = NthLine(a + 1, 60), *m = NthLine(a + 1, 200);
    l[0] = 'x'; /* an atom id that is not a number: a keyword-like line inside the section */
    m[0] = '9'; /* and a later line */
  }
  PetscCall(Compare("badline.data", t, 1));
  free(t);
  t = MakeLammps(300, 0, "\n", PETSC_TRUE, PETSC_FALSE);
  {
    char *a = strstr(t, "\nAtoms"), *l = NthLine(a + 1, 250), *sp = strchr(l, ' ');
    sp[-1] = '-'; /* a negative id half-way through a number: "-" followed by a digit, not an id */
  }
  PetscCall(Compare("negid.data", t, 1));
  free(t);
  PetscCall(CompareFree("dupid.data", MakeLammps(300, 0, "\n", PETSC_TRUE, PETSC_TRUE), 1));
  PetscCall(Compare("shortsection.data", "t\n3 atoms\n1 atom types\n0 5 xlo xhi\n0 5 ylo yhi\n0 5 zlo zhi\nMasses\n1 1.008\nAtoms # atomic\n2 1 0 0 0.74\n1 1 0 0 0\nVelocities\n1 0 0 0\n2 0 0 0\n3 0 0 0\n", 1));
  PetscCall(Compare("unknown.data", "t\n2 atoms\n1 atom types\n0 5 xlo xhi\n0 5 ylo yhi\n0 5 zlo zhi\nMasses\n1 1.008\nAtoms # atomic\n2 1 0 0 0.74\n1 1 0 0 0\nFoo Section\n1 2\n", 1));
  PetscCall(Compare("ambiguous.data", "t\n2 atoms\n1 atom types\n0 5 xlo xhi\n0 5 ylo yhi\n0 5 zlo zhi\nMasses\n1 1.008\nAtoms\n2 1 1 0 0 0.74\n1 1 1 0 0 0\n", 1));
  PetscCall(Compare("noheader.data", "t\n\nAtoms\n", 1));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the serial partition of the whole structure against the distributed one, each rank holding a run of atoms */
static PetscErrorCode ComparePartition(const char *name, PetscInt N, const double *pos, HMPartitionType type, PetscMPIInt nparts)
{
  int     *ser, *par;
  PetscInt lo = (PetscInt)((PetscInt64)N * grank / gsize), hi = (PetscInt)((PetscInt64)N * (grank + 1) / gsize), *gid, bad = 0;

  PetscFunctionBegin;
  if (grank == 1 && gsize > 2) hi = lo; /* an empty rank */
  if (grank == 2 && gsize > 2) lo = (PetscInt)((PetscInt64)N * 1 / gsize);
  PetscCall(PetscMalloc3(N + 1, &ser, hi - lo + 1, &par, hi - lo + 1, &gid));
  PetscCall(HMDecompPartition(N, pos, type, nparts, ser));
  for (PetscInt i = lo; i < hi; i++) gid[i - lo] = i;
  PetscCall(HMDecompPartitionDistributed(PETSC_COMM_WORLD, hi - lo, gid, pos + 3 * lo, type, nparts, par));
  for (PetscInt i = lo; i < hi; i++) bad += ser[i] != par[i - lo];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPIU_INT, MPI_SUM, PETSC_COMM_WORLD));
  CHECK(bad == 0, "partition %s %s into %d parts: %d atoms in another part", name, type == HM_PARTITION_GRID ? "grid" : "rcb", (int)nparts, (int)bad);
  PetscCall(PetscFree3(ser, par, gid));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode TestPartition(void)
{
  const PetscInt           N = 3000;
  double                  *pos;
  static const PetscMPIInt parts[] = {1, 2, 3, 5, 7, 8, 13, 64};

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(3 * N, &pos));
  for (int input = 0; input < 4; input++) {
    const char *name = input == 0 ? "random" : input == 1 ? "lattice" :
        input == 2                                        ? "flat" :
                                                            "few";
    for (PetscInt i = 0; i < N; i++)
      for (int d = 0; d < 3; d++) {
        if (input == 0) pos[3 * i + d] = 40 * urand() - 20;
        else if (input == 1) pos[3 * i + d] = (double)((int)(urand() * 7) - 3) * (d == 2 ? -1.0 : 1.0); /* ties, -0 and +0 */
        else if (input == 2) pos[3 * i + d] = d == 0 ? (double)(i % 5) : 0.0;
        else pos[3 * i + d] = (double)(i % 2);
      }
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
      PetscCall(ComparePartition(name, input == 3 ? 10 : N, pos, HM_PARTITION_RCB, parts[k]));
      PetscCall(ComparePartition(name, input == 3 ? 10 : N, pos, HM_PARTITION_GRID, parts[k]));
    }
  }
  if (!grank) printf("partitions: compared on random, tied lattice, flat and tiny inputs\n");
  PetscCall(PetscFree(pos));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* HMDecompCreate from the structure on rank 0 and from the same structure read in parallel: the same atoms,
   ghosts and images on every rank. */
static PetscErrorCode TestDecomp(void)
{
  char            path[64];
  char           *t;
  HMSystem        ser = NULL, par = NULL;
  HMReader        r;
  HMDecomp        d1, d2;
  PetscInt        N1, n1, l1, r1, N2, n2, l2, r2;
  const PetscInt *g1, *g2, *p1, *p2;
  const int      *z1, *z2, *s1, *s2;
  const double   *x1, *x2, *m1, *m2;

  PetscFunctionBegin;
  snprintf(path, sizeof(path), "pario_np%d_decomp.xyz", gsize);
  t = MakeXYZ(500, 1, "\n", "\n", 0, 0);
  if (!grank) WriteFile(path, t);
  free(t);
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  PetscCall(HMReaderCreate(PETSC_COMM_WORLD, &r));
  if (!grank) PetscCall(HMReaderLoad(r, PETSC_COMM_SELF, path, &ser));
  PetscCall(HMReaderLoadDistributed(r, PETSC_COMM_WORLD, path, &par));
  PetscCall(HMReaderDestroy(&r));
  for (int type = 0; type < 2; type++) {
    const HMPartitionType pt = type ? HM_PARTITION_GRID : HM_PARTITION_RCB;
    PetscCall(HMDecompCreate(PETSC_COMM_WORLD, ser, pt, 2.5, 3.0, &d1));
    PetscCall(HMDecompCreate(PETSC_COMM_WORLD, par, pt, 2.5, 3.0, &d2));
    PetscCall(HMDecompGetSizes(d1, &N1, &n1, &l1, &r1));
    PetscCall(HMDecompGetSizes(d2, &N2, &n2, &l2, &r2));
    CHECK(N1 == N2 && n1 == n2 && l1 == l2 && r1 == r2, "decomp sizes differ: %d %d %d %d vs %d %d %d %d", (int)N1, (int)n1, (int)l1, (int)r1, (int)N2, (int)n2, (int)l2, (int)r2);
    if (l1 == l2) {
      PetscCall(HMDecompGetLocalAtoms(d1, &g1, &p1, &z1, &x1, &s1));
      PetscCall(HMDecompGetLocalAtoms(d2, &g2, &p2, &z2, &x2, &s2));
      PetscCall(HMDecompGetMasses(d1, &m1));
      PetscCall(HMDecompGetMasses(d2, &m2));
      CHECK(!memcmp(g1, g2, sizeof(PetscInt) * l1) && !memcmp(p1, p2, sizeof(PetscInt) * l1) && !memcmp(z1, z2, sizeof(int) * l1), "decomp: atoms differ");
      CHECK(!memcmp(x1, x2, sizeof(double) * 3 * l1) && !memcmp(s1, s2, sizeof(int) * 3 * l1) && !memcmp(m1, m2, sizeof(double) * n1), "decomp: positions, images or masses differ");
    }
    PetscCall(HMDecompDestroy(&d1));
    PetscCall(HMDecompDestroy(&d2));
  }
  if (!grank) printf("decomposition: serial and parallel input give the same atoms and ghosts on every rank\n");
  PetscCall(HMSystemDestroy(&ser));
  PetscCall(HMSystemDestroy(&par));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  if (!grank) remove(path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* -forces_xyz written by all ranks (each its block of input order) against the same file formatted from
   the forces gathered on rank 0, for a structure read in parallel. */
static PetscErrorCode TestForcesOutput(void)
{
  char        path[64], out[64], model[PETSC_MAX_PATH_LEN], *t;
  HMModel     m;
  HMEval      ev;
  HMReader    r;
  HMSystem    sys;
  const char *dir = getenv("HIPMACE_MODELS_DIR");

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(model, sizeof(model), "%s/demo_hipmace.safetensors", dir ? dir : "../shared/models"));
  snprintf(path, sizeof(path), "pario_np%d_forces.xyz", gsize);
  snprintf(out, sizeof(out), "pario_np%d_forces_out.xyz", gsize);
  rng = 7;
  {
    /* a loose cluster of water-like atoms, no close contacts */
    size_t len = 0, cap = 0;
    t = NULL;
    t = Cat(t, &len, &cap, "60\nProperties=species:S:1:pos:R:3\n");
    for (int i = 0; i < 60; i++) t = Cat(t, &len, &cap, "%s %.17g %.17g %.17g\n", i % 3 ? "H" : "O", 2.2 * (i % 4) + 0.1 * urand(), 2.2 * ((i / 4) % 4) + 0.1 * urand(), 2.2 * (i / 16) + 0.1 * urand());
  }
  if (!grank) WriteFile(path, t);
  free(t);
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  PetscCall(HMModelLoad(PETSC_COMM_WORLD, model, &m));
  PetscCall(HMReaderCreate(PETSC_COMM_WORLD, &r));
  PetscCall(HMReaderLoadDistributed(r, PETSC_COMM_WORLD, path, &sys));
  PetscCall(HMReaderDestroy(&r));
  PetscCall(HMEvalCreate(m, &ev));
  PetscCall(HMEvalSetSystem(ev, sys));
  PetscCall(HMSystemDestroy(&sys));
  PetscCall(HMEvalForward(ev));
  PetscCall(HMEvalComputeForces(ev));
  PetscCall(HMForcesWriteXYZ(ev, out));
  {
    PetscInt N;
    int     *Z;
    double  *pos, *f, E;
    PetscCall(HMForcesGather(ev, &N, &Z, &pos, &f));
    PetscCall(HMEvalGetEnergy(ev, &E, NULL));
    if (!grank) {
      size_t len = 0, cap = 0, got;
      char  *ref = NULL, *file;
      FILE  *fp  = fopen(out, "rb");
      ref        = Cat(ref, &len, &cap, "%d\nProperties=species:S:1:pos:R:3:forces:R:3 energy=%.17g pbc=\"F F F\"\n", (int)N, E);
      for (PetscInt i = 0; i < N; i++) ref = Cat(ref, &len, &cap, "%-2s %.17g %.17g %.17g %.17g %.17g %.17g\n", HMElementSymbol(Z[i]), pos[3 * i], pos[3 * i + 1], pos[3 * i + 2], f[3 * i], f[3 * i + 1], f[3 * i + 2]);
      file = malloc(len + 2);
      got  = fp ? fread(file, 1, len + 1, fp) : 0;
      if (fp) fclose(fp);
      CHECK(got == len && !memcmp(file, ref, len), "forces file differs from the gathered forces (%zu vs %zu bytes)", got, len);
      printf("forces output: %zu bytes written by %d rank(s), identical to the gathered forces\n", got, gsize);
      free(file);
      free(ref);
      PetscCall(PetscFree3(Z, pos, f));
    }
  }
  PetscCall(HMEvalDestroy(&ev));
  PetscCall(HMModelDestroy(&m));
  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  if (!grank) {
    remove(path);
    remove(out);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &grank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &gsize));
  PetscCall(TestReader());
  PetscCall(TestLammps());
  PetscCall(TestHMBErrors());
  PetscCall(TestPartition());
  PetscCall(TestDecomp());
  PetscCall(TestForcesOutput());
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD));
  if (!grank) printf("test_pario: %d failure(s) on %d rank(s)\n", failures, gsize);
  PetscCall(PetscFinalize());
  return failures ? 1 : 0;
}

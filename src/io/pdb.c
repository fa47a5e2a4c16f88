/* PDB reader for HMSystem: ATOM/HETATM coordinates, elements, alternate locations, MODEL, CRYST1. */
#include <stdio.h>

#include "textimpl.h"

/* What identifies an atom across alternate locations (columns 13-27 without the altLoc). */
typedef struct {
  char name[5];    /* columns 13-16 */
  char resname[4]; /* columns 18-20 */
  char resseq[5];  /* columns 23-26 */
  char chain;      /* column 22 */
  char icode;      /* column 27 */
  char alt;        /* column 17 */
} PDBTag;

typedef struct {
  HMTextReader t;
  PetscInt     cap, n;
  int         *Z;
  double      *pos;
  PDBTag      *tag;
  HMAtomLabel *lab;
  char         sgroup[12]; /* CRYST1 columns 56-66, trimmed */
} PDBReader;

/* Columns c0..c1 (1-based, inclusive) of a line of length len; columns past its end are blanks,
   because many writers drop trailing spaces. */
static void Columns(const char *s, size_t len, int c0, int c1, char *out)
{
  int k = 0;

  for (int c = c0; c <= c1; c++) out[k++] = (size_t)c <= len ? s[c - 1] : ' ';
  out[k] = '\0';
}

/* ctx ("" or " (atom ...)") names the atom for a user who searches the file by serial, residue and chain. */
static PetscErrorCode ColumnReal(PDBReader *r, const char *s, size_t len, int c0, int c1, const char *what, const char *ctx, double *v)
{
  char buf[32], *t;

  PetscFunctionBegin;
  Columns(s, len, c0, c1, buf);
  t = HMTextTrim(buf);
  PetscCheck(*t, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s (columns %d-%d) is blank%s", r->t.path, r->t.line, what, c0, c1, ctx);
  PetscCheck(HMTextParseReal(t, v), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s '%s' (columns %d-%d) is not a number%s", r->t.path, r->t.line, what, t, c0, c1, ctx);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* " (atom serial 12 'CA', residue CYS 5, chain A)" from columns 7-11, 13-16, 18-20, 23-27 and 22. */
static void AtomContext(const char *s, size_t len, const PDBTag *tag, char *out, size_t cap)
{
  char serial[6], name[5], res[4], seq[6], *ts, *tn, *tr, *tq;

  Columns(s, len, 7, 11, serial);
  Columns(s, len, 23, 27, seq);
  memcpy(name, tag->name, sizeof(name));
  memcpy(res, tag->resname, sizeof(res));
  ts = HMTextTrim(serial);
  tn = HMTextTrim(name);
  tr = HMTextTrim(res);
  tq = HMTextTrim(seq);
  snprintf(out, cap, " (atom serial %s '%s', residue %s %s, chain %c)", *ts ? ts : "?", tn, *tr ? tr : "?", *tq ? tq : "?", tag->chain == ' ' ? '-' : tag->chain);
}

/* Element from the atom name (columns 13-16) when columns 77-78 are blank. The PDB convention
   right-justifies the element symbol in columns 13-14: " CA " is an alpha carbon, "CA  " calcium,
   "1HB " a hydrogen. Four-character hydrogen names ("HG11", "HD21") also start in column 13 and
   are hydrogens, not mercury. Returns 0 when no element can be read. */
static int ElementFromName(const char name[5])
{
  const unsigned char c13 = (unsigned char)name[0], c14 = (unsigned char)name[1];
  char                sym[3];

  if (isalpha(c13)) {
    if (toupper(c13) == 'H' && name[3] != ' ' && isalpha(c14)) return 1;
    if (isalpha(c14)) {
      int Z;

      sym[0] = (char)c13;
      sym[1] = (char)c14;
      sym[2] = '\0';
      Z      = HMElementFromSymbol(sym);
      if (Z) return Z;
    }
    /* left-justified one-letter names ("C1  ", "HB1 ") written by some ligand tools */
    sym[0] = (char)c13;
    sym[1] = '\0';
    return HMElementFromSymbol(sym);
  }
  if ((c13 == ' ' || isdigit(c13)) && isalpha(c14)) {
    sym[0] = (char)c14;
    sym[1] = '\0';
    return HMElementFromSymbol(sym);
  }
  return 0;
}

static PetscBool SameResidue(const PDBTag *a, const PDBTag *b)
{
  return (PetscBool)(a->chain == b->chain && a->icode == b->icode && !strcmp(a->resseq, b->resseq));
}

/* Alternate locations: the first one seen of each atom is kept. A record is a duplicate when its
   residue already holds an alternate-located atom of the same name, or one of a different
   residue name (microheterogeneity: altLoc A is SER, B is THR; B's extra atoms must go too).
   Residues are contiguous in a PDB file, so the search stops at the residue's first atom. */
static PetscBool IsOtherAltLoc(const PDBReader *r, const PDBTag *tag)
{
  if (tag->alt == ' ') return PETSC_FALSE;
  for (PetscInt k = r->n - 1; k >= 0 && SameResidue(&r->tag[k], tag); k--) {
    const PDBTag *o = &r->tag[k];

    if (o->alt == ' ' || o->alt == tag->alt) continue;
    if (!strcmp(o->name, tag->name) || strcmp(o->resname, tag->resname)) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

static PetscErrorCode ParseAtom(PDBReader *r, const char *s, size_t len)
{
  PDBTag tag;
  char   elem[3], *e, ctx[128];
  int    Z;
  double x[3];

  PetscFunctionBegin;
  PetscCheck(len >= 54, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %.6s record has %zu characters; coordinates need columns 31-54", r->t.path, r->t.line, s, len);
  Columns(s, len, 13, 16, tag.name);
  Columns(s, len, 18, 20, tag.resname);
  Columns(s, len, 23, 26, tag.resseq);
  tag.alt   = s[16];
  tag.chain = s[21];
  tag.icode = s[26];
  if (IsOtherAltLoc(r, &tag)) PetscFunctionReturn(PETSC_SUCCESS);
  AtomContext(s, len, &tag, ctx, sizeof(ctx));

  PetscCall(ColumnReal(r, s, len, 31, 38, "x coordinate", ctx, &x[0]));
  PetscCall(ColumnReal(r, s, len, 39, 46, "y coordinate", ctx, &x[1]));
  PetscCall(ColumnReal(r, s, len, 47, 54, "z coordinate", ctx, &x[2]));
  Columns(s, len, 77, 78, elem);
  e = HMTextTrim(elem);
  if (*e) {
    Z = HMElementFromSymbol(e);
    PetscCheck(Z > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": unknown element '%s' in columns 77-78%s", r->t.path, r->t.line, e, ctx);
  } else {
    Z = ElementFromName(tag.name);
    PetscCheck(Z > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": columns 77-78 give no element and atom name '%s' names no known element%s", r->t.path, r->t.line, tag.name, ctx);
  }
  /* capacity is the number of ATOM/HETATM lines, counted before parsing */
  r->Z[r->n] = Z;
  for (int d = 0; d < 3; d++) r->pos[3 * r->n + d] = x[d];
  r->tag[r->n] = tag;
  {
    HMAtomLabel *l = &r->lab[r->n];
    char         buf[8], *t;
    long long    v;

    PetscCall(PetscMemzero(l, sizeof(*l)));
    memcpy(buf, tag.name, sizeof(tag.name));
    snprintf(l->name, sizeof(l->name), "%s", HMTextTrim(buf));
    memcpy(buf, tag.resname, sizeof(tag.resname));
    snprintf(l->resname, sizeof(l->resname), "%s", HMTextTrim(buf));
    l->chain = tag.chain;
    l->icode = tag.icode;
    memcpy(buf, tag.resseq, sizeof(tag.resseq));
    t = HMTextTrim(buf);
    if (HMTextParseLong(t, &v) && v > PETSC_MIN_INT && v < PETSC_MAX_INT) l->resid = (PetscInt)v;
    Columns(s, len, 7, 11, buf);
    t = HMTextTrim(buf);
    if (HMTextParseLong(t, &v) && v > 0 && v < PETSC_MAX_INT) l->serial = (PetscInt)v;
    l->line = r->t.line;
  }
  r->n++;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Exact values at right angles, so orthorhombic cells have exact zero off-diagonal entries. */
static double CosDeg(double a)
{
  return a == 90.0 ? 0.0 : cos(a * PETSC_PI / 180.0);
}

static double SinDeg(double a)
{
  return a == 90.0 ? 1.0 : sin(a * PETSC_PI / 180.0);
}

/* CRYST1 a b c alpha beta gamma -> lattice vectors as rows, a along x, b in the xy plane.
   *hascell is false for the 1 x 1 x 1 placeholder that programs write for non-crystals. */
static PetscErrorCode ParseCryst1(PDBReader *r, const char *s, size_t len, PetscBool *hascell, double cell[9])
{
  static const int col[6][2] = {
      {7,  15},
      {16, 24},
      {25, 33},
      {34, 40},
      {41, 47},
      {48, 54}
  };
  static const char *what[6] = {"cell length a", "cell length b", "cell length c", "cell angle alpha", "cell angle beta", "cell angle gamma"};
  double             v[6], ca, cb, cg, sg, t, cz2;

  PetscFunctionBegin;
  PetscCheck(len >= 54, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": CRYST1 record has %zu characters; the cell needs columns 7-54", r->t.path, r->t.line, len);
  for (int k = 0; k < 6; k++) PetscCall(ColumnReal(r, s, len, col[k][0], col[k][1], what[k], "", &v[k]));
  {
    char sg[12];

    Columns(s, len, 56, 66, sg);
    snprintf(r->sgroup, sizeof(r->sgroup), "%s", HMTextTrim(sg));
  }
  *hascell = PETSC_FALSE;
  if (v[0] == 1.0 && v[1] == 1.0 && v[2] == 1.0 && v[3] == 90.0 && v[4] == 90.0 && v[5] == 90.0) PetscFunctionReturn(PETSC_SUCCESS);
  for (int k = 0; k < 3; k++) PetscCheck(v[k] > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": CRYST1 %s %.10g must be positive", r->t.path, r->t.line, what[k], v[k]);
  for (int k = 3; k < 6; k++) PetscCheck(v[k] > 0 && v[k] < 180, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": CRYST1 %s %.10g is not in (0, 180) degrees", r->t.path, r->t.line, what[k], v[k]);
  ca  = CosDeg(v[3]);
  cb  = CosDeg(v[4]);
  cg  = CosDeg(v[5]);
  sg  = SinDeg(v[5]);
  t   = (ca - cb * cg) / sg;
  cz2 = 1.0 - cb * cb - t * t;
  PetscCheck(cz2 > 1e-12, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": CRYST1 angles %.10g %.10g %.10g do not form a cell", r->t.path, r->t.line, v[3], v[4], v[5]);
  cell[0]  = v[0];
  cell[1]  = 0;
  cell[2]  = 0;
  cell[3]  = v[1] * cg;
  cell[4]  = v[1] * sg;
  cell[5]  = 0;
  cell[6]  = v[2] * cb;
  cell[7]  = v[2] * t;
  cell[8]  = v[2] * sqrt(cz2);
  *hascell = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscBool IsAtomRecord(const char *s)
{
  return (PetscBool)(!strncmp(s, "ATOM  ", 6) || !strncmp(s, "HETATM", 6) || !strcmp(s, "ATOM") || !strcmp(s, "HETATM"));
}

/* Whether a CRYST1 cell makes the system periodic. A crystallographic cell of another space group
   holds several copies of the molecule, and a molecule wider than its cell would overlap its own
   images (a hydrogenated ubiquitin 36.6 A long in a 28.95 A cell: images 1.41 A apart); both are read
   as a molecule in vacuum, with a note. Periodic: space group P 1 (or blank) and, along each cell
   axis, the atoms' extent at most the cell's width + 2 A (molecules kept whole across the faces of
   a simulation box stick out by about a bond). -pbc overrides this in both directions. */
static PetscErrorCode Cryst1Periodic(PDBReader *r, PetscInt64 line, const double cell[9], PetscBool pbc[3])
{
  char sg[12];
  int  k = 0;

  PetscFunctionBegin;
  for (const char *c = r->sgroup; *c; c++)
    if (*c != ' ') sg[k++] = *c;
  sg[k] = '\0';
  if (sg[0] && strcmp(sg, "P1")) {
    for (int d = 0; d < 3; d++) pbc[d] = PETSC_FALSE;
    if (r->t.opt) PetscCall(HMReaderNote_Private(r->t.opt, "CRYST1 on line %" PetscInt64_FMT " has space group '%s' (a crystal of several copies): read as a molecule in vacuum, not periodic (-pbc true uses the cell as a P 1 box)", line, r->sgroup));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  for (int d = 0; d < 3; d++) {
    const double *u = cell + 3 * ((d + 1) % 3), *w = cell + 3 * ((d + 2) % 3), *a = cell + 3 * d;
    double        nrm[3] = {u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0]};
    double        nn = sqrt(nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]), width, lo = PETSC_MAX_REAL, hi = -PETSC_MAX_REAL;

    for (int c = 0; c < 3; c++) nrm[c] /= nn;
    width = PetscAbsReal(a[0] * nrm[0] + a[1] * nrm[1] + a[2] * nrm[2]);
    for (PetscInt i = 0; i < r->n; i++) {
      const double h = r->pos[3 * i] * nrm[0] + r->pos[3 * i + 1] * nrm[1] + r->pos[3 * i + 2] * nrm[2];

      lo = PetscMin(lo, h);
      hi = PetscMax(hi, h);
    }
    if (hi - lo > width + 2.0) {
      for (int e = 0; e < 3; e++) pbc[e] = PETSC_FALSE;
      if (r->t.opt) PetscCall(HMReaderNote_Private(r->t.opt, "CRYST1 on line %" PetscInt64_FMT ": the atoms span %.2f A along cell axis %c but the cell is %.2f A wide, so periodic images would overlap: read as a molecule in vacuum, not periodic (-pbc true forces the cell)", line, hi - lo, "abc"[d], width));
      PetscFunctionReturn(PETSC_SUCCESS);
    }
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Standard amino-acid and nucleotide residue names (with the common protonation-state variants). */
static PetscBool IsBioResidue(const char *res)
{
  static const char *names[] = {"ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL", "HID", "HIE", "HIP", "HSD", "HSE", "HSP", "CYX", "ASH", "GLH", "LYN", "MSE", "DA", "DC", "DG", "DT", "A", "C", "G", "U"};

  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
    if (!strcmp(res, names[k])) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* Warnings about a biomolecule that the engine would compute without complaint but wrongly: a trace of
   C-alpha atoms only (read as a chain of bare carbons) and heavy atoms without any hydrogen. */
static PetscErrorCode BiomoleculeNotes(PDBReader *r)
{
  PetscInt nbio = 0, nca = 0, nH = 0;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < r->n; i++) {
    nH += r->Z[i] == 1;
    if (!IsBioResidue(r->lab[i].resname)) continue;
    nbio++;
    nca += !strcmp(r->lab[i].name, "CA") && r->Z[i] == 6;
  }
  if (!nbio) PetscFunctionReturn(PETSC_SUCCESS);
  if (nca == nbio && nbio > 1) PetscCall(HMReaderNote_Private(r->t.opt, "warning: the %" PetscInt_FMT " residue atoms are all C-alpha atoms (a C-alpha-only trace): they are computed as a chain of bare carbon atoms, which is not the protein", nbio));
  else if (nH == 0) PetscCall(HMReaderNote_Private(r->t.opt, "warning: no hydrogen atoms in a biomolecule of %" PetscInt_FMT " residue atoms (missing hydrogens): the model sees radicals; add them first, e.g. 'obabel IN.pdb -h -O OUT.pdb' (inputs/protein/prepare.sh)", nbio));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode PDBParse(HMTextReader *t, HMSystem *out)
{
  PDBReader *r    = (PDBReader *)t; /* the text reader is its first member */
  PetscInt   want = 1;
  PetscBool  wantset, inmodel = PETSC_FALSE, selected = PETSC_FALSE, found = PETSC_FALSE, hascell = PETSC_FALSE, seencryst = PETSC_FALSE;
  PetscInt   nmodels = 0, nlines = 0;
  PetscInt64 crystline = 0;
  double     cell[9]   = {0};
  char      *s;

  PetscFunctionBegin;
  PetscCall(HMTextCheckNul(&r->t));
  wantset = r->t.opt ? r->t.opt->pdbmodelset : PETSC_FALSE;
  if (wantset) want = r->t.opt->pdbmodel;

  /* one allocation sized by the ATOM/HETATM lines; alternate locations and other models only
     make the final count smaller */
  for (const char *p = r->t.buf; p < r->t.end;) {
    const char *nl = memchr(p, '\n', (size_t)(r->t.end - p));

    if (!strncmp(p, "ATOM", 4) || !strncmp(p, "HETATM", 6)) r->cap++;
    nlines++;
    p = nl ? nl + 1 : r->t.end;
  }
  PetscCheck(r->cap > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt_FMT ": no ATOM/HETATM records", r->t.path, nlines);
  PetscCheck(r->cap <= PETSC_MAX_INT / 3, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s: %" PetscInt_FMT " atom records are too many for this PetscInt build", r->t.path, r->cap);
  PetscCall(PetscMalloc4(r->cap, &r->Z, 3 * r->cap, &r->pos, r->cap, &r->tag, r->cap, &r->lab));

  while ((s = HMTextNextLine(&r->t))) {
    const size_t len = strlen(s);
    char         rec[7];

    Columns(s, len, 1, 6, rec);
    if (IsAtomRecord(s)) {
      PetscCheck(inmodel || nmodels == 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s record outside MODEL/ENDMDL in a file with models", r->t.path, r->t.line, HMTextTrim(rec));
      if (!inmodel || selected) PetscCall(ParseAtom(r, s, len));
    } else if (!strcmp(rec, "MODEL ")) {
      char      num[80], *t;
      long long serial;

      PetscCheck(!inmodel, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": MODEL inside a MODEL (missing ENDMDL)", r->t.path, r->t.line);
      PetscCheck(r->n == 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": MODEL after ATOM/HETATM records that belong to no model", r->t.path, r->t.line);
      snprintf(num, sizeof(num), "%s", s + 6);
      t = HMTextTrim(num);
      PetscCheck(HMTextParseLong(t, &serial), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": MODEL serial number '%s' is not an integer", r->t.path, r->t.line, t);
      inmodel  = PETSC_TRUE;
      selected = (PetscBool)(wantset ? serial == (long long)want : nmodels == 0);
      found    = (PetscBool)(found || selected);
      nmodels++;
    } else if (!strcmp(rec, "ENDMDL")) {
      PetscCheck(inmodel, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": ENDMDL without MODEL", r->t.path, r->t.line);
      inmodel = PETSC_FALSE;
      if (selected) break; /* the chosen model is complete; later models are not read */
    } else if (!strcmp(rec, "END   ")) {
      break;
    } else if (!strcmp(rec, "CRYST1")) {
      PetscCheck(!seencryst, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": second CRYST1 record (first on line %" PetscInt64_FMT ")", r->t.path, r->t.line, crystline);
      PetscCall(ParseCryst1(r, s, len, &hascell, cell));
      seencryst = PETSC_TRUE;
      crystline = r->t.line;
    }
    /* TER (end of a chain), REMARK, CONECT, ANISOU, ... carry nothing the engine uses */
  }

  if (nmodels == 0) PetscCheck(!wantset || want == 1, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": -pdb_model %" PetscInt_FMT " requested but the file has no MODEL records", r->t.path, r->t.line, want);
  else PetscCheck(found, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": MODEL %" PetscInt_FMT " requested by -pdb_model not found (the file has %" PetscInt_FMT " models)", r->t.path, r->t.line, want, nmodels);
  if (nmodels) PetscCheck(r->n > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": the selected MODEL has no ATOM/HETATM records", r->t.path, r->t.line);
  else PetscCheck(r->n > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": no ATOM/HETATM records before END", r->t.path, r->t.line);

  {
    PetscBool pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};

    if (hascell) {
      char where[PETSC_MAX_PATH_LEN + 32];

      snprintf(where, sizeof(where), "%s:%" PetscInt64_FMT, r->t.path, crystline);
      PetscCall(HMSystemCheckCell_Private(r->t.comm, where, cell, pbc));
      /* -pbc decides when given (HMReaderLoad applies it); else the CRYST1 rule */
      if (!(r->t.opt && r->t.opt->pbcset)) PetscCall(Cryst1Periodic(r, crystline, cell, pbc));
    } else if (seencryst && r->t.opt) PetscCall(HMReaderNote_Private(r->t.opt, "CRYST1 on line %" PetscInt64_FMT " is the 1 x 1 x 1 placeholder: not periodic", crystline));
    PetscCall(HMSystemCreate(r->t.comm, r->n, r->Z, r->pos, hascell ? cell : NULL, hascell ? pbc : NULL, out));
  }
  PetscCall(HMSystemSetAtomLabels(*out, r->lab));
  if (r->t.opt) PetscCall(BiomoleculeNotes(r));
  PetscCall(PetscFree((*out)->source));
  PetscCall(PetscStrallocpy(r->t.path, &(*out)->source));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode PDBReaderReset(HMTextReader *t)
{
  PDBReader *r = (PDBReader *)t;

  PetscFunctionBegin;
  PetscCall(PetscFree4(r->Z, r->pos, r->tag, r->lab));
  PetscFunctionReturn(PETSC_SUCCESS);
}

const HMTextFormat HMTextFormatPDB = {sizeof(PDBReader), PDBParse, PDBReaderReset};

/* LAMMPS data-file reader for HMSystem: header, triclinic box, Masses, Atoms (atomic, full, ...). */
#include <stdio.h>
#include <strings.h>

#include "lammpsimpl.h"

static const struct {
  const char *word;
  LmpCount    cnt;
} lmp_header_words[] = {
    {"atoms",      CNT_ATOMS     },
    {"bonds",      CNT_BONDS     },
    {"angles",     CNT_ANGLES    },
    {"dihedrals",  CNT_DIHEDRALS },
    {"impropers",  CNT_IMPROPERS },
    {"ellipsoids", CNT_ELLIPSOIDS},
    {"lines",      CNT_LINES     },
    {"triangles",  CNT_TRIANGLES },
    {"bodies",     CNT_BODIES    },
    {"crossterms", CNT_CROSSTERMS}
};

static const struct {
  const char *word;
  LmpCount    cnt;
} lmp_type_words[] = {
    {"atom",     CNT_ATOM_TYPES    },
    {"bond",     CNT_BOND_TYPES    },
    {"angle",    CNT_ANGLE_TYPES   },
    {"dihedral", CNT_DIHEDRAL_TYPES},
    {"improper", CNT_IMPROPER_TYPES}
};

/* Every section LAMMPS read_data knows, with the header count giving its number of lines. */
static const struct {
  const char *name;
  LmpCount    cnt;
} lmp_sections[] = {
    {"Atoms",                    CNT_ATOMS         },
    {"Velocities",               CNT_ATOMS         },
    {"Masses",                   CNT_ATOM_TYPES    },
    {"Ellipsoids",               CNT_ELLIPSOIDS    },
    {"Lines",                    CNT_LINES         },
    {"Triangles",                CNT_TRIANGLES     },
    {"Bodies",                   CNT_BODIES        },
    {"Bonds",                    CNT_BONDS         },
    {"Angles",                   CNT_ANGLES        },
    {"Dihedrals",                CNT_DIHEDRALS     },
    {"Impropers",                CNT_IMPROPERS     },
    {"CMAP",                     CNT_CROSSTERMS    },
    {"Pair Coeffs",              CNT_ATOM_TYPES    },
    {"PairIJ Coeffs",            CNT_PAIRIJ        },
    {"Bond Coeffs",              CNT_BOND_TYPES    },
    {"Angle Coeffs",             CNT_ANGLE_TYPES   },
    {"Dihedral Coeffs",          CNT_DIHEDRAL_TYPES},
    {"Improper Coeffs",          CNT_IMPROPER_TYPES},
    {"BondBond Coeffs",          CNT_ANGLE_TYPES   },
    {"BondAngle Coeffs",         CNT_ANGLE_TYPES   },
    {"MiddleBondTorsion Coeffs", CNT_DIHEDRAL_TYPES},
    {"EndBondTorsion Coeffs",    CNT_DIHEDRAL_TYPES},
    {"AngleTorsion Coeffs",      CNT_DIHEDRAL_TYPES},
    {"AngleAngleTorsion Coeffs", CNT_DIHEDRAL_TYPES},
    {"BondBond13 Coeffs",        CNT_DIHEDRAL_TYPES},
    {"AngleAngle Coeffs",        CNT_IMPROPER_TYPES}
};

int HMLmpSectionIndex_Private(const char *name)
{
  for (size_t k = 0; k < sizeof(lmp_sections) / sizeof(lmp_sections[0]); k++)
    if (!strcmp(name, lmp_sections[k].name)) return (int)k;
  return -1;
}

LmpCount HMLmpSectionCount_Private(int k)
{
  return lmp_sections[k].cnt;
}

static const LmpStyle lmp_styles[] = {
    {"atomic",    1, 2, -1, -1, 5},
    {"charge",    1, 3, -1, 2,  6},
    {"bond",      2, 3, 1,  -1, 6},
    {"angle",     2, 3, 1,  -1, 6},
    {"molecular", 2, 3, 1,  -1, 6},
    {"full",      2, 4, 1,  3,  7}
};

static PetscErrorCode ParseCount(LmpReader *r, const char *tok, const char *what, long long *v)
{
  PetscFunctionBegin;
  PetscCheck(HMTextParseLong(tok, v) && *v >= 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s count '%s' is not a non-negative integer", r->t.path, r->t.line, what, tok);
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ParseNumber(LmpReader *r, const char *tok, const char *what, double *v)
{
  PetscFunctionBegin;
  PetscCheck(HMTextParseReal(tok, v), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s '%s' is not a number", r->t.path, r->t.line, what, tok);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* One header line (comment already cut, not blank, starting with a number). */
static PetscErrorCode ParseHeaderLine(LmpReader *r, char *s)
{
  char     *tok[8];
  const int ntok = HMTextSplit(s, tok, 8);

  PetscFunctionBegin;
  if (ntok == 2) {
    for (size_t k = 0; k < sizeof(lmp_header_words) / sizeof(lmp_header_words[0]); k++)
      if (!strcmp(tok[1], lmp_header_words[k].word)) {
        const LmpCount c = lmp_header_words[k].cnt;

        PetscCheck(!r->countline[c], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": '%s' count given twice (first on line %" PetscInt64_FMT ")", r->t.path, r->t.line, tok[1], r->countline[c]);
        PetscCall(ParseCount(r, tok[0], tok[1], &r->count[c]));
        r->countline[c] = r->t.line;
        PetscFunctionReturn(PETSC_SUCCESS);
      }
  } else if (ntok == 3 && !strcmp(tok[2], "types")) {
    for (size_t k = 0; k < sizeof(lmp_type_words) / sizeof(lmp_type_words[0]); k++)
      if (!strcmp(tok[1], lmp_type_words[k].word)) {
        const LmpCount c = lmp_type_words[k].cnt;

        PetscCheck(!r->countline[c], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": '%s types' count given twice (first on line %" PetscInt64_FMT ")", r->t.path, r->t.line, tok[1], r->countline[c]);
        PetscCall(ParseCount(r, tok[0], "types", &r->count[c]));
        r->countline[c] = r->t.line;
        PetscFunctionReturn(PETSC_SUCCESS);
      }
  } else if (ntok == 5 && !strcmp(tok[1], "extra") && !strcmp(tok[3], "per") && !strcmp(tok[4], "atom")) {
    long long v;

    /* room reserved for bonds created during a run: irrelevant to a static structure */
    PetscCall(ParseCount(r, tok[0], "extra per atom", &v));
    PetscFunctionReturn(PETSC_SUCCESS);
  } else if (ntok == 4) {
    static const char *const names[3][2] = {
        {"xlo", "xhi"},
        {"ylo", "yhi"},
        {"zlo", "zhi"}
    };

    for (int d = 0; d < 3; d++)
      if (!strcmp(tok[2], names[d][0]) && !strcmp(tok[3], names[d][1])) {
        PetscCheck(!r->hasbox[d], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": '%s %s' given twice", r->t.path, r->t.line, names[d][0], names[d][1]);
        PetscCall(ParseNumber(r, tok[0], names[d][0], &r->lo[d]));
        PetscCall(ParseNumber(r, tok[1], names[d][1], &r->hi[d]));
        PetscCheck(r->hi[d] > r->lo[d], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %s %.10g must be larger than %s %.10g", r->t.path, r->t.line, names[d][1], r->hi[d], names[d][0], r->lo[d]);
        r->hasbox[d] = PETSC_TRUE;
        r->boxline   = r->t.line;
        PetscFunctionReturn(PETSC_SUCCESS);
      }
  } else if (ntok == 6 && !strcmp(tok[3], "xy") && !strcmp(tok[4], "xz") && !strcmp(tok[5], "yz")) {
    PetscCheck(!r->hastilt, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": 'xy xz yz' given twice", r->t.path, r->t.line);
    PetscCall(ParseNumber(r, tok[0], "xy", &r->tilt[0]));
    PetscCall(ParseNumber(r, tok[1], "xz", &r->tilt[1]));
    PetscCall(ParseNumber(r, tok[2], "yz", &r->tilt[2]));
    r->hastilt = PETSC_TRUE;
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  SETERRQ(r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": unrecognised header line (%d words; expected e.g. 'N atoms', 'N atom types', 'xlo xhi', 'xy xz yz')", r->t.path, r->t.line, ntok);
}

/* Next non-blank line of a section body, comment cut; k lines of n were read so far. */
static PetscErrorCode SectionLine(LmpReader *r, const char *section, long long k, long long n, char **line, char **comment)
{
  char *s, *c = NULL, *t = NULL;

  PetscFunctionBegin;
  while ((s = HMTextNextLine(&r->t))) {
    c = HMLmpCutComment(s);
    t = HMTextTrim(s);
    if (*t) break;
  }
  PetscCheck(s, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": file ends inside section '%s' after %lld of %lld lines", r->t.path, r->t.line, section, k, n);
  PetscCheck(HMLmpLooksNumeric(t), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": section '%s' has %lld of the %lld lines its header count announces; found '%s'", r->t.path, r->t.line, section, k, n, t);
  *line = t;
  if (comment) *comment = c;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLmpParseMasses_Private(LmpReader *r, long long n)
{
  PetscFunctionBegin;
  r->massline0 = r->t.line;
  for (long long k = 0; k < n; k++) {
    char     *s, *tok[3];
    int       ntok;
    long long type;
    double    m;

    PetscCall(SectionLine(r, "Masses", k, n, &s, NULL));
    ntok = HMTextSplit(s, tok, 3);
    PetscCheck(ntok == 2, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Masses line needs 'type mass', found %d columns", r->t.path, r->t.line, ntok);
    PetscCheck(HMTextParseLong(tok[0], &type) && type >= 1 && type <= r->count[CNT_ATOM_TYPES], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom type '%s' is not in 1..%lld", r->t.path, r->t.line, tok[0], r->count[CNT_ATOM_TYPES]);
    PetscCheck(!r->massline[type], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": mass of atom type %lld given twice (first on line %" PetscInt64_FMT ")", r->t.path, r->t.line, type, r->massline[type]);
    PetscCall(ParseNumber(r, tok[1], "mass", &m));
    PetscCheck(m > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": mass %s must be positive", r->t.path, r->t.line, tok[1]);
    r->mass[type]     = m;
    r->massline[type] = r->t.line;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode FindStyle(LmpReader *r, const char *name, const LmpStyle **style)
{
  PetscFunctionBegin;
  *style = NULL;
  for (size_t k = 0; k < sizeof(lmp_styles) / sizeof(lmp_styles[0]); k++)
    if (!strcmp(name, lmp_styles[k].name)) *style = &lmp_styles[k];
  PetscCheck(*style, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom style '%s' is not supported (atomic, charge, bond, angle, molecular, full)", r->t.path, r->t.line, name);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLmpStyleFromComment_Private(LmpReader *r, const char *stylecomment, const LmpStyle **style)
{
  PetscFunctionBegin;
  *style = NULL;
  if (stylecomment && *stylecomment) {
    char buf[64], *tok[1] = {NULL};

    snprintf(buf, sizeof(buf), "%s", stylecomment);
    if (HMTextSplit(buf, tok, 1) > 0) {
      if (r->t.opt && r->t.opt->lammpsstyle[0] && strcmp(tok[0], r->t.opt->lammpsstyle)) PetscCall(HMReaderNote_Private(r->t.opt, "Atoms section on line %" PetscInt64_FMT " says '# %s'; read as -lammps_style %s", r->t.line, tok[0], r->t.opt->lammpsstyle));
      else PetscCall(FindStyle(r, tok[0], style));
    }
  }
  if (!*style && r->t.opt && r->t.opt->lammpsstyle[0]) PetscCall(FindStyle(r, r->t.opt->lammpsstyle, style));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLmpStyleFromColumns_Private(LmpReader *r, int ntok, const LmpStyle **style)
{
  PetscFunctionBegin;
  /* only the column counts of atomic (5/8) and full (7/10) are unambiguous */
  if (ntok == 5 || ntok == 8) PetscCall(FindStyle(r, "atomic", style));
  else if (ntok == 7 || ntok == 10) PetscCall(FindStyle(r, "full", style));
  else if (ntok == 6 || ntok == 9) SETERRQ(r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Atoms section has no style comment and %d columns fit two styles: 'charge' (id type q x y z) and 'molecular' (id mol type x y z); write 'Atoms # charge' or 'Atoms # molecular' in the file, or use -lammps_style charge|molecular", r->t.path, r->t.line, ntok);
  else SETERRQ(r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": Atoms section has no style comment ('Atoms # atomic', '# charge', '# molecular' or '# full'; or -lammps_style) and %d columns fit none", r->t.path, r->t.line, ntok);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Image flags, when present, unwrap the positions: x + ix a + iy b + iz c. */
PetscErrorCode HMLmpParseAtomLine_Private(LmpReader *r, const LmpStyle *style, char *s, LmpAtom *a)
{
  char     *tok[12];
  const int ntok = HMTextSplit(s, tok, 12);
  long long v;

  PetscFunctionBegin;
  PetscCheck(ntok == style->ncols || ntok == style->ncols + 3, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom style %s needs %d columns (%d with image flags), found %d", r->t.path, r->t.line, style->name, style->ncols, style->ncols + 3, ntok);
  PetscCheck(HMTextParseLong(tok[0], &a->id) && a->id >= 1, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom id '%s' is not a positive integer", r->t.path, r->t.line, tok[0]);
  PetscCheck(HMTextParseLong(tok[style->coltype], &v) && v >= 1 && v <= r->count[CNT_ATOM_TYPES], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom type '%s' is not in 1..%lld", r->t.path, r->t.line, tok[style->coltype], r->count[CNT_ATOM_TYPES]);
  a->type = (int)v;
  if (style->colmol >= 0) PetscCheck(HMTextParseLong(tok[style->colmol], &v), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": molecule id '%s' is not an integer", r->t.path, r->t.line, tok[style->colmol]);
  if (style->colq >= 0) {
    double q;

    PetscCall(ParseNumber(r, tok[style->colq], "charge", &q));
  }
  for (int d = 0; d < 3; d++) PetscCall(ParseNumber(r, tok[style->colx + d], "coordinate", &a->x[d]));
  if (ntok == style->ncols + 3) {
    long long img[3];

    for (int d = 0; d < 3; d++) PetscCheck(HMTextParseLong(tok[style->ncols + d], &img[d]) && img[d] > INT_MIN && img[d] < INT_MAX, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": image flag '%s' is not an integer", r->t.path, r->t.line, tok[style->ncols + d]);
    for (int d = 0; d < 3; d++) a->x[d] += (double)img[0] * r->cell[d] + (double)img[1] * r->cell[3 + d] + (double)img[2] * r->cell[6 + d];
  }
  a->line = r->t.line;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ParseAtoms(LmpReader *r, long long n, const char *stylecomment)
{
  const LmpStyle *style = NULL;

  PetscFunctionBegin;
  PetscCall(HMLmpStyleFromComment_Private(r, stylecomment, &style));
  for (long long k = 0; k < n; k++) {
    char *s;

    PetscCall(SectionLine(r, "Atoms", k, n, &s, NULL));
    if (!style) {
      PetscCall(HMLmpStyleFromColumns_Private(r, HMTextCountTokens(s), &style));
    }
    PetscCall(HMLmpParseAtomLine_Private(r, style, s, &r->atoms[k]));
    r->natoms++;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

int HMLmpCompareId_Private(const void *pa, const void *pb)
{
  const LmpAtom *a = (const LmpAtom *)pa, *b = (const LmpAtom *)pb;

  return (a->id > b->id) - (a->id < b->id);
}

/* Elements of the atom types: -lammps_types C,H,O when given, else the standard weight nearest
   to each type's mass (within 0.1 amu, so united-atom or isotope masses are refused, not guessed). */
PetscErrorCode HMLmpMapTypes_Private(LmpReader *r)
{
  const long long ntypes = r->count[CNT_ATOM_TYPES];

  PetscFunctionBegin;
  if (r->t.opt && r->t.opt->lammpstypes) {
    const char *p = r->t.opt->lammpstypes;
    long long   k = 0;

    for (;;) {
      const char *comma = strchr(p, ',');
      size_t      w     = comma ? (size_t)(comma - p) : strlen(p);
      char        buf[16], *sym;
      int         Z;

      snprintf(buf, sizeof(buf), "%.*s", (int)PetscMin(w, sizeof(buf) - 1), p);
      sym = HMTextTrim(buf);
      if (++k <= ntypes) {
        Z = w < sizeof(buf) ? HMElementFromSymbol(sym) : 0;
        PetscCheck(Z > 0, r->t.comm, PETSC_ERR_USER_INPUT, "%s: -lammps_types entry %lld '%s' is not a known element symbol", r->t.path, k, sym);
        r->typeZ[k] = Z;
      }
      if (!comma) break;
      p = comma + 1;
    }
    PetscCheck(k == ntypes, r->t.comm, PETSC_ERR_USER_INPUT, "%s:%" PetscInt64_FMT ": -lammps_types names %lld elements but the file has %lld atom types", r->t.path, r->countline[CNT_ATOM_TYPES], k, ntypes);
  } else {
    char guessed[512] = "";

    for (long long t = 1; t <= ntypes; t++) {
      int    best = 0;
      double err  = PETSC_MAX_REAL;

      if (!r->used[t]) continue;
      PetscCheck(r->massline[t], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": no mass for atom type %lld, so its element is unknown; give the elements with -lammps_types", r->t.path, r->massline0 ? r->massline0 : r->atomsline, t);
      for (int Z = 1; Z <= HM_MAX_Z; Z++) {
        const double e = PetscAbsReal(r->mass[t] - HMElementMass(Z));

        if (e < err) {
          err  = e;
          best = Z;
        }
      }
      PetscCheck(err <= 0.1, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": mass %.10g of atom type %lld is no element's standard weight (nearest %s %.10g); give the elements with -lammps_types", r->t.path, r->massline[t], r->mass[t], t, HMElementSymbol(best), HMElementMass(best));
      r->typeZ[t] = best;
      {
        const size_t used = strlen(guessed);

        if (used < sizeof(guessed) - 40) snprintf(guessed + used, sizeof(guessed) - used, "%s%lld=%s (%.4g)", used ? ", " : "", t, HMElementSymbol(best), r->mass[t]);
        else if (!strstr(guessed, "...")) snprintf(guessed + used, sizeof(guessed) - used, ", ...");
      }
    }
    /* a mass is not an element: a coarse-grained bead of mass 32 would pass for sulfur */
    if (r->t.opt && guessed[0]) PetscCall(HMReaderNote_Private(r->t.opt, "elements guessed from the Masses section (type=element (mass)): %s; give them with -lammps_types if this is wrong", guessed));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The header's counts and box, checked once the first section keyword is reached; the cell from the box,
   and the per-type arrays allocated. */
static PetscErrorCode LmpCheckHeader(LmpReader *r)
{
  long long ntypes;

  PetscFunctionBegin;
  PetscCheck(r->countline[CNT_ATOMS], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": header has no 'N atoms' line", r->t.path, r->t.line);
  PetscCheck(r->count[CNT_ATOMS] > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": the header declares 0 atoms", r->t.path, r->countline[CNT_ATOMS]);
  PetscCheck(r->count[CNT_ATOMS] <= PETSC_MAX_INT / 3, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %lld atoms are too many for this PetscInt build", r->t.path, r->countline[CNT_ATOMS], r->count[CNT_ATOMS]);
  PetscCheck(r->countline[CNT_ATOM_TYPES] && r->count[CNT_ATOM_TYPES] > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": header has no positive 'N atom types' line", r->t.path, r->t.line);
  PetscCheck(r->count[CNT_ATOM_TYPES] < INT_MAX, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": %lld atom types are too many", r->t.path, r->countline[CNT_ATOM_TYPES], r->count[CNT_ATOM_TYPES]);
  for (int d = 0; d < 3; d++) PetscCheck(r->hasbox[d], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": header has no '%clo %chi' line (the box is needed for the periodic cell)", r->t.path, r->t.line, "xyz"[d], "xyz"[d]);
  ntypes                   = r->count[CNT_ATOM_TYPES];
  r->count[CNT_PAIRIJ]     = ntypes * (ntypes + 1) / 2;
  r->countline[CNT_PAIRIJ] = r->countline[CNT_ATOM_TYPES];

  /* the origin (xlo, ylo, zlo) only shifts every atom; the cell is what the engine needs */
  r->cell[0] = r->hi[0] - r->lo[0];
  r->cell[4] = r->hi[1] - r->lo[1];
  r->cell[8] = r->hi[2] - r->lo[2];
  if (r->hastilt) {
    r->cell[3] = r->tilt[0];
    r->cell[6] = r->tilt[1];
    r->cell[7] = r->tilt[2];
  }
  PetscCall(PetscCalloc4(ntypes + 1, &r->mass, ntypes + 1, &r->massline, ntypes + 1, &r->typeZ, ntypes + 1, &r->used));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMLmpParseHeader_Private(LmpReader *r, char **kw, char **comment)
{
  char *s;

  PetscFunctionBegin;
  *comment = NULL;
  /* line 1 is a title, whatever it says */
  PetscCheck(HMTextNextLine(&r->t), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:1: empty file", r->t.path);

  /* header: counts and box until the first section keyword */
  while ((s = HMTextNextLine(&r->t))) {
    char *t;

    *comment = HMLmpCutComment(s);
    t        = HMTextTrim(s);
    if (!*t) continue;
    if (!HMLmpLooksNumeric(t)) {
      s = t;
      break;
    }
    PetscCall(ParseHeaderLine(r, t));
  }
  *kw = s;
  if (s) PetscCall(LmpCheckHeader(r));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The system from the atoms in id order, their types' elements and masses, and the periodic box. */
static PetscErrorCode LmpBuildSystem(LmpReader *r, HMSystem *out)
{
  PetscFunctionBegin;
  {
    const PetscBool pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
    char            where[PETSC_MAX_PATH_LEN + 32];

    snprintf(where, sizeof(where), "%s:%" PetscInt64_FMT, r->t.path, r->boxline);
    PetscCall(HMSystemCheckCell_Private(r->t.comm, where, r->cell, pbc));
    PetscCall(PetscMalloc3(r->natoms, &r->Z, 3 * r->natoms, &r->pos, r->natoms, &r->m));
    for (PetscInt i = 0; i < r->natoms; i++) {
      r->Z[i] = r->typeZ[r->atoms[i].type];
      r->m[i] = r->mass[r->atoms[i].type];
      for (int d = 0; d < 3; d++) r->pos[3 * i + d] = r->atoms[i].x[d];
    }
    PetscCall(HMSystemCreate(r->t.comm, r->natoms, r->Z, r->pos, r->cell, pbc, out));
    /* masses from the file are kept (isotopes, united atoms); without Masses, standard weights */
    if (r->massline0) PetscCall(HMSystemSetMasses(*out, r->m));
  }
  PetscCall(PetscFree((*out)->source));
  PetscCall(PetscStrallocpy(r->t.path, &(*out)->source));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LmpParse(HMTextReader *t, HMSystem *out)
{
  LmpReader *r = (LmpReader *)t; /* the text reader is its first member */

  char     *s                                                    = NULL, *comment;
  PetscBool seen[sizeof(lmp_sections) / sizeof(lmp_sections[0])] = {PETSC_FALSE};

  PetscFunctionBegin;
  PetscCall(HMTextCheckNul(&r->t));
  PetscCall(HMLmpParseHeader_Private(r, &s, &comment));
  PetscCheck(s, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": file ends in the header (no Atoms section)", r->t.path, r->t.line);
  PetscCall(PetscMalloc1(r->count[CNT_ATOMS], &r->atoms));

  /* sections: keyword line, then exactly the announced number of data lines */
  while (s) {
    const int k = HMLmpSectionIndex_Private(s);
    long long n;

    PetscCheck(k >= 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": unknown section '%s'", r->t.path, r->t.line, s);
    PetscCheck(!seen[k], r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": section '%s' appears twice", r->t.path, r->t.line, s);
    PetscCheck(lmp_sections[k].cnt != CNT_BODIES, r->t.comm, PETSC_ERR_SUP, "%s:%" PetscInt64_FMT ": section 'Bodies' (variable-length records) is not supported", r->t.path, r->t.line);
    seen[k] = PETSC_TRUE;
    n       = r->count[lmp_sections[k].cnt];
    PetscCheck(n > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": section '%s' but the header declares none of its entries", r->t.path, r->t.line, s);
    if (!strcmp(s, "Atoms")) {
      r->atomsline = r->t.line;
      PetscCall(ParseAtoms(r, n, comment));
    } else if (!strcmp(s, "Masses")) PetscCall(HMLmpParseMasses_Private(r, n));
    else {
      for (long long j = 0; j < n; j++) {
        char *line;

        PetscCall(SectionLine(r, s, j, n, &line, NULL));
      }
    }
    /* next keyword */
    s = NULL;
    while (!s) {
      char *t, *line = HMTextNextLine(&r->t);

      if (!line) break;
      comment = HMLmpCutComment(line);
      t       = HMTextTrim(line);
      if (!*t) continue;
      PetscCheck(!HMLmpLooksNumeric(t), r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": data line '%s' after the %lld lines of section '%s' (header count too small?)", r->t.path, r->t.line, t, n, lmp_sections[k].name);
      s = t;
    }
  }
  PetscCheck(r->natoms > 0, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": no Atoms section", r->t.path, r->t.line);

  /* atoms in id order, whatever order the file lists them in */
  qsort(r->atoms, (size_t)r->natoms, sizeof(LmpAtom), HMLmpCompareId_Private);
  for (PetscInt i = 1; i < r->natoms; i++) {
    const LmpAtom *a = &r->atoms[i - 1], *b = &r->atoms[i];

    PetscCheck(a->id != b->id, r->t.comm, PETSC_ERR_FILE_UNEXPECTED, "%s:%" PetscInt64_FMT ": atom id %lld already used on line %" PetscInt64_FMT, r->t.path, PetscMax(a->line, b->line), b->id, PetscMin(a->line, b->line));
  }
  for (PetscInt i = 0; i < r->natoms; i++) r->used[r->atoms[i].type] = PETSC_TRUE;
  PetscCall(HMLmpMapTypes_Private(r));
  PetscCall(LmpBuildSystem(r, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode LmpReaderReset(HMTextReader *t)
{
  LmpReader *r = (LmpReader *)t;

  PetscFunctionBegin;
  PetscCall(PetscFree(r->atoms));
  PetscCall(PetscFree4(r->mass, r->massline, r->typeZ, r->used));
  PetscCall(PetscFree3(r->Z, r->pos, r->m));
  PetscFunctionReturn(PETSC_SUCCESS);
}

const HMTextFormat HMTextFormatLAMMPS = {sizeof(LmpReader), LmpParse, LmpReaderReset};

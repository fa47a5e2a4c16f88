/* Private to the LAMMPS data-file readers (lammps.c: the serial reader and the pieces it shares;
   lammpspar.c: the parallel reader, which parses the same header, Masses and Atoms lines with them). */
#pragma once

#include "textimpl.h"

/* Header counts that size the sections. */
typedef enum {
  CNT_ATOMS,
  CNT_ATOM_TYPES,
  CNT_BONDS,
  CNT_ANGLES,
  CNT_DIHEDRALS,
  CNT_IMPROPERS,
  CNT_BOND_TYPES,
  CNT_ANGLE_TYPES,
  CNT_DIHEDRAL_TYPES,
  CNT_IMPROPER_TYPES,
  CNT_ELLIPSOIDS,
  CNT_LINES,
  CNT_TRIANGLES,
  CNT_BODIES,
  CNT_CROSSTERMS, /* CHARMM CMAP */
  CNT_PAIRIJ,     /* derived: atom types * (atom types + 1) / 2 */
  CNT_N
} LmpCount;

/* Column layout of the Atoms section per atom style (0-based; -1 when the style lacks it). */
typedef struct {
  const char *name;
  int         coltype, colx, colmol, colq, ncols;
} LmpStyle;

typedef struct {
  long long  id;
  PetscInt64 line;
  int        type;
  double     x[3];
} LmpAtom;

typedef struct {
  HMTextReader t;
  long long    count[CNT_N];
  PetscInt64   countline[CNT_N]; /* header line of each count; 0 when absent */
  PetscBool    hasbox[3], hastilt;
  double       lo[3], hi[3], tilt[3]; /* xy xz yz */
  double       cell[9];
  PetscInt64   boxline, atomsline, massline0;
  LmpAtom     *atoms; /* [count[CNT_ATOMS]] */
  PetscInt     natoms;
  double      *mass;     /* [ntypes + 1], 0 when not given */
  PetscInt64  *massline; /* [ntypes + 1] */
  int         *typeZ;    /* [ntypes + 1] */
  PetscBool   *used;     /* [ntypes + 1] */
  int         *Z;        /* [natoms]: the system, in id order */
  double      *pos, *m;
} LmpReader;

/* Cuts a '#' comment off a line; returns the comment text (trimmed) or NULL. */
static inline char *HMLmpCutComment(char *s)
{
  char *h = strchr(s, '#');

  if (!h) return NULL;
  *h = '\0';
  return HMTextTrim(h + 1);
}

/* A data line starts with a number; anything else ends a section (a keyword). */
static inline PetscBool HMLmpLooksNumeric(const char *s)
{
  return (PetscBool)(isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+' || s[0] == '.') && (isdigit((unsigned char)s[1]) || s[1] == '.')));
}

/* Index of a section keyword in the table of every section LAMMPS read_data knows (-1: unknown) and the
   header count that gives its number of lines. */
PETSC_INTERN int      HMLmpSectionIndex_Private(const char *name);
PETSC_INTERN LmpCount HMLmpSectionCount_Private(int k);
/* Line 1 and the header up to the first section keyword (*kw, with its comment; NULL: the file ends in the
   header), then the header's checks (LmpCheckHeader) and the per-type arrays. */
PETSC_INTERN PetscErrorCode HMLmpParseHeader_Private(LmpReader *r, char **kw, char **comment);
/* The n lines of the Masses section after its keyword line. */
PETSC_INTERN PetscErrorCode HMLmpParseMasses_Private(LmpReader *r, long long n);
/* The atom style from the Atoms keyword's comment or -lammps_style (*style NULL: from the columns, below). */
PETSC_INTERN PetscErrorCode HMLmpStyleFromComment_Private(LmpReader *r, const char *stylecomment, const LmpStyle **style);
/* The style of an Atoms section without a style comment, from the column count of its first line. */
PETSC_INTERN PetscErrorCode HMLmpStyleFromColumns_Private(LmpReader *r, int ntok, const LmpStyle **style);
/* One Atoms line (comment cut, trimmed, not blank; line number in r->t.line) into a. */
PETSC_INTERN PetscErrorCode HMLmpParseAtomLine_Private(LmpReader *r, const LmpStyle *style, char *s, LmpAtom *a);
/* Elements of the atom types (r->used set for the types present): -lammps_types, else from the masses. */
PETSC_INTERN PetscErrorCode HMLmpMapTypes_Private(LmpReader *r);
PETSC_INTERN int            HMLmpCompareId_Private(const void *, const void *);

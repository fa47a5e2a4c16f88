/* Structure readers: options (HMReader), format choice by option, name or content, gzip input, notes. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "textimpl.h"
#include "sys/sysimpl.h"

const char *const HMStructureFormats[] = {"auto", "xyz", "extxyz", "pdb", "lammps", "hmb", "HMStructureFormat", "HM_FORMAT_", NULL};

/* Bytes of the file's start looked at when neither option nor name decides the format. */
#define SNIFF_BYTES 8192

PetscErrorCode HMReaderCreate(MPI_Comm comm, HMReader *out)
{
  HMReader r;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMReaderCreate: NULL output");
  PetscCall(PetscNew(&r));
  r->comm     = comm;
  r->format   = HM_FORMAT_AUTO;
  r->pdbmodel = 1;
  r->wrap     = PETSC_TRUE;
  *out        = r;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderDestroy(HMReader *pr)
{
  PetscFunctionBegin;
  if (!pr || !*pr) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree((*pr)->prefix));
  PetscCall(PetscFree((*pr)->lammpstypes));
  PetscCall(PetscFree((*pr)->notes));
  PetscCall(PetscFree(*pr));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetOptionsPrefix(HMReader r, const char prefix[])
{
  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetOptionsPrefix: NULL reader");
  PetscCall(PetscFree(r->prefix));
  if (prefix && prefix[0]) PetscCall(PetscStrallocpy(prefix, &r->prefix));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetFormat(HMReader r, HMStructureFormat f)
{
  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetFormat: NULL reader");
  PetscCheck(f >= HM_FORMAT_AUTO && f <= HM_FORMAT_HMB, r->comm, PETSC_ERR_ARG_OUTOFRANGE, "HMReaderSetFormat: unknown format %d", (int)f);
  r->format = f;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_SET_MARK(HMReader, Frame, PetscInt, frame, frameset)

HM_ACCESSOR_SET_MARK(HMReader, PDBModel, PetscInt, pdbmodel, pdbmodelset)

PetscErrorCode HMReaderSetLAMMPSTypes(HMReader r, const char types[])
{
  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetLAMMPSTypes: NULL reader");
  PetscCall(PetscFree(r->lammpstypes));
  if (types) PetscCall(PetscStrallocpy(types, &r->lammpstypes));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetLAMMPSStyle(HMReader r, const char style[])
{
  static const char *const styles[] = {"atomic", "charge", "bond", "angle", "molecular", "full"};
  PetscBool                ok       = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetLAMMPSStyle: NULL reader");
  r->lammpsstyle[0] = '\0';
  if (!style || !style[0]) PetscFunctionReturn(PETSC_SUCCESS);
  for (size_t k = 0; k < sizeof(styles) / sizeof(styles[0]); k++) ok = (PetscBool)(ok || !strcmp(style, styles[k]));
  PetscCheck(ok, r->comm, PETSC_ERR_USER_INPUT, "-%slammps_style %s: expected atomic, charge, bond, angle, molecular or full", r->prefix ? r->prefix : "", style);
  PetscCall(PetscStrncpy(r->lammpsstyle, style, sizeof(r->lammpsstyle)));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetWrap(HMReader r, PetscBool wrap)
{
  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetWrap: NULL reader");
  r->wrap = wrap;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetPBC(HMReader r, const PetscBool pbc[3])
{
  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetPBC: NULL reader");
  r->pbcset = pbc ? PETSC_TRUE : PETSC_FALSE;
  for (int d = 0; d < 3; d++) r->pbc[d] = pbc ? pbc[d] : PETSC_FALSE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscBool ParseFlag(const char *s, PetscBool *b)
{
  if (!strcasecmp(s, "t") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1")) *b = PETSC_TRUE;
  else if (!strcasecmp(s, "f") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0")) *b = PETSC_FALSE;
  else return PETSC_FALSE;
  return PETSC_TRUE;
}

/* "-pbc true", "-pbc false" or one flag per axis "-pbc T,T,F". */
static PetscErrorCode ParsePBC(HMReader r, char *val, PetscBool pbc[3])
{
  char *tok[4];
  int   n;

  PetscFunctionBegin;
  for (char *c = val; *c; c++)
    if (*c == ',') *c = ' ';
  n = HMTextSplit(val, tok, 4);
  PetscCheck(n == 1 || n == 3, r->comm, PETSC_ERR_USER_INPUT, "-%spbc: expected true, false or three flags such as T,T,F (found %d values)", r->prefix ? r->prefix : "", n);
  for (int d = 0; d < 3; d++) PetscCheck(ParseFlag(tok[n == 1 ? 0 : d], &pbc[d]), r->comm, PETSC_ERR_USER_INPUT, "-%spbc: '%s' is not T/F/true/false/1/0", r->prefix ? r->prefix : "", tok[n == 1 ? 0 : d]);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderSetFromOptions(HMReader r)
{
  PetscEnum fmt = (PetscEnum)r->format;
  PetscInt  k;
  char      buf[1024] = "";
  PetscBool flg;

  PetscFunctionBegin;
  PetscCheck(r, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMReaderSetFromOptions: NULL reader");
  PetscOptionsBegin(r->comm, r->prefix, "Structure file reader", "HMReader");
  PetscCall(PetscOptionsEnum("-structure_format", "Structure file format (auto: by the file name, then by its content)", "HMReaderSetFormat", HMStructureFormats, fmt, &fmt, &flg));
  if (flg) PetscCall(HMReaderSetFormat(r, (HMStructureFormat)fmt));
  k = r->frame;
  PetscCall(PetscOptionsInt("-frame", "XYZ: frame to read, from 0 (negative: from the end, -1 = last)", "HMReaderSetFrame", k, &k, &flg));
  if (flg) PetscCall(HMReaderSetFrame(r, k));
  k = r->pdbmodel;
  PetscCall(PetscOptionsInt("-pdb_model", "PDB: MODEL serial number to read (default: the first model)", "HMReaderSetPDBModel", k, &k, &flg));
  if (flg) PetscCall(HMReaderSetPDBModel(r, k));
  if (r->lammpstypes) PetscCall(PetscStrncpy(buf, r->lammpstypes, sizeof(buf)));
  PetscCall(PetscOptionsString("-lammps_types", "LAMMPS: elements of atom types 1..n, e.g. C,H,O (default: from the Masses section)", "HMReaderSetLAMMPSTypes", buf, buf, sizeof(buf), &flg));
  if (flg) PetscCall(HMReaderSetLAMMPSTypes(r, buf));
  PetscCall(PetscStrncpy(buf, r->lammpsstyle, sizeof(buf)));
  PetscCall(PetscOptionsString("-lammps_style", "LAMMPS: atom style of the Atoms section, atomic|charge|bond|angle|molecular|full (default: its '# style' comment, else the column count)", "HMReaderSetLAMMPSStyle", buf, buf, sizeof(buf), &flg));
  if (flg) PetscCall(HMReaderSetLAMMPSStyle(r, buf));
  {
    PetscBool w = r->wrap;

    PetscCall(PetscOptionsBool("-wrap", "Move atoms outside the cell along periodic axes into it (whole lattice vectors)", "HMReaderSetWrap", w, &w, &flg));
    if (flg) PetscCall(HMReaderSetWrap(r, w));
  }
  buf[0] = '\0';
  PetscCall(PetscOptionsString("-pbc", "Periodic axes overriding the file: true, false or T,T,F", "HMReaderSetPBC", buf, buf, sizeof(buf), &flg));
  if (flg) {
    PetscBool pbc[3];

    PetscCall(ParsePBC(r, buf, pbc));
    PetscCall(HMReaderSetPBC(r, pbc));
  }
  PetscOptionsEnd();
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscBool EndsWith(const char *s, size_t len, const char *suffix)
{
  const size_t k = strlen(suffix);

  return (PetscBool)(len >= k && !strncasecmp(s + len - k, suffix, k));
}

/* The usual names: .xyz/.extxyz, .pdb/.ent, .data/.lmp/.lammps endings and LAMMPS's data.NAME,
   .cif/.mmcif, .hmb; with gz a trailing .gz is looked through (input; output is never compressed). */
HMIOName HMIONameGuess_Private(const char path[], PetscBool gz)
{
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  size_t      len  = strlen(base);

  if (gz && EndsWith(base, len, ".gz")) len -= 3;
  if (EndsWith(base, len, ".pdb") || EndsWith(base, len, ".ent")) return NAME_PDB;
  if (EndsWith(base, len, ".data") || EndsWith(base, len, ".lmp") || EndsWith(base, len, ".lammps") || !strncmp(base, "data.", 5)) return NAME_LAMMPS;
  if (EndsWith(base, len, ".xyz") || EndsWith(base, len, ".extxyz")) return NAME_XYZ;
  if (EndsWith(base, len, ".cif") || EndsWith(base, len, ".mmcif") || EndsWith(base, len, ".bcif")) return NAME_MMCIF;
  if (EndsWith(base, len, ".hmb")) return NAME_HMB;
  return NAME_UNKNOWN;
}

#define GuessByName(path) HMIONameGuess_Private((path), PETSC_TRUE)

/* The first bytes of the file, decompressed if gzipped (gzread passes plain files through). */
static PetscErrorCode Sniff(MPI_Comm comm, const char path[], char head[], size_t cap)
{
  gzFile f;
  int    got;

  PetscFunctionBegin;
  head[0] = '\0';
  f       = gzopen(path, "rb");
  if (!f) PetscFunctionReturn(PETSC_SUCCESS); /* the reader reports why it cannot open it */
  got = gzread(f, head, (unsigned)(cap - 1));
  gzclose(f);
  head[got > 0 ? got : 0] = '\0';
  (void)comm;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Content: a PDB record name, an mmCIF data block, a LAMMPS "N atoms" header line in the first
   lines, else XYZ (the historical default, whose messages explain what an XYZ file needs). */
static HMIOName GuessByContent(char *head)
{
  static const char *pdbrec[] = {"HEADER", "TITLE ", "COMPND", "REMARK", "CRYST1", "ATOM  ", "HETATM", "MODEL ", "SEQRES", "EXPDTA", "AUTHOR", "SOURCE", "KEYWDS"};
  char              *line     = head;
  int                nline    = 0;

  if (HMHMBHasMagic_Private(head, strlen(head))) return NAME_HMB;

  while (line && *line && nline < 40) {
    char *nl = strchr(line, '\n'), *t;

    if (nl) *nl = '\0';
    t = HMTextTrim(line);
    if (nline == 0 && *t) {
      if (!strncmp(t, "data_", 5)) return NAME_MMCIF;
      for (size_t k = 0; k < sizeof(pdbrec) / sizeof(pdbrec[0]); k++)
        if (!strncmp(line, pdbrec[k], strlen(pdbrec[k]))) return NAME_PDB;
    }
    if (!strncmp(t, "_atom_site.", 11)) return NAME_MMCIF;
    if (nline > 0) {
      char     *tok[4];
      long long v;
      int       ntok = HMTextSplit(t, tok, 4);

      if (ntok == 2 && HMTextParseLong(tok[0], &v) && !strcmp(tok[1], "atoms")) return NAME_LAMMPS;
    }
    if (*t || nline) nline++; /* leading blank lines do not count */
    line = nl ? nl + 1 : NULL;
  }
  return NAME_XYZ;
}

static PetscErrorCode ApplyPBC(HMReader r, HMSystem sys)
{
  PetscBool any = PETSC_FALSE;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++) any = (PetscBool)(any || r->pbc[d]);
  PetscCheck(!any || sys->hascell, sys->comm, PETSC_ERR_USER_INPUT, "%s: -%spbc %c,%c,%c makes the system periodic but the file gives no cell", sys->source, r->prefix ? r->prefix : "", r->pbc[0] ? 'T' : 'F', r->pbc[1] ? 'T' : 'F', r->pbc[2] ? 'T' : 'F');
  if (any) PetscCall(HMSystemCheckCell_Private(sys->comm, sys->source, sys->cell, r->pbc));
  if (sys->pbc[0] != r->pbc[0] || sys->pbc[1] != r->pbc[1] || sys->pbc[2] != r->pbc[2])
    PetscCall(HMReaderNote_Private(r, "periodic axes %c,%c,%c set by -pbc (the file says %c,%c,%c)", r->pbc[0] ? 'T' : 'F', r->pbc[1] ? 'T' : 'F', r->pbc[2] ? 'T' : 'F', sys->pbc[0] ? 'T' : 'F', sys->pbc[1] ? 'T' : 'F', sys->pbc[2] ? 'T' : 'F'));
  for (int d = 0; d < 3; d++) sys->pbc[d] = r->pbc[d];
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Atoms outside the cell along a periodic axis (MD output, LAMMPS image flags, unwrapped trajectories) are
   moved into it by whole lattice vectors: x - floor(s_d) a_d for fractional coordinate s_d. Atoms inside
   (0 <= s_d < 1) are not touched, so an input that is already wrapped keeps its bits, and a wrapped input
   written with %.17g reads back to the same positions. */
static PetscErrorCode WrapIntoCell(HMReader r, HMSystem sys)
{
  const double *a = sys->cell, *b = sys->cell + 3, *c = sys->cell + 6;
  double        inv[9], det;
  PetscInt      moved = 0;

  PetscFunctionBegin;
  if (!sys->hascell || !(sys->pbc[0] || sys->pbc[1] || sys->pbc[2])) PetscFunctionReturn(PETSC_SUCCESS);
  /* columns of inv are the reciprocal vectors: s = x inv */
  det    = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  inv[0] = (b[1] * c[2] - b[2] * c[1]) / det;
  inv[1] = (a[2] * c[1] - a[1] * c[2]) / det;
  inv[2] = (a[1] * b[2] - a[2] * b[1]) / det;
  inv[3] = (b[2] * c[0] - b[0] * c[2]) / det;
  inv[4] = (a[0] * c[2] - a[2] * c[0]) / det;
  inv[5] = (a[2] * b[0] - a[0] * b[2]) / det;
  inv[6] = (b[0] * c[1] - b[1] * c[0]) / det;
  inv[7] = (a[1] * c[0] - a[0] * c[1]) / det;
  inv[8] = (a[0] * b[1] - a[1] * b[0]) / det;
  for (PetscInt i = 0; i < sys->n; i++) {
    double   *x       = sys->pos + 3 * i;
    PetscBool moved_i = PETSC_FALSE;

    for (int d = 0; d < 3; d++) {
      double sd, k;

      if (!sys->pbc[d]) continue;
      sd = x[0] * inv[d] + x[1] * inv[3 + d] + x[2] * inv[6 + d];
      k  = floor(sd);
      if (k == 0.0) continue;
      for (int e = 0; e < 3; e++) x[e] -= k * sys->cell[3 * d + e];
      /* an atom that lands on the far face by round-off (s = 1) goes to the near one, so that the
         wrapped structure is left as it is when read again */
      sd = x[0] * inv[d] + x[1] * inv[3 + d] + x[2] * inv[6 + d];
      if (sd >= 1.0) {
        double y[3];

        for (int e = 0; e < 3; e++) y[e] = x[e] - sys->cell[3 * d + e];
        if (floor(y[0] * inv[d] + y[1] * inv[3 + d] + y[2] * inv[6 + d]) == 0.0)
          for (int e = 0; e < 3; e++) x[e] = y[e];
      }
      moved_i = PETSC_TRUE;
    }
    moved += moved_i;
  }
  if (sys->distributed) PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &moved, 1, MPIU_INT, MPI_SUM, sys->comm));
  if (moved) PetscCall(HMReaderNote_Private(r, "%" PetscInt_FMT " of %" PetscInt_FMT " atoms lay outside the cell along its periodic axes: wrapped into it by whole lattice vectors (the same results as the wrapped structure)", moved, sys->distributed ? sys->N : sys->n));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* After any format reader: the -pbc override, wrapping into the cell, the notes. */
static PetscErrorCode LoadFinish(HMReader r, MPI_Comm comm, const char path[], HMSystem *out)
{
  PetscFunctionBegin;
  if (r->pbcset) {
    PetscErrorCode ierr = ApplyPBC(r, *out);

    if (ierr) {
      PetscCall(HMSystemDestroy(out));
      return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
    }
  }
  if (r->wrap) PetscCall(WrapIntoCell(r, *out));
  if (r->notes) {
    /* one "file: note: ..." line per note, on the first rank of comm */
    for (char *p = r->notes; *p;) {
      char *nl = strchr(p, '\n');

      PetscCall(PetscPrintf(comm, "%s: note: %.*s\n", path, (int)(nl - p), p));
      p = nl + 1;
    }
    (*out)->notes = r->notes;
    r->notes      = NULL;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* The format by option, name or (rank 0 looking at the file) content, on every rank of comm. */
static HMStructureFormat ResolveFormat(HMReader r, const char path[], char *head)
{
  HMIOName g;

  if (r->format != HM_FORMAT_AUTO) return r->format;
  g = GuessByName(path);
  if (g == NAME_UNKNOWN && head) g = GuessByContent(head);
  if (g == NAME_MMCIF) return HM_FORMAT_AUTO;
  if (g == NAME_HMB) return HM_FORMAT_HMB;
  return g == NAME_PDB ? HM_FORMAT_PDB : g == NAME_LAMMPS ? HM_FORMAT_LAMMPS :
      g == NAME_UNKNOWN                                   ? HM_FORMAT_AUTO :
                                                            HM_FORMAT_XYZ;
}

PetscErrorCode HMReaderLoad(HMReader r, MPI_Comm comm, const char path[], HMSystem *out)
{
  HMStructureFormat fmt;
  HMIOName          g;

  PetscFunctionBegin;
  PetscCheck(r && path && out, comm, PETSC_ERR_ARG_NULL, "HMReaderLoad: reader, path and output must not be NULL");
  *out = NULL;
  PetscCall(PetscFree(r->notes));
  fmt = r->format;
  if (fmt == HM_FORMAT_AUTO) {
    g = GuessByName(path);
    if (g == NAME_UNKNOWN) {
      char *head;

      PetscCall(PetscMalloc1(SNIFF_BYTES, &head));
      PetscCall(Sniff(comm, path, head, SNIFF_BYTES));
      g = GuessByContent(head);
      PetscCall(PetscFree(head));
    }
    PetscCheck(g != NAME_MMCIF, comm, PETSC_ERR_SUP, "%s: unsupported format: mmCIF (PDBx/mmCIF); convert it to PDB, e.g. with 'obabel -icif FILE -opdb -O FILE.pdb' or 'gemmi convert FILE FILE.pdb'", path);
    fmt = g == NAME_PDB ? HM_FORMAT_PDB : g == NAME_LAMMPS ? HM_FORMAT_LAMMPS :
        g == NAME_HMB                                      ? HM_FORMAT_HMB :
                                                             HM_FORMAT_XYZ;
  }
  PetscCheck(!r->frameset || fmt == HM_FORMAT_XYZ || fmt == HM_FORMAT_EXTXYZ || r->frame == 0, comm, PETSC_ERR_USER_INPUT, "%s: -frame %" PetscInt_FMT " applies to XYZ files only (PDB: -pdb_model)", path, r->frame);
  switch (fmt) {
  case HM_FORMAT_PDB:
    PetscCall(HMTextLoad_Private(&HMTextFormatPDB, r, comm, path, out));
    break;
  case HM_FORMAT_LAMMPS:
    PetscCall(HMTextLoad_Private(&HMTextFormatLAMMPS, r, comm, path, out));
    break;
  case HM_FORMAT_HMB:
    PetscCall(HMSystemLoadHMB_Private(r, comm, path, PETSC_FALSE, out));
    break;
  default:
    PetscCall(HMSystemLoadXYZ_Private(r, comm, path, out));
    break;
  }
  PetscCall(LoadFinish(r, comm, path, out));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMReaderLoadDistributed(HMReader r, MPI_Comm comm, const char path[], HMSystem *out)
{
  PetscMPIInt       size, rank;
  HMStructureFormat fmt;
  int               f;

  PetscFunctionBegin;
  PetscCheck(r && path && out, comm, PETSC_ERR_ARG_NULL, "HMReaderLoadDistributed: reader, path and output must not be NULL");
  *out = NULL;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (size == 1) {
    PetscCall(HMReaderLoad(r, comm, path, out));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  fmt = ResolveFormat(r, path, NULL);
  if (fmt == HM_FORMAT_AUTO && !rank && GuessByName(path) == NAME_UNKNOWN) {
    char *head;

    PetscCall(PetscMalloc1(SNIFF_BYTES, &head));
    PetscCall(Sniff(comm, path, head, SNIFF_BYTES));
    fmt = ResolveFormat(r, path, head);
    PetscCall(PetscFree(head));
  }
  f = (int)fmt;
  PetscCallMPI(MPI_Bcast(&f, 1, MPI_INT, 0, comm));
  if (f == HM_FORMAT_XYZ || f == HM_FORMAT_EXTXYZ) {
    PetscCall(PetscFree(r->notes));
    PetscCall(HMSystemLoadXYZDistributed_Private(r, comm, path, out));
  }
  if (f == HM_FORMAT_LAMMPS) {
    PetscCall(PetscFree(r->notes));
    PetscCall(HMSystemLoadLammpsDistributed_Private(r, comm, path, out));
  }
  if (f == HM_FORMAT_HMB) {
    PetscCheck(!r->frameset || r->frame == 0, comm, PETSC_ERR_USER_INPUT, "%s: -frame %" PetscInt_FMT " applies to XYZ files only (PDB: -pdb_model)", path, r->frame);
    PetscCall(PetscFree(r->notes));
    PetscCall(HMSystemLoadHMB_Private(r, comm, path, PETSC_TRUE, out));
  }
  if (*out) PetscCall(LoadFinish(r, comm, path, out));
  else if (!rank) PetscCall(HMReaderLoad(r, PETSC_COMM_SELF, path, out)); /* the serial reader on rank 0 */
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemLoad(MPI_Comm comm, const char path[], HMSystem *out)
{
  HMReader       r;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(path && out, comm, PETSC_ERR_ARG_NULL, "HMSystemLoad: path and output must not be NULL");
  PetscCall(HMReaderCreate(comm, &r));
  ierr = HMReaderSetFromOptions(r);
  if (!ierr) ierr = HMReaderLoad(r, comm, path, out);
  PetscCall(HMReaderDestroy(&r));
  if (PetscUnlikely(ierr)) return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  PetscFunctionReturn(PETSC_SUCCESS);
}

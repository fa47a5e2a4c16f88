/* Structure formats: PDB and LAMMPS data readers (fields, options, round trips, malformed files)
   and an end-to-end run of the driver on a PDB file. */
#define HM_SCRATCH_TAG "formats"
#include "hmscratch.h"

#include <dirent.h>
#include <jansson.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hipmace/io.h>
#include <hipmace/builder.h>
#include <zlib.h>

/* ---- data files, expected failures (scratch files: hmscratch.h) ---- */

/* tests/data, found from the inputs folder that meson test points at */
static const char *data_path(const char *name)
{
  static char path[PETSC_MAX_PATH_LEN];
  const char *in = getenv("HIPMACE_INPUTS_DIR");

  if (in) snprintf(path, sizeof(path), "%s/../tests/data/%s", in, name);
  else snprintf(path, sizeof(path), "tests/data/%s", name);
  return path;
}

/* The load must fail, and PETSc's message must contain "<file name>:<line>:" and `want`. */
static void expect_fail(const char *path, int line, const char *want)
{
  const PetscErrorCode ierr = hm_system_load_fails(path, want);
  const char          *text, *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  char                *msg = NULL, where[PETSC_MAX_PATH_LEN];

  PetscErrorMessage(ierr, &text, &msg);
  if (!msg) fail_msg("%s: no error message", path);
  if (line > 0) snprintf(where, sizeof(where), "%s:%d: ", base, line);
  else snprintf(where, sizeof(where), "%s", base);
  if (!strstr(msg, where)) fail_msg("%s: message '%s' does not name '%s'", path, msg, where);
  if (!strstr(msg, want)) fail_msg("%s: message '%s' does not contain '%s'", path, msg, want);
  /* one line: the message must not run over several lines */
  if (strchr(msg, '\n')) fail_msg("%s: message '%s' spans several lines", path, msg);
}

static void check_cell(HMSystem sys, PetscBool want_cell, const double want[9], double tol)
{
  PetscBool hc, pbc[3];
  double    cell[9];

  HM_T(HMSystemGetCell(sys, &hc, cell, pbc));
  assert_int_equal(hc, want_cell);
  for (int d = 0; d < 3; d++) assert_int_equal(pbc[d], want_cell);
  if (!want_cell) return;
  for (int k = 0; k < 9; k++)
    if (fabs(cell[k] - want[k]) > tol) fail_msg("cell[%d] = %.17g, expected %.17g (tolerance %g)", k, cell[k], want[k], tol);
}

/* Writes the system as extended XYZ, reads it back and demands identical bits. */
static void round_trip(HMSystem sys, const char *name)
{
  HMSystem    back;
  hm_sysview  a, b;
  const char *path = tmp_path(name);

  HM_T(HMSystemWriteXYZ(sys, path));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, path, &back));
  a = hm_system_view(sys);
  b = hm_system_view(back);
  assert_int_equal(a.n, b.n);
  assert_memory_equal(a.Z, b.Z, sizeof(int) * (size_t)a.n);
  assert_memory_equal(a.pos, b.pos, sizeof(double) * 3 * (size_t)a.n);
  assert_memory_equal(a.mass, b.mass, sizeof(double) * (size_t)a.n);
  assert_int_equal(a.hascell, b.hascell);
  assert_memory_equal(a.cell, b.cell, sizeof(a.cell));
  assert_memory_equal(a.pbc, b.pbc, sizeof(a.pbc));
  HM_T(HMSystemDestroy(&back));
}

/* ---- PDB ---- */

/* model 1 of tests/data/fragment.pdb after dropping the second alternate locations
   (serials 6, 10, 14, 15): serial, Z, x, y, z */
static const struct {
  int    serial, Z;
  double x[3];
} frag1[] = {
    {1,  7,  {-0.525, 1.362, 0.000}  },
    {2,  6,  {0.000, 0.000, 0.000}   }, /* " CA " without element columns: alpha carbon */
    {3,  6,  {1.525, 0.000, 0.000}   },
    {4,  8,  {2.155, 1.057, 0.000}   },
    {5,  6,  {-0.507, -0.774, -1.206}}, /* altLoc A kept, B dropped */
    {7,  1,  {-1.516, 1.431, 0.112}  },
    {8,  1,  {-0.371, -0.521, 0.884} },
    {9,  1,  {-1.597, -0.764, -1.199}}, /* "1HB " */
    {11, 7,  {2.095, -1.200, 0.000}  },
    {12, 6,  {3.550, -1.340, 0.000}  }, /* SER (A); THR (B) microheterogeneity dropped */
    {13, 8,  {4.100, -2.600, 0.500}  },
    {17, 8,  {5.000, 5.000, 5.000}   }, /* HETATM water */
    {18, 1,  {5.957, 5.000, 5.000}   },
    {19, 1,  {4.760, 5.927, 5.000}   },
    {20, 20, {8.000, 0.000, 0.000}   }, /* calcium from columns 77-78 */
    {21, 30, {0.000, 8.000, 0.000}   }, /* "ZN  " name only: zinc */
    {22, 1,  {0.000, 0.000, 8.000}   }, /* "HG11": four-character hydrogen name, not mercury */
    {23, 17, {1.000, 0.000, 8.000}   }, /* "CL1 " */
    {24, 6,  {2.000, 0.000, 8.000}   }, /* " CA " */
    {25, 20, {3.000, 0.000, 8.000}   }, /* "CA  " name only: calcium */
};

/* The parser tests compare positions with the file's text: the atoms stay where the file puts them. */
/* HMReaderSetFromOptions must refuse the options set now. */
static void reader_options_fail(void)
{
  HMReader       r;
  PetscErrorCode ierr;
  HM_T(HMReaderCreate(PETSC_COMM_SELF, &r));
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = HMReaderSetFromOptions(r);
  PetscPopErrorHandler();
  assert_true(ierr != 0);
  HM_T(HMReaderDestroy(&r));
}

/* sys has n atoms with these atomic numbers; returns its positions. */
static const double *check_Z(HMSystem sys, PetscInt n, const int Z[])
{
  PetscInt      ns;
  const int    *Zs;
  const double *x;
  HM_T(HMSystemGetSize(sys, &ns));
  assert_int_equal(ns, n);
  HM_T(HMSystemGetAtomicNumbers(sys, &Zs));
  HM_T(HMSystemGetPositions(sys, &x));
  for (PetscInt i = 0; i < n; i++) assert_int_equal(Zs[i], Z[i]);
  return x;
}

static void test_pdb_fragment(void **state)
{
  HMSystem      sys;
  PetscInt      n;
  const int    *Z;
  const double *x, *m;
  const char   *src;
  double        cell[9];
  (void)state;

  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path("fragment.pdb"), &sys));
  HM_T(HMSystemGetSize(sys, &n));
  assert_int_equal(n, sizeof(frag1) / sizeof(frag1[0]));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  HM_T(HMSystemGetPositions(sys, &x));
  HM_T(HMSystemGetMasses(sys, &m));
  for (PetscInt i = 0; i < n; i++) {
    if (Z[i] != frag1[i].Z) fail_msg("atom %d (serial %d): Z %d, expected %d", (int)i, frag1[i].serial, Z[i], frag1[i].Z);
    /* both sides are strtod of the same 3-decimal text: exact */
    for (int d = 0; d < 3; d++)
      if (x[3 * i + d] != frag1[i].x[d]) fail_msg("atom %d (serial %d): coordinate %d = %.17g, expected %.17g", (int)i, frag1[i].serial, d, x[3 * i + d], frag1[i].x[d]);
    assert_true(m[i] == HMElementMass(Z[i])); /* PDB has no masses: standard weights */
  }
  HM_T(HMSystemGetSource(sys, &src));
  assert_non_null(strstr(src, "fragment.pdb"));
  /* CRYST1 20 21 22 90 90 120: a along x, b in the xy plane; right angles give exact zeros,
     the 120 degree entries go through cos/sin (1e-12: a few ulps of 21) */
  cell[0] = 20;
  cell[1] = 0;
  cell[2] = 0;
  cell[3] = -10.5;
  cell[4] = 21 * sqrt(3.0) / 2;
  cell[5] = 0;
  cell[6] = 0;
  cell[7] = 0;
  cell[8] = 22;
  check_cell(sys, PETSC_TRUE, cell, 1e-12);
  {
    double c[9];

    HM_T(HMSystemGetCell(sys, NULL, c, NULL));
    assert_true(c[0] == 20 && c[1] == 0 && c[2] == 0 && c[5] == 0 && c[6] == 0 && c[7] == 0 && c[8] == 22);
  }
  round_trip(sys, "fragment_rt.xyz");
  HM_T(HMSystemDestroy(&sys));
}

static void test_pdb_model_option(void **state)
{
  static const double want[3][3] = {
      {-0.500, 1.300, 0.100 },
      {0.010,  0.020, -0.030},
      {1.500,  0.000, 0.050 }
  };
  HMSystem      sys;
  PetscInt      n;
  const double *x;
  (void)state;

  HM_T(PetscOptionsSetValue(NULL, "-pdb_model", "2"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path("fragment.pdb"), &sys));
  HM_T(PetscOptionsClearValue(NULL, "-pdb_model"));
  x = check_Z(sys, 3, (const int[]){7, 6, 6});
  for (int i = 0; i < 3; i++)
    for (int d = 0; d < 3; d++) assert_true(x[3 * i + d] == want[i][d]);
  HM_T(HMSystemDestroy(&sys));

  /* explicit -pdb_model 1 is the default model */
  HM_T(PetscOptionsSetValue(NULL, "-pdb_model", "1"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path("fragment.pdb"), &sys));
  HM_T(PetscOptionsClearValue(NULL, "-pdb_model"));
  HM_T(HMSystemGetSize(sys, &n));
  assert_int_equal(n, sizeof(frag1) / sizeof(frag1[0]));
  HM_T(HMSystemDestroy(&sys));
}

/* No MODEL records, the 1x1x1 placeholder cell, .ent extension, CRLF line ends, no END. */
static void test_pdb_placeholder_cell(void **state)
{
  const char   *text = "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1\r\n"
                       "ATOM      1  O   HOH A   1       0.000   0.000   0.118  1.00  0.00           O\r\n"
                       "ATOM      2  H1  HOH A   1       0.000   0.757  -0.471  1.00  0.00           H\r\n"
                       "ATOM      3  H2  HOH A   1       0.000  -0.757  -0.471  1.00  0.00           H\r\n"
                       "TER\r\n";
  HMSystem      sys;
  const double *x;
  (void)state;

  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("water.ent", text), &sys));
  x = check_Z(sys, 3, (const int[]){8, 1, 1});
  assert_true(x[2] == 0.118 && x[4] == 0.757 && x[7] == -0.757 && x[8] == -0.471);
  check_cell(sys, PETSC_FALSE, NULL, 0);
  round_trip(sys, "water_rt.xyz");
  HM_T(HMSystemDestroy(&sys));
}

#define PDB_O   "ATOM      1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O\n"
#define PDB_H   "ATOM      2  H1  HOH A   1       0.957   0.000   0.000  1.00  0.00           H\n"
#define PDB_CRY "CRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1           1\n"

static void test_pdb_malformed(void **state)
{
  (void)state;
  expect_fail(write_text("bad_number.pdb", PDB_CRY PDB_O "ATOM      2  H1  HOH A   1       0.9x7   0.000   0.000  1.00  0.00           H\nEND\n"), 3, "x coordinate '0.9x7' (columns 31-38) is not a number");
  expect_fail(write_text("blank_z.pdb", PDB_O "ATOM      2  H1  HOH A   1       0.957   0.000           1.00  0.00           H\n"), 2, "z coordinate (columns 47-54) is blank");
  expect_fail(write_text("bad_element.pdb", PDB_O "ATOM      2  H1  HOH A   1       0.957   0.000   0.000  1.00  0.00          QQ\n"), 2, "unknown element 'QQ' in columns 77-78");
  expect_fail(write_text("bad_name.pdb", PDB_O "ATOM      2  XX  HOH A   1       0.957   0.000   0.000  1.00  0.00\n"), 2, "atom name ' XX ' names no known element");
  expect_fail(write_text("no_atoms.pdb", "HEADER    NOTHING\nREMARK   1 EMPTY\nEND\n"), 3, "no ATOM/HETATM records");
  expect_fail(write_text("atoms_after_end.pdb", "END\n" PDB_O), 1, "no ATOM/HETATM records before END");
  expect_fail(write_text("short.pdb", PDB_O "ATOM      2  H1  HOH A   1       0.957   0.0\n"), 2, "coordinates need columns 31-54");
  expect_fail(write_text("bad_cryst.pdb", "CRYST1   10.000   10.000   10.000  90.00  90.00 180.00 P 1           1\n" PDB_O), 1, "cell angle gamma 180 is not in (0, 180)");
  expect_fail(write_text("cryst_a.pdb", "CRYST1   10.000    ab.c   10.000  90.00  90.00  90.00 P 1           1\n" PDB_O), 1, "cell length b 'ab.c' (columns 16-24) is not a number");
  expect_fail(write_text("flat_cell.pdb", "CRYST1   10.000   10.000   10.000  60.00  60.00 179.00 P 1           1\n" PDB_O), 1, "do not form a cell");
  expect_fail(write_text("nested.pdb", "MODEL        1\n" PDB_O "MODEL        2\n" PDB_H "ENDMDL\n"), 3, "MODEL inside a MODEL (missing ENDMDL)");
  expect_fail(write_text("endmdl.pdb", PDB_O "ENDMDL\n"), 2, "ENDMDL without MODEL");
  expect_fail(write_text("model_serial.pdb", "MODEL        x\n" PDB_O "ENDMDL\n"), 1, "MODEL serial number 'x' is not an integer");
  expect_fail(write_bytes("nul.pdb", PDB_O "AT\0M", sizeof(PDB_O "AT\0M") - 1), 2, "NUL byte");

  /* the requested MODEL is missing: the error points at the end of the file */
  HM_T(PetscOptionsSetValue(NULL, "-pdb_model", "5"));
  expect_fail(write_text("model5.pdb", "MODEL        1\n" PDB_O "ENDMDL\nMODEL        2\n" PDB_O "ENDMDL\nEND\n"), 7, "MODEL 5 requested by -pdb_model not found (the file has 2 models)");
  expect_fail(write_text("nomodels.pdb", PDB_O PDB_H), 2, "-pdb_model 5 requested but the file has no MODEL records");
  /* reading on past an unselected model finds an atom that belongs to no model */
  expect_fail(write_text("outside.pdb", "MODEL        1\n" PDB_O "ENDMDL\n" PDB_H), 4, "outside MODEL/ENDMDL");
  HM_T(PetscOptionsClearValue(NULL, "-pdb_model"));
  expect_fail(tmp_path("missing.pdb"), 0, "cannot open");
}

/* ---- LAMMPS data files ---- */

/* Loads data/<file> and checks its atoms against the expected Z, positions (exactly) and masses, its cell,
   and an XYZ round trip through rt; returns the system for further checks. */
static HMSystem check_lammps(const char *file, PetscInt nwant, const int *wantZ, const double (*wantx)[3], const double *wantm, const double cell[9], const char *rt)
{
  HMSystem      sys;
  PetscInt      n;
  const int    *Z;
  const double *x, *m;

  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path(file), &sys));
  HM_T(HMSystemGetSize(sys, &n));
  assert_int_equal(n, nwant);
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  HM_T(HMSystemGetPositions(sys, &x));
  HM_T(HMSystemGetMasses(sys, &m));
  for (int i = 0; i < n; i++) {
    if (Z[i] != wantZ[i]) fail_msg("atom id %d: Z %d, expected %d", i + 1, Z[i], wantZ[i]);
    for (int d = 0; d < 3; d++)
      if (x[3 * i + d] != wantx[i][d]) fail_msg("atom id %d coordinate %d = %.17g, expected %.17g", i + 1, d, x[3 * i + d], wantx[i][d]);
    if (!(m[i] == wantm[i])) fail_msg("atom id %d: mass %.17g, expected %.17g", i + 1, m[i], wantm[i]);
  }
  check_cell(sys, PETSC_TRUE, cell, 0);
  round_trip(sys, rt);
  return sys;
}

static void test_lammps_atomic(void **state)
{
  /* ids 1..4 after sorting; image flags unwrap: atom 4 = (2, 0.5, -0.25) + 1 a - 1 b + 2 c */
  static const int    wantZ[4]    = {6, 6, 1, 1};
  static const double wantx[4][3] = {
      {0.0,  0.0,  0.0  },
      {0.75, 2.0,  12.0 },
      {1.0,  1.0,  1.0  },
      {9.5,  -5.5, 23.75}
  };
  static const double wantm[4] = {12.011, 12.011, 1.008, 1.008};
  static const double cell[9]  = {10, 0, 0, 1.5, 10, 0, -0.5, 2.0, 12.0};
  HMSystem            sys;
  const int          *Z;
  const double       *m;
  (void)state;

  /* every value and image shift here is a short binary fraction: exact; the cell's differences of exact
     decimals: exact */
  sys = check_lammps("triclinic_atomic.data", 4, wantZ, wantx, wantm, cell, "atomic_rt.xyz");
  HM_T(HMSystemDestroy(&sys));

  /* -lammps_types overrides the mass mapping; the file's masses stay the masses */
  HM_T(PetscOptionsSetValue(NULL, "-lammps_types", "N, O"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path("triclinic_atomic.data"), &sys));
  HM_T(PetscOptionsClearValue(NULL, "-lammps_types"));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  HM_T(HMSystemGetMasses(sys, &m));
  assert_int_equal(Z[0], 7);
  assert_int_equal(Z[1], 7);
  assert_int_equal(Z[2], 8);
  assert_int_equal(Z[3], 8);
  assert_true(m[0] == 12.011 && m[3] == 1.008);
  HM_T(HMSystemDestroy(&sys));
}

static void test_lammps_full(void **state)
{
  static const int    wantZ[7]    = {8, 1, 1, 6, 1, 1, 1};
  static const double wantm[7]    = {15.9994, 1.00794, 1.00794, 12.0107, 1.00794, 1.00794, 1.00794};
  static const double wantx[7][3] = {
      {0.0,         0.0,         0.0  },
      {0.9572,      0.0,         0.0  },
      {-0.24,       0.9266,      0.0  },
      {3.0 - 10.0,  0.0,         0.0  },
      {4.09 - 10.0, 0.0,         0.0  },
      {2.64 - 10.0, 1.03 + 12.0, -14.0},
      {4.5 - 10.0,  -1.0,        0.5  }
  };
  static const double cell[9] = {10, 0, 0, 0, 12, 0, 0, 0, 14};
  (void)state;

  /* one image shift of an exact box length: one correctly rounded addition on both sides; the file's
     Masses kept, not replaced by standard weights */
  HMSystem sys = check_lammps("water_methyl_full.lmp", 7, wantZ, wantx, wantm, cell, "full_rt.xyz");
  HM_T(HMSystemDestroy(&sys));
}

/* Style inferred from the column count, no Masses but -lammps_types, .lammps extension. */
static void test_lammps_inferred(void **state)
{
  const char   *text = "title\n\n 2 atoms\n 1 atom types\n 0 5 xlo xhi\n 0 5 ylo yhi\n 0 5 zlo zhi\n\nAtoms\n\n2 1 1.0 0 0\n1 1 0 0 0\n";
  HMSystem      sys;
  const int    *Z;
  const double *x, *m;
  (void)state;

  HM_T(PetscOptionsSetValue(NULL, "-lammps_types", "Si"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("si.lammps", text), &sys));
  HM_T(PetscOptionsClearValue(NULL, "-lammps_types"));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  HM_T(HMSystemGetPositions(sys, &x));
  HM_T(HMSystemGetMasses(sys, &m));
  assert_int_equal(Z[0], 14);
  assert_int_equal(Z[1], 14);
  assert_true(x[0] == 0.0 && x[3] == 1.0);
  assert_true(m[0] == HMElementMass(14)); /* no Masses section: standard weights */
  HM_T(HMSystemDestroy(&sys));
}

#define LMP_HEAD  "title line\n\n2 atoms\n2 atom types\n0 10 xlo xhi\n0 10 ylo yhi\n0 10 zlo zhi\n\n"
#define LMP_MASS  "Masses\n\n1 12.011\n2 1.008\n\n" /* lines 9-13 */
#define LMP_ATOMS "Atoms # atomic\n\n"              /* lines 14-15 */

static void test_lammps_malformed(void **state)
{
  (void)state;
  expect_fail(write_text("no_count.data", "title\n\n2 atom types\n0 10 xlo xhi\n0 10 ylo yhi\n0 10 zlo zhi\n\n" LMP_MASS LMP_ATOMS "1 1 0 0 0\n"), 8, "header has no 'N atoms' line");
  expect_fail(write_text("columns.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n2 2 1 0 0 7\n"), 17, "atom style atomic needs 5 columns (8 with image flags), found 6");
  expect_fail(write_text("coord.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 abc 0\n2 2 1 0 0\n"), 16, "coordinate 'abc' is not a number");
  expect_fail(write_text("type.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n2 3 1 0 0\n"), 17, "atom type '3' is not in 1..2");
  expect_fail(write_text("dup.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n1 2 1 0 0\n"), 17, "atom id 1 already used on line 16");
  expect_fail(write_text("image.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0 0 0 0\n2 2 1 0 0 0 1.5 0\n"), 17, "image flag '1.5' is not an integer");
  expect_fail(write_text("mass.data", LMP_HEAD "Masses\n\n1 12.011\n2 13.5\n\n" LMP_ATOMS "1 1 0 0 0\n2 2 1 0 0\n"), 12, "mass 13.5 of atom type 2 is no element's standard weight");
  expect_fail(write_text("nomass.data", LMP_HEAD "Atoms # atomic\n\n1 1 0 0 0\n2 2 1 0 0\n"), 9, "no mass for atom type 1");
  expect_fail(write_text("section.data", LMP_HEAD LMP_MASS "Foo Bar\n\n1 2\n"), 14, "unknown section 'Foo Bar'");
  expect_fail(write_text("truncated.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n"), 16, "file ends inside section 'Atoms' after 1 of 2 lines");
  expect_fail(write_text("toomany.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n2 2 1 0 0\n3 2 2 0 0\n"), 18, "data line '3 2 2 0 0' after the 2 lines of section 'Atoms'");
  expect_fail(write_text("early.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n\nVelocities\n\n1 0 0 0\n2 0 0 0\n"), 18, "section 'Atoms' has 1 of the 2 lines");
  expect_fail(write_text("box.data", "title\n\n2 atoms\n2 atom types\n0 10 xlo xhi\n5 -5 ylo yhi\n"), 6, "yhi -5 must be larger than ylo 5");
  expect_fail(write_text("nobox.data", "title\n\n2 atoms\n2 atom types\n0 10 xlo xhi\n0 10 ylo yhi\n\n" LMP_MASS), 8, "header has no 'zlo zhi' line");
  expect_fail(write_text("header.data", "title\n\n2 atoms\n2 atom kinds\n"), 4, "unrecognised header line");
  expect_fail(write_text("style.data", LMP_HEAD LMP_MASS "Atoms # sphere\n\n1 1 1.0 1.0 0 0 0\n"), 14, "atom style 'sphere' is not supported");
  expect_fail(write_text("ambiguous.data", LMP_HEAD LMP_MASS "Atoms\n\n1 1 0.0 0 0 0\n2 2 0.0 1 0 0\n"), 16, "6 columns fit two styles");
  expect_fail(write_text("nobonds.data", LMP_HEAD LMP_MASS "Bonds\n\n1 1 1 2\n"), 14, "section 'Bonds' but the header declares none of its entries");
  expect_fail(write_text("noatoms.data", LMP_HEAD LMP_MASS), 13, "no Atoms section");
  expect_fail(write_bytes("nul.data", "title\n\n2 at\0ms\n", 16), 3, "NUL byte");

  HM_T(PetscOptionsSetValue(NULL, "-lammps_types", "C,H,O"));
  expect_fail(write_text("types.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n2 2 1 0 0\n"), 4, "-lammps_types names 3 elements but the file has 2 atom types");
  HM_T(PetscOptionsClearValue(NULL, "-lammps_types"));
  HM_T(PetscOptionsSetValue(NULL, "-lammps_types", "C,Qq"));
  expect_fail(write_text("types2.data", LMP_HEAD LMP_MASS LMP_ATOMS "1 1 0 0 0\n2 2 1 0 0\n"), 0, "-lammps_types entry 2 'Qq' is not a known element symbol");
  HM_T(PetscOptionsClearValue(NULL, "-lammps_types"));
}

/* ---- end to end: the driver on a PDB file and on the equivalent XYZ ---- */

static int run(const char *args, const char *log)
{
  const char *bin = getenv("HIPMACE_BIN");
  char        cmd[8 * PETSC_MAX_PATH_LEN];
  int         st;

  if ((size_t)snprintf(cmd, sizeof(cmd), "%s %s > %s 2>&1", bin ? bin : "./drivers/hipmace", args, log) >= sizeof(cmd)) fail_msg("command line too long");
  st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static double summary_energy(const char *path, PetscInt natoms)
{
  json_error_t err;
  json_t      *root = json_load_file(path, 0, &err);
  double       e;

  if (!root) fail_msg("%s: %s", path, err.text);
  assert_true(json_is_number(json_object_get(root, "energy")));
  assert_int_equal(json_integer_value(json_object_get(root, "natoms")), natoms);
  e = json_number_value(json_object_get(root, "energy"));
  json_decref(root);
  return e;
}

static void test_driver_pdb(void **state)
{
  const char   *in = getenv("HIPMACE_INPUTS_DIR");
  char          xyz[PETSC_MAX_PATH_LEN], model[PETSC_MAX_PATH_LEN], args[4 * PETSC_MAX_PATH_LEN], pdbp[PETSC_MAX_PATH_LEN], xyzp[PETSC_MAX_PATH_LEN], s1[PETSC_MAX_PATH_LEN], s2[PETSC_MAX_PATH_LEN], lg[PETSC_MAX_PATH_LEN];
  HMSystem      sys, rounded;
  PetscInt      n;
  const int    *Z;
  const double *x;
  double       *xr;
  FILE         *f;
  double        e_pdb, e_xyz;
  (void)state;

  snprintf(xyz, sizeof(xyz), "%s/default.xyz", in ? in : "inputs");
  snprintf(model, sizeof(model), "%s/demo_hipmace.safetensors", in ? in : "inputs");
  HM_T(HMSystemLoad(PETSC_COMM_SELF, xyz, &sys));
  HM_T(HMSystemGetSize(sys, &n));
  HM_T(HMSystemGetAtomicNumbers(sys, &Z));
  HM_T(HMSystemGetPositions(sys, &x));
  xr = malloc(sizeof(double) * 3 * (size_t)n);
  assert_non_null(xr);

  /* the PDB carries 3 decimals; the XYZ gets exactly those rounded values at full precision */
  snprintf(pdbp, sizeof(pdbp), "%s", tmp_path("mol.pdb"));
  f = fopen(pdbp, "w");
  assert_non_null(f);
  fprintf(f, "REMARK   1 inputs/default.xyz rounded to PDB precision\n");
  for (PetscInt i = 0; i < n; i++) {
    char c[3][16];

    for (int d = 0; d < 3; d++) {
      snprintf(c[d], sizeof(c[d]), "%8.3f", x[3 * i + d]);
      xr[3 * i + d] = strtod(c[d], NULL);
    }
    fprintf(f, "HETATM%5d %-4s MOL A   1    %s%s%s  1.00  0.00          %2s\n", (int)i + 1, HMElementSymbol(Z[i]), c[0], c[1], c[2], HMElementSymbol(Z[i]));
  }
  fprintf(f, "END\n");
  assert_int_equal(fclose(f), 0);
  HM_T(HMSystemCreate(PETSC_COMM_SELF, n, Z, xr, NULL, NULL, &rounded));
  snprintf(xyzp, sizeof(xyzp), "%s", tmp_path("mol.xyz"));
  HM_T(HMSystemWriteXYZ(rounded, xyzp));
  {
    /* the reader sees the PDB exactly as the rounded XYZ */
    HMSystem      back;
    const double *xb;

    HM_T(HMSystemLoad(PETSC_COMM_SELF, pdbp, &back));
    HM_T(HMSystemGetPositions(back, &xb));
    assert_memory_equal(xb, xr, sizeof(double) * 3 * (size_t)n);
    HM_T(HMSystemDestroy(&back));
  }

  snprintf(s1, sizeof(s1), "%s", tmp_path("s_pdb.json"));
  snprintf(lg, sizeof(lg), "%s", tmp_path("log_pdb.txt"));
  snprintf(args, sizeof(args), "-structure %s -model %s -modes none -summary %s", pdbp, model, s1);
  if (run(args, lg)) fail_msg("hipmace %s failed (log %s)", args, lg);
  snprintf(s2, sizeof(s2), "%s", tmp_path("s_xyz.json"));
  snprintf(lg, sizeof(lg), "%s", tmp_path("log_xyz.txt"));
  snprintf(args, sizeof(args), "-structure %s -model %s -modes none -summary %s", xyzp, model, s2);
  if (run(args, lg)) fail_msg("hipmace %s failed (log %s)", args, lg);
  e_pdb = summary_energy(s1, n);
  e_xyz = summary_energy(s2, n);
  /* same atoms, same bits, same code path after reading: identical energies */
  if (e_pdb != e_xyz) fail_msg("energy from the PDB %.17g differs from the XYZ %.17g", e_pdb, e_xyz);
  assert_true(isfinite(e_pdb) && e_pdb < 0);
  free(xr);
  HM_T(HMSystemDestroy(&rounded));
  HM_T(HMSystemDestroy(&sys));
}

/* ---- format choice, compressed input, frames, -pbc, CRYST1 rule, notes ---- */

#define LMP_SMALL "title\n\n 2 atoms\n 2 atom types\n 0 6 xlo xhi\n 0 6 ylo yhi\n 0 6 zlo zhi\n\nMasses\n\n1 12.011\n2 1.008\n\nAtoms # atomic\n\n1 1 0 0 0\n2 2 1.09 0 0\n"
#define PDB_TWO   PDB_O PDB_H "END\n"

static PetscInt load_size(const char *path, const char *notes_want)
{
  HMSystem    sys;
  PetscInt    n;
  const char *notes;

  HM_T(HMSystemLoad(PETSC_COMM_SELF, path, &sys));
  HM_T(HMSystemGetSize(sys, &n));
  HM_T(HMSystemGetNotes(sys, &notes));
  if (notes_want && !strstr(notes, notes_want)) fail_msg("%s: notes '%s' do not contain '%s'", path, notes, notes_want);
  if (!notes_want && notes[0]) fail_msg("%s: unexpected notes '%s'", path, notes);
  HM_T(HMSystemDestroy(&sys));
  return n;
}

static void test_format_detection(void **state)
{
  HMSystem  sys;
  PetscBool hc, pbc[3];
  (void)state;

  /* LAMMPS's own naming (data.NAME), by content under another name, and the element guess is said */
  assert_int_equal(load_size(write_text("data.methane", LMP_SMALL), "elements guessed from the Masses section (type=element (mass)): 1=C (12.01), 2=H (1.008)"), 2);
  assert_int_equal(load_size(write_text("box.in", LMP_SMALL), "elements guessed"), 2);
  HM_T(PetscOptionsSetValue(NULL, "-lammps_types", "C,H"));
  assert_int_equal(load_size(write_text("data.typed", LMP_SMALL), NULL), 2);
  HM_T(PetscOptionsClearValue(NULL, "-lammps_types"));
  /* PDB by content (a record name on line 1), and forced over a misleading name */
  assert_int_equal(load_size(write_text("mol.txt", "REMARK   1 no extension\n" PDB_TWO), NULL), 2);
  assert_int_equal(load_size(write_text("mol.dat", PDB_TWO), NULL), 2);
  HM_T(PetscOptionsSetValue(NULL, "-structure_format", "pdb"));
  assert_int_equal(load_size(write_text("pdb_named.xyz", PDB_TWO), NULL), 2);
  HM_T(PetscOptionsClearValue(NULL, "-structure_format"));
  expect_fail(write_text("pdb_named2.xyz", PDB_TWO), 1, "is not an atom count");
  /* the API does the same without the options database */
  {
    HMReader r;
    HM_T(HMReaderCreate(PETSC_COMM_SELF, &r));
    HM_T(HMReaderSetFormat(r, HM_FORMAT_LAMMPS));
    HM_T(HMReaderSetLAMMPSTypes(r, "N,H"));
    HM_T(HMReaderLoad(r, PETSC_COMM_SELF, write_text("lmp.xyz", LMP_SMALL), &sys));
    HM_T(HMSystemGetCell(sys, &hc, NULL, pbc));
    assert_true(hc && pbc[0] && pbc[1] && pbc[2]);
    HM_T(HMSystemDestroy(&sys));
    HM_T(HMReaderDestroy(&r));
  }
  /* mmCIF is refused by name and by content, not handed to the XYZ reader */
  expect_fail(write_text("1abc.cif", "data_1ABC\nloop_\n_atom_site.group_PDB\n"), 0, "unsupported format: mmCIF");
  expect_fail(write_text("entry.txt", "data_1ABC\n#\nloop_\n_atom_site.group_PDB\n"), 0, "unsupported format: mmCIF");
  expect_fail(write_text("nodata", "# a comment\n_atom_site.id\n"), 0, "unsupported format: mmCIF");
  HM_T(PetscOptionsSetValue(NULL, "-structure_format", "cif"));
  reader_options_fail();
  HM_T(PetscOptionsClearValue(NULL, "-structure_format"));
}

static const char *write_gz(const char *name, const char *text)
{
  const char *path = tmp_path(name);
  gzFile      f    = gzopen(path, "wb");

  assert_non_null(f);
  assert_int_equal(gzwrite(f, text, (unsigned)strlen(text)), (int)strlen(text));
  assert_int_equal(gzclose(f), Z_OK);
  return path;
}

static void test_gzip(void **state)
{
  HMSystem      a, b;
  PetscInt      n;
  const double *xa, *xb;
  (void)state;

  /* the same bits as the plain file, by name (.pdb.gz) and by content (.gz of a LAMMPS file) */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, data_path("fragment.pdb"), &a));
  {
    FILE  *f = fopen(data_path("fragment.pdb"), "rb");
    char   buf[16384];
    size_t k;
    assert_non_null(f);
    k      = fread(buf, 1, sizeof(buf) - 1, f);
    buf[k] = '\0';
    fclose(f);
    HM_T(HMSystemLoad(PETSC_COMM_SELF, write_gz("fragment.pdb.gz", buf), &b));
  }
  HM_T(HMSystemGetSize(b, &n));
  HM_T(HMSystemGetPositions(a, &xa));
  HM_T(HMSystemGetPositions(b, &xb));
  assert_memory_equal(xa, xb, sizeof(double) * 3 * (size_t)n);
  HM_T(HMSystemDestroy(&a));
  HM_T(HMSystemDestroy(&b));
  assert_int_equal(load_size(write_gz("data.small.gz", LMP_SMALL), "elements guessed"), 2);
  assert_int_equal(load_size(write_gz("w.xyz.gz", "1\n\nO 0 0 0\n"), NULL), 1);
  /* a truncated stream is an error naming the file */
  {
    const char *p = write_gz("cut.xyz.gz", "3\ncomment\nO 0 0 0\nH 0.96 0 0\nH 0 0.96 0\n");
    FILE       *f = fopen(p, "r+b");
    long        len;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fclose(f);
    assert_int_equal(truncate(p, len - 12), 0);
    expect_fail(p, 0, "cut.xyz.gz");
  }
}

#define XYZ_FRAMES "2\nframe 0\nO 0 0 0\nH 0.96 0 0\n3\nframe 1\nO 0 0 0\nH 0.96 0 0\nH 0 0.96 0\n1\nframe 2\nO 1 2 3\n"

static void test_xyz_frames(void **state)
{
  HMSystem      sys;
  const double *x;
  (void)state;

  assert_int_equal(load_size(write_text("traj.xyz", XYZ_FRAMES), "the file has 3 frames; frame 0 read"), 2);
  HM_T(PetscOptionsSetValue(NULL, "-frame", "1"));
  assert_int_equal(load_size(write_text("traj1.xyz", XYZ_FRAMES), "frame 1 of 3 read"), 3);
  HM_T(PetscOptionsSetValue(NULL, "-frame", "-1"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("traj2.xyz", XYZ_FRAMES), &sys));
  HM_T(HMSystemGetPositions(sys, &x));
  assert_true(x[0] == 1 && x[1] == 2 && x[2] == 3);
  HM_T(HMSystemDestroy(&sys));
  HM_T(PetscOptionsSetValue(NULL, "-frame", "3"));
  expect_fail(write_text("traj3.xyz", XYZ_FRAMES), 0, "-frame 3 requested but the file has 3 complete frame(s)");
  /* a bad atom line in a later frame names its own line */
  HM_T(PetscOptionsSetValue(NULL, "-frame", "1"));
  expect_fail(write_text("traj4.xyz", "1\n\nO 0 0 0\n2\n\nO 0 0 0\nH 0.9x 0 0\n"), 7, "coordinate '0.9x' is not a finite number");
  /* -frame is for XYZ; PDB has -pdb_model */
  expect_fail(write_text("frame.pdb", PDB_TWO), 0, "-frame 1 applies to XYZ files only");
  HM_T(PetscOptionsClearValue(NULL, "-frame"));
  /* one frame and trailing blank lines: no note */
  assert_int_equal(load_size(write_text("one.xyz", "1\n\nO 0 0 0\n\n\n"), NULL), 1);
}

static void test_pbc_override(void **state)
{
  HMSystem  sys;
  PetscBool hc, pbc[3];
  (void)state;

  HM_T(PetscOptionsSetValue(NULL, "-pbc", "T,T,F"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("cell.xyz", "1\nLattice=\"5 0 0 0 5 0 0 0 5\"\nO 0 0 0\n"), &sys));
  HM_T(HMSystemGetCell(sys, &hc, NULL, pbc));
  assert_true(hc && pbc[0] && pbc[1] && !pbc[2]);
  HM_T(HMSystemDestroy(&sys));
  HM_T(PetscOptionsSetValue(NULL, "-pbc", "false"));
  assert_int_equal(load_size(write_text("cell2.xyz", "1\nLattice=\"5 0 0 0 5 0 0 0 5\"\nO 0 0 0\n"), "periodic axes F,F,F set by -pbc (the file says T,T,T)"), 1);
  HM_T(PetscOptionsSetValue(NULL, "-pbc", "true"));
  expect_fail(write_text("nocell.xyz", "1\n\nO 0 0 0\n"), 0, "makes the system periodic but the file gives no cell");
  HM_T(PetscOptionsSetValue(NULL, "-pbc", "T,F"));
  reader_options_fail();
  HM_T(PetscOptionsClearValue(NULL, "-pbc"));
}

/* A protein's CRYST1 is a crystal's cell: periodic only as a P 1 box that holds the atoms. */
static void test_pdb_cryst1_rule(void **state)
{
  HMSystem  sys;
  PetscBool hc, pbc[3];
  char      text[4096];
  (void)state;

  /* a 13.5 A chain in a 10 A P 1 cell: images would overlap */
  snprintf(text, sizeof(text), "%s", PDB_CRY);
  for (int i = 0; i < 10; i++)
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "ATOM  %5d  C   ALA A%4d    %8.3f   0.000   0.000  1.00  0.00           C\n", i + 1, i + 1, 1.5 * i);
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("long.pdb", text), &sys));
  HM_T(HMSystemGetCell(sys, &hc, NULL, pbc));
  assert_true(hc && !pbc[0] && !pbc[1] && !pbc[2]);
  HM_T(HMSystemDestroy(&sys));
  assert_int_equal(load_size(write_text("long2.pdb", text), "the atoms span 13.50 A along cell axis a but the cell is 10.00 A wide"), 10);
  HM_T(PetscOptionsSetValue(NULL, "-pbc", "true"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("long3.pdb", text), &sys));
  HM_T(PetscOptionsClearValue(NULL, "-pbc"));
  HM_T(HMSystemGetCell(sys, &hc, NULL, pbc));
  assert_true(hc && pbc[0] && pbc[1] && pbc[2]);
  HM_T(HMSystemDestroy(&sys));
  /* a crystal's space group: not periodic */
  assert_int_equal(load_size(write_text("p212121.pdb", "CRYST1   40.960   18.650   22.520  90.00  90.00  90.00 P 21 21 21    4\n" PDB_TWO), "has space group 'P 21 21 21'"), 2);
  /* the placeholder cell is said to be one */
  assert_int_equal(load_size(write_text("placeholder.pdb", "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1\n" PDB_TWO), "1 x 1 x 1 placeholder"), 2);
  /* a P 1 box holding the atoms stays periodic, without a note */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("box.pdb", PDB_CRY PDB_TWO), &sys));
  HM_T(HMSystemGetCell(sys, &hc, NULL, pbc));
  assert_true(hc && pbc[0] && pbc[1] && pbc[2]);
  HM_T(HMSystemDestroy(&sys));
  assert_int_equal(load_size(write_text("box2.pdb", PDB_CRY PDB_TWO), NULL), 2);
  /* refusals name serial, atom, residue and chain */
  expect_fail(write_text("ctx.pdb", PDB_O "ATOM     17  SG  CYS B  42       0.9x7   0.000   0.000  1.00  0.00           S\n"), 2, "is not a number (atom serial 17 'SG', residue CYS 42, chain B)");
  expect_fail(write_text("ctx2.pdb", PDB_O "HETATM  205  XX  LIG C 301       0.957   0.000   0.000  1.00  0.00\n"), 2, "names no known element (atom serial 205 'XX', residue LIG 301, chain C)");
}

/* PDB atom labels (name, residue, number, chain, serial, line) carried into the system; atoms named
   for messages; warnings for a C-alpha-only trace and for a biomolecule without hydrogens. */
static void test_pdb_labels(void **state)
{
  HMSystem           sys;
  const HMAtomLabel *lab;
  char               buf[256], text[2048] = "";
  (void)state;

  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("lab.pdb", "REMARK labels\n" PDB_O "ATOM     17  SG  CYS B  42A      0.957   0.000   0.000  1.00  0.00           S\n"), &sys));
  HM_T(HMSystemGetAtomLabels(sys, &lab));
  assert_non_null(lab);
  assert_string_equal(lab[0].name, "O");
  assert_string_equal(lab[0].resname, "HOH");
  assert_true(lab[0].chain == 'A' && lab[0].resid == 1 && lab[0].serial == 1 && lab[0].line == 2);
  assert_string_equal(lab[1].name, "SG");
  assert_string_equal(lab[1].resname, "CYS");
  assert_true(lab[1].chain == 'B' && lab[1].icode == 'A' && lab[1].resid == 42 && lab[1].serial == 17 && lab[1].line == 3);
  HM_T(HMSystemDescribeAtom(sys, 1, buf, sizeof(buf)));
  assert_non_null(strstr(buf, "lab.pdb:3: atom serial 17 'SG', residue CYS 42A, chain B"));
  HM_T(HMSystemSetAtomLabels(sys, NULL));
  HM_T(HMSystemGetAtomLabels(sys, &lab));
  assert_null(lab);
  HM_T(HMSystemDescribeAtom(sys, 1, buf, sizeof(buf)));
  assert_non_null(strstr(buf, "lab.pdb: atom 2"));
  HM_T(HMSystemDestroy(&sys));
  /* XYZ: no labels */
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("nolab.xyz", "2\n\nO 0 0 0\nH 0.96 0 0\n"), &sys));
  HM_T(HMSystemGetAtomLabels(sys, &lab));
  assert_null(lab);
  HM_T(HMSystemDestroy(&sys));
  /* a C-alpha-only trace */
  for (int i = 0; i < 4; i++) snprintf(text + strlen(text), sizeof(text) - strlen(text), "ATOM  %5d  CA  GLY A%4d    %8.3f   0.000   0.000  1.00  0.00           C\n", i + 1, i + 1, 3.8 * i);
  assert_int_equal(load_size(write_text("ca.pdb", text), "C-alpha-only trace"), 4);
  /* heavy atoms of residues without any hydrogen */
  assert_int_equal(load_size(write_text("noh.pdb", "ATOM      1  N   GLY A   1       0.000   0.000   0.000  1.00  0.00           N\nATOM      2  CA  GLY A   1       1.450   0.000   0.000  1.00  0.00           C\n"), "missing hydrogens"), 2);
  /* water with its hydrogens, not a biomolecule: no warning */
  assert_int_equal(load_size(write_text("water.pdb", PDB_TWO), NULL), 2);
}

/* Periodic atoms outside the cell are wrapped into it before anything else: a 16-atom diamond supercell
   with atoms shifted by whole lattice vectors (up to 3 cells away) reads as the wrapped structure, which
   written with %.17g reads back bit for bit, and the driver gives the same energy and memory estimate. */
static double log_memory(const char *path)
{
  char   line[4096];
  double mb = -1;
  FILE  *f  = fopen(path, "r");

  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) {
    const char *p = strstr(line, "memory estimate ");

    if (p) mb = strtod(p + 16, NULL);
  }
  fclose(f);
  return mb;
}

static void test_wrap_into_cell(void **state)
{
  static const int shift[16][3] = {
      {0,  0,  0 },
      {1,  0,  0 },
      {-1, 2,  0 },
      {0,  0,  -3},
      {2,  1,  1 },
      {0,  -1, 0 },
      {0,  0,  0 },
      {-2, -2, 3 },
      {0,  0,  0 },
      {1,  1,  1 },
      {0,  0,  0 },
      {0,  3,  0 },
      {-1, 0,  0 },
      {0,  0,  0 },
      {0,  0,  2 },
      {1,  -1, 0 },
  };
  const double  a = 3.567, L[3] = {2 * a, a, a};
  const char   *in = getenv("HIPMACE_INPUTS_DIR");
  char          text[8192], model[PETSC_MAX_PATH_LEN], args[8 * PETSC_MAX_PATH_LEN], raw[PETSC_MAX_PATH_LEN], wrapped[PETSC_MAX_PATH_LEN], s1[PETSC_MAX_PATH_LEN], s2[PETSC_MAX_PATH_LEN], lg1[PETSC_MAX_PATH_LEN], lg2[PETSC_MAX_PATH_LEN], h1[PETSC_MAX_PATH_LEN], h2[PETSC_MAX_PATH_LEN];
  HMSystem      sys, back, dia;
  const double *x, *xb, *dx;
  const char   *notes;
  double        e1, e2, m1, m2;
  (void)state;

  /* two diamond cells along x (the builder's fcc + a/4 basis, no displacement), atoms shifted by whole cells */
  HM_T(HMBuildDiamond(PETSC_COMM_SELF, 2, 1, 1, 0.0, 0, &dia));
  HM_T(HMSystemGetPositions(dia, &dx));
  snprintf(text, sizeof(text), "16\nLattice=\"%.17g 0 0 0 %.17g 0 0 0 %.17g\" Properties=species:S:1:pos:R:3 pbc=\"T T T\"\n", L[0], L[1], L[2]);
  for (int i = 0; i < 16; i++) {
    double y[3];

    for (int d = 0; d < 3; d++) y[d] = dx[3 * i + d] + shift[i][d] * L[d];
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "C %.17g %.17g %.17g\n", y[0], y[1], y[2]);
  }
  HM_T(HMSystemDestroy(&dia));
  snprintf(raw, sizeof(raw), "%s", write_text("unwrapped.xyz", text));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, raw, &sys));
  HM_T(HMSystemGetNotes(sys, &notes));
  if (!strstr(notes, "11 of 16 atoms lay outside the cell")) fail_msg("notes '%s'", notes);
  HM_T(HMSystemGetPositions(sys, &x));
  for (int i = 0; i < 16; i++)
    for (int d = 0; d < 3; d++)
      if (!(x[3 * i + d] >= 0 && x[3 * i + d] < L[d])) fail_msg("atom %d coordinate %d = %g outside [0, %g)", i, d, x[3 * i + d], L[d]);
  snprintf(wrapped, sizeof(wrapped), "%s", tmp_path("wrapped.xyz"));
  HM_T(HMSystemWriteXYZ(sys, wrapped));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, wrapped, &back));
  HM_T(HMSystemGetNotes(back, &notes));
  assert_string_equal(notes, ""); /* already inside: untouched */
  HM_T(HMSystemGetPositions(back, &xb));
  assert_memory_equal(x, xb, sizeof(double) * 48);
  HM_T(HMSystemDestroy(&back));
  HM_T(HMSystemDestroy(&sys));

  snprintf(model, sizeof(model), "%s/demo_hipmace.safetensors", in ? in : "inputs");
  snprintf(s1, sizeof(s1), "%s", tmp_path("s_unwrapped.json"));
  snprintf(lg1, sizeof(lg1), "%s", tmp_path("log_unwrapped.txt"));
  snprintf(h1, sizeof(h1), "%s", tmp_path("h_unwrapped.bin"));
  snprintf(args, sizeof(args), "-structure %s -model %s -modes none -summary %s -hessian_view binary:%s", raw, model, s1, h1);
  if (run(args, lg1)) fail_msg("hipmace %s failed (log %s)", args, lg1);
  snprintf(s2, sizeof(s2), "%s", tmp_path("s_wrapped.json"));
  snprintf(lg2, sizeof(lg2), "%s", tmp_path("log_wrapped.txt"));
  snprintf(h2, sizeof(h2), "%s", tmp_path("h_wrapped.bin"));
  snprintf(args, sizeof(args), "-structure %s -model %s -modes none -summary %s -hessian_view binary:%s", wrapped, model, s2, h2);
  if (run(args, lg2)) fail_msg("hipmace %s failed (log %s)", args, lg2);
  {
    /* the Hessians, written by PETSc's binary viewer, are the same bytes */
    char cmd[3 * PETSC_MAX_PATH_LEN];
    int  st;

    snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", h1, h2);
    st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) fail_msg("Hessians %s and %s differ", h1, h2);
  }
  e1 = summary_energy(s1, 16);
  e2 = summary_energy(s2, 16);
  if (e1 != e2) fail_msg("energy of the unwrapped input %.17g differs from the wrapped one %.17g", e1, e2);
  m1 = log_memory(lg1);
  m2 = log_memory(lg2);
  /* the unwrapped 16-atom crystal asked for 5.8 GB; the estimate includes the process's own
     baseline, which differs a little from run to run (more under the sanitizers) */
  if (!(m1 > 0 && m2 > 0 && fabs(m1 - m2) <= 0.1 * m2 + 1.0)) fail_msg("memory estimates %g MB (unwrapped) and %g MB (wrapped)", m1, m2);
}

/* LAMMPS: the 6-column hint, -lammps_style, a CHARMM crossterms header with its CMAP section. */
static void test_lammps_style(void **state)
{
  const char   *six = "title\n\n 2 atoms\n 2 atom types\n 0 6 xlo xhi\n 0 6 ylo yhi\n 0 6 zlo zhi\n\nMasses\n\n1 12.011\n2 1.008\n\nAtoms\n\n1 1 -0.4 1 0 0\n2 2 0.4 2.09 0 0\n";
  HMSystem      sys;
  const double *x;
  (void)state;

  expect_fail(write_text("six.data", six), 16, "write 'Atoms # charge' or 'Atoms # molecular' in the file, or use -lammps_style charge|molecular");
  HM_T(PetscOptionsSetValue(NULL, "-lammps_style", "charge"));
  HM_T(HMSystemLoad(PETSC_COMM_SELF, write_text("six2.data", six), &sys));
  HM_T(HMSystemGetPositions(sys, &x));
  assert_true(x[0] == 1 && x[3] == 2.09); /* columns 4-6 are the position */
  HM_T(HMSystemDestroy(&sys));
  HM_T(PetscOptionsSetValue(NULL, "-lammps_style", "molecular"));
  /* read as 'id mol type x y z', the charge column is taken for the type */
  expect_fail(write_text("six3.data", six), 16, "atom type '-0.4' is not in 1..2");
  HM_T(PetscOptionsClearValue(NULL, "-lammps_style"));
  /* crossterms (CHARMM CMAP) in the header and its section are read past */
  assert_int_equal(load_size(write_text("cmap.data", "title\n\n 2 atoms\n 2 atom types\n 1 crossterms\n 0 6 xlo xhi\n 0 6 ylo yhi\n 0 6 zlo zhi\n\nMasses\n\n1 12.011\n2 1.008\n\nAtoms # atomic\n\n1 1 1 0 0\n2 2 2.09 0 0\n\nCMAP\n\n1 1 1 2 1 2 1\n"), "elements guessed"), 2);
}

/* A close contact (two atoms 0.3 A apart) runs with a warning naming both atoms by their PDB labels. */
static void test_close_contact(void **state)
{
  const char *in = getenv("HIPMACE_INPUTS_DIR");
  char        model[PETSC_MAX_PATH_LEN], args[4 * PETSC_MAX_PATH_LEN], lg[PETSC_MAX_PATH_LEN], line[4096];
  const char *pdb  = write_text("close.pdb", PDB_O PDB_H "ATOM      3  H2  HOH A   1       0.957   0.300   0.000  1.00  0.00           H\nEND\n");
  int         hits = 0;
  FILE       *f;
  (void)state;

  snprintf(model, sizeof(model), "%s/demo_hipmace.safetensors", in ? in : "inputs");
  snprintf(lg, sizeof(lg), "%s", tmp_path("log_close.txt"));
  snprintf(args, sizeof(args), "-structure %s -model %s -modes none", pdb, model);
  if (run(args, lg)) fail_msg("hipmace %s failed (log %s)", args, lg);
  f = fopen(lg, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f))
    hits += strstr(line, "warning: close contact: ") && strstr(line, "close.pdb:2: atom serial 2 'H1', residue HOH 1, chain A and ") && strstr(line, "close.pdb:3: atom serial 3 'H2'") && strstr(line, " are 0.300 A apart");
  fclose(f);
  if (hits != 1) fail_msg("no close-contact warning in %s", lg);
}

/* Notes reach stdout once, however many ranks run. */
static void test_driver_notes(void **state)
{
  const char *in = getenv("HIPMACE_INPUTS_DIR"), *bin = getenv("HIPMACE_BIN");
  char        model[PETSC_MAX_PATH_LEN], cmd[8 * PETSC_MAX_PATH_LEN], line[4096];
  const char *traj = write_text("drv_traj.xyz", "3\nf0\nO 0 0 0.118\nH 0 0.757 -0.471\nH 0 -0.757 -0.471\n3\nf1\nO 0 0 0.119\nH 0 0.757 -0.471\nH 0 -0.757 -0.471\n");
  const char *lg   = tmp_path("drv_notes.txt");
  FILE       *f;
  int         notes = 0, st;
  (void)state;

  snprintf(model, sizeof(model), "%s/demo_hipmace.safetensors", in ? in : "inputs");
  /* a clean environment: this test's own singleton MPI variables would make mpiexec try to join it */
  snprintf(cmd, sizeof(cmd), "env -i PATH=\"$PATH\" HOME=\"$HOME\" ASAN_OPTIONS=\"$ASAN_OPTIONS\" UBSAN_OPTIONS=\"$UBSAN_OPTIONS\" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpiexec -n 2 --oversubscribe %s -structure %s -model %s -modes none > %s 2>&1", bin ? bin : "./drivers/hipmace", traj, model, lg);
  st = system(cmd);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fail_msg("%s failed (log %s)", cmd, lg);
  f = fopen(lg, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f)) notes += strstr(line, "note: the file has 2 frames; frame 0 read") != NULL;
  fclose(f);
  assert_int_equal(notes, 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_pdb_fragment, hm_nowrap_setup, hm_nowrap_teardown),
    cmocka_unit_test_setup_teardown(test_pdb_model_option, hm_nowrap_setup, hm_nowrap_teardown),
    cmocka_unit_test(test_pdb_placeholder_cell),
    cmocka_unit_test(test_pdb_malformed),
    cmocka_unit_test_setup_teardown(test_lammps_atomic, hm_nowrap_setup, hm_nowrap_teardown),
    cmocka_unit_test_setup_teardown(test_lammps_full, hm_nowrap_setup, hm_nowrap_teardown),
    cmocka_unit_test(test_lammps_inferred),
    cmocka_unit_test(test_lammps_malformed),
    cmocka_unit_test(test_driver_pdb),
    cmocka_unit_test(test_format_detection),
    cmocka_unit_test(test_gzip),
    cmocka_unit_test(test_xyz_frames),
    cmocka_unit_test(test_pbc_override),
    cmocka_unit_test(test_pdb_cryst1_rule),
    cmocka_unit_test(test_driver_notes),
    cmocka_unit_test(test_pdb_labels),
    cmocka_unit_test(test_wrap_into_cell),
    cmocka_unit_test(test_lammps_style),
    cmocka_unit_test(test_close_contact),
};

HM_TEST_MAIN(tests)

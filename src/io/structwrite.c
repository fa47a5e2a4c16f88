/* PDB and LAMMPS data output of a whole or distributed system, and the writer chosen by the file name
   (HMSystemWrite). Every rank formats its own atoms into the ordered MPI-IO file (hipmace/sys.h): no rank holds
   all atoms; a whole system is written by rank 0. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <hipmace/sys.h>

#include "ioimpl.h"

/* Atoms held here and written by this rank, the atom count and the input index of the first. */
static void Held(HMSystem sys, PetscMPIInt rank, PetscInt *n, PetscInt *N, PetscInt *r0)
{
  *n  = sys->distributed || !rank ? sys->n : 0;
  *N  = sys->distributed ? sys->N : sys->n;
  *r0 = sys->distributed ? sys->rstart : 0;
}

/* PDB and LAMMPS keep the cell in the standard orientation: a along x, b in the xy plane. */
static PetscErrorCode CheckStandardCell(HMSystem sys, const char path[])
{
  const double *c = sys->cell;

  PetscFunctionBegin;
  PetscCheck(!sys->hascell || (c[1] == 0 && c[2] == 0 && c[5] == 0 && c[0] > 0 && c[4] > 0 && c[8] > 0), sys->comm, PETSC_ERR_SUP, "%s: the cell is not in the standard orientation (a along x, b in the xy plane) that PDB and LAMMPS need; write .xyz or .hmb", path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemWritePDB(HMSystem sys, const char path[])
{
  PetscMPIInt   rank;
  PetscInt      n, N, r0;
  int           bad = 0;
  HMOrderedFile f;

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWritePDB: NULL argument");
  PetscCallMPI(MPI_Comm_rank(sys->comm, &rank));
  Held(sys, rank, &n, &N, &r0);
  PetscCheck(N <= 99999, sys->comm, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " atoms do not fit PDB's 5-digit serial numbers (at most 99999); write .xyz, .data or .hmb", path, N);
  PetscCall(CheckStandardCell(sys, path));
  for (PetscInt i = 0; i < 3 * n; i++) bad |= !(sys->pos[i] > -999.9995 && sys->pos[i] < 9999.9995);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, sys->comm));
  PetscCheck(!bad, sys->comm, PETSC_ERR_SUP, "%s: a coordinate outside PDB's columns (-999.999 to 9999.999 A); write .xyz, .data or .hmb", path);
  PetscCall(HMFileOrderedOpen(sys->comm, path, &f));
  if (!rank) {
    const double *c = sys->cell;

    PetscCall(HMFileOrderedPrintf(f, "REMARK   1 written by hipmace\n"));
    if (sys->hascell) {
      const double a = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]), b = sqrt(c[3] * c[3] + c[4] * c[4] + c[5] * c[5]), g = sqrt(c[6] * c[6] + c[7] * c[7] + c[8] * c[8]);
      const double al = acos((c[3] * c[6] + c[4] * c[7] + c[5] * c[8]) / (b * g)) * 180 / PETSC_PI, be = acos((c[0] * c[6] + c[1] * c[7] + c[2] * c[8]) / (a * g)) * 180 / PETSC_PI, ga = acos((c[0] * c[3] + c[1] * c[4] + c[2] * c[5]) / (a * b)) * 180 / PETSC_PI;

      PetscCall(HMFileOrderedPrintf(f, "CRYST1%9.3f%9.3f%9.3f%7.2f%7.2f%7.2f P 1           1\n", a, b, g, al, be, ga));
    }
  }
  for (PetscInt i = 0; i < n; i++) {
    const char   *el     = HMElementSymbol(sys->Z[i]);
    const double *x      = sys->pos + 3 * i;
    const int     serial = (int)(r0 + i + 1);

    if (sys->label) { /* the input's names, residues and chains: one-letter elements' names start in column 14 */
      const HMAtomLabel *l     = &sys->label[i];
      const PetscBool    shift = (PetscBool)(strlen(l->name) < 4 && strlen(el) == 1);

      PetscCall(HMFileOrderedPrintf(f, "ATOM  %5d %s%-*s %-3s %c%4d%c   %8.3f%8.3f%8.3f  1.00  0.00          %2s\n", serial, shift ? " " : "", shift ? 3 : 4, l->name, l->resname, l->chain, (int)(l->resid % 10000), l->icode, x[0], x[1], x[2], el));
    } else PetscCall(HMFileOrderedPrintf(f, "HETATM%5d %-4s MOL A   1    %8.3f%8.3f%8.3f  1.00  0.00          %2s\n", serial, el, x[0], x[1], x[2], el));
  }
  PetscCall(HMFileOrderedEndSegment(f));
  if (!rank) PetscCall(HMFileOrderedPrintf(f, "END\n"));
  PetscCall(HMFileOrderedCommit(&f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemWriteLAMMPS(HMSystem sys, const char path[])
{
  PetscMPIInt   rank;
  PetscInt      n, N, r0;
  double        c[9], lo[3] = {0, 0, 0}, hi[3], mlo[HM_MAX_Z + 1], mhi[HM_MAX_Z + 1];
  int           type[HM_MAX_Z + 1] = {0}, ntype = 0;
  HMOrderedFile f;

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWriteLAMMPS: NULL argument");
  PetscCallMPI(MPI_Comm_rank(sys->comm, &rank));
  Held(sys, rank, &n, &N, &r0);
  PetscCall(CheckStandardCell(sys, path));
  for (int d = 0; d < 9; d++) c[d] = sys->cell[d];
  if (!sys->hascell) { /* an open structure: a box 10 A larger than it on every side */
    for (int d = 0; d < 3; d++) lo[d] = PETSC_MAX_REAL, hi[d] = -PETSC_MAX_REAL;
    for (PetscInt i = 0; i < n; i++)
      for (int d = 0; d < 3; d++) {
        lo[d] = PetscMin(lo[d], sys->pos[3 * i + d]);
        hi[d] = PetscMax(hi[d], sys->pos[3 * i + d]);
      }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, lo, 3, MPI_DOUBLE, MPI_MIN, sys->comm));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, hi, 3, MPI_DOUBLE, MPI_MAX, sys->comm));
    for (int d = 0; d < 9; d++) c[d] = 0;
    for (int d = 0; d < 3; d++) {
      lo[d] -= 10;
      c[4 * d] = hi[d] + 10 - lo[d];
    }
  }
  /* one type per element (ascending Z) with one mass: the atoms of an element must agree on it */
  for (int z = 0; z <= HM_MAX_Z; z++) mlo[z] = PETSC_MAX_REAL, mhi[z] = -PETSC_MAX_REAL;
  for (PetscInt i = 0; i < n; i++) {
    mlo[sys->Z[i]] = PetscMin(mlo[sys->Z[i]], sys->mass[i]);
    mhi[sys->Z[i]] = PetscMax(mhi[sys->Z[i]], sys->mass[i]);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, mlo, HM_MAX_Z + 1, MPI_DOUBLE, MPI_MIN, sys->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, mhi, HM_MAX_Z + 1, MPI_DOUBLE, MPI_MAX, sys->comm));
  for (int z = 0; z <= HM_MAX_Z; z++) {
    if (mhi[z] < 0) continue;
    PetscCheck(mlo[z] == mhi[z], sys->comm, PETSC_ERR_SUP, "%s: the %s atoms have different masses (%.10g to %.10g amu) but a LAMMPS data file holds one mass per type; write .xyz or .hmb", path, HMElementSymbol(z), mlo[z], mhi[z]);
    type[z] = ++ntype;
  }
  PetscCall(HMFileOrderedOpen(sys->comm, path, &f));
  if (!rank) {
    PetscCall(HMFileOrderedPrintf(f, "LAMMPS data file written by hipmace (%s)\n\n%" PetscInt_FMT " atoms\n%d atom types\n\n", sys->hascell ? "periodic cell" : "open structure in a box", N, ntype));
    PetscCall(HMFileOrderedPrintf(f, "%.17g %.17g xlo xhi\n%.17g %.17g ylo yhi\n%.17g %.17g zlo zhi\n", lo[0], lo[0] + c[0], lo[1], lo[1] + c[4], lo[2], lo[2] + c[8]));
    if (c[3] != 0 || c[6] != 0 || c[7] != 0) PetscCall(HMFileOrderedPrintf(f, "%.17g %.17g %.17g xy xz yz\n", c[3], c[6], c[7]));
    PetscCall(HMFileOrderedPrintf(f, "\nMasses\n\n"));
    for (int z = 0; z <= HM_MAX_Z; z++)
      if (type[z]) PetscCall(HMFileOrderedPrintf(f, "%d %.17g # %s\n", type[z], mlo[z], HMElementSymbol(z)));
    PetscCall(HMFileOrderedPrintf(f, "\nAtoms # atomic\n\n"));
  }
  for (PetscInt i = 0; i < n; i++) PetscCall(HMFileOrderedPrintf(f, "%" PetscInt_FMT " %d %.17g %.17g %.17g\n", r0 + i + 1, type[sys->Z[i]], sys->pos[3 * i], sys->pos[3 * i + 1], sys->pos[3 * i + 2]));
  PetscCall(HMFileOrderedCommit(&f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HMOutputFormat HMOutputFormatFromName(const char path[], PetscBool *named)
{
  const HMIOName g = HMIONameGuess_Private(path, PETSC_FALSE);

  /* a name that says no format we write (none, or mmCIF) gets extended XYZ, and named says so */
  if (named) *named = (PetscBool)(g != NAME_UNKNOWN && g != NAME_MMCIF);
  return g == NAME_PDB ? HM_OUTPUT_PDB : g == NAME_LAMMPS ? HM_OUTPUT_LAMMPS :
      g == NAME_HMB                                       ? HM_OUTPUT_HMB :
                                                            HM_OUTPUT_XYZ;
}

PetscErrorCode HMSystemCheckWrite(HMSystem sys, const char path[])
{
  const HMOutputFormat f = HMOutputFormatFromName(path, NULL);

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemCheckWrite: NULL argument");
  if (f == HM_OUTPUT_PDB || f == HM_OUTPUT_LAMMPS) PetscCall(CheckStandardCell(sys, path));
  if (f == HM_OUTPUT_PDB) {
    PetscMPIInt rank;
    PetscInt    n, N, r0;

    PetscCallMPI(MPI_Comm_rank(sys->comm, &rank));
    Held(sys, rank, &n, &N, &r0);
    PetscCheck(N <= 99999, sys->comm, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " atoms do not fit PDB's 5-digit serial numbers (at most 99999); write .xyz, .data or .hmb", path, N);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemWrite(HMSystem sys, const char path[])
{
  HMOutputFormat f;

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWrite: NULL argument");
  f = HMOutputFormatFromName(path, NULL);
  if (f == HM_OUTPUT_PDB) PetscCall(HMSystemWritePDB(sys, path));
  else if (f == HM_OUTPUT_LAMMPS) PetscCall(HMSystemWriteLAMMPS(sys, path));
  else if (f == HM_OUTPUT_HMB) PetscCall(HMSystemWriteHMB(sys, path));
  else PetscCall(HMSystemWriteXYZ(sys, path));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Extended-XYZ output of a system: a whole system by rank 0 with stdio, a distributed one by every rank for its
   atoms through the ordered MPI-IO file (HMFileOrdered*: no rank holding all atoms); both give the same bytes. */
#include <stdio.h>
#include <hipmace/sys.h>

#include "ioimpl.h"

/* longest atom line: a 2-character symbol and 7 numbers of at most 24 characters each, separated by spaces */
#define HM_XYZ_LINE_MAX 256

/* One atom line (with its newline) into buf; returns its length. */
static size_t FormatAtomLine(char *buf, int Z, const double x[3], const double *mass, const double *f)
{
  int k = snprintf(buf, HM_XYZ_LINE_MAX, "%-2s %.17g %.17g %.17g", HMElementSymbol(Z), x[0], x[1], x[2]);

  if (mass) k += snprintf(buf + k, (size_t)(HM_XYZ_LINE_MAX - k), " %.17g", *mass);
  if (f) k += snprintf(buf + k, (size_t)(HM_XYZ_LINE_MAX - k), " %.17g %.17g %.17g", f[0], f[1], f[2]);
  buf[k++] = '\n';
  return (size_t)k;
}

size_t HMXYZLatticeField(const double cell[9], char buf[], size_t cap)
{
  const int k = snprintf(buf, cap, "Lattice=\"%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g\" ", cell[0], cell[1], cell[2], cell[3], cell[4], cell[5], cell[6], cell[7], cell[8]);
  return k < 0 ? 0 : PetscMin((size_t)k, cap ? cap - 1 : 0);
}

/* The comment line of HMSystemWriteXYZ (no newline). */
static void StructureComment(HMSystem sys, PetscBool masses, char *buf, size_t cap)
{
  size_t k = 0;

  buf[0] = '\0';
  if (sys->hascell) k += HMXYZLatticeField(sys->cell, buf, cap);
  k += (size_t)snprintf(buf + k, cap - k, "Properties=species:S:1:pos:R:3%s", masses ? ":masses:R:1" : "");
  if (sys->hascell) snprintf(buf + k, cap - k, " pbc=\"%c %c %c\"", sys->pbc[0] ? 'T' : 'F', sys->pbc[1] ? 'T' : 'F', sys->pbc[2] ? 'T' : 'F');
}

/* The file body with stdio; a failure sets the stream's error flag, which HMFileCommitAtomic reports. */
static void WriteXYZStream(HMSystem sys, FILE *f)
{
  char line[HM_XYZ_LINE_MAX], comment[1024];

  StructureComment(sys, sys->massgiven, comment, sizeof(comment));
  fprintf(f, "%" PetscInt_FMT "\n%s\n", sys->n, comment);
  for (PetscInt i = 0; i < sys->n; i++) {
    const size_t len = FormatAtomLine(line, sys->Z[i], sys->pos + 3 * i, sys->massgiven ? &sys->mass[i] : NULL, NULL);

    if (fwrite(line, 1, len, f) != len) return;
  }
}

PetscErrorCode HMSystemWriteXYZFrame(HMSystem sys, HMOrderedFile f, const char comment[], PetscBool masses, const double forces[])
{
  PetscMPIInt rank;
  PetscInt    n = 0;
  char        line[HM_XYZ_LINE_MAX];

  PetscFunctionBegin;
  PetscCheck(sys && f && comment, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWriteXYZFrame: NULL argument");
  PetscCallMPI(MPI_Comm_rank(sys->comm, &rank));
  if (sys->distributed || !rank) n = sys->n;
  if (!rank) PetscCall(HMFileOrderedPrintf(f, "%" PetscInt_FMT "\n%s\n", sys->distributed ? sys->N : sys->n, comment));
  for (PetscInt i = 0; i < n; i++) PetscCall(HMFileOrderedWrite(f, line, FormatAtomLine(line, sys->Z[i], sys->pos + 3 * i, masses ? &sys->mass[i] : NULL, forces ? forces + 3 * i : NULL)));
  PetscCall(HMFileOrderedEndSegment(f));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemWriteXYZ(HMSystem sys, const char path[])
{
  HMAtomicFile h;
  FILE        *f;

  PetscFunctionBegin;
  PetscCheck(sys && path, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemWriteXYZ: NULL argument");
  if (sys->distributed) {
    char          comment[1024];
    int           masses = sys->massgiven;
    HMOrderedFile of;

    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &masses, 1, MPI_INT, MPI_LOR, sys->comm));
    StructureComment(sys, (PetscBool)masses, comment, sizeof(comment));
    PetscCall(HMFileOrderedOpen(sys->comm, path, &of));
    PetscCall(HMSystemWriteXYZFrame(sys, of, comment, (PetscBool)masses, NULL));
    PetscCall(HMFileOrderedCommit(&of));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(HMFileOpenAtomic(sys->comm, path, &f, &h));
  if (f) WriteXYZStream(sys, f);
  PetscCall(HMFileCommitAtomic(&h));
  PetscFunctionReturn(PETSC_SUCCESS);
}

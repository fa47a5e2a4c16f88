/* Atomic systems: species, positions, masses and an optional (partly) periodic cell. */
#include <math.h>
#include "sys/sysimpl.h"
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "ioimpl.h"

PetscErrorCode HMSystemCheckCell_Private(MPI_Comm comm, const char where[], const double cell[9], const PetscBool pbc[3])
{
  PetscBool any = PETSC_FALSE;

  PetscFunctionBegin;
  for (int d = 0; d < 3; d++)
    if (pbc && pbc[d]) any = PETSC_TRUE;
  if (cell)
    for (int k = 0; k < 9; k++) PetscCheck(isfinite(cell[k]), comm, PETSC_ERR_ARG_WRONG, "%s: cell entry %d is not finite", where, k);
  if (!any) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(cell, comm, PETSC_ERR_ARG_WRONG, "%s: periodic boundaries requested but no cell (Lattice) given", where);
  {
    const double *a = cell, *b = cell + 3, *c = cell + 6;
    const double  det   = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
    const double  scale = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) * sqrt(b[0] * b[0] + b[1] * b[1] + b[2] * b[2]) * sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);

    /* relative test: a cell whose volume is round-off compared with |a||b||c| is degenerate */
    PetscCheck(scale > 0 && fabs(det) > 1e-12 * scale, comm, PETSC_ERR_ARG_WRONG, "%s: cell has zero volume (det %g)", where, det);
    PetscCheck(det > 0, comm, PETSC_ERR_ARG_WRONG, "%s: cell is left-handed (det %g < 0); reorder or negate a lattice vector", where, det);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemCreate(MPI_Comm comm, PetscInt n, const int Z[], const double pos[], const double cell[9], const PetscBool pbc[3], HMSystem *out)
{
  HMSystem sys;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMSystemCreate: NULL output");
  *out = NULL;
  PetscCheck(n > 0, comm, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemCreate: number of atoms %" PetscInt_FMT " must be positive", n);
  PetscCheck(Z && pos, comm, PETSC_ERR_ARG_NULL, "HMSystemCreate: Z and pos must not be NULL");
  for (PetscInt i = 0; i < n; i++) {
    PetscCheck(Z[i] >= 1 && Z[i] <= HM_MAX_Z, comm, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemCreate: atom %" PetscInt_FMT " has atomic number %d outside 1..%d", i, Z[i], HM_MAX_Z);
    for (int d = 0; d < 3; d++) PetscCheck(isfinite(pos[3 * i + d]), comm, PETSC_ERR_ARG_WRONG, "HMSystemCreate: atom %" PetscInt_FMT " has a non-finite coordinate", i);
  }
  PetscCall(HMSystemCheckCell_Private(comm, "HMSystemCreate", cell, pbc));

  PetscCall(PetscNew(&sys));
  sys->comm = comm;
  sys->n    = n;
  PetscCall(PetscMalloc3(n, &sys->Z, 3 * n, &sys->pos, n, &sys->mass));
  PetscCall(PetscArraycpy(sys->Z, Z, n));
  PetscCall(PetscArraycpy(sys->pos, pos, 3 * n));
  for (PetscInt i = 0; i < n; i++) sys->mass[i] = HMElementMass(Z[i]);
  sys->massgiven = PETSC_FALSE;
  sys->hascell   = cell ? PETSC_TRUE : PETSC_FALSE;
  for (int k = 0; k < 9; k++) sys->cell[k] = cell ? cell[k] : 0.0;
  for (int d = 0; d < 3; d++) sys->pbc[d] = (cell && pbc && pbc[d]) ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(PetscStrallocpy("(memory)", &sys->source));
  *out = sys;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemSetPositions(HMSystem sys, const double pos[])
{
  PetscFunctionBegin;
  PetscCheck(sys && (pos || !sys->n), PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemSetPositions: NULL argument");
  for (PetscInt i = 0; i < 3 * sys->n; i++) PetscCheck(isfinite(pos[i]), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: atom %" PetscInt_FMT " has a non-finite coordinate", sys->source, (sys->distributed ? sys->rstart : 0) + i / 3);
  if (sys->n) PetscCall(PetscArraycpy(sys->pos, pos, 3 * sys->n));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemSetCell(HMSystem sys, const double cell[9])
{
  const double *c = cell;

  PetscFunctionBegin;
  PetscCheck(sys && cell, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemSetCell: NULL argument");
  PetscCheck(sys->hascell, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HMSystemSetCell on a structure without a cell", sys->source);
  for (int k = 0; k < 9; k++) PetscCheck(isfinite(cell[k]), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HMSystemSetCell: non-finite cell", sys->source);
  PetscCheck(HMMat3Det(c) != 0, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "%s: HMSystemSetCell: a cell of zero volume", sys->source);
  PetscCall(PetscArraycpy(sys->cell, cell, 9));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemSetMasses(HMSystem sys, const double m[])
{
  PetscFunctionBegin;
  PetscCheck(sys && m, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemSetMasses: NULL argument");
  for (PetscInt i = 0; i < sys->n; i++) PetscCheck(isfinite(m[i]) && m[i] > 0, sys->comm, PETSC_ERR_ARG_OUTOFRANGE, "%s: mass %g of atom %" PetscInt_FMT " must be positive and finite", sys->source, m[i], i);
  PetscCall(PetscArraycpy(sys->mass, m, sys->n));
  sys->massgiven = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemDestroy(HMSystem *psys)
{
  PetscFunctionBegin;
  if (!psys || !*psys) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscFree3((*psys)->Z, (*psys)->pos, (*psys)->mass));
  PetscCall(PetscFree((*psys)->source));
  PetscCall(PetscFree((*psys)->notes));
  PetscCall(PetscFree((*psys)->label));
  PetscCall(PetscFree(*psys));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_CHECKED(HMSystem, Size, PetscInt, n)

HM_ACCESSOR_GET_CHECKED(HMSystem, Positions, const double *, pos)

HM_ACCESSOR_GET_CHECKED(HMSystem, AtomicNumbers, const int *, Z)

HM_ACCESSOR_GET_CHECKED(HMSystem, Masses, const double *, mass)

PetscErrorCode HMSystemGetCell(HMSystem sys, PetscBool *hascell, double cell[9], PetscBool pbc[3])
{
  PetscFunctionBegin;
  PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemGetCell: NULL system");
  HMCellCopyOut_Private(sys->hascell, sys->cell, sys->pbc, hascell, cell, pbc);
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_CHECKED(HMSystem, Source, const char *, source)

PetscErrorCode HMSystemGetNotes(HMSystem sys, const char **notes)
{
  PetscFunctionBegin;
  PetscCheck(sys && notes, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemGetNotes: NULL argument");
  *notes = sys->notes ? sys->notes : "";
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_CHECKED(HMSystem, AtomLabels, const HMAtomLabel *, label)

PetscErrorCode HMSystemSetAtomLabels(HMSystem sys, const HMAtomLabel labels[])
{
  PetscFunctionBegin;
  PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemSetAtomLabels: NULL system");
  if (!labels) {
    PetscCall(PetscFree(sys->label));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  if (!sys->label) PetscCall(PetscMalloc1(sys->n, &sys->label));
  PetscCall(PetscArraycpy(sys->label, labels, sys->n));
  for (PetscInt i = 0; i < sys->n; i++) {
    sys->label[i].name[sizeof(sys->label[i].name) - 1]       = '\0';
    sys->label[i].resname[sizeof(sys->label[i].resname) - 1] = '\0';
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemGetDistribution(HMSystem sys, PetscBool *distributed, PetscInt *N, PetscInt *rstart)
{
  PetscFunctionBegin;
  PetscCheck(sys, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemGetDistribution: NULL system");
  if (distributed) *distributed = sys->distributed;
  if (N) *N = sys->distributed ? sys->N : sys->n;
  if (rstart) *rstart = sys->distributed ? sys->rstart : 0;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSystemDescribeAtom(HMSystem sys, PetscInt i, char buf[], size_t len)
{
  PetscFunctionBegin;
  PetscCheck(sys && buf && len, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSystemDescribeAtom: NULL argument");
  if (sys->distributed) { /* i is a global index; labels (PDB) are never read in parallel */
    PetscCheck(i >= 0 && i < sys->N, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemDescribeAtom: atom %" PetscInt_FMT " not in 0..%" PetscInt_FMT, i, sys->N - 1);
    snprintf(buf, len, "%s: atom %" PetscInt_FMT, sys->source, i + 1);
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCheck(i >= 0 && i < sys->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemDescribeAtom: atom %" PetscInt_FMT " not in 0..%" PetscInt_FMT, i, sys->n - 1);
  if (sys->label) {
    const HMAtomLabel *l          = &sys->label[i];
    char               serial[32] = "?", icode[2] = {l->icode == ' ' ? '\0' : l->icode, '\0'};

    if (l->serial) snprintf(serial, sizeof(serial), "%" PetscInt_FMT, l->serial);
    snprintf(buf, len, "%s:%" PetscInt64_FMT ": atom serial %s '%s', residue %s %" PetscInt_FMT "%s, chain %c", sys->source, l->line, serial, l->name, l->resname[0] ? l->resname : "?", l->resid, icode, l->chain == ' ' ? '-' : l->chain);
  } else snprintf(buf, len, "%s: atom %" PetscInt_FMT, sys->source, i + 1);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Which atoms [lo, hi) of input order a system holds here: its run when distributed, all N for a whole one. */
static void HMSystemHeld_Private(HMSystem s, PetscInt *lo, PetscInt *hi)
{
  *lo = s ? (s->distributed ? s->rstart : 0) : 0;
  *hi = s ? *lo + s->n : 0;
}

PetscErrorCode HMSystemRedistribute(MPI_Comm comm, HMSystem src, PetscInt rstart, PetscInt n, HMSystem *out)
{
  PetscMPIInt  rank, size, root, mine, *sc, *sd, *rc, *rd;
  PetscInt     held[2], want[2] = {rstart, n}, *hall, *wall, lo, hi;
  double       hdr[17] = {0};
  size_t       srclen  = 0;
  HMSystem     s;
  MPI_Datatype t3, tl;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMSystemRedistribute: NULL output");
  *out = NULL;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  /* a whole (not distributed) system is taken from the lowest rank that has one; otherwise every rank's run */
  mine = (src && !src->distributed) ? rank : size;
  PetscCallMPI(MPI_Allreduce(&mine, &root, 1, MPI_INT, MPI_MIN, comm));
  HMSystemHeld_Private(src, &held[0], &held[1]);
  if (root < size && rank != root) held[0] = held[1] = 0; /* only the root's copy is sent */
  {
    PetscInt bad[2] = {root == size && !src, rstart < 0 || n < 0};
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bad, 2, MPIU_INT, MPI_MAX, comm));
    PetscCheck(!bad[0], comm, PETSC_ERR_ARG_NULL, "HMSystemRedistribute: no rank holds a whole system and some ranks hold none");
    PetscCheck(!bad[1], comm, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemRedistribute: negative atom range asked for");
  }
  if (root == size) root = 0;
  if (rank == root) {
    hdr[0] = (double)(src->distributed ? src->N : src->n);
    hdr[1] = src->hascell;
    for (int k = 0; k < 9; k++) hdr[2 + k] = src->cell[k];
    for (int k = 0; k < 3; k++) hdr[11 + k] = src->pbc[k];
    hdr[14] = src->massgiven;
    hdr[15] = src->label != NULL;
    srclen  = strlen(src->source) + 1;
    hdr[16] = (double)srclen;
  }
  PetscCallMPI(MPI_Bcast(hdr, 17, MPI_DOUBLE, root, comm));
  srclen = (size_t)hdr[16];
  {
    PetscInt over = rstart + n > (PetscInt)hdr[0];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &over, 1, MPIU_INT, MPI_MAX, comm));
    PetscCheck(!over, comm, PETSC_ERR_ARG_OUTOFRANGE, "HMSystemRedistribute: atoms beyond the %" PetscInt_FMT " of the system asked for", (PetscInt)hdr[0]);
  }

  PetscCall(PetscNew(&s));
  s->comm        = comm;
  s->n           = n;
  s->N           = (PetscInt)hdr[0];
  s->rstart      = rstart;
  s->distributed = (PetscBool)(rstart != 0 || n != s->N);
  s->hascell     = (PetscBool)(hdr[1] != 0);
  for (int k = 0; k < 9; k++) s->cell[k] = hdr[2 + k];
  for (int k = 0; k < 3; k++) s->pbc[k] = (PetscBool)(hdr[11 + k] != 0);
  s->massgiven = (PetscBool)(hdr[14] != 0);
  PetscCall(PetscMalloc1(srclen, &s->source));
  if (rank == root) PetscCall(PetscArraycpy(s->source, src->source, srclen));
  PetscCallMPI(MPI_Bcast(s->source, (PetscMPIInt)srclen, MPI_CHAR, root, comm));
  PetscCall(PetscMalloc3(n + 1, &s->Z, 3 * n + 3, &s->pos, n + 1, &s->mass));
  if (hdr[15] != 0) PetscCall(PetscMalloc1(n + 1, &s->label));

  /* what each rank sends to each: the overlap of its held run with the other's wanted run (O(P) bookkeeping);
     not HMExchange: no counts to exchange, and the wanted runs, so the send ranges, may overlap */
  PetscCall(PetscMalloc2(2 * size, &hall, 2 * size, &wall));
  PetscCallMPI(MPI_Allgather(held, 2, MPIU_INT, hall, 2, MPIU_INT, comm));
  PetscCallMPI(MPI_Allgather(want, 2, MPIU_INT, wall, 2, MPIU_INT, comm));
  PetscCall(PetscMalloc4(size, &sc, size, &sd, size, &rc, size, &rd));
  for (PetscMPIInt q = 0; q < size; q++) {
    lo    = PetscMax(held[0], wall[2 * q]);
    hi    = PetscMin(held[1], wall[2 * q] + wall[2 * q + 1]);
    sc[q] = (PetscMPIInt)PetscMax(hi - lo, 0);
    sd[q] = (PetscMPIInt)(sc[q] ? lo - held[0] : 0);
    lo    = PetscMax(hall[2 * q], rstart);
    hi    = PetscMin(hall[2 * q + 1], rstart + n);
    rc[q] = (PetscMPIInt)PetscMax(hi - lo, 0);
    rd[q] = (PetscMPIInt)(rc[q] ? lo - rstart : 0);
  }
  PetscCallMPI(MPI_Type_contiguous(3, MPI_DOUBLE, &t3));
  PetscCallMPI(MPI_Type_commit(&t3));
  PetscCallMPI(MPI_Type_contiguous((PetscMPIInt)sizeof(HMAtomLabel), MPI_BYTE, &tl));
  PetscCallMPI(MPI_Type_commit(&tl));
  PetscCallMPI(MPI_Alltoallv(src ? src->Z : NULL, sc, sd, MPI_INT, s->Z, rc, rd, MPI_INT, comm));
  PetscCallMPI(MPI_Alltoallv(src ? src->pos : NULL, sc, sd, t3, s->pos, rc, rd, t3, comm));
  PetscCallMPI(MPI_Alltoallv(src ? src->mass : NULL, sc, sd, MPI_DOUBLE, s->mass, rc, rd, MPI_DOUBLE, comm));
  if (s->label) PetscCallMPI(MPI_Alltoallv(src ? src->label : NULL, sc, sd, tl, s->label, rc, rd, tl, comm));
  PetscCallMPI(MPI_Type_free(&t3));
  PetscCallMPI(MPI_Type_free(&tl));
  PetscCall(PetscFree4(sc, sd, rc, rd));
  PetscCall(PetscFree2(hall, wall));
  *out = s;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* HMExchange (src/sys/exchange.c), the all-to-all with variable counts, on 1 to 4 ranks: random counts with
   zeros and a rank that sends nothing, four kinds of items (ints, triples of doubles, 13-byte records, pairs of
   int64), each checked item by item forward and then answered along the reversed pattern; the pattern's
   counts and displacements; the refusals of negative counts and of more than INT_MAX items sent or received. */
#include <petscsys.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "sys/sysimpl.h"
#include "hmrand.h"
#include "hmcheck.h"

static int failures = 0;
static int grank;

#define MAXP 8
typedef struct {
  unsigned char b[13];
} Rec13;

/* item j from rank p to rank q (ranks of the communicator); answer != 0: the value sent back for it */
static PetscInt64 Key(PetscMPIInt p, PetscMPIInt q, PetscInt j, int answer)
{
  return (((PetscInt64)p * MAXP + q) * 1000 + j) * (answer ? -3 : 1) + (answer ? 7 : 0);
}

static void Fill(PetscInt64 key, PetscInt k, PetscInt *iv, double *dv, Rec13 *rv, PetscInt64 *lv)
{
  iv[k] = (PetscInt)key;
  for (int c = 0; c < 3; c++) dv[3 * k + c] = (double)key + 0.25 * c;
  for (int c = 0; c < 13; c++) rv[k].b[c] = (unsigned char)((key * 31 + c * 17) & 0xff);
  lv[2 * k]     = key * 1000003;
  lv[2 * k + 1] = -key;
}

/* whether item k of the four arrays holds key */
static int Holds(PetscInt64 key, PetscInt k, const PetscInt *iv, const double *dv, const Rec13 *rv, const PetscInt64 *lv)
{
  PetscInt   i;
  double     d[3];
  Rec13      r;
  PetscInt64 l[2];

  Fill(key, 0, &i, d, &r, l);
  return iv[k] == i && !memcmp(dv + 3 * k, d, sizeof(d)) && !memcmp(rv + k, &r, sizeof(r)) && lv[2 * k] == l[0] && lv[2 * k + 1] == l[1];
}

static PetscErrorCode ExchangeAll(const HMExchange *x, PetscBool reverse, const PetscInt *si, const double *sd, const Rec13 *sr, const PetscInt64 *sl, PetscInt *ri, double *rd, Rec13 *rr, PetscInt64 *rl)
{
#define EXCHANGE(type, bs, s, r) (reverse ? HMExchangeReverse(x, type, bs, s, r) : HMExchangeForward(x, type, bs, s, r))
  PetscFunctionBegin;
  PetscCall(EXCHANGE(MPIU_INT, 1, si, ri));
  PetscCall(EXCHANGE(MPI_DOUBLE, 3, sd, rd));
  PetscCall(EXCHANGE(MPI_BYTE, (PetscMPIInt)sizeof(Rec13), sr, rr));
  PetscCall(EXCHANGE(MPI_INT64_T, 2, sl, rl));
#undef EXCHANGE
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* one trial on comm: every rank draws the whole count matrix from the same stream */
static PetscErrorCode Trial(MPI_Comm comm, uint64_t *rng, int trial)
{
  PetscMPIInt size, rank;
  PetscInt    cnt[MAXP][MAXP], mine[MAXP], nin = 0, nout = 0;
  HMExchange  x;
  PetscInt   *si, *ri, *bi;
  double     *sd, *rd, *bd;
  Rec13      *sr, *rr, *br;
  PetscInt64 *sl, *rl, *bl;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  for (PetscMPIInt p = 0; p < size; p++)
    for (PetscMPIInt q = 0; q < size; q++) {
      const double u = hm_urand(rng);
      cnt[p][q]      = u < 0.3 ? 0 : u < 0.9 ? (PetscInt)(hm_urand(rng) * 7) :
                                               (PetscInt)(hm_urand(rng) * 60);
      if (p == trial % size || (trial % 5 == 4)) cnt[p][q] = 0; /* a rank that sends nothing; every fifth trial: nobody sends */
    }
  for (PetscMPIInt q = 0; q < size; q++) {
    mine[q] = cnt[rank][q];
    nout += cnt[rank][q];
    nin += cnt[q][rank];
  }
  PetscCall(HMExchangeCreate(comm, mine, &x));
  CHECK(x.nsend == nout && x.nrecv == nin, "trial %d: %" PetscInt_FMT " items sent and %" PetscInt_FMT " received, %" PetscInt_FMT " and %" PetscInt_FMT " expected", trial, x.nsend, x.nrecv, nout, nin);
  CHECK(x.sdisp[0] == 0 && x.rdisp[0] == 0 && x.sdisp[size] == nout && x.rdisp[size] == nin, "trial %d: displacements do not span the buffers", trial);
  for (PetscMPIInt q = 0; q < size; q++) {
    CHECK(x.scount[q] == cnt[rank][q] && x.rcount[q] == cnt[q][rank], "trial %d: counts with rank %d: %d sent, %d received; %" PetscInt_FMT " and %" PetscInt_FMT " expected", trial, (int)q, (int)x.scount[q], (int)x.rcount[q], cnt[rank][q], cnt[q][rank]);
    CHECK(x.sdisp[q + 1] == x.sdisp[q] + x.scount[q] && x.rdisp[q + 1] == x.rdisp[q] + x.rcount[q], "trial %d: displacement of rank %d is not the prefix sum", trial, (int)q + 1);
  }
  /* forward: the items in rank order, received in source-rank order */
  PetscCall(PetscMalloc4(nout + 1, &si, 3 * nout + 3, &sd, nout + 1, &sr, 2 * nout + 2, &sl));
  PetscCall(PetscMalloc4(nin + 1, &ri, 3 * nin + 3, &rd, nin + 1, &rr, 2 * nin + 2, &rl));
  PetscCall(PetscMalloc4(nout + 1, &bi, 3 * nout + 3, &bd, nout + 1, &br, 2 * nout + 2, &bl));
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt j = 0; j < cnt[rank][q]; j++) Fill(Key(rank, q, j, 0), x.sdisp[q] + j, si, sd, sr, sl);
  PetscCall(ExchangeAll(&x, PETSC_FALSE, si, sd, sr, sl, ri, rd, rr, rl));
  for (PetscMPIInt p = 0; p < size; p++)
    for (PetscInt j = 0; j < cnt[p][rank]; j++) CHECK(Holds(Key(p, rank, j, 0), x.rdisp[p] + j, ri, rd, rr, rl), "trial %d: item %" PetscInt_FMT " from rank %d is wrong", trial, j, (int)p);
  /* reversed: each received item answered in place, back to its sender at the place of the question */
  for (PetscMPIInt p = 0; p < size; p++)
    for (PetscInt j = 0; j < cnt[p][rank]; j++) Fill(Key(p, rank, j, 1), x.rdisp[p] + j, ri, rd, rr, rl);
  PetscCall(ExchangeAll(&x, PETSC_TRUE, ri, rd, rr, rl, bi, bd, br, bl));
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt j = 0; j < cnt[rank][q]; j++) CHECK(Holds(Key(rank, q, j, 1), x.sdisp[q] + j, bi, bd, br, bl), "trial %d: answer %" PetscInt_FMT " from rank %d is wrong", trial, j, (int)q);
  PetscCall(PetscFree4(si, sd, sr, sl));
  PetscCall(PetscFree4(ri, rd, rr, rl));
  PetscCall(PetscFree4(bi, bd, br, bl));
  PetscCall(HMExchangeDestroy(&x));
  CHECK(!x.scount && !x.rdisp && !x.nsend && !x.nrecv, "trial %d: the pattern is not emptied by HMExchangeDestroy", trial);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* counts refused: negative (every rank), more than INT_MAX sent (every rank), more than INT_MAX received (rank 0) */
static PetscErrorCode Refusals(MPI_Comm comm)
{
  PetscMPIInt    size, rank;
  PetscInt       c[MAXP];
  HMExchange     x;
  PetscErrorCode e;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  for (PetscMPIInt q = 0; q < size; q++) c[q] = 1;
  c[size - 1] = -1;
  e           = HMExchangeCreate(comm, c, &x);
  CHECK(e == PETSC_ERR_ARG_OUTOFRANGE, "a negative count gave error %d", (int)e);
  PetscCall(HMExchangeDestroy(&x));
  if (size > 1) {
    for (PetscMPIInt q = 0; q < size; q++) c[q] = q < 2 ? INT_MAX / 2 + 1 : 0;
    e = HMExchangeCreate(comm, c, &x);
    CHECK(e == PETSC_ERR_ARG_OUTOFRANGE, "%d items to send gave error %d", (int)(c[0] + c[1]), (int)e);
    PetscCall(HMExchangeDestroy(&x));
    for (PetscMPIInt q = 0; q < size; q++) c[q] = q ? 0 : INT_MAX / 2 + 1;
    e = HMExchangeCreate(comm, c, &x);
    CHECK(rank ? e == PETSC_SUCCESS && x.nrecv == 0 && x.nsend == c[0] : e == PETSC_ERR_ARG_OUTOFRANGE, "%d ranks sending %d items to rank 0: error %d", (int)size, (int)c[0], (int)e);
    PetscCall(HMExchangeDestroy(&x));
  }
  PetscCall(PetscPopErrorHandler());
  PetscFunctionReturn(PETSC_SUCCESS);
}

int main(int argc, char **argv)
{
  PetscMPIInt size, rank;
  MPI_Comm    rev;
  uint64_t    rng = 0x9E3779B97F4A7C15ull;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  grank = rank;
  PetscCheck(size <= MAXP, PETSC_COMM_WORLD, PETSC_ERR_SUP, "test_exchange: at most %d ranks", MAXP);
  /* the world, and the world in reversed rank order */
  PetscCallMPI(MPI_Comm_split(PETSC_COMM_WORLD, 0, size - 1 - rank, &rev));
  for (int t = 0; t < 40; t++) PetscCall(Trial(t % 2 ? rev : PETSC_COMM_WORLD, &rng, t));
  PetscCall(Refusals(PETSC_COMM_WORLD));
  PetscCallMPI(MPI_Comm_free(&rev));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD));
  if (!rank) printf("test_exchange: %d failure(s) on %d rank(s)\n", failures, (int)size);
  PetscCall(PetscFinalize());
  return failures ? 1 : 0;
}

/* Exact sums over the ranks: a fixed-point superaccumulator of every finite double, one integer all-reduce, one rounding. */
#include <hipmace/sys.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* A finite double is +-m 2^(p - 1074) with integers 0 <= m < 2^53 and 0 <= p <= 2045: an integer number of
   units 2^-1074, below 2^2098 of them. Sums are kept as such integers, in base-2^32 digits held in int64
   words: each value adds less than 2^33 to a digit, so 2^28 values fit between carry passes, and after a
   pass every digit but the top one is in [0, 2^32), so the all-reduce can add 2^31 ranks' digits without
   overflow. Integer addition is exact and associative: nothing depends on the order. 68 digits (2^2176)
   hold the sum of 2^63 values below 2^2098 units. */
#define HM_SUMX_DIGITS 68
#define HM_SUMX_WORDS  (HM_SUMX_DIGITS + 3) /* + counts of NaN, +Inf, -Inf */
#define HM_SUMX_BATCH  ((PetscInt)1 << 28)
_Static_assert(HM_SUMX_WORDS == HM_SUM_EXACT_WORDS, "HM_SUM_EXACT_WORDS (sys.h) must match the accumulator");

static inline void SumxAdd(PetscInt64 d[], double x)
{
  uint64_t b, m;
  int      ef, p;
  memcpy(&b, &x, sizeof(b));
  ef = (int)((b >> 52) & 0x7ff);
  m  = b & (((uint64_t)1 << 52) - 1);
  if (ef == 0x7ff) {
    d[HM_SUMX_DIGITS + (m ? 0 : (b >> 63) ? 2 :
                                            1)]++;
    return;
  }
  if (ef) m |= (uint64_t)1 << 52; /* normal: implicit bit; the exponent of the lowest bit is ef - 1075 */
  p = ef ? ef - 1 : 0;
  {
    const int        k = p >> 5, s = p & 31;
    const uint64_t   lo = (m & 0xffffffffu) << s, hi = (m >> 32) << s; /* < 2^63 and < 2^52 */
    const PetscInt64 a0 = (PetscInt64)(lo & 0xffffffffu), a1 = (PetscInt64)((lo >> 32) + (hi & 0xffffffffu)), a2 = (PetscInt64)(hi >> 32);
    if (b >> 63) {
      d[k] -= a0;
      d[k + 1] -= a1;
      d[k + 2] -= a2;
    } else {
      d[k] += a0;
      d[k + 1] += a1;
      d[k + 2] += a2;
    }
  }
}

/* Carries: digits 0..D-2 into [0, 2^32), the sign left in the top digit. */
static inline void SumxCarry(PetscInt64 d[])
{
  for (int k = 0; k < HM_SUMX_DIGITS - 1; k++) {
    /* low 32 bits of the two's complement = d mod 2^32; the rest is an exact multiple of 2^32 (no right
       shift of a negative number, whose result C leaves to the implementation) */
    const PetscInt64 lo = (PetscInt64)((uint64_t)d[k] & 0xffffffffu);
    d[k + 1] += (d[k] - lo) / ((PetscInt64)1 << 32);
    d[k] = lo;
  }
}

/* The double nearest to the exact sum held in d (ties to even), built from its bits rather than by libm
   arithmetic, so that the rounding is the only one. d is destroyed. */
static double SumxRound(PetscInt64 d[])
{
  const PetscInt64 *cnt = d + HM_SUMX_DIGITS;
  uint64_t          bits, mant, shift = 0;
  PetscBool         neg = PETSC_FALSE;
  int               h, t = 0;
  double            x;

  if (cnt[0] || (cnt[1] && cnt[2])) return (double)NAN;
  if (cnt[1]) return (double)INFINITY;
  if (cnt[2]) return -(double)INFINITY;
  SumxCarry(d);
  if (d[HM_SUMX_DIGITS - 1] < 0) {
    neg = PETSC_TRUE;
    for (int k = 0; k < HM_SUMX_DIGITS; k++) d[k] = -d[k];
    SumxCarry(d);
  }
  for (h = HM_SUMX_DIGITS - 1; h >= 0 && !d[h]; h--) {}
  if (h < 0) return 0.0;
  while (t < 64 && ((uint64_t)d[h] >> t)) t++;                                  /* bit length of the leading digit */
  if (32 * h + t <= 53) mant = (uint64_t)d[0] | (h ? (uint64_t)d[1] << 32 : 0); /* below 2^53 units: exact */
  else {
    /* the 64 bits from the leading one down, then round to 53 of them; everything lower is sticky */
    const uint64_t d1 = (uint64_t)d[h - 1], d2 = h >= 2 ? (uint64_t)d[h - 2] : 0;
    const uint64_t w      = ((uint64_t)d[h] << (64 - t)) | (d1 << (32 - t)) | (d2 >> t);
    PetscBool      sticky = (PetscBool)((w & 0x3ff) || (d2 & (((uint64_t)1 << t) - 1)));
    for (int k = 0; k < h - 2 && !sticky; k++) sticky = (PetscBool)(d[k] != 0);
    shift = (uint64_t)(32 * h + t - 53);
    mant  = w >> 11;
    if (((w >> 10) & 1) && (sticky || (mant & 1))) mant++;
  }
  /* exponent field shift + 1 and the implicit bit of mant add up; a carry to 2^53 moves to the next binade,
     and below 2^52 (shift 0) this is the subnormal encoding */
  bits = (shift << 52) + mant;
  if (bits >= (uint64_t)0x7ff << 52) bits = (uint64_t)0x7ff << 52; /* beyond DBL_MAX rounds to Inf */
  if (neg) bits |= (uint64_t)1 << 63;
  memcpy(&x, &bits, sizeof(x));
  return x;
}

PetscErrorCode HMSumExact(MPI_Comm comm, PetscInt nv, PetscInt nrows, const double rows[], double sums[])
{
  PetscInt64 *acc;

  PetscFunctionBegin;
  PetscCheck(nv >= 0 && nrows >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "HMSumExact: %" PetscInt_FMT " columns, %" PetscInt_FMT " rows", nv, nrows);
  if (nv == 0) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCall(PetscCalloc1(nv * HM_SUMX_WORDS, &acc));
  for (PetscInt i0 = 0, i1; i0 < nrows; i0 = i1) {
    i1 = nrows - i0 > HM_SUMX_BATCH ? i0 + HM_SUMX_BATCH : nrows;
    for (PetscInt i = i0; i < i1; i++)
      for (PetscInt c = 0; c < nv; c++) SumxAdd(acc + c * HM_SUMX_WORDS, rows[i * nv + c]);
    for (PetscInt c = 0; c < nv; c++) SumxCarry(acc + c * HM_SUMX_WORDS);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, acc, (PetscMPIInt)(nv * HM_SUMX_WORDS), MPIU_INT64, MPI_SUM, comm));
  for (PetscInt c = 0; c < nv; c++) sums[c] = SumxRound(acc + c * HM_SUMX_WORDS);
  PetscCall(PetscFree(acc));
  PetscFunctionReturn(PETSC_SUCCESS);
}

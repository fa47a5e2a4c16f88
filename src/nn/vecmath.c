/* Vectorised elementary functions of the radial features: normalised SiLU over arrays, the polynomial envelope
   and the Bessel basis of many edges (the per-element libm calls were a tenth of a Hessian evaluation). */
#include "nn/nnimpl.h"
#include <hipmace/so3.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
  #include <immintrin.h>
#endif

/* The polynomial envelope of the radial basis (one value; the batch loops below and radial.c use it). */
double HMPolynomialCutoff(double d, double rc, int p)
{
  const double t = d / rc;
  double       tp, env;

  if (!(d < rc)) return 0.0;
  tp  = PetscPowRealInt(t, p);
  env = 1.0 - (p + 1.0) * (p + 2.0) / 2.0 * tp + p * (p + 2.0) * tp * t - p * (p + 1.0) / 2.0 * tp * t * t;
  return env;
}

/* silu_n over an array, with an exp written so the loops vectorise (libm's exp is a call per element
   and took a third of the kernel's time). exp(t) = 2^k exp(r), k = round(t / ln 2), |r| <= ln2 / 2,
   r from a two-part ln 2 (k ln2_hi is exact), exp(r) by its Taylor series to r^13 (truncation
   < 2e-16 relative), 2^k assembled in the exponent bits: within 2 ulp of exp. Arguments are clamped to
   [-708, 708], where silu is 0 or x far below round-off; NaN passes through (x is a factor). */
#if defined(__AVX512F__)
/* AVX-512: the division is a 14-bit reciprocal estimate refined by two Newton steps (relative error
   below 2^-52 before the last rounding; a divide would cost as much as the rest together). The tail
   of the array goes through the same instructions under a mask, so an element's bits do not depend on
   its position (bitwise rank invariance). */
static inline __attribute__((always_inline)) __m512d SiluNorm8(__m512d xv)
{
  const __m512d log2e = _mm512_set1_pd(1.4426950408889634), ln2hi = _mm512_set1_pd(6.93147180369123816490e-01), ln2lo = _mm512_set1_pd(1.90821492927058770002e-10);
  const __m512d shifter = _mm512_set1_pd(6755399441055744.0), one = _mm512_set1_pd(1.0);
  const __m512d t  = _mm512_min_pd(_mm512_max_pd(_mm512_sub_pd(_mm512_setzero_pd(), xv), _mm512_set1_pd(-708.0)), _mm512_set1_pd(708.0));
  __m512d       kd = _mm512_fmadd_pd(t, log2e, shifter), r, p, e, d, q;
  const __m512i ki = _mm512_castpd_si512(kd);
  kd               = _mm512_sub_pd(kd, shifter);
  r                = _mm512_fnmadd_pd(kd, ln2hi, t);
  r                = _mm512_fnmadd_pd(kd, ln2lo, r);
  {
    /* exp(r) - the Taylor polynomial to r^13 - by Estrin's scheme: the same terms as Horner's rule in a
       tree of depth 5 instead of a chain of 13 dependent FMAs (the chain, not the FMA count, limited
       the loop) */
    const __m512d r2 = _mm512_mul_pd(r, r), r4 = _mm512_mul_pd(r2, r2), r8 = _mm512_mul_pd(r4, r4);
    const __m512d a0 = _mm512_fmadd_pd(r, one, one);
    const __m512d a1 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 6.0), _mm512_set1_pd(0.5));
    const __m512d a2 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 120.0), _mm512_set1_pd(1.0 / 24.0));
    const __m512d a3 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 5040.0), _mm512_set1_pd(1.0 / 720.0));
    const __m512d a4 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 362880.0), _mm512_set1_pd(1.0 / 40320.0));
    const __m512d a5 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 39916800.0), _mm512_set1_pd(1.0 / 3628800.0));
    const __m512d a6 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 6227020800.0), _mm512_set1_pd(1.0 / 479001600.0));
    const __m512d b0 = _mm512_fmadd_pd(a1, r2, a0), b1 = _mm512_fmadd_pd(a3, r2, a2), b2 = _mm512_fmadd_pd(a5, r2, a4);
    const __m512d d0 = _mm512_fmadd_pd(b1, r4, b0), d1 = _mm512_fmadd_pd(a6, r4, b2);
    p = _mm512_fmadd_pd(d1, r8, d0);
  }
  /* the low bits of kd held k in two's complement (|k| < 1023): 2^k has exponent field k + 1023 */
  e = _mm512_mul_pd(p, _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(ki, _mm512_set1_epi64(1023)), 52)));
  d = _mm512_add_pd(one, e);
  q = _mm512_rcp14_pd(d);
  q = _mm512_fmadd_pd(q, _mm512_fnmadd_pd(d, q, one), q);
  q = _mm512_fmadd_pd(q, _mm512_fnmadd_pd(d, q, one), q);
  return _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(HM_SILU_NORM), xv), q);
}

/* Four vectors per iteration: independent chains that hide the latency of the polynomial. */
void HMSiLUNormArray(PetscInt n, double x[])
{
  PetscInt i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512d a = SiluNorm8(_mm512_loadu_pd(x + i)), b = SiluNorm8(_mm512_loadu_pd(x + i + 8));
    const __m512d c = SiluNorm8(_mm512_loadu_pd(x + i + 16)), d = SiluNorm8(_mm512_loadu_pd(x + i + 24));
    _mm512_storeu_pd(x + i, a);
    _mm512_storeu_pd(x + i + 8, b);
    _mm512_storeu_pd(x + i + 16, c);
    _mm512_storeu_pd(x + i + 24, d);
  }
  for (; i < n; i += 8) {
    const __mmask8 mk = n - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_pd(x + i, mk, SiluNorm8(_mm512_maskz_loadu_pd(mk, x + i)));
  }
}
#else
/* Portable: libm per element (the build for other CPUs; the AVX-512 version is the one that is tuned). */
void HMSiLUNormArray(PetscInt n, double x[])
{
  for (PetscInt i = 0; i < n; i++) x[i] = HMSiLUNorm(x[i]);
}
#endif

#if defined(__AVX512F__)
/* sin of 8 arguments of moderate size (here |x| < nbessel pi): x = k pi/2 + r with a two-part pi/2
   (the FMA makes k C1 exact), |r| <= pi/4, then the Taylor series of sin r to r^15 or of cos r to r^16
   by quadrant (truncation below 1e-16 relative). Within 2 ulp of libm's sin for these arguments. */
static inline __attribute__((always_inline)) __m512d Sin8(__m512d x)
{
  const __m512d shifter = _mm512_set1_pd(6755399441055744.0), one = _mm512_set1_pd(1.0);
  __m512d       kd = _mm512_fmadd_pd(x, _mm512_set1_pd(0.63661977236758134308), shifter), r, z, ps, pc, sr, cr, res;
  const __m512i ki = _mm512_castpd_si512(kd);
  __mmask8      useCos, neg;
  kd     = _mm512_sub_pd(kd, shifter);
  r      = _mm512_fnmadd_pd(kd, _mm512_set1_pd(1.57079632679489655800e+00), x);
  r      = _mm512_fnmadd_pd(kd, _mm512_set1_pd(6.12323399573676603587e-17), r);
  z      = _mm512_mul_pd(r, r);
  ps     = _mm512_set1_pd(-1.0 / 1307674368000.0);
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(1.0 / 6227020800.0));
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(-1.0 / 39916800.0));
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(1.0 / 362880.0));
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(-1.0 / 5040.0));
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(1.0 / 120.0));
  ps     = _mm512_fmadd_pd(ps, z, _mm512_set1_pd(-1.0 / 6.0));
  sr     = _mm512_fmadd_pd(_mm512_mul_pd(r, z), ps, r);
  pc     = _mm512_set1_pd(1.0 / 20922789888000.0);
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(-1.0 / 87178291200.0));
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(1.0 / 479001600.0));
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(-1.0 / 3628800.0));
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(1.0 / 40320.0));
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(-1.0 / 720.0));
  pc     = _mm512_fmadd_pd(pc, z, _mm512_set1_pd(1.0 / 24.0));
  cr     = _mm512_fmadd_pd(_mm512_mul_pd(z, z), pc, _mm512_fnmadd_pd(z, _mm512_set1_pd(0.5), one));
  useCos = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(1));
  neg    = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(2));
  res    = _mm512_mask_blend_pd(useCos, sr, cr);
  return _mm512_mask_sub_pd(res, neg, _mm512_setzero_pd(), res);
}
#endif

void HMRadialBasisEvalBatch(const HMRadialBasis *rb, PetscInt n, const double d[], double out[])
{
#if defined(__AVX512F__)
  /* prefactor (sin(w_k d) / d) env(d), the formula of HMRadialBasisEval, one edge's nbessel values per
     vector: the same instructions for every edge */
  const PetscInt nb   = rb->nbessel;
  const __m512d  pref = _mm512_set1_pd(rb->prefactor);
  for (PetscInt k = 0; k < n; k++) {
    const __m512d dv = _mm512_set1_pd(d[k]), ev = _mm512_set1_pd(HMPolynomialCutoff(d[k], rb->rc, rb->p));
    for (PetscInt b = 0; b < nb; b += 8) {
      const __mmask8 mk = nb - b >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (nb - b)) - 1u);
      const __m512d  s  = Sin8(_mm512_mul_pd(_mm512_maskz_loadu_pd(mk, rb->freq + b), dv));
      _mm512_mask_storeu_pd(out + k * nb + b, mk, _mm512_mul_pd(_mm512_mul_pd(pref, _mm512_div_pd(s, dv)), ev));
    }
  }
#else
  for (PetscInt k = 0; k < n; k++) HMRadialBasisEval(rb, d[k], out + k * rb->nbessel);
#endif
}

void HMSiLUNormArrayS(PetscInt n, float x[])
{
  double buf[256];

  for (PetscInt i0 = 0; i0 < n; i0 += 256) {
    const PetscInt nc = PetscMin(256, n - i0);
    for (PetscInt i = 0; i < nc; i++) buf[i] = x[i0 + i];
    HMSiLUNormArray(nc, buf);
    for (PetscInt i = 0; i < nc; i++) x[i0 + i] = (float)buf[i];
  }
}

/* Fused multiply-add for the hot loops (private to the library). */
#pragma once

#include <math.h>

/* With hardware FMA (every x86-64-v3 and newer core, and the AVX-512 kernels) fma() compiles to one
   instruction and vectorises; it is exactly rounded, so vector and scalar code give the same bits.
   Without it (a baseline x86-64 build) the libm call would be slow, so the loops use a multiply and an
   add instead: within one build every element still sees the same operations. */
#if defined(__FMA__) || defined(__AVX512F__)
  #define HM_FMA(a, b, c) fma((a), (b), (c))
#else
  #define HM_FMA(a, b, c) ((a) * (b) + (c))
#endif

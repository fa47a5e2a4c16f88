/* Reproducible random numbers and random structures for the test programs (no cmocka needed: test_pario
   includes this alone). */
#pragma once

#include <stdint.h>
#include <petscsys.h>

/* Deterministic xorshift64 stream (failures are reproducible): the next state of *s. */
static inline uint64_t hm_rand64(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Uniform in [0,1) from the top 53 bits of the next state of *s. */
static inline double hm_urand(uint64_t *s)
{
  return (double)(hm_rand64(s) >> 11) / 9007199254740992.0;
}

/* n atoms of H, C, N, O placed at random in the cell (rows a, b, c), at least dmin apart (with the 26
   neighbouring images when periodic); draws from the stream *s. */
static inline void hm_random_atoms(uint64_t *s, PetscInt n, const double cell[9], PetscBool periodic, double dmin, int *Z, double *pos)
{
  static const int el[] = {1, 6, 7, 8};
  const int        p    = periodic ? 1 : 0;
  for (PetscInt i = 0; i < n; i++) {
    Z[i] = el[(int)(hm_urand(s) * 4) % 4];
    for (;;) {
      double f[3] = {hm_urand(s), hm_urand(s), hm_urand(s)};
      int    ok   = 1;
      for (int a = 0; a < 3; a++) pos[3 * i + a] = f[0] * cell[a] + f[1] * cell[3 + a] + f[2] * cell[6 + a];
      for (PetscInt j = 0; j < i && ok; j++)
        for (int x = -p; x <= p && ok; x++)
          for (int y = -p; y <= p && ok; y++)
            for (int z = -p; z <= p && ok; z++) {
              double d2 = 0;
              for (int a = 0; a < 3; a++) {
                const double d = pos[3 * i + a] - pos[3 * j + a] + x * cell[a] + y * cell[3 + a] + z * cell[6 + a];
                d2 += d * d;
              }
              ok = d2 > dmin * dmin;
            }
      if (ok) break;
    }
  }
}

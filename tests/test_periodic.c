/* Periodic cells: a diamond crystal's Hessian has the symmetry of the crystal, and the Γ-point Hessian of
   the unit cell equals the 2x2x2 supercell's folded back (every image adds into its block). */
#include "hmtest.h"
#include <hipmace/model.h>
#include <petscmat.h>

#define A0 3.567

/* diamond: nrep^3 conventional cells, atoms ordered cell-major (cell index, then basis atom) */
static PetscInt diamond(int nrep, int *Z, double *pos, double cell[9])
{
  static const double basis[8][3] = {
      {0,   0,   0  },
      {0,   .5,  .5 },
      {.5,  0,   .5 },
      {.5,  .5,  0  },
      {.25, .25, .25},
      {.25, .75, .75},
      {.75, .25, .75},
      {.75, .75, .25}
  };
  PetscInt n = 0;
  for (int x = 0; x < nrep; x++)
    for (int y = 0; y < nrep; y++)
      for (int z = 0; z < nrep; z++)
        for (int b = 0; b < 8; b++) {
          Z[n]           = 6;
          pos[3 * n]     = A0 * (x + basis[b][0]);
          pos[3 * n + 1] = A0 * (y + basis[b][1]);
          pos[3 * n + 2] = A0 * (z + basis[b][2]);
          n++;
        }
  for (int k = 0; k < 9; k++) cell[k] = 0;
  cell[0] = cell[4] = cell[8] = A0 * nrep;
  return n;
}

static void test_diamond(void **state)
{
  char     mp[PETSC_MAX_PATH_LEN];
  HMModel  m;
  int      Z1[8], Z2[64];
  double   p1[24], p2[192], c1[9], c2[9], E1, E2, scale, err;
  PetscInt n1, n2;
  (void)state;

  hm_golden_path("model_small.safetensors", mp, sizeof(mp));
  HM_T(HMModelLoad(PETSC_COMM_SELF, mp, &m));
  n1 = diamond(1, Z1, p1, c1);
  n2 = diamond(2, Z2, p2, c2);
  /* the unit cell (3.567 A) is much thinner than 2 x hessian_r_max (14 A): each block sums many images */
  const PetscBool pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  double         *H1     = hm_hessian_dense(m, n1, Z1, p1, c1, pbc, &E1);
  double         *H2     = hm_hessian_dense(m, n2, Z2, p2, c2, pbc, &E2);
  scale                  = hm_max_abs(9 * n1 * n1, H1);
  print_message("diamond: E(unit) %.12f, E(2x2x2)/8 %.12f, max|H| %.4f\n", E1, E2 / 8, scale);
  assert_true(scale > 1e-3);
  /* extensive energy: 1e-12 relative (sums over 8x more atoms) */
  assert_true(PetscAbsReal(E2 - 8 * E1) <= 1e-12 * PetscAbsReal(E2));

  /* site symmetry T_d: every diagonal block is a multiple of the identity, and all atoms are equivalent.
     Round-off of sums over a few hundred images: 1e-12 relative */
  err = 0;
  for (PetscInt i = 0; i < n1; i++)
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) {
        const double v = H1[(3 * i + a) * 3 * n1 + 3 * i + b], ref = a == b ? H1[0] : 0.0;
        err = PetscMax(err, PetscAbsReal(v - ref));
      }
  print_message("  diagonal blocks: max deviation from a common multiple of I: %.1e\n", err / scale);
  assert_true(err <= 1e-12 * scale);

  /* supercell: translation by a unit-cell vector maps blocks onto themselves */
  err = 0;
  for (PetscInt ci = 0; ci < 8; ci++)
    for (PetscInt bi = 0; bi < 8; bi++)
      for (PetscInt bj = 0; bj < 64; bj++) {
        /* translate atom pair (bi in cell 0, bj) by cell ci */
        const int      tx = (int)(ci / 4), ty = (int)((ci / 2) % 2), tz = (int)(ci % 2);
        const int      cj = (int)(bj / 8), jx = cj / 4, jy = (cj / 2) % 2, jz = cj % 2;
        const int      cjt = (((jx + tx) % 2) * 2 + (jy + ty) % 2) * 2 + (jz + tz) % 2;
        const PetscInt i2 = ci * 8 + bi, j2 = cjt * 8 + bj % 8;
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) err = PetscMax(err, PetscAbsReal(H2[(3 * i2 + a) * 192 + 3 * j2 + b] - H2[(3 * bi + a) * 192 + 3 * bj + b]));
      }
  print_message("  2x2x2 translation symmetry: %.1e\n", err / scale);
  assert_true(err <= 1e-12 * scale);

  /* Γ point: the unit-cell block (i, j) equals the sum over the 8 supercell copies of j */
  err = 0;
  for (PetscInt i = 0; i < 8; i++)
    for (PetscInt j = 0; j < 8; j++)
      for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
          double s = 0;
          for (PetscInt c = 0; c < 8; c++) s += H2[(3 * i + a) * 192 + 3 * (c * 8 + j) + b];
          err = PetscMax(err, PetscAbsReal(s - H1[(3 * i + a) * 24 + 3 * j + b]));
        }
  print_message("  unit cell vs folded supercell: %.1e\n", err / scale);
  assert_true(err <= 1e-12 * scale);
  free(H1);
  free(H2);
  HM_T(HMModelDestroy(&m));
}

HM_TEST_MAIN_OF(test_diamond)

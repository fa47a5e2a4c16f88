/* Wigner 3j tensors in the e3nn 0.4.4 real basis, computed from SU(2) Clebsch-Gordan coefficients. */
#include <hipmace/so3.h>
#include <complex.h>

#define W3J_DIM (2 * HM_W3J_LMAX + 1)

/* Entries smaller than this after normalisation are cancellation residue of exact zeros (true
   non-zero entries are > 1e-3 for l <= 6); they are set to 0 so sparsity and the sign rule see
   the exact structure. */
#define W3J_ZERO 1e-13

/* n! is exact in double for n <= 22; the largest argument here is 3*HM_W3J_LMAX + 1 = 19. */
static double Factorial(int n)
{
  double f = 1.0;
  for (int k = 2; k <= n; k++) f *= k;
  return f;
}

/* <j1 m1 j2 m2 | J M> (Condon-Shortley phase) by Racah's single-sum formula; requires M = m1 + m2
   and |m| <= j for all three. */
static double ClebschGordan(int j1, int m1, int j2, int m2, int J, int M)
{
  const int kmin = PetscMax(0, PetscMax(j2 - J - m1, j1 - J + m2));
  const int kmax = PetscMin(j1 + j2 - J, PetscMin(j1 - m1, j2 + m2));
  double    pre, sum = 0.0;

  pre = sqrt((2 * J + 1) * Factorial(J + j1 - j2) * Factorial(J - j1 + j2) * Factorial(j1 + j2 - J) / Factorial(j1 + j2 + J + 1));
  pre *= sqrt(Factorial(J + M) * Factorial(J - M) * Factorial(j1 - m1) * Factorial(j1 + m1) * Factorial(j2 - m2) * Factorial(j2 + m2));
  for (int k = kmin; k <= kmax; k++) {
    const double d = Factorial(k) * Factorial(j1 + j2 - J - k) * Factorial(j1 - m1 - k) * Factorial(j2 + m2 - k) * Factorial(J - j2 + m1 + k) * Factorial(J - j1 - m2 + k);
    sum += ((k & 1) ? -1.0 : 1.0) / d;
  }
  return pre * sum;
}

/* Row m (-l..l) of the unitary map complex Y_l^m -> real SH: the standard real harmonics
   (sqrt2 (-1)^m Re/Im Y_l^|m|). Evaluated with the polar axis along y and (z, x) as the
   equatorial axes these are exactly e3nn's polynomials, signs included (checked against the
   reference tensors), and an invariant tensor does not care which proper rotation relabels the
   axes, so the complex-basis 3j symbol maps directly onto e3nn's basis. */
static void RealBasisRow(int m, int col[2], double complex q[2])
{
  const double h = 1.0 / sqrt(2.0), sg = (m & 1) ? -1.0 : 1.0;

  if (m < 0) {
    col[0] = m;
    q[0]   = I * h;
    col[1] = -m;
    q[1]   = -I * sg * h;
  } else if (m == 0) {
    col[0] = 0;
    q[0]   = 1.0;
    col[1] = 0;
    q[1]   = 0.0;
  } else {
    col[0] = m;
    q[0]   = sg * h;
    col[1] = -m;
    q[1]   = h;
  }
}

/* The e3nn tensor of a sorted triple l1 <= l2 <= l3. */
static void W3jSorted(int l1, int l2, int l3, double S[])
{
  const int      n1 = 2 * l1 + 1, n2 = 2 * l2 + 1, n3 = 2 * l3 + 1, n = n1 * n2 * n3;
  double         T[W3J_DIM * W3J_DIM * W3J_DIM], re[W3J_DIM * W3J_DIM * W3J_DIM], im[W3J_DIM * W3J_DIM * W3J_DIM];
  double         nre = 0, nim = 0, norm, sign, pivot;
  const double  *src;
  int            c1[2], c2[2], c3[2];
  double complex q1[2], q2[2], q3[2];

  /* complex basis: 3j symbol (l1 l2 l3; m1 m2 m3) up to a constant factor */
  for (int i = 0; i < n; i++) T[i] = 0.0;
  for (int m1 = -l1; m1 <= l1; m1++)
    for (int m2 = -l2; m2 <= l2; m2++) {
      const int m3 = -(m1 + m2);
      if (m3 < -l3 || m3 > l3) continue;
      T[((m1 + l1) * n2 + (m2 + l2)) * n3 + (m3 + l3)] = ((m3 & 1) ? -1.0 : 1.0) * ClebschGordan(l1, m1, l2, m2, l3, -m3);
    }

  /* to the real basis; the result is a single power of i times a real tensor */
  for (int a = 0; a < n1; a++) {
    RealBasisRow(a - l1, c1, q1);
    for (int b = 0; b < n2; b++) {
      RealBasisRow(b - l2, c2, q2);
      for (int c = 0; c < n3; c++) {
        double complex s = 0.0;
        RealBasisRow(c - l3, c3, q3);
        for (int i = 0; i < 2; i++)
          for (int j = 0; j < 2; j++)
            for (int k = 0; k < 2; k++) s += q1[i] * q2[j] * q3[k] * T[((c1[i] + l1) * n2 + (c2[j] + l2)) * n3 + (c3[k] + l3)];
        re[(a * n2 + b) * n3 + c] = creal(s);
        im[(a * n2 + b) * n3 + c] = cimag(s);
        nre += creal(s) * creal(s);
        nim += cimag(s) * cimag(s);
      }
    }
  }
  src  = nre >= nim ? re : im;
  norm = sqrt(nre >= nim ? nre : nim);
  for (int i = 0; i < n; i++) {
    S[i] = src[i] / norm;
    if (fabs(S[i]) < W3J_ZERO) S[i] = 0.0;
  }

  /* e3nn sign rule: the centre entry positive, else the first non-zero entry */
  pivot = S[(l1 * n2 + l2) * n3 + l3];
  for (int i = 0; pivot == 0.0 && i < n; i++) pivot = S[i];
  sign = pivot < 0.0 ? -1.0 : 1.0;
  for (int i = 0; i < n; i++) S[i] *= sign;
}

static PetscErrorCode W3jCheck(int l1, int l2, int l3)
{
  PetscFunctionBegin;
  PetscCheck(l1 >= 0 && l2 >= 0 && l3 >= 0 && l1 <= HM_W3J_LMAX && l2 <= HM_W3J_LMAX && l3 <= HM_W3J_LMAX, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "wigner 3j (%d,%d,%d): each l must be in 0..%d", l1, l2, l3, HM_W3J_LMAX);
  PetscCheck(l3 >= PetscAbsInt(l1 - l2) && l3 <= l1 + l2, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "wigner 3j (%d,%d,%d): not a triangle (need |l1-l2| <= l3 <= l1+l2)", l1, l2, l3);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMWigner3j(int l1, int l2, int l3, double C[])
{
  const int l[3] = {l1, l2, l3}, n[3] = {2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1};
  int       ord[3] = {0, 1, 2}, ns1, ns2, odd = 0, idx[3];
  double    S[W3J_DIM * W3J_DIM * W3J_DIM], sign;

  PetscFunctionBegin;
  PetscCall(W3jCheck(l1, l2, l3));
  PetscCheck(C, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "wigner 3j (%d,%d,%d): NULL output array", l1, l2, l3);
  /* stable insertion sort of the axes by l; each swap flips the permutation parity */
  for (int i = 1; i < 3; i++)
    for (int j = i; j > 0 && l[ord[j - 1]] > l[ord[j]]; j--) {
      const int t = ord[j];
      ord[j]      = ord[j - 1];
      ord[j - 1]  = t;
      odd ^= 1;
    }
  W3jSorted(l[ord[0]], l[ord[1]], l[ord[2]], S);
  ns1  = n[ord[1]];
  ns2  = n[ord[2]];
  sign = (odd && ((l1 + l2 + l3) & 1)) ? -1.0 : 1.0;
  for (idx[0] = 0; idx[0] < n[0]; idx[0]++)
    for (idx[1] = 0; idx[1] < n[1]; idx[1]++)
      for (idx[2] = 0; idx[2] < n[2]; idx[2]++) C[(idx[0] * n[1] + idx[1]) * n[2] + idx[2]] = sign * S[(idx[ord[0]] * ns1 + idx[ord[1]]) * ns2 + idx[ord[2]]];
  PetscFunctionReturn(PETSC_SUCCESS);
}

static double   *w3j_cache[HM_W3J_LMAX + 1][HM_W3J_LMAX + 1][HM_W3J_LMAX + 1];
static PetscBool w3j_finalize_registered = PETSC_FALSE;

PetscErrorCode HMWigner3jGet(int l1, int l2, int l3, const double **C)
{
  PetscFunctionBegin;
  PetscCall(W3jCheck(l1, l2, l3));
  PetscCheck(C, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "wigner 3j (%d,%d,%d): NULL output pointer", l1, l2, l3);
  if (!w3j_cache[l1][l2][l3]) {
    double *t;
    if (!w3j_finalize_registered) {
      PetscCall(PetscRegisterFinalize(HMSO3Finalize));
      w3j_finalize_registered = PETSC_TRUE;
    }
    PetscCall(PetscMalloc1((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1), &t));
    PetscCall(HMWigner3j(l1, l2, l3, t));
    w3j_cache[l1][l2][l3] = t;
  }
  *C = w3j_cache[l1][l2][l3];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSO3Finalize(void)
{
  PetscFunctionBegin;
  for (int a = 0; a <= HM_W3J_LMAX; a++)
    for (int b = 0; b <= HM_W3J_LMAX; b++)
      for (int c = 0; c <= HM_W3J_LMAX; c++) PetscCall(PetscFree(w3j_cache[a][b][c]));
  /* the next use registers again (PetscFinalize forgets its finalizers; a duplicate registration
     after an explicit call is harmless, freeing an empty cache does nothing) */
  w3j_finalize_registered = PETSC_FALSE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

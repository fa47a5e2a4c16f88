/* Deterministic peptide chains (polyglycine or polyalanine) in ideal helix or strand geometry. */
#include <math.h>
#include <string.h>

#include "builderimpl.h"

/* Ideal geometry: Engh & Huber (1991) backbone; standard C-H, N-H, O-H and carboxyl values. */
#define PEP_N_CA     1.458
#define PEP_CA_C     1.525
#define PEP_C_N      1.329
#define PEP_C_O      1.231
#define PEP_N_H      1.01
#define PEP_CA_H     1.09
#define PEP_CA_CB    1.53
#define PEP_C_OH     1.34
#define PEP_O_H      0.97
#define PEP_ANG_NCAC 111.2
#define PEP_ANG_CACN 116.2
#define PEP_ANG_CNCA 121.7
#define PEP_ANG_CACO 120.8
#define PEP_ANG_TET  109.5
#define PEP_ANG_COH  107.0

/* NeRF: D bonded to C with |CD| = bond, angle B-C-D = ang, dihedral A-B-C-D = tor (degrees). */
static void Nerf(const double A[3], const double B[3], const double C[3], double bond, double ang, double tor, double D[3])
{
  double       bc[3], ab[3], n[3], mm[3], nb, nn;
  const double d0 = -bond * cos(ang * DEG), d1 = bond * sin(ang * DEG) * cos(tor * DEG), d2 = bond * sin(ang * DEG) * sin(tor * DEG);

  for (int d = 0; d < 3; d++) {
    bc[d] = C[d] - B[d];
    ab[d] = B[d] - A[d];
  }
  nb = sqrt(bc[0] * bc[0] + bc[1] * bc[1] + bc[2] * bc[2]);
  for (int d = 0; d < 3; d++) bc[d] /= nb;
  n[0] = ab[1] * bc[2] - ab[2] * bc[1];
  n[1] = ab[2] * bc[0] - ab[0] * bc[2];
  n[2] = ab[0] * bc[1] - ab[1] * bc[0];
  nn   = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
  for (int d = 0; d < 3; d++) n[d] /= nn;
  mm[0] = n[1] * bc[2] - n[2] * bc[1];
  mm[1] = n[2] * bc[0] - n[0] * bc[2];
  mm[2] = n[0] * bc[1] - n[1] * bc[0];
  for (int d = 0; d < 3; d++) D[d] = C[d] + d0 * bc[d] + d1 * mm[d] + d2 * n[d];
}

/* The two free tetrahedral directions at CA given its N and C neighbours: in the plane
   perpendicular to N-CA-C through the bisector, 109.47/2 deg either side. sign +1 is the
   L-amino-acid CB position ((N-CA) . ((C-CA) x (CB-CA)) > 0). */
static void TetrahedralH(const double N[3], const double CA[3], const double C[3], int sign, double bond, double X[3])
{
  const double half = 0.5 * acos(-1.0 / 3.0);
  double       u[3], v[3], b[3], n[3], nu = 0, nv = 0, nb = 0, nn;

  for (int d = 0; d < 3; d++) {
    u[d] = N[d] - CA[d];
    v[d] = C[d] - CA[d];
    nu += u[d] * u[d];
    nv += v[d] * v[d];
  }
  for (int d = 0; d < 3; d++) {
    u[d] /= sqrt(nu);
    v[d] /= sqrt(nv);
    b[d] = -(u[d] + v[d]);
    nb += b[d] * b[d];
  }
  for (int d = 0; d < 3; d++) b[d] /= sqrt(nb);
  n[0] = u[1] * v[2] - u[2] * v[1];
  n[1] = u[2] * v[0] - u[0] * v[2];
  n[2] = u[0] * v[1] - u[1] * v[0];
  nn   = sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
  for (int d = 0; d < 3; d++) X[d] = CA[d] + bond * (cos(half) * b[d] + sign * sin(half) * n[d] / nn);
}

PetscErrorCode HMBuildPeptideSize(PetscInt target, PetscBool alanine, PetscInt *nres)
{
  const PetscInt apr = alanine ? 10 : 7;

  PetscFunctionBegin;
  PetscCheck(nres, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMBuildPeptideSize: NULL output");
  PetscCheck(target >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "peptide: target atom count %" PetscInt_FMT " must be >= 1", target);
  *nres = PetscMax(1, (target - 3 + apr / 2) / apr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Backbone and side chains residue by residue (NeRF), then the COOH terminus; ica[r] receives
   the CA of residue r. Returns the number of atoms placed. */
static PetscInt PeptideChain(PetscInt nres, PetscBool alanine, double phi, double psi, double *pos, int *Z, PetscInt *ica)
{
  const double omega = 180.0;
  PetscInt     i = 0, prevN = -1, prevCA = -1, prevC = -1;

#define ATOM(z) (Z[i] = (z), pos + 3 * (i++))
  for (PetscInt r = 0; r < nres; r++) {
    const PetscInt iN = i;
    double        *N = ATOM(7), *H = ATOM(1), *H2 = r == 0 ? ATOM(1) : NULL, *CA, *side[5], *C, *O;
    const PetscInt iCA = i;

    CA = ATOM(6);
    /* side chain slots: HA, CB, HB1-3 (alanine) or HA2, HA3 (glycine) */
    side[0] = ATOM(1);
    side[1] = ATOM(alanine ? 6 : 1);
    if (alanine)
      for (int k = 2; k < 5; k++) side[k] = ATOM(1);
    C      = ATOM(6);
    O      = ATOM(8);
    ica[r] = iCA;
    if (r == 0) {
      /* N at the origin, CA on x, C in the xy plane; NH2 terminus: H1 where a preceding C would
         sit (dihedral phi), H2 120 deg further on (tetrahedral amine) */
      for (int d = 0; d < 3; d++) N[d] = CA[d] = C[d] = 0;
      CA[0] = PEP_N_CA;
      C[0]  = CA[0] - PEP_CA_C * cos(PEP_ANG_NCAC * DEG);
      C[1]  = PEP_CA_C * sin(PEP_ANG_NCAC * DEG);
      Nerf(C, CA, N, PEP_N_H, PEP_ANG_TET, phi, H);
      Nerf(C, CA, N, PEP_N_H, PEP_ANG_TET, phi + 120.0, H2);
    } else {
      const double *pN = pos + 3 * prevN, *pCA = pos + 3 * prevCA, *pC = pos + 3 * prevC;

      Nerf(pN, pCA, pC, PEP_C_N, PEP_ANG_CACN, psi, N);
      Nerf(pCA, pC, N, PEP_N_CA, PEP_ANG_CNCA, omega, CA);
      Nerf(pC, N, CA, PEP_CA_C, PEP_ANG_NCAC, phi, C);
      /* amide H in the peptide plane, trans to O (cis to the previous CA) */
      Nerf(pCA, pC, N, PEP_N_H, 0.5 * (360.0 - PEP_ANG_CNCA), 0.0, H);
    }
    if (alanine) {
      TetrahedralH(N, CA, C, -1, PEP_CA_H, side[0]);
      TetrahedralH(N, CA, C, +1, PEP_CA_CB, side[1]);
      /* staggered methyl */
      for (int k = 0; k < 3; k++) Nerf(N, CA, side[1], PEP_CA_H, PEP_ANG_TET, 60.0 + 120.0 * k, side[2 + k]);
    } else {
      TetrahedralH(N, CA, C, -1, PEP_CA_H, side[0]);
      TetrahedralH(N, CA, C, +1, PEP_CA_H, side[1]);
    }
    /* carbonyl O anti to the next N */
    Nerf(N, CA, C, PEP_C_O, PEP_ANG_CACO, psi + 180.0, O);
    prevN  = iN;
    prevCA = iCA;
    prevC  = iCA + (alanine ? 6 : 3);
  }
  /* COOH terminus: OXT where the next N would be, its H syn to the carbonyl O */
  {
    const double *pN = pos + 3 * prevN, *pCA = pos + 3 * prevCA, *pC = pos + 3 * prevC, *pO = pos + 3 * (prevC + 1);
    double       *OXT = ATOM(8), *HXT = ATOM(1);

    Nerf(pN, pCA, pC, PEP_C_OH, PEP_ANG_CACN, psi, OXT);
    Nerf(pO, pC, OXT, PEP_O_H, PEP_ANG_COH, 0.0, HXT);
  }
#undef ATOM
  return i;
}

/* The chain axis (not normalised): it joins the CA centroids of the first and last 18 residues
   (5 alpha-helix turns, 9 strand repeats, so both centroids sit near the axis); short chains use
   first and last atom. */
static void PeptideAxis(PetscInt nres, PetscInt n, const PetscInt *ica, const double *pos, double axis[3])
{
  const PetscInt kk = PetscMin(18, nres / 2);
  if (kk >= 2) {
    double c0[3] = {0, 0, 0}, c1[3] = {0, 0, 0};
    for (PetscInt r = 0; r < kk; r++)
      for (int d = 0; d < 3; d++) {
        c0[d] += pos[3 * ica[r] + d];
        c1[d] += pos[3 * ica[nres - 1 - r] + d];
      }
    for (int d = 0; d < 3; d++) axis[d] = c1[d] - c0[d];
  } else {
    for (int d = 0; d < 3; d++) axis[d] = pos[3 * (n - 1) + d] - pos[d];
  }
}

/* Rotate the chain so its axis is z: bounding boxes (and neighbour-list grids) stay thin. */
static void PeptideAlignZ(PetscInt n, double axis[3], double *pos)
{
  double e1[3], e2[3], nax;

  nax = sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  if (nax > 0) {
    double rot[9], t;
    for (int d = 0; d < 3; d++) axis[d] /= nax;
    /* e1: the coordinate axis least parallel to the chain, made orthogonal to it */
    {
      int    dmin = 0;
      double dot;
      for (int d = 1; d < 3; d++)
        if (PetscAbsReal(axis[d]) < PetscAbsReal(axis[dmin])) dmin = d;
      for (int d = 0; d < 3; d++) e1[d] = (d == dmin) ? 1.0 : 0.0;
      dot = axis[dmin];
      for (int d = 0; d < 3; d++) e1[d] -= dot * axis[d];
      t = sqrt(e1[0] * e1[0] + e1[1] * e1[1] + e1[2] * e1[2]);
      for (int d = 0; d < 3; d++) e1[d] /= t;
    }
    e2[0] = axis[1] * e1[2] - axis[2] * e1[1];
    e2[1] = axis[2] * e1[0] - axis[0] * e1[2];
    e2[2] = axis[0] * e1[1] - axis[1] * e1[0];
    for (int d = 0; d < 3; d++) {
      rot[d]     = e1[d];
      rot[3 + d] = e2[d];
      rot[6 + d] = axis[d];
    }
    for (PetscInt a = 0; a < n; a++) {
      double y[3];
      MatVec(rot, pos + 3 * a, y);
      for (int d = 0; d < 3; d++) pos[3 * a + d] = y[d];
    }
  }
}

/* Centre the bounding box on the origin. */
static void PeptideCentre(PetscInt n, double *pos)
{
  double lo[3], hi[3];

  for (int d = 0; d < 3; d++) {
    lo[d] = PETSC_MAX_REAL;
    hi[d] = -PETSC_MAX_REAL;
  }
  for (PetscInt a = 0; a < n; a++)
    for (int d = 0; d < 3; d++) {
      lo[d] = PetscMin(lo[d], pos[3 * a + d]);
      hi[d] = PetscMax(hi[d], pos[3 * a + d]);
    }
  for (PetscInt a = 0; a < n; a++)
    for (int d = 0; d < 3; d++) pos[3 * a + d] -= 0.5 * (lo[d] + hi[d]);
}

PetscErrorCode HMBuildPeptide(MPI_Comm comm, PetscInt nres, const char conformation[], PetscBool alanine, HMSystem *out)
{
  const PetscInt apr = alanine ? 10 : 7;
  double         phi, psi, *pos, axis[3];
  PetscInt      *ica, n, i;
  int           *Z;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMBuildPeptide: NULL output");
  *out = NULL;
  PetscCheck(nres >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "peptide: number of residues %" PetscInt_FMT " must be >= 1", nres);
  if (!conformation || !strcmp(conformation, "helix")) {
    phi = -57.0;
    psi = -47.0;
  } else if (!strcmp(conformation, "strand")) {
    phi = -139.0;
    psi = 135.0;
  } else SETERRQ(comm, PETSC_ERR_ARG_WRONG, "peptide: conformation '%s' is not helix or strand", conformation);
  PetscCall(CheckCount(comm, "peptide", (PetscInt64)apr * nres + 3));
  n = apr * nres + 3;
  PetscCall(PetscMalloc3(3 * (size_t)n, &pos, n, &Z, nres, &ica));
  i = PeptideChain(nres, alanine, phi, psi, pos, Z, ica);
  PetscCheck(i == n, comm, PETSC_ERR_PLIB, "peptide: built %" PetscInt_FMT " atoms, expected %" PetscInt_FMT, i, n);
  PeptideAxis(nres, n, ica, pos, axis);
  PeptideAlignZ(n, axis, pos);
  PeptideCentre(n, pos);
  PetscCall(HMSystemCreate(comm, n, Z, pos, NULL, NULL, out));
  PetscCall(PetscFree3(pos, Z, ica));
  PetscFunctionReturn(PETSC_SUCCESS);
}

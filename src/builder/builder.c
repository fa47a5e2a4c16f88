/* Deterministic builders of water boxes, diamond supercells, molecular clusters and peptide chains. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builderimpl.h"

/* Water: TIP3P-like rigid geometry and the clash thresholds the builder guarantees. */
#define WATER_OH        0.9572
#define WATER_HOH       104.52
#define WATER_DENSITY   0.997 /* g/cm^3 */
#define WATER_MIN_INTER 1.6   /* any two atoms of different molecules */
#define WATER_MIN_OO    2.5
/* Lattice spacing never below this, so O-O stays well above WATER_MIN_OO under the jitter. */
#define WATER_MIN_SPACING 2.9
#define WATER_JITTER      0.15 /* per coordinate, uniform in [-J, J] */
#define WATER_ATTEMPTS    2000

/* amu -> g, divided by A^3 -> cm^3 (1e-24): rho[g/cm^3] = mass[amu] * AMU_G_CM3 / V[A^3] */
#define AMU_G_CM3 1.66053906660

#define DIAMOND_A 3.567

#define CLUSTER_TRIALS   11
#define CLUSTER_ATTEMPTS 200
#define CLUSTER_JITTER   0.25

/* ---------- xoshiro256** seeded by splitmix64: fixed integer arithmetic, same stream everywhere ---------- */
typedef struct {
  uint64_t s[4];
} Rng;

static uint64_t SplitMix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z          = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline uint64_t Rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

/* stream separates the builders, so one seed does not give correlated water and diamond noise */
static void RngSeed(Rng *r, unsigned long seed, uint64_t stream)
{
  uint64_t x = (uint64_t)seed ^ (stream * 0xD1B54A32D192ED03ULL);
  for (int k = 0; k < 4; k++) r->s[k] = SplitMix64(&x);
}

static inline uint64_t RngNext(Rng *r)
{
  uint64_t *s = r->s;
  uint64_t  v = Rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = Rotl(s[3], 45);
  return v;
}

/* [0, 1) with 53 random bits */
static inline double RngUniform(Rng *r)
{
  return (double)(RngNext(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* [-1, 1) */
static inline double RngSym(Rng *r)
{
  return 2.0 * RngUniform(r) - 1.0;
}

/* Uniform rotation from a uniform unit quaternion (rejection from the 4-ball, so only +,*,/ and
   sqrt are involved and the result is bit-reproducible). */
static void RngRotation(Rng *r, double R[9])
{
  double q[4], n2;
  do {
    n2 = 0;
    for (int k = 0; k < 4; k++) {
      q[k] = RngSym(r);
      n2 += q[k] * q[k];
    }
  } while (n2 > 1.0 || n2 < 1e-4);
  {
    const double inv = 1.0 / sqrt(n2), w = q[0] * inv, x = q[1] * inv, y = q[2] * inv, z = q[3] * inv;
    R[0] = 1 - 2 * (y * y + z * z);
    R[1] = 2 * (x * y - w * z);
    R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z);
    R[4] = 1 - 2 * (x * x + z * z);
    R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y);
    R[7] = 2 * (y * z + w * x);
    R[8] = 1 - 2 * (x * x + y * y);
  }
}

/* Uniform in the ball of radius rad (rejection from the cube). */
static void RngBall(Rng *r, double rad, double v[3])
{
  double n2;
  do {
    n2 = 0;
    for (int d = 0; d < 3; d++) {
      v[d] = RngSym(r);
      n2 += v[d] * v[d];
    }
  } while (n2 > 1.0);
  for (int d = 0; d < 3; d++) v[d] *= rad;
}

static inline double Dist2(const double a[3], const double b[3])
{
  const double x = a[0] - b[0], y = a[1] - b[1], z = a[2] - b[2];
  return x * x + y * y + z * z;
}

/* ---------- water ---------- */

/* Lattice kx <= ky <= kz with kx ky kz >= n sites and spacing >= WATER_MIN_SPACING at the target
   density, as cubic as possible (then fewest vacancies). 1 x 1 x n always qualifies. */
static void WaterLattice(PetscInt64 n, double vmol, PetscInt64 k[3])
{
  const double     ratio   = vmol / (WATER_MIN_SPACING * WATER_MIN_SPACING * WATER_MIN_SPACING);
  const PetscInt64 Kmax    = PetscMax(n, (PetscInt64)floor((double)n * ratio));
  PetscInt64       best[3] = {1, 1, n};

  for (PetscInt64 kx = 1; kx * kx * kx <= Kmax; kx++) {
    for (PetscInt64 ky = kx; kx * ky * ky <= Kmax; ky++) {
      const PetscInt64 kz = PetscMax(ky, (n + kx * ky - 1) / (kx * ky));
      const PetscInt64 K = kx * ky * kz, Kb = best[0] * best[1] * best[2];

      if (K > Kmax) continue;
      /* aspect kz/kx compared exactly in integers */
      if (kz * best[0] < best[2] * kx || (kz * best[0] == best[2] * kx && K < Kb)) {
        best[0] = kx;
        best[1] = ky;
        best[2] = kz;
      }
    }
  }
  for (int d = 0; d < 3; d++) k[d] = best[d];
}

static double WaterMolarMass(void)
{
  return 2 * HMElementMass(1) + HMElementMass(8);
}

/* Does a candidate molecule x[3][3] (O, H, H) clash with atoms y[3][3] shifted by T? */
static inline PetscBool WaterClash(const double x[9], const double y[9], const double T[3])
{
  for (int a = 0; a < 3; a++) {
    for (int b = 0; b < 3; b++) {
      const double yb[3] = {y[3 * b] + T[0], y[3 * b + 1] + T[1], y[3 * b + 2] + T[2]};
      const double r2    = Dist2(x + 3 * a, yb);
      const double lim   = (a == 0 && b == 0) ? WATER_MIN_OO : WATER_MIN_INTER;

      if (r2 < lim * lim) return PETSC_TRUE;
    }
  }
  return PETSC_FALSE;
}

PetscErrorCode HMBuildWaterBox(MPI_Comm comm, PetscInt nmol, unsigned long seed, HMSystem *out)
{
  const double half       = 0.5 * WATER_HOH * DEG;
  const double hloc[2][3] = {
      {WATER_OH * sin(half),  0, WATER_OH * cos(half)},
      {-WATER_OH * sin(half), 0, WATER_OH * cos(half)}
  };
  const double vmol = WaterMolarMass() * AMU_G_CM3 / WATER_DENSITY; /* A^3 per molecule */
  PetscInt64   k[3], K;
  double       s, L[3], cell[9] = {0};
  PetscBool    pbc[3] = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  PetscInt    *perm, *site_mol;
  PetscBool   *vacant;
  double      *pos;
  int         *Z;
  Rng          rng;
  PetscInt     placed = 0;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMBuildWaterBox: NULL output");
  *out = NULL;
  PetscCheck(nmol >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "water box: number of molecules %" PetscInt_FMT " must be >= 1", nmol);
  PetscCall(CheckCount(comm, "water box", 3 * (PetscInt64)nmol));
  WaterLattice(nmol, vmol, k);
  K = k[0] * k[1] * k[2];
  PetscCheck(K <= PETSC_MAX_INT, comm, PETSC_ERR_ARG_OUTOFRANGE, "water box: %lld lattice sites exceed the PetscInt range", (long long)K);
  s = cbrt((double)nmol * vmol / (double)K);
  for (int d = 0; d < 3; d++) {
    L[d]        = (double)k[d] * s;
    cell[4 * d] = L[d];
  }
  RngSeed(&rng, seed, 1);

  PetscCall(PetscMalloc5(K, &perm, K, &site_mol, K, &vacant, 9 * (size_t)nmol, &pos, 3 * (size_t)nmol, &Z));
  /* the K - n vacancies: a partial Fisher-Yates shuffle picks them uniformly */
  for (PetscInt i = 0; i < (PetscInt)K; i++) {
    perm[i]     = i;
    site_mol[i] = -1;
    vacant[i]   = PETSC_FALSE;
  }
  for (PetscInt i = 0; i < (PetscInt)K - nmol; i++) {
    const PetscInt j = i + PetscMin((PetscInt)(RngUniform(&rng) * (double)(K - i)), (PetscInt)K - i - 1), t = perm[i];

    perm[i]         = perm[j];
    perm[j]         = t;
    vacant[perm[i]] = PETSC_TRUE;
  }

  /* sequential placement in site order; only the 26 neighbouring sites (with their periodic images)
     can clash, because sites two apart are >= 2 s - 2 J > 5.5 A O-O */
  for (PetscInt64 c = 0; c < K; c++) {
    const PetscInt64 ic[3] = {c % k[0], (c / k[0]) % k[1], c / (k[0] * k[1])};
    double           x[9];
    int              att;

    if (vacant[c]) continue;
    for (att = 0; att < WATER_ATTEMPTS; att++) {
      double    R[9], h[3];
      PetscBool clash = PETSC_FALSE;

      for (int d = 0; d < 3; d++) x[d] = ((double)ic[d] + 0.5) * s + WATER_JITTER * RngSym(&rng);
      RngRotation(&rng, R);
      for (int a = 0; a < 2; a++) {
        MatVec(R, hloc[a], h);
        for (int d = 0; d < 3; d++) x[3 + 3 * a + d] = x[d] + h[d];
      }
      for (int o = 0; o < 27 && !clash; o++) {
        const int     off[3] = {o % 3 - 1, (o / 3) % 3 - 1, o / 9 - 1};
        PetscInt64    q[3], t[3], nb;
        double        T[3];
        const double *y;

        if (off[0] == 0 && off[1] == 0 && off[2] == 0) continue;
        for (int d = 0; d < 3; d++) {
          q[d] = ic[d] + off[d];
          t[d] = q[d] < 0 ? -1 : (q[d] >= k[d] ? 1 : 0);
          q[d] -= t[d] * k[d];
          T[d] = (double)t[d] * L[d];
        }
        nb = q[0] + k[0] * (q[1] + k[1] * q[2]);
        if (nb == c) y = x; /* the molecule's own image in a thin box */
        else if (site_mol[nb] >= 0) y = pos + 9 * (size_t)site_mol[nb];
        else continue;
        clash = WaterClash(x, y, T);
      }
      if (!clash) break;
    }
    PetscCheck(att < WATER_ATTEMPTS, comm, PETSC_ERR_NOT_CONVERGED, "water box: molecule %" PetscInt_FMT " found no clash-free orientation in %d attempts (seed %lu); try another seed", placed, WATER_ATTEMPTS, seed);
    PetscCall(PetscArraycpy(pos + 9 * (size_t)placed, x, 9));
    Z[3 * placed]     = 8;
    Z[3 * placed + 1] = 1;
    Z[3 * placed + 2] = 1;
    site_mol[c]       = placed++;
  }
  PetscCheck(placed == nmol, comm, PETSC_ERR_PLIB, "water box: placed %" PetscInt_FMT " of %" PetscInt_FMT " molecules", placed, nmol);
  PetscCall(HMSystemCreate(comm, 3 * nmol, Z, pos, cell, pbc, out));
  PetscCall(PetscFree5(perm, site_mol, vacant, pos, Z));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------- diamond ---------- */

PetscErrorCode HMBuildDiamond(MPI_Comm comm, PetscInt nx, PetscInt ny, PetscInt nz, double displacement, unsigned long seed, HMSystem *out)
{
  /* fcc lattice plus the same shifted by a/4 (1,1,1), in units of a */
  static const double basis[8][3] = {
      {0,    0,    0   },
      {0,    0.5,  0.5 },
      {0.5,  0,    0.5 },
      {0.5,  0.5,  0   },
      {0.25, 0.25, 0.25},
      {0.25, 0.75, 0.75},
      {0.75, 0.25, 0.75},
      {0.75, 0.75, 0.25}
  };
  const double a       = DIAMOND_A;
  double       cell[9] = {0}, *pos;
  PetscBool    pbc[3]  = {PETSC_TRUE, PETSC_TRUE, PETSC_TRUE};
  int         *Z;
  PetscInt     n, i = 0;
  Rng          rng;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMBuildDiamond: NULL output");
  *out = NULL;
  PetscCheck(nx >= 1 && ny >= 1 && nz >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "diamond: cells %" PetscInt_FMT "x%" PetscInt_FMT "x%" PetscInt_FMT " must all be >= 1", nx, ny, nz);
  PetscCheck(isfinite(displacement) && displacement >= 0, comm, PETSC_ERR_ARG_OUTOFRANGE, "diamond: displacement %g must be >= 0", displacement);
  PetscCall(CheckCount(comm, "diamond", 8 * (PetscInt64)nx * ny * nz));
  n       = 8 * nx * ny * nz;
  cell[0] = a * (double)nx;
  cell[4] = a * (double)ny;
  cell[8] = a * (double)nz;
  RngSeed(&rng, seed, 2);
  PetscCall(PetscMalloc2(3 * (size_t)n, &pos, n, &Z));
  for (PetscInt ix = 0; ix < nx; ix++)
    for (PetscInt iy = 0; iy < ny; iy++)
      for (PetscInt iz = 0; iz < nz; iz++)
        for (int b = 0; b < 8; b++, i++) {
          const double cpos[3] = {(double)ix + basis[b][0], (double)iy + basis[b][1], (double)iz + basis[b][2]};
          double       v[3]    = {0, 0, 0};

          if (displacement > 0) RngBall(&rng, displacement, v);
          for (int d = 0; d < 3; d++) pos[3 * i + d] = a * cpos[d] + v[d];
          Z[i] = 6;
        }
  PetscCall(HMSystemCreate(comm, n, Z, pos, cell, pbc, out));
  PetscCall(PetscFree2(pos, Z));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------- cluster ---------- */

typedef struct {
  PetscInt64 d2; /* squared distance (in half-steps) from the grid centre */
  PetscInt   idx;
} SiteKey;

static int SiteKeyCmp(const void *pa, const void *pb)
{
  const SiteKey *a = (const SiteKey *)pa, *b = (const SiteKey *)pb;
  if (a->d2 != b->d2) return a->d2 < b->d2 ? -1 : 1;
  return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

/* Atom cell list over a box, filled as copies are accepted. */
typedef struct {
  double     lo[3], h;
  PetscInt64 nc[3];
  PetscInt  *head, *next;
} CellList;

static inline PetscInt64 CellCoord(const CellList *cl, const double x[3], int d)
{
  PetscInt64 c = (PetscInt64)floor((x[d] - cl->lo[d]) / cl->h);
  return PetscMin(PetscMax(c, 0), cl->nc[d] - 1);
}

/* Any atom of placed copies closer than gap to one of the m candidate atoms x? Atoms outside the
   box are clamped into border cells, which can only add candidates, never hide one. */
static PetscBool ClusterClash(const CellList *cl, const double *pos, PetscInt m, const double *x, double gap2)
{
  for (PetscInt a = 0; a < m; a++) {
    const double *xa = x + 3 * a;
    PetscInt64    c[3];

    for (int d = 0; d < 3; d++) c[d] = CellCoord(cl, xa, d);
    for (PetscInt64 k2 = PetscMax(c[2] - 1, 0); k2 <= PetscMin(c[2] + 1, cl->nc[2] - 1); k2++)
      for (PetscInt64 k1 = PetscMax(c[1] - 1, 0); k1 <= PetscMin(c[1] + 1, cl->nc[1] - 1); k1++)
        for (PetscInt64 k0 = PetscMax(c[0] - 1, 0); k0 <= PetscMin(c[0] + 1, cl->nc[0] - 1); k0++)
          for (PetscInt b = cl->head[k0 + cl->nc[0] * (k1 + cl->nc[1] * k2)]; b >= 0; b = cl->next[b])
            if (Dist2(xa, pos + 3 * (size_t)b) < gap2) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

/* One packing attempt at grid spacing h; ok is false when some copy found no clash-free pose. */
static PetscErrorCode ClusterTry(PetscInt m, const double *loc, double R, PetscInt ncopies, PetscInt64 kside, const SiteKey *sites, double h, double jitter, double gap, unsigned long seed, double *pos, double *x, PetscBool *ok)
{
  const double centre = 0.5 * (double)(kside - 1) * h, ext = centre + jitter + R + gap;
  const double ncell_cap = 8.0 * (double)ncopies * (double)m + 1000.0;
  CellList     cl;
  PetscInt64   ncells;
  Rng          rng;

  PetscFunctionBegin;
  *ok  = PETSC_TRUE;
  cl.h = PetscMax(gap, 1e-3);
  /* cap the cell count at a few per atom: a tiny gap must not make the grid huge */
  while (pow(2 * ext / cl.h + 1, 3) > ncell_cap) cl.h *= 1.25;
  ncells = 1;
  for (int d = 0; d < 3; d++) {
    cl.lo[d] = -ext;
    cl.nc[d] = (PetscInt64)ceil(2 * ext / cl.h) + 1;
    ncells *= cl.nc[d];
  }
  PetscCall(PetscMalloc2(ncells, &cl.head, (size_t)ncopies * m, &cl.next));
  for (PetscInt64 c = 0; c < ncells; c++) cl.head[c] = -1;
  RngSeed(&rng, seed, 3);
  for (PetscInt cp = 0; cp < ncopies && *ok; cp++) {
    const PetscInt   idx   = sites[cp].idx;
    const PetscInt64 ic[3] = {idx % kside, (idx / kside) % kside, idx / (kside * kside)};
    int              att;

    for (att = 0; att < CLUSTER_ATTEMPTS; att++) {
      double R9[9], c[3];

      for (int d = 0; d < 3; d++) c[d] = (double)ic[d] * h - centre + jitter * RngSym(&rng);
      RngRotation(&rng, R9);
      for (PetscInt a = 0; a < m; a++) {
        MatVec(R9, loc + 3 * a, x + 3 * a);
        for (int d = 0; d < 3; d++) x[3 * a + d] += c[d];
      }
      if (!ClusterClash(&cl, pos, m, x, gap * gap)) break;
    }
    if (att == CLUSTER_ATTEMPTS) {
      *ok = PETSC_FALSE;
      break;
    }
    for (PetscInt a = 0; a < m; a++) {
      const PetscInt b = cp * m + a;
      PetscInt64     cc[3], cell;

      for (int d = 0; d < 3; d++) pos[3 * (size_t)b + d] = x[3 * a + d];
      for (int d = 0; d < 3; d++) cc[d] = CellCoord(&cl, x + 3 * a, d);
      cell          = cc[0] + cl.nc[0] * (cc[1] + cl.nc[1] * cc[2]);
      cl.next[b]    = cl.head[cell];
      cl.head[cell] = b;
    }
  }
  PetscCall(PetscFree2(cl.head, cl.next));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMBuildCluster(MPI_Comm comm, HMSystem mol, PetscInt ncopies, double gap, unsigned long seed, HMSystem *out)
{
  PetscInt      m, n;
  const double *mpos;
  const int    *mZ;
  double        cen[3] = {0, 0, 0}, R = 0, *loc, *pos, *x;
  int          *Z;
  PetscInt64    kside, nsites;
  SiteKey      *sites;
  PetscBool     ok = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMBuildCluster: NULL output");
  *out = NULL;
  PetscCheck(mol, comm, PETSC_ERR_ARG_NULL, "cluster: no molecule given");
  PetscCheck(ncopies >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "cluster: number of copies %" PetscInt_FMT " must be >= 1", ncopies);
  PetscCheck(isfinite(gap) && gap > 0, comm, PETSC_ERR_ARG_OUTOFRANGE, "cluster: gap %g must be > 0", gap);
  PetscCall(HMSystemGetSize(mol, &m));
  PetscCall(HMSystemGetPositions(mol, &mpos));
  PetscCall(HMSystemGetAtomicNumbers(mol, &mZ));
  PetscCall(CheckCount(comm, "cluster", (PetscInt64)m * ncopies));
  n = m * ncopies;

  /* geometric centre; R bounds every atom, so a spacing of 2 R + gap can never clash */
  for (PetscInt a = 0; a < m; a++)
    for (int d = 0; d < 3; d++) cen[d] += mpos[3 * a + d];
  for (int d = 0; d < 3; d++) cen[d] /= (double)m;
  PetscCall(PetscMalloc4(3 * (size_t)m, &loc, 3 * (size_t)n, &pos, 3 * (size_t)m, &x, n, &Z));
  for (PetscInt a = 0; a < m; a++) {
    for (int d = 0; d < 3; d++) loc[3 * a + d] = mpos[3 * a + d] - cen[d];
    R = PetscMax(R, sqrt(loc[3 * a] * loc[3 * a] + loc[3 * a + 1] * loc[3 * a + 1] + loc[3 * a + 2] * loc[3 * a + 2]));
  }
  for (PetscInt i = 0; i < n; i++) Z[i] = mZ[i % m];

  /* a cube big enough to hold a ball of ncopies sites; the ncopies sites nearest its centre make
     a round cluster, filled from the centre outwards */
  kside = (PetscInt64)ceil(cbrt((double)ncopies * 6.0 / PETSC_PI)) + 1;
  while (kside * kside * kside < ncopies) kside++;
  nsites = kside * kside * kside;
  PetscCheck(nsites <= PETSC_MAX_INT, comm, PETSC_ERR_ARG_OUTOFRANGE, "cluster: %lld grid sites exceed the PetscInt range", (long long)nsites);
  PetscCall(PetscMalloc1(nsites, &sites));
  for (PetscInt64 s = 0; s < nsites; s++) {
    const PetscInt64 c[3] = {2 * (s % kside) - (kside - 1), 2 * ((s / kside) % kside) - (kside - 1), 2 * (s / (kside * kside)) - (kside - 1)};
    sites[s].d2           = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
    sites[s].idx          = (PetscInt)s;
  }
  qsort(sites, (size_t)nsites, sizeof(SiteKey), SiteKeyCmp);

  /* spacings from R + gap (copies interlock) up to 2 R + gap (never clashes, no jitter), the
     densest that works wins; every trial restarts the random stream, so the outcome depends on
     the seed only */
  for (int t = 0; t < CLUSTER_TRIALS && !ok; t++) {
    const PetscBool last = (PetscBool)(t == CLUSTER_TRIALS - 1);
    /* the last spacing gets a hair of slack so round-off in the rotations cannot undercut gap */
    const double h = (R + gap) + R * (double)t / (CLUSTER_TRIALS - 1) + (last ? 1e-6 * (1 + R + gap) : 0.0);

    PetscCall(ClusterTry(m, loc, R, ncopies, kside, sites, h, last ? 0.0 : CLUSTER_JITTER, gap, seed, pos, x, &ok));
  }
  PetscCheck(ok, comm, PETSC_ERR_PLIB, "cluster: no packing found even at spacing 2R + gap");
  PetscCall(HMSystemCreate(comm, n, Z, pos, NULL, NULL, out));
  PetscCall(PetscFree(sites));
  PetscCall(PetscFree4(loc, pos, x, Z));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* ---------- sizes for a target atom count ---------- */

PetscErrorCode HMBuildWaterSize(PetscInt target, PetscInt *nmol)
{
  PetscFunctionBegin;
  PetscCheck(nmol, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMBuildWaterSize: NULL output");
  PetscCheck(target >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "water: target atom count %" PetscInt_FMT " must be >= 1", target);
  *nmol = PetscMax(1, (PetscInt)(((PetscInt64)target + 1) / 3));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMBuildClusterSize(PetscInt target, PetscInt m, PetscInt *ncopies)
{
  PetscFunctionBegin;
  PetscCheck(ncopies, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMBuildClusterSize: NULL output");
  PetscCheck(target >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "cluster: target atom count %" PetscInt_FMT " must be >= 1", target);
  PetscCheck(m >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "cluster: molecule size %" PetscInt_FMT " must be >= 1", m);
  *ncopies = PetscMax(1, (PetscInt)(((PetscInt64)target + m / 2) / m));
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Is candidate (a, count) better than the best so far? */
static PetscBool DiamondBetter(PetscInt64 T, const PetscInt64 c[3], const PetscInt64 b[3])
{
  const PetscInt64 A = 8 * c[0] * c[1] * c[2], B = 8 * b[0] * b[1] * b[2];
  const PetscInt64 dA = A > T ? A - T : T - A, dB = B > T ? B - T : T - B;
  const PetscBool  inA = (PetscBool)(100 * dA <= T), inB = (PetscBool)(100 * dB <= T);
  /* aspect nz/nx compared exactly: c[2]/c[0] vs b[2]/b[0] */
  const PetscInt64 asA = c[2] * b[0], asB = b[2] * c[0];

  if (inA != inB) return inA;
  if (inA) {
    if (asA != asB) return (PetscBool)(asA < asB);
    if (dA != dB) return (PetscBool)(dA < dB);
  } else {
    if (dA != dB) return (PetscBool)(dA < dB);
    if (asA != asB) return (PetscBool)(asA < asB);
  }
  return (PetscBool)(A < B);
}

PetscErrorCode HMBuildDiamondSize(PetscInt target, PetscInt cells[3])
{
  const PetscInt64 T = target, lim = 2 * T + 8;
  PetscInt64       best[3] = {1, 1, 1};

  PetscFunctionBegin;
  PetscCheck(cells, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMBuildDiamondSize: NULL output");
  PetscCheck(target >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "diamond: target atom count %" PetscInt_FMT " must be >= 1", target);
  for (PetscInt64 kx = 1; 8 * kx * kx * kx <= lim; kx++) {
    for (PetscInt64 ky = kx; 8 * kx * ky * ky <= lim; ky++) {
      const PetscInt64 base = 8 * kx * ky;
      /* every nz whose count is within 1% of T, plus the two nearest T */
      const PetscInt64 zlo = PetscMax(ky, (99 * T / 100) / base), zhi = PetscMax(ky, (101 * T / 100 + base - 1) / base);

      for (PetscInt64 kz = zlo; kz <= zhi; kz++) {
        const PetscInt64 c[3] = {kx, ky, kz};
        if (DiamondBetter(T, c, best))
          for (int d = 0; d < 3; d++) best[d] = c[d];
      }
    }
  }
  PetscCheck(8 * best[0] * best[1] * best[2] <= MAX_ATOMS, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "diamond: target %" PetscInt_FMT " atoms is too large for this build", target);
  for (int d = 0; d < 3; d++) cells[d] = (PetscInt)best[d];
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* "peptide" or "peptide:mod,mod" with mods helix|strand|ala|gly */
static PetscErrorCode ParsePeptideKind(MPI_Comm comm, const char kind[], const char **conf, PetscBool *alanine)
{
  const char *p = kind + strlen("peptide");

  PetscFunctionBegin;
  *conf    = "helix";
  *alanine = PETSC_TRUE;
  if (!*p) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(*p == ':', comm, PETSC_ERR_ARG_WRONG, "system kind '%s': expected peptide or peptide:MODIFIERS", kind);
  p++;
  while (*p) {
    size_t len = strcspn(p, ",");
    if (len == 5 && !strncmp(p, "helix", 5)) *conf = "helix";
    else if (len == 6 && !strncmp(p, "strand", 6)) *conf = "strand";
    else if (len == 3 && !strncmp(p, "ala", 3)) *alanine = PETSC_TRUE;
    else if (len == 3 && !strncmp(p, "gly", 3)) *alanine = PETSC_FALSE;
    else SETERRQ(comm, PETSC_ERR_ARG_WRONG, "system kind '%s': unknown peptide modifier '%.*s' (helix, strand, ala, gly)", kind, (int)len, p);
    p += len;
    if (*p == ',') p++;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMBuildSystem(MPI_Comm comm, const char kind[], PetscInt target, unsigned long seed, const char molecule_file[], HMSystem *out)
{
  PetscFunctionBegin;
  PetscCheck(out, comm, PETSC_ERR_ARG_NULL, "HMBuildSystem: NULL output");
  *out = NULL;
  PetscCheck(kind, comm, PETSC_ERR_ARG_NULL, "HMBuildSystem: no system kind given");
  PetscCheck(target >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "%s: target atom count %" PetscInt_FMT " must be >= 1", kind, target);
  if (!strcmp(kind, "water")) {
    PetscInt nmol;
    PetscCall(HMBuildWaterSize(target, &nmol));
    PetscCall(HMBuildWaterBox(comm, nmol, seed, out));
  } else if (!strcmp(kind, "diamond")) {
    PetscInt c[3];
    PetscCall(HMBuildDiamondSize(target, c));
    PetscCall(HMBuildDiamond(comm, c[0], c[1], c[2], 0.0, seed, out));
  } else if (!strcmp(kind, "cluster")) {
    HMSystem mol;
    PetscInt m, nc;
    PetscCheck(molecule_file && molecule_file[0], comm, PETSC_ERR_ARG_WRONG, "cluster: a molecule file is required");
    PetscCall(HMSystemLoad(comm, molecule_file, &mol));
    PetscCall(HMSystemGetSize(mol, &m));
    PetscCall(HMBuildClusterSize(target, m, &nc));
    PetscCall(HMBuildCluster(comm, mol, nc, 3.0, seed, out));
    PetscCall(HMSystemDestroy(&mol));
  } else if (!strncmp(kind, "peptide", 7)) {
    const char *conf;
    PetscBool   ala;
    PetscInt    nres;
    PetscCall(ParsePeptideKind(comm, kind, &conf, &ala));
    PetscCall(HMBuildPeptideSize(target, ala, &nres));
    PetscCall(HMBuildPeptide(comm, nres, conf, ala, out));
  } else SETERRQ(comm, PETSC_ERR_ARG_WRONG, "unknown system kind '%s' (water, diamond, cluster, peptide)", kind);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* libFuzzer target: the XYZ / extended-XYZ reader on arbitrary text, and the writer on what it accepts. */
#include "fuzzcommon.h"
#include <hipmace/io.h>
#include <math.h>

static FuzzFile file;
static char     outpath[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_petsc_init();
  fuzz_file_open(&file, "fuzz.xyz");
  snprintf(outpath, sizeof(outpath), "/dev/shm/hm_fuzz_xyz_%d.xyz", (int)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  HMSystem      sys, back;
  PetscInt      n, n2;
  const double *pos, *m;
  const int    *Z;
  PetscBool     hc, pbc[3];
  double        cell[9];

  fuzz_file_set(&file, data, size);
  if (HMSystemLoad(PETSC_COMM_SELF, file.path, &sys)) return 0;
  /* what the reader accepts must be a valid structure... */
  if (HMSystemGetSize(sys, &n) || HMSystemGetPositions(sys, &pos) || HMSystemGetAtomicNumbers(sys, &Z) || HMSystemGetMasses(sys, &m) || HMSystemGetCell(sys, &hc, cell, pbc)) abort();
  if (n <= 0) abort();
  for (PetscInt i = 0; i < n; i++) {
    if (Z[i] < 1 || Z[i] > HM_MAX_Z || !(m[i] > 0) || !isfinite(m[i])) abort();
    for (int d = 0; d < 3; d++)
      if (!isfinite(pos[3 * i + d])) abort();
  }
  /* ...that survives a write and a read back unchanged (small ones: the write fsyncs) */
  if (n <= 64) {
    if (HMSystemWriteXYZ(sys, outpath)) abort();
    if (HMSystemLoad(PETSC_COMM_SELF, outpath, &back)) abort();
    if (HMSystemGetSize(back, &n2) || n2 != n) abort();
    {
      const double *p2;
      const int    *Z2;
      if (HMSystemGetPositions(back, &p2) || HMSystemGetAtomicNumbers(back, &Z2)) abort();
      for (PetscInt i = 0; i < n; i++)
        if (Z2[i] != Z[i] || memcmp(p2 + 3 * i, pos + 3 * i, 3 * sizeof(double))) abort();
    }
    HMSystemDestroy(&back);
    unlink(outpath);
  }
  HMSystemDestroy(&sys);
  return 0;
}

/* Memory of this process and of its node, read from /proc (0 where it is not available). */
#include <hipmace/sys.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
  #include <malloc.h>
#endif

/* The threshold above which an allocation is a mapping of its own, returned to the system when freed:
   every array the memory peaks consist of (features, G, the matrix) is far larger, while the small
   work arrays of the kernels stay on the heap (no page faults on every call). The heap itself is trimmed
   only when 256 MB are free at its top: trimming at 16 MB made the small arrays that a repeated
   evaluation frees and allocates again fault in their pages on every call (a 231-atom cluster took
   1.5x longer). */
#define HM_MMAP_BYTES (16 << 20)

PetscErrorCode HMMemorySetReturnToSystem(PetscBool on)
{
  PetscFunctionBegin;
#if defined(__GLIBC__)
  if (on) {
    /* mallopt returns 1 on success; a C library that refuses leaves today's behaviour, which is correct,
       only larger */
    if (mallopt(M_MMAP_MAX, 1 << 16) != 1 || mallopt(M_MMAP_THRESHOLD, HM_MMAP_BYTES) != 1 || mallopt(M_TRIM_THRESHOLD, 16 * HM_MMAP_BYTES) != 1) PetscCall(PetscInfo(NULL, "mallopt refused: freed memory stays in the process\n"));
  }
#else
  (void)on;
#endif
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* the number after key in a "Key: value kB" file, in bytes */
static double ProcKiB(const char file[], const char key[])
{
  FILE        *f   = fopen(file, "r");
  const size_t len = strlen(key);
  char         line[256];
  double       kb = 0;

  if (!f) return 0;
  while (fgets(line, sizeof(line), f))
    if (!strncmp(line, key, len)) kb = atof(line + len);
  fclose(f);
  return kb * 1024.0;
}

double HMMemoryRSS(PetscBool peak)
{
  return ProcKiB("/proc/self/status", peak ? "VmHWM:" : "VmRSS:");
}

double HMMemoryAvailable(void)
{
  return ProcKiB("/proc/meminfo", "MemAvailable:");
}

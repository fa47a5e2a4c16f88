/* Memory of this process and of its node, read from /proc (0 where it is not available). */
/* MAP_ANONYMOUS and madvise are outside POSIX 2008: glibc shows them with _DEFAULT_SOURCE */
#define _DEFAULT_SOURCE
#include <hipmace/sys.h>
#include "sys/sysimpl.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
  #include <malloc.h>
#endif
#if defined(__linux__)
  #include <sys/mman.h>
#endif
#if defined(__has_feature)
  #if __has_feature(address_sanitizer)
    #define HM_ASAN 1
  #endif
#endif
#if defined(__SANITIZE_ADDRESS__)
  #define HM_ASAN 1
#endif

/* The threshold above which an allocation is a mapping of its own, returned to the system when freed:
   every array the memory peaks consist of (features, G, the matrix) is far larger, while the small
   work arrays of the kernels stay on the heap (no page faults on every call). The heap itself is trimmed
   only when 256 MB are free at its top: trimming at 16 MB made the small arrays that a repeated
   evaluation frees and allocates again fault in their pages on every call (a 231-atom cluster took
   1.5x longer). */
#define HM_MMAP_BYTES (16 << 20)

static PetscBool hm_return = PETSC_FALSE; /* -memory_return: large PETSc arrays are mappings of their own */

#if defined(__linux__) && defined(MAP_ANONYMOUS) && !defined(HM_ASAN)
/* PETSc's allocation routines (PetscMallocSet, installed by HMInitialize before PetscInitialize). With
   -memory_return an array of HM_MMAP_BYTES or more is an anonymous mapping of its own, aligned to 2 MB and
   advised for transparent huge pages: a repeated evaluation allocates its large arrays again each time, and
   with 4 kB pages every first touch of a page is a fault (on this project's virtual machine 26 MB of layer
   and HIP-head work arrays cost a 231-atom cluster 70 ms of 230 on one rank). Freed, the mapping goes back to
   the system at once, as glibc's own mmap would. Smaller arrays come from malloc. A header of 16 bytes in
   front of each array says which kind it is and its size (PETSc's alignment, 16, is kept). */
  #define HM_HUGE  ((size_t)2 << 20)
  #define HM_HDR   ((size_t)16)
  #define HM_MAGIC ((uint64_t)0x484d4d454d000000ull)

typedef struct {
  uint64_t tag; /* HM_MAGIC | 1 for a mapping, HM_MAGIC for malloc */
  uint64_t len; /* mapping: its length from the 2 MB-aligned base; malloc: the size asked for */
} HMMemHeader;

static void *MapLarge(size_t size)
{
  const size_t len = (size + HM_HDR + HM_HUGE - 1) / HM_HUGE * HM_HUGE;
  char        *raw = mmap(NULL, len + HM_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *base;
  size_t       lead;

  if (raw == MAP_FAILED) return NULL;
  /* keep the 2 MB-aligned part of a mapping one huge page longer: huge pages need the alignment */
  base = (char *)(((uintptr_t)raw + HM_HUGE - 1) & ~(uintptr_t)(HM_HUGE - 1));
  lead = (size_t)(base - raw);
  if (lead) (void)munmap(raw, lead);
  if (HM_HUGE - lead) (void)munmap(base + len, HM_HUGE - lead);
  #if defined(MADV_HUGEPAGE)
  (void)madvise(base, len, MADV_HUGEPAGE); /* advice only: without transparent huge pages nothing changes */
  #endif
  ((HMMemHeader *)base)->tag = HM_MAGIC | 1u;
  ((HMMemHeader *)base)->len = len;
  return base + HM_HDR;
}

static PetscErrorCode HMMalloc(size_t size, PetscBool clear, int line, const char func[], const char file[], void **result)
{
  char *p;

  (void)line, (void)func, (void)file;
  if (!size) {
    *result = NULL;
    return PETSC_SUCCESS;
  }
  if (hm_return && size >= HM_MMAP_BYTES && (p = MapLarge(size))) {
    *result = p; /* a fresh mapping is zero already, cleared or not */
    return PETSC_SUCCESS;
  }
  p = clear ? calloc(1, size + HM_HDR) : malloc(size + HM_HDR);
  if (!p) return PetscError(PETSC_COMM_SELF, line, func, file, PETSC_ERR_MEM, PETSC_ERROR_INITIAL, "out of memory allocating %.0f bytes", (double)size);
  ((HMMemHeader *)p)->tag = HM_MAGIC;
  ((HMMemHeader *)p)->len = size;
  *result                 = p + HM_HDR;
  return PETSC_SUCCESS;
}

static PetscErrorCode HMFree(void *ptr, int line, const char func[], const char file[])
{
  HMMemHeader *h;

  if (!ptr) return PETSC_SUCCESS;
  h = (HMMemHeader *)((char *)ptr - HM_HDR);
  if ((h->tag & ~(uint64_t)1) != HM_MAGIC) return PetscError(PETSC_COMM_SELF, line, func, file, PETSC_ERR_MEMC, PETSC_ERROR_INITIAL, "freeing memory that hipmace's allocator did not give out");
  if (h->tag & 1u) (void)munmap(h, h->len);
  else free(h);
  return PETSC_SUCCESS;
}

static PetscErrorCode HMRealloc(size_t size, int line, const char func[], const char file[], void **result)
{
  void        *old = *result, *p = NULL;
  HMMemHeader *h;
  size_t       have;

  if (!old) return HMMalloc(size, PETSC_FALSE, line, func, file, result);
  if (!size) {
    *result = NULL;
    return HMFree(old, line, func, file);
  }
  h    = (HMMemHeader *)((char *)old - HM_HDR);
  have = (h->tag & 1u) ? h->len - HM_HDR : h->len;
  if (!(h->tag & 1u) && !(hm_return && size >= HM_MMAP_BYTES)) {
    /* heap to heap: realloc keeps the contents */
    char *q = realloc(h, size + HM_HDR);
    if (!q) return PetscError(PETSC_COMM_SELF, line, func, file, PETSC_ERR_MEM, PETSC_ERROR_INITIAL, "out of memory reallocating %.0f bytes", (double)size);
    ((HMMemHeader *)q)->len = size;
    *result                 = q + HM_HDR;
    return PETSC_SUCCESS;
  }
  if (HMMalloc(size, PETSC_FALSE, line, func, file, &p)) return PETSC_ERR_MEM;
  memcpy(p, old, PetscMin(have, size));
  *result = p;
  return HMFree(old, line, func, file);
}

/* PETSc's memory diagnostics install PETSc's own routines (and refuse a second set): their options leave
   PETSc's allocator in place */
static PetscBool WantsPetscMalloc(const char *arg)
{
  return (PetscBool)(arg && (strstr(arg, "-malloc") || strstr(arg, "-log_view_memory") || strstr(arg, "-memory_view")));
}
#endif

/* Before PetscInitialize (PETSc accepts its allocation routines only then): PETSc's arrays through HMMalloc.
   Not under AddressSanitizer (its own allocator checks the bounds of every array). */
static PetscBool hm_installed = PETSC_FALSE;

PetscErrorCode HMMemoryInstallAllocator_Private(int argc, char **argv)
{
#if defined(__linux__) && defined(MAP_ANONYMOUS) && !defined(HM_ASAN)
  if (hm_installed || WantsPetscMalloc(getenv("PETSC_OPTIONS"))) return PETSC_SUCCESS;
  for (int i = 1; i < argc; i++)
    if (WantsPetscMalloc(argv[i])) return PETSC_SUCCESS;
  if (!PetscMallocSet(HMMalloc, HMFree, HMRealloc)) hm_installed = PETSC_TRUE;
#else
  (void)argc, (void)argv;
#endif
  return PETSC_SUCCESS;
}

void HMMemoryAllocatorCleared_Private(void)
{
  hm_installed = PETSC_FALSE; /* PetscFinalize put PETSc's routines back (PetscMallocClear) */
}

PetscBool HMMemoryHugeMappings_Private(void)
{
  return (PetscBool)(hm_installed && hm_return);
}

PetscErrorCode HMMemorySetReturnToSystem(PetscBool on)
{
  PetscFunctionBegin;
  hm_return = on;
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

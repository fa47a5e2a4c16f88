/* libFuzzer target: the model config parser (HMModelLoad) with the input as the 'config' metadata string
   over the tensors of a real model (HM_FUZZ_MODEL, default: the bundled demo model). */
#include "fuzzcommon.h"
#include <hipmace/model.h>
#include <jansson.h>
#include "io/ioimpl.h"

/* HMModelLoad does not release what it built when it fails (the driver ends there anyway); a fuzzer
   runs millions of inputs in one process, so allocations made during a load are tracked and whatever a
   failed load leaves behind is released here. */
#define TRACK_SLOTS (1u << 15)
static void    *live[TRACK_SLOTS];
static int      tracking;
static unsigned nlive;

static unsigned slot_of(void *p)
{
  uintptr_t h = (uintptr_t)p;
  h *= 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> 40) & (TRACK_SLOTS - 1);
}

static void track_add(void *p)
{
  unsigned s = slot_of(p);
  if (!tracking || !p) return;
  if (nlive > TRACK_SLOTS / 2) abort();
  while (live[s]) s = (s + 1) & (TRACK_SLOTS - 1);
  live[s] = p;
  nlive++;
}

/* removes p from the table (linear probing: re-insert the rest of its cluster) */
static void track_del(void *p)
{
  unsigned s = slot_of(p);
  if (!nlive || !p) return;
  while (live[s] && live[s] != p) s = (s + 1) & (TRACK_SLOTS - 1);
  if (!live[s]) return;
  live[s] = NULL;
  nlive--;
  for (unsigned t = (s + 1) & (TRACK_SLOTS - 1); live[t]; t = (t + 1) & (TRACK_SLOTS - 1)) {
    void *q = live[t];
    live[t] = NULL;
    nlive--;
    {
      unsigned u = slot_of(q);
      while (live[u]) u = (u + 1) & (TRACK_SLOTS - 1);
      live[u] = q;
      nlive++;
    }
  }
}

static PetscErrorCode tr_malloc(size_t n, PetscBool clear, int line, const char fun[], const char file[], void **r)
{
  (void)line, (void)fun, (void)file;
  if (!n) {
    *r = NULL;
    return 0;
  }
  if (posix_memalign(r, PETSC_MEMALIGN, n)) return PETSC_ERR_MEM;
  if (clear) memset(*r, 0, n);
  track_add(*r);
  return 0;
}

static PetscErrorCode tr_free(void *p, int line, const char fun[], const char file[])
{
  (void)line, (void)fun, (void)file;
  track_del(p);
  free(p);
  return 0;
}

static PetscErrorCode tr_realloc(size_t n, int line, const char fun[], const char file[], void **r)
{
  void *q;
  (void)line, (void)fun, (void)file;
  track_del(*r);
  q = realloc(*r, n);
  if (n && !q) return PETSC_ERR_MEM;
  *r = n ? q : NULL;
  track_add(*r);
  return 0;
}

static void *js_malloc(size_t n)
{
  void *p = malloc(n);
  track_add(p);
  return p;
}

static void js_free(void *p)
{
  track_del(p);
  free(p);
}

/* The model file is opened and its header validated once (the safetensors target fuzzes that); every
   input is then put in as the 'config' metadata string of that open container. The linker routes the
   loader's open and close here (-Wl,--wrap=HMSafetensorsOpen,--wrap=HMSafetensorsClose). */
PetscErrorCode       __real_HMSafetensorsOpen(MPI_Comm, const char[], HMSafetensors *);
PetscErrorCode       __real_HMSafetensorsClose(HMSafetensors *);
static HMSafetensors base;

PetscErrorCode __wrap_HMSafetensorsOpen(MPI_Comm comm, const char path[], HMSafetensors *st)
{
  if (!base) return __real_HMSafetensorsOpen(comm, path, st);
  *st = base;
  return 0;
}

PetscErrorCode __wrap_HMSafetensorsClose(HMSafetensors *st)
{
  if (st && *st == base) {
    *st = NULL;
    return 0;
  }
  return __real_HMSafetensorsClose(st);
}

#define MAX_CONFIG 4096

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  const char *path = getenv("HM_FUZZ_MODEL");
  HMModel     m;
  (void)argc, (void)argv;
  if (!path) path = HM_FUZZ_DEFAULT_MODEL;
  if (PetscMallocSet(tr_malloc, tr_free, tr_realloc)) abort();
  fuzz_petsc_init();
  json_set_alloc_funcs(js_malloc, js_free);
  /* one untracked load of the model's own config: lazily built tables and registrations happen here,
     not inside a tracked load whose leftovers are freed */
  if (__real_HMSafetensorsOpen(PETSC_COMM_SELF, path, &base) || !base->metadata || HMModelLoad(PETSC_COMM_SELF, path, &m) || HMModelDestroy(&m)) {
    fprintf(stderr, "fuzz_config: the base model %s does not load (set HM_FUZZ_MODEL)\n", path);
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  HMModel m = NULL;
  json_t *cfg;

  if (size > MAX_CONFIG) return -1;
  /* a header string is valid UTF-8 without NUL, or the header fails to parse before any config is read */
  cfg = json_stringn((const char *)data, size);
  if (!cfg || memchr(data, 0, size)) {
    json_decref(cfg);
    return 0;
  }
  if (json_object_set_new(base->metadata, "config", cfg)) abort();
  tracking = 1;
  if (HMModelLoad(PETSC_COMM_SELF, "fuzz.safetensors", &m)) {
    for (unsigned s = 0; s < TRACK_SLOTS && nlive; s++)
      if (live[s]) {
        void *p = live[s];
        live[s] = NULL;
        nlive--;
        free(p);
      }
  } else {
    if (HMModelDestroy(&m)) abort();
    /* a model that loaded must give everything back */
    if (nlive) {
      fprintf(stderr, "fuzz_config: %u allocations leaked by a successful load + destroy\n", nlive);
      abort();
    }
  }
  tracking = 0;
  return 0;
}

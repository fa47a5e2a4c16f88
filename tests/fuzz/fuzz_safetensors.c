/* libFuzzer target: the safetensors reader on arbitrary bytes (header, offsets, dtypes, metadata). */
#include "fuzzcommon.h"
#include <hipmace/io.h>

static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_petsc_init();
  fuzz_file_open(&file, "fuzz.safetensors");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  HMSafetensors st;
  PetscInt      n;
  const char   *v;

  fuzz_file_set(&file, data, size);
  if (HMSafetensorsOpen(PETSC_COMM_SELF, file.path, &st)) return 0;
  /* an accepted file must be safe to use: touch every byte of every tensor, every lookup */
  if (HMSafetensorsGetNumTensors(st, &n)) abort();
  (void)HMSafetensorsGetMetadata(st, "config", &v);
  (void)HMSafetensorsGetMetadata(st, "format", &v);
  for (PetscInt i = 0; i < n; i++) {
    const HMTensorInfo *t, *u;
    const double       *d;
    const PetscInt64   *q;
    volatile uint8_t    acc = 0;
    if (HMSafetensorsGetTensorByIndex(st, i, &t)) abort();
    for (PetscInt64 k = 0; k < 8 * t->numel; k++) acc ^= ((const uint8_t *)t->data)[k];
    if (t->numel > 0 && ((uintptr_t)t->data) % 8) abort();
    if (HMSafetensorsFind(st, t->name, &u) || u != t) abort();
    if (t->dtype == HM_DTYPE_F64) {
      if (HMSafetensorsGetF64(st, t->name, t->ndim, t->shape, &d)) abort();
    } else if (HMSafetensorsGetI64(st, t->name, t->ndim, t->shape, &q)) abort();
    (void)acc;
  }
  if (HMSafetensorsClose(&st)) abort();
  return 0;
}

/* Shared set-up of the libFuzzer targets: PETSc without tracebacks, and an in-memory file with a path. */
#pragma once

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <petscsys.h>

/* Errors are the expected outcome of most inputs: return the code without printing anything. */
static inline PetscErrorCode fuzz_quiet_error(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  (void)comm, (void)line, (void)fun, (void)file, (void)p, (void)mess, (void)ctx;
  return n;
}

static inline int fuzz_petsc_init(void)
{
  static int done = 0;
  if (done) return 0;
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  if (PetscInitializeNoArguments()) abort();
  if (PetscPushErrorHandler(fuzz_quiet_error, NULL)) abort();
  done = 1;
  return 0;
}

/* One memfd reused by every input; the parsers open it by its /proc path like any file. */
typedef struct {
  int  fd;
  char path[64];
} FuzzFile;

static inline void fuzz_file_open(FuzzFile *f, const char *name)
{
  f->fd = memfd_create(name, 0);
  if (f->fd < 0) abort();
  snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
}

/* The file's contents become exactly data[0..size). */
static inline void fuzz_file_set(FuzzFile *f, const uint8_t *data, size_t size)
{
  if (ftruncate(f->fd, 0) || (size && pwrite(f->fd, data, size, 0) != (ssize_t)size)) abort();
}

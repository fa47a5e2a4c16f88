/* The main() of a small hipmace program (hipmace-build, hipmace-scaling): HMInitialize with its help text,
   the one-line error handler under the program's name, run(), HMFinalize; exit status 1 on any error. */
#pragma once

#include <hipmace/app.h>

static inline int HMDriverMain(int argc, char **argv, const char help[], const char program[], PetscErrorCode (*run)(void))
{
  PetscErrorCode ierr;

  if (HMInitialize(&argc, &argv, NULL, help)) return 1;
  if (HMPushErrorHandler(program, PETSC_FALSE)) return 1;
  ierr = run();
  if (HMFinalize()) return 1;
  return ierr ? 1 : 0;
}

/* Common definitions shared by every hipmace module. */
#pragma once

#include <petscsys.h>

/* PETSc before 3.19 spells success as 0 (Debian 12 ships 3.18). */
#if PETSC_VERSION_LT(3, 19, 0)
  #define PETSC_SUCCESS 0
  #define PetscOptionsRestoreViewer(v) PetscViewerDestroy(v)
#endif

/* HM_VERSION: the meson project version (generated into the build folder by include/hipmace/meson.build) */
#include <hipmace/version.h>

/* Largest angular momentum the engine supports in features and spherical harmonics. */
#define HM_LMAX 4

/* Element table: Z = 1 .. HM_MAX_Z. */
#define HM_MAX_Z 86


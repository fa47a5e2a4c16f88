/* Scratch folder for test programs that write files: one per program, /tmp/hm_test_<HM_SCRATCH_TAG>_XXXXXX,
   made on first use and removed (with its files) at exit. Define HM_SCRATCH_TAG before including. */
#pragma once

#include "hmtest.h"

#include <dirent.h>
#include <unistd.h>

#ifndef HM_SCRATCH_TAG
  #error "define HM_SCRATCH_TAG (a short name of the test program) before including hmscratch.h"
#endif

static char hm_scratch_dir[64];

static inline void hm_scratch_remove(void)
{
  DIR           *d;
  struct dirent *ent;
  char           path[PETSC_MAX_PATH_LEN];

  if (!hm_scratch_dir[0] || !(d = opendir(hm_scratch_dir))) return;
  while ((ent = readdir(d))) {
    if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
    snprintf(path, sizeof(path), "%s/%s", hm_scratch_dir, ent->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(hm_scratch_dir);
}

/* Path of `name` in the scratch folder; the four most recent results stay valid. */
static inline const char *tmp_path(const char *name)
{
  static char path[4][PETSC_MAX_PATH_LEN];
  static int  slot = 0;

  if (!hm_scratch_dir[0]) {
    strcpy(hm_scratch_dir, "/tmp/hm_test_" HM_SCRATCH_TAG "_XXXXXX");
    if (!mkdtemp(hm_scratch_dir)) fail_msg("mkdtemp failed");
    atexit(hm_scratch_remove);
  }
  slot = (slot + 1) % 4;
  snprintf(path[slot], sizeof(path[slot]), "%s/%s", hm_scratch_dir, name);
  return path[slot];
}

static inline const char *write_bytes(const char *name, const void *data, size_t len)
{
  const char *path = tmp_path(name);
  FILE       *f    = fopen(path, "wb");

  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

static inline const char *write_text(const char *name, const char *text)
{
  return write_bytes(name, text, strlen(text));
}

/* A model file refused half-way leaves nothing allocated behind (library callers go on after an error):
   PETSc's memory tracking (-malloc_debug, set in tests/meson.build) must show the same usage before
   and after every refused HMModelLoad, whichever stage refused it. */
#include "hmtest.h"
#include <hipmace/model.h>
#include <string.h>
#include <unistd.h>

static PetscLogDouble usage(void)
{
  PetscLogDouble u;
  HM_T(PetscMallocGetCurrentUsage(&u));
  return u;
}

/* Loads path expecting an error; returns the bytes left allocated by the failed load. */
static double refused_load(const char *path)
{
  HMModel        m = (HMModel)0x1;
  PetscErrorCode ierr;
  PetscLogDouble before = usage(), after;

  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  ierr = HMModelLoad(PETSC_COMM_SELF, path, &m);
  PetscPopErrorHandler();
  assert_int_not_equal(ierr, 0);
  assert_null(m);
  after = usage();
  return after - before;
}

static void test_refused_models(void **state)
{
  /* each edit is refused at a different stage of HMModelLoad: opening, the config checks, the
     first layer, the last layer, the HIP head */
  struct {
    const char *label, *edits, *drop;
  } v[] = {
      {"config: unsupported interaction",  "{\"interaction_cls\": \"Foo\"}", NULL                       },
      {"config: correlation out of range", "{\"correlation\": 9}",           NULL                       },
      {"layer 0 tensors missing",          "{}",                             "interactions.0.linear."   },
      {"layer 1 tensors missing",          "{}",                             "interactions.1.linear."   },
      {"product of layer 1 missing",       "{}",                             "products.1."              },
      {"HIP head tensors missing",         "{}",                             "hessian_radial_embedding."},
      {"HIP projection missing",           "{}",                             "hessian_proj_edges."      },
  };
  char           src[PETSC_MAX_PATH_LEN], dir[] = "/tmp/hm_test_leaks_XXXXXX";
  PetscLogDouble base;
  HMModel        m;
  (void)state;

  hm_golden_path("model_small.safetensors", src, sizeof(src));
  /* the baseline: a good model loaded and destroyed returns every byte (so the check below can fail
     only through the error paths) */
  base = usage();
  HM_T(HMModelLoad(PETSC_COMM_SELF, src, &m));
  assert_true(usage() > base);
  HM_T(HMModelDestroy(&m));
  /* the first load fills process-wide caches (3j symbols, log events): measured from the second on */
  print_message("first good load and destroy: %.0f bytes kept (caches)\n", usage() - base);
  base = usage();
  HM_T(HMModelLoad(PETSC_COMM_SELF, src, &m));
  HM_T(HMModelDestroy(&m));
  print_message("second good load and destroy: %.0f bytes kept\n", usage() - base);
  assert_true(usage() == base);

  assert_non_null(mkdtemp(dir));
  print_message("missing file: %.0f bytes left\n", refused_load("/nonexistent/model.safetensors"));
  assert_true(refused_load("/nonexistent/model.safetensors") == 0);
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    char   dst[PETSC_MAX_PATH_LEN];
    double left;
    snprintf(dst, sizeof(dst), "%s/v%d.safetensors", dir, (int)i);
    hm_write_variant(src, dst, v[i].edits, v[i].drop);
    left = refused_load(dst);
    print_message("%s: %.0f bytes left\n", v[i].label, left);
    assert_true(left == 0);
    assert_int_equal(unlink(dst), 0);
  }
  assert_int_equal(rmdir(dir), 0);
}

HM_TEST_MAIN_OF(test_refused_models)

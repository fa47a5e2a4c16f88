/* The optimiser's results as a JSON object for the run summary. */
#include "optimize/optimizeimpl.h"
#include <jansson.h>

PetscErrorCode HMOptimizerToJSON(HMOptimizer o, void *jobj)
{
  json_t *root = (json_t *)jobj, *j, *e, *f;

  PetscFunctionBegin;
  if (!root) PetscFunctionReturn(PETSC_SUCCESS);
  PetscCheck(json_is_object(root), PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "HMOptimizerToJSON needs a JSON object");
  j = json_object();
  e = json_array();
  f = json_array();
  json_object_set_new(j, "method", json_string(o->type_name));
  json_object_set_new(j, "hessian", json_string(HMOptimizerHessians[o->hessian]));
  json_object_set_new(j, "hessian_every", json_integer(o->hess_every));
  json_object_set_new(j, "converged", json_boolean(o->converged));
  json_object_set_new(j, "steps", json_integer(o->steps));
  json_object_set_new(j, "rejected_steps", json_integer(o->rejected));
  json_object_set_new(j, "fmax", json_real(o->fmax));
  json_object_set_new(j, "fmax_tolerance", json_real(o->fmax_tol));
  json_object_set_new(j, "energy_initial", json_real(o->E0));
  json_object_set_new(j, "energy_final", json_real(o->E));
  json_object_set_new(j, "hessian_evaluations", json_integer(o->nhess));
  for (PetscInt k = 0; k < o->nh; k++) {
    json_array_append_new(e, json_real(o->hE[k]));
    json_array_append_new(f, json_real(o->hF[k]));
  }
  json_object_set_new(j, "energies", e);
  json_object_set_new(j, "fmax_per_step", f);
  if (o->mode) json_object_set_new(j, "mode_eigenvalue", json_real(o->mode_eig));
  json_object_set_new(root, "optimize", j);
  PetscFunctionReturn(PETSC_SUCCESS);
}

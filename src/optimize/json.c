/* The optimiser's results as a JSON object for the run summary. */
#include "optimize/optimizeimpl.h"
#include <jansson.h>

/* -optimize_cell: the final cell and stress, the convergence measure and its tolerance (GPa), per step */
static PetscErrorCode CellToJSON(HMOptimizer o, json_t *j)
{
  static const int voigt[6] = {0, 4, 8, 5, 2, 1}; /* xx yy zz yz xz xy */
  json_t          *c = json_array(), *s = json_array(), *v = json_array(), *h = json_array();

  PetscFunctionBegin;
  for (int a = 0; a < 3; a++) {
    json_array_append_new(c, json_pack("[fff]", o->cell[3 * a], o->cell[3 * a + 1], o->cell[3 * a + 2]));
    json_array_append_new(s, json_pack("[fff]", o->stress[3 * a], o->stress[3 * a + 1], o->stress[3 * a + 2]));
  }
  for (int k = 0; k < 6; k++) json_array_append_new(v, json_real(o->stress[voigt[k]] * HM_EV_A3_GPA));
  for (PetscInt k = 0; k < o->nh; k++) json_array_append_new(h, json_real(o->hS[k] * HM_EV_A3_GPA));
  json_object_set_new(j, "cell", c);
  json_object_set_new(j, "stress", s);
  json_object_set_new(j, "stress_voigt_GPa", v);
  json_object_set_new(j, "pressure_GPa", json_real(o->pressure * HM_EV_A3_GPA));
  json_object_set_new(j, "smax_GPa", json_real(o->smax * HM_EV_A3_GPA));
  json_object_set_new(j, "smax_tolerance_GPa", json_real(o->smax_tol * HM_EV_A3_GPA));
  json_object_set_new(j, "smax_per_step_GPa", h);
  PetscFunctionReturn(PETSC_SUCCESS);
}

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
  json_object_set_new(j, "keep_history", json_boolean(o->keep_history));
  json_object_set_new(j, "scale_hessian", json_boolean(o->scale_hessian));
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
  if (o->ncell) PetscCall(CellToJSON(o, j));
  if (o->chk_done) {
    json_t *c = json_object(), *l = json_array(), *k = json_array();
    for (PetscInt i = 0; i < o->nchk; i++) {
      json_array_append_new(l, json_real(o->chk_lam[i]));
      json_array_append_new(k, json_real(o->chk_c[i]));
    }
    json_object_set_new(c, "tolerance", json_real(o->check_tol));
    json_object_set_new(c, "step", json_real(HM_OPTIMIZER_CHECK_STEP));
    json_object_set_new(c, "hessian_eigenvalues", l);
    json_object_set_new(c, "energy_curvatures", k);
    json_object_set_new(c, "more_not_checked", json_boolean(o->chk_more));
    json_object_set_new(c, "escapes", json_integer(o->escapes));
    json_object_set_new(c, "evaluations", json_integer(o->chk_evals));
    json_object_set_new(j, "curvature_check", c);
  }
  json_object_set_new(root, "optimize", j);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* hipmace-scaling's launcher: runs hipmace under mpiexec and reads the summary it writes. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include "scaling.h"

extern char **environ;

static PetscErrorCode JNumber(json_t *obj, const char path[], const char key[], const char where[], double *v)
{
  json_t *x = json_object_get(obj, key);
  PetscFunctionBegin;
  PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field '%s%s' missing or not a number", path, where, key);
  *v = json_number_value(x);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* max and mean of a numeric array field */
static PetscErrorCode JArrayStats(json_t *obj, const char path[], const char key[], double *mx, double *mean, PetscInt *len)
{
  json_t *a = json_object_get(obj, key);
  size_t  n;
  double  s = 0, m = 0;
  PetscFunctionBegin;
  PetscCheck(json_is_array(a) && json_array_size(a) > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.%s' missing or not a non-empty array", path, key);
  n = json_array_size(a);
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(a, i);
    PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.%s[%zu]' is not a number", path, key, i);
    s += json_number_value(x);
    m = i ? PetscMax(m, json_number_value(x)) : json_number_value(x);
  }
  if (mx) *mx = m;
  if (mean) *mean = s / (double)n;
  if (len) *len = (PetscInt)n;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Fills the measured fields of r from a parsed hipmace -summary tree. */
static PetscErrorCode ParseSummary(json_t *root, const char path[], HMScalingRun *r)
{
  json_t  *par, *tx, *hb;
  double   v = 0;
  PetscInt len;
  PetscFunctionBegin;
  par = json_object_get(root, "parallel");
  PetscCheck(json_is_object(par), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: object 'parallel' missing (hipmace too old?)", path);
  tx = json_object_get(par, "timings_max");
  hb = json_object_get(par, "halo_bytes_per_layer_max_rank");
  PetscCheck(json_is_object(tx), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: object 'parallel.timings_max' missing", path);
  PetscCheck(json_is_array(hb), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: array 'parallel.halo_bytes_per_layer_max_rank' missing", path);
  PetscCall(JNumber(root, path, "natoms", "", &v));
  r->atoms = (PetscInt)v;
  PetscCall(JNumber(root, path, "ranks", "", &v));
  r->ranks = (PetscInt)v;
  PetscCall(JNumber(root, path, "energy", "", &r->energy));
  PetscCall(JNumber(tx, path, "total", "parallel.timings_max.", &r->total_s));
  for (int s = 0; s < HM_SC_NSTAGE; s++) PetscCall(JNumber(tx, path, HMScalingStageNames[s], "parallel.timings_max.", &r->stage_s[s]));
  PetscCall(JNumber(par, path, "load_imbalance", "parallel.", &r->load_imbalance));
  PetscCall(JNumber(par, path, "halo_bytes_hip_max_rank", "parallel.", &r->hip_bytes));
  PetscCall(JArrayStats(par, path, "atoms_per_rank", &r->atoms_max, NULL, &len));
  PetscCheck(len == r->ranks, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: 'parallel.atoms_per_rank' has %" PetscInt_FMT " entries for %" PetscInt_FMT " ranks", path, len, r->ranks);
  PetscCall(JArrayStats(par, path, "halo_atoms_near_per_rank", &r->near_max, &r->near_mean, NULL));
  PetscCall(JArrayStats(par, path, "halo_atoms_far_per_rank", &r->far_max, &r->far_mean, NULL));
  PetscCall(JArrayStats(par, path, "hessian_blocks_per_rank", &r->blocks_max, NULL, NULL));
  PetscCall(JArrayStats(par, path, "peak_rss_mb_per_rank", &r->rss_max_mb, NULL, NULL));
  r->nlayers = (PetscInt)json_array_size(hb);
  PetscCheck(r->nlayers <= HM_SC_MAXLAYER, PETSC_COMM_SELF, PETSC_ERR_SUP, "%s: %" PetscInt_FMT " layers in 'parallel.halo_bytes_per_layer_max_rank'; at most %d supported", path, r->nlayers, HM_SC_MAXLAYER);
  for (PetscInt t = 0; t < r->nlayers; t++) {
    json_t *x = json_array_get(hb, (size_t)t);
    PetscCheck(json_is_number(x), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: field 'parallel.halo_bytes_per_layer_max_rank[%" PetscInt_FMT "]' is not a number", path, t);
    r->layer_bytes[t] = json_number_value(x);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Fills the measured fields of r (not the efficiencies) from a hipmace -summary file. */
PetscErrorCode HMScalingReadSummary(const char path[], HMScalingRun *r)
{
  json_error_t   err;
  json_t        *root;
  PetscErrorCode ierr;
  PetscFunctionBegin;
  root = json_load_file(path, 0, &err);
  PetscCheck(root, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "%s:%d: %s", path, err.line, err.text);
  ierr = ParseSummary(root, path, r);
  json_decref(root);
  PetscCall(ierr);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Variables an MPI launcher gives its processes: a child mpiexec that inherits ours (this program is an MPI
   singleton, or was itself launched) would try to join our job and fail. */
static PetscBool LauncherVariable(const char *e)
{
  static const char *const drop[] = {"PMIX_", "PMI_", "OMPI_COMMAND=", "OMPI_APP_CTX", "OMPI_COMM_WORLD", "OMPI_FILE_LOCATION=", "OMPI_FIRST_RANKS=", "OMPI_NUM_APP_CTX=", "OMPI_UNIVERSE_SIZE=", "OMPI_MCA_ess", "OMPI_MCA_orte_", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir=", "OMPI_MCA_shmem_RUNTIME_QUERY_hint=", "OMPI_MCA_mpi_oversubscribe="};
  for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++)
    if (!strncmp(e, drop[k], strlen(drop[k]))) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* Runs argv (PATH search), stdout and stderr to log, stdin from /dev/null; returns the exit code (128 + signal). */
PetscErrorCode HMScalingSpawn(char *const argv[], const char log[], int *code)
{
  posix_spawn_file_actions_t fa;
  char                     **env;
  PetscInt                   ne = 0, k = 0;
  pid_t                      pid;
  int                        st, rc;
  PetscFunctionBegin;
  while (environ[ne]) ne++;
  PetscCall(PetscMalloc1(ne + 1, &env));
  for (PetscInt i = 0; i < ne; i++)
    if (!LauncherVariable(environ[i])) env[k++] = environ[i];
  env[k] = NULL;
  PetscCheck(!posix_spawn_file_actions_init(&fa), PETSC_COMM_SELF, PETSC_ERR_SYS, "posix_spawn_file_actions_init failed");
  rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!rc) rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  PetscCall(PetscFree(env));
  PetscCheck(!rc, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot start '%s': %s", argv[0], strerror(rc));
  while (waitpid(pid, &st, 0) < 0) PetscCheck(errno == EINTR, PETSC_COMM_SELF, PETSC_ERR_SYS, "waitpid for '%s': %s", argv[0], strerror(errno));
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) :
                                                              255;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Splits on blanks into argv[*argc...] (no quoting: paths with blanks are not supported). */
static PetscErrorCode SplitWords(char *buf, const char what[], int *argc, char *argv[])
{
  char *save = NULL, *w;
  PetscFunctionBegin;
  for (w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
    PetscCheck(*argc < HM_SC_MAXARGS - 16, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "%s: too many words", what);
    argv[(*argc)++] = w;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Prints the last lines of a failed run's log, so the cause is on the terminal. */
void HMScalingPrintLogTail(const char log[], int nlines)
{
  FILE *f = fopen(log, "r");
  char  buf[8192];
  long  sz;
  if (!f) return;
  fseek(f, 0, SEEK_END);
  sz = ftell(f);
  fseek(f, sz > (long)sizeof(buf) - 1 ? sz - (long)sizeof(buf) + 1 : 0, SEEK_SET);
  sz      = (long)fread(buf, 1, sizeof(buf) - 1, f);
  buf[sz] = 0;
  fclose(f);
  {
    char *p  = buf + sz;
    int   nl = 0;
    while (p > buf && nl <= nlines)
      if (*--p == '\n' && p[1]) nl++;
    fprintf(stderr, "--- end of %s ---\n%s%s", log, p == buf ? p : p + 1, sz && buf[sz - 1] != '\n' ? "\n" : "");
  }
}

/* One hipmace run on k ranks; the summary is read into r. */
PetscErrorCode HMScalingRunHipmace(const HMScalingOptions *o, PetscInt k, const char xyz[], PetscInt rep, HMScalingRun *r)
{
  char  launcher[1024], extra[1024], nstr[32], summary[PETSC_MAX_PATH_LEN], log[PETSC_MAX_PATH_LEN], cmd[4096] = "";
  char *argv[HM_SC_MAXARGS];
  int   argc = 0, code;
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(launcher, o->mpiexec, sizeof(launcher)));
  PetscCall(PetscStrncpy(extra, o->extra, sizeof(extra)));
  PetscCall(PetscSNPrintf(nstr, sizeof(nstr), "%" PetscInt_FMT, k));
  if (o->repeat > 1) {
    PetscCall(PetscSNPrintf(summary, sizeof(summary), "%s/summary_%" PetscInt_FMT "_r%" PetscInt_FMT ".json", o->out, k, rep + 1));
    PetscCall(PetscSNPrintf(log, sizeof(log), "%s/run_%" PetscInt_FMT "_r%" PetscInt_FMT ".log", o->out, k, rep + 1));
  } else {
    PetscCall(PetscSNPrintf(summary, sizeof(summary), "%s/summary_%" PetscInt_FMT ".json", o->out, k));
    PetscCall(PetscSNPrintf(log, sizeof(log), "%s/run_%" PetscInt_FMT ".log", o->out, k));
  }
  PetscCall(SplitWords(launcher, "-mpiexec", &argc, argv));
  PetscCheck(argc > 0, PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "-mpiexec: empty launcher command");
  argv[argc++] = (char *)"-n";
  argv[argc++] = nstr;
  argv[argc++] = (char *)o->hipmace;
  argv[argc++] = (char *)"-structure";
  argv[argc++] = (char *)xyz;
  argv[argc++] = (char *)"-model";
  argv[argc++] = (char *)o->model;
  argv[argc++] = (char *)"-modes";
  argv[argc++] = (char *)"none";
  argv[argc++] = (char *)"-summary";
  argv[argc++] = summary;
  PetscCall(SplitWords(extra, "-hipmace_options", &argc, argv));
  argv[argc] = NULL;
  for (int i = 0; i < argc; i++) {
    PetscCall(PetscStrlcat(cmd, argv[i], sizeof(cmd)));
    if (i + 1 < argc) PetscCall(PetscStrlcat(cmd, " ", sizeof(cmd)));
  }
  remove(summary);
  PetscCall(HMScalingSpawn(argv, log, &code));
  if (code) HMScalingPrintLogTail(log, 8);
  PetscCheck(code == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "run on %" PetscInt_FMT " ranks failed (exit code %d): %s (output in %s)", k, code, cmd, log);
  PetscCall(HMScalingReadSummary(summary, r));
  PetscCheck(r->ranks == k, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: 'ranks' is %" PetscInt_FMT ", expected %" PetscInt_FMT " (is -mpiexec the launcher of the MPI hipmace was built with?)", summary, r->ranks, k);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Path of an executable found on PATH, or "" */
void HMScalingFindOnPath(const char name[], char out[], size_t len)
{
  const char *path = getenv("PATH"), *p = path;
  out[0] = 0;
  while (p && *p) {
    const size_t seg = strcspn(p, ":");
    char         cand[PETSC_MAX_PATH_LEN];
    if (seg > 0 && seg + strlen(name) + 2 < sizeof(cand)) {
      memcpy(cand, p, seg);
      cand[seg] = '/';
      strcpy(cand + seg + 1, name);
      if (!access(cand, X_OK)) {
        snprintf(out, len, "%s", cand);
        return;
      }
    }
    p += seg + (p[seg] == ':');
  }
}

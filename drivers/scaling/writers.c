/* hipmace-scaling's outputs: scaling.csv, scaling.json and the gnuplot figure. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <jansson.h>
#include <hipmace/app.h>
#include "scaling.h"

/* One row per run; the halo-byte columns follow the first run's layer count. */
PetscErrorCode HMScalingWriteCSV(const char path[], PetscInt nruns, const HMScalingRun runs[])
{
  FILE    *f;
  PetscInt L = nruns > 0 ? runs[0].nlayers : 0;
  int      ok;
  PetscFunctionBegin;
  f = fopen(path, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing (%s)", path, strerror(errno));
  ok = fprintf(f, "ranks,atoms,atoms_per_rank,total_s,efficiency,efficiency_compute,model_efficiency") >= 0;
  for (int s = 0; s < HM_SC_NSTAGE; s++) ok = ok && fprintf(f, ",%s_s", HMScalingStageNames[s]) >= 0;
  ok = ok && fprintf(f, ",load_imbalance,halo_near_max,halo_near_mean,halo_far_max,halo_far_mean") >= 0;
  for (PetscInt t = 0; t < L; t++) ok = ok && fprintf(f, ",halo_bytes_layer%" PetscInt_FMT, t + 1) >= 0;
  ok = ok && fprintf(f, ",halo_bytes_hip,hessian_blocks_max,peak_rss_mb_max,energy_eV,density_per_A3,load_average,repeats,oversubscribed\n") >= 0;
  for (PetscInt i = 0; i < nruns && ok; i++) {
    const HMScalingRun *r = &runs[i];
    ok                    = fprintf(f, "%" PetscInt_FMT ",%" PetscInt_FMT ",%.6g,%.6g,%.6g,%.6g,%.6g", r->ranks, r->atoms, (double)r->atoms / (double)r->ranks, r->total_s, r->efficiency, r->efficiency_compute, r->model_efficiency) >= 0;
    for (int s = 0; s < HM_SC_NSTAGE; s++) ok = ok && fprintf(f, ",%.6g", r->stage_s[s]) >= 0;
    ok = ok && fprintf(f, ",%.6g,%.0f,%.2f,%.0f,%.2f", r->load_imbalance, r->near_max, r->near_mean, r->far_max, r->far_mean) >= 0;
    for (PetscInt t = 0; t < L; t++) ok = ok && fprintf(f, ",%.0f", t < r->nlayers ? r->layer_bytes[t] : 0.0) >= 0;
    ok = ok && fprintf(f, ",%.0f,%.0f,%.2f,%.10f,%.6f,%.2f,%" PetscInt_FMT ",%d\n", r->hip_bytes, r->blocks_max, r->rss_max_mb, r->energy, r->density, r->load_average, r->repeats, r->oversubscribed ? 1 : 0) >= 0;
  }
  ok = (fclose(f) == 0) && ok;
  PetscCheck(ok, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed (disk full?)", path);
  PetscFunctionReturn(PETSC_SUCCESS);
}

const char *HMScalingModeName(HMScalingMode mode)
{
  return mode == HM_SCALING_WEAK ? "weak" : "strong";
}

static const char *BaseName(const char path[])
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* One line naming the model's assumptions (printed, and stored in the JSON). */
PetscErrorCode HMScalingAssumptions(const HMScalingModel *m, char buf[], size_t len)
{
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(buf, len,
                          "latency %.4g us and bandwidth %.4g GB/s per rank; cubic domains, perfect load balance; compute %.3g ms/atom from the base run; halo %s (r_max %.4g A, Hessian cutoff %.4g A, density %.4f atoms/A^3); per layer one message to each neighbour rank (up to 26) plus the HIP exchange; energy summed exactly by one all-reduce (log2 P rounds of %.0f B); set-up in parallel: each rank reads N/P atoms (%.2g us/atom), parallel RCB (%.2g ns per atom and level locally, 18 + log2 N / 4 reductions per level), all-to-all to the parts; rank 0's serial read + RCB (%.2g ns per atom and level) + scatter reported apart",
                          m->latency * 1e6, m->bandwidth / 1e9, m->rate * 1e3, m->geometric ? "from the cube-shell geometry" : "fitted as c n^(2/3) to the runs", m->r_near, m->r_far, m->density, HM_SC_ENERGY_BYTES, m->read_rate * 1e6, m->prcb_rate * 1e9, m->rcb_rate * 1e9));
  PetscFunctionReturn(PETSC_SUCCESS);
}

static json_t *PredictionJSON(const HMScalingPrediction *p)
{
  json_t *o = json_object();
  json_object_set_new(o, "ranks", json_integer((json_int_t)p->P));
  json_object_set_new(o, "atoms_per_rank", json_real(p->n));
  json_object_set_new(o, "atoms", json_real(p->N));
  json_object_set_new(o, "halo_near", json_real(p->halo_near));
  json_object_set_new(o, "halo_far", json_real(p->halo_far));
  json_object_set_new(o, "neighbour_ranks_near", json_real(p->nb_near));
  json_object_set_new(o, "neighbour_ranks_far", json_real(p->nb_far));
  json_object_set_new(o, "t_compute_s", json_real(p->t_compute));
  json_object_set_new(o, "t_comm_s", json_real(p->t_comm));
  json_object_set_new(o, "t_total_s", json_real(p->t_total));
  json_object_set_new(o, "efficiency", json_real(p->efficiency));
  json_object_set_new(o, "t_serial_setup_s", json_real(p->t_setup)); /* the set-up as it runs now (parallel) */
  json_object_set_new(o, "efficiency_with_serial_setup", json_real(p->efficiency_setup));
  json_object_set_new(o, "t_rank0_setup_s", json_real(p->t_setup_rank0));
  json_object_set_new(o, "efficiency_with_rank0_setup", json_real(p->efficiency_setup_rank0));
  return o;
}

PetscErrorCode HMScalingWriteJSON(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, const char assumptions[], int cores, const char date[], const char host[], const char path[])
{
  json_t *root = json_object(), *jr = json_array(), *jm = json_object(), *jp = json_object(), *jw = json_array(), *pred = json_array();
  char   *text;
  PetscFunctionBegin;
  json_object_set_new(root, "program", json_string("hipmace-scaling " HM_VERSION));
  json_object_set_new(root, "mode", json_string(HMScalingModeName(o->mode)));
  json_object_set_new(root, "system", json_string(o->system));
  if (o->molecule[0]) json_object_set_new(root, "molecule", json_string(o->molecule));
  json_object_set_new(root, "model", json_string(o->model));
  json_object_set_new(root, o->mode == HM_SCALING_WEAK ? "atoms_per_rank" : "atoms", json_integer(o->size));
  json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(root, "repeat", json_integer(o->repeat));
  json_object_set_new(root, "mpiexec", json_string(o->mpiexec));
  json_object_set_new(root, "hipmace", json_string(o->hipmace));
  json_object_set_new(root, "cores", json_integer(cores));
  json_object_set_new(root, "host", json_string(host));
  json_object_set_new(root, "date", json_string(date));
  json_object_set_new(root, "efficiency_definition", json_string(o->mode == HM_SCALING_WEAK ? "t(k1)/t(k), k1 the smallest rank count, t = timings_max.total" : "t(k1) k1 / (t(k) k), k1 the smallest rank count, t = timings_max.total"));
  for (PetscInt i = 0; i < nruns; i++) {
    const HMScalingRun *r = &runs[i];
    json_t             *x = json_object(), *lb = json_array(), *st = json_object();
    json_object_set_new(x, "ranks", json_integer(r->ranks));
    json_object_set_new(x, "atoms", json_integer(r->atoms));
    json_object_set_new(x, "atoms_per_rank", json_real((double)r->atoms / (double)r->ranks));
    json_object_set_new(x, "atoms_per_rank_max", json_real(r->atoms_max));
    json_object_set_new(x, "total_s", json_real(r->total_s));
    for (int s = 0; s < HM_SC_NSTAGE; s++) json_object_set_new(st, HMScalingStageNames[s], json_real(r->stage_s[s]));
    json_object_set_new(x, "stage_max_s", st);
    json_object_set_new(x, "efficiency", json_real(r->efficiency));
    json_object_set_new(x, "efficiency_compute", json_real(r->efficiency_compute));
    json_object_set_new(x, "model_efficiency", json_real(r->model_efficiency));
    json_object_set_new(x, "load_imbalance", json_real(r->load_imbalance));
    json_object_set_new(x, "halo_near_max", json_real(r->near_max));
    json_object_set_new(x, "halo_near_mean", json_real(r->near_mean));
    json_object_set_new(x, "halo_far_max", json_real(r->far_max));
    json_object_set_new(x, "halo_far_mean", json_real(r->far_mean));
    for (PetscInt t = 0; t < r->nlayers; t++) json_array_append_new(lb, json_real(r->layer_bytes[t]));
    json_object_set_new(x, "halo_bytes_per_layer_max_rank", lb);
    json_object_set_new(x, "halo_bytes_hip_max_rank", json_real(r->hip_bytes));
    json_object_set_new(x, "hessian_blocks_max_rank", json_real(r->blocks_max));
    json_object_set_new(x, "peak_rss_mb_max_rank", json_real(r->rss_max_mb));
    json_object_set_new(x, "energy_eV", json_real(r->energy));
    json_object_set_new(x, "density_per_A3", json_real(r->density));
    json_object_set_new(x, "repeats", json_integer(r->repeats));
    json_object_set_new(x, "load_average_before", json_real(r->load_average));
    json_object_set_new(x, "oversubscribed", json_boolean(r->oversubscribed));
    json_array_append_new(jr, x);
  }
  json_object_set_new(root, "runs", jr);
  json_object_set_new(jm, "formula", json_string("T(P) = rate n + sum_layers [latency nb_near + h_near(n) width_t 8 / bandwidth] + latency nb_far + h_far(n) hip_width 8 / bandwidth + ceil(log2 P) (latency + energy_bytes / bandwidth)"));
  json_object_set_new(jm, "energy_bytes", json_real(HM_SC_ENERGY_BYTES));
  json_object_set_new(jm, "serial_setup_formula", json_string("T_setup(N, P) = read N/P + prcb (N/P) L + latency ceil(log2 P) (3 + L R) + 2 (P - 1) latency + [scatter_bytes N/P + 128 ceil(log2 P) R sum_l min(2^l, P)] / bandwidth, L = ceil(log2 P), R = 18 + ceil(ceil(log2 N) / 4) (parallel read and RCB, the default)"));
  json_object_set_new(jm, "rank0_setup_formula", json_string("T_rank0(N, P) = read N + rcb N ceil(log2 P) + (P - 1) latency + scatter_bytes N / bandwidth (rank 0 alone: -read_parallel false, formats read serially)"));
  json_object_set_new(jm, "assumptions", json_string(assumptions));
  json_object_set_new(jp, "latency_s", json_real(m->latency));
  json_object_set_new(jp, "bandwidth_bytes_per_s", isinf(m->bandwidth) ? json_string("inf") : json_real(m->bandwidth));
  json_object_set_new(jp, "rate_s_per_atom", json_real(m->rate));
  json_object_set_new(jp, "serial_read_s_per_atom", json_real(m->read_rate));
  json_object_set_new(jp, "serial_rcb_s_per_atom_level", json_real(m->rcb_rate));
  json_object_set_new(jp, "parallel_rcb_s_per_atom_level", json_real(m->prcb_rate));
  json_object_set_new(jp, "density_per_A3", json_real(m->density));
  json_object_set_new(jp, "r_near_A", json_real(m->r_near));
  json_object_set_new(jp, "r_far_A", json_real(m->r_far));
  for (PetscInt t = 0; t < m->nlayers; t++) json_array_append_new(jw, json_real(m->width[t]));
  json_object_set_new(jp, "halo_width_doubles_per_layer", jw);
  json_object_set_new(jp, "halo_width_doubles_hip", json_real(m->hip_width));
  json_object_set_new(jp, "halo_fit_c_near", json_real(m->c_near));
  json_object_set_new(jp, "halo_fit_c_far", json_real(m->c_far));
  json_object_set_new(jp, "halo_model", json_string(m->geometric ? "geometric" : "fit"));
  json_object_set_new(jm, "parameters", jp);
  for (PetscInt i = 0; i < HM_SC_NMODEL; i++) {
    HMScalingPrediction p;
    if (o->mode == HM_SCALING_STRONG && o->size / HMScalingModelRanks[i] < 1) break;
    PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, HMScalingModelRanks[i], &p));
    json_array_append_new(pred, PredictionJSON(&p));
    if (HMScalingModelRanks[i] == 1024) {
      json_object_set_new(jm, "efficiency_1024", json_real(p.efficiency));
      json_object_set_new(jm, "efficiency_1024_with_serial_setup", json_real(p.efficiency_setup)); /* the set-up as it runs now */
      json_object_set_new(jm, "efficiency_1024_with_rank0_setup", json_real(p.efficiency_setup_rank0));
    }
  }
  json_object_set_new(jm, "predictions", pred);
  json_object_set_new(root, "performance_model", jm); /* "model" is the model file */
  text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  json_decref(root);
  PetscCheck(text, PETSC_COMM_SELF, PETSC_ERR_MEM, "%s: cannot format the JSON", path);
  PetscCall(HMFileWriteAtomic(PETSC_COMM_SELF, path, text));
  free(text);
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Two panels: efficiency (measured and the model to 10^4 ranks) and time per stage. Returns PETSC_FALSE
   in *made when gnuplot is not installed. */
PetscErrorCode HMScalingPlot(const HMScalingOptions *o, PetscInt nruns, const HMScalingRun runs[], const HMScalingModel *m, int cores, PetscBool *made)
{
  char  gp[PETSC_MAX_PATH_LEN], dm[PETSC_MAX_PATH_LEN], dp[PETSC_MAX_PATH_LEN], png[PETSC_MAX_PATH_LEN], log[PETSC_MAX_PATH_LEN], gnuplot[PETSC_MAX_PATH_LEN], title[1024];
  FILE *f;
  int   code;
  PetscFunctionBegin;
  *made = PETSC_FALSE;
  HMScalingFindOnPath("gnuplot", gnuplot, sizeof(gnuplot));
  if (!gnuplot[0]) {
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "hipmace-scaling: gnuplot not found (apt-get install gnuplot-nox): %s/scaling.png not written\n", o->out));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  PetscCall(PetscSNPrintf(dm, sizeof(dm), "%s/scaling_measured.dat", o->out));
  PetscCall(PetscSNPrintf(dp, sizeof(dp), "%s/scaling_model.dat", o->out));
  PetscCall(PetscSNPrintf(gp, sizeof(gp), "%s/scaling.gp", o->out));
  PetscCall(PetscSNPrintf(png, sizeof(png), "%s/scaling.png", o->out));
  PetscCall(PetscSNPrintf(log, sizeof(log), "%s/gnuplot.log", o->out));
  f = fopen(dm, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", dm);
  fprintf(f, "# ranks efficiency efficiency_compute total read neighbours layers hessian output oversubscribed\n");
  for (PetscInt i = 0; i < nruns; i++) {
    fprintf(f, "%" PetscInt_FMT " %.6g %.6g %.6g", runs[i].ranks, runs[i].efficiency, runs[i].efficiency_compute, runs[i].total_s);
    for (int s = 0; s < HM_SC_NSTAGE; s++) fprintf(f, " %.6g", runs[i].stage_s[s]);
    fprintf(f, " %d\n", runs[i].oversubscribed ? 1 : 0);
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", dm);
  f = fopen(dp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", dp);
  fprintf(f, "# ranks efficiency efficiency_with_serial_setup t_total t_compute t_comm t_setup\n");
  {
    double last = 0;
    for (int i = 0; i <= 80; i++) {
      const double        P = round(pow(10.0, i / 20.0));
      HMScalingPrediction p;
      if (P == last) continue;
      last = P;
      if (o->mode == HM_SCALING_STRONG && o->size / P < 1) break;
      PetscCall(HMScalingModelPredict(m, o->mode, (double)o->size, P, &p));
      fprintf(f, "%.0f %.8g %.8g %.6g %.6g %.6g %.6g\n", P, p.efficiency, p.efficiency_setup, p.t_total, p.t_compute, p.t_comm, p.t_setup);
    }
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", dp);
  if (o->mode == HM_SCALING_WEAK) PetscCall(PetscSNPrintf(title, sizeof(title), "Weak scaling of hipmace: %s, %" PetscInt_FMT " atoms per rank, model %s (%d cores)", o->system, o->size, BaseName(o->model), cores));
  else PetscCall(PetscSNPrintf(title, sizeof(title), "Strong scaling of hipmace: %s, %" PetscInt_FMT " atoms, model %s (%d cores)", o->system, o->size, BaseName(o->model), cores));
  f = fopen(gp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s: cannot open for writing", gp);
  {
    const double kmax = runs[nruns - 1].ranks, xhi2 = PetscMax(2.0 * kmax, 4.0);
    fprintf(f, "# written by hipmace-scaling; run again with: gnuplot %s\n", gp);
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1500,700 noenhanced font 'Sans,11' } else { set terminal png size 1500,700 noenhanced }\n");
    fprintf(f, "set output '%s'\n", png);
    fprintf(f, "set multiplot layout 1,2 title \"%s\" font ',13'\n", title);
    fprintf(f, "set logscale x\nset grid\nset key outside below center horizontal maxrows 3 box samplen 2 width 1\nset bmargin 8\nset xlabel 'MPI ranks P'\n");
    /* ranks beyond the core count: shaded, their times are not scaling data */
    fprintf(f, "set object 1 rect from %g, graph 0 to 20000, graph 1 fc rgb '#ececec' fs solid 1.0 noborder behind\n", cores + 0.5);
    fprintf(f, "set label 1 \"more ranks than cores:\\nhalo/correctness only\" at %g, graph 0.08 left font ',9' textcolor rgb '#707070'\n", (cores + 0.5) * 1.08);
    fprintf(f, "set xrange [0.8:15000]\nset yrange [0:1.12]\nset ytics 0.1\n");
    fprintf(f, "set ylabel '%s'\n", o->mode == HM_SCALING_WEAK ? "parallel efficiency  t(1) / t(P)" : "parallel efficiency  t(1) / (P t(P))");
    fprintf(f, "set title '%s: measured runs and model (latency %g us, %g GB/s per rank)'\n", o->mode == HM_SCALING_WEAK ? "Weak-scaling efficiency" : "Strong-scaling efficiency", m->latency * 1e6, m->bandwidth / 1e9);
    fprintf(f, "plot '%s' u 1:2 w l lw 2.5 lc rgb '#1f77b4' t 'model (distributed part)', \\\n", dp);
    fprintf(f, "     '%s' u 1:3 w l lw 2 dt 2 lc rgb '#d62728' t 'model + serial setup on rank 0', \\\n", dp);
    fprintf(f, "     '%s' u 1:($10 == 0 ? $2 : 1/0) w p pt 7 ps 1.6 lc rgb '#000000' t 'measured: total', \\\n", dm);
    fprintf(f, "     '%s' u 1:($10 == 0 ? $3 : 1/0) w p pt 5 ps 1.3 lc rgb '#2ca02c' t 'measured: layers + Hessian', \\\n", dm);
    fprintf(f, "     '%s' u 1:($10 != 0 ? $2 : 1/0) w p pt 6 ps 1.6 lc rgb '#808080' t 'oversubscribed run'\n", dm);
    fprintf(f, "unset label 1\n");
    if (runs[nruns - 1].oversubscribed) fprintf(f, "set label 1 \"oversubscribed:\\nnot timing data\" at %g, graph 0.5 left font ',9' textcolor rgb '#707070'\n", kmax * 1.1);
    fprintf(f, "set xrange [0.8:%g]\nset autoscale y\nset yrange [0:*]\nset ytics autofreq\n", xhi2);
    fprintf(f, "set xtics (");
    for (PetscInt i = 0; i < nruns; i++) fprintf(f, "%s'%" PetscInt_FMT "' %" PetscInt_FMT, i ? ", " : "", runs[i].ranks, runs[i].ranks);
    fprintf(f, ")\n");
    fprintf(f, "set ylabel 'wall time of the slowest rank [s]'\nset title 'Time per stage (max over ranks)'\n");
    fprintf(f, "plot '%s' u 1:4 w lp lw 2.5 pt 7 lc rgb '#000000' t 'total', \\\n", dm);
    fprintf(f, "     '%s' u 1:7 w lp lw 2 pt 5 lc rgb '#1f77b4' t 'layers', \\\n", dm);
    fprintf(f, "     '%s' u 1:8 w lp lw 2 pt 9 lc rgb '#ff7f0e' t 'Hessian', \\\n", dm);
    fprintf(f, "     '%s' u 1:6 w lp lw 2 pt 11 lc rgb '#2ca02c' t 'neighbours', \\\n", dm);
    fprintf(f, "     '%s' u 1:5 w lp lw 2 pt 13 lc rgb '#9467bd' t 'read (rank 0)', \\\n", dm);
    fprintf(f, "     '%s' u 1:9 w lp lw 2 pt 3 lc rgb '#8c564b' t 'output'\n", dm);
    fprintf(f, "unset multiplot\n");
  }
  PetscCheck(fclose(f) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "%s: write failed", gp);
  {
    char *argv[3] = {gnuplot, gp, NULL};
    PetscCall(HMScalingSpawn(argv, log, &code));
  }
  if (code) HMScalingPrintLogTail(log, 8);
  PetscCheck(code == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "gnuplot %s failed (exit code %d; output in %s)", gp, code, log);
  *made = PETSC_TRUE;
  PetscFunctionReturn(PETSC_SUCCESS);
}

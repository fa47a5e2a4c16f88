/* Output files of the drivers: checked before any work, written under a temporary name and renamed. */
#include <hipmace/app.h>
#include <errno.h>
#include <unistd.h>

PetscErrorCode HMFileCheckWritable(const char opt[], const char path[])
{
  char  tmp[PETSC_MAX_PATH_LEN];
  FILE *f;
  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()));
  f = fopen(tmp, "w");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "%s %s: cannot create the output file", opt, path);
  fclose(f);
  remove(tmp);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMFileCheckViewerOption(MPI_Comm comm, const char opt[])
{
  char        spec[PETSC_MAX_PATH_LEN];
  PetscBool   set;
  PetscMPIInt rank;
  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscOptionsGetString(NULL, NULL, opt, spec, sizeof(spec), &set));
  /* PETSc's HDF5 viewer writes no sparse matrix (MatView returns without writing): refused, not an empty file */
  PetscCheck(!set || strncmp(spec, "hdf5", 4), comm, PETSC_ERR_SUP, "%s %s: PETSc's HDF5 viewer cannot write a sparse matrix (the file would stay empty); use binary:FILE, or -phonopy_fc FILE.hdf5 for small cells (docs/FORMATS.md)", opt, spec);
  if (set && rank == 0 && !strncmp(spec, "binary:", 7)) {
    char *colon = strchr(spec + 7, ':');
    if (colon) *colon = '\0';
    PetscCall(HMFileCheckWritable(opt, spec + 7));
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMMatViewFromOptionAtomic(Mat H, const char opt[])
{
  MPI_Comm          comm = PetscObjectComm((PetscObject)H);
  char              spec[PETSC_MAX_PATH_LEN], a[PETSC_MAX_PATH_LEN + 40], b[PETSC_MAX_PATH_LEN + 8], *file, *fmt;
  const char       *tmp;
  HMAtomicFile      h;
  PetscViewer       viewer;
  PetscViewerFormat format = PETSC_VIEWER_DEFAULT;
  PetscBool         set;
  PetscMPIInt       rank;
  int               err = 0;

  PetscFunctionBegin;
  PetscCall(PetscOptionsGetString(NULL, NULL, opt, spec, sizeof(spec), &set));
  if (!set) PetscFunctionReturn(PETSC_SUCCESS);
  if (strncmp(spec, "binary:", 7)) {
    PetscCall(PetscOptionsGetViewer(comm, NULL, NULL, opt, &viewer, &format, &set));
    PetscCall(PetscViewerPushFormat(viewer, format));
    PetscCall(MatView(H, viewer));
    PetscCall(PetscViewerPopFormat(viewer));
    PetscCall(PetscOptionsRestoreViewer(&viewer));
    PetscFunctionReturn(PETSC_SUCCESS);
  }
  file = spec + 7;
  fmt  = strchr(file, ':');
  if (fmt) *fmt++ = '\0';
  if (fmt && *fmt) {
    PetscBool found;
    PetscCall(PetscEnumFind(PetscViewerFormats, fmt, (PetscEnum *)&format, &found));
    PetscCheck(found, comm, PETSC_ERR_USER_INPUT, "%s binary:%s:%s: unknown viewer format '%s'", opt, file, fmt, fmt);
  }
  /* the binary viewer writes the matrix and its .info companion under the temporary name; the matrix
     file is renamed by the atomic commit, the companion after it */
  PetscCall(HMFileOpenAtomic(comm, file, NULL, &h));
  PetscCall(HMFileGetTempNameAtomic(h, &tmp));
  PetscCall(PetscSNPrintf(a, sizeof(a), "%s.info", tmp));
  PetscCall(PetscSNPrintf(b, sizeof(b), "%s.info", file));
  PetscCall(PetscViewerBinaryOpen(comm, tmp, FILE_MODE_WRITE, &viewer));
  PetscCall(PetscViewerPushFormat(viewer, format));
  PetscCall(MatView(H, viewer));
  PetscCall(PetscViewerPopFormat(viewer));
  PetscCall(PetscViewerDestroy(&viewer));
  PetscCall(HMFileCommitAtomic(&h));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0 && access(a, F_OK) == 0 && rename(a, b)) {
    err = errno;
    remove(a);
  }
  PetscCallMPI(MPI_Bcast(&err, 1, MPI_INT, 0, comm));
  PetscCheck(!err, comm, PETSC_ERR_FILE_WRITE, "%s binary:%s: cannot rename %s into place: %s", opt, file, a, strerror(err));
  PetscFunctionReturn(PETSC_SUCCESS);
}

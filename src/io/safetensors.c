/* Read-only safetensors containers: memory mapped, header validated as untrusted input. */
#include <errno.h>
#include "sys/sysimpl.h"
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioimpl.h"

/* Byte range of one tensor inside the data section, for the overlap check. */
typedef struct {
  uint64_t begin, end;
  PetscInt idx;
} STRange;

static const char *DTypeName(HMDType t)
{
  return t == HM_DTYPE_F64 ? "F64" : "I64";
}

/* Tensor data is used in place as double / int64, so the byte order must be the file's. */
static PetscErrorCode CheckLittleEndianHost(MPI_Comm comm)
{
  static int     checked = 0;
  const uint16_t one     = 1;
  unsigned char  first;

  PetscFunctionBegin;
  if (!checked) {
    memcpy(&first, &one, 1);
    PetscCheck(first == 1, comm, PETSC_ERR_SUP, "safetensors data is little-endian; big-endian hosts are not supported");
    checked = 1;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static int CompareTensorName(const void *a, const void *b)
{
  return strcmp(((const HMTensorInfo *)a)->name, ((const HMTensorInfo *)b)->name);
}

static int CompareRange(const void *a, const void *b)
{
  const STRange *x = a, *y = b;

  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Non-negative JSON integer (json_int_t is long long, so it always fits uint64_t). */
static PetscBool GetNonNegInt(json_t *v, uint64_t *out)
{
  if (!json_is_integer(v) || json_integer_value(v) < 0) return PETSC_FALSE;
  *out = (uint64_t)json_integer_value(v);
  return PETSC_TRUE;
}

static PetscErrorCode ParseDType(HMSafetensors st, const char name[], json_t *v, HMDType *dtype)
{
  /* dtypes that exist in the safetensors format but that hipmace refuses by name */
  static const char *const other[] = {"F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"};
  const char              *s;

  PetscFunctionBegin;
  PetscCheck(v, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' has no dtype", st->path, name);
  PetscCheck(json_is_string(v), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': dtype is not a string", st->path, name);
  s = json_string_value(v);
  if (!strcmp(s, "F64")) *dtype = HM_DTYPE_F64;
  else if (!strcmp(s, "I64")) *dtype = HM_DTYPE_I64;
  else {
    for (size_t k = 0; k < sizeof(other) / sizeof(other[0]); k++)
      PetscCheck(strcmp(s, other[k]), st->comm, PETSC_ERR_SUP, "%s: tensor '%s': dtype %s not supported (hipmace reads F64 and I64 only)", st->path, name, s);
    SETERRQ(st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': unknown dtype '%s'", st->path, name, s);
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ParseEntry(HMSafetensors st, const char name[], json_t *entry, const unsigned char *data, uint64_t datalen, uint64_t hlen, HMTensorInfo *t)
{
  json_t  *shape, *offs;
  uint64_t numel = 1, begin, end;

  PetscFunctionBegin;
  PetscCheck(json_is_object(entry), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': header entry is not a JSON object", st->path, name);
  t->name = name;
  PetscCall(ParseDType(st, name, json_object_get(entry, "dtype"), &t->dtype));

  shape = json_object_get(entry, "shape");
  PetscCheck(json_is_array(shape), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': shape is missing or not an array", st->path, name);
  PetscCheck(json_array_size(shape) <= 8, st->comm, PETSC_ERR_SUP, "%s: tensor '%s' has %zu dimensions; at most 8 are supported", st->path, name, json_array_size(shape));
  t->ndim = (int)json_array_size(shape);
  for (int d = 0; d < t->ndim; d++) {
    uint64_t ext;

    PetscCheck(GetNonNegInt(json_array_get(shape, (size_t)d), &ext), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': shape entry %d is not a non-negative integer", st->path, name, d);
    /* numel * 8 must fit in int64 (byte counts, PetscInt64 numel) */
    PetscCheck(ext == 0 || numel <= ((uint64_t)INT64_MAX / 8) / ext, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': shape overflows the element count", st->path, name);
    numel *= ext;
    t->shape[d] = (PetscInt64)ext;
  }
  for (int d = t->ndim; d < 8; d++) t->shape[d] = 0;
  t->numel = (PetscInt64)numel;

  offs = json_object_get(entry, "data_offsets");
  PetscCheck(json_is_array(offs) && json_array_size(offs) == 2, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data_offsets is not an array of 2 integers", st->path, name);
  PetscCheck(GetNonNegInt(json_array_get(offs, 0), &begin) && GetNonNegInt(json_array_get(offs, 1), &end), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data_offsets are not non-negative integers", st->path, name);
  PetscCheck(begin <= end, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] begin after end", st->path, name, begin, end);
  PetscCheck(end <= datalen, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data_offsets end %" PRIu64 " beyond the data section (%" PRIu64 " bytes; file truncated?)", st->path, name, end, datalen);
  PetscCheck(end - begin == numel * 8, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data_offsets span %" PRIu64 " bytes but shape and dtype need %" PRIu64, st->path, name, end - begin, numel * 8);
  if (numel > 0) {
    PetscCheck(begin % 8 == 0, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': data offset %" PRIu64 " is not a multiple of 8 (hipmace requires 8-byte aligned tensors so data can be used in place)", st->path, name, begin);
    PetscCheck(hlen % 8 == 0, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s': header length %" PRIu64 " is not a multiple of 8, so the data is not 8-byte aligned (hipmace requires aligned tensors so data can be used in place)", st->path, name, hlen);
  }
  t->data = numel > 0 ? (const void *)(data + begin) : NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode ParseMetadata(HMSafetensors st, json_t *meta)
{
  const char *key;
  json_t     *val;

  PetscFunctionBegin;
  PetscCheck(json_is_object(meta), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: __metadata__ is not a JSON object", st->path);
  json_object_foreach(meta, key, val) PetscCheck(json_is_string(val), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: __metadata__ value '%s' is not a string", st->path, key);
  st->metadata = meta;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* Maps the file and validates the whole header; on error the caller releases what was set up. */
static PetscErrorCode SafetensorsLoad(HMSafetensors st, STRange **ranges)
{
  const unsigned char *bytes;
  const unsigned char *data;
  uint64_t             hlen = 0, datalen;
  json_error_t         jerr;
  struct stat          sb;
  int                  fd, rc, err;
  const char          *key;
  json_t              *val;
  PetscInt             k, nr;

  PetscFunctionBegin;
  fd = open(st->path, O_RDONLY | O_CLOEXEC);
  PetscCheck(fd >= 0, st->comm, PETSC_ERR_FILE_OPEN, "%s: cannot open: %s", st->path, strerror(errno));
  rc  = fstat(fd, &sb);
  err = errno;
  if (rc != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 8) {
    close(fd);
    PetscCheck(rc == 0, st->comm, PETSC_ERR_FILE_READ, "%s: cannot stat: %s", st->path, strerror(err));
    PetscCheck(S_ISREG(sb.st_mode), st->comm, PETSC_ERR_FILE_READ, "%s: not a regular file", st->path);
    SETERRQ(st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: file has %lld bytes, shorter than the 8-byte header length (truncated?)", st->path, (long long)sb.st_size);
  }
  st->maplen = (size_t)sb.st_size;
  st->map    = mmap(NULL, st->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
  err        = errno;
  close(fd);
  if (st->map == MAP_FAILED) {
    st->map = NULL;
    SETERRQ(st->comm, PETSC_ERR_FILE_READ, "%s: cannot map the file: %s", st->path, strerror(err));
  }

  bytes = (const unsigned char *)st->map;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)bytes[i] << (8 * i);
  PetscCheck(hlen <= st->maplen - 8, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: header length %" PRIu64 " exceeds the file size (%zu bytes; file truncated?)", st->path, hlen, st->maplen);
  data    = bytes + 8 + hlen;
  datalen = st->maplen - 8 - hlen;

  /* duplicate keys would silently replace tensors, so jansson must reject them */
  st->header = json_loadb((const char *)bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  PetscCheck(st->header, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: header is not valid JSON: %s (header line %d, column %d)", st->path, jerr.text, jerr.line, jerr.column);
  PetscCheck(json_is_object(st->header), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: header is not a JSON object", st->path);

  nr = 0;
  json_object_foreach(st->header, key, val) if (strcmp(key, "__metadata__")) nr++;
  PetscCall(PetscCalloc1(nr, &st->tensors));
  PetscCall(PetscMalloc1(nr, ranges));
  k = 0;
  json_object_foreach(st->header, key, val)
  {
    if (!strcmp(key, "__metadata__")) {
      PetscCall(ParseMetadata(st, val));
      continue;
    }
    PetscCall(ParseEntry(st, key, val, data, datalen, hlen, &st->tensors[k]));
    k++;
    st->ntensors = k;
  }
  if (st->ntensors > 1) qsort(st->tensors, (size_t)st->ntensors, sizeof(HMTensorInfo), CompareTensorName);
  for (k = 1; k < st->ntensors; k++) PetscCheck(strcmp(st->tensors[k - 1].name, st->tensors[k].name), st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' appears twice", st->path, st->tensors[k].name);

  /* overlap check on byte ranges; empty tensors occupy nothing */
  nr = 0;
  for (k = 0; k < st->ntensors; k++) {
    if (!st->tensors[k].numel) continue;
    (*ranges)[nr].begin = (uint64_t)((const unsigned char *)st->tensors[k].data - data);
    (*ranges)[nr].end   = (*ranges)[nr].begin + 8 * (uint64_t)st->tensors[k].numel;
    (*ranges)[nr].idx   = k;
    nr++;
  }
  if (nr > 1) qsort(*ranges, (size_t)nr, sizeof(STRange), CompareRange);
  for (k = 1; k < nr; k++)
    PetscCheck((*ranges)[k].begin >= (*ranges)[k - 1].end, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' overlaps tensor '%s' in the data section", st->path, st->tensors[(*ranges)[k].idx].name, st->tensors[(*ranges)[k - 1].idx].name);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsOpen(MPI_Comm comm, const char path[], HMSafetensors *out)
{
  HMSafetensors  st;
  STRange       *ranges = NULL;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(path && out, comm, PETSC_ERR_ARG_NULL, "HMSafetensorsOpen: path and output must not be NULL");
  *out = NULL;
  PetscCall(CheckLittleEndianHost(comm));
  PetscCall(PetscNew(&st));
  st->comm = comm;
  PetscCall(PetscStrallocpy(path, &st->path));
  ierr = SafetensorsLoad(st, &ranges);
  PetscCall(PetscFree(ranges));
  if (PetscUnlikely(ierr)) {
    PetscCall(HMSafetensorsClose(&st));
    return PetscError(PETSC_COMM_SELF, __LINE__, PETSC_FUNCTION_NAME, __FILE__, ierr, PETSC_ERROR_REPEAT, " ");
  }
  *out = st;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsClose(HMSafetensors *pst)
{
  HMSafetensors st;

  PetscFunctionBegin;
  if (!pst || !*pst) PetscFunctionReturn(PETSC_SUCCESS);
  st = *pst;
  if (st->map) PetscCheck(munmap(st->map, st->maplen) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "%s: munmap failed: %s", st->path, strerror(errno));
  if (st->header) json_decref(st->header);
  PetscCall(PetscFree(st->tensors));
  PetscCall(PetscFree(st->path));
  PetscCall(PetscFree(*pst));
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_CHECKED(HMSafetensors, Path, const char *, path)

PetscErrorCode HMSafetensorsGetMetadata(HMSafetensors st, const char key[], const char **value)
{
  PetscFunctionBegin;
  PetscCheck(st && key && value, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSafetensorsGetMetadata: NULL argument");
  *value = st->metadata ? json_string_value(json_object_get(st->metadata, key)) : NULL;
  PetscFunctionReturn(PETSC_SUCCESS);
}

HM_ACCESSOR_GET_CHECKED(HMSafetensors, NumTensors, PetscInt, ntensors)

PetscErrorCode HMSafetensorsGetTensorByIndex(HMSafetensors st, PetscInt i, const HMTensorInfo **info)
{
  PetscFunctionBegin;
  PetscCheck(st && info, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSafetensorsGetTensorByIndex: NULL argument");
  PetscCheck(i >= 0 && i < st->ntensors, st->comm, PETSC_ERR_ARG_OUTOFRANGE, "%s: tensor index %" PetscInt_FMT " out of range [0, %" PetscInt_FMT ")", st->path, i, st->ntensors);
  *info = &st->tensors[i];
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsFind(HMSafetensors st, const char name[], const HMTensorInfo **info)
{
  PetscInt lo, hi;

  PetscFunctionBegin;
  PetscCheck(st && name && info, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSafetensorsFind: NULL argument");
  *info = NULL;
  lo    = 0;
  hi    = st->ntensors;
  while (lo < hi) {
    PetscInt mid = lo + (hi - lo) / 2;
    int      c   = strcmp(st->tensors[mid].name, name);

    if (!c) {
      *info = &st->tensors[mid];
      break;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsGetInfo(HMSafetensors st, const char name[], HMDType dtype, const HMTensorInfo **info)
{
  const HMTensorInfo *t;

  PetscFunctionBegin;
  PetscCall(HMSafetensorsFind(st, name, &t));
  PetscCheck(t, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' not found", st->path, name);
  PetscCheck(t->dtype == dtype, st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' has dtype %s but %s was expected", st->path, name, DTypeName(t->dtype), DTypeName(dtype));
  if (info) *info = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

/* "[8, 16]" with '*' for free extents; buf holds 8 dims of up to 20 digits. */
static void FormatShape(int ndim, const PetscInt64 shape[], char buf[], size_t len)
{
  size_t used = 0;

  used += (size_t)snprintf(buf, len, "[");
  for (int d = 0; d < ndim && used < len; d++) {
    if (shape[d] < 0) used += (size_t)snprintf(buf + used, len - used, "%s*", d ? ", " : "");
    else used += (size_t)snprintf(buf + used, len - used, "%s%" PetscInt64_FMT, d ? ", " : "", shape[d]);
  }
  if (used < len) snprintf(buf + used, len - used, "]");
}

static PetscErrorCode GetChecked(HMSafetensors st, const char name[], HMDType dtype, int ndim, const PetscInt64 shape[], const HMTensorInfo **info)
{
  const HMTensorInfo *t;
  PetscBool           ok;

  PetscFunctionBegin;
  PetscCheck(ndim >= 0 && ndim <= 8 && (ndim == 0 || shape), PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "tensor '%s': expected rank %d must be in [0, 8] with a shape", name, ndim);
  PetscCall(HMSafetensorsGetInfo(st, name, dtype, &t));
  ok = (PetscBool)(t->ndim == ndim);
  for (int d = 0; ok && d < ndim; d++)
    if (shape[d] >= 0 && shape[d] != t->shape[d]) ok = PETSC_FALSE;
  if (!ok) {
    char have[256], want[256];

    FormatShape(t->ndim, t->shape, have, sizeof(have));
    FormatShape(ndim, shape, want, sizeof(want));
    SETERRQ(st->comm, PETSC_ERR_FILE_UNEXPECTED, "%s: tensor '%s' has shape %s but %s was expected", st->path, name, have, want);
  }
  *info = t;
  PetscFunctionReturn(PETSC_SUCCESS);
}

static PetscErrorCode GetData(HMSafetensors st, const char name[], HMDType dtype, int ndim, const PetscInt64 shape[], const void **data)
{
  const HMTensorInfo *t;

  PetscFunctionBegin;
  PetscCheck(data, PETSC_COMM_SELF, PETSC_ERR_ARG_NULL, "HMSafetensorsGet%s: NULL output", dtype == HM_DTYPE_F64 ? "F64" : "I64");
  PetscCall(GetChecked(st, name, dtype, ndim, shape, &t));
  *data = t->data;
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsGetF64(HMSafetensors st, const char name[], int ndim, const PetscInt64 shape[], const double **data)
{
  PetscFunctionBegin;
  PetscCall(GetData(st, name, HM_DTYPE_F64, ndim, shape, (const void **)data));
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscErrorCode HMSafetensorsGetI64(HMSafetensors st, const char name[], int ndim, const PetscInt64 shape[], const PetscInt64 **data)
{
  PetscFunctionBegin;
  PetscCall(GetData(st, name, HM_DTYPE_I64, ndim, shape, (const void **)data));
  PetscFunctionReturn(PETSC_SUCCESS);
}

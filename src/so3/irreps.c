/* Irreps strings and the e3nn block layout (parsing, sorting, offsets). */
#include <hipmace/so3.h>
#include <ctype.h>

PetscErrorCode HMIrrepsParse(const char s[], HMIrreps *ir)
{
  const char *c = s;

  PetscFunctionBegin;
  ir->n = 0;
  while (*c) {
    long  mul = 1, l;
    char *end;
    while (isspace((unsigned char)*c) || *c == '+') c++;
    if (!*c) break;
    PetscCheck(ir->n < HM_MAX_IRREP_BLOCKS, PETSC_COMM_SELF, PETSC_ERR_SUP, "irreps '%s': more than %d blocks", s, HM_MAX_IRREP_BLOCKS);
    l = strtol(c, &end, 10);
    PetscCheck(end != c, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "irreps '%s': expected a number at '%s'", s, c);
    if (*end == 'x') {
      mul = l;
      c   = end + 1;
      l   = strtol(c, &end, 10);
      PetscCheck(end != c, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "irreps '%s': expected l at '%s'", s, c);
    }
    PetscCheck(*end == 'e' || *end == 'o', PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "irreps '%s': expected parity e or o at '%s'", s, end);
    PetscCheck(mul >= 0 && mul <= 1000000 && l >= 0 && l <= HM_LMAX, PETSC_COMM_SELF, PETSC_ERR_SUP, "irreps '%s': block %ldx%ld%c outside the supported range (l <= %d)", s, mul, l, *end, HM_LMAX);
    ir->b[ir->n].mul = (int)mul;
    ir->b[ir->n].l   = (int)l;
    ir->b[ir->n].p   = *end == 'e' ? 1 : -1;
    ir->n++;
    c = end + 1;
    while (isspace((unsigned char)*c)) c++;
    PetscCheck(*c == '\0' || *c == '+', PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "irreps '%s': unexpected '%s'", s, c);
  }
  PetscCheck(ir->n > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "irreps '%s' is empty", s);
  PetscFunctionReturn(PETSC_SUCCESS);
}

PetscInt HMIrrepsDim(const HMIrreps *ir)
{
  PetscInt d = 0;
  for (int k = 0; k < ir->n; k++) d += (PetscInt)ir->b[k].mul * (2 * ir->b[k].l + 1);
  return d;
}

PetscInt HMIrrepsOffset(const HMIrreps *ir, int block)
{
  PetscInt d = 0;
  for (int k = 0; k < block; k++) d += (PetscInt)ir->b[k].mul * (2 * ir->b[k].l + 1);
  return d;
}

/* e3nn order: l ascending, then odd before even */
static int IrrepKey(const HMIrrep *b)
{
  return 2 * b->l + (b->p > 0 ? 1 : 0);
}

void HMIrrepsSort(const HMIrreps *in, HMIrreps *out, int perm[])
{
  int idx[HM_MAX_IRREP_BLOCKS];
  for (int k = 0; k < in->n; k++) idx[k] = k;
  /* insertion sort is stable */
  for (int k = 1; k < in->n; k++) {
    int v = idx[k], j = k - 1;
    while (j >= 0 && IrrepKey(&in->b[idx[j]]) > IrrepKey(&in->b[v])) {
      idx[j + 1] = idx[j];
      j--;
    }
    idx[j + 1] = v;
  }
  HMIrreps tmp;
  tmp.n = in->n;
  for (int k = 0; k < in->n; k++) {
    tmp.b[k] = in->b[idx[k]];
    if (perm) perm[k] = idx[k];
  }
  *out = tmp;
}

void HMIrrepsSimplify(const HMIrreps *in, HMIrreps *out)
{
  HMIrreps tmp;
  tmp.n = 0;
  for (int k = 0; k < in->n; k++) {
    if (tmp.n > 0 && tmp.b[tmp.n - 1].l == in->b[k].l && tmp.b[tmp.n - 1].p == in->b[k].p) tmp.b[tmp.n - 1].mul += in->b[k].mul;
    else tmp.b[tmp.n++] = in->b[k];
  }
  *out = tmp;
}

PetscBool HMIrrepsContains(const HMIrreps *ir, int l, int p)
{
  for (int k = 0; k < ir->n; k++)
    if (ir->b[k].l == l && ir->b[k].p == p) return PETSC_TRUE;
  return PETSC_FALSE;
}

void HMIrrepsToString(const HMIrreps *ir, char buf[], size_t len)
{
  size_t pos = 0;
  if (len) buf[0] = '\0';
  for (int k = 0; k < ir->n && pos < len; k++) {
    int w = snprintf(buf + pos, len - pos, "%s%dx%d%c", k ? "+" : "", ir->b[k].mul, ir->b[k].l, ir->b[k].p > 0 ? 'e' : 'o');
    if (w < 0) break;
    pos += (size_t)w;
  }
}

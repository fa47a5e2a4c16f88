/* Memory of this process and of its node, read from /proc (0 where it is not available). */
#include <hipmace/sys.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the number after key in a "Key: value kB" file, in bytes */
static double ProcKiB(const char file[], const char key[])
{
  FILE        *f   = fopen(file, "r");
  const size_t len = strlen(key);
  char         line[256];
  double       kb = 0;

  if (!f) return 0;
  while (fgets(line, sizeof(line), f))
    if (!strncmp(line, key, len)) kb = atof(line + len);
  fclose(f);
  return kb * 1024.0;
}

double HMMemoryRSS(PetscBool peak)
{
  return ProcKiB("/proc/self/status", peak ? "VmHWM:" : "VmRSS:");
}

double HMMemoryAvailable(void)
{
  return ProcKiB("/proc/meminfo", "MemAvailable:");
}

/* The LD_PRELOAD shim: an unmodified python3 on islet (`islet run`).
 *
 * Why: Debian's python3 links libpython statically, so nothing inside it
 * can be interposed; but PyMem_SetAllocator is exported, and hooks set
 * before main() stay in place (CPython replaces them only to apply
 * PYTHONMALLOC or -X dev, which the shim refuses with a message).  The
 * settings come from the environment `islet run` sets; the process `islet
 * run` started (ISLET_PID) prints the table at exit, its children do not.
 */
#include "islet_cpython.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "64M", "512k", "1G" or bytes; 0 when absent or malformed. */
static size_t parse_size(const char *s) {
  if (!s) return 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = *end == 'k' || *end == 'K'   ? 10
              : *end == 'm' || *end == 'M' ? 20
              : *end == 'g' || *end == 'G' ? 30
                                           : 0;
  return (size_t)v << shift;
}

static int pick(const char *s, const char *const names[], int n, int def) {
  for (int i = 0; s && i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return def;
}

static int main_process(void) {
  const char *pid = getenv("ISLET_PID");
  return pid && atoll(pid) == (long long)getpid();
}

/* ISLET_PURGE_DELAY: milliseconds, negative for never; 0 (the default)
 * when absent, and said once when it is not a whole number. */
static long purge_delay(void) {
  const char *s = getenv("ISLET_PURGE_DELAY");
  if (!s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (end != s && !*end) return v;
  if (main_process())
    fprintf(stderr, "islet: ISLET_PURGE_DELAY=%s is not a number of milliseconds: default used\n",
            s);
  return 0;
}

static void report(void) {
  if (!main_process()) return;
  if (getenv("ISLET_STATS")) islet_cpython_report(stderr, 0);
  const char *path = getenv("ISLET_JSON");
  FILE *f = path ? fopen(path, "w") : NULL;
  if (f) {
    islet_cpython_report(f, 1);
    fclose(f);
  }
}

__attribute__((constructor)) static void start(void) {
  if (!dlsym(RTLD_DEFAULT, "PyMem_SetAllocator")) return; /* not a Python: a child of one */
  const char *why = getenv("PYTHONMALLOC")    ? "PYTHONMALLOC is set"
                    : getenv("PYTHONDEVMODE") ? "PYTHONDEVMODE is set"
                                              : NULL;
  if (why) { /* said by the process `islet run` started; its children keep their stderr */
    if (main_process())
      fprintf(stderr, "islet: %s, and CPython would replace islet's allocator: islet is off\n",
              why);
    return;
  }
  static const char *const cross[] = {"defer", "report", "abort"};
  static const char *const teardown[] = {"release", "quarantine", "orphan"};
  static islet_config_t rt;
  rt = (islet_config_t){
      .cross_free = (islet_cross_policy_t)pick(getenv("ISLET_CROSS_FREE"), cross, 3, 0),
      .teardown = (islet_teardown_t)pick(getenv("ISLET_TEARDOWN"), teardown, 3, 2),
      .quarantine_max = ISLET_CPYTHON_QUARANTINE_MAX,
      .purge_delay_ms = purge_delay()};
  islet_cpython_config_t cfg = {&rt, parse_size(getenv("ISLET_LIMIT"))};
  if (islet_cpython_install(&cfg) == 0) atexit(report);
}

/* The LD_PRELOAD shim: an unmodified python3 on islet (`islet run`).
 *
 * Why: Debian's python3 links libpython statically, so nothing inside it
 * can be interposed; but PyMem_SetAllocator is exported, and hooks set
 * before main() stay in place (CPython replaces them only to apply
 * PYTHONMALLOC, PYTHONDEVMODE or -X dev, which the shim refuses with a
 * message).  The settings come from the environment `islet run` sets; the
 * process `islet run` started (ISLET_PID) prints the table when CPython has
 * finalized and at exit, its children do not.
 */
#include "cpython.h"
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int main_process(void) {
  const char *pid = getenv("ISLET_PID");
  return pid && atoll(pid) == (long long)getpid();
}

/* A setting `islet run` would have refused, set by hand: said once. */
static void bad(const char *var, const char *value, const char *instead) {
  if (main_process()) fprintf(stderr, "islet: %s=%s is not valid: using %s\n", var, value, instead);
}

/* ISLET_LIMIT: bytes, or a whole number of k, M or G ("64M"); 0 (none)
 * when absent or malformed. */
static size_t limit(void) {
  const char *s = getenv("ISLET_LIMIT");
  if (!s) return 0;
  static const char units[] = "kKmMgG";
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  const char *u = *end ? strchr(units, *end) : NULL;
  int shift = u ? 10 * (int)((u - units) / 2 + 1) : 0;
  if (isdigit((unsigned char)*s) && !errno && (!*end || (u && !end[1])) && v <= SIZE_MAX >> shift)
    return (size_t)v << shift;
  bad("ISLET_LIMIT", s, "no limit");
  return 0;
}

static int pick(const char *var, const char *const names[], int n, int def) {
  const char *s = getenv(var);
  for (int i = 0; s && i < n; i++)
    if (!strcmp(s, names[i])) return i;
  if (s) bad(var, s, names[def]);
  return def;
}

/* ISLET_PURGE_DELAY: milliseconds, negative for never; 0 (the default)
 * when absent or not a whole number. */
static long purge_delay(void) {
  const char *s = getenv("ISLET_PURGE_DELAY");
  if (!s) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (end != s && !*end) return v;
  bad("ISLET_PURGE_DELAY", s, "the default");
  return 0;
}

/* Asked for interpreters that share objects, release or quarantine would
 * free blocks other interpreters may still use: refused, once. */
static void shared_are_orphaned(const char *policy) {
  const char *asked = getenv("ISLET_TEARDOWN");
  if (!asked || strcmp(asked, policy) || !strcmp(policy, "orphan") || !main_process()) return;
#if PY_VERSION_HEX < 0x030C0000
  fprintf(stderr,
          "islet: --teardown %s refused: CPython %d.%d's interpreters share objects, which may "
          "outlive them, so they are orphaned\n",
          policy, PY_MAJOR_VERSION, PY_MINOR_VERSION);
#else
  fprintf(stderr,
          "islet: --teardown %s is for own-GIL interpreters: the others (the main one, legacy "
          "sub-interpreters) share objects, which may outlive them, so they are orphaned\n",
          policy);
#endif
}

/* At the end of each Py_FinalizeEx, and at exit: a table, whenever it has
 * more rows than the last. */
static void report(void) {
  static size_t rows = SIZE_MAX;
  size_t n = islet_cpython_records(NULL, 0);
  if (n == rows || !main_process()) return;
  rows = n;
  if (getenv("ISLET_STATS")) islet_cpython_report(stderr, 0);
  const char *path = getenv("ISLET_JSON");
  if (!path) return;
  FILE *f = fopen(path, "w");
  int written = f && !islet_cpython_report(f, 1);
  if (f && fclose(f)) written = 0;
  if (!written) fprintf(stderr, "islet: cannot write the table to %s: %s\n", path, strerror(errno));
}

/* Does python3's command line ask for -X dev (or -X dev=...)?  Read as
 * CPython's getopt reads it: options end at --, at an argument that is not
 * one (the script), or with -c or -m, whose arguments are the program's. */
static int dev_mode_option(int argc, char **argv) {
  for (int i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
    if (argv[i][1] == '-') { /* --: the end; of the long options, one takes a value */
      if (!argv[i][2]) return 0;
      i += !strcmp(argv[i], "--check-hash-based-pycs");
      continue;
    }
    for (const char *c = argv[i] + 1; *c; c++) {
      if (*c == 'c' || *c == 'm') return 0;
      if (*c != 'X' && *c != 'W') continue;
      const char *value = c[1] ? c + 1 : i + 1 < argc ? argv[++i] : "";
      if (*c == 'X' && (!strcmp(value, "dev") || !strncmp(value, "dev=", 4))) return 1;
      break;
    }
  }
  return 0;
}

/* Is the process the CPython the shim was built for (its major and minor
 * version)?  Another one's structures differ; said when it is the program
 * `islet run` started.  A process that is not a Python (a child of one)
 * has neither symbol. */
static int our_python(void) {
  const unsigned long *hex = dlsym(RTLD_DEFAULT, "Py_Version");
  if (hex && *hex >> 16 == PY_VERSION_HEX >> 16) return 1;
  const char *(*version)(void);
  *(void **)&version = dlsym(RTLD_DEFAULT, "Py_GetVersion");
  if (version && main_process()) {
    const char *v = version();
    fprintf(stderr, "islet: built for CPython %d.%d, and this is %.*s: islet is off\n",
            PY_MAJOR_VERSION, PY_MINOR_VERSION, (int)strcspn(v, " "), v);
  }
  return 0;
}

/* glibc passes a constructor the program's arguments. */
__attribute__((constructor)) static void start(int argc, char **argv) {
  if (!our_python()) return;
  const char *why = getenv("PYTHONMALLOC")        ? "PYTHONMALLOC is set"
                    : getenv("PYTHONDEVMODE")     ? "PYTHONDEVMODE is set"
                    : dev_mode_option(argc, argv) ? "-X dev is set"
                                                  : NULL;
  if (why) { /* said by the process `islet run` started; its children keep their stderr */
    if (main_process())
      fprintf(stderr, "islet: %s, and CPython would replace islet's allocator: islet is off\n",
              why);
    return;
  }
  static const char *const cross[] = {"defer", "report", "abort"};
  static const char *const teardown[] = {"release", "quarantine", "orphan"};
  static const char *const huge[] = {"0", "1"};
  static islet_config_t rt;
  rt = (islet_config_t){.cross_free = (islet_cross_policy_t)pick("ISLET_CROSS_FREE", cross, 3, 0),
                        .teardown = (islet_teardown_t)pick("ISLET_TEARDOWN", teardown, 3, 1),
                        .quarantine_max = ISLET_CPYTHON_QUARANTINE_MAX,
                        .purge_delay_ms = purge_delay(),
                        .huge_pages = pick("ISLET_HUGE_PAGES", huge, 2, 0)};
  islet_cpython_config_t cfg = {&rt, limit()};
  if (islet_cpython_install(&cfg)) return;
  PyImport_AppendInittab("islet", islet_cpython_module);
  shared_are_orphaned(teardown[rt.teardown]);
  islet_py_ended_all = report;
  atexit(report);
}

/* CPython embedded on islet: what the integration promises, one scenario
 * per subcommand.
 *
 *   embed cycles N MAX_KIB [plain]  N sub-interpreter create/run/destroy
 *                                   cycles; RSS may grow by MAX_KIB at most
 *                                   (plain: CPython alone, only measured)
 *   embed reinit                    three Py_Initialize/Py_Finalize rounds
 *   embed cross                     frees of one interpreter's objects in
 *                                   another, before and after it ends
 *   embed limit                     a limit is a MemoryError in that
 *                                   interpreter only
 */
#include "islet_cpython.h"
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "embed: %s\n", what);
  exit(1);
}

static void start(size_t limit) {
  PyPreConfig pre;
  PyPreConfig_InitPythonConfig(&pre);
  PyStatus st = Py_PreInitialize(&pre);
  if (PyStatus_Exception(st)) Py_ExitStatusException(st);
  if (islet_cpython_install(&(islet_cpython_config_t){.limit = limit})) fail("install failed");
  Py_Initialize();
}

static void run(const char *code) {
  if (PyRun_SimpleString(code)) fail(code);
}

/* Runs code in a new sub-interpreter, then ends it. */
static void in_sub(const char *code) {
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *ts = Py_NewInterpreter();
  if (!ts) fail("Py_NewInterpreter failed");
  run(code);
  Py_EndInterpreter(ts);
  PyThreadState_Swap(main_ts);
}

static long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) fail("cannot read /proc/self/statm");
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static islet_cpython_record_t rec[4096];

static size_t records(void) {
  size_t n = islet_cpython_records(rec, 4096);
  return n < 4096 ? n : 4096;
}

static const islet_cpython_record_t *find(long long id, unsigned round) {
  size_t n = records();
  for (size_t i = 0; i < n; i++)
    if (rec[i].id == id && rec[i].round == round) return &rec[i];
  return NULL;
}

static const char work[] = "import json, re\n"
                           "d = {str(i): [i, str(i) * 3, {'k': i}] for i in range(2000)}\n"
                           "assert json.loads(json.dumps(d)) == d\n"
                           "class C:\n"
                           "    def __init__(self, i): self.i = i\n"
                           "objs = [C(i) for i in range(5000)]\n"
                           "assert re.sub(r'(\\d+)', r'<\\1>', 'a1b22') == 'a<1>b<22>'\n";

static int cycles(int n, long max_kib, int plain) {
  if (plain)
    Py_Initialize();
  else
    start(0);
  int warm = n / 10;
  for (int i = 0; i < warm; i++) in_sub(work);
  long before = rss_kib();
  for (int i = warm; i < n; i++) in_sub(work);
  long grown = rss_kib() - before;
  printf("%s: %d cycles after %d warm-up ones: RSS %+ld KiB (%ld KiB at the start)\n",
         plain ? "CPython alone" : "islet", n - warm, warm, grown, before);
  if (!plain) {
    size_t ended = 0, m = records();
    for (size_t i = 0; i < m; i++) ended += rec[i].ended && rec[i].stats.allocs > 10000;
    if (ended != (size_t)n) fail("every sub-interpreter must have ended on its own heap");
  }
  Py_Finalize();
  return !plain && grown > max_kib;
}

/* CPython resets its allocators when PYTHONMALLOC is set and it
 * re-initializes; install again after Py_PreInitialize restores islet. */
static int reinit(void) {
  for (unsigned round = 1; round <= 3; round++) {
    start(0);
    run(work);
    in_sub(work);
    Py_Finalize();
    const islet_cpython_record_t *m = find(0, round);
    if (!m || !m->ended || m->stats.allocs < 10000) fail("a round's main interpreter is missing");
    printf("round %u: main interpreter %zu allocations, %zu blocks left by finalization\n", round,
           m->stats.allocs, m->leaked_blocks);
  }
  return 0;
}

static int cross(void) {
  start(0);
  PyObject *list = PyList_New(0);
  for (int i = 0; i < 1000; i++) {
    PyObject *f = PyFloat_FromDouble(i + 0.5);
    PyList_Append(list, f);
    Py_DECREF(f);
  }
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *sub = Py_NewInterpreter();
  long long sub_id = (long long)PyInterpreterState_GetID(sub->interp);
  Py_DECREF(list); /* main's objects, freed by the sub-interpreter */
  PyObject *kept = PyUnicode_FromString("made by the sub-interpreter, outliving it");
  Py_EndInterpreter(sub);
  PyThreadState_Swap(main_ts);
  if (!islet_owner(kept)) fail("an object of an ended interpreter must stay valid");
  if (strcmp(PyUnicode_AsUTF8(kept), "made by the sub-interpreter, outliving it"))
    fail("an orphaned object changed");
  Py_DECREF(kept); /* freed by main after its interpreter ended */
  const islet_cpython_record_t *r = find(sub_id, 1);
  if (!r || r->stats.remote_sent < 1000) fail("the sub-interpreter's frees of main's objects");
  if (r->leaked_blocks < 1) fail("the object that outlived it must be counted");
  printf("sub-interpreter %lld: %zu frees of main's blocks, %zu blocks outlived it\n", sub_id,
         r->stats.remote_sent, r->leaked_blocks);
  Py_Finalize();
  return 0;
}

static int limit(void) {
  start((size_t)48 << 20);
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *sub = Py_NewInterpreter();
  long long sub_id = (long long)PyInterpreterState_GetID(sub->interp);
  run("try:\n"
      "    x = [bytearray(1 << 20) for _ in range(96)]\n"
      "    raise SystemExit('no MemoryError')\n"
      "except MemoryError:\n"
      "    pass\n");
  PyThreadState_Swap(main_ts); /* the sub-interpreter still holds what it got */
  run("x = [bytearray(1 << 20) for _ in range(32)]\n");
  PyThreadState_Swap(sub);
  Py_EndInterpreter(sub);
  PyThreadState_Swap(main_ts);
  const islet_cpython_record_t *s = find(sub_id, 1), *m = find(0, 1);
  if (!s || !s->stats.limit_hits) fail("the sub-interpreter must have hit its limit");
  if (!m || m->stats.limit_hits) fail("the main interpreter must not");
  printf("limit 48 MiB: the sub-interpreter hit it %zu times, the main one never\n",
         s->stats.limit_hits);
  Py_Finalize();
  return 0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "cycles") && argc >= 4)
    return cycles(atoi(argv[2]), atol(argv[3]), argc > 4 && !strcmp(argv[4], "plain"));
  if (!strcmp(what, "reinit")) return reinit();
  if (!strcmp(what, "cross")) return cross();
  if (!strcmp(what, "limit")) return limit();
  fprintf(stderr, "usage: embed cycles N MAX_KIB [plain] | reinit | cross | limit\n");
  return 2;
}

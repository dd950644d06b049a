/* An embedder of a CPython with islet compiled in: the C API it has there
 * (islet.h, and islet_cpython_heap() for the calling interpreter's heap),
 * one scenario per subcommand.  It links libpython only: islet is inside.
 *
 *   embed heaps    the main interpreter has a heap; from 3.12 an own-GIL
 *                  one has its own, whose limit is a MemoryError in it only;
 *                  a legacy one (3.11's only kind) allocates from the main
 *                  interpreter's, so a limit it sets is the main one's too
 *   embed reinit   three Py_Initialize/Py_Finalize rounds on one main heap,
 *                  never ended (objects of a round may be freed in the next)
 *   embed none     (PYTHONMALLOC=pymalloc) no interpreter has a heap
 */
#include <islet_cpython.h>
#include <Python.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what) {
  fprintf(stderr, "embed: %s\n", what);
  exit(1);
}

static void run(const char *code) {
  if (PyRun_SimpleString(code)) fail(code);
}

static const char *const HOG = "try:\n"
                               "    hog = bytearray(16 << 20)\n"
                               "    raise SystemExit('no MemoryError under the limit')\n"
                               "except MemoryError:\n"
                               "    pass\n";

/* A legacy sub-interpreter: it shares the main interpreter's obmalloc
 * state (on 3.11, every interpreter does). */
static PyThreadState *new_legacy(void) {
  PyThreadState *ts = Py_NewInterpreter();
  if (!ts) fail("a new sub-interpreter failed");
  return ts;
}

#if PY_VERSION_HEX >= 0x030C0000
static PyThreadState *new_own_gil(void) {
  PyInterpreterConfig own = {.use_main_obmalloc = 0,
                             .allow_threads = 1,
                             .check_multi_interp_extensions = 1,
                             .gil = PyInterpreterConfig_OWN_GIL};
  PyThreadState *ts = NULL;
  PyStatus st = Py_NewInterpreterFromConfig(&ts, &own);
  if (PyStatus_Exception(st) || !ts) fail("a new sub-interpreter failed");
  return ts;
}
#endif

static void end_sub(PyThreadState *ts, PyThreadState *main_ts) {
  Py_EndInterpreter(ts);
  PyThreadState_Swap(main_ts);
}

static size_t allocs(void) {
  islet_stats_t s;
  islet_interp_stats(islet_cpython_heap(), &s);
  return s.allocs;
}

#if PY_VERSION_HEX >= 0x030C0000
static void own_gil_heap(PyThreadState *main_ts, islet_interp_t *main_heap) {
  PyThreadState *own = new_own_gil();
  islet_interp_t *own_heap = islet_cpython_heap();
  if (!own_heap || own_heap == main_heap) fail("the own-GIL interpreter has no heap of its own");
  islet_stats_t s;
  islet_interp_stats(own_heap, &s);
  islet_interp_set_limit(own_heap, s.bytes + (8 << 20));
  run(HOG);
  islet_interp_stats(own_heap, &s);
  if (!s.limit_hits) fail("the limit was not hit");
  end_sub(own, main_ts);
  run("hog = bytearray(16 << 20)"); /* the main heap has no limit */
  islet_interp_stats(main_heap, &s);
  if (s.limit || s.limit_hits) fail("the main interpreter got the sub-interpreter's limit");
}
#endif

static int heaps(void) {
  Py_Initialize();
  PyThreadState *main_ts = PyThreadState_Get();
  islet_interp_t *main_heap = islet_cpython_heap();
  if (!main_heap || allocs() < 1000) fail("the main interpreter has no heap, or no allocations");
#if PY_VERSION_HEX >= 0x030C0000
  own_gil_heap(main_ts, main_heap);
#endif

  PyThreadState *legacy = new_legacy();
  if (islet_cpython_heap() != main_heap) fail("a legacy interpreter has a heap of its own");
  size_t before = allocs();
  run("x = [[i] for i in range(10000)]");
  if (allocs() - before < 10000) fail("the legacy interpreter's allocations were not counted");
  islet_stats_t s;
  islet_interp_stats(main_heap, &s);
  islet_interp_set_limit(islet_cpython_heap(), s.bytes + (8 << 20));
  end_sub(legacy, main_ts);
  if (islet_cpython_heap() != main_heap) fail("the main heap changed");
  run(HOG); /* the legacy interpreter's limit is the main heap's */
  islet_interp_stats(main_heap, &s);
  if (!s.limit_hits) fail("the main interpreter did not hit the legacy interpreter's limit");
  islet_interp_set_limit(main_heap, 0);
  run("hog = bytearray(16 << 20)");
  if (Py_FinalizeEx() < 0) fail("Py_FinalizeEx");
  if (islet_cpython_heap()) fail("a heap with no thread state");
  puts("heaps ok");
  return 0;
}

static int reinit(void) {
  islet_interp_t *first = NULL;
  for (int round = 0; round < 3; round++) {
    Py_Initialize();
    if (!islet_cpython_heap() || allocs() < 1000) fail("a round without a heap");
    if (!first) first = islet_cpython_heap();
    if (islet_cpython_heap() != first) fail("a round with a new main heap: the last one ended");
    run("import json, decimal\n"
        "d = {str(i): [i, str(i)] for i in range(20000)}\n"
        "s = json.dumps(d)\n");
    if (Py_FinalizeEx() < 0) fail("Py_FinalizeEx");
    islet_interp_purge(first); /* README: an embedder that carries on */
  }
  puts("reinit ok");
  return 0;
}

static int none(void) {
  Py_Initialize();
  PyThreadState *main_ts = PyThreadState_Get();
  if (islet_cpython_heap()) fail("a heap under another allocator");
  PyThreadState *legacy = new_legacy();
  if (islet_cpython_heap()) fail("a legacy interpreter's heap under another allocator");
  end_sub(legacy, main_ts);
#if PY_VERSION_HEX >= 0x030C0000
  PyThreadState *own = new_own_gil();
  if (islet_cpython_heap()) fail("an own-GIL interpreter's heap under another allocator");
  end_sub(own, main_ts);
#endif
  if (Py_FinalizeEx() < 0) fail("Py_FinalizeEx");
  puts("none ok");
  return 0;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "heaps")) return heaps();
  if (!strcmp(what, "reinit")) return reinit();
  if (!strcmp(what, "none")) return none();
  fprintf(stderr, "usage: embed heaps|reinit|none\n");
  return 2;
}

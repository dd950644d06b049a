/* CPython embedded on islet: what the integration promises, one scenario
 * per subcommand.
 *
 *   embed cycles N MAX_KIB [plain]  N sub-interpreter create/run/destroy
 *                                   cycles; RSS may grow by MAX_KIB at most
 *                                   (plain: CPython alone, only measured)
 *   embed reinit                    three Py_Initialize/Py_Finalize rounds
 *   embed cross                     frees of one interpreter's objects in
 *                                   another; an object outliving its
 *                                   interpreter stays valid (3.11) or is
 *                                   quarantined (3.12+, isolated)
 *   embed limit                     a limit is a MemoryError in that
 *                                   interpreter only
 *   embed reuse                     a thread that ran in an interpreter
 *                                   that ended allocates in a new one at
 *                                   the same address: its own heap serves
 *   embed owngil [plain|race]       (3.12+) two own-GIL sub-interpreters
 *                                   allocating on two threads, in sequence
 *                                   then in parallel; prints the speed-up
 *                                   (race: TSan's negative control)
 *   embed uaf                       reads an object CPython freed: ASan's
 *                                   negative control (must be reported)
 *   embed immortal                  (3.12+) CPython's immortal constants are
 *                                   immortal to islet's check (the build's
 *                                   immortal_abi), new objects are not
 */
#include "islet_cpython.h"
#include "islet_object.h"
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
  if (PyImport_AppendInittab("islet", islet_cpython_module)) fail("no islet module");
  Py_Initialize();
}

static void run(const char *code) {
  if (PyRun_SimpleString(code)) fail(code);
}

/* A new sub-interpreter, current on return: from 3.12 with its own GIL and
 * object state (PEP 684), as the interpreters that allocate in parallel. */
static PyThreadState *new_sub(void) {
#if PY_VERSION_HEX >= 0x030C0000
  PyInterpreterConfig cfg = {.use_main_obmalloc = 0,
                             .allow_threads = 1,
                             .check_multi_interp_extensions = 1,
                             .gil = PyInterpreterConfig_OWN_GIL};
  PyThreadState *ts = NULL;
  PyStatus st = Py_NewInterpreterFromConfig(&ts, &cfg);
  if (PyStatus_Exception(st)) ts = NULL;
#else
  PyThreadState *ts = Py_NewInterpreter();
#endif
  if (!ts) fail("a new sub-interpreter failed");
  return ts;
}

/* Makes ts current; with own GILs, the old one's GIL is released. */
static void switch_to(PyThreadState *ts) {
#if PY_VERSION_HEX >= 0x030C0000
  PyEval_SaveThread();
  PyEval_RestoreThread(ts);
#else
  PyThreadState_Swap(ts);
#endif
}

/* Ends the current sub-interpreter ts; main_ts is current again. */
static void end_sub(PyThreadState *ts, PyThreadState *main_ts) {
  Py_EndInterpreter(ts);
#if PY_VERSION_HEX >= 0x030C0000
  PyEval_RestoreThread(main_ts); /* its GIL went with it */
#else
  PyThreadState_Swap(main_ts);
#endif
}

/* Runs code in a new sub-interpreter, then ends it. */
static void in_sub(const char *code) {
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *ts = new_sub();
  run(code);
  end_sub(ts, main_ts);
}

static long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) fail("cannot read /proc/self/statm");
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* RSS once islet's reclaimer has given back what ended interpreters left
 * (on a loaded machine it may lag behind). */
static long settled_rss(int plain) {
  if (!plain) islet_runtime_flush(islet_cpython_runtime());
  return rss_kib();
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
  long before = settled_rss(plain);
  for (int i = warm; i < n; i++) in_sub(work);
  long grown = settled_rss(plain) - before;
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
  PyThreadState *sub = new_sub();
  long long sub_id = (long long)PyInterpreterState_GetID(sub->interp);
  Py_DECREF(list); /* main's objects, freed by the sub-interpreter */
  PyObject *kept = PyUnicode_FromString("made by the sub-interpreter, outliving it");
  end_sub(sub, main_ts);
#if PY_VERSION_HEX >= 0x030C0000 /* isolated: what it left is a leak, dropped */
  if (islet_owner(kept)) fail("a leftover of an isolated interpreter must be quarantined");
#else /* 3.11 interpreters share objects: what outlives one stays valid */
  if (!islet_owner(kept)) fail("an object of an ended interpreter must stay valid");
  if (strcmp(PyUnicode_AsUTF8(kept), "made by the sub-interpreter, outliving it"))
    fail("an orphaned object changed");
  Py_DECREF(kept); /* freed by main after its interpreter ended */
#endif
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
  PyThreadState *sub = new_sub();
  long long sub_id = (long long)PyInterpreterState_GetID(sub->interp);
  run("try:\n"
      "    x = [bytearray(1 << 20) for _ in range(96)]\n"
      "    raise SystemExit('no MemoryError')\n"
      "except MemoryError:\n"
      "    pass\n"
      "import islet\n" /* the module reads the limit the embedder set */
      "s = islet.stats()\n"
      "assert s['limit'] == 48 << 20 and s['limit_hits'] > 0, s\n");
  switch_to(main_ts); /* the sub-interpreter still holds what it got */
  run("x = [bytearray(1 << 20) for _ in range(32)]\n");
  switch_to(sub);
  end_sub(sub, main_ts);
  const islet_cpython_record_t *s = find(sub_id, 1), *m = find(0, 1);
  if (!s || !s->stats.limit_hits) fail("the sub-interpreter must have hit its limit");
  if (!m || m->stats.limit_hits) fail("the main interpreter must not");
  printf("limit 48 MiB: the sub-interpreter hit it %zu times, the main one never\n",
         s->stats.limit_hits);
  Py_Finalize();
  return 0;
}

/* The id of the heap that holds o (0: none); a heap's struct may take an
 * ended one's address, its id is new. */
static unsigned heap_of(PyObject *o) {
  islet_interp_t *in = islet_owner(o);
  return in ? islet_interp_id(in) : 0;
}

/* A thread's visit to an interpreter: one object made there, whose heap it
 * notes. */
typedef struct {
  PyInterpreterState *interp;
  unsigned heap;
} visit_t;

static void visit(visit_t *v) {
  PyThreadState *ts = PyThreadState_New(v->interp);
  PyEval_RestoreThread(ts);
  PyObject *b = PyBytes_FromStringAndSize(NULL, 100);
  if (!b) fail("no object");
  v->heap = heap_of(b);
  Py_DECREF(b);
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
}

static pthread_barrier_t visited, remade;
static visit_t visits[2];

static void *visitor(void *arg) {
  (void)arg;
  visit(&visits[0]);
  pthread_barrier_wait(&visited);
  pthread_barrier_wait(&remade);
  visit(&visits[1]);
  return NULL;
}

/* The hooks cache a thread's last interpreter by its address, which a new
 * interpreter may get once it ended: the thread that visited the first
 * must not reach its ended heap through that cache. */
static int reuse(void) {
  start(0);
  in_sub("pass"); /* glibc mapped the first state apart (3.14); the next come from its heap */
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *sub = new_sub();
  PyInterpreterState *first = sub->interp;
  visits[0].interp = first;
  pthread_barrier_init(&visited, NULL, 2);
  pthread_barrier_init(&remade, NULL, 2);
  pthread_t t;
  PyThreadState *saved = PyEval_SaveThread();
  pthread_create(&t, NULL, visitor, NULL);
  pthread_barrier_wait(&visited);
  PyEval_RestoreThread(saved);
  end_sub(sub, main_ts);
  for (int tries = 0; (sub = new_sub())->interp != first; tries++) {
    end_sub(sub, main_ts);
    if (tries == 20) fail("no new interpreter got the ended one's address");
  }
  PyObject *b = PyBytes_FromStringAndSize(NULL, 100);
  if (!b) fail("no object");
  unsigned heap = heap_of(b);
  Py_DECREF(b);
  visits[1].interp = sub->interp;
  saved = PyEval_SaveThread();
  pthread_barrier_wait(&remade);
  pthread_join(t, NULL);
  PyEval_RestoreThread(saved);
  if (!visits[0].heap || !heap || visits[0].heap == heap) fail("the two heaps");
  if (visits[1].heap != heap) fail("the thread's object is not in the new interpreter's heap");
  printf("a new interpreter at an ended one's address: the thread that visited both allocates "
         "from the new heap\n");
  end_sub(sub, main_ts);
  Py_Finalize();
  return 0;
}

#if PY_VERSION_HEX >= 0x030C0000
static const char churn[] = "d = {}\n"
                            "for i in range(400000):\n"
                            "    d[i % 4096] = (str(i), [i, i * 0.5], {'k': i})\n"
                            "assert len(d) == 4096\n";

/* An own-GIL sub-interpreter whose first thread state is left detached,
 * kept to end it with; main_ts is current again. */
static PyThreadState *detached_sub(PyThreadState *main_ts) {
  PyThreadState *ts = new_sub();
  switch_to(main_ts);
  return ts;
}

/* The negative control (owngil race): in a last parallel round both workers
 * also allocate from one heap, as a router that sent two own-GIL
 * interpreters to the same heap would.  TSan must report it, or it could not
 * see islet here at all.  They start that loop together at a barrier: a
 * worker that ended its churn first used to finish the loop before the other
 * began, and a lock between the two (CPython's or the backend's) then
 * ordered the accesses, so TSan saw no race in some CI runs. */
static islet_interp_t *shared_heap;
static pthread_barrier_t race_start;

static void *worker(void *interp) {
  PyThreadState *ts = PyThreadState_New(interp);
  PyEval_RestoreThread(ts);
  run(churn);
  if (shared_heap) pthread_barrier_wait(&race_start);
  for (int i = 0; shared_heap && i < 100000; i++)
    islet_free(shared_heap, islet_malloc(shared_heap, 64));
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
  return NULL;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs the workers on threads, n at a time; seconds taken. */
static double work_on(PyInterpreterState **in, int n_in, int at_once) {
  PyThreadState *main_ts = PyEval_SaveThread();
  double t0 = now_s();
  for (int i = 0; i < n_in; i += at_once) {
    pthread_t t[2];
    for (int k = 0; k < at_once; k++) pthread_create(&t[k], NULL, worker, in[i + k]);
    for (int k = 0; k < at_once; k++) pthread_join(t[k], NULL);
  }
  double dt = now_s() - t0;
  PyEval_RestoreThread(main_ts);
  return dt;
}

static int owngil(int plain, int race) {
  if (plain)
    Py_Initialize();
  else
    start(0);
  PyThreadState *main_ts = PyThreadState_Get();
  PyThreadState *sub[2] = {detached_sub(main_ts), detached_sub(main_ts)};
  PyInterpreterState *in[2] = {sub[0]->interp, sub[1]->interp};
  long long ids[2] = {PyInterpreterState_GetID(in[0]), PyInterpreterState_GetID(in[1])};
  work_on(in, 2, 2); /* warm-up: imports, first pages */
  double seq = 0, par = 0;
  for (int r = 0; r < 3; r++) {
    seq += work_on(in, 2, 1);
    par += work_on(in, 2, 2);
  }
  if (race) { /* both workers at once: the barrier needs two */
    shared_heap = islet_interp_new(islet_cpython_runtime());
    pthread_barrier_init(&race_start, NULL, 2);
    work_on(in, 2, 2);
  }
  printf("%s: 2 own-GIL sub-interpreters, 3 rounds: in sequence %.3f s, in parallel %.3f s: "
         "%.2fx\n",
         plain ? "CPython alone" : "islet", seq, par, seq / par);
  for (int i = 0; i < 2; i++) {
    switch_to(sub[i]);
    end_sub(sub[i], main_ts);
  }
  if (!plain)
    for (int i = 0; i < 2; i++) {
      const islet_cpython_record_t *r = find(ids[i], 1);
      if (!r || !r->ended || r->stats.allocs < 1000000) fail("a worker did not run on its heap");
      printf("sub-interpreter %lld: %zu allocations on its own heap, %zu cross frees\n", ids[i],
             r->stats.allocs, r->stats.remote_sent);
    }
  Py_Finalize();
  return 0;
}
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* Shared constants across own-GIL interpreters: 10^6 Py_INCREF/Py_DECREF
 * pairs from each of two at once, on None and on a str made immortal by
 * islet.  An immortal's count is never written, so TSan sees reads only and
 * the count is what it was.  `refcounts race` shares a mortal object
 * instead, whose count both threads write: the negative control, which TSan
 * must report (it holds many references, so lost updates free nothing). */
static PyObject *constants[2];

static void *bump(void *interp) {
  PyThreadState *ts = PyThreadState_New(interp);
  PyEval_RestoreThread(ts);
  pthread_barrier_wait(&race_start);
  for (int i = 0; i < 1000000; i++)
    for (int k = 0; k < 2; k++) {
      Py_INCREF(constants[k]);
      Py_DECREF(constants[k]);
    }
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
  return NULL;
}

static int refcounts(int race) {
  start(0);
  PyThreadState *main_ts = PyThreadState_Get();
  PyObject *shared = PyUnicode_FromString("a constant every interpreter reads");
  if (race)
    for (int i = 0; i < 1000; i++) Py_INCREF(shared);
  else if (islet_immortalize((islet_object_t *)shared))
    fail("islet_immortalize refused a fresh str");
  constants[0] = Py_None;
  constants[1] = shared;
  Py_ssize_t before[2] = {Py_REFCNT(Py_None), Py_REFCNT(shared)};
  PyThreadState *sub[2] = {detached_sub(main_ts), detached_sub(main_ts)};
  pthread_barrier_init(&race_start, NULL, 2);
  PyEval_SaveThread();
  pthread_t t[2];
  for (int k = 0; k < 2; k++) pthread_create(&t[k], NULL, bump, sub[k]->interp);
  for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
  PyEval_RestoreThread(main_ts);
  int kept = Py_REFCNT(Py_None) == before[0] && Py_REFCNT(shared) == before[1] &&
             islet_is_immortal((const islet_object_t *)shared) != race;
  printf("2 own-GIL interpreters x 10^6 Py_INCREF/Py_DECREF of None and of %s str: "
         "counts %s\n",
         race ? "a mortal" : "an islet-immortal", kept ? "kept" : "changed");
  for (int k = 0; k < 2; k++) {
    switch_to(sub[k]);
    end_sub(sub[k], main_ts);
  }
  Py_Finalize();
  return !kept;
}
#endif

/* A list's item array is a MEM-domain block: once the list is gone, islet
 * has poisoned it. */
static int uaf(void) {
  start(0);
  PyObject *list = PyList_New(100);
  for (Py_ssize_t i = 0; i < 100; i++) PyList_SET_ITEM(list, i, PyLong_FromSsize_t(i));
  PyObject **items = ((PyListObject *)list)->ob_item;
  Py_DECREF(list);
  printf("freed item array read: %p\n", (void *)*(volatile PyObject **)items);
  return 1; /* not reported: the control failed */
}

#if PY_VERSION_HEX >= 0x030C0000
/* None, True, False and small ints are statically allocated immortals; a
 * large int and a list are new, mortal objects.  The number of wrong ones. */
static int immortal_in(const char *where) {
  PyObject *imm[] = {
      Py_None, Py_True, Py_False, PyLong_FromLong(-5), PyLong_FromLong(0), PyLong_FromLong(256)};
  PyObject *mortal[] = {PyLong_FromLongLong(1LL << 40), PyList_New(0)};
  int bad = 0;
  for (size_t i = 0; i < sizeof imm / sizeof *imm; i++)
    bad += !islet_is_immortal((const islet_object_t *)imm[i]);
  for (size_t i = 0; i < sizeof mortal / sizeof *mortal; i++) {
    bad += islet_is_immortal((const islet_object_t *)mortal[i]);
    Py_DECREF(mortal[i]);
  }
  printf("CPython %s, islet encoding %d, %s: %d wrong\n", PY_VERSION, islet_immortal_abi(), where,
         bad);
  return bad;
}

static int immortal(void) {
  start(0);
  PyThreadState *main_ts = PyThreadState_Get();
  int bad = immortal_in("main interpreter");
  PyThreadState *ts = new_sub();
  bad += immortal_in("own-GIL sub-interpreter");
  end_sub(ts, main_ts);
  Py_Finalize();
  return bad != 0;
}
#endif

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (!strcmp(what, "cycles") && argc >= 4)
    return cycles(atoi(argv[2]), atol(argv[3]), argc > 4 && !strcmp(argv[4], "plain"));
  if (!strcmp(what, "reinit")) return reinit();
  if (!strcmp(what, "cross")) return cross();
  if (!strcmp(what, "limit")) return limit();
  if (!strcmp(what, "reuse")) return reuse();
  if (!strcmp(what, "uaf")) return uaf();
#if PY_VERSION_HEX >= 0x030C0000
  if (!strcmp(what, "owngil"))
    return owngil(argc > 2 && !strcmp(argv[2], "plain"), argc > 2 && !strcmp(argv[2], "race"));
  if (!strcmp(what, "immortal")) return immortal();
  if (!strcmp(what, "refcounts")) return refcounts(argc > 2 && !strcmp(argv[2], "race"));
#endif
  fprintf(stderr, "usage: embed cycles N MAX_KIB [plain] | reinit | cross | limit | reuse\n");
  return 2;
}

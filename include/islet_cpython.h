/* islet inside CPython: every interpreter allocates from its own islet heap.
 *
 * Why: CPython's interpreters share one allocator (pymalloc), so a finalized
 * sub-interpreter's leftovers stay in the process (gh-110411), an object of
 * one interpreter can be freed by another unseen, and nothing is counted per
 * interpreter.  islet_cpython_install puts islet behind PyMem_SetAllocator
 * for the MEM and OBJ domains and routes each call to the heap of the
 * calling thread's interpreter.  Blocks islet did not allocate (from before
 * the install, or made with no thread state) stay with the allocator it
 * wraps.  When an interpreter ends, its heap is retired under the teardown
 * policy and its numbers are kept for islet_cpython_report.
 *
 * Embedding:
 *   Py_PreInitialize(&preconfig);
 *   islet_cpython_install(NULL);   // after PYTHONMALLOC has been applied
 *   Py_Initialize();
 * After Py_Finalize, call both again before the next Py_Initialize: CPython
 * re-applies PYTHONMALLOC then and islet re-installs on top (otherwise the
 * second call does nothing).  An unmodified python3 gets the same through
 * the LD_PRELOAD shim: `islet run -- python3 ...`.
 *
 * A CPython with islet compiled in (cpython/patches, PYTHONMALLOC=islet)
 * needs no install: its libpython defines islet_cpython_heap and
 * islet_cpython_module (built in as `import islet`) with islet's own API,
 * and not the hook form's install, runtime, records and report, which are
 * libislet-cpython's (an embedder that calls them links that library).
 */
#ifndef ISLET_CPYTHON_H
#define ISLET_CPYTHON_H
#include "islet.h"
#ifdef __cplusplus
extern "C" {
#endif

/* The quarantine bound of the default configuration, ASan's default
 * quarantine_size_mb: the address space of the last dozen or so ended
 * interpreters (1,000 own-GIL cycles on 3.13 grew RSS by 0.5 MiB with it,
 * 1.2 MiB with 1 GiB). */
#define ISLET_CPYTHON_QUARANTINE_MAX ((size_t)256 << 20)

typedef struct {
  /* NULL: cross-interpreter frees deferred, bad frees reported, teardown
   * quarantine, quarantine_max ISLET_CPYTHON_QUARANTINE_MAX.  The teardown policy applies to
   * interpreters with their own object state (3.12+, every own-GIL one): they share nothing, so
   * what one leaves is leaked, and quarantine gives back what CPython itself keeps of every such
   * interpreter.  Interpreters that share objects, all of them up to 3.11 (static types' caches
   * and subclass lists, interned strings) and from 3.12 the legacy ones (use_main_obmalloc), are
   * orphaned whatever the policy: a block may outlive such an interpreter, and orphan keeps those
   * blocks valid and releases the rest (quarantine would fault on them, release reuse them). */
  const islet_config_t *runtime;
  size_t limit; /* bytes per interpreter, 0 = none; over it Python raises MemoryError */
} islet_cpython_config_t;

/* 0, or ISLET_ENOMEM.  A later call with the hooks still in place changes
 * nothing (the first configuration stays). */
ISLET_API int islet_cpython_install(const islet_cpython_config_t *cfg);
ISLET_API islet_runtime_t *islet_cpython_runtime(void);
/* The heap of the calling thread's interpreter; NULL without a thread state. */
ISLET_API islet_interp_t *islet_cpython_heap(void);
/* The init function of the `islet` Python module (stats() and set_limit() of
 * the calling interpreter's heap), for PyImport_AppendInittab("islet", ...)
 * before Py_Initialize; the shim appends it itself.  A PyObject *. */
ISLET_API struct _object *islet_cpython_module(void);

typedef struct {
  long long id;   /* CPython's interpreter id */
  unsigned round; /* the Py_Initialize it belongs to, from 1 */
  int ended;
  islet_stats_t stats;                /* when it ended, or now */
  size_t leaked_blocks, leaked_bytes; /* live when it ended */
} islet_cpython_record_t;

/* Copies up to max records (ended interpreters, then live ones) into out
 * and returns how many there are. */
ISLET_API size_t islet_cpython_records(islet_cpython_record_t *out, size_t max);
/* The table of every interpreter seen, as text or as JSON. */
ISLET_API int islet_cpython_report(FILE *out, int json);

#ifdef __cplusplus
}
#endif
#endif

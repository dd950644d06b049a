/* Shared between the files of libislet-cpython (not installed). */
#ifndef ISLET_CPYTHON_INTERNAL_H
#define ISLET_CPYTHON_INTERNAL_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "islet_cpython.h"

#define ISLET_PY_LIKELY(x) __builtin_expect(!!(x), 1)

#if PY_VERSION_HEX >= 0x030D0000
#define islet_py_call_tstate PyThreadState_GetUnchecked
#else
#define islet_py_call_tstate _PyThreadState_UncheckedGet
#endif

#ifdef ISLET_PY_WEAK
/* The shim binds CPython's functions only where the process has them: a
 * process that is not a Python, or is another CPython, loads it with no
 * symbol lookup error (LD_BIND_NOW too), and preload.c calls none unless
 * the process is the CPython it was built for. */
#define ISLET_PY_WEAK_FN(f) extern __typeof__(f) f __attribute__((weak))
ISLET_PY_WEAK_FN(islet_py_call_tstate);
ISLET_PY_WEAK_FN(PyInterpreterState_GetID);
ISLET_PY_WEAK_FN(PyMem_GetAllocator);
ISLET_PY_WEAK_FN(PyMem_SetAllocator);
ISLET_PY_WEAK_FN(Py_AtExit);
ISLET_PY_WEAK_FN(PyImport_AppendInittab);
/* module.c */
ISLET_PY_WEAK_FN(PyArg_ParseTuple);
ISLET_PY_WEAK_FN(Py_BuildValue);
ISLET_PY_WEAK_FN(PyErr_Format);
ISLET_PY_WEAK_FN(PyErr_SetString);
ISLET_PY_WEAK_FN(PyExc_RuntimeError);
ISLET_PY_WEAK_FN(PyExc_ValueError);
ISLET_PY_WEAK_FN(PyInterpreterState_Get);
ISLET_PY_WEAK_FN(PyModuleDef_Init);
#endif

/* The calling thread's thread state, or NULL, read where CPython's getter
 * reads it (tstate.c) with no call: islet_py_tstate_read is false when
 * that place is not known (3.12 on, a getter of another shape), and
 * islet_py_tstate asks the getter then. */
#if PY_VERSION_HEX < 0x030C0000
extern const size_t islet_py_tstate_at;
extern char _PyRuntime[]; /* _PyRuntimeState, opaque here */
#ifdef ISLET_PY_WEAK
ISLET_PY_WEAK_FN(_PyRuntime);
#endif
static inline bool islet_py_tstate_read(PyThreadState **ts) {
  *ts = atomic_load_explicit((PyThreadState * _Atomic *)(void *)(_PyRuntime + islet_py_tstate_at),
                             memory_order_relaxed);
  return true;
}
static inline PyThreadState *islet_py_tstate(void) {
  PyThreadState *ts;
  islet_py_tstate_read(&ts);
  return ts;
}
static inline void islet_py_tstate_probe(void) {}
static inline void islet_py_tstate_check(PyThreadState *called) {
  (void)called;
}
#else
/* From the thread pointer; 0: not known.  Written at install (tstate.c),
 * before any hook runs, and set to 0 by a failed check: relaxed, any thread. */
extern _Atomic long islet_py_tstate_off;
void islet_py_tstate_probe(void); /* at install */
static inline bool islet_py_tstate_read(PyThreadState **ts) {
#if defined(__x86_64__) && !defined(__ILP32__)
  long off = atomic_load_explicit(&islet_py_tstate_off, memory_order_relaxed);
  if (!off) return false;
  __asm__("movq %%fs:(%1), %0" : "=r"(*ts) : "r"(off));
  return true;
#else
  (void)ts;
  return false;
#endif
}
/* A miss's thread state from the getter (called): a read in place that
 * disagrees is not made again. */
static inline void islet_py_tstate_check(PyThreadState *called) {
  PyThreadState *read;
  if (islet_py_tstate_read(&read) && read != called)
    atomic_store_explicit(&islet_py_tstate_off, 0, memory_order_relaxed);
}
#define islet_py_tstate islet_py_call_tstate
#endif

/* interps.c: the table of interpreters and their heaps */
/* teardown: the policy of interpreters that share nothing; the others are
 * orphaned */
void islet_py_start(islet_runtime_t *rt, size_t limit, islet_teardown_t teardown);
/* isolated.c: the interpreter has its own object state (3.12+, PEP 684) */
int islet_py_isolated(PyInterpreterState *py);
islet_interp_t *islet_py_heap_slow(PyInterpreterState *py);
/* PyMem_RawCalloc gave this thread p, of size bytes: it may hold the state
 * of an interpreter about to be made. */
void islet_py_raw_calloced(void *p, size_t size);
/* p is being freed by PyMem_RawFree: if it holds an interpreter's state,
 * that interpreter has ended. */
void islet_py_raw_freeing(void *p);
/* Py_AtExit: the main interpreter (and any other left) has ended. */
void islet_py_end_all(void);
/* Called after islet_py_end_all, if set: the shim writes its table there,
 * as a process may end by a signal once Py_FinalizeEx has returned, with no
 * exit handlers (CPython does, on an uncaught KeyboardInterrupt). */
extern void (*islet_py_ended_all)(void);

/* A thread's last lookup of the table (interps.c), which the hooks read
 * on every call, through the thread's pointer to it: a record of its own
 * (allocated at its first lookup, listed, freed at the thread's end, when
 * it is unlisted) or a shared one that names no interpreter.  Who touches
 * a record: its thread writes heap and then py, under interps.c's lock, on
 * a miss; the hooks read both on that thread with no lock; a retire, under
 * the lock on any thread, clears py in every listed record that names the
 * interpreter that ended, before its state is freed (an interpreter made
 * later may get its address).  py is atomic for that one store from
 * another thread, relaxed both ways: the retire holds the lock every other
 * write of py is made under, and the state it clears is freed, and a new
 * one made at its address, only after, which CPython orders before any
 * thread state of the new one exists.  A record stays valid memory while
 * listed: one whose thread ended without unlisting it (a thread-specific
 * value set in the last round of destructors is dropped) leaks. */
typedef struct islet_py_cache {
  _Atomic(PyInterpreterState *) py;
  islet_interp_t *heap;
  struct islet_py_cache *next; /* the listed records, under the lock */
} islet_py_cache_t;
/* initial-exec: every call of the allocator reads it, and the general model
 * costs a __tls_get_addr call each time.  The library is loaded with the
 * process (LD_PRELOAD, or linked by the embedder), where this model holds. */
#define ISLET_PY_TLS __attribute__((tls_model("initial-exec")))
extern _Thread_local islet_py_cache_t *islet_py_cache ISLET_PY_TLS; /* never NULL */

#endif

/* The `islet` Python module: the calling interpreter's own numbers and limit.
 *
 * Why: `islet run --limit` caps every interpreter alike, and its table comes
 * at exit.  A program that runs work in interpreters (an
 * InterpreterPoolExecutor's workers, say) wants to cap one of them, from
 * inside it (a worker's initializer), and to read what it uses now.  The
 * module sees only islet.h and islet_cpython_heap(), so the same source
 * serves the LD_PRELOAD shim, libislet-cpython and a CPython with islet
 * compiled in, each of which says where the calling interpreter's heap is.
 * It keeps no state: every interpreter, own-GIL ones included, imports its
 * own copy.
 */
#include "cpython.h"

static islet_interp_t *heap_or_raise(void) {
  islet_interp_t *in = islet_cpython_heap();
  if (!in) PyErr_SetString(PyExc_RuntimeError, "islet: this interpreter has no islet heap");
  return in;
}

static PyObject *stats(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  islet_interp_t *in = heap_or_raise();
  if (!in) return NULL;
  islet_stats_t s;
  islet_interp_stats(in, &s);
  long long id = (long long)PyInterpreterState_GetID(PyInterpreterState_Get());
  return Py_BuildValue("{s:L,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "interp", id, "allocs",
                       (Py_ssize_t)s.allocs, "peak_bytes", (Py_ssize_t)s.bytes_peak, "live_bytes",
                       (Py_ssize_t)s.bytes, "live_blocks", (Py_ssize_t)s.blocks, "cross_frees",
                       (Py_ssize_t)s.remote_sent, "limit", (Py_ssize_t)s.limit, "limit_hits",
                       (Py_ssize_t)s.limit_hits);
}

/* A limit under what the interpreter holds would fail its every allocation,
 * the one that raises MemoryError included (past CPython's few spare ones):
 * refused, as a negative one is. */
static PyObject *set_limit(PyObject *self, PyObject *args) {
  (void)self;
  Py_ssize_t bytes;
  if (!PyArg_ParseTuple(args, "n:set_limit", &bytes)) return NULL;
  islet_interp_t *in = heap_or_raise();
  if (!in) return NULL;
  islet_stats_t s;
  islet_interp_stats(in, &s);
  if (bytes < 0 || (bytes && (size_t)bytes <= s.bytes))
    return PyErr_Format(PyExc_ValueError,
                        "islet.set_limit(%zd): a limit is 0 (none) or more than the %zu bytes "
                        "this interpreter holds now",
                        bytes, s.bytes);
  islet_interp_set_limit(in, (size_t)bytes);
  return Py_BuildValue("");
}

static PyMethodDef methods[] = {
    {"stats", stats, METH_NOARGS,
     "stats() -> dict: this interpreter's heap now (bytes are usable bytes of live blocks; "
     "limit 0 = none)"},
    {"set_limit", set_limit, METH_VARARGS,
     "set_limit(bytes): cap this interpreter's heap (0 = none); past it Python raises "
     "MemoryError. Memory from raw malloc (numpy's array data, say) is not counted."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_MOD_PER_INTERPRETER_GIL_SUPPORTED
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static PyModuleDef def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "islet",
    .m_doc = "islet: the calling interpreter's own heap",
    .m_methods = methods,
    .m_slots = slots,
};

PyObject *islet_cpython_module(void) {
  return PyModuleDef_Init(&def);
}

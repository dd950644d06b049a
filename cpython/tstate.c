/* Where CPython 3.11 keeps the current thread state: a field of _PyRuntime,
 * which _PyThreadState_UncheckedGet reads and returns.
 *
 * Why: the hooks ask for it on every allocation and free.  Through the
 * exported function that is a call through the PLT, and a call makes the
 * hooks save registers and keep a frame; read in place (cpython.h), the
 * hooks are leaves that end in a tail call.  The offset needs CPython's
 * internal headers, so it is computed here alone, where Py_BUILD_CORE
 * changes nothing else.  (From 3.12 the thread state is a thread-local of
 * libpython's own, not exported: the hooks call PyThreadState_GetUnchecked.)
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <stddef.h>

const size_t islet_py_tstate_at = offsetof(_PyRuntimeState, gilstate.tstate_current);

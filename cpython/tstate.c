/* Where CPython keeps the calling thread's state, for the hooks to read it
 * without a call.
 *
 * Why: the hooks ask for it on every allocation and free.  Through the
 * exported function that is a call through the PLT, and a call makes the
 * hooks save registers and keep a frame; read in place (cpython.h), the
 * hooks are leaves that end in a tail call.
 *
 * 3.11: a field of _PyRuntime, which _PyThreadState_UncheckedGet reads and
 * returns.  Its offset needs CPython's internal headers, so it is computed
 * here alone, where Py_BUILD_CORE changes nothing else.
 *
 * 3.12 on: a thread-local of libpython's own (_Py_tss_tstate), not
 * exported.  A python that links libpython into its executable (Debian's
 * does) keeps it at a fixed offset from the thread pointer, and the
 * exported getter is that one load: `[endbr64] mov %fs:OFF,%rax; ret`
 * (x86-64; OFF is -0x18 in Debian's 3.14.10, -0x20 in 3.15.2).  When the
 * getter's code is exactly that, the hooks make the same load; when it is
 * anything else (a shared libpython reaches its thread-locals through
 * __tls_get_addr), they call it.  The first call of every thread's cache
 * miss checks the load against the call.
 */
#include <patchlevel.h>
#if PY_VERSION_HEX < 0x030C0000
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <stddef.h>

const size_t islet_py_tstate_at = offsetof(_PyRuntimeState, gilstate.tstate_current);
#else
#include "cpython.h"
#include <string.h>

_Atomic long islet_py_tstate_off; /* cpython.h says who writes it */

void islet_py_tstate_probe(void) {
#if defined(__x86_64__) && !defined(__ILP32__)
  static const unsigned char endbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
  static const unsigned char mov_fs_rax[] = {0x64, 0x48, 0x8b, 0x04, 0x25}; /* disp32 follows */
  const unsigned char *f = (const unsigned char *)(void *)islet_py_call_tstate;
  if (!f) return;
  if (!memcmp(f, endbr64, sizeof endbr64)) f += sizeof endbr64;
  if (memcmp(f, mov_fs_rax, sizeof mov_fs_rax) || f[9] != 0xc3) return; /* ret */
  int32_t off;
  memcpy(&off, f + sizeof mov_fs_rax, sizeof off);
  if (off < 0) /* the executable's thread-locals lie below the thread pointer */
    atomic_store_explicit(&islet_py_tstate_off, off, memory_order_relaxed);
#endif
}
#endif

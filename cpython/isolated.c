/* Does an interpreter keep its objects to itself?
 *
 * Why: from 3.12 an interpreter made with use_main_obmalloc = 0 (every
 * own-GIL one, PEP 684) has its own object state, so nothing it allocated
 * may be used once it has ended and its leftovers are leaks: islet drops
 * them (quarantine).  Up to 3.11, and for legacy sub-interpreters after,
 * interpreters share objects and leftovers may still be in use (orphan).
 * CPython has no public call for this; the flag is read from the internal
 * header of the very CPython this file is compiled against, so the layout
 * matches (cpython/ is built per CPython version).
 */
#include <patchlevel.h> /* PY_VERSION_HEX, before Python.h is configured */
#if PY_VERSION_HEX >= 0x030C0000
#define Py_BUILD_CORE 1
#include "cpython.h"
#include "internal/pycore_interp.h"
#else
#include "cpython.h"
#endif

int islet_py_isolated(PyInterpreterState *py) {
#if PY_VERSION_HEX >= 0x030C0000
  return !(py->feature_flags & Py_RTFLAGS_USE_MAIN_OBMALLOC);
#else
  (void)py;
  return 0;
#endif
}

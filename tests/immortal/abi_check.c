/* abi_check: islet's object header and reference counting against
 * CPython's own headers, bit for bit.  Compiled once per CPython version
 * with the matching ISLET_IMMORTAL_ABI (tests/immortal/abi-check.sh). */
#include <Python.h>
#include <stdio.h>
#include <string.h>
#include "islet_object.h"

static int failures;
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("FAIL line %d: %s\n", __LINE__, #cond);                                               \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

void _Py_Dealloc(PyObject *op) {
  (void)op;
} /* never reached: counts stay above zero */

static void set(void *ob, int64_t bits) {
  memcpy(ob, &bits, sizeof bits);
}
static int64_t bits_of(const void *ob) {
  int64_t b;
  memcpy(&b, ob, sizeof b);
  return b;
}

int main(void) {
  CHECK(sizeof(islet_object_t) == sizeof(PyObject));
  CHECK(offsetof(islet_object_t, ob_type) == offsetof(PyObject, ob_type));
#if PY_VERSION_HEX >= 0x030E0000 /* CPython's side decides, so a wrong encoding fails */
  CHECK(ISLET_IMMORTAL_REFCNT == (islet_ssize_t)_Py_IMMORTAL_INITIAL_REFCNT);
  CHECK(ISLET_STATIC_IMMORTAL_REFCNT == (islet_ssize_t)_Py_STATIC_IMMORTAL_INITIAL_REFCNT);
#else
  CHECK(ISLET_IMMORTAL_REFCNT == (islet_ssize_t)_Py_IMMORTAL_REFCNT);
#endif
  PyVarObject py_static = {PyObject_HEAD_INIT(NULL) 0};
  islet_object_t islet_static = ISLET_OBJECT_HEAD_INIT(NULL);
  CHECK(bits_of(&py_static.ob_base) == bits_of(&islet_static));

  const int64_t values[] = {2,
                            3,
                            1000,
                            ((int64_t)1 << 31) - 1,
                            (int64_t)1 << 31,
                            ((int64_t)3 << 30) - 1,
                            (int64_t)3 << 30,
                            ((int64_t)3 << 30) + 1,
                            (int64_t)UINT32_MAX - 1,
                            (int64_t)UINT32_MAX,
                            ISLET_IMMORTAL_REFCNT,
                            ISLET_STATIC_IMMORTAL_REFCNT,
                            bits_of(&py_static.ob_base)};
  int n = (int)(sizeof values / sizeof *values);
  for (int i = 0; i < n; i++) {
    PyObject p;
    islet_object_t o;
    set(&p, values[i]);
    set(&o, values[i]);
    CHECK(islet_is_immortal(&o) == _Py_IsImmortal(&p));
    Py_INCREF(&p);
    islet_incref(&o);
    CHECK(bits_of(&p) == bits_of(&o));
    Py_DECREF(&p);
    islet_decref(&o);
    CHECK(bits_of(&p) == bits_of(&o));
    if (bits_of(&p) != bits_of(&o))
      printf("  refcount 0x%llx: CPython 0x%llx, islet 0x%llx\n", (long long)values[i],
             (long long)bits_of(&p), (long long)bits_of(&o));
  }
  printf("CPython %s against islet encoding %d: %d values, %d failures\n", PY_VERSION,
         ISLET_IMMORTAL_ABI, n, failures);
  return failures != 0;
}

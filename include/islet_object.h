/* islet objects: a header laid out like CPython's PyObject, reference
 * counting that never stores to an immortal object, and the isolation
 * checker.
 *
 * Why: a constant shared by every interpreter (None, True, small ints) must
 * be increfed and decrefed by all of them at once.  An atomic refcount would
 * make every incref a cache-line fight; an immortal one is never written, so
 * all cores keep their copy of the line.  The encoding is CPython's own, per
 * the ABI chosen at build time (meson option immortal_abi, in
 * islet_config.h), so objects islet marks immortal are immortal to a CPython
 * of that version too, and CPython's static immortals are immortal to islet:
 *
 *   312 (CPython 3.12, 3.13; Include/object.h): _Py_IMMORTAL_REFCNT is
 *       UINT_MAX in the low 32 bits; immortal when (int32_t)refcnt < 0;
 *       incref adds one to the low half and skips the store when it wraps.
 *   314 (CPython 3.14; Include/refcount.h): _Py_IMMORTAL_INITIAL_REFCNT is
 *       3 << 30; incref skips at or above it; immortal when (int32_t)refcnt
 *       < 0; statically allocated immortals also carry
 *       _Py_STATICALLY_ALLOCATED_FLAG (4) | _Py_IMMORTAL_FLAGS (1) at bit 48
 *       (_Py_STATIC_IMMORTAL_INITIAL_REFCNT); decref works on the low half.
 *
 * tests/immortal/abi_check.c compares these bit for bit with CPython's
 * headers.  64-bit only, like islet.
 */
#ifndef ISLET_OBJECT_H
#define ISLET_OBJECT_H

#include "islet.h"
#include "islet_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef ptrdiff_t islet_ssize_t; /* Py_ssize_t */
typedef struct islet_object islet_object_t;

typedef struct islet_type {
  const char *name;
  /* Called when a mortal object's count reaches zero and, for runtime-owned
   * immortal objects, once by the runtime's final sweep.  It releases what
   * the object holds; islet frees the object's memory afterwards.  NULL:
   * nothing to release. */
  void (*finalize)(islet_object_t *ob);
} islet_type_t;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ISLET_REFCNT_LO 1
#else
#define ISLET_REFCNT_LO 0
#endif

struct islet_object {
  union {
    islet_ssize_t ob_refcnt;
    uint32_t ob_refcnt_split[2];
  };
  const islet_type_t *ob_type;
};

#if ISLET_IMMORTAL_ABI >= 314
#define ISLET_IMMORTAL_REFCNT ((islet_ssize_t)(3ULL << 30))
#define ISLET_STATIC_FLAG_BITS ((islet_ssize_t)(4 | 1))
#define ISLET_STATIC_IMMORTAL_REFCNT (ISLET_IMMORTAL_REFCNT | (ISLET_STATIC_FLAG_BITS << 48))
#else
#define ISLET_IMMORTAL_REFCNT ((islet_ssize_t)UINT32_MAX)
#define ISLET_STATIC_IMMORTAL_REFCNT ISLET_IMMORTAL_REFCNT
#endif

/* A statically allocated immortal object: never counted, never freed. */
#define ISLET_OBJECT_HEAD_INIT(type)                                                               \
  { {ISLET_STATIC_IMMORTAL_REFCNT}, (type) }

static inline int islet_is_immortal(const islet_object_t *ob) {
  return (int32_t)ob->ob_refcnt_split[ISLET_REFCNT_LO] < 0;
}

/* Called by the checked inline operations below (ISLET_CHECK_ISOLATION) and
 * by islet_decref on a count that would go below zero. */
ISLET_API void islet_check_access(const islet_object_t *ob);
ISLET_API void islet_refcnt_underflow(islet_object_t *ob);
ISLET_API void islet_dealloc(islet_object_t *ob);

static inline void islet_incref(islet_object_t *ob) {
#ifdef ISLET_CHECK_ISOLATION
  islet_check_access(ob);
#endif
  uint32_t cur = ob->ob_refcnt_split[ISLET_REFCNT_LO];
#if ISLET_IMMORTAL_ABI >= 314
  if (cur >= (uint32_t)ISLET_IMMORTAL_REFCNT) return;
  ob->ob_refcnt_split[ISLET_REFCNT_LO] = cur + 1;
#else
  uint32_t next = cur + 1;
  if (next == 0) return; /* saturated: immortal */
  ob->ob_refcnt_split[ISLET_REFCNT_LO] = next;
#endif
}

static inline void islet_decref(islet_object_t *ob) {
#ifdef ISLET_CHECK_ISOLATION
  islet_check_access(ob);
#endif
  if (islet_is_immortal(ob)) return;
#if ISLET_IMMORTAL_ABI >= 314
  uint32_t cur = ob->ob_refcnt_split[ISLET_REFCNT_LO];
  if (__builtin_expect(cur == 0, 0)) {
    islet_refcnt_underflow(ob);
    return;
  }
  ob->ob_refcnt_split[ISLET_REFCNT_LO] = cur - 1;
  if (cur == 1) islet_dealloc(ob);
#else
  if (__builtin_expect(ob->ob_refcnt <= 0, 0)) {
    islet_refcnt_underflow(ob);
    return;
  }
  if (--ob->ob_refcnt == 0) islet_dealloc(ob);
#endif
}

/* A new mortal object of size bytes (at least sizeof(islet_object_t)) on
 * the interpreter the caller holds, with one reference. */
ISLET_API islet_object_t *islet_object_new(islet_interp_t *in, const islet_type_t *type,
                                           size_t size);
/* A new object owned by the runtime, for immortal constants shared by all
 * interpreters: any thread may call it (it takes the runtime's lock). */
ISLET_API islet_object_t *islet_runtime_object_new(islet_runtime_t *rt, const islet_type_t *type,
                                                   size_t size);
/* Makes ob immortal.  A runtime-owned object is finalized and freed exactly
 * once by islet_runtime_destroy, after the last interpreter is gone; an
 * interpreter-owned one lives as long as its interpreter.  0, or
 * ISLET_EINVAL (reported) when ob is already immortal. */
ISLET_API int islet_immortalize(islet_object_t *ob);

/* islet_interp_enter and islet_current (islet.h) say which interpreter the
 * calling thread holds, for the isolation checker. */
/* Runtime switch of the checker (it is compiled in with
 * ISLET_CHECK_ISOLATION or called directly); on by default. */
ISLET_API void islet_runtime_check_isolation(islet_runtime_t *rt, int on);
ISLET_API int islet_immortal_abi(void);

#ifdef __cplusplus
}
#endif
#endif

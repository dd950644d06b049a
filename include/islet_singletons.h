/* Singleton tables: per-interpreter and shared-immortal constants, by id.
 *
 * Why: CPython's singletons (small ints, the empty tuple, one-character
 * strings, None ...) were made per interpreter in 3.9-3.11 (bpo-38858,
 * bpo-40521) and became shared immortal statics in 3.12 (PEP 683).  A table
 * supports both: a per_interpreter slot is built in each interpreter's heap
 * when it starts and destroyed, in reverse order, when it ends; a
 * shared_immortal slot is built once in the runtime's heap, made immortal and
 * read by every interpreter without a store.  Lookup is one load.
 */
#ifndef ISLET_SINGLETONS_H
#define ISLET_SINGLETONS_H

#include "islet_object.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ISLET_SINGLETONS_MAX 1024 /* ids are 0 .. ISLET_SINGLETONS_MAX - 1 */

typedef enum { ISLET_PER_INTERPRETER, ISLET_SHARED_IMMORTAL } islet_singleton_policy_t;

typedef struct {
  unsigned id;
  islet_singleton_policy_t policy;
  /* Builds the object: in the interpreter's heap (islet_object_new(in, ..))
   * for per_interpreter, in the runtime's (islet_runtime_object_new(rt, ..),
   * in is NULL) for shared_immortal. */
  islet_object_t *(*ctor)(islet_runtime_t *rt, islet_interp_t *in, void *ctx);
  /* Releases what the object holds, exactly once: at its interpreter's
   * teardown, or for a shared slot in the runtime's final sweep; islet then
   * frees the object.  NULL: the type's finalize, if any. */
  void (*dtor)(islet_object_t *ob, void *ctx);
  void *ctx;
} islet_singleton_def_t;

/* Registers slots on the runtime before its interpreters are created;
 * shared slots are built now.  0, or ISLET_EINVAL (bad or taken id),
 * ISLET_ENOMEM. */
ISLET_API int islet_singletons_register(islet_runtime_t *rt, const islet_singleton_def_t *defs,
                                        size_t n);
/* The interpreter's object for id, or NULL with ISLET_ENOENT. */
ISLET_API islet_object_t *islet_singleton(islet_interp_t *in, unsigned id);

/* A small object model, modelled on CPython's, for tests and benchmarks. */
typedef struct {
  islet_object_t ob;
  long value;
} islet_int_t;
typedef struct {
  islet_object_t ob;
  islet_ssize_t size;
  islet_object_t *items[];
} islet_tuple_t;
typedef struct {
  islet_object_t ob;
  islet_ssize_t size;
  unsigned char data[]; /* NUL-terminated */
} islet_bytes_t;        /* also str, with islet_str_type (latin-1) */

ISLET_API extern const islet_type_t islet_int_type, islet_tuple_type, islet_bytes_type,
    islet_str_type, islet_none_type, islet_bool_type, islet_ellipsis_type,
    islet_notimplemented_type;

/* The CPython preset's ids. */
enum {
  ISLET_S_NONE,
  ISLET_S_TRUE,
  ISLET_S_FALSE,
  ISLET_S_ELLIPSIS,
  ISLET_S_NOTIMPLEMENTED,
  ISLET_S_EMPTY_TUPLE,
  ISLET_S_EMPTY_BYTES,
  ISLET_S_EMPTY_STR,
  ISLET_S_SMALL_INT,                             /* -5 .. 256: ISLET_S_SMALL_INT + 5 + v */
  ISLET_S_BYTE_CHAR = ISLET_S_SMALL_INT + 262,   /* b'\x00' .. b'\xff' */
  ISLET_S_LATIN1_CHAR = ISLET_S_BYTE_CHAR + 256, /* '\x00' .. '\xff' */
  ISLET_S_CPYTHON_COUNT = ISLET_S_LATIN1_CHAR + 256
};
#define ISLET_SMALL_INT_MIN (-5)
#define ISLET_SMALL_INT_MAX 256

/* Registers the preset: every slot with one policy (per_interpreter as in
 * CPython 3.11, shared_immortal as in 3.12+). */
ISLET_API int islet_singletons_cpython(islet_runtime_t *rt, islet_singleton_policy_t policy);
/* The small int v (-5 .. 256) of the preset, or NULL. */
ISLET_API islet_int_t *islet_small_int(islet_interp_t *in, long v);

#ifdef __cplusplus
}
#endif
#endif

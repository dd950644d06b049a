/* Per-interpreter typed free lists.
 *
 * Why: object-heavy interpreters recycle the same few shapes (tuples of n
 * items, floats, lists, dicts) millions of times; a free list of recently
 * freed objects of one shape is cheaper than any allocator.  CPython keeps
 * them per interpreter since 3.9 (bpo-40521): sharing one would hand one
 * interpreter's memory to another.  islet's lists are per interpreter, never
 * take another interpreter's block, are emptied back into the owning heap
 * when the interpreter ends, and are disabled while it finalizes (as CPython
 * sets numfree = -1) so nothing refills them late.
 */
#ifndef ISLET_FREELIST_H
#define ISLET_FREELIST_H

#include "islet.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ISLET_FREELIST_KINDS 64 /* kind ids are 0 .. ISLET_FREELIST_KINDS - 1 */

typedef struct {
  unsigned id;
  size_t size; /* bytes of each block (at least a pointer) */
  size_t cap;  /* blocks kept at most; 0 keeps none */
  const char *name;
} islet_freelist_kind_t;

typedef struct {
  size_t hits, misses; /* pops that found a block, and that did not */
  size_t count, high_water;
  size_t refused; /* pushes not kept: full, disabled or foreign */
} islet_freelist_stats_t;

/* Registers kinds on the runtime, before its interpreters are created;
 * each interpreter created afterwards gets its own empty list of each.
 * 0, or ISLET_EINVAL for a bad id or size, or ISLET_ENOMEM. */
ISLET_API int islet_freelists_register(islet_runtime_t *rt, const islet_freelist_kind_t *kinds,
                                       size_t n);

/* O(1).  pop: a block of the kind, or NULL (a miss).  push: 1 when the
 * list keeps p, 0 when the caller must free it itself: the list is full, its
 * cap is 0, it is disabled (ISLET_EDISABLED), the kind is unknown
 * (ISLET_EINVAL), or p belongs to another interpreter (ISLET_EISOLATION,
 * reported). */
ISLET_API void *islet_freelist_pop(islet_interp_t *in, unsigned kind);
ISLET_API int islet_freelist_push(islet_interp_t *in, unsigned kind, void *p);

/* pop, or islet_malloc of the kind's size on a miss; push, or islet_free. */
ISLET_API void *islet_freelist_alloc(islet_interp_t *in, unsigned kind);
ISLET_API void islet_freelist_free(islet_interp_t *in, unsigned kind, void *p);

/* Empties every list into the heap and disables them: what interpreter
 * finalization does (islet_interp_destroy calls it too). */
ISLET_API void islet_freelists_finalize(islet_interp_t *in);
ISLET_API void islet_freelist_stats(islet_interp_t *in, unsigned kind, islet_freelist_stats_t *out);

/* CPython 3.13/3.14 caps (Include/internal/pycore_freelist_state.h), with
 * the object sizes of islet's small object model. */
enum {
  ISLET_FL_TUPLE1 = 0, /* tuples of 1 .. 20 items: ISLET_FL_TUPLE1 + n - 1 */
  ISLET_FL_FLOAT = 20,
  ISLET_FL_LIST,
  ISLET_FL_DICT,
  ISLET_FL_DICTKEYS,
  ISLET_FL_SLICE,
  ISLET_FL_CONTEXT,
  ISLET_FL_ASYNC_GEN,
  ISLET_FL_MEMORY_ERROR,
  ISLET_FL_INT,
  ISLET_FL_CPYTHON_KINDS
};
ISLET_API extern const islet_freelist_kind_t islet_freelist_cpython[ISLET_FL_CPYTHON_KINDS];

#ifdef __cplusplus
}
#endif
#endif

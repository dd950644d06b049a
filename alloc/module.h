/* alloc/'s interface to the modules built on the heap: freelists/,
 * singletons/ and immortal/.
 *
 * Why a header of its own: those modules need lifecycle hooks, a slot of
 * state per runtime and per interpreter, reports and the runtime's own
 * heap, and nothing of the heap's layout, which stays private to alloc/
 * (internal.h).  alloc/ never calls into them: they follow the lifecycle
 * through the hooks they register.
 */
#ifndef ISLET_MODULE_H
#define ISLET_MODULE_H

#include "islet.h"
#include <stdbool.h>

enum { EXT_FREELISTS, EXT_SINGLETONS, EXT_SLOTS };                            /* per interpreter */
enum { RT_EXT_IMMORTALS, RT_EXT_SINGLETONS, RT_EXT_FREELISTS, RT_EXT_SLOTS }; /* per runtime */

typedef struct {
  void (*interp_new)(void *ctx, islet_interp_t *in);     /* after creation */
  void (*interp_destroy)(void *ctx, islet_interp_t *in); /* before teardown */
  void (*runtime_destroy)(void *ctx); /* after the last interpreter, before the runtime heap */
  void *ctx;
} hooks_t;

/* The runtime's state of a module (size bytes, zeroed, its first member set
 * to the runtime), made on first use together with its hooks (first: run
 * before all others at creation, after all others at the end), which get
 * it as ctx; NULL without memory.  The runtime frees it after the last
 * runtime_destroy hook. */
void *islet_runtime_module(islet_runtime_t *rt, int slot, size_t size, hooks_t h, bool first);
/* That state, or NULL before it is made; any thread. */
void *islet_runtime_state(islet_runtime_t *rt, int slot);
/* An interpreter's slot for a module's state (its hooks set it). */
void **islet_interp_state(islet_interp_t *in, int slot);
islet_runtime_t *islet_interp_runtime(const islet_interp_t *in);

/* The runtime's own heap, shared under a lock: memory that outlives every
 * interpreter (shared immortal objects). */
void *islet_runtime_malloc(islet_runtime_t *rt, size_t size);
void islet_runtime_free(islet_runtime_t *rt, void *p);
bool islet_is_runtime_heap(const islet_interp_t *in);

/* report.c */
void islet_set_error(islet_error_t e);
/* Reports a bad free (or a cross-interpreter free under policy report/abort)
 * made by caller (NULL: unknown) on a block of interpreter owner (0: none);
 * rt may be NULL when caller is set or no runtime is known. */
void islet_report(islet_runtime_t *rt, islet_interp_t *caller, islet_error_t e, const void *p,
                  unsigned owner);

#endif

/* Immortalization and the runtime's final sweep.
 *
 * Why: an immortal object is never freed by reference counting, yet its
 * memory must still be returned exactly once.  Objects of the runtime's own
 * heap that are made immortal are recorded here and finalized and freed by
 * the runtime, after the last interpreter is gone (a runtime_destroy hook),
 * newest first, as CPython finalizes its static objects at the very end.
 * Objects of an interpreter's heap are immortal for that interpreter's life
 * and go with its heap.
 */
#include "islet_object.h"
#include "internal.h"
#include <stdlib.h>

typedef struct {
  islet_object_t *ob;
  void (*fin)(islet_object_t *ob, void *ctx); /* NULL: the type's finalize */
  void *ctx;
} entry_t;

typedef struct {
  islet_runtime_t *rt; /* first: see islet_runtime_module */
  entry_t *objs;
  size_t n, cap;
} registry_t;

static void sweep(void *ctx) {
  registry_t *reg = ctx;
  while (reg->n) {
    entry_t *e = &reg->objs[--reg->n];
    if (e->fin)
      e->fin(e->ob, e->ctx);
    else if (e->ob->ob_type && e->ob->ob_type->finalize)
      e->ob->ob_type->finalize(e->ob);
    islet_free(reg->rt->heap, e->ob); /* single-threaded now: the runtime is ending */
  }
  free(reg->objs);
  free(reg);
}

/* Under the runtime's heap lock. */
static int record(islet_runtime_t *rt, entry_t e) {
  hooks_t h = {.runtime_destroy = sweep};
  registry_t *reg = islet_runtime_module(rt, RT_EXT_IMMORTALS, sizeof *reg, h, true);
  if (!reg) return -1;
  if (reg->n == reg->cap) {
    size_t cap = reg->cap ? reg->cap * 2 : 64;
    entry_t *objs = realloc(reg->objs, cap * sizeof *objs);
    if (!objs) return -1;
    reg->objs = objs;
    reg->cap = cap;
  }
  reg->objs[reg->n++] = e;
  return 0;
}

islet_object_t *islet_runtime_object_new(islet_runtime_t *rt, const islet_type_t *type,
                                         size_t size) {
  islet_object_t *ob = islet_runtime_malloc(rt, size < sizeof *ob ? sizeof *ob : size);
  if (ob) *ob = (islet_object_t){{1}, type};
  return ob;
}

int islet_immortalize_fin(islet_object_t *ob, void (*fin)(islet_object_t *, void *), void *ctx) {
  islet_interp_t *owner = islet_owner(ob);
  if (islet_is_immortal(ob)) {
    islet_report(owner ? owner->rt : NULL, islet_current(), ISLET_EIMMORTAL, ob,
                 owner ? owner->id : 0);
    return ISLET_EIMMORTAL;
  }
  if (owner && islet_is_runtime_heap(owner)) {
    pthread_mutex_lock(&owner->rt->heap_lock);
    int failed = record(owner->rt, (entry_t){ob, fin, ctx});
    pthread_mutex_unlock(&owner->rt->heap_lock);
    if (failed) {
      islet_set_error(ISLET_ENOMEM);
      return ISLET_ENOMEM;
    }
  }
  ob->ob_refcnt = ISLET_IMMORTAL_REFCNT;
  return ISLET_OK;
}

int islet_immortalize(islet_object_t *ob) {
  return islet_immortalize_fin(ob, NULL, NULL);
}

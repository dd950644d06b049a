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
#include "immortal.h"
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* every runtime's entries */

static void sweep(void *ctx) {
  immortals_t *im = ctx;
  while (im->n) {
    immortal_entry_t *e = &im->objs[--im->n];
    islet_object_t *ob = e->ob;
    if (e->fin)
      e->fin(ob, e->ctx);
    else if (ob->ob_type && ob->ob_type->finalize)
      ob->ob_type->finalize(ob);
    islet_runtime_free(im->rt, ob);
  }
  free(im->objs);
}

immortals_t *islet_immortals(islet_runtime_t *rt) {
  hooks_t h = {.runtime_destroy = sweep};
  return islet_runtime_module(rt, RT_EXT_IMMORTALS, sizeof(immortals_t), h, true);
}

static int record(islet_runtime_t *rt, immortal_entry_t e) {
  immortals_t *im = islet_immortals(rt);
  if (!im) return -1;
  pthread_mutex_lock(&lock);
  if (im->n == im->cap) {
    size_t cap = im->cap ? im->cap * 2 : 64;
    immortal_entry_t *objs = realloc(im->objs, cap * sizeof *objs);
    if (objs) im->objs = objs, im->cap = cap;
  }
  bool ok = im->n < im->cap;
  if (ok) im->objs[im->n++] = e;
  pthread_mutex_unlock(&lock);
  return ok ? 0 : -1;
}

void islet_report_owner(const void *p, islet_interp_t *caller, islet_error_t e) {
  islet_interp_t *owner = islet_owner(p);
  islet_report(owner ? islet_interp_runtime(owner) : NULL, caller, e, p,
               owner ? islet_interp_id(owner) : 0);
}

islet_object_t *islet_runtime_object_new(islet_runtime_t *rt, const islet_type_t *type,
                                         size_t size) {
  islet_object_t *ob = islet_runtime_malloc(rt, size < sizeof *ob ? sizeof *ob : size);
  if (ob) *ob = (islet_object_t){{1}, type};
  return ob;
}

int islet_immortalize_fin(islet_object_t *ob, void (*fin)(islet_object_t *, void *), void *ctx) {
  if (islet_is_immortal(ob)) {
    islet_report_owner(ob, islet_current(), ISLET_EIMMORTAL);
    return ISLET_EIMMORTAL;
  }
  islet_interp_t *owner = islet_owner(ob);
  if (owner && islet_is_runtime_heap(owner) &&
      record(islet_interp_runtime(owner), (immortal_entry_t){ob, fin, ctx})) {
    islet_set_error(ISLET_ENOMEM);
    return ISLET_ENOMEM;
  }
  ob->ob_refcnt = ISLET_IMMORTAL_REFCNT;
  return ISLET_OK;
}

int islet_immortalize(islet_object_t *ob) {
  return islet_immortalize_fin(ob, NULL, NULL);
}

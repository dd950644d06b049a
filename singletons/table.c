/* The singleton table (see include/islet_singletons.h).
 *
 * Slots live in the runtime, in registration order.  Each interpreter gets
 * an array indexed by id from an interp_new hook: its own objects for
 * per_interpreter slots, the shared objects' addresses for the others, so a
 * lookup is one load either way.  Its interp_destroy hook runs the
 * per_interpreter destructors in reverse order and frees the objects.
 */
#include "islet_singletons.h"
#include "module.h"
#include "immortal/immortal.h"
#include <stdlib.h>

typedef struct {
  islet_singleton_def_t def;
  islet_object_t *shared;
} slot_t;

typedef struct {
  islet_runtime_t *rt; /* first: see islet_runtime_module */
  slot_t *slots;
  size_t n, cap;
  bool taken[ISLET_SINGLETONS_MAX];
} table_t;

typedef struct {
  islet_object_t *by_id[ISLET_SINGLETONS_MAX];
} objects_t;

static void on_interp_new(void *ctx, islet_interp_t *in) {
  table_t *t = ctx;
  objects_t *o = calloc(1, sizeof *o);
  if (!o) return; /* every lookup answers ISLET_ENOENT */
  for (size_t i = 0; i < t->n; i++) {
    slot_t *s = &t->slots[i];
    o->by_id[s->def.id] =
        s->def.policy == ISLET_SHARED_IMMORTAL ? s->shared : s->def.ctor(t->rt, in, s->def.ctx);
  }
  *islet_interp_state(in, EXT_SINGLETONS) = o;
}

static void on_interp_destroy(void *ctx, islet_interp_t *in) {
  table_t *t = ctx;
  objects_t *o = *islet_interp_state(in, EXT_SINGLETONS);
  for (size_t i = t->n; o && i-- > 0;) {
    slot_t *s = &t->slots[i];
    islet_object_t *ob = o->by_id[s->def.id];
    if (s->def.policy == ISLET_SHARED_IMMORTAL || !ob) continue;
    if (s->def.dtor)
      s->def.dtor(ob, s->def.ctx);
    else if (ob->ob_type && ob->ob_type->finalize)
      ob->ob_type->finalize(ob);
    islet_free(in, ob);
  }
  free(o);
  *islet_interp_state(in, EXT_SINGLETONS) = NULL;
}

static void on_runtime_destroy(void *ctx) { /* shared objects go in the final sweep */
  free(((table_t *)ctx)->slots);
}

static int add(table_t *t, const islet_singleton_def_t *d) {
  if (d->id >= ISLET_SINGLETONS_MAX || t->taken[d->id] || !d->ctor) return ISLET_EINVAL;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    slot_t *s = realloc(t->slots, cap * sizeof *s);
    if (!s) return ISLET_ENOMEM;
    t->slots = s;
    t->cap = cap;
  }
  slot_t s = {*d, NULL};
  if (d->policy == ISLET_SHARED_IMMORTAL) {
    s.shared = d->ctor(t->rt, NULL, d->ctx);
    if (!s.shared) return ISLET_ENOMEM;
    if (islet_immortalize_fin(s.shared, d->dtor, d->ctx)) return ISLET_ENOMEM;
  }
  t->slots[t->n++] = s;
  t->taken[d->id] = true;
  return ISLET_OK;
}

int islet_singletons_register(islet_runtime_t *rt, const islet_singleton_def_t *defs, size_t n) {
  hooks_t h = {on_interp_new, on_interp_destroy, on_runtime_destroy, NULL};
  table_t *t = islet_runtime_module(rt, RT_EXT_SINGLETONS, sizeof(table_t), h, false);
  int err = t ? ISLET_OK : ISLET_ENOMEM;
  for (size_t i = 0; !err && i < n; i++) err = add(t, &defs[i]);
  if (err) islet_set_error((islet_error_t)err);
  return err;
}

islet_object_t *islet_singleton(islet_interp_t *in, unsigned id) {
  objects_t *o = *islet_interp_state(in, EXT_SINGLETONS);
  islet_object_t *ob = o && id < ISLET_SINGLETONS_MAX ? o->by_id[id] : NULL;
  if (!ob) islet_set_error(ISLET_ENOENT);
  return ob;
}

/* Per-interpreter free lists (see include/islet_freelist.h).
 *
 * A list is a singly linked stack through the first word of each kept block;
 * a kept block is still allocated as far as the heap (and Valgrind and ASan)
 * can tell, so writing the link is legal.  Kinds live in the runtime; each
 * interpreter gets its lists from an interp_new hook and empties them in an
 * interp_destroy hook.
 */
#include "islet_freelist.h"
#include "module.h"
#include <stdlib.h>

typedef struct {
  void *head;
  size_t size, cap; /* copied from the kind; size 0: not registered */
  islet_freelist_stats_t st;
} list_t;

typedef struct {
  bool disabled;
  list_t lists[ISLET_FREELIST_KINDS];
} lists_t;

typedef struct {
  islet_runtime_t *rt; /* first: see islet_runtime_module */
  islet_freelist_kind_t kinds[ISLET_FREELIST_KINDS];
} kinds_t;

static void on_interp_new(void *ctx, islet_interp_t *in) {
  kinds_t *k = ctx;
  lists_t *ls = calloc(1, sizeof *ls);
  if (!ls) return; /* no lists: every pop misses, every push is refused */
  for (unsigned i = 0; i < ISLET_FREELIST_KINDS; i++) {
    ls->lists[i].size = k->kinds[i].size;
    ls->lists[i].cap = k->kinds[i].cap;
  }
  *islet_interp_state(in, EXT_FREELISTS) = ls;
}

static void on_interp_destroy(void *ctx, islet_interp_t *in) {
  (void)ctx;
  islet_freelists_finalize(in);
  free(*islet_interp_state(in, EXT_FREELISTS));
  *islet_interp_state(in, EXT_FREELISTS) = NULL;
}

int islet_freelists_register(islet_runtime_t *rt, const islet_freelist_kind_t *kinds, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (kinds[i].id >= ISLET_FREELIST_KINDS || kinds[i].size < sizeof(void *)) {
      islet_set_error(ISLET_EINVAL);
      return ISLET_EINVAL;
    }
  hooks_t h = {on_interp_new, on_interp_destroy, NULL, NULL};
  kinds_t *k = islet_runtime_module(rt, RT_EXT_FREELISTS, sizeof(kinds_t), h, false);
  if (!k) {
    islet_set_error(ISLET_ENOMEM);
    return ISLET_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) k->kinds[kinds[i].id] = kinds[i];
  return ISLET_OK;
}

static list_t *list_of(islet_interp_t *in, unsigned kind) {
  lists_t *ls = *islet_interp_state(in, EXT_FREELISTS);
  return ls && kind < ISLET_FREELIST_KINDS && ls->lists[kind].size ? &ls->lists[kind] : NULL;
}

void *islet_freelist_pop(islet_interp_t *in, unsigned kind) {
  list_t *l = list_of(in, kind);
  if (!l) return NULL;
  void *p = l->head;
  if (!p) {
    l->st.misses++;
    return NULL;
  }
  l->head = *(void **)p;
  l->st.count--;
  l->st.hits++;
  return p;
}

int islet_freelist_push(islet_interp_t *in, unsigned kind, void *p) {
  list_t *l = list_of(in, kind);
  if (!l) {
    islet_set_error(ISLET_EINVAL);
    return 0;
  }
  lists_t *ls = *islet_interp_state(in, EXT_FREELISTS);
  if (ls->disabled || l->st.count >= l->cap) { /* full or cap 0: not an error */
    l->st.refused++;
    if (ls->disabled) islet_set_error(ISLET_EDISABLED);
    return 0;
  }
  islet_interp_t *owner = islet_owner(p);
  if (owner != in) { /* a free list never holds another interpreter's memory */
    l->st.refused++;
    islet_report(islet_interp_runtime(in), in, ISLET_EISOLATION, p,
                 owner ? islet_interp_id(owner) : 0);
    return 0;
  }
  *(void **)p = l->head;
  l->head = p;
  if (++l->st.count > l->st.high_water) l->st.high_water = l->st.count;
  return 1;
}

void *islet_freelist_alloc(islet_interp_t *in, unsigned kind) {
  void *p = islet_freelist_pop(in, kind);
  list_t *l = list_of(in, kind);
  return p || !l ? p : islet_malloc(in, l->size);
}

void islet_freelist_free(islet_interp_t *in, unsigned kind, void *p) {
  if (p && !islet_freelist_push(in, kind, p)) islet_free(in, p);
}

void islet_freelists_finalize(islet_interp_t *in) {
  lists_t *ls = *islet_interp_state(in, EXT_FREELISTS);
  if (!ls) return;
  ls->disabled = true;
  for (unsigned i = 0; i < ISLET_FREELIST_KINDS; i++) {
    list_t *l = &ls->lists[i];
    while (l->head) {
      void *p = l->head;
      l->head = *(void **)p;
      islet_free(in, p);
    }
    l->st.count = 0;
  }
}

void islet_freelist_stats(islet_interp_t *in, unsigned kind, islet_freelist_stats_t *out) {
  list_t *l = list_of(in, kind);
  *out = l ? l->st : (islet_freelist_stats_t){0};
}

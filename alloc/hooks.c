/* Lifecycle hooks and the runtime-owned heap.
 *
 * Why: free lists, singleton tables and immortal objects live and die with
 * interpreters and with the runtime, but the heap must not depend on them.
 * They register hooks; the heap calls them when an interpreter starts (in
 * registration order), before it is torn down (in reverse order, so later
 * modules go first) and when the runtime ends.  Memory that must outlive
 * every interpreter (shared immortal constants) comes from one more heap
 * that belongs to the runtime, shared under a lock.
 */
#include "internal.h"
#include <stdlib.h>

/* first: run it before all others at creation, after all others at the
 * end (the immortal sweep must come after every module's teardown). */
int islet_runtime_add_hooks(islet_runtime_t *rt, const hooks_t *h, bool first) {
  pthread_mutex_lock(&rt->lock);
  int ok = rt->nhooks < MAX_HOOKS;
  if (ok && first) {
    for (int i = rt->nhooks; i > 0; i--) rt->hooks[i] = rt->hooks[i - 1];
    rt->hooks[0] = *h;
    rt->nhooks++;
  } else if (ok) {
    rt->hooks[rt->nhooks++] = *h;
  }
  pthread_mutex_unlock(&rt->lock);
  return ok ? 0 : -1;
}

static int snapshot(islet_runtime_t *rt, hooks_t *out) {
  pthread_mutex_lock(&rt->lock);
  int n = rt->nhooks;
  for (int i = 0; i < n; i++) out[i] = rt->hooks[i];
  pthread_mutex_unlock(&rt->lock);
  return n;
}

void islet_run_interp_hooks(islet_interp_t *in, bool create) {
  hooks_t h[MAX_HOOKS];
  int n = snapshot(in->rt, h);
  for (int i = 0; i < n; i++) {
    const hooks_t *k = &h[create ? i : n - 1 - i];
    if (create && k->interp_new) k->interp_new(k->ctx, in);
    if (!create && k->interp_destroy) k->interp_destroy(k->ctx, in);
  }
}

void islet_runtime_end_hooks(islet_runtime_t *rt) {
  hooks_t h[MAX_HOOKS];
  for (int i = snapshot(rt, h) - 1; i >= 0; i--)
    if (h[i].runtime_destroy) h[i].runtime_destroy(h[i].ctx);
}

bool islet_is_runtime_heap(const islet_interp_t *in) {
  return in->runtime_heap;
}

/* The runtime's state of a module (zeroed, its first member set to the
 * runtime), created on first use together with its hooks, which get it as
 * ctx.  Modules register before interpreters exist, from one thread. */
void *islet_runtime_module(islet_runtime_t *rt, int slot, size_t size, hooks_t h, bool first) {
  void *m = rt->ext[slot];
  if (m || !(m = calloc(1, size))) return m;
  *(islet_runtime_t **)m = rt;
  h.ctx = m;
  if (islet_runtime_add_hooks(rt, &h, first)) {
    free(m);
    return NULL;
  }
  return rt->ext[slot] = m;
}

void *islet_runtime_malloc(islet_runtime_t *rt, size_t size) {
  pthread_mutex_lock(&rt->heap_lock);
  if (!rt->heap && (rt->heap = islet_interp_create(rt))) rt->heap->runtime_heap = true;
  void *p = rt->heap ? islet_malloc(rt->heap, size) : NULL;
  pthread_mutex_unlock(&rt->heap_lock);
  return p;
}

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

/* rt->lock held.  first: before all others at creation, after all others
 * at the end (the immortal sweep must come after every module's teardown). */
static bool add_hooks(islet_runtime_t *rt, const hooks_t *h, bool first) {
  if (rt->nhooks == MAX_HOOKS) return false;
  if (first)
    for (int i = rt->nhooks; i > 0; i--) rt->hooks[i] = rt->hooks[i - 1];
  rt->hooks[first ? 0 : rt->nhooks] = *h;
  rt->nhooks++;
  return true;
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

/* Made under rt->lock, so two threads' first uses make one; published with
 * release, for islet_runtime_state's lock-free reads. */
void *islet_runtime_module(islet_runtime_t *rt, int slot, size_t size, hooks_t h, bool first) {
  void *m = islet_runtime_state(rt, slot);
  if (m) return m;
  pthread_mutex_lock(&rt->lock);
  if (!(m = atomic_load_explicit(&rt->ext[slot], memory_order_relaxed)) && (m = calloc(1, size))) {
    *(islet_runtime_t **)m = rt;
    h.ctx = m;
    if (add_hooks(rt, &h, first))
      atomic_store_explicit(&rt->ext[slot], m, memory_order_release);
    else
      free(m), m = NULL;
  }
  pthread_mutex_unlock(&rt->lock);
  return m;
}

void *islet_runtime_state(islet_runtime_t *rt, int slot) {
  return atomic_load_explicit(&rt->ext[slot], memory_order_acquire);
}

void **islet_interp_state(islet_interp_t *in, int slot) {
  return &in->ext[slot];
}

islet_runtime_t *islet_interp_runtime(const islet_interp_t *in) {
  return in->rt;
}

void *islet_runtime_malloc(islet_runtime_t *rt, size_t size) {
  pthread_mutex_lock(&rt->heap_lock);
  if (!rt->heap && (rt->heap = islet_interp_create(rt))) rt->heap->runtime_heap = true;
  void *p = rt->heap ? islet_malloc(rt->heap, size) : NULL;
  pthread_mutex_unlock(&rt->heap_lock);
  return p;
}

void islet_runtime_free(islet_runtime_t *rt, void *p) {
  pthread_mutex_lock(&rt->heap_lock);
  islet_free(rt->heap, p);
  pthread_mutex_unlock(&rt->heap_lock);
}

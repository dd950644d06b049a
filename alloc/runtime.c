/* The runtime: process-wide configuration and the list of interpreters.
 *
 * Why: policies (cross-interpreter frees, bad frees, teardown) are one
 * decision per embedding, and the runtime must be able to end everything it
 * started, including quarantined memory, exactly once.
 */
#include "internal.h"
#include <stdlib.h>

#ifdef ISLET_HAVE_VALGRIND
bool islet_vg;
static pthread_once_t vg_once = PTHREAD_ONCE_INIT;
static void detect_valgrind(void) {
  islet_vg = vg_detect();
}
#endif

islet_runtime_t *islet_runtime_new(const islet_config_t *cfg) {
  islet_runtime_t *rt = calloc(1, sizeof *rt);
  if (!rt) {
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
#ifdef ISLET_HAVE_VALGRIND
  pthread_once(&vg_once, detect_valgrind); /* written once, before any interpreter */
#endif
  islet_fast_map_init();
  if (cfg) rt->cfg = *cfg;
  atomic_init(&rt->cross_free, rt->cfg.cross_free);
  pthread_mutex_init(&rt->lock, NULL);
  pthread_mutex_init(&rt->heap_lock, NULL);
  pthread_mutex_init(&rt->orphan_lock, NULL);
  pthread_cond_init(&rt->wake, NULL);
  pthread_cond_init(&rt->idle, NULL);
  interps_init(&rt->live);
  interps_init(&rt->orphans);
  islet_runtime_t *none = NULL;
  atomic_compare_exchange_strong(&islet_default_rt, &none, rt);
  islet_fork_track(rt);
  return rt;
}

void islet_runtime_set_cross_policy(islet_runtime_t *rt, islet_cross_policy_t p) {
  atomic_store_explicit(&rt->cross_free, p, memory_order_relaxed);
}

void islet_runtime_destroy(islet_runtime_t *rt) {
  for (;;) {
    pthread_mutex_lock(&rt->lock);
    islet_interp_t *in = rt->live.rt_next;
    pthread_mutex_unlock(&rt->lock);
    if (in == &rt->live) break;
    islet_interp_destroy(in, NULL);
  }
  islet_runtime_end_hooks(rt); /* shared immortals are swept here */
  for (int i = 0; i < RT_EXT_SLOTS; i++)
    free(atomic_load_explicit(&rt->ext[i], memory_order_relaxed));
  if (rt->heap) islet_interp_destroy(rt->heap, NULL);
  islet_orphans_sweep(rt, true);
  islet_reclaim_shutdown(rt);
  islet_fork_untrack(rt);
  islet_runtime_t *self = rt;
  atomic_compare_exchange_strong(&islet_default_rt, &self, NULL);
  pthread_cond_destroy(&rt->wake);
  pthread_cond_destroy(&rt->idle);
  pthread_mutex_destroy(&rt->heap_lock);
  pthread_mutex_destroy(&rt->orphan_lock);
  pthread_mutex_destroy(&rt->lock);
  free(rt);
}

/* fork(): islet's locks and its runtime thread in the child.
 *
 * Why: fork copies only the calling thread.  A lock another thread held at
 * that moment stays held in the child forever, and the runtime thread that
 * gives destroyed interpreters' memory back (reclaim.c) is gone, so the
 * child's first destroy, flush or new region would wait for ever (measured:
 * 199 of 200 children of a process that was creating and destroying
 * interpreters on a second thread hung).  As glibc's malloc and jemalloc do,
 * islet takes every lock of its own before fork and releases them after it,
 * in both processes.  First it waits for any heap being given back (by the
 * runtime thread, or inline) to be done, so none is half given back in the
 * child; what is still queued stays queued, and the child gives it back
 * before the first heap it destroys itself (quarantine is oldest first).
 *
 * The child starts no runtime thread: every runtime it inherits gives
 * destroyed heaps back on the destroying thread, as with reclaim_inline, for
 * the rest of the child's life.  This is jemalloc's choice for its own
 * background threads, which a child has turned off until the program turns
 * them on again (background_thread_postfork_child).  Why every child, and
 * not only one that would need it:
 *   - a child of a multi-threaded fork may only make async-signal-safe calls
 *     (POSIX), and pthread_create is not one; glibc allows it, TSan kills
 *     the child ("starting new threads after multi-threaded fork is not
 *     supported").  islet cannot tell which forks were multi-threaded, and
 *     nearly all are: its own runtime thread runs in any process that has
 *     destroyed a heap;
 *   - the thread saves the destroying thread time (per resident page: a
 *     25 MiB heap takes milliseconds), not work, and the usual child (a
 *     multiprocessing worker, a child about to exec) destroys few heaps;
 *   - a long-lived child that destroys many large heaps pays those
 *     milliseconds in each destroy, next to what ending an interpreter costs
 *     CPython anyway.  A runtime the child creates itself follows its own
 *     config and starts the thread on first use as usual.
 *
 * Lock order, outermost first: the list of runtimes; per runtime the orphan
 * and runtime-heap locks (each may be held while the runtime lock is taken),
 * then the runtime lock; the backend's locks last (backend.c registers its
 * own handlers first, so they run inside these).  A layer above (cpython/)
 * registers after islet, so its locks are taken before all of islet's.
 */
#include "internal.h"

static pthread_mutex_t runtimes_lock = PTHREAD_MUTEX_INITIALIZER;
static islet_runtime_t *runtimes;
static pthread_once_t registered = PTHREAD_ONCE_INIT;

static void prepare(void) {
  pthread_mutex_lock(&runtimes_lock);
  for (islet_runtime_t *rt = runtimes; rt; rt = rt->fork_next) {
    pthread_mutex_lock(&rt->orphan_lock);
    pthread_mutex_lock(&rt->heap_lock);
    pthread_mutex_lock(&rt->lock);
    while (rt->reclaiming) pthread_cond_wait(&rt->idle, &rt->lock);
  }
}

static void unlock_all(void) {
  for (islet_runtime_t *rt = runtimes; rt; rt = rt->fork_next) {
    pthread_mutex_unlock(&rt->lock);
    pthread_mutex_unlock(&rt->heap_lock);
    pthread_mutex_unlock(&rt->orphan_lock);
  }
  pthread_mutex_unlock(&runtimes_lock);
}

/* The child's only thread holds every lock.  A condition variable may still
 * count a waiter that no longer exists (the runtime thread), which could
 * swallow a signal meant for a real one: they start afresh.  No runtime
 * thread from here on (above). */
static void child(void) {
  for (islet_runtime_t *rt = runtimes; rt; rt = rt->fork_next) {
    rt->reclaimer_started = false;
    rt->cfg.reclaim_inline = 1;
    pthread_cond_init(&rt->wake, NULL);
    pthread_cond_init(&rt->idle, NULL);
  }
  unlock_all();
}

static void register_handlers(void) {
  islet_backend_atfork();
  pthread_atfork(prepare, unlock_all, child);
}

void islet_fork_track(islet_runtime_t *rt) {
  pthread_once(&registered, register_handlers);
  pthread_mutex_lock(&runtimes_lock);
  rt->fork_next = runtimes;
  runtimes = rt;
  pthread_mutex_unlock(&runtimes_lock);
}

void islet_fork_untrack(islet_runtime_t *rt) {
  pthread_mutex_lock(&runtimes_lock);
  islet_runtime_t **p = &runtimes;
  while (*p != rt) p = &(*p)->fork_next;
  *p = rt->fork_next;
  pthread_mutex_unlock(&runtimes_lock);
}

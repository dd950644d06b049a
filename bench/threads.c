/* The multi-thread workloads: (3) churn on several threads and (4) frees of
 * one thread's blocks by another.
 *
 * Why barriers: only the allocator's work is timed.  Threads fill their
 * heaps, then start together; in (4) the blocks are handed over, and the
 * freeing thread told to go, between timed regions.
 */
#include "bench.h"
#include <pthread.h>
#include <stdlib.h>

/* --- (3) churn on n threads -------------------------------------------- */

typedef struct {
  const alloc_vt_t *vt;
  const seq_t *seq;
  void *shared; /* the heap all threads use, or NULL: each sets up its own */
  pthread_barrier_t *bar;
  uint64_t t0, t1;
} worker_t;

static void *churn_worker(void *arg) {
  worker_t *w = arg;
  void *heap = w->shared ? w->shared : w->vt->setup();
  void **slots = xcalloc(w->seq->nslots, sizeof *slots);
  churn_fill(w->vt, heap, slots, w->seq);
  pthread_barrier_wait(w->bar);
  w->t0 = now_ns();
  churn_ops(w->vt, heap, slots, w->seq);
  w->t1 = now_ns();
  pthread_barrier_wait(w->bar); /* nobody cleans up while another is timed */
  churn_drain(w->vt, heap, slots, w->seq);
  free(slots);
  if (!w->shared) w->vt->teardown(heap);
  return NULL;
}

double threads_mops(const alloc_vt_t *vt, unsigned n, bool shared, const seq_t *seq) {
  worker_t *w = xcalloc(n, sizeof *w);
  pthread_t *tid = xcalloc(n, sizeof *tid);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, n);
  void *heap = shared ? vt->setup() : NULL;
  for (unsigned i = 0; i < n; i++) {
    w[i] = (worker_t){.vt = vt, .seq = seq, .shared = heap, .bar = &bar};
    if (pthread_create(&tid[i], NULL, churn_worker, &w[i])) die("pthread_create failed");
  }
  uint64_t start = UINT64_MAX, end = 0;
  for (unsigned i = 0; i < n; i++) {
    pthread_join(tid[i], NULL);
    if (w[i].t0 < start) start = w[i].t0;
    if (w[i].t1 > end) end = w[i].t1;
  }
  if (shared) vt->teardown(heap);
  if (vt->quiesce) vt->quiesce();
  pthread_barrier_destroy(&bar);
  free(tid);
  free(w);
  return (double)n * (double)seq->nops / ((double)(end - start) / 1e3);
}

/* --- (4) cross-thread frees -------------------------------------------- */

typedef struct {
  const alloc_vt_t *vt;
  void **blocks;
  size_t n, rounds;
  pthread_barrier_t bar;
  uint64_t remote_ns; /* B's time freeing A's blocks */
} cross_t;

/* Thread B: frees each batch A hands over, with the heap it holds. */
static void *cross_b(void *arg) {
  cross_t *c = arg;
  void *heap = c->vt->setup();
  for (size_t r = 0; r < c->rounds; r++) {
    pthread_barrier_wait(&c->bar); /* A's batch is ready */
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < c->n; i++) c->vt->free(heap, c->blocks[i]);
    c->remote_ns += now_ns() - t0;
    pthread_barrier_wait(&c->bar); /* done: A may collect */
  }
  c->vt->teardown(heap);
  return NULL;
}

/* n blocks of the mix, stored in a random order: objects die in an order
 * unrelated to the one they were made in. */
static void make_batch(const alloc_vt_t *vt, void *heap, const seq_t *seq, void **blocks,
                       const uint32_t *perm, size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p = vt->malloc(heap, seq->size[i % seq->nops]);
    if (!p) die("%s: allocation failed", vt->name);
    blocks[perm[i]] = p;
  }
}

/* Thread A (the caller) allocates every batch; each round it frees one
 * batch itself (local) and hands one to B (remote), then collects. */
cross_ns_t cross_ns(const alloc_vt_t *vt, const seq_t *seq, size_t n, size_t rounds) {
  cross_t c = {.vt = vt, .n = n, .rounds = rounds};
  c.blocks = xcalloc(n, sizeof *c.blocks);
  uint32_t *perm = xcalloc(n, sizeof *perm);
  shuffle(perm, n, 0x5eed);
  pthread_barrier_init(&c.bar, NULL, 2);
  void *heap = vt->setup();
  pthread_t b;
  if (pthread_create(&b, NULL, cross_b, &c)) die("pthread_create failed");
  uint64_t local = 0, collect = 0;
  for (size_t r = 0; r < rounds; r++) {
    make_batch(vt, heap, seq, c.blocks, perm, n);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) vt->free(heap, c.blocks[i]);
    local += now_ns() - t0;

    make_batch(vt, heap, seq, c.blocks, perm, n);
    pthread_barrier_wait(&c.bar); /* hand over */
    pthread_barrier_wait(&c.bar); /* B has freed them */
    t0 = now_ns();
    if (vt->collect) vt->collect(heap);
    collect += now_ns() - t0;
  }
  pthread_join(b, NULL);
  vt->teardown(heap);
  if (vt->quiesce) vt->quiesce();
  pthread_barrier_destroy(&c.bar);
  free(perm);
  free(c.blocks);
  double total = (double)n * (double)rounds;
  return (cross_ns_t){.local = (double)local / total,
                      .remote = (double)c.remote_ns / total,
                      .collect = (double)collect / total};
}

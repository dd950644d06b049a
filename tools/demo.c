/* islet-demo: four interpreters on four threads, an allocation-heavy
 * workload with cross-interpreter frees, then a per-interpreter table.
 *
 * Each thread owns one interpreter and keeps a set of live blocks of
 * CPython-like sizes; one allocation in sixteen is handed to the next thread,
 * which frees it (a cross-interpreter free).  Each interpreter leaves 100
 * blocks live on purpose, as an extension module would, so the teardown's
 * leak report has something to show.
 */
#include "islet.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NTHREADS 4
#define SLOTS 20000
#define LEAKED 100
#define INBOX 1024

typedef struct {
  pthread_mutex_t lock;
  void *ring[INBOX];
  size_t head, tail;
} inbox_t;

typedef struct {
  islet_interp_t *in;
  inbox_t inbox;
  long ops;
  size_t leaked; /* blocks left live on purpose */
  unsigned seed;
} worker_t;

static worker_t workers[NTHREADS];

static size_t demo_size(unsigned *seed) {
  unsigned r = (unsigned)rand_r(seed);
  if (r % 100 == 0) return 16384 + r % 65536; /* a few large blocks */
  return 16 + (r >> 8) % 497;                 /* CPython-like 16..512 B */
}

static int inbox_push(inbox_t *b, void *p) {
  pthread_mutex_lock(&b->lock);
  int ok = b->tail - b->head < INBOX;
  if (ok) b->ring[b->tail++ % INBOX] = p;
  pthread_mutex_unlock(&b->lock);
  return ok;
}

static void *inbox_pop(inbox_t *b) {
  pthread_mutex_lock(&b->lock);
  void *p = b->head < b->tail ? b->ring[b->head++ % INBOX] : NULL;
  pthread_mutex_unlock(&b->lock);
  return p;
}

static void drain(worker_t *w) {
  for (void *p; (p = inbox_pop(&w->inbox));) islet_free(w->in, p);
}

static void *run(void *arg) {
  worker_t *w = arg;
  worker_t *next = &workers[(w - workers + 1) % NTHREADS];
  void **slots = calloc(SLOTS, sizeof *slots);
  for (long i = 0; i < w->ops; i++) {
    size_t k = (size_t)rand_r(&w->seed) % SLOTS;
    islet_free(w->in, slots[k]);
    size_t n = demo_size(&w->seed);
    slots[k] = islet_malloc(w->in, n);
    if (slots[k]) memset(slots[k], (int)i, n < 64 ? n : 64);
    if (i % 16 == 0 && slots[k] && inbox_push(&next->inbox, slots[k])) slots[k] = NULL;
    if (i % 256 == 0) drain(w);
  }
  for (size_t k = 0; k < LEAKED; k++) w->leaked += slots[k] != NULL;
  for (size_t k = LEAKED; k < SLOTS; k++) islet_free(w->in, slots[k]);
  free(slots);
  return NULL;
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 2000000;
  islet_runtime_t *rt = islet_runtime_new(NULL);
  pthread_t tid[NTHREADS];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < NTHREADS; i++) {
    workers[i] = (worker_t){.in = islet_interp_new(rt), .ops = ops, .seed = 1234u + (unsigned)i};
    pthread_mutex_init(&workers[i].inbox.lock, NULL);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_create(&tid[i], NULL, run, &workers[i]);
  for (int i = 0; i < NTHREADS; i++) pthread_join(tid[i], NULL);
  for (int i = 0; i < NTHREADS; i++) drain(&workers[i]); /* the last hand-offs */
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("islet-demo: %d interpreters x %ld operations in %.2f s (%.1f Mops/s)\n\n", NTHREADS, ops,
         secs, NTHREADS * (double)ops / secs / 1e6);
  printf("%-6s %12s %12s %10s %10s %8s %10s %12s %10s\n", "interp", "allocations", "peak KiB",
         "live blks", "live KiB", "arenas", "remote in", "remote out", "teardown");
  int status = 0;
  for (int i = 0; i < NTHREADS; i++) {
    islet_stats_t s;
    islet_leak_report_t r;
    islet_interp_collect(workers[i].in); /* the threads are done: main holds them all */
    islet_interp_stats(workers[i].in, &s);
    islet_interp_destroy(workers[i].in, &r);
    if (r.blocks != workers[i].leaked) {
      fprintf(stderr, "islet-demo: interp %u: %zu live blocks at teardown, %zu left on purpose\n",
              s.id, r.blocks, workers[i].leaked);
      status = 1;
    }
    printf("%-6u %12zu %12zu %10zu %10zu %8zu %10zu %12zu %8.1f us\n", s.id, s.allocs,
           s.bytes_peak / 1024, r.blocks, r.bytes / 1024, s.segments + s.large_blocks,
           s.remote_processed, s.remote_sent, (double)r.teardown_ns / 1e3);
  }
  printf("\nlive blocks at teardown: exactly those left on purpose, reported and released by "
         "islet_interp_destroy.\n");
  islet_runtime_destroy(rt);
  return status;
}

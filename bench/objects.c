/* (6)-(8): the object layer.  Why each matters: an immortal object must cost
 * no more to incref/decref than a private one (6), must not turn shared
 * increfs into cache-line ping-pong between cores (7, with an atomic shared
 * refcount beside it to show what immortality avoids), and a free list must
 * beat the allocator it sits on (8). */
#include "bench.h"
#include "islet_freelist.h"
#include "islet_object.h"
#include <pthread.h>
#include <stdatomic.h>

static const islet_type_t plain = {"plain", NULL};

/* Not inlined: the compiler must not fold an incref against its decref. */
static __attribute__((noinline)) void pair(islet_object_t *ob) {
  islet_incref(ob);
  islet_decref(ob);
}
static __attribute__((noinline)) void atomic_pair(_Atomic islet_ssize_t *rc) {
  atomic_fetch_add_explicit(rc, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(rc, 1, memory_order_release);
}

static double pairs_ns(islet_object_t *ob, size_t n) {
  islet_object_t *volatile obv = ob;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < n; i++) pair(obv);
  return (double)(now_ns() - t0) / (double)n;
}

typedef struct {
  islet_object_t *ob;
  _Atomic islet_ssize_t *rc; /* set: atomic pairs on it instead */
  size_t n;
  pthread_barrier_t *go;
} job_t;

static void *run(void *arg) {
  job_t *j = arg;
  pthread_barrier_wait(j->go);
  if (j->rc)
    for (size_t i = 0; i < j->n; i++) atomic_pair(j->rc);
  else
    for (size_t i = 0; i < j->n; i++) pair(j->ob);
  return NULL;
}

/* Two threads, n pairs each, on ob[0] and ob[1] (the same object or not). */
static double two_threads_mops(islet_object_t *a, islet_object_t *b, _Atomic islet_ssize_t *rc,
                               size_t n) {
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 3);
  job_t j[2] = {{a, rc, n, &go}, {b, rc, n, &go}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, run, &j[i]);
  pthread_barrier_wait(&go);
  uint64_t t0 = now_ns();
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  double secs = (double)(now_ns() - t0) / 1e9;
  pthread_barrier_destroy(&go);
  return 2.0 * (double)n / secs / 1e6;
}

objects_t objects_bench(size_t n) {
  islet_runtime_t *rt = islet_runtime_new(NULL);
  islet_freelists_register(rt, islet_freelist_cpython, ISLET_FL_CPYTHON_KINDS);
  islet_interp_t *in = islet_interp_new(rt);
  objects_t r;
  /* private objects 4 KiB apart: no false sharing between the threads */
  islet_object_t *mine = islet_object_new(in, &plain, 4096);
  islet_object_t *other = islet_object_new(in, &plain, 4096);
  islet_object_t *shared = islet_runtime_object_new(rt, &plain, 64);
  islet_immortalize(shared);
  r.mortal_ns = pairs_ns(mine, n);
  r.immortal_ns = pairs_ns(shared, n);
  r.own_mops = two_threads_mops(mine, other, NULL, n);
  r.shared_mops = two_threads_mops(shared, shared, NULL, n);
  _Atomic islet_ssize_t rc = 1;
  r.atomic_mops = two_threads_mops(NULL, NULL, &rc, n / 4);
  unsigned kind = ISLET_FL_FLOAT;
  size_t size = islet_freelist_cpython[kind].size;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < n; i++) islet_freelist_free(in, kind, islet_freelist_alloc(in, kind));
  r.freelist_ns = (double)(now_ns() - t0) / (double)n;
  t0 = now_ns();
  for (size_t i = 0; i < n; i++) islet_free(in, islet_malloc(in, size));
  r.malloc_ns = (double)(now_ns() - t0) / (double)n;
  islet_free(in, mine);
  islet_free(in, other);
  islet_runtime_destroy(rt);
  return r;
}

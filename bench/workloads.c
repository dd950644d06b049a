/* The single-thread workloads: (1) churn and its peak RSS, (2) LIFO.
 *
 * Why they touch the blocks: a CPython object's header (refcount, type) is
 * written when it is made and read when it dies, so the benchmark does the
 * same (16 bytes written after malloc, 8 read before free).  An allocator
 * that keeps nothing in free blocks would otherwise look better than it is in
 * a real interpreter, which pays that cache miss anyway.
 */
#include "bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static volatile uintptr_t sink; /* keeps the header reads alive */

static inline void obj_init(void *p, size_t tag) {
  uintptr_t *w = p;
  w[0] = 1;
  w[1] = tag;
}
static inline uintptr_t obj_peek(const void *p) {
  return ((const uintptr_t *)p)[1];
}

static _Noreturn void oom(const alloc_vt_t *vt) {
  die("%s: allocation failed", vt->name);
}

void churn_fill(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq) {
  for (size_t i = 0; i < seq->nslots; i++) {
    void *p = vt->malloc(heap, seq->fill_size[i]);
    if (!p) oom(vt);
    obj_init(p, i);
    slots[i] = p;
  }
}

void churn_ops(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq) {
  void *(*const m)(void *, size_t) = vt->malloc;
  void (*const f)(void *, void *) = vt->free;
  const uint16_t *size = seq->size;
  const uint32_t *slot = seq->slot;
  uintptr_t sum = 0;
  for (size_t i = 0; i < seq->nops; i++) {
    void **s = &slots[slot[i]];
    sum += obj_peek(*s);
    f(heap, *s);
    void *p = m(heap, size[i]);
    if (__builtin_expect(!p, 0)) oom(vt);
    obj_init(p, i);
    *s = p;
  }
  sink += sum;
}

void churn_drain(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq) {
  for (size_t i = 0; i < seq->nslots; i++) vt->free(heap, slots[i]);
}

static void finish(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq) {
  churn_drain(vt, heap, slots, seq);
  vt->teardown(heap);
  if (vt->quiesce) vt->quiesce();
  free(slots);
}

double churn_ns(const alloc_vt_t *vt, const seq_t *seq) {
  void **slots = xcalloc(seq->nslots, sizeof *slots);
  void *heap = vt->setup();
  churn_fill(vt, heap, slots, seq);
  uint64_t t0 = now_ns();
  churn_ops(vt, heap, slots, seq);
  uint64_t t = now_ns() - t0;
  finish(vt, heap, slots, seq);
  return (double)t / (double)seq->nops;
}

/* malloc, use, free at once, on top of the same live heap as churn (a
 * temporary made and dropped while the program's objects stay alive). */
double lifo_ns(const alloc_vt_t *vt, const seq_t *seq) {
  void **slots = xcalloc(seq->nslots, sizeof *slots);
  void *heap = vt->setup();
  churn_fill(vt, heap, slots, seq);
  void *(*const m)(void *, size_t) = vt->malloc;
  void (*const f)(void *, void *) = vt->free;
  const uint16_t *size = seq->size;
  uintptr_t sum = 0;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < seq->nops; i++) {
    void *p = m(heap, size[i]);
    if (__builtin_expect(!p, 0)) oom(vt);
    obj_init(p, i);
    sum += obj_peek(p);
    f(heap, p);
  }
  uint64_t t = now_ns() - t0;
  sink += sum;
  finish(vt, heap, slots, seq);
  return (double)t / (double)seq->nops;
}

static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

typedef struct {
  const alloc_vt_t *vt;
  const seq_t *seq;
} rss_arg_t;

static void rss_child(void *arg, void *out) {
  const rss_arg_t *a = arg;
  void **slots = xcalloc(a->seq->nslots, sizeof *slots);
  memset(slots, 0, a->seq->nslots * sizeof *slots); /* resident before the baseline */
  void *heap = a->vt->setup();
  long base = maxrss_kib();
  churn_fill(a->vt, heap, slots, a->seq);
  churn_ops(a->vt, heap, slots, a->seq);
  *(long *)out = maxrss_kib() - base;
}

/* The child's peak RSS during fill + churn, less its RSS once the heap is
 * set up.  Run this before the allocator is used in the parent: memory the
 * parent's allocator already holds would be reused by the child without
 * counting (its pages are inherited, and already counted in the baseline). */
double churn_rss_mib(const alloc_vt_t *vt, const seq_t *seq) {
  rss_arg_t arg = {vt, seq};
  long grown = -1;
  in_child(vt->name, rss_child, &arg, &grown, sizeof grown);
  return (double)grown / 1024.0;
}

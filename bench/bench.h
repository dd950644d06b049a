/* islet-bench's shared declarations: the allocator vtable, the pregenerated
 * operation sequence, the workloads and a few helpers.
 *
 * Why a vtable: every workload is written once and runs against every
 * allocator through the same indirect calls, so all of them pay the same
 * harness cost.  CPython reaches its own allocator the same way (a
 * PyMemAllocatorEx of {ctx, malloc, calloc, realloc, free}), so the indirect
 * call is part of the real cost, not an artefact.
 */
#ifndef ISLET_BENCH_H
#define ISLET_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One allocator.  A "heap" is whatever its setup returns: an islet
 * interpreter, a mimalloc heap, or NULL for a process-wide malloc. */
typedef struct {
  const char *name;
  void *(*setup)(void); /* called on the thread that will use the heap */
  void (*teardown)(void *heap);
  void *(*malloc)(void *heap, size_t size);
  void (*free)(void *heap, void *p);
  void (*collect)(void *heap); /* takes back blocks other threads freed; NULL: none */
  void (*quiesce)(void);       /* waits for background work a teardown started; NULL: none */
  bool thread_safe;            /* blocks may be freed from another thread */
  bool teardown_frees;         /* teardown releases blocks still live */
} alloc_vt_t;

extern const alloc_vt_t vt_islet, vt_glibc, vt_jemalloc, vt_mimalloc, vt_pymalloc;
extern const alloc_vt_t vt_islet_locked; /* one interpreter shared behind a mutex */
extern const alloc_vt_t vt_lists;        /* no allocator: the machine's ceiling in (3) */

void allocators_init(void);       /* the islet runtime; checks each anchor is what it says */
void allocators_after_fork(void); /* in a forked child: a runtime of its own */
void allocators_fini(void);

/* The operation sequence, drawn once so that every allocator sees exactly the
 * same requests: fill_size[i] for the initial fill of slot i, then op i frees
 * slot[i] and allocates size[i]. */
typedef struct {
  size_t nslots, nops;
  uint16_t *fill_size;
  uint16_t *size;
  uint32_t *slot;
} seq_t;

void seq_init(seq_t *seq, size_t nslots, size_t nops, uint64_t seed);
void seq_fini(seq_t *seq);
size_t mix_size(uint64_t *rng); /* one size of the CPython-like mix */
double mix_mean(void);
void mix_describe(char *buf, size_t len);
void shuffle(uint32_t *v, size_t n, uint64_t seed); /* v = a random permutation of 0..n-1 */

/* workloads.c: single-thread workloads, one run each. */
double churn_ns(const alloc_vt_t *vt, const seq_t *seq);      /* ns per op */
double lifo_ns(const alloc_vt_t *vt, const seq_t *seq);       /* ns per malloc+free pair */
double churn_rss_mib(const alloc_vt_t *vt, const seq_t *seq); /* peak RSS growth, forked */
/* The churn pieces, shared with the threaded workload. */
void churn_fill(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq);
void churn_ops(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq);
void churn_drain(const alloc_vt_t *vt, void *heap, void **slots, const seq_t *seq);

/* decay.c: (9) RSS after a peak, in a forked child: MiB above the child's
 * baseline with `bytes` of the mix live, once 99 % of the blocks are freed
 * in random order, and after idle_s of 1,000 malloc+free every 10 ms. */
typedef struct {
  size_t blocks;
  double peak_mib, freed_mib, idle_mib;
} decay_t;
decay_t decay_rss(const alloc_vt_t *vt, size_t bytes, double idle_s);

/* threads.c: aggregate Mops/s of churn on n threads, each with its own heap
 * or all sharing one (shared). */
double threads_mops(const alloc_vt_t *vt, unsigned n, bool shared, const seq_t *seq);

/* Cross-thread frees: ns per block of freeing locally on the allocating
 * thread, and of freeing on another thread plus the owner's collect. */
typedef struct {
  double local, remote, collect;
} cross_ns_t;
cross_ns_t cross_ns(const alloc_vt_t *vt, const seq_t *seq, size_t nblocks, size_t rounds);

/* teardown.c: one heap created, k blocks allocated, heap destroyed. */
typedef struct {
  double create_us, destroy_us;
} teardown_us_t;
teardown_us_t teardown_us(const alloc_vt_t *vt, const seq_t *seq, size_t k);

/* helpers (seq.c) */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* objects.c: (6) incref+decref pairs, (7) on two threads, (8) free list */
typedef struct {
  double mortal_ns, immortal_ns;             /* per pair, one thread */
  double own_mops, shared_mops, atomic_mops; /* pairs per second, two threads */
  double freelist_ns, malloc_ns;             /* per pop+push, per malloc+free */
} objects_t;
objects_t objects_bench(size_t n);

/* fn(arg, out) in a forked child with an islet runtime of its own; the len
 * bytes it leaves in out come back through a pipe. */
void in_child(const char *what, void (*fn)(void *arg, void *out), void *arg, void *out, size_t len);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
double median(double *v, size_t n); /* sorts v */

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif

/* The allocator CPython calls: islet behind PyMem_SetAllocator.
 *
 * Why: MEM and OBJ calls hold the interpreter's lock, so each can go to the
 * calling thread's interpreter's heap with islet's one-thread-at-a-time
 * fast path.  RAW calls come from any thread with no lock held; they stay
 * with CPython's allocator, and only their callocs and frees are watched
 * (interps.c).
 * Every block islet did not make goes back to the allocator it wraps: what
 * was allocated before the install, or while no thread state existed.
 */
#include "cpython.h"

static PyMemAllocatorEx prev_mem, prev_obj, prev_raw;
static int installed;

/* Whether the calling thread's cache holds its heap (islet_py_cache->heap):
 * not without a thread state, nor on a miss.  The hooks' fast paths are
 * leaves: a hit ends in a tail call into islet, anything else in one to a
 * *_routed function. */
static inline bool hit(PyThreadState *ts) {
  return ISLET_PY_LIKELY(ts && atomic_load_explicit(&islet_py_cache->py, memory_order_relaxed) ==
                                   ts->interp);
}

static inline bool cached(void) {
  PyThreadState *ts;
  return ISLET_PY_LIKELY(islet_py_tstate_read(&ts)) && hit(ts);
}

/* A miss asks CPython's getter, and checks the read in place against it. */
static islet_interp_t *heap(void) {
  if (cached()) return islet_py_cache->heap;
  PyThreadState *ts = islet_py_tstate();
  islet_py_tstate_check(ts);
  if (hit(ts)) return islet_py_cache->heap; /* no read in place: the getter's answer */
  return ts ? islet_py_heap_slow(ts->interp) : NULL;
}

islet_interp_t *islet_cpython_heap(void) {
  return heap();
}

static __attribute__((noinline)) void *malloc_routed(const PyMemAllocatorEx *prev, size_t n) {
  islet_interp_t *in = heap();
  return in ? islet_malloc(in, n) : prev->malloc(prev->ctx, n);
}

static void *h_malloc(void *ctx, size_t n) {
  return cached() ? islet_malloc(islet_py_cache->heap, n) : malloc_routed(ctx, n);
}

static __attribute__((noinline)) void *calloc_routed(const PyMemAllocatorEx *prev, size_t n,
                                                     size_t size) {
  islet_interp_t *in = heap();
  return in ? islet_calloc(in, n, size) : prev->calloc(prev->ctx, n, size);
}

static void *h_calloc(void *ctx, size_t n, size_t size) {
  return cached() ? islet_calloc(islet_py_cache->heap, n, size) : calloc_routed(ctx, n, size);
}

/* The wrapped allocator's free, for memory islet did not make. */
static void prev_free(void *ctx, void *p) {
  const PyMemAllocatorEx *prev = ctx;
  prev->free(prev->ctx, p);
}

static __attribute__((noinline)) void free_routed(void *ctx, void *p) {
  islet_free_or(heap(), p, prev_free, ctx);
}

static void h_free(void *ctx, void *p) {
  if (cached())
    islet_free_or(islet_py_cache->heap, p, prev_free, ctx);
  else
    free_routed(ctx, p);
}

/* The wrapped allocator's realloc, for memory islet did not make. */
static void *prev_realloc(void *ctx, void *p, size_t n) {
  const PyMemAllocatorEx *prev = ctx;
  return prev->realloc(prev->ctx, p, n);
}

/* A block moves heaps only by copy: islet's into the caller's heap (a cross
 * free of the old one), the wrapped allocator's stays there.  With a heap,
 * islet looks p up once. */
static void *h_realloc(void *ctx, void *p, size_t n) {
  const PyMemAllocatorEx *prev = ctx;
  islet_interp_t *in = heap();
  if (in) return islet_realloc_or(in, p, n, prev_realloc, ctx);
  if (!p || !islet_contains(p)) return prev->realloc(prev->ctx, p, n);
  size_t old = islet_usable_size(p); /* no thread state: out of islet */
  void *q = old ? prev->malloc(prev->ctx, n) : NULL;
  if (q) {
    memcpy(q, p, old < n ? old : n);
    islet_free_any(p);
  }
  return q;
}

static void raw_free(void *ctx, void *p) {
  islet_py_raw_freeing(p);
  prev_raw.free(ctx, p);
}

static void *raw_malloc(void *ctx, size_t n) {
  return prev_raw.malloc(ctx, n);
}
static void *raw_calloc(void *ctx, size_t n, size_t size) {
  void *p = prev_raw.calloc(ctx, n, size);
  islet_py_raw_calloced(p, n * size); /* no overflow: the block exists */
  return p;
}
static void *raw_realloc(void *ctx, void *p, size_t n) {
  return prev_raw.realloc(ctx, p, n);
}

/* Wraps what the domain has now, unless that is islet already. */
static void wrap(PyMemAllocatorDomain d, PyMemAllocatorEx *prev, PyMemAllocatorEx mine) {
  PyMemAllocatorEx now;
  PyMem_GetAllocator(d, &now);
  if (now.malloc == mine.malloc) return;
  *prev = now;
  if (d == PYMEM_DOMAIN_RAW) mine.ctx = now.ctx;
  PyMem_SetAllocator(d, &mine);
}

int islet_cpython_install(const islet_cpython_config_t *cfg) {
  if (!installed) {
    islet_config_t def = {.teardown = ISLET_TEARDOWN_QUARANTINE,
                          .quarantine_max = ISLET_CPYTHON_QUARANTINE_MAX};
    const islet_config_t *rc = cfg && cfg->runtime ? cfg->runtime : &def;
    islet_runtime_t *rt = islet_runtime_new(rc);
    if (!rt) return ISLET_ENOMEM;
    islet_py_start(rt, cfg ? cfg->limit : 0, rc->teardown);
    islet_py_tstate_probe();
    installed = 1;
  }
  wrap(PYMEM_DOMAIN_RAW, &prev_raw,
       (PyMemAllocatorEx){NULL, raw_malloc, raw_calloc, raw_realloc, raw_free});
  wrap(PYMEM_DOMAIN_MEM, &prev_mem,
       (PyMemAllocatorEx){&prev_mem, h_malloc, h_calloc, h_realloc, h_free});
  wrap(PYMEM_DOMAIN_OBJ, &prev_obj,
       (PyMemAllocatorEx){&prev_obj, h_malloc, h_calloc, h_realloc, h_free});
  return 0;
}

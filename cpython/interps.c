/* CPython interpreters and their islet heaps.
 *
 * Why: a heap is made the first time an interpreter allocates, and must be
 * retired exactly when that interpreter has ended, with no help from the
 * interpreter (Py_EndInterpreter cannot be interposed: Debian's python3 links
 * libpython statically and its libpython uses -fno-semantic-interposition).
 * Two signals are enough: a sub-interpreter's state is in the last block its
 * deletion frees, with PyMem_RawFree, which islet watches; the main
 * interpreter's is static, so Py_AtExit (called at the end of Py_FinalizeEx,
 * after every object is gone) ends it and whatever else is left.
 *
 * The state is not always at the start of its block: 3.14 aligns it inside
 * a larger PyMem_RawCalloc block and frees the block.  So the block is found
 * by containment, not assumed: each thread keeps the last large blocks
 * RawCalloc gave it, and an interpreter's first allocation, on the thread
 * that made it, looks up the one holding its state.  Without one (the
 * main interpreter's static state, or a first allocation on another
 * thread), the state's own address is watched, which is the block on 3.11
 * to 3.13.
 *
 * A slot maps a PyInterpreterState, and its block, to its heap.  Slots are
 * read without the lock (the RawFree watch runs on any thread); they change
 * under it.  A thread caches its last lookup, and the caches are listed, so
 * that a retire clears those that name the ended interpreter, whose address
 * a new one may get (cpython.h): the hooks compare one pointer.
 */
#include "cpython.h"
#include <pthread.h>
#include <stdlib.h>

#define SLOTS 4096     /* interpreters alive at once; beyond, the wrapped allocator */
#define RECENT 8       /* large RawCalloc blocks a thread remembers (a power of 2) */
#define STATE_MIN 4096 /* an interpreter's state is larger than this */

typedef struct {
  _Atomic(PyInterpreterState *) py;
  _Atomic(void *) block; /* the RawCalloc block holding py */
  islet_interp_t *heap;
  long long id;
} slot_t;

static slot_t slots[SLOTS];
static _Atomic size_t nslots; /* high-water mark of used slots */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static islet_runtime_t *rt;
static size_t limit;
static islet_teardown_t isolated_teardown; /* for interpreters that share nothing */
static unsigned round_ = 1;
static int atexit_armed;
static islet_cpython_record_t *ended;
static size_t nended, capended;

void (*islet_py_ended_all)(void);
/* The record of a thread that has none yet, and of one that ended: they
 * name no interpreter, and nothing writes them. */
static islet_py_cache_t unlisted, exited;
_Thread_local islet_py_cache_t *islet_py_cache ISLET_PY_TLS = &unlisted;
static islet_py_cache_t *caches; /* the listed records, under the lock */
static pthread_key_t cache_key;  /* its destructor unlists and frees a thread's record */
static bool have_key;

typedef struct {
  uintptr_t start, end;
} block_t;
static _Thread_local struct {
  block_t b[RECENT];
  unsigned next;
} recent ISLET_PY_TLS;

void islet_py_raw_calloced(void *p, size_t size) {
  if (p && size >= STATE_MIN)
    recent.b[recent.next++ % RECENT] = (block_t){(uintptr_t)p, (uintptr_t)p + size};
}

/* A block this thread frees can no longer hold a new interpreter's state. */
static void forget(void *p) {
  for (unsigned i = 0; i < RECENT; i++)
    if (recent.b[i].start == (uintptr_t)p) recent.b[i] = (block_t){0, 0};
}

/* The newest block this thread was given that holds py's state: an older
 * one holding the same address (freed by another thread) was freed before
 * it. */
static void *state_block(PyInterpreterState *py) {
  uintptr_t a = (uintptr_t)py;
  for (unsigned i = 1; i <= RECENT; i++) {
    const block_t *b = &recent.b[(recent.next - i) % RECENT];
    if (a >= b->start && a < b->end) return (void *)b->start;
  }
  return py;
}

/* A thread's record leaves the list (under the lock). */
static void unlist(islet_py_cache_t *c) {
  for (islet_py_cache_t **p = &caches; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      return;
    }
}

/* At the thread's end: a hook called later on it (another destructor's
 * free) looks the table up every time. */
static void cache_ends(void *c) {
  pthread_mutex_lock(&lock);
  unlist(c);
  islet_py_cache = &exited; /* before a fork can see the list again */
  pthread_mutex_unlock(&lock);
  free(c);
}

/* fork(): registered after islet's handlers (r exists), so this lock, held
 * while islet's are taken, is taken before them.  The child has one
 * thread: the others' records are left to leak, out of the list. */
static void lock_slots(void) {
  pthread_mutex_lock(&lock);
}
static void unlock_slots(void) {
  pthread_mutex_unlock(&lock);
}
static void child_slots(void) {
  islet_py_cache_t *c = islet_py_cache;
  caches = c != &unlisted && c != &exited ? c : NULL;
  if (caches) caches->next = NULL;
  pthread_mutex_unlock(&lock);
}
static void start_once(void) {
  pthread_atfork(lock_slots, unlock_slots, child_slots);
  have_key = pthread_key_create(&cache_key, cache_ends) == 0;
}

void islet_py_start(islet_runtime_t *r, size_t lim, islet_teardown_t teardown) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, start_once);
  rt = r;
  limit = lim;
  isolated_teardown = teardown;
}

static slot_t *find(const void *py) {
  size_t n = atomic_load_explicit(&nslots, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    if (atomic_load_explicit(&slots[i].py, memory_order_acquire) == py) return &slots[i];
  return NULL;
}

static slot_t *find_block(const void *block) {
  size_t n = atomic_load_explicit(&nslots, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    if (atomic_load_explicit(&slots[i].block, memory_order_acquire) == block) return &slots[i];
  return NULL;
}

static slot_t *add(PyInterpreterState *py) {
  slot_t *s = find(NULL);
  if (!s) {
    size_t n = atomic_load_explicit(&nslots, memory_order_relaxed);
    if (n == SLOTS) return NULL;
    s = &slots[n];
    atomic_store_explicit(&nslots, n + 1, memory_order_release);
  }
  s->heap = islet_interp_new(rt);
  if (!s->heap) return NULL;
  islet_interp_set_limit(s->heap, limit);
  /* a block of an interpreter that shares objects may outlive it: only
   * orphan keeps it valid (release would reuse it, quarantine fault on it) */
  islet_interp_set_teardown(s->heap,
                            islet_py_isolated(py) ? isolated_teardown : ISLET_TEARDOWN_ORPHAN);
  s->id = (long long)PyInterpreterState_GetID(py);
  atomic_store_explicit(&s->block, state_block(py), memory_order_release);
  atomic_store_explicit(&s->py, py, memory_order_release);
  if (!atexit_armed) /* Py_FinalizeEx runs and forgets its exit functions */
    atexit_armed = Py_AtExit(islet_py_end_all) == 0;
  return s;
}

/* Under the lock: the calling thread's record names py's heap, made and
 * listed first (a thread that cannot be told when it ends, or get memory,
 * caches nothing). */
static void cache(PyInterpreterState *py, islet_interp_t *heap) {
  islet_py_cache_t *c = islet_py_cache;
  if (c == &exited) return;
  if (c == &unlisted) {
    if (!have_key || !(c = calloc(1, sizeof *c))) return;
    if (pthread_setspecific(cache_key, c)) {
      free(c);
      return;
    }
    c->next = caches;
    caches = c;
    islet_py_cache = c;
  }
  c->heap = heap;
  atomic_store_explicit(&c->py, py, memory_order_relaxed);
}

islet_interp_t *islet_py_heap_slow(PyInterpreterState *py) {
  pthread_mutex_lock(&lock);
  slot_t *s = find(py);
  if (!s) s = add(py);
  islet_interp_t *heap = s ? s->heap : NULL;
  if (heap) cache(py, heap);
  pthread_mutex_unlock(&lock);
  return heap;
}

static void record(const slot_t *s, const islet_stats_t *st, const islet_leak_report_t *r) {
  if (nended == capended) {
    size_t cap = capended ? 2 * capended : 64;
    islet_cpython_record_t *grown = realloc(ended, cap * sizeof *grown);
    if (!grown) return; /* the table loses a row, nothing else */
    ended = grown;
    capended = cap;
  }
  ended[nended++] =
      (islet_cpython_record_t){s->id, round_, 1, *st, r ? r->blocks : 0, r ? r->bytes : 0};
}

/* Under the lock.  The slot empties before the heap goes, and so does
 * every cache that names it, so nothing reaches the retired heap through
 * the table again. */
static void retire(slot_t *s) {
  islet_stats_t st;
  islet_leak_report_t r;
  islet_interp_t *heap = s->heap;
  PyInterpreterState *py = atomic_load_explicit(&s->py, memory_order_relaxed);
  for (islet_py_cache_t *c = caches; c; c = c->next)
    if (atomic_load_explicit(&c->py, memory_order_relaxed) == py)
      atomic_store_explicit(&c->py, NULL, memory_order_relaxed);
  atomic_store_explicit(&s->py, NULL, memory_order_release);
  atomic_store_explicit(&s->block, NULL, memory_order_release);
  islet_interp_collect(heap);
  islet_interp_stats(heap, &st);
  islet_interp_destroy(heap, &r);
  record(s, &st, &r);
}

void islet_py_raw_freeing(void *p) {
  if (!p) return;
  forget(p);
  if (!find_block(p)) return;
  pthread_mutex_lock(&lock);
  slot_t *s = find_block(p);
  if (s) retire(s);
  pthread_mutex_unlock(&lock);
}

void islet_py_end_all(void) {
  pthread_mutex_lock(&lock);
  size_t n = atomic_load_explicit(&nslots, memory_order_relaxed);
  for (size_t i = 0; i < n; i++)
    if (atomic_load_explicit(&slots[i].py, memory_order_relaxed)) retire(&slots[i]);
  round_++;
  atexit_armed = 0;
  pthread_mutex_unlock(&lock);
  if (islet_py_ended_all) islet_py_ended_all();
}

size_t islet_cpython_records(islet_cpython_record_t *out, size_t max) {
  pthread_mutex_lock(&lock);
  size_t k = 0;
  for (; k < nended; k++)
    if (k < max) out[k] = ended[k];
  size_t n = atomic_load_explicit(&nslots, memory_order_relaxed);
  for (size_t i = 0; i < n; i++) {
    if (!atomic_load_explicit(&slots[i].py, memory_order_relaxed)) continue;
    if (k < max) {
      out[k] = (islet_cpython_record_t){.id = slots[i].id, .round = round_};
      islet_interp_stats(slots[i].heap, &out[k].stats);
    }
    k++;
  }
  pthread_mutex_unlock(&lock);
  return k;
}

islet_runtime_t *islet_cpython_runtime(void) {
  return rt;
}

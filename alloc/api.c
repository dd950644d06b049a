/* The allocation API: malloc/calloc/realloc/aligned_alloc/free and the
 * interpreter-free queries.
 *
 * Why here: these are the fast paths, and they should read top to bottom.
 * Own-interpreter malloc is: limit check, pop the head of the class's
 * current page's free list and set its live bit.  Own-interpreter free is:
 * owner map, page, block index by multiplication, clear the live bit, push
 * the block.  Neither takes a lock or does an atomic read-modify-write;
 * everything unusual drops to a NOINLINE function.
 */
#include "internal.h"
#include <string.h>

static NOINLINE bool over_limit(islet_interp_t *in, size_t bs) {
  islet_collect(in); /* blocks freed by others may bring us under */
  if (in->bytes + bs <= in->limit) return false;
  in->limit_hits++;
  islet_set_error(ISLET_ELIMIT);
  return true;
}

/* A new peak, or a tick (purge.c); p is the block just allocated, for the
 * tail call. */
static NOINLINE void *account_slow(islet_interp_t *in, void *p) {
  if (in->bytes > in->bytes_peak) in->bytes_peak = in->bytes;
  if (in->blocks > in->blocks_peak) in->blocks_peak = in->blocks;
  if (!in->tick_left) islet_purge_tick(in);
  return p;
}

/* A new peak is rare once a heap has grown: a running maximum of a random
 * walk moves about sqrt(n) times in n steps.  The allocation count counts
 * down to the next tick: its decrement is the count's own increment, one
 * more test joins the peak's, and a heap that churns from its free lists
 * (which takes no other slow path) still ticks. */
static inline void *account_alloc(islet_interp_t *in, size_t bs, void *p) {
  size_t bytes = in->bytes += bs, blocks = ++in->blocks;
  if (UNLIKELY(--in->tick_left == 0) ||
      UNLIKELY((bytes > in->bytes_peak) | (blocks > in->blocks_peak)))
    return account_slow(in, p);
  return p;
}

/* Of a block's room, only the size bytes asked for are the caller's: ASan
 * and Valgrind see the rest as inaccessible, and catch an overflow into it
 * (the backend's memory is all accessible to Valgrind). */
static void guard_room(char *p, size_t size, size_t room) {
  san_poison(p + size, room - size);
  vg_noaccess(p + size, room - size);
}

static void *large_alloc(islet_interp_t *in, size_t size, size_t align) {
  size_t usable = islet_large_usable(size, align);
  if (!usable) {
    islet_set_error(ISLET_EOVERFLOW);
    return NULL;
  }
  /* large blocks freed by others come back here, or nothing would ever
   * bring them back to an interpreter that only allocates large blocks */
  if (atomic_load_explicit(&in->any_pending, memory_order_relaxed)) islet_collect(in);
  if (UNLIKELY(usable > in->limit || in->bytes + usable > in->limit) && over_limit(in, usable))
    return NULL;
  large_t *lg = islet_large_alloc(in, size, align);
  if (!lg) return NULL;
  char *p = large_block(lg);
  vg_alloc(p, size, 0);
  guard_room(p, size, lg->size);
  return account_alloc(in, lg->size, p);
}

/* The redzone on the fast path, which Valgrind never takes (in->redzone is
 * the same under ASan, 0 otherwise). */
#define FAST_REDZONE (ISLET_ASAN ? ISLET_SAN_REDZONE : 0)

/* A block of class cls from the current page's free list, under the limit;
 * NULL when the list is empty or the limit is in the way. */
static inline void *small_take(islet_interp_t *in, unsigned cls, size_t bs, bool vg) {
  if (UNLIKELY(in->bytes + bs > in->limit)) return NULL;
  return page_pop(in->cur[cls], vg);
}

static inline void *small_done(islet_interp_t *in, void *p, size_t bs, size_t size) {
  san_unpoison(p, size);
  return account_alloc(in, bs, p);
}

/* The class's current page had no block for us, or the limit is in the
 * way: the fast path comes here with the class it found. */
static NOINLINE void *small_alloc_slow(islet_interp_t *in, unsigned cls, size_t size) {
  size_t bs = islet_class_sizes[cls];
  if (in->bytes + bs > in->limit && over_limit(in, bs)) return NULL;
  void *p = islet_small_alloc_slow(in, cls);
  if (!p) {
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
  return small_done(in, p, bs, size);
}

/* Every small allocation but the fast path's, which Valgrind never takes.
 * Valgrind is told of the size asked for; the rest of the block stays
 * inaccessible to it.  (Here, not in small_alloc_slow: the fast path would
 * have to keep size for it.) */
static inline void *small_alloc(islet_interp_t *in, unsigned cls, size_t size) {
  size_t bs = islet_class_sizes[cls];
  void *p = small_take(in, cls, bs, true);
  p = p ? small_done(in, p, bs, size) : small_alloc_slow(in, cls, size);
  if (p) vg_alloc(p, size, 0);
  return p;
}

static NOINLINE void *malloc_slow(islet_interp_t *in, size_t size) {
  size += size == 0; /* a unique block with one usable byte */
  size_t n = size + in->redzone;
  if (LIKELY(n <= ISLET_SMALL_MAX && n >= size))
    return small_alloc(in, islet_size_to_class(n), size);
  return large_alloc(in, size, 0);
}

/* The fast path, a leaf: 1 to 1,024 bytes from the current page's free
 * list.  Anything else (zero, larger sizes, an empty list, the limit, any
 * size under Valgrind, see fast_max) is one tail call away.  The class's
 * empty page has bsize 0 and no blocks: its pop fails. */
void *islet_malloc(islet_interp_t *in, size_t size) {
  if (LIKELY(size - 1 < in->fast_max)) {
    unsigned cls = islet_small_classes[(size + FAST_REDZONE + 15) >> 4];
    page_t *pg = in->cur[cls];
    size_t bs = pg->bsize;
    void *p;
    if (LIKELY(in->bytes + bs <= in->limit) && LIKELY(p = page_pop(pg, false)))
      return small_done(in, p, bs, size);
    return small_alloc_slow(in, cls, size);
  }
  return malloc_slow(in, size);
}

void *islet_calloc(islet_interp_t *in, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    islet_set_error(ISLET_EOVERFLOW);
    return NULL;
  }
  void *p = islet_malloc(in, total);
  if (p) memset(p, 0, total);
  return p;
}

void *islet_aligned_alloc(islet_interp_t *in, size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) || align > ISLET_MAX_ALIGN) {
    islet_set_error(ISLET_EINVAL);
    return NULL;
  }
  if (align <= MIN_BLOCK) return islet_malloc(in, size);
  /* Power-of-two classes are naturally aligned in 64 KiB-aligned pages. */
  size += size == 0;
  size_t n = size + in->redzone;
  if (n >= size && n <= ISLET_SMALL_MAX && align <= ISLET_SMALL_MAX) {
    if (n < align) n = align;
    n = (size_t)1 << (64 - __builtin_clzll(n - 1));
    return small_alloc(in, islet_size_to_class(n), size);
  }
  return large_alloc(in, size, align);
}

/* --- free ------------------------------------------------------------- */

static void cross_free(islet_interp_t *caller, void *p, seghdr_t *h) {
  if (caller) {
    caller->remote_sent++;
    if (islet_cross_policy(caller->rt) != ISLET_CROSS_DEFER)
      islet_report(caller->rt, caller, ISLET_ECROSS, p, h->owner_id);
  }
}

/* A block with a remote free pending is still live in its page, so a local
 * free of it must look at the remote bitmap: only when the segment flags the
 * page, which keeps that cache line out of the common case. */
static inline bool remote_pending(segment_t *seg, page_t *pg, unsigned w, uint64_t m) {
  return (atomic_load_explicit(&seg->pending, memory_order_relaxed) &
          ((uint64_t)1 << seg_page_index(seg, pg))) &&
         (atomic_load_explicit(&page_remote(pg)[w], memory_order_relaxed) & m);
}

/* Clears p's live bit (bits: the word's value), pushes it on its page's free
 * list, takes it off the books and makes its page the class's current one.
 * A page that was full goes back to its class's list, and one that empties
 * may go back to its segment: out of line, so a free into a full page (one
 * in 13 under churn) costs a call, not a second lookup in free_slow. */
static inline __attribute__((always_inline)) void block_freed(islet_interp_t *in, page_t *pg,
                                                              long idx, _Atomic uint64_t *lw,
                                                              uint64_t bits, uint64_t m, void *p,
                                                              bool vg) {
  san_poison(p, pg->bsize);
  atomic_store_explicit(lw, bits & ~m, memory_order_relaxed);
  page_push(pg, (unsigned)idx, p, vg);
  in->bytes -= pg->bsize;
  in->blocks--;
  bool was_full = pg->state == PG_FULL;
  if (UNLIKELY(was_full | (--pg->used == 0)))
    islet_page_after_free(in, pg, was_full);
  else
    in->cur[pg->cls] = pg; /* reuse what was just freed: it is in cache */
}

static inline __attribute__((always_inline)) void free_small_local(islet_interp_t *in,
                                                                   segment_t *seg, page_t *pg,
                                                                   long idx, void *p,
                                                                   islet_interp_t *caller) {
  unsigned w = (unsigned)idx >> 6;
  uint64_t m = (uint64_t)1 << (idx & 63);
  _Atomic uint64_t *lw = &page_live(pg)[w];
  uint64_t bits = atomic_load_explicit(lw, memory_order_relaxed);
  if (UNLIKELY(!(bits & m) || remote_pending(seg, pg, w, m))) {
    islet_report(in->rt, caller, ISLET_EDOUBLE_FREE, p, in->id);
    return;
  }
  vg_free(p);
  block_freed(in, pg, idx, lw, bits, m, p, vg_on());
}

static void free_slow(islet_interp_t *caller, void *p);

/* A block of an ended interpreter (orphan.c): freed as its owner would,
 * under the lock its tidying takes, unless a live heap inherited its
 * segment meanwhile. */
static void orphan_free(islet_interp_t *caller, void *p, seghdr_t *h, long idx) {
  islet_interp_t *o = h->owner;
  islet_runtime_t *rt = o->rt; /* tidying may end o */
  pthread_mutex_lock(&rt->orphan_lock);
  if (h->owner != o) {
    pthread_mutex_unlock(&rt->orphan_lock);
    free_slow(caller, p);
    return;
  }
  cross_free(caller, p, h);
  page_t *pg = NULL;
  if (h->kind == KIND_LARGE) {
    islet_large_free(o, (large_t *)h);
  } else {
    segment_t *seg = (segment_t *)h;
    pg = &seg->pages[page_index(p)];
    free_small_local(o, seg, pg, idx, p, caller);
  }
  islet_orphan_freed(o, pg);
  pthread_mutex_unlock(&rt->orphan_lock);
}

static bool is_orphan(islet_interp_t *caller, seghdr_t *h) {
  return h->owner != caller && atomic_load_explicit(&h->owner->orphaned, memory_order_acquire);
}

/* A free of p where the owner map has no header: in the region of a freed
 * large block, of a destroyed interpreter, or foreign. */
static void free_unmapped(islet_interp_t *caller, void *p, uintptr_t word) {
  if (!tomb_holds(word, p))
    islet_report(NULL, caller, ISLET_EFOREIGN, p, 0);
  else
    islet_report(NULL, caller, (word & 3) == TOMB_FREED ? ISLET_EDOUBLE_FREE : ISLET_EDESTROYED, p,
                 tomb_id(word));
}

/* Everything but an own-interpreter small free: cross-interpreter and large
 * frees, and bad pointers, which change nothing. */
static NOINLINE void free_slow(islet_interp_t *caller, void *p) {
  if (!p) return;
  uintptr_t word = islet_map_get(p);
  if (!map_is_hdr(word)) {
    free_unmapped(caller, p, word);
    return;
  }
  seghdr_t *h = (seghdr_t *)word;
  if (h->kind == KIND_LARGE) {
    large_t *lg = (large_t *)h;
    if (p != large_block(lg)) { /* the region's last granule may hold foreign memory */
      bool inside = large_holds(lg, p);
      islet_report(h->owner->rt, caller, inside ? ISLET_EINTERIOR : ISLET_EFOREIGN, p,
                   inside ? h->owner_id : 0);
      return;
    }
    if (is_orphan(caller, h)) {
      orphan_free(caller, p, h, 0);
      return;
    }
    if (h->owner != caller) cross_free(caller, p, h);
    islet_large_free(caller, lg);
    return;
  }
  segment_t *seg = (segment_t *)h;
  page_t *pg = &seg->pages[page_index(p)];
  long idx = page_block_index(pg, p);
  if (idx < 0) {
    islet_report(h->owner->rt, caller, ISLET_EINTERIOR, p, h->owner_id);
  } else if (h->owner == caller) {
    free_small_local(caller, seg, pg, idx, p, caller);
  } else if (is_orphan(caller, h)) {
    orphan_free(caller, p, h, idx);
  } else {
    cross_free(caller, p, h);
    islet_remote_free_small(caller, seg, pg, idx);
  }
}

/* The fast path: a live block of in's own small pages with no remote free
 * pending on it (its page's list changes out of line when the page was full
 * or empties).  False for everything else (and for every free under
 * Valgrind, see fast_owner), which changes nothing. */
static inline __attribute__((always_inline)) bool free_fast(islet_interp_t *in, void *p) {
  /* seg comes from p, not from the map: the loads below need not wait for
   * the map's, only the branch on it (a large block's header is its
   * granule's base too, with no fast owner; no segment starts at 0) */
  segment_t *seg = seg_of(p);
  if (LIKELY(map_word((uintptr_t)p) == (uintptr_t)seg && seg &&
             atomic_load_explicit(&seg->h.fast_owner, memory_order_relaxed) == in)) {
    page_t *pg = page_of(p);
    long idx = page_slot(pg, p);
    if (LIKELY(idx >= 0)) {
      _Atomic uint64_t *lw = block_live_word(p, idx);
      uint64_t m = (uint64_t)1 << (idx & 63);
      uint64_t bits = atomic_load_explicit(lw, memory_order_relaxed);
      uint64_t pending = atomic_load_explicit(&seg->pending, memory_order_relaxed);
      if (LIKELY((bits & m) && !(pending & (uint64_t)1 << page_index(p)))) {
        block_freed(in, pg, idx, lw, bits, m, p, false);
        return true;
      }
    }
  }
  return false;
}

/* A leaf: everything but the fast path is one tail call away. */
void islet_free(islet_interp_t *in, void *p) {
  if (!free_fast(in, p)) free_slow(in, p);
}

static NOINLINE int try_free_slow(islet_interp_t *in, void *p) {
  if (!islet_contains(p)) return 0;
  free_slow(in, p);
  return 1;
}

int islet_try_free(islet_interp_t *in, void *p) {
  return free_fast(in, p) ? 1 : try_free_slow(in, p);
}

void islet_free_any(void *p) {
  free_slow(NULL, p);
}

/* --- queries ------------------------------------------------------------ */

islet_interp_t *islet_owner(const void *p) {
  page_t *pg;
  long idx;
  seghdr_t *h = islet_block_of(p, &pg, &idx);
  return h ? h->owner : NULL;
}

int islet_contains(const void *p) {
  uintptr_t word = islet_map_get(p);
  if (!map_is_hdr(word)) return tomb_holds(word, p);
  const large_t *lg = (const large_t *)word;
  return lg->h.kind != KIND_LARGE || large_holds(lg, p);
}

/* Whether block idx of pg is allocated: freed neither by its owner nor by
 * another interpreter whose hand-off is still pending. */
static bool small_live(page_t *pg, long idx) {
  uint64_t m = (uint64_t)1 << (idx & 63);
  return (atomic_load_explicit(&page_live(pg)[idx >> 6], memory_order_relaxed) & m) &&
         !(atomic_load_explicit(&page_remote(pg)[idx >> 6], memory_order_relaxed) & m);
}

size_t islet_usable_size(const void *p) {
  page_t *pg;
  long idx;
  seghdr_t *h = islet_block_of(p, &pg, &idx);
  if (!h) return 0;
  if (h->kind == KIND_LARGE) {
    large_t *lg = (large_t *)h;
    bool live = atomic_load_explicit(&lg->state, memory_order_relaxed) == LARGE_LIVE;
    return live ? san_usable(p, lg->size) : 0; /* not LARGE_REMOTE either */
  }
  return small_live(pg, idx) ? san_usable(p, pg->bsize - h->owner->redzone) : 0;
}

/* p, when a live block of in's large blocks (old bytes asked for), resized
 * for size bytes (a large size): shrunk in place below half, grown in place,
 * or moved without a copy; NULL: it was not, or could not grow. */
static void *resize_large(islet_interp_t *in, void *p, size_t old, size_t size) {
  large_t *lg = (large_t *)islet_map_get(p);
  if (!map_is_hdr((uintptr_t)lg) || lg->h.kind != KIND_LARGE || lg->h.owner != in ||
      atomic_load_explicit(&lg->state, memory_order_relaxed) != LARGE_LIVE)
    return NULL;
  size_t was = lg->size;
  if (size <= was || islet_large_grow(in, lg, size)) {
    if (size < was / 2) islet_large_shrink(in, lg, size);
    san_unpoison(p, size); /* a shrink, a growth, or (ASan) growth into the block's room */
    vg_resize(p, old, size);
  } else if (vg_on() || !(lg = islet_large_move(in, lg, size))) { /* Valgrind: a copy it sees */
    return NULL;
  }
  p = large_block(lg);
  guard_room(p, size, lg->size);
  return p;
}

void *islet_realloc(islet_interp_t *in, void *p, size_t size) {
  if (!p) return islet_malloc(in, size);
  size += size == 0; /* as malloc: a live block always has a usable byte */
  size_t old = islet_usable_size(p);
  if (!old) { /* not a live islet block: report it, keep it */
    islet_free(in, p);
    return NULL;
  }
  if (size <= old && size >= old / 2 && islet_owner(p) == in) {
    san_unpoison(p, size);
    san_poison((char *)p + size, old - size);
    vg_resize(p, old, size);
    return p;
  }
  void *q = size > ISLET_SMALL_MAX ? resize_large(in, p, old, size) : NULL;
  if (q) return q;
  q = islet_malloc(in, size);
  if (!q) return NULL;
  memcpy(q, p, size < old ? size : old);
  islet_free(in, p);
  return q;
}

/* The allocation API: malloc/calloc/realloc/aligned_alloc and the
 * queries that need no interpreter (free is free.c).
 *
 * Why here: malloc's fast path should read top to bottom: limit check, pop
 * the head of the class's current page's free list and set its live bit,
 * with no lock and no atomic read-modify-write; everything unusual drops to
 * a NOINLINE function.  The queries and realloc classify a pointer once
 * (classify.h), as every free but the fast path does.
 */
#include "classify.h"
#include <string.h>

static NOINLINE bool over_limit(islet_interp_t *in, size_t bs) {
  islet_collect(in); /* blocks freed by others may bring us under */
  if (heap_bytes(in) + bs <= in->limit) return false;
  in->limit_hits++;
  islet_set_error(ISLET_ELIMIT);
  return true;
}

void islet_books_settle(islet_interp_t *in) {
  size_t bytes = heap_bytes(in), blocks = heap_blocks(in);
  if (bytes > in->bytes_peak) in->bytes_peak = bytes;
  if (blocks > in->blocks_peak) in->blocks_peak = blocks;
  in->bytes_mark = in->limit < in->bytes_peak ? in->limit : in->bytes_peak;
  in->room = (ptrdiff_t)(in->bytes_mark - bytes); /* negative above the limit */
  in->blocks_room = (ptrdiff_t)(in->blocks_peak - blocks);
}

/* A new peak, or a tick (purge.c); p is the block just allocated, for the
 * tail call; uncounted: 1 when the allocation count has yet to count it.
 * One block past the blocks' peak, with the bytes within their mark (the
 * common case while a heap grows: past_mark moved the bytes' peak), moves
 * that peak by one. */
static NOINLINE void *account_slow(islet_interp_t *in, uint32_t uncounted, void *p) {
  if (in->blocks_room == -1 && in->room >= 0) {
    in->blocks_peak++;
    in->blocks_room = 0;
  } else {
    islet_books_settle(in);
  }
  if (!(in->tick_left -= uncounted)) islet_purge_tick(in);
  return p;
}

/* A block joined the books, its bytes already taken off room and room
 * found not below 0 (where the fast path took them).  A new peak is rare
 * once a heap has grown: a running maximum of a random walk moves about
 * sqrt(n) times in n steps.  The allocation count counts down to the next
 * tick: its decrement is the count's own increment, and a heap that churns
 * from its free lists (which takes no other slow path) still ticks.  Each
 * test is on its own decrement's flags. */
static inline void *account_alloc(islet_interp_t *in, void *p) {
  if (UNLIKELY(--in->blocks_room < 0)) return account_slow(in, 1, p);
  if (UNLIKELY(--in->tick_left == 0)) return account_slow(in, 0, p);
  return p;
}

/* account_alloc for a block of bytes not yet taken off room. */
static inline void *account_took(islet_interp_t *in, void *p, size_t bytes) {
  if (UNLIKELY((in->room -= (ptrdiff_t)bytes) < 0)) {
    in->blocks_room--;
    return account_slow(in, 1, p);
  }
  return account_alloc(in, p);
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
  if (UNLIKELY(usable > in->limit || heap_bytes(in) + usable > in->limit) && over_limit(in, usable))
    return NULL;
  large_t *lg = islet_large_alloc(in, size, align);
  if (!lg) return NULL;
  char *p = large_block(lg);
  vg_alloc(p, size, 0);
  guard_room(p, size, lg->size);
  return account_took(in, p, lg->size);
}

/* The redzone on the fast path, which Valgrind never takes (in->redzone is
 * the same under ASan, 0 otherwise). */
#define FAST_REDZONE (ISLET_ASAN ? ISLET_SAN_REDZONE : 0)

static inline void *small_done(islet_interp_t *in, void *p, size_t size) {
  san_unpoison(p, size);
  return account_alloc(in, p);
}

/* small_done for the paths that did not take the block's bytes off room
 * (the fast path did, to test it). */
static inline void *small_took(islet_interp_t *in, void *p, size_t bs, size_t size) {
  san_unpoison(p, size);
  return account_took(in, p, bs);
}

/* The class's current page had no block for us, or the limit is in the
 * way: the fast path comes here with the class it found. */
static NOINLINE void *small_alloc_slow(islet_interp_t *in, unsigned cls, size_t size) {
  size_t bs = islet_class_sizes[cls];
  if (heap_bytes(in) + bs > in->limit && over_limit(in, bs)) return NULL;
  void *p = islet_class_refill(in, cls);
  if (!p) {
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
  return small_took(in, p, bs, size);
}

/* The fast path took the block's bytes off room, and found no block in
 * pg (its class's current page) or the limit in the way: they go back on,
 * and the slow path takes it from there (with pg's class, not the fast
 * path's: one register less). */
static NOINLINE NOIPA void *small_alloc_undo(islet_interp_t *in, size_t size, page_t *pg) {
  in->room += (ptrdiff_t)pg->bsize;
  return small_alloc_slow(in, pg->cls, size);
}

/* The fast path's room ran out: a new peak (the common case while a heap
 * grows, each allocation then moving it) or the limit.  Within the limit
 * the mark was the peak (room is measured from the lower of the two), so
 * the block makes a new peak, and the mark moves with it: the pop it would
 * have had and three stores.  A heap that grows mostly grows in blocks
 * too, so the blocks' peak moves here as well, with no second slow call
 * (account_slow's cheap case).  Anything else is small_alloc_slow's. */
static NOINLINE NOIPA void *past_mark(islet_interp_t *in, size_t size, page_t *pg) {
  size_t bytes = heap_bytes(in); /* the block's taken off room already */
  void *p;
  if (bytes > in->limit || !(p = page_pop(pg, false))) return small_alloc_undo(in, size, pg);
  in->bytes_peak = in->bytes_mark = bytes;
  in->room = 0;
  san_unpoison(p, size);
  if (in->blocks_room)
    in->blocks_room--;
  else
    in->blocks_peak++;
  if (UNLIKELY(--in->tick_left == 0)) return account_slow(in, 0, p);
  return p;
}

/* Every small allocation but the fast path's, which Valgrind never takes.
 * Valgrind is told of the size asked for; the rest of the block stays
 * inaccessible to it.  (Here, not in small_alloc_slow: the fast path would
 * have to keep size for it.) */
static inline void *small_alloc(islet_interp_t *in, unsigned cls, size_t size) {
  size_t bs = islet_class_sizes[cls];
  void *p = in->room >= (ptrdiff_t)bs ? page_pop(in->cur[cls], true) : NULL;
  p = p ? small_took(in, p, bs, size) : small_alloc_slow(in, cls, size);
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
 * list.  Anything else (zero, larger sizes, an empty list, the limit or a
 * new peak of bytes, any size under Valgrind, see fast_max) is one tail
 * call away.  The class's empty page has bsize 0 and no blocks: its pop
 * fails. */
void *islet_malloc(islet_interp_t *in, size_t size) {
  if (LIKELY(size - 1 < in->fast_max)) {
    unsigned cls = in->fast_class[(size - 1 + FAST_REDZONE) >> 4]; /* the test's size - 1 */
    page_t *pg = in->cur[cls];
    void *p;
    if (UNLIKELY((in->room -= (ptrdiff_t)pg->bsize) < 0)) return past_mark(in, size, pg);
    if (LIKELY(p = page_pop(pg, false))) return small_done(in, p, size);
    return small_alloc_undo(in, size, pg);
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
  return p ? memset(p, 0, total) : NULL; /* a tail call: no frame to keep p in */
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

/* --- queries and realloc: one classification (classify.h) -------------- */

islet_interp_t *islet_owner(const void *p) {
  ptr_class_t c = classify(p);
  return c.state >= P_FREE ? c.h->owner : NULL;
}

int islet_contains(const void *p) {
  return classify(p).state != P_FOREIGN;
}

/* What the caller asked for of the live block p (class c), as ASan and
 * Valgrind know it, or its room. */
static size_t usable(const void *p, const ptr_class_t *c) {
  if (c->state != P_LIVE) return 0;
  if (c->h->kind == KIND_LARGE) return san_usable(p, ((large_t *)c->h)->size);
  return san_usable(p, c->pg->bsize - (ISLET_ASAN || vg_on() ? ISLET_SAN_REDZONE : 0));
}

size_t islet_usable_size(const void *p) {
  ptr_class_t c = classify(p);
  return usable(p, &c);
}

/* p, a live block of in's large blocks (old bytes asked for), resized for
 * size bytes (a large size): shrunk in place below half, grown in place, or
 * moved without a copy; NULL: it could not grow. */
static void *resize_large(islet_interp_t *in, large_t *lg, void *p, size_t old, size_t size) {
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

/* Whether a live block of old usable bytes serves size bytes where it is:
 * a shrink below half moves, so that a block does not hold twice its size. */
static inline bool fits_in_place(size_t size, size_t old) {
  return size <= old && size >= old / 2;
}

/* p's block (class c, not foreign) resized for size bytes. */
static void *realloc_classified(islet_interp_t *in, void *p, size_t size, const ptr_class_t *c) {
  size += size == 0; /* as malloc: a live block always has a usable byte */
  size_t old = usable(p, c);
  if (!old) { /* not a live islet block: reported as its free would be, and kept */
    islet_free_classified(in, p, c);
    return NULL;
  }
  bool mine = c->h->owner == in;
  if (mine && fits_in_place(size, old)) {
    san_unpoison(p, size);
    san_poison((char *)p + size, old - size);
    vg_resize(p, old, size);
    return p;
  }
  void *q = NULL;
  if (mine && size > ISLET_SMALL_MAX && c->h->kind == KIND_LARGE)
    q = resize_large(in, (large_t *)c->h, p, old, size);
  if (q) return q;
  q = islet_malloc(in, size);
  if (!q) return NULL;
  memcpy(q, p, size < old ? size : old);
  islet_free_classified(in, p, c);
  return q;
}

/* The common realloc, a live block of in's own small pages (own_live_small
 * found it as b: no owner-map lookup), kept when size still fits its class
 * by at least half, else moved and freed with what b knows.  Not under
 * ASan, whose redzones and poisoning realloc_classified keeps. */
static void *realloc_own_small(islet_interp_t *in, void *p, size_t size, const own_block_t *b) {
  size_t old = b->pg->bsize;
  size += size == 0;
  if (fits_in_place(size, old)) return p;
  void *q = islet_malloc(in, size);
  if (!q) return NULL;
  memcpy(q, p, size < old ? size : old);
  islet_free_moved(in, p, b);
  return q;
}

static NOINLINE void *realloc_block(islet_interp_t *in, void *p, size_t size,
                                    void *(*other)(void *ctx, void *p, size_t size), void *ctx) {
  own_block_t b;
  if (!ISLET_ASAN && own_live_small(in, p, &b)) return realloc_own_small(in, p, size, &b);
  ptr_class_t c = classify(p);
  if (c.state == P_FOREIGN && other) return other(ctx, p, size);
  return realloc_classified(in, p, size, &c);
}

/* other: NULL for islet_realloc, which reports a foreign p as its free
 * would.  A leaf: realloc(NULL), CPython's first allocation of a list's
 * items, is one jump to malloc, with no frame for the rest. */
void *islet_realloc_or(islet_interp_t *in, void *p, size_t size,
                       void *(*other)(void *ctx, void *p, size_t size), void *ctx) {
  return p ? realloc_block(in, p, size, other, ctx) : islet_malloc(in, size);
}

void *islet_realloc(islet_interp_t *in, void *p, size_t size) {
  return islet_realloc_or(in, p, size, NULL, NULL);
}

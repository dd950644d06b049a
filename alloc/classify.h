/* What a pointer is to islet: the one decision every entry point starts
 * from, but for the free fast path, which only asks whether the pointer is
 * a live block of the caller's own small pages.
 *
 * Why one place: free, try_free, realloc, usable_size, owner and contains
 * each answer for every pointer, bad ones included, and README's bad-input
 * table must follow from one classification, not from six that drift
 * apart.  One owner-map lookup gives it, and each entry point acts on it:
 *
 *   class        free reports         usable  owner   contains
 *   P_FOREIGN    ISLET_EFOREIGN, 0    0       NULL    no
 *   P_DESTROYED  ISLET_EDESTROYED     0       NULL    yes (its tombstone stands)
 *   P_FREED      ISLET_EDOUBLE_FREE   0       NULL    yes (a freed large block's)
 *   P_INTERIOR   ISLET_EINTERIOR      0       NULL    yes
 *   P_FREE       ISLET_EDOUBLE_FREE   0       owner   yes
 *   P_REMOTE     ISLET_EDOUBLE_FREE   0       owner   yes (another's free is pending)
 *   P_LIVE       (frees it)           size    owner   yes
 *
 * The class is a snapshot.  A free of a live block is still decided by the
 * owner's own store or by the remote free's atomic OR or exchange, which
 * catch a second free that races the first (handoff.c).
 */
#ifndef ISLET_CLASSIFY_H
#define ISLET_CLASSIFY_H

#include "internal.h"

typedef enum { P_FOREIGN, P_DESTROYED, P_FREED, P_INTERIOR, P_FREE, P_REMOTE, P_LIVE } ptr_state_t;

typedef struct {
  ptr_state_t state;
  unsigned owner_id; /* for reports: the owner's, the tombstone's, or 0 */
  seghdr_t *h;       /* P_INTERIOR and on: its segment or large block */
  page_t *pg;        /* P_FREE and on, small: its page and its index there */
  long idx;
} ptr_class_t;

/* A block's start: free, freed by another thread, or live. */
static inline ptr_state_t block_state(bool live, bool remote) {
  return !live ? P_FREE : remote ? P_REMOTE : P_LIVE;
}

static inline ptr_class_t large_class(large_t *lg, const void *p) {
  ptr_class_t c = {.owner_id = lg->h.owner_id, .h = &lg->h};
  if (p != large_block(lg)) { /* the region's last granule may hold foreign memory */
    c.state = large_holds(lg, p) ? P_INTERIOR : P_FOREIGN;
    c.owner_id = c.state == P_FOREIGN ? 0 : c.owner_id;
    return c;
  }
  int st = atomic_load_explicit(&lg->state, memory_order_relaxed);
  c.state = block_state(st != LARGE_DEAD, st == LARGE_REMOTE);
  return c;
}

static inline ptr_class_t small_class(segment_t *seg, const void *p) {
  ptr_class_t c = {.owner_id = seg->h.owner_id, .h = &seg->h};
  c.pg = &seg->pages[page_index(p)];
  c.idx = page_block_index(c.pg, p);
  if (c.idx < 0) {
    c.state = P_INTERIOR;
    return c;
  }
  uint64_t m = (uint64_t)1 << (c.idx & 63);
  c.state =
      block_state(atomic_load_explicit(&page_live(c.pg)[c.idx >> 6], memory_order_relaxed) & m,
                  atomic_load_explicit(&page_remote(c.pg)[c.idx >> 6], memory_order_relaxed) & m);
  return c;
}

/* The fast paths' question, asked of the fast map, not the owner map: is p
 * a live block of in's own small pages, in a segment with no remote free
 * pending (its entry is flagged then: handoff.c), so that the remote bits
 * need no look?  Its page, index, live word and that word's value; false
 * for everything else (and for every pointer under Valgrind, whose
 * segments have no entry).  free's fast path and realloc's ask it. */
typedef struct {
  page_t *pg;
  long idx;
  _Atomic uint64_t *lw;
  uint64_t left; /* the live word with the block's bit cleared */
} own_block_t;

static inline __attribute__((always_inline)) bool own_live_small(islet_interp_t *in, void *p,
                                                                 own_block_t *b) {
  if (UNLIKELY(!fast_own(in, p))) return false;
  segment_t *seg = seg_of(p);
  uintptr_t row = page_row(p);
  b->pg = page_at_row(seg, row);
  b->idx = page_slot(b->pg, p);
  if (UNLIKELY(b->idx < 0)) return false;
  b->lw = block_live_word(seg, row, b->idx);
  b->left = atomic_load_explicit(b->lw, memory_order_relaxed);
  return LIKELY(bit_clear(&b->left, (unsigned)b->idx));
}

static inline ptr_class_t classify(const void *p) {
  uintptr_t word = islet_map_get(p);
  if (map_is_hdr(word)) {
    seghdr_t *h = (seghdr_t *)word;
    return h->kind == KIND_LARGE ? large_class((large_t *)h, p) : small_class((segment_t *)h, p);
  }
  if (!tomb_holds(word, p)) return (ptr_class_t){.state = P_FOREIGN};
  return (ptr_class_t){.state = (word & 3) == TOMB_FREED ? P_FREED : P_DESTROYED,
                       .owner_id = tomb_id(word)};
}

/* free.c: the free of p, classified as c, made while holding caller (NULL:
 * none): a live block goes, anything else is reported and changes nothing. */
void islet_free_classified(islet_interp_t *caller, void *p, const ptr_class_t *c);
/* free.c: realloc's free of the block it moved, which own_live_small found
 * as b before the allocation of its new place. */
void islet_free_moved(islet_interp_t *in, void *p, const own_block_t *b);

#endif

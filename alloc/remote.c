/* Cross-interpreter frees of small blocks, and taking them back.
 *
 * Why: a block must return to the interpreter that owns it, without a lock
 * and without the freeing thread ever touching the owner's free state.  The
 * freeing thread sets the block's bit in the page's remote bitmap with one
 * atomic OR (which also catches a second free of the same block), then flags
 * the page in its segment and the segment's owner, each only when not flagged
 * already, so those stores are paid once per batch, not per free.  The owner
 * clears the flags and swaps the bitmap words out when it needs memory.
 *
 * Every access in this protocol is sequentially consistent (on x86 that
 * costs nothing: the RMWs are locked anyway and loads are plain): a freer
 * whose load finds a flag already set is ordered, in the single total order,
 * before the owner's clear of that flag, so the owner's later load and swap
 * of the word see the freer's bit.  A weaker load on either side would let
 * the owner miss a bit whose flag is already gone.  The large-block stack
 * (large.c) follows the same rule.  Nothing is lost and nothing waits.
 */
#include "internal.h"

void islet_flag_pending(_Atomic uint64_t *word, uint64_t bit) {
  if (!(atomic_load(word) & bit)) atomic_fetch_or(word, bit);
}

void islet_remote_free_small(islet_interp_t *caller, segment_t *seg, page_t *pg, long idx) {
  unsigned w = (unsigned)idx >> 6;
  uint64_t m = (uint64_t)1 << (idx & 63);
  islet_interp_t *owner = seg->h.owner;
  char *p = page_block(pg, (size_t)idx);
  bool live = atomic_load_explicit(&page_live(pg)[w], memory_order_relaxed) & m;
  if (live) { /* annotate before the hand-off: the owner may reuse it at once */
    vg_free(p);
    san_poison(p, pg->bsize);
  }
  if (!live || (atomic_fetch_or(&page_remote(pg)[w], m) & m)) {
    islet_report(owner->rt, caller, ISLET_EDOUBLE_FREE, p, owner->id);
    return;
  }
  islet_flag_pending(&seg->pending, (uint64_t)1 << seg_page_index(seg, pg));
  islet_flag_pending(&owner->any_pending, 1);
}

static void collect_page(islet_interp_t *in, page_t *pg) {
  bool was_full = pg->state == PG_FULL;
  size_t n = 0;
  for (unsigned w = 0; w < pg->nwords; w++) {
    if (!atomic_load(&page_remote(pg)[w])) continue; /* seq_cst, as the exchange: see above */
    uint64_t r = atomic_exchange(&page_remote(pg)[w], 0);
    uint64_t bits = atomic_load_explicit(&page_live(pg)[w], memory_order_relaxed);
    for (uint64_t bad = r & ~bits; bad; bad &= bad - 1) /* freed here meanwhile */
      islet_report(in->rt, NULL, ISLET_EDOUBLE_FREE,
                   page_block(pg, (size_t)w * 64 + (unsigned)__builtin_ctzll(bad)), in->id);
    r &= bits;
    atomic_store_explicit(&page_live(pg)[w], bits & ~r, memory_order_relaxed);
    n += (size_t)__builtin_popcountll(r); /* on the free list at its next refill */
  }
  pg->used = (uint16_t)(pg->used - n);
  in->bytes -= n * pg->bsize;
  in->blocks -= n;
  in->remote_processed += n;
  if (n) islet_page_after_free(in, pg, was_full);
}

void islet_collect(islet_interp_t *in) {
  if (!atomic_load(&in->any_pending)) return;
  atomic_store(&in->any_pending, 0);
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    if (!atomic_load(&seg->pending)) continue;
    for (uint64_t pend = atomic_exchange(&seg->pending, 0); pend; pend &= pend - 1)
      collect_page(in, &seg->pages[__builtin_ctzll(pend)]);
  }
  islet_large_collect(in);
}

size_t islet_remote_backlog(islet_interp_t *in) {
  size_t n = 0;
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    for (uint64_t pend = atomic_load(&seg->pending); pend; pend &= pend - 1) {
      page_t *pg = &seg->pages[__builtin_ctzll(pend)];
      for (unsigned w = 0; w < pg->nwords; w++)
        n += (size_t)__builtin_popcountll(
            atomic_load_explicit(&page_remote(pg)[w], memory_order_relaxed));
    }
  }
  for (large_t *lg = atomic_load(&in->remote_large); lg; lg = lg->rnext) n++;
  return n;
}

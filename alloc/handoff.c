/* The cross-interpreter hand-off: a block freed by a thread that does not
 * hold its owner goes back to that owner, and the owner takes it back.
 *
 * Why one file: a block must return to the interpreter that owns it,
 * without a lock and without the freeing thread ever touching the owner's
 * free state, and the ordering that makes that safe holds only as a whole.
 * A small block: the freeing thread sets its bit in the page's remote
 * bitmap with one atomic OR (which also catches a second free), then flags
 * the page in its segment, the segment's fast map entry (the owner's frees
 * into a flagged segment take the slow path, which looks at the remote bits
 * and collects) and the owner, each only when not flagged already, so those
 * stores are paid once per batch.  A large
 * block: the freer claims it with one exchange on its state, then pushes
 * its header (never the user's memory) on the owner's stack.  The owner
 * clears the flags and swaps the words and the stack out when it needs
 * memory (islet_collect), and a flagged segment's when it frees into it
 * (islet_collect_segment).
 *
 * The fields any thread but the owner touches (rel/acq: release/acquire):
 *
 *   field                writer                     reader                   order
 *   page remote[] words  freer: fetch_or (set)      owner: load, exchange    seq_cst
 *                                                   free.c, classify: test   relaxed
 *   segment pending      freer: load, fetch_or      owner: load, exchange    seq_cst
 *                                                   free.c: test             relaxed
 *   interp any_pending   freer: load, fetch_or      owner: load, store(0)    seq_cst
 *   interp remote_large  freer: CAS push            owner: exchange(NULL)    seq_cst
 *   large state          any freer: exchange        classify: load           seq_cst, relaxed
 *   large size, mapped   owner: resize (large.c)    usable, classify: load   relaxed (6)
 *   page live[] words    owner (orphan: locked)     freer, classify: load    relaxed (1)
 *   seghdr owner, _id    orphan take-over (locked)  any thread               rel/acq (2)
 *   fast map entry       owner, take-over, map.c    free fast path           relaxed (5)
 *                        freer: load, CAS to flagged                         seq_cst (4)
 *                        owner: load, store unflagged                        seq_cst (4)
 *   seghdr orphaned      orphan adopt, take-over    free.c: load             rel/acq (3)
 *   seghdr rt            the region's making        any thread               never changes
 *   owner map words      map.c: store               every lookup             rel/acq
 *
 * Seq_cst everywhere in the protocol (free on x86: the RMWs are locked
 * anyway and the loads are plain): a freer whose load finds a flag already
 * set is ordered, in the single total order, before the owner's clear of
 * that flag, so the owner's later load and swap of the word see the
 * freer's bit.  A weaker load on either side would let the owner miss a
 * bit whose flag is already gone.  Nothing is lost and nothing waits.
 * (1) A freer reads a live bit only to catch a free of a free block; the
 *     remote OR decides.  (2) Only a heap taking over an orphan's segment
 *     changes them (orphan.c), and the new owner is read through them.
 * (3) Set on each region of a heap that becomes an orphan, cleared when
 *     a live heap takes a segment over.  After it, every free of the
 *     orphan's blocks takes orphan_lock (through rt, not the owner, whose
 *     struct goes when its last region does) and, if the region is still
 *     an orphan's, frees as the owner would (orphan.c).  A free that races
 *     the destroy breaks the contract (islet.h): a remote free caught
 *     between its check of the flag and its last store may write into an
 *     orphan that a take-over has ended, and lose its bit to a purge of the
 *     orphan's remote rows.
 * (4) The owner unflags a segment before it swaps its pending word, and a
 *     freer flags it after setting that word, so a flag that a collect
 *     clears is set again, or its freer's bit is in the swap; a flag left
 *     over costs the owner one slow free.  A freer whose block is collected
 *     may flag late, hence the CAS from the owner's id it read: never over
 *     a new owner's id, nor over 0 (a granule that is no small segment any
 *     more, or any under Valgrind).
 * (5) fastmap.c: the owner sets its segment's entry when it makes the
 *     segment, a take-over (locked) when it gets it; whoever tombstones
 *     the granule or gives it another owner-map word clears it (the
 *     owner, its destroyer, an orphan's tidying, the runtime thread), and
 *     no live heap's id is there by then.  The fast path compares the
 *     entry with the caller's own id: an entry that names it was written
 *     by the caller's thread, or before the lock that gave it the segment
 *     was released.
 * (6) mapped is stored and loaded relaxed (large_holds); size is written
 *     only when it changes, by the owner's realloc of that block, which no
 *     other thread may use meanwhile: the purge pass's trim of a block's
 *     room leaves it as it was (large.c, account_resize).
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
  uint16_t fast = owner->fast_id; /* not when flagged already, nor under Valgrind */
  if (fast_get(seg) == fast)
    atomic_compare_exchange_strong(fast_entry(seg), &fast, fast | FAST_FLAGGED);
  islet_flag_pending(&owner->any_pending, 1);
}

void islet_large_free(islet_interp_t *caller, large_t *lg) {
  islet_interp_t *owner = lg->h.owner;
  bool local = caller == owner;
  int old = atomic_exchange(&lg->state, local ? LARGE_DEAD : LARGE_REMOTE);
  if (old != LARGE_LIVE) { /* a remote free is pending: this one is the second */
    atomic_store(&lg->state, old);
    islet_report(owner->rt, caller, ISLET_EDOUBLE_FREE, large_block(lg), lg->h.owner_id);
    return;
  }
  vg_free(large_block(lg));
  san_poison(large_block(lg), lg->size);
  if (local) {
    islet_large_drop(owner, lg);
    return;
  }
  large_t *head = atomic_load_explicit(&owner->remote_large, memory_order_relaxed);
  do lg->rnext = head;
  while (!atomic_compare_exchange_weak(&owner->remote_large, &head, lg)); /* seq_cst: above */
  islet_flag_pending(&owner->any_pending, 1);
}

void islet_large_collect(islet_interp_t *in) {
  large_t *lg = atomic_exchange(&in->remote_large, NULL); /* seq_cst: above */
  while (lg) {
    large_t *next = lg->rnext;
    in->remote_processed++;
    islet_large_drop(in, lg);
    lg = next;
  }
}

static void collect_page(islet_interp_t *in, page_t *pg) {
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
  books_out(in, n * pg->bsize, n);
  in->remote_processed += n;
  if (n) islet_page_after_free(in, pg);
}

void islet_collect_segment(islet_interp_t *in, segment_t *seg) {
  if (fast_get(seg) == (in->fast_id | FAST_FLAGGED)) /* before the swap: above */
    atomic_store(fast_entry(seg), in->fast_id);
  if (!atomic_load(&seg->pending)) return;
  for (uint64_t pend = atomic_exchange(&seg->pending, 0); pend; pend &= pend - 1)
    collect_page(in, &seg->pages[__builtin_ctzll(pend)]);
}

void islet_collect(islet_interp_t *in) {
  if (!atomic_load(&in->any_pending)) return;
  atomic_store(&in->any_pending, 0);
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next)
    islet_collect_segment(in, (segment_t *)h);
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

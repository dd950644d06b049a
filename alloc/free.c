/* Free: islet_free, islet_try_free, islet_free_any.
 *
 * Why here: the own-interpreter small free is the fast path and should read
 * top to bottom: the fast map's entry for the pointer's granule (fastmap.c),
 * page, block index by multiplication, clear the live bit, push the block,
 * with no lock and no atomic read-modify-write.
 * Everything else classifies the pointer once (classify.h) and acts on the
 * class: a live block of another interpreter goes back through the remote
 * hand-off (handoff.c) or, when its interpreter has ended, under the
 * orphans' lock (orphan.c); anything but a live block is reported and
 * changes nothing.
 */
#include "classify.h"

static void cross_free(islet_interp_t *caller, void *p, unsigned owner_id) {
  if (caller) {
    caller->remote_sent++;
    if (islet_cross_policy(caller->rt) != ISLET_CROSS_DEFER)
      islet_report(caller->rt, caller, ISLET_ECROSS, p, owner_id);
  }
}

/* A block with a remote free pending is still live in its page, so a local
 * free of it must look at the remote bitmap: only when the segment flags the
 * page, which keeps that cache line out of the common case. */
static inline bool freed_by_another(segment_t *seg, page_t *pg, unsigned w, uint64_t m) {
  return (atomic_load_explicit(&seg->pending, memory_order_relaxed) &
          ((uint64_t)1 << seg_page_index(seg, pg))) &&
         (atomic_load_explicit(&page_remote(pg)[w], memory_order_relaxed) & m);
}

/* islet_page_after_free with p where the free had it: the fast path need
 * not move p out of the way of pg. */
static NOINLINE NOIPA void page_after_free(islet_interp_t *in, void *p, page_t *pg) {
  (void)p;
  islet_page_after_free(in, pg);
}

/* Stores p's live word with its bit cleared (left), pushes it on its page's free
 * list, takes it off the books and makes its page the class's current one.
 * A page that was full goes back to its class's list, and one that empties
 * may go back to its segment: out of line, so a free into a full page (one
 * in 13 under churn) costs a call, not a second lookup.  A full page's list
 * is empty (only this push fills it, and the call below makes it available
 * again), so the list head the push reads is the test; a listed page whose
 * list ran empty takes the call too, which finds it was not full. */
static inline __attribute__((always_inline)) void block_freed(islet_interp_t *in, page_t *pg,
                                                              long idx, _Atomic uint64_t *lw,
                                                              uint64_t left, void *p, bool vg) {
  san_poison(p, pg->bsize);
  atomic_store_explicit(lw, left, memory_order_relaxed);
  bool list_was_empty = page_push(pg, (unsigned)idx, p, vg) == LIST_END;
  books_out(in, pg->bsize, 1);
  /* two tests, not one ||: with one, gcc tests the head first and keeps used in a register */
  if (UNLIKELY(--pg->used == 0))
    page_after_free(in, p, pg);
  else if (UNLIKELY(list_was_empty))
    page_after_free(in, p, pg);
  else
    in->cur[pg->cls] = pg; /* reuse what was just freed: it is in cache */
}

/* The owner's free of its block idx of pg (the owner, or orphan_lock for
 * an orphan, is the only writer of its live bit). */
static void free_small_local(islet_interp_t *in, segment_t *seg, page_t *pg, long idx, void *p,
                             islet_interp_t *caller) {
  unsigned w = (unsigned)idx >> 6;
  uint64_t m = (uint64_t)1 << (idx & 63);
  _Atomic uint64_t *lw = &page_live(pg)[w];
  uint64_t left = atomic_load_explicit(lw, memory_order_relaxed);
  if (UNLIKELY(!bit_clear(&left, (unsigned)idx) || freed_by_another(seg, pg, w, m))) {
    islet_report(in->rt, caller, ISLET_EDOUBLE_FREE, p, in->id);
    return;
  }
  vg_free(p);
  block_freed(in, pg, idx, lw, left, p, vg_on());
}

/* A live block of an ended interpreter (orphan.c): freed as its owner
 * would, under the lock its tidying takes, unless a live heap took its
 * segment over meanwhile (then it is classified again). */
static void orphan_free(islet_interp_t *caller, void *p, const ptr_class_t *c) {
  islet_runtime_t *rt = c->h->rt; /* tidying may end the orphan */
  pthread_mutex_lock(&rt->orphan_lock);
  if (!atomic_load_explicit(&c->h->orphaned, memory_order_relaxed)) { /* taken over */
    pthread_mutex_unlock(&rt->orphan_lock);
    ptr_class_t again = classify(p);
    islet_free_classified(caller, p, &again);
    return;
  }
  islet_interp_t *o = c->h->owner; /* it lives while it holds the lock's regions */
  cross_free(caller, p, c->owner_id);
  page_t *pg = c->h->kind == KIND_LARGE ? NULL : c->pg; /* a large block's header goes */
  if (pg)
    free_small_local(o, (segment_t *)c->h, pg, c->idx, p, caller);
  else
    islet_large_free(o, (large_t *)c->h);
  islet_orphan_freed(o, pg);
  pthread_mutex_unlock(&rt->orphan_lock);
}

/* A live block: its owner's free, an orphan's, or the hand-off to a live
 * owner. */
static void free_live(islet_interp_t *caller, void *p, const ptr_class_t *c) {
  if (atomic_load_explicit(&c->h->orphaned, memory_order_acquire)) {
    orphan_free(caller, p, c);
    return;
  }
  islet_interp_t *owner = c->h->owner;
  if (c->h->kind == KIND_LARGE) {
    if (owner != caller) cross_free(caller, p, c->owner_id);
    islet_large_free(caller, (large_t *)c->h);
  } else if (owner == caller) {
    free_small_local(caller, (segment_t *)c->h, c->pg, c->idx, p, caller);
    if (fast_get(c->h) == (caller->fast_id | FAST_FLAGGED))
      islet_collect_segment(caller, (segment_t *)c->h); /* its next free is a fast one */
  } else {
    cross_free(caller, p, c->owner_id);
    islet_remote_free_small(caller, (segment_t *)c->h, c->pg, c->idx);
  }
}

void islet_free_classified(islet_interp_t *caller, void *p, const ptr_class_t *c) {
  static const islet_error_t bad[] = {
      [P_FOREIGN] = ISLET_EFOREIGN,   [P_DESTROYED] = ISLET_EDESTROYED,
      [P_FREED] = ISLET_EDOUBLE_FREE, [P_INTERIOR] = ISLET_EINTERIOR,
      [P_FREE] = ISLET_EDOUBLE_FREE,  [P_REMOTE] = ISLET_EDOUBLE_FREE};
  if (c->state == P_LIVE)
    free_live(caller, p, c);
  else
    islet_report(c->h ? c->h->rt : NULL, caller, bad[c->state], p, c->owner_id);
}

/* Everything but an own-interpreter small free. */
static NOINLINE void free_slow(islet_interp_t *caller, void *p) {
  if (!p) return;
  ptr_class_t c = classify(p);
  islet_free_classified(caller, p, &c);
}

/* The fast path: a live block of in's own small pages (classify.h,
 * own_live_small; its page's list changes out of line when the page was
 * full or empties).  False for everything else, which changes nothing. */
static inline __attribute__((always_inline)) bool free_fast(islet_interp_t *in, void *p) {
  own_block_t b;
  if (LIKELY(own_live_small(in, p, &b))) {
    block_freed(in, b.pg, b.idx, b.lw, b.left, p, false);
    return true;
  }
  return false;
}

/* The allocation between own_live_small and here may have changed b's live
 * word (a collect takes back blocks other threads freed) or flagged its
 * segment (a remote free into it since): both are read again, and anything
 * unusual takes the classified path, as islet_free would. */
void islet_free_moved(islet_interp_t *in, void *p, const own_block_t *b) {
  uint64_t left = atomic_load_explicit(b->lw, memory_order_relaxed);
  if (LIKELY(fast_own(in, p) && bit_clear(&left, (unsigned)b->idx)))
    block_freed(in, b->pg, b->idx, b->lw, left, p, false);
  else
    free_slow(in, p);
}

/* A leaf: everything but the fast path is one tail call away. */
void islet_free(islet_interp_t *in, void *p) {
  if (!free_fast(in, p)) free_slow(in, p);
}

/* One lookup decides between islet's memory and the wrapped allocator's. */
static NOINLINE int try_free_slow(islet_interp_t *in, void *p) {
  ptr_class_t c = classify(p);
  if (c.state == P_FOREIGN) return 0;
  islet_free_classified(in, p, &c);
  return 1;
}

int islet_try_free(islet_interp_t *in, void *p) {
  return free_fast(in, p) ? 1 : try_free_slow(in, p);
}

static NOINLINE void free_or_slow(islet_interp_t *in, void *p, void (*other)(void *, void *),
                                  void *ctx) {
  if (!try_free_slow(in, p)) other(ctx, p);
}

void islet_free_or(islet_interp_t *in, void *p, void (*other)(void *, void *), void *ctx) {
  if (!free_fast(in, p)) free_or_slow(in, p, other, ctx);
}

void islet_free_any(void *p) {
  free_slow(NULL, p);
}

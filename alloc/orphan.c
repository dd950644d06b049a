/* Orphans: ended interpreters whose blocks are still in use.
 *
 * Why: up to CPython 3.11 interpreters share objects (a static type's
 * subclass list or cache resized by a sub-interpreter lives in its heap), so
 * an object may outlive the interpreter that allocated it; quarantine would
 * fault on it and release would hand it out again.  Under the orphan policy
 * destroy gives back what is free at once and keeps the rest valid: the heap
 * moves to the runtime's orphan list, keeps no empty page or segment, nor
 * any OS page without a live block (purge.c), and ends when its last block
 * is freed or its last segment is taken over by a live heap of the same
 * policy, which fills the free space around its blocks (as mimalloc
 * reclaims a dead thread's abandoned segments).  A class that runs out of
 * pages takes over a segment with a page of its class that has room before
 * it starts a fresh page: the holes its blocks left are resident anyway,
 * and a fresh page would add OS pages that the next leaked block keeps.
 *
 * Nobody holds an orphan, so its frees are made as its owner would, under
 * orphan_lock (free.c), never through the remote bitmaps: no free is in
 * flight when an orphan ends.  A free that races the destroy breaks the
 * contract (handoff.c, note 3); a complete one is taken back by the next
 * tidy (any_pending is its last store).
 */
#include "internal.h"
#include <stdlib.h>

/* A class keeps one empty page for its next allocation (anywhere in its
 * list: a full page that gets a block back joins it at the end); an
 * orphan allocates no more. */
static void drop_empty_pages(islet_interp_t *o) {
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++)
    for (page_t *pg = o->pages[c], *next; pg; pg = next) {
      next = pg->next;
      if (!pg->used) islet_page_drop(o, pg);
    }
}

static void release_empty_segments(islet_interp_t *o) {
  retired_t *rec = islet_retire_regions(o, false, true);
  if (rec && rec->nregions)
    islet_reclaim_submit(o->rt, rec);
  else
    free(rec);
}

/* orphan_lock held.  Ends o when its last block is gone (true). */
bool islet_orphan_tidy(islet_interp_t *o) {
  islet_collect(o);
  if (!heap_blocks(o)) {
    interps_del(o);
    islet_retire_heap(o, false);
    return true;
  }
  drop_empty_pages(o);
  release_empty_segments(o);
  islet_purge_pass(o, PURGE_ORPHAN);
  if (o->mapped < o->orphan_mapped) islet_backend_arena_purge(o->arena);
  o->orphan_mapped = o->mapped;
  return false;
}

/* A free leaves the OS pages it emptied to the kernel at once; a page or
 * a segment it emptied, and anything after a racing remote free, go
 * through the whole tidy. */
void islet_orphan_freed(islet_interp_t *o, page_t *pg) {
  if (pg && pg->used && heap_blocks(o) && !atomic_load(&o->any_pending))
    islet_purge_page(pg, true);
  else
    islet_orphan_tidy(o);
}

void islet_orphan_adopt(islet_interp_t *o) {
  islet_runtime_t *rt = o->rt;
  pthread_mutex_lock(&rt->orphan_lock);
  interps_push(&rt->orphans, o);
  o->orphaned = true;
  seghdr_t *lists[2] = {&o->segs, &o->larges}; /* what freeing threads read */
  for (int l = 0; l < 2; l++)
    for (seghdr_t *h = lists[l]->next; h != lists[l]; h = h->next)
      atomic_store_explicit(&h->orphaned, true, memory_order_release);
  o->orphan_mapped = SIZE_MAX; /* what it freed while alive goes too */
  islet_orphan_tidy(o);
  pthread_mutex_unlock(&rt->orphan_lock);
}

/* seg leaves o for in, with its live blocks: they are in's from now on. */
static void move_segment(islet_interp_t *o, islet_interp_t *in, segment_t *seg) {
  list_del(&seg->h);
  o->nsegs--;
  o->mapped -= SEG_SIZE;
  for (uint64_t inuse = ~seg->free_pages & USABLE_PAGES; inuse; inuse &= inuse - 1)
    islet_page_move(o, in, &seg->pages[__builtin_ctzll(inuse)]);
  islet_segment_own(seg, in);
  islet_purge_adopted(seg); /* its remote rows may be written again */
  list_push(in->segs.prev, &seg->h);
  in->nsegs++;
  in->mapped += SEG_SIZE;
  in->inherited = true;
}

/* A heap takes an orphan's segment, as mimalloc reclaims an ended thread's
 * abandoned segments: the orphan's free space around its live blocks is
 * filled rather than kept.  A class with no page left asks for one holding
 * a page of its class with room (cls); a heap that would map a segment
 * for any.  Interpreters that share objects (CPython 3.11's, legacy ones
 * after it) share pymalloc's arenas the same way.  Only a heap that ends
 * as an orphan itself may take one (its blocks may be shared), and not one
 * with a limit, which another's blocks would count against. */
static segment_t *with_room(const islet_interp_t *o, int cls) {
  if (cls == ORPHAN_ANY_CLASS) return o->segs.next != &o->segs ? (segment_t *)o->segs.next : NULL;
  for (page_t *pg = o->pages[cls]; pg; pg = pg->next) /* a page that filled stays listed */
    if (pg->used < pg->nblocks) return seg_of(pg);
  return NULL;
}

segment_t *islet_orphan_inherit(islet_interp_t *in, int cls) {
  islet_runtime_t *rt = in->rt;
  if (in->teardown != ISLET_TEARDOWN_ORPHAN || in->limit != SIZE_MAX || in->runtime_heap)
    return NULL;
  segment_t *seg = NULL;
  pthread_mutex_lock(&rt->orphan_lock);
  islet_interp_t *o = rt->orphans.rt_next, *next;
  for (; o != &rt->orphans; o = next) {
    next = o->rt_next;
    /* a remote free that raced the adoption is o's to take back, and may end o */
    if (atomic_load(&o->any_pending) && islet_orphan_tidy(o)) continue;
    if ((seg = with_room(o, cls))) break;
  }
  if (seg) {
    move_segment(o, in, seg);
    if (!heap_blocks(o)) { /* all of it went: it ends */
      interps_del(o);
      islet_retire_heap(o, false);
    }
  }
  pthread_mutex_unlock(&rt->orphan_lock);
  return seg;
}

/* On every destroy and flush (end_all: when the runtime ends). */
void islet_orphans_sweep(islet_runtime_t *rt, bool end_all) {
  pthread_mutex_lock(&rt->orphan_lock);
  for (islet_interp_t *o = rt->orphans.rt_next, *next; o != &rt->orphans; o = next) {
    next = o->rt_next;
    if (!end_all) { /* only a remote free that raced the adoption can be new here */
      if (atomic_load(&o->any_pending)) islet_orphan_tidy(o);
      continue;
    }
    interps_del(o);
    islet_retire_heap(o, false);
  }
  pthread_mutex_unlock(&rt->orphan_lock);
}

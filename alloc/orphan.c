/* Orphans: ended interpreters whose blocks are still in use.
 *
 * Why: up to CPython 3.11 interpreters share objects (a static type's
 * subclass list or cache resized by a sub-interpreter lives in its heap), so
 * an object may outlive the interpreter that allocated it; quarantine would
 * fault on it and release would hand it out again.  Under the orphan policy
 * destroy gives back what is free at once and keeps the rest valid: the heap
 * moves to the runtime's orphan list, keeps no empty page or segment nor the
 * memory of a free page, and ends when its last block is freed.  (mimalloc
 * abandons a dead thread's segments the same way.)
 *
 * Nobody holds an orphan, so its frees are made as its owner would, under
 * orphan_lock (api.c), never through the remote bitmaps: no free is in
 * flight when an orphan ends.  A remote free that raced the adoption is
 * taken back by the next tidy, which only sees it once it is complete
 * (any_pending is its last store: remote.c).
 */
#include "internal.h"
#include <stdlib.h>
#include <sys/mman.h>

/* A class keeps one empty page for its next allocation (anywhere in its
 * list: a full page that gets a block back goes in front); an orphan
 * allocates no more. */
static void drop_empty_pages(islet_interp_t *o) {
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++)
    for (page_t *pg = o->pages[c], *next; pg; pg = next) {
      next = pg->next;
      if (!pg->used) islet_page_drop(o, pg);
    }
}

/* A live heap keeps a free page's memory for its next allocation, until the
 * whole segment is free; an orphan allocates no more, so it goes now. */
static void purge_free_pages(islet_interp_t *o) {
  for (seghdr_t *h = o->segs.next; h != &o->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    uint64_t todo = seg->free_pages & ~seg->purged;
    seg->purged |= todo;
    while (todo) { /* one call per run of free pages: an orphan often holds a few blocks */
      unsigned first = (unsigned)__builtin_ctzll(todo);
      uint64_t rest = ~todo >> first; /* the run ends at the first clear bit */
      unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - first;
      madvise((char *)seg + (size_t)first * PAGE_SIZE, (size_t)n * PAGE_SIZE, MADV_DONTNEED);
      todo &= n + first >= 64 ? 0 : ~(uint64_t)0 << (first + n);
    }
  }
}

static void release_empty_segments(islet_interp_t *o) {
  retired_t *rec = islet_retire_regions(o, false, true);
  if (rec && rec->nregions)
    islet_reclaim_submit(o->rt, rec);
  else
    free(rec);
}

static void unlink_orphan(islet_interp_t *o) {
  o->rt_prev->rt_next = o->rt_next;
  o->rt_next->rt_prev = o->rt_prev;
}

/* orphan_lock held.  Ends o when its last block is gone. */
void islet_orphan_tidy(islet_interp_t *o) {
  islet_collect(o);
  if (!o->blocks) {
    unlink_orphan(o);
    islet_retire_heap(o, false);
    return;
  }
  drop_empty_pages(o);
  release_empty_segments(o);
  purge_free_pages(o);
  if (o->mapped < o->orphan_mapped) islet_backend_arena_purge(o->arena);
  o->orphan_mapped = o->mapped;
}

void islet_orphan_adopt(islet_interp_t *o) {
  islet_runtime_t *rt = o->rt;
  pthread_mutex_lock(&rt->orphan_lock);
  o->rt_next = rt->orphans.rt_next;
  o->rt_prev = &rt->orphans;
  rt->orphans.rt_next->rt_prev = o;
  rt->orphans.rt_next = o;
  atomic_store_explicit(&o->orphaned, true, memory_order_release);
  o->orphan_mapped = SIZE_MAX; /* what it freed while alive goes too */
  islet_orphan_tidy(o);
  pthread_mutex_unlock(&rt->orphan_lock);
}

/* On every destroy and flush (end_all: when the runtime ends). */
void islet_orphans_sweep(islet_runtime_t *rt, bool end_all) {
  pthread_mutex_lock(&rt->orphan_lock);
  for (islet_interp_t *o = rt->orphans.rt_next, *next; o != &rt->orphans; o = next) {
    next = o->rt_next;
    if (!end_all) {
      islet_orphan_tidy(o);
      continue;
    }
    unlink_orphan(o);
    islet_retire_heap(o, false);
  }
  pthread_mutex_unlock(&rt->orphan_lock);
}

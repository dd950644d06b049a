/* Segments: 4 MiB interpreter-owned arenas cut into 64 KiB pages.
 *
 * Why: pages are the unit a size class borrows and returns, segments are the
 * unit the backend and the owner map deal in.  The first META_PAGES pages of
 * a segment hold its header and the page descriptors, so block memory holds
 * nothing of islet's.
 */
#include "internal.h"
#include <sys/mman.h>

void islet_segment_own(segment_t *seg, islet_interp_t *in) {
  if (seg->h.rt != in->rt) seg->h.rt = in->rt; /* a take-over keeps it: freeing threads read it */
  atomic_store_explicit(&seg->h.owner, in, memory_order_release); /* in is readable through it */
  atomic_store_explicit(&seg->h.owner_id, in->id, memory_order_relaxed);
  islet_fast_set(seg, in->fast_id);
  atomic_store_explicit(&seg->h.orphaned, in->orphaned, memory_order_release);
}

/* A zero descriptor (magic 0) makes any pointer into its page interior,
 * and zero bitmaps need no clearing when a page is first used, so only the
 * header's pages in use are ever touched: seg's header reads as zeros. */
static void segment_init(islet_interp_t *in, segment_t *seg) {
  vg_defined(seg, sizeof *seg);
  seg->h.kind = KIND_SMALL;
  islet_segment_own(seg, in);
  seg->free_pages = USABLE_PAGES;
  seg->purged = 0;
  seg->idle = 0;
  seg->touched = 0;
  seg->meta_purged = 0;
  atomic_init(&seg->pending, 0);
}

static void segment_link(islet_interp_t *in, segment_t *seg) {
  vg_noaccess((char *)seg + META_PAGES * PAGE_SIZE, SEG_SIZE - META_PAGES * PAGE_SIZE);
  list_push(in->segs.prev, &seg->h); /* at the tail: pages come from the oldest first */
  in->nsegs++;
  in->mapped += SEG_SIZE;
}

/* Small blocks may take huge pages (islet_config_t.huge_pages): fewer data
 * TLB misses for the objects a program sweeps over, at up to 2 MiB
 * resident for what a segment holds.  The region asked for 4 KiB pages
 * (islet_region_map). */
static void segment_pages(islet_interp_t *in, void *granule) {
#ifdef MADV_HUGEPAGE
  if (in->rt->cfg.huge_pages) madvise(granule, SEG_SIZE, MADV_HUGEPAGE);
#else
  (void)in, (void)granule;
#endif
}

static segment_t *segment_new(islet_interp_t *in) {
  segment_t *seg = islet_region_map(in, SEG_SIZE);
  if (!seg) return NULL;
  segment_pages(in, seg);
  islet_backend_clear(seg, sizeof *seg);
  segment_init(in, seg);
  if (!islet_map_set(seg, SEG_SIZE, (uintptr_t)seg)) {
    islet_fast_set(seg, 0); /* segment_init's */
    islet_backend_unmap(in->arena, seg, SEG_SIZE);
    return NULL;
  }
  segment_link(in, seg);
  return seg;
}

/* Out of address space (RLIMIT_AS), a heap whose small blocks went may
 * still need a large one: an empty segment becomes its region, in place.
 * The granule keeps its mapping and its owner-map word (the header's
 * address either way), so a freeing thread that flags the segment late
 * writes a field the large header does not use (large_t.pending); given
 * back to the backend, the range could fault or be anyone's. */
void *islet_segment_take(islet_interp_t *in) {
  islet_collect(in); /* no remote free may be left on its way into it */
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    if (seg->free_pages != USABLE_PAGES || atomic_load(&seg->pending)) continue;
    list_del(h);
    in->nsegs--;
    in->mapped -= SEG_SIZE;
    islet_fast_set(seg, 0); /* a large block's now */
    islet_region_advise(seg, 0, SEG_SIZE);
    islet_backend_zero(seg, SEG_SIZE);
    san_unpoison(seg, SEG_SIZE);
    return seg;
  }
  return NULL;
}

void islet_segment_give(islet_interp_t *in, void *granule) {
  segment_pages(in, granule);
  islet_backend_zero(granule, SEG_SIZE);
  san_unpoison(granule, SEG_SIZE);
  segment_init(in, granule);
  segment_link(in, granule);
}

/* Clears what a page's earlier use may have left: its live bits are 0 (it
 * emptied), but a remote free racing a local double free of one of its
 * blocks may have left a remote bit.  Reading a word first leaves the
 * header's untouched pages untouched. */
static void bits_clear(_Atomic uint64_t *w) {
  for (unsigned i = 0; i < PAGE_WORDS; i++)
    if (atomic_load_explicit(&w[i], memory_order_relaxed))
      atomic_store_explicit(&w[i], 0, memory_order_relaxed);
}

static void page_init(segment_t *seg, page_t *pg, unsigned cls, bool reused) {
  uint32_t bs = islet_class_sizes[cls];
  unsigned n = (unsigned)(PAGE_SIZE / bs);
  pg->off = (uint32_t)((char *)seg + seg_page_index(seg, pg) * PAGE_SIZE - (char *)pg);
  pg->live = page_live(pg);
  pg->bsize = bs;
  pg->magic = (uint32_t)((((uint64_t)1 << 32) + bs - 1) / bs);
  pg->nblocks = (uint16_t)n;
  pg->nwords = (uint16_t)((n + 63) / 64);
  pg->used = 0;
  pg->free = LIST_END;
  pg->scan = 0;
  pg->os_idle = pg->os_purged = 0;
  pg->cls = (uint8_t)cls;
  pg->state = PG_AVAIL;
  pg->next = pg->prev = NULL;
  if (reused) {
    bits_clear(page_live(pg));
    bits_clear(page_remote(pg));
  }
  san_poison(page_block(pg, 0), PAGE_SIZE);
}

page_t *islet_page_fresh(islet_interp_t *in, unsigned cls) {
  segment_t *seg = NULL;
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next)
    if (((segment_t *)h)->free_pages) {
      seg = (segment_t *)h;
      break;
    }
  if (!seg) seg = islet_orphan_inherit(in, ORPHAN_ANY_CLASS);
  if (!seg && !(seg = segment_new(in))) return NULL;
  if (!seg->free_pages) return islet_page_fresh(in, cls); /* inherited, with no free page */
  unsigned i = (unsigned)__builtin_ctzll(seg->free_pages);
  uint64_t bit = (uint64_t)1 << i;
  bool reused = seg->touched & bit;
  seg->free_pages &= ~bit;
  seg->touched |= bit;
  islet_purge_forget(seg, i);
  page_t *pg = &seg->pages[i];
  page_init(seg, pg, cls, reused);
  in->npages++;
  return pg;
}

/* Emptied segments a heap keeps resident for its purge delay, so that it
 * fills them again without a fault (CPython builds a table while the last
 * one goes).  Past them, an emptied segment goes back at once: a program
 * that drops a big structure and goes quiet, with no allocation to run a
 * purge pass, keeps no more than that (pymalloc frees an arena as soon as
 * it empties). */
#define WARM_SEGS 2

static bool keeps_warm(islet_interp_t *in, segment_t *seg) {
  unsigned warm = 0;
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *s = (segment_t *)h;
    warm += s != seg && s->free_pages == USABLE_PAGES && s->purged != USABLE_PAGES;
  }
  return warm < WARM_SEGS;
}

/* The page keeps its geometry, so a later free of one of its blocks is still
 * recognised as a double free until the page is reused.
 *
 * A live interpreter never unmaps a segment: a thread freeing into it may be
 * between setting its remote bit and flagging the segment, and that flag
 * store must land in mapped memory.  A segment that empties gives its
 * physical pages back instead, the heap's last segment and WARM_SEGS others
 * after the purge delay, as free pages do (purge.c). */
void islet_page_free(islet_interp_t *in, page_t *pg) {
  segment_t *seg = seg_of(pg);
  pg->state = PG_FREE;
  seg->free_pages |= (uint64_t)1 << seg_page_index(seg, pg);
  in->npages--;
  if (seg->free_pages == USABLE_PAGES && in->nsegs > 1 && seg->purged != USABLE_PAGES &&
      !keeps_warm(in, seg)) {
    madvise((char *)seg + META_PAGES * PAGE_SIZE, SEG_SIZE - META_PAGES * PAGE_SIZE, MADV_DONTNEED);
    seg->purged = USABLE_PAGES;
  }
}

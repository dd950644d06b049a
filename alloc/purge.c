/* Purging: free memory inside a heap goes back to the kernel.
 *
 * Why: a heap that peaked and shrank keeps every 64 KiB page that still
 * holds one block, and one block keeps a page resident however little of
 * it is live.  The live bitmaps say which 4 KiB OS pages hold no live
 * block, which no allocator that keeps its free state in the blocks can
 * tell; those OS pages go back with MADV_DONTNEED and read as zeros when
 * next touched.  A free block holds its free-list link, so a page whose OS
 * pages went back drops its list, and the next refill rebuilds it from the
 * bitmap (small.c), writing links only into the blocks it hands out.
 *
 * When: an ended heap (an orphan) allocates no more, so all of its free
 * memory goes at once.  A live heap would pay a fault for every page it
 * gave back and then reused, so its free memory decays, as mimalloc's
 * purge_delay and jemalloc's dirty_decay_ms do: a pass every delay marks
 * what is free, and the next one purges what is still free, so free memory
 * goes back between one and two delays after it was freed.  The clock is
 * read once per TICK_ALLOCS allocations, when the allocation count, which
 * counts down, reaches 0: the count's decrement replaces its increment, so
 * the fast path pays one predicted branch, and no other slow path is
 * needed (a heap churning from its free lists never takes one).  A heap
 * that stops allocating keeps its free memory until islet_interp_purge.  Time, not an allocation
 * count, sets the delay: the memory a heap wastes is wasted per second, whatever it allocates.
 *
 * Who: the owner only (or orphan_lock, for an orphan).  Other threads
 * write only the remote bitmap, never a block, and only for a live block,
 * whose OS pages stay.
 */
#include "internal.h"
#include <sys/mman.h>
#include <time.h>

void islet_dontneed_runs(char *base, uint64_t mask, size_t unit) {
  while (mask) {
    unsigned first = (unsigned)__builtin_ctzll(mask);
    uint64_t rest = ~mask >> first; /* the run ends at the first clear bit */
    unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - first;
    madvise(base + (size_t)first * unit, (size_t)n * unit, MADV_DONTNEED);
    mask &= n + first >= 64 ? 0 : ~(uint64_t)0 << (first + n);
  }
}

/* Whether any of blocks lo..hi of pg is live (a block freed by another
 * thread still is, until its owner collects it). */
static bool any_live(page_t *pg, unsigned lo, unsigned hi) {
  _Atomic uint64_t *live = page_live(pg);
  for (unsigned w = lo >> 6; w <= hi >> 6; w++) {
    uint64_t m = ~(uint64_t)0;
    if (w == lo >> 6) m &= ~(uint64_t)0 << (lo & 63);
    if (w == hi >> 6) m &= ~(uint64_t)0 >> (63 - (hi & 63));
    if (atomic_load_explicit(&live[w], memory_order_relaxed) & m) return true;
  }
  return false;
}

/* The block that byte off (< PAGE_SIZE) of pg lies in: the multiply by
 * magic is floor division here, its error below 2^-16 and a fraction of
 * off / bsize never above 1 - 2^-14. */
static unsigned block_at(const page_t *pg, size_t off) {
  return (unsigned)((off * (uint64_t)pg->magic) >> 32);
}

/* Bit k: OS page k of pg holds some of its blocks, none of them live.  OS
 * pages past the last block were never touched. */
static uint16_t free_os_pages(page_t *pg) {
  uint16_t m = 0;
  unsigned last = pg->nblocks - 1u;
  for (unsigned k = 0; k < PAGE_OS_PAGES; k++) {
    unsigned lo = block_at(pg, k * OS_PAGE), hi = block_at(pg, (k + 1) * OS_PAGE - 1);
    if (lo > last) break;
    if (!any_live(pg, lo, hi < last ? hi : last)) m |= (uint16_t)(1u << k);
  }
  return m;
}

void islet_purge_page(page_t *pg, bool force) {
  if ((size_t)(pg->nblocks - pg->used) * pg->bsize < OS_PAGE) { /* no OS page can be free */
    pg->os_idle = 0;
    return;
  }
  uint16_t fr = free_os_pages(pg) & (uint16_t)~pg->os_purged;
  uint16_t due = force ? fr : fr & pg->os_idle;
  pg->os_idle = fr & (uint16_t)~due;
  if (!due) return;
  islet_dontneed_runs(page_block(pg, 0), due, OS_PAGE);
  pg->os_purged |= due;
  pg->free = LIST_END; /* it may run through them: the next refill rebuilds it */
}

/* The OS page of bitmap rows at rows (bit of meta_purged), when every word
 * is 0.  A free page's rows are, but for a remote bit a racing double free
 * left (segment.c); reading an OS page that went back faults nothing in. */
static void rows_purge(segment_t *seg, _Atomic uint64_t *rows, unsigned bit) {
  if (seg->meta_purged & 1u << bit) return;
  for (size_t i = 0; i < OS_PAGE / sizeof *rows; i++)
    if (atomic_load_explicit(&rows[i], memory_order_relaxed)) return;
  madvise((void *)rows, OS_PAGE, MADV_DONTNEED);
  seg->meta_purged |= 1u << bit;
}

/* An OS page of a bitmap holds the rows of ROW_PAGES pages: it goes when
 * all of them did. */
#define ROW_PAGES (OS_PAGE / sizeof(uint64_t[PAGE_WORDS]))
#define ROW_GROUPS (SEG_PAGES / ROW_PAGES)
/* An orphan's remote rows take no write (its frees are made under
 * orphan_lock, through the live bitmap), so those that read 0 go too, for
 * pages in use as well; a live heap's may be written at any time. */
static void rows_purge_all(segment_t *seg, bool orphan) {
  uint64_t gone = seg->purged | ~USABLE_PAGES, group = ((uint64_t)1 << ROW_PAGES) - 1;
  for (unsigned g = 0; g < ROW_GROUPS; g++) {
    bool free = ((gone >> (g * ROW_PAGES)) & group) == group;
    if (free) rows_purge(seg, &seg->live[g * ROW_PAGES][0], g);
    if (free || orphan) rows_purge(seg, &seg->remote[g * ROW_PAGES][0], ROW_GROUPS + g);
  }
}

void islet_purge_adopted(segment_t *seg) {
  seg->meta_purged &= ~(((1u << ROW_GROUPS) - 1) << ROW_GROUPS);
}

void islet_purge_forget(segment_t *seg, unsigned i) {
  uint64_t bit = (uint64_t)1 << i;
  seg->purged &= ~bit;
  seg->idle &= ~bit;
  seg->meta_purged &= ~(1u << i / ROW_PAGES | 1u << (ROW_GROUPS + i / ROW_PAGES));
}

void islet_purge_pass(islet_interp_t *in, purge_how_t how) {
  bool force = how != PURGE_DECAYED;
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    uint64_t fr = seg->free_pages & ~seg->purged, due = force ? fr : fr & seg->idle;
    seg->idle = fr & ~due;
    islet_dontneed_runs((char *)seg, due, PAGE_SIZE);
    seg->purged |= due;
    for (uint64_t inuse = ~seg->free_pages & USABLE_PAGES; inuse; inuse &= inuse - 1)
      islet_purge_page(&seg->pages[__builtin_ctzll(inuse)], force);
    rows_purge_all(seg, how == PURGE_ORPHAN);
  }
  islet_large_purge(in, force);
}

void islet_purge_init(islet_interp_t *in, long delay_ms) {
  in->tick_left = TICK_ALLOCS;
  if (!delay_ms) delay_ms = ISLET_PURGE_DELAY_DEFAULT;
  in->purge_gap = delay_ms < 0 ? UINT64_MAX : (uint64_t)delay_ms * 1000000u;
}

static uint64_t coarse_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void islet_purge_tick(islet_interp_t *in) {
  in->allocs += TICK_ALLOCS;
  in->tick_left = TICK_ALLOCS;
  if (in->purge_gap == UINT64_MAX) return;
  uint64_t now = coarse_ns();
  if (now < in->purge_at) return;
  in->purge_at = now + in->purge_gap;
  islet_purge_pass(in, PURGE_DECAYED);
}

void islet_interp_purge(islet_interp_t *in) {
  islet_collect(in); /* blocks freed by others are free memory too */
  islet_purge_pass(in, PURGE_ALL);
}

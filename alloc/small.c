/* Small blocks: the slow path of allocation and the page lists.
 *
 * Why: the fast path (api.c) only pops the free list of the class's current
 * page.  Everything else lives here: refilling an empty list from the live
 * bitmap, a full page leaving its class's list (when an allocation finds it
 * full), taking back blocks other threads freed, borrowing a fresh page, and
 * putting pages back in the list or returning them to the segment.
 */
#include "internal.h"

/* The current page of a class with no pages: it has no blocks and an empty
 * list, so the fast path falls through here without a NULL check, and it
 * names its class, so the fast path need not keep the class for its slow
 * path.  Never written. */
#define EMPTY(c)                                                                                   \
  { .free = LIST_END, .cls = (c) }
#define EMPTY4(c) EMPTY(c), EMPTY(c + 1), EMPTY(c + 2), EMPTY(c + 3)
#define EMPTY20(c) EMPTY4(c), EMPTY4(c + 4), EMPTY4(c + 8), EMPTY4(c + 12), EMPTY4(c + 16)
page_t islet_empty_pages[ISLET_SIZE_CLASSES] = {EMPTY20(0), EMPTY20(20), EMPTY20(40)};
_Static_assert(ISLET_SIZE_CLASSES == 60, "one empty page per class");

/* in->pages[cls] lists the class's pages with a free block (its last one
 * is in->last[cls]); in->cur[cls] is the one allocation takes from: the
 * page of the last local free, for the cache warmth of reusing what was
 * just freed, or the list's head.  Not a page that was full: its one free
 * block would be taken by the next allocation, and the one after would find
 * it full again and go to the refill (under churn, a free in 13 lands in a
 * full page).  Such a page joins the list at its end, so that by the time
 * allocation reaches it, more of its blocks are free (mimalloc queues a
 * page that is no longer full at the end too). */
static void class_remove(islet_interp_t *in, page_t *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    in->pages[pg->cls] = pg->next;
  if (pg->next)
    pg->next->prev = pg->prev;
  else
    in->last[pg->cls] = pg->prev;
  pg->next = pg->prev = NULL;
  if (in->cur[pg->cls] == pg)
    in->cur[pg->cls] = in->pages[pg->cls] ? in->pages[pg->cls] : empty_page(pg->cls);
}

/* pg joins its class's list at its head, or at its end (last). */
static void class_add(islet_interp_t *in, page_t *pg, bool last) {
  page_t **head = &in->pages[pg->cls], **tail = &in->last[pg->cls];
  if (!*head) {
    pg->prev = pg->next = NULL;
    *head = *tail = pg;
  } else if (last) {
    pg->prev = *tail;
    pg->next = NULL;
    (*tail)->next = pg;
    *tail = pg;
  } else {
    pg->prev = NULL;
    pg->next = *head;
    (*head)->prev = pg;
    *head = pg;
  }
  if (in->cur[pg->cls] == empty_page(pg->cls)) in->cur[pg->cls] = pg;
}

void islet_page_drop(islet_interp_t *in, page_t *pg) {
  class_remove(in, pg);
  islet_page_free(in, pg);
}

/* Its blocks, their bytes and its place in a class list go along. */
void islet_page_move(islet_interp_t *from, islet_interp_t *to, page_t *pg) {
  if (pg->state == PG_AVAIL) class_remove(from, pg);
  from->npages--;
  books_out(from, (size_t)pg->used * pg->bsize, pg->used);
  to->npages++;
  books_in(to, (ptrdiff_t)pg->used * pg->bsize, pg->used);
  if (pg->state == PG_AVAIL) class_add(to, pg, false);
}

/* A free made a full page available (it joins its class's list, and the
 * current page stays), emptied a page, or went into a page whose list was
 * empty (free.c, block_freed): the last page of a class stays, others go
 * back to their segment. */
void islet_page_after_free(islet_interp_t *in, page_t *pg) {
  bool was_full = pg->state == PG_FULL;
  if (was_full) {
    pg->state = PG_AVAIL;
    class_add(in, pg, true);
  }
  if (pg->used == 0 && (in->pages[pg->cls] != pg || pg->next))
    islet_page_drop(in, pg);
  else if (!was_full)
    in->cur[pg->cls] = pg;
}

/* Blocks linked by one refill: about 4 KiB of them (mimalloc extends its
 * free lists by at most 4 KiB too), and at most one live word's. */
static unsigned refill_blocks(const page_t *pg) {
  unsigned n = 4096 / pg->bsize;
  return n ? n : 1;
}

/* Blocks lo..hi of pg are about to be written: their OS pages will be
 * resident, so a later purge may give them back again, and were not idle
 * since the last pass (purge.c). */
static void touch_os_pages(page_t *pg, unsigned lo, unsigned hi) {
  unsigned a = (unsigned)((size_t)lo * pg->bsize >> OS_PAGE_SHIFT);
  unsigned b = (unsigned)(((size_t)hi + 1) * pg->bsize - 1) >> OS_PAGE_SHIFT;
  uint16_t used = (uint16_t)(((2u << b) - 1) & ~((1u << a) - 1));
  pg->os_purged &= (uint16_t)~used;
  pg->os_idle &= (uint16_t)~used; /* in use since the last pass: not idle for a delay */
}

/* The lowest k set bits of room (not 0).  A fresh page's room is one run
 * of bits: a mask takes them, with no loop over them. */
static uint64_t lowest_bits(uint64_t room, unsigned k) {
  unsigned lo = (unsigned)__builtin_ctzll(room);
  uint64_t run = room >> lo;
  if (!(run & (run + 1))) /* one run, up to the top bit */
    return lo + k >= 64 ? room : room & (((uint64_t)1 << (lo + k)) - 1);
  uint64_t rest = room;
  for (; rest && k; k--) rest &= rest - 1; /* all but the lowest k */
  return room & ~rest;
}

/* Links the blocks of take (bits of live word w) into a list in address
 * order and returns its head: run by run of adjacent blocks from the
 * highest, each block's link the index of the one above it. */
static unsigned link_blocks(page_t *pg, unsigned w, uint64_t take) {
  unsigned head = LIST_END;
  while (take) {
    unsigned hi = 63u - (unsigned)__builtin_clzll(take);
    uint64_t gaps = ~take & (((uint64_t)2 << hi) - 1); /* the gaps below hi */
    unsigned lo = gaps ? 64u - (unsigned)__builtin_clzll(gaps) : 0;
    char *b = page_block(pg, w * 64 + hi);
    for (unsigned i = w * 64 + hi;; i--, b -= pg->bsize) {
      link_set(b, head, true);
      head = i;
      if (i == w * 64 + lo) break;
    }
    take &= ((uint64_t)1 << lo) - 1;
  }
  return head;
}

/* The list is empty: it gets the lowest free blocks of the next live word
 * with room, so a fresh page is touched as it fills, not all at once (the
 * links are writes into the blocks).  Blocks freed here went on the list as
 * they were freed; those freed by other threads are only in the bitmap until
 * a refill finds them.  false: the page is full. */
static bool page_refill(page_t *pg) {
  if (pg->used == pg->nblocks) return false;
  unsigned w = pg->scan;
  uint64_t room;
  while (!(room = ~atomic_load_explicit(&page_live(pg)[w], memory_order_relaxed) &
                  page_blocks_in(pg, w)))
    w = w + 1 == pg->nwords ? 0 : w + 1;
  uint64_t take = lowest_bits(room, refill_blocks(pg));
  pg->scan = (uint16_t)(take != room ? w : w + 1 == pg->nwords ? 0 : w + 1); /* again if room */
  if (pg->os_purged | pg->os_idle) /* the links bring these blocks' OS pages back */
    touch_os_pages(pg, w * 64 + (unsigned)__builtin_ctzll(take),
                   w * 64 + 63u - (unsigned)__builtin_clzll(take));
  pg->free = (uint16_t)link_blocks(pg, w, take);
  return true;
}

/* A head that is not a free block of the page: a freed block was written to
 * after its free.  The list is dropped and rebuilt from the bitmap. */
static void list_corrupt(islet_interp_t *in, page_t *pg) {
  islet_report(in->rt, NULL, ISLET_ECORRUPT, page_block(pg, 0), in->id);
  pg->free = LIST_END;
}

/* The current page's list is empty, and it is not one whose blocks are all
 * out (islet_class_refill took those off): its list is rebuilt from its
 * bitmap, or, full after all, it leaves the class's list and the next page
 * is looked at.  With none left, blocks freed by others are taken back
 * (once: others may keep freeing), then an orphan's page of the class with
 * room is taken over (orphan.c), then a fresh page is borrowed. */
static NOINLINE void *class_refill_slow(islet_interp_t *in, unsigned cls) {
  bool collected = false;
  do
    for (page_t *pg;
         (pg = in->cur[cls]) != empty_page(cls) || (!collected && atomic_load(&in->any_pending));) {
      if (pg == empty_page(cls)) {
        islet_collect(in);
        collected = true;
        continue;
      }
      void *p = page_pop(pg, true);
      if (p) return p;
      if (pg->free != LIST_END) list_corrupt(in, pg);
      if (page_refill(pg)) return page_pop(pg, true);
      pg->state = PG_FULL;
      class_remove(in, pg);
    }
  while (islet_orphan_inherit(in, (int)cls));
  page_t *pg = islet_page_fresh(in, cls);
  if (!pg) return NULL;
  class_add(in, pg, false);
  page_refill(pg);
  return page_pop(pg, true);
}

/* The current page's list is empty.  Most often all of its blocks are out:
 * the allocations took them all, frees since went into other pages, and
 * the page is still listed (only the allocation that finds it full takes
 * it out).  Such pages leave the class's list here, with no look at their
 * bitmap and no call, and the next page's list serves; anything else is
 * class_refill_slow's. */
void *islet_class_refill(islet_interp_t *in, unsigned cls) {
  page_t *pg;
  while ((pg = in->cur[cls]) != empty_page(cls) && pg->free == LIST_END &&
         pg->used == pg->nblocks) {
    pg->state = PG_FULL;
    class_remove(in, pg);
  }
  void *p = page_pop(pg, true);
  return p ? p : class_refill_slow(in, cls);
}

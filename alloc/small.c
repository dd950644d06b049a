/* Small blocks: the slow path of allocation and the page lists.
 *
 * Why: the fast path (api.c) only looks at the class's current page and one
 * bitmap word.  Everything else lives here: moving on to the next word or
 * page, taking back blocks other threads freed, borrowing a fresh page, and
 * putting pages back in their class's list or returning them to the segment.
 */
#include "internal.h"

/* The current page of a class with no pages: every block looks taken, so
 * the fast path falls through here without a NULL check.  Never written. */
page_t islet_empty_page = {.nwords = 1, .live = {~(uint64_t)0}};

static void *take(page_t *pg, unsigned w, uint64_t bits) {
  unsigned b = (unsigned)__builtin_ctzll(~bits);
  atomic_store_explicit(&pg->live[w], bits | ((uint64_t)1 << b), memory_order_relaxed);
  pg->used++;
  return page_block(pg, (size_t)w * 64 + b);
}

void islet_page_list_remove(islet_interp_t *in, page_t *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    in->cur[pg->cls] = pg->next ? pg->next : &islet_empty_page;
  if (pg->next) pg->next->prev = pg->prev;
  pg->next = pg->prev = NULL;
}

/* A page that gets free blocks goes second in its class's list, so the
 * current page keeps filling instead of ping-ponging. */
static void list_insert(islet_interp_t *in, page_t *pg) {
  page_t *head = in->cur[pg->cls];
  if (head == &islet_empty_page) {
    pg->prev = pg->next = NULL;
    in->cur[pg->cls] = pg;
    return;
  }
  pg->prev = head;
  pg->next = head->next;
  if (head->next) head->next->prev = pg;
  head->next = pg;
}

void islet_page_after_free(islet_interp_t *in, page_t *pg, bool was_full) {
  if (was_full) {
    pg->state = PG_AVAIL;
    list_insert(in, pg);
  }
  if (pg->used == 0 && (in->cur[pg->cls] != pg || pg->next)) {
    islet_page_list_remove(in, pg);
    islet_page_retire(in, pg);
  }
}

void *islet_small_alloc_slow(islet_interp_t *in, unsigned cls) {
  for (;;) {
    page_t *pg = in->cur[cls];
    if (pg != &islet_empty_page) {
      for (unsigned w = pg->hint; w < pg->nwords; w++) {
        uint64_t bits = atomic_load_explicit(&pg->live[w], memory_order_relaxed);
        if (bits != ~(uint64_t)0) {
          pg->hint = (uint16_t)w;
          return take(pg, w, bits);
        }
      }
      pg->hint = (uint16_t)(pg->nwords - 1);
      pg->state = PG_FULL;
      islet_page_list_remove(in, pg);
      continue;
    }
    if (atomic_load(&in->any_pending)) {
      islet_collect(in);
      if (in->cur[cls] != &islet_empty_page) continue;
    }
    pg = islet_page_fresh(in, cls);
    if (!pg) return NULL;
    list_insert(in, pg);
    return take(pg, 0, atomic_load_explicit(&pg->live[0], memory_order_relaxed));
  }
}

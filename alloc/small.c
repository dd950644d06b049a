/* Small blocks: the slow path of allocation and the page lists.
 *
 * Why: the fast path (api.c) only looks at the class's current page and one
 * bitmap word.  Everything else lives here: a full page leaving its class's
 * list (when an allocation finds it full), taking back blocks other threads
 * freed, borrowing a fresh page, and putting pages back in the list or
 * returning them to the segment.
 */
#include "internal.h"

/* The current page of a class with no pages: every block looks taken, so
 * the fast path falls through here without a NULL check.  Never written. */
page_t islet_empty_page = {.nwords = 1, .live = {~(uint64_t)0}};

/* in->pages[cls] lists the class's pages with a free block; in->cur[cls] is
 * the one allocation takes from: the page of the last local free, for the
 * cache warmth of reusing what was just freed, or the list's head. */
static void class_remove(islet_interp_t *in, page_t *pg) {
  if (pg->prev)
    pg->prev->next = pg->next;
  else
    in->pages[pg->cls] = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  pg->next = pg->prev = NULL;
  if (in->cur[pg->cls] == pg)
    in->cur[pg->cls] = in->pages[pg->cls] ? in->pages[pg->cls] : &islet_empty_page;
}

static void class_push(islet_interp_t *in, page_t *pg) {
  page_t *head = in->pages[pg->cls];
  pg->prev = NULL;
  pg->next = head;
  if (head) head->prev = pg;
  in->pages[pg->cls] = pg;
  if (in->cur[pg->cls] == &islet_empty_page) in->cur[pg->cls] = pg;
}

void islet_page_drop(islet_interp_t *in, page_t *pg) {
  class_remove(in, pg);
  islet_page_retire(in, pg);
}

/* A free made a full page available, or emptied a page: the last page of a
 * class stays, others go back to their segment. */
void islet_page_after_free(islet_interp_t *in, page_t *pg, bool was_full) {
  if (was_full) {
    pg->state = PG_AVAIL;
    class_push(in, pg);
  }
  if (pg->used == 0 && (in->pages[pg->cls] != pg || pg->next)) {
    islet_page_drop(in, pg);
    return;
  }
  in->cur[pg->cls] = pg;
}

static void *take_first(page_t *pg) {
  return page_take(pg, pg->hint, atomic_load_explicit(&pg->live[pg->hint], memory_order_relaxed));
}

/* The current page is full (its hint word is).  Full pages leave the list
 * here, one by one; with none left, blocks freed by others are taken back
 * (once: others may keep freeing), then a fresh page is borrowed. */
void *islet_small_alloc_slow(islet_interp_t *in, unsigned cls) {
  bool collected = false;
  for (page_t *pg;
       (pg = in->cur[cls]) != &islet_empty_page || (!collected && atomic_load(&in->any_pending));) {
    if (pg == &islet_empty_page) {
      islet_collect(in);
      collected = true;
      continue;
    }
    if (pg->avail) return take_first(pg);
    pg->state = PG_FULL;
    class_remove(in, pg);
  }
  page_t *pg = islet_page_fresh(in, cls);
  if (!pg) return NULL;
  class_push(in, pg);
  return take_first(pg);
}

/* Interpreter heaps: creation, limits and teardown.
 *
 * Why teardown looks like this: ending an interpreter must give back all of
 * its memory in time proportional to its arenas, whatever its extension
 * modules forgot to free (CPython gh-110411).  The leak report is read off
 * the page descriptors (per-class counts from each page's counter, the first
 * few addresses from the first non-empty bitmap words), never by walking
 * blocks; then every region is tombstoned in the owner map, so a late free
 * of one of its pointers is reported, and handed to the reclaimer
 * (reclaim.c), which returns or quarantines the memory.
 */
#include "internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The interpreter the calling thread holds (islet_object.h): alloc/'s, so
 * that destroying an interpreter can make its destroying thread hold none. */
static _Thread_local islet_interp_t *current;

void islet_interp_enter(islet_interp_t *in) {
  current = in;
}

islet_interp_t *islet_current(void) {
  return current;
}

islet_interp_t *islet_interp_create(islet_runtime_t *rt) {
  islet_interp_t *in = aligned_alloc(_Alignof(islet_interp_t), sizeof *in); /* see fast_class */
  if (in) memset(in, 0, sizeof *in);
  if (!in || islet_backend_arena_new(&in->arena)) {
    free(in);
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++) in->cur[c] = empty_page(c);
  in->limit = SIZE_MAX;
  in->redzone = ISLET_ASAN || vg_on() ? ISLET_SAN_REDZONE : 0;
  in->fast_max = vg_on() ? 0 : 1024 - in->redzone; /* Valgrind's client requests are slow-path */
  in->fast_id = vg_on() ? NO_FAST_ID : islet_fast_id_take(); /* Valgrind: no fast path */
  memcpy(in->fast_class, islet_small_classes + 1, sizeof in->fast_class);
  list_init(&in->segs);
  list_init(&in->larges);
  in->rt = rt;
  in->teardown = rt->cfg.teardown;
  islet_purge_init(in, rt->cfg.purge_delay_ms);
  interps_init(in);
  pthread_mutex_lock(&rt->lock);
  in->id = ++rt->next_id;
  pthread_mutex_unlock(&rt->lock);
  return in;
}

islet_interp_t *islet_interp_new(islet_runtime_t *rt) {
  islet_interp_t *in = islet_interp_create(rt);
  if (!in) return NULL;
  pthread_mutex_lock(&rt->lock);
  interps_push(&rt->live, in);
  pthread_mutex_unlock(&rt->lock);
  islet_run_interp_hooks(in, true);
  return in;
}

unsigned islet_interp_id(const islet_interp_t *in) {
  return in->id;
}

void islet_interp_set_limit(islet_interp_t *in, size_t bytes) {
  in->limit = bytes ? bytes : SIZE_MAX;
  islet_books_settle(in);
}

int islet_interp_set_teardown(islet_interp_t *in, islet_teardown_t t) {
  if ((unsigned)t > ISLET_TEARDOWN_ORPHAN) return ISLET_EINVAL;
  in->teardown = t;
  return 0;
}

void islet_interp_collect(islet_interp_t *in) {
  islet_collect(in);
}

static void note_leak(islet_leak_report_t *r, void *p) {
  if (r->naddrs < ISLET_LEAK_ADDRS) r->addrs[r->naddrs++] = p;
}

/* Per-class counts and the first addresses.  Under Valgrind each live block
 * is also declared freed when teardown frees it (this walk is the only
 * per-block work, and only under Valgrind). */
static void leak_report(islet_interp_t *in, islet_leak_report_t *r, bool freeing) {
  for (seghdr_t *h = in->segs.next; h != &in->segs; h = h->next) {
    segment_t *seg = (segment_t *)h;
    /* pages in use only: the others' descriptors may never have been touched */
    for (uint64_t inuse = ~seg->free_pages & USABLE_PAGES; inuse; inuse &= inuse - 1) {
      page_t *pg = &seg->pages[__builtin_ctzll(inuse)];
      if (!pg->used) continue;
      r->class_blocks[pg->cls] += pg->used;
      r->blocks += pg->used;
      r->bytes += (size_t)pg->used * pg->bsize;
      if (r->naddrs == ISLET_LEAK_ADDRS && !vg_on()) continue;
      for (unsigned w = 0; w < pg->nwords; w++) {
        uint64_t bits = atomic_load_explicit(&page_live(pg)[w], memory_order_relaxed);
        for (; bits; bits &= bits - 1) {
          char *p = page_block(pg, (size_t)w * 64 + (unsigned)__builtin_ctzll(bits));
          note_leak(r, p);
          if (freeing) vg_free(p);
        }
      }
    }
  }
  for (seghdr_t *h = in->larges.next; h != &in->larges; h = h->next) {
    large_t *lg = (large_t *)h;
    r->large_blocks++;
    r->large_bytes += lg->size;
    r->blocks++;
    r->bytes += lg->size;
    note_leak(r, large_block(lg));
    if (freeing) vg_free(large_block(lg));
  }
}

static bool segment_empty(seghdr_t *h) {
  return ((segment_t *)h)->free_pages == USABLE_PAGES;
}

/* O(arenas): the memory itself is not touched. */
retired_t *islet_retire_regions(islet_interp_t *in, bool quarantine, bool empty_only) {
  size_t n = in->nsegs + in->nlarge;
  retired_t *rec = malloc(sizeof *rec + n * sizeof(region_t));
  if (!rec) return NULL;
  *rec = (retired_t){
      .arena = in->arena, .id = in->id, .quarantine = quarantine, .partial = empty_only};
  unsigned tomb = quarantine ? TOMB_QUARANTINED : TOMB_RELEASED;
  for (seghdr_t *h = in->segs.next, *next; h != &in->segs; h = next) {
    next = h->next;
    if (empty_only && !segment_empty(h)) continue;
    rec->regions[rec->nregions++] = (region_t){h, SEG_SIZE};
    if (!empty_only) continue;
    list_del(h);
    in->nsegs--;
    in->mapped -= SEG_SIZE;
  }
  for (seghdr_t *h = in->larges.next; !empty_only && h != &in->larges; h = h->next)
    rec->regions[rec->nregions++] = (region_t){h, ((large_t *)h)->mapped};
  for (size_t i = 0; i < rec->nregions; i++) {
    islet_map_tomb(rec->regions[i].base, rec->regions[i].size, in->id, tomb);
    rec->bytes += rec->regions[i].size;
  }
  return rec;
}

bool islet_retire_heap(islet_interp_t *in, bool quarantine) {
  retired_t *rec = islet_retire_regions(in, quarantine, false);
  if (rec)
    islet_reclaim_submit(in->rt, rec);
  else
    islet_reclaim_now(in);         /* no memory for the list: give it back right here */
  islet_fast_id_give(in->fast_id); /* its regions no longer name it */
  free(in);
  return rec && quarantine;
}

void islet_interp_destroy(islet_interp_t *in, islet_leak_report_t *report) {
  uint64_t t0 = now_ns();
  islet_runtime_t *rt = in->rt;
  islet_leak_report_t local;
  islet_leak_report_t *r = report ? report : &local;
  bool runtime_heap = islet_is_runtime_heap(in);
  if (!runtime_heap) islet_run_interp_hooks(in, false);
  islet_collect(in); /* blocks freed by others are not leaks */
  islet_large_purge(in, true);
  *r = (islet_leak_report_t){.id = in->id, .segments = in->nsegs, .mapped = in->mapped};
  /* an orphan's blocks another heap inherited may be shared: they stay valid */
  bool orphan = (in->teardown == ISLET_TEARDOWN_ORPHAN || in->inherited) && heap_blocks(in);
  leak_report(in, r, !orphan);
  pthread_mutex_lock(&rt->lock);
  interps_del(in);
  pthread_mutex_unlock(&rt->lock);
  r->orphaned = orphan;
  if (current == in) current = NULL;
  if (orphan)
    islet_orphan_adopt(in);
  else
    r->quarantined = islet_retire_heap(in, in->teardown == ISLET_TEARDOWN_QUARANTINE);
  if (!runtime_heap) islet_orphans_sweep(rt, false);
  r->teardown_ns = now_ns() - t0;
}

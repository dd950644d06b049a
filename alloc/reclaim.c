/* Giving a destroyed interpreter's memory back, off the destroying thread.
 *
 * Why: returning memory costs the kernel time per resident page (a 25 MiB
 * heap takes milliseconds to unmap), while islet_interp_destroy must take
 * time proportional to the interpreter's arenas, not to what they hold.  So
 * destroy only tombstones the regions and queues them; a runtime thread,
 * started on first use like jemalloc's background_thread (and, like it, not
 * in a child of fork(): fork.c), returns them to the
 * backend or, under quarantine, makes them inaccessible and drops their pages
 * while keeping the address range reserved until the runtime ends.  Queued
 * regions are already unreachable (the owner map says "destroyed"), never
 * reused, and islet_runtime_flush() waits for the queue to empty.  Past a
 * backlog of BACKLOG_MAX bytes the destroying thread does the work itself.
 * A heap that finds no region to map waits here for that memory
 * (islet_region_map), and asks for the page size of every region it maps.
 */
#include "internal.h"
#include <stdlib.h>
#include <sys/mman.h>

#define BACKLOG_MAX ((size_t)1 << 30)

/* ASan: of a segment only the pages it ever used were poisoned, so only
 * their shadow is cleared (all 4 MiB of it cost a fifth of a fuzz run).  It
 * runs before quarantine drops the header it reads. */
static void unpoison(region_t *r) {
  segment_t *seg = r->base;
  if (!ISLET_ASAN || seg->h.kind != KIND_SMALL) {
    san_unpoison(r->base, r->size);
    return;
  }
  for (uint64_t t = seg->touched; t; t &= t - 1)
    san_unpoison(page_block(&seg->pages[__builtin_ctzll(t)], 0), PAGE_SIZE);
}

static void region_release(unsigned arena, region_t *r, bool protected) {
  if (protected) mprotect(r->base, r->size, PROT_READ | PROT_WRITE);
  islet_backend_unmap(arena, r->base, r->size);
}

static void release(retired_t *rec) {
  for (size_t i = 0; i < rec->nregions; i++) {
    if (rec->quarantine) /* the runtime ends, or the bound: the range may be reused now */
      islet_map_tomb(rec->regions[i].base, rec->regions[i].size, rec->id, TOMB_RELEASED);
    region_release(rec->arena, &rec->regions[i], rec->quarantine);
  }
  /* an orphan's arena lives on; a quarantined heap's went back in process() */
  if (!rec->partial && !rec->quarantine) islet_backend_arena_release(rec->arena);
  free(rec);
}

static void process(islet_runtime_t *rt, retired_t *rec) {
  for (size_t i = 0; i < rec->nregions; i++) unpoison(&rec->regions[i]);
  if (!rec->quarantine) {
    release(rec);
    return;
  }
  for (size_t i = 0; i < rec->nregions; i++) { /* keep the range, drop the memory */
    mprotect(rec->regions[i].base, rec->regions[i].size, PROT_NONE);
    madvise(rec->regions[i].base, rec->regions[i].size, MADV_DONTNEED);
  }
  /* The arena may serve the next heap now (jemalloc never touches a block it
   * handed out, so the quarantined ones just stay allocated in it until the
   * runtime ends); a quarantined heap would keep an idle arena otherwise,
   * and jemalloc has at most 4,095. */
  islet_backend_arena_release(rec->arena);
  rec->next = NULL;
  pthread_mutex_lock(&rt->lock);
  *(rt->quarantined ? &rt->quarantined_last->next : &rt->quarantined) = rec;
  rt->quarantined_last = rec;
  rt->quarantined_bytes += rec->bytes;
  retired_t *old = NULL; /* past the bound: the oldest go, outside the lock */
  size_t max = rt->cfg.quarantine_max;
  while (max && rt->quarantined_bytes > max && rt->quarantined != rec) {
    retired_t *o = rt->quarantined;
    rt->quarantined = o->next;
    rt->quarantined_bytes -= o->bytes;
    o->next = old;
    old = o;
  }
  pthread_mutex_unlock(&rt->lock);
  for (retired_t *next; old; old = next) {
    next = old->next;
    release(old);
  }
}

/* rt->lock held, and held again on return.  Counted, so that flush and
 * fork() (fork.c) can wait until no heap is half given back. */
static void process_counted(islet_runtime_t *rt, retired_t *rec) {
  rt->reclaiming++;
  pthread_mutex_unlock(&rt->lock);
  process(rt, rec);
  pthread_mutex_lock(&rt->lock);
  rt->reclaiming--;
  pthread_cond_broadcast(&rt->idle);
}

/* rt->lock held: the queue, oldest first (quarantine is a FIFO), one heap
 * at a time, so a fork waits for one heap, never for the backlog. */
static void drain(islet_runtime_t *rt) {
  for (retired_t *rec; (rec = rt->queue);) {
    rt->queue = rec->next;
    if (!rt->queue) rt->queue_last = NULL;
    size_t bytes = rec->bytes; /* a released record is freed */
    process_counted(rt, rec);
    rt->queued_bytes -= bytes;
  }
}

static void *reclaimer(void *arg) {
  islet_runtime_t *rt = arg;
  pthread_mutex_lock(&rt->lock);
  for (;;) {
    while (!rt->queue && !rt->stopping) pthread_cond_wait(&rt->wake, &rt->lock);
    if (!rt->queue) break;
    drain(rt);
  }
  pthread_mutex_unlock(&rt->lock);
  return NULL;
}

/* rt->lock held.  Started on first use; never in a child of fork(), whose
 * runtimes reclaim inline (fork.c). */
static bool reclaimer_running(islet_runtime_t *rt) {
  if (!rt->reclaimer_started && !rt->cfg.reclaim_inline)
    rt->reclaimer_started = pthread_create(&rt->reclaimer, NULL, reclaimer, rt) == 0;
  return rt->reclaimer_started;
}

/* A partial record (an orphan's empty segments) is done now: the orphan's
 * arena must not be released before it.  With no thread, a queue is what a
 * child of fork() inherited: it goes first (quarantine is oldest first). */
void islet_reclaim_submit(islet_runtime_t *rt, retired_t *rec) {
  pthread_mutex_lock(&rt->lock);
  if (!rec->partial && reclaimer_running(rt) && rt->queued_bytes < BACKLOG_MAX) {
    rec->next = NULL;
    *(rt->queue ? &rt->queue_last->next : &rt->queue) = rec;
    rt->queue_last = rec;
    rt->queued_bytes += rec->bytes;
    pthread_cond_signal(&rt->wake);
  } else {
    if (!rt->reclaimer_started) drain(rt);
    process_counted(rt, rec);
  }
  pthread_mutex_unlock(&rt->lock);
}

/* No memory to list the regions: release them here, walking the lists. */
void islet_reclaim_now(islet_interp_t *in) {
  seghdr_t *lists[2] = {&in->segs, &in->larges};
  for (int l = 0; l < 2; l++)
    for (seghdr_t *h = lists[l]->next, *next; h != lists[l]; h = next) {
      next = h->next;
      region_t r = {h, h->kind == KIND_LARGE ? ((large_t *)h)->mapped : SEG_SIZE};
      islet_map_tomb(h, r.size, in->id, TOMB_RELEASED);
      unpoison(&r);
      region_release(in->arena, &r, false);
    }
  islet_backend_arena_release(in->arena);
}

/* Until every destroyed heap is given back; true if any was on its way. */
static bool reclaim_wait(islet_runtime_t *rt) {
  pthread_mutex_lock(&rt->lock);
  bool any = rt->queue || rt->reclaiming;
  if (rt->queue && !reclaimer_running(rt)) drain(rt); /* what a child of fork() inherited */
  while (rt->queue || rt->reclaiming) pthread_cond_wait(&rt->idle, &rt->lock);
  pthread_mutex_unlock(&rt->lock);
  return any;
}

void islet_runtime_flush(islet_runtime_t *rt) {
  islet_orphans_sweep(rt, false);
  reclaim_wait(rt);
}

/* Regions start on a granule, which a kernel in THP "always" mode backs 2
 * MiB at a time as it faults in, resident whole however little of them the
 * heap touches (CPython 3.13's workloads measured 1.5x-1.9x pymalloc's
 * peak RSS that way), so they ask for 4 KiB pages; a heap's segments may
 * ask for huge ones after (segment.c), never a large block, which would
 * take a 2 MiB page for 20 KB.  A range mapped next to an advised one takes
 * nothing from it, so every new or grown one is, to the end of its last
 * granule: that is its span (the system backend maps it whole; nothing
 * else starts in it), and spans advised whole keep making one kernel
 * mapping, where an advised head and a plain tail would make two per
 * large block (backend.c, vm.max_map_count).  A region grown within its
 * span asks nothing: a list that grows in place would make a system call
 * at every step (CPython 3.11's json workload made 821). */
void islet_region_advise(void *p, size_t from, size_t to) {
  size_t lo = (from + SEG_SIZE - 1) & ~(SEG_SIZE - 1), hi = (to + SEG_SIZE - 1) & ~(SEG_SIZE - 1);
#ifdef MADV_NOHUGEPAGE
  if (lo < hi) madvise((char *)p + lo, hi - lo, MADV_NOHUGEPAGE);
#else
  (void)p, (void)lo, (void)hi;
#endif
}

/* Out of address space or memory (RLIMIT_AS, strict overcommit), the
 * region is tried again after the heap gives back what it keeps mapped
 * beyond its blocks (its spare regions, its large blocks' room: up to
 * 2 MiB and more), and again once what destroyed heaps held, which may
 * still be on its way back, is. */
static void *region_map(islet_interp_t *in, size_t size) {
  void *p = islet_backend_map(in->arena, size);
  if (p) return p;
  size_t had = in->mapped;
  islet_large_purge(in, true);
  if (in->mapped < had && (p = islet_backend_map(in->arena, size))) return p;
  return reclaim_wait(in->rt) ? islet_backend_map(in->arena, size) : NULL;
}

void *islet_region_map(islet_interp_t *in, size_t size) {
  void *p = region_map(in, size);
  if (p) islet_region_advise(p, 0, size);
  return p;
}

void islet_reclaim_shutdown(islet_runtime_t *rt) {
  pthread_mutex_lock(&rt->lock);
  rt->stopping = true;
  pthread_cond_signal(&rt->wake);
  bool started = rt->reclaimer_started;
  pthread_mutex_unlock(&rt->lock);
  if (started) pthread_join(rt->reclaimer, NULL);
  pthread_mutex_lock(&rt->lock);
  drain(rt); /* queued before a fork, in a child that never started a thread */
  pthread_mutex_unlock(&rt->lock);
  while (rt->quarantined) {
    retired_t *rec = rt->quarantined;
    rt->quarantined = rec->next;
    release(rec);
  }
}

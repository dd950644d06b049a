/* Where arenas and large blocks come from: jemalloc or the kernel.
 *
 * jemalloc backend: each interpreter gets its own jemalloc arena
 * (arenas.create), every region is taken with mallocx(MALLOCX_ARENA |
 * MALLOCX_TCACHE_NONE).  The thread cache stays off because it would hand
 * one arena's memory to another (jemalloc #1535), and mallocx is kept off
 * the small-object fast path, which islet serves from its own pages.
 * jemalloc is linked privately into libislet, so the host's malloc is not
 * replaced, and with opt.retain (its default on 64-bit Linux) it never
 * unmaps, so a range whose tombstone stands in the owner map stays islet's.
 * An ended interpreter's arena is emptied, purged and kept for the next
 * interpreter rather than destroyed: jemalloc 5.3 keeps 4 KiB of metadata
 * for every arenas.create + arena.<i>.destroy pair (measured: 1,000 pairs
 * grow RSS by 3.6 MiB, 1,000 reuses by 0), and CPython embedders create and
 * end sub-interpreters by the thousand.  jemalloc has at most 4,095 arenas
 * (the indices mallocx's flags encode); past them, interpreters share the
 * arenas islet made, the least shared first, rather than fail: an arena is
 * only a source of regions, each region is one heap's in the owner map, and
 * a shared arena is purged and kept for the next heap when its last heap
 * ends.
 *
 * system backend: mmap, nothing shared with anyone, and no range given
 * back to the kernel while the owner map may name it (below).
 */
#include "internal.h"
#include "sanitize.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* jemalloc synchronises reuse of freed memory internally, out of TSan's
 * sight: a region freed by one thread and handed to another would look like a
 * race.  Releasing and acquiring this token around backend calls tells TSan
 * what jemalloc's own locks guarantee. */
static char tsan_backend_token;

/* The backend's own state (jemalloc: its pool of emptied arenas; system:
 * the address space it holds) is under this lock, which a fork() must not
 * catch held (fork.c). */
static pthread_mutex_t backend_lock = PTHREAD_MUTEX_INITIALIZER;
static void backend_acquire(void) {
  pthread_mutex_lock(&backend_lock);
}
static void backend_release(void) {
  pthread_mutex_unlock(&backend_lock);
}

/* Whether MADV_DONTNEED zero-fills here.  Linux does; qemu-user once
 * returned 0 and did nothing, which jemalloc probes for as well (jemalloc
 * PR #2005). */
static bool dontneed_zeroes(void) {
  static _Atomic int known; /* 0: not probed, 1: zeroes, 2: does not */
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k) return k == 1;
  volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bool yes = false;
  if (p != MAP_FAILED) {
    p[0] = 1;
    yes = madvise((void *)p, 4096, MADV_DONTNEED) == 0 && p[0] == 0;
    munmap((void *)p, 4096);
  }
  atomic_store_explicit(&known, yes ? 1 : 2, memory_order_relaxed);
  return yes;
}

/* Regions are private anonymous mappings, so giving the pages to the
 * kernel makes them read as zeros, faulted in only when used. */
void islet_backend_zero(void *p, size_t n) {
  n = (n + 4095) & ~(size_t)4095;
  if (!dontneed_zeroes() || madvise(p, n, MADV_DONTNEED)) memset(p, 0, n);
}

#ifdef ISLET_BACKEND_JEMALLOC
#include <jemalloc/jemalloc.h>

const char *islet_backend(void) {
  return "jemalloc";
}

/* jemalloc 5.3's MALLOCX_ARENA_LIMIT (in an internal header): it makes no
 * arena index past it. */
#define ARENA_LIMIT 4095u

/* By arena index, process-wide like jemalloc's indices: how many live heaps
 * each of islet's arenas serves (0: emptied, in the pool). */
static unsigned heaps[ARENA_LIMIT];
static unsigned pool[ARENA_LIMIT];
static size_t npool;

/* MALLOCX_ARENA(a) shifts an int, which overflows from arena 2,047 on
 * (UBSan stops there): the same bits, shifted unsigned, which jemalloc
 * reads back unsigned. */
static int arena_flag(unsigned arena) {
  return (int)((arena + 1u) << 20);
}

static bool arena_create(unsigned *arena) {
  size_t sz = sizeof *arena;
  return !mallctl("arenas.create", arena, &sz, NULL, 0) && *arena < ARENA_LIMIT;
}

/* Past jemalloc's limit: the arena of islet's that serves the fewest heaps
 * (none is idle: the pool is empty). */
static bool arena_share(unsigned *arena) {
  unsigned best = 0;
  for (unsigned a = 0; a < ARENA_LIMIT; a++)
    if (heaps[a] && (!heaps[best] || heaps[a] < heaps[best])) best = a;
  *arena = best;
  return heaps[best] > 0;
}

/* All under backend_lock, arenas.create too, so that the pool, the counts
 * and the arenas jemalloc has made agree. */
int islet_backend_arena_new(unsigned *arena) {
  backend_acquire();
  bool ok = npool > 0;
  if (ok)
    *arena = pool[--npool];
  else
    ok = arena_create(arena) || arena_share(arena);
  if (ok) heaps[*arena]++;
  backend_release();
  return ok ? 0 : -1;
}

/* jemalloc decays freed memory as its arena allocates and frees; an idle
 * arena (an orphan's, a pooled one) does neither, so what it was given back
 * would stay resident. */
void islet_backend_arena_purge(unsigned arena) {
  char name[32];
  snprintf(name, sizeof name, "arena.%u.purge", arena);
  mallctl(name, NULL, NULL, NULL, 0);
}

/* The heap has ended; its regions are gone or quarantined (jemalloc never
 * touches a block it handed out, so those just stay allocated here).  The
 * arena's last heap pools it; a heap taking it from the pool before the
 * purge is done only finds less memory resident. */
void islet_backend_arena_release(unsigned arena) {
  backend_acquire();
  bool last = --heaps[arena] == 0;
  if (last) pool[npool++] = arena;
  backend_release();
  if (last) islet_backend_arena_purge(arena);
}

/* What islet gives back stays mapped in jemalloc, which only islet calls,
 * so ASan sees it as poisoned until jemalloc hands it out again: a use of a
 * freed large block is reported, not read silently.  (jemalloc itself is
 * not instrumented.) */
void *islet_backend_map(unsigned arena, size_t size) {
  void *p = mallocx(size, arena_flag(arena) | MALLOCX_TCACHE_NONE | MALLOCX_ALIGN(SEG_SIZE));
  san_backend_acquire(&tsan_backend_token);
  if (p) san_unpoison(p, size);
  return p;
}

/* A region goes back to the arena that made it, which need not be the
 * heap's (a heap may take an orphan's segment over, orphan.c), so purging
 * the heap's arena would leave it resident: a region of a granule or more
 * gives its pages back itself. */
void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  if (size >= SEG_SIZE) madvise(p, size, MADV_DONTNEED);
  san_poison(p, size);
  san_backend_release(&tsan_backend_token);
  dallocx(p, MALLOCX_TCACHE_NONE);
}

/* jemalloc may hand out memory islet gave back, with anything in it. */
void islet_backend_clear(void *p, size_t n) {
  islet_backend_zero(p, n);
}

const bool islet_backend_moves = false; /* jemalloc's rallocx copies */

bool islet_backend_move(void *from, size_t old, void *to, size_t size) {
  (void)from, (void)old, (void)to, (void)size;
  return false;
}

/* xallocx answers the size it has now: at least size when it could grow,
 * always when it shrinks (it may keep the whole extent). */
bool islet_backend_resize(void *p, size_t old, size_t size) {
  if (xallocx(p, size, 0, MALLOCX_TCACHE_NONE) < size) return false;
  if (size > old)
    san_unpoison((char *)p + old, size - old);
  else
    san_poison((char *)p + size, old - size);
  return true;
}

#else

const char *islet_backend(void) {
  return "system";
}
const bool islet_backend_moves = true;

void islet_backend_clear(void *p, size_t n) { /* a fresh mapping is zeros */
  (void)p, (void)n;
}

int islet_backend_arena_new(unsigned *arena) {
  *arena = 0;
  return 0;
}

void islet_backend_arena_purge(unsigned arena) { /* its pages went back already */
  (void)arena;
}

void islet_backend_arena_release(unsigned arena) {
  (void)arena;
}

/* Address space islet holds without memory: a region's span is whole
 * granules, and a region given back stays reserved (PROT_NONE,
 * MAP_NORESERVE: no pages, no commit charge) instead of going back to the
 * kernel.  A large block's span is mapped whole, so it grows or shrinks in
 * place with no system call within it (the pages past its end are never
 * touched: no memory), and neighbouring spans make one kernel mapping (a
 * PROT_NONE tail per block would have halved how many large blocks fit
 * under vm.max_map_count).  Spans are mapped MAP_NORESERVE, as jemalloc
 * maps everything when the kernel overcommits (pages_boot, jemalloc 5.x):
 * under vm.overcommit_memory 0 or 1 the untouched tail of a span is then not
 * charged to the commit limit either (the kernel ignores the flag under 2).
 *
 * Why: the owner map answers per granule, and a destroyed interpreter's
 * tombstone stays in it, so a range that anyone else could map would make
 * their memory look like islet's: a wrapper that routes frees by
 * islet_contains (the CPython shim) would keep a block of the allocator it
 * wraps.  Held ranges are kept in a list, newest last, and a new region is
 * cut from the newest that fits, so the address space stays compact (page
 * tables and ASan's shadow are reused) and a reuse costs one mmap; a fresh
 * region is over-mapped and trimmed.  Every region is cut from the list
 * first, so held address space is reused before any is added. */
typedef struct {
  uintptr_t base;
  size_t len;
} span_t;
static span_t *held;
static size_t nheld, held_cap;

static size_t pages_up(size_t n) {
  return (n + 4095) & ~(size_t)4095;
}
static size_t granules_up(size_t n) {
  return (n + SEG_SIZE - 1) & ~(SEG_SIZE - 1);
}

/* An inaccessible mapping with no memory behind it: at a, or anywhere. */
static void *map_none(uintptr_t a, size_t len, int where) {
  return mmap((void *)a, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | where, -1,
              0);
}
static bool protect_none(uintptr_t a, size_t len) { /* drops the pages, keeps the range */
  return map_none(a, len, MAP_FIXED) != MAP_FAILED;
}
static bool commit(uintptr_t a, size_t len) {
  return mmap((void *)a, len, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != MAP_FAILED;
}

/* Joins both neighbours (a large block may want them all), and goes last:
 * the newest.  Widening one end leaves the other as it was, so one pass
 * finds both. */
static void hold(uintptr_t base, size_t len) {
  backend_acquire();
  for (size_t i = 0; i < nheld;) {
    span_t s = held[i];
    if (s.base + s.len != base && base + len != s.base) {
      i++;
      continue;
    }
    base = s.base < base ? s.base : base;
    len += s.len;
    held[i] = held[--nheld];
  }
  if (nheld == held_cap) {
    size_t cap = held_cap ? 2 * held_cap : 64;
    span_t *more = realloc(held, cap * sizeof *more);
    if (more) held = more, held_cap = cap;
  }
  if (nheld < held_cap) held[nheld++] = (span_t){base, len}; /* else: reserved, never reused */
  backend_release();
}

/* len bytes from the front of a held span: the newest that fits, or the one
 * that starts at at (when at is not 0). */
static uintptr_t unhold(size_t len, uintptr_t at) {
  uintptr_t got = 0;
  backend_acquire();
  for (size_t i = nheld; i-- > 0;) {
    span_t *s = &held[i];
    if (s->len < len || (at && s->base != at)) continue;
    got = s->base;
    s->base += len;
    s->len -= len;
    if (!s->len) *s = held[--nheld];
    break;
  }
  backend_release();
  return got;
}

/* A new span of len bytes, granule-aligned, from a fresh reservation of at
 * least RESERVE_MIN (over-mapped by a granule and trimmed), whose rest is
 * held: the next regions are cut next to it, so their mappings merge and a
 * new region costs one mmap. */
#define RESERVE_MIN ((size_t)64 << 20)
static uintptr_t reserve_fresh(size_t len) {
  size_t want = len > RESERVE_MIN ? len : RESERVE_MIN, span = want + SEG_SIZE;
  char *raw = map_none(0, span, 0);
  if (raw == MAP_FAILED) return 0;
  char *p = (char *)(((uintptr_t)raw + SEG_SIZE - 1) & ~(uintptr_t)(SEG_SIZE - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  if (raw + span > p + want) munmap(p + want, (size_t)(raw + span - (p + want)));
  if (want > len) hold((uintptr_t)p + len, want - len);
  return (uintptr_t)p;
}

/* The free len bytes at a, reserved for islet; false if anyone holds them. */
static bool claim(uintptr_t a, size_t len) {
  void *p = map_none(a, len, MAP_FIXED_NOREPLACE);
  if (p == MAP_FAILED) return false;
  if ((uintptr_t)p == a) return true;
  munmap(p, len); /* an old kernel took the flag for a hint */
  return false;
}

/* The range stays islet's: its tombstone may stand in the owner map.  If
 * the kernel cannot split the mapping, the memory goes back anyway. */
static void give_back(uintptr_t a, size_t len) {
  if (protect_none(a, len))
    hold(a, len);
  else
    munmap((void *)a, len);
}

void *islet_backend_map(unsigned arena, size_t size) {
  (void)arena;
  size_t span = granules_up(size);
  uintptr_t a = unhold(span, 0);
  if (!a) a = reserve_fresh(span);
  if (!a) return NULL;
  if (!commit(a, span)) {
    give_back(a, span);
    return NULL;
  }
  san_backend_acquire(&tsan_backend_token);
  return (void *)a;
}

void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  san_backend_release(&tsan_backend_token);
  give_back((uintptr_t)p, granules_up(size));
}

/* The granules at a, for a span that grows into them: held, or free. */
static bool extend(uintptr_t a, size_t len) {
  if (!unhold(len, a) && !claim(a, len)) return false;
  if (commit(a, len)) return true;
  give_back(a, len); /* a failed MAP_FIXED may have unmapped it */
  return false;
}

/* Within the span nothing changes but the pages a shrink drops; past it
 * the span takes the granules after it, or gives its last ones back. */
bool islet_backend_resize(void *p, size_t old, size_t size) {
  uintptr_t a = (uintptr_t)p;
  size_t o = pages_up(old), n = pages_up(size), ospan = granules_up(o), nspan = granules_up(n);
  if (nspan > ospan) return extend(a + ospan, nspan - ospan);
  if (nspan < ospan) give_back(a + nspan, ospan - nspan);
  size_t end = o < nspan ? o : nspan;
  if (n < end) madvise((void *)(a + n), end - n, MADV_DONTNEED);
  return true;
}

/* The kernel moves the page tables: nothing is copied or faulted in, and
 * the front of to's span is replaced in one step.  from's pages leave a
 * hole in its span, reserved again unless someone mapped there first. */
bool islet_backend_move(void *from, size_t old, void *to, size_t size) {
  uintptr_t a = (uintptr_t)from;
  size_t o = pages_up(old), span = granules_up(o);
  if (mremap(from, o, pages_up(size), MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
    return false;
  san_backend_release(&tsan_backend_token);
  if (claim(a, o))
    give_back(a, span);
  else if (span > o) /* from's map entries are gone: the rest may go too */
    munmap((void *)(a + o), span - o);
  return true;
}
#endif

/* Registered before islet's own handlers, so these run inside them.
 * jemalloc registers its own as it starts; started before these are, its
 * handlers run inside these.  libislet's own malloc is this jemalloc, so it
 * has started by now; the call makes sure of it. */
void islet_backend_atfork(void) {
#ifdef ISLET_BACKEND_JEMALLOC
  const char *version;
  size_t sz = sizeof version;
  mallctl("version", &version, &sz, NULL, 0);
#endif
  pthread_atfork(backend_acquire, backend_release, backend_release);
}

/* Where arenas and large blocks come from: jemalloc or the kernel.
 *
 * jemalloc backend: each interpreter gets its own jemalloc arena
 * (arenas.create), every region is taken with mallocx(MALLOCX_ARENA |
 * MALLOCX_TCACHE_NONE).  The thread cache stays off because it would hand
 * one arena's memory to another (jemalloc #1535), and mallocx is kept off
 * the small-object fast path, which islet serves from its own pages.
 * jemalloc is linked privately into libislet, so the host's malloc is not
 * replaced.  An ended interpreter's arena is emptied, purged and kept for
 * the next interpreter rather than destroyed: jemalloc 5.3 keeps 4 KiB of
 * metadata for every arenas.create + arena.<i>.destroy pair (measured: 1,000
 * pairs grow RSS by 3.6 MiB, 1,000 reuses by 0), and CPython embedders
 * create and end sub-interpreters by the thousand.
 *
 * system backend: aligned mmap/munmap, nothing shared with anyone.
 */
#include "internal.h"
#include "sanitize.h"
#include <string.h>
#include <sys/mman.h>

/* jemalloc synchronises reuse of freed memory internally, out of TSan's
 * sight: a region freed by one thread and handed to another would look like a
 * race.  Releasing and acquiring this token around backend calls tells TSan
 * what jemalloc's own locks guarantee. */
static char tsan_backend_token;

#ifdef ISLET_BACKEND_JEMALLOC
#include <jemalloc/jemalloc.h>

#include <pthread.h>

const char *islet_backend(void) {
  return "jemalloc";
}

/* Emptied arenas, process-wide like jemalloc's arena indices (at most
 * MALLOCX_ARENA_LIMIT = 4095 of them). */
static unsigned pool[4096];
static size_t npool;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

int islet_backend_arena_new(unsigned *arena) {
  pthread_mutex_lock(&pool_lock);
  bool reused = npool > 0;
  if (reused) *arena = pool[--npool];
  pthread_mutex_unlock(&pool_lock);
  size_t sz = sizeof *arena;
  return reused || !mallctl("arenas.create", arena, &sz, NULL, 0) ? 0 : -1;
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
 * touches a block it handed out, so those just stay allocated here). */
void islet_backend_arena_release(unsigned arena) {
  islet_backend_arena_purge(arena);
  pthread_mutex_lock(&pool_lock);
  if (npool < sizeof pool / sizeof pool[0]) pool[npool++] = arena;
  pthread_mutex_unlock(&pool_lock);
}

/* What islet gives back stays mapped in jemalloc, which only islet calls,
 * so ASan sees it as poisoned until jemalloc hands it out again: a use of a
 * freed large block is reported, not read silently.  (jemalloc itself is
 * not instrumented.) */
void *islet_backend_map(unsigned arena, size_t size, size_t align) {
  void *p = mallocx(size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE | MALLOCX_ALIGN(align));
  san_backend_acquire(&tsan_backend_token);
  if (p) san_unpoison(p, size);
  return p;
}

void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  san_poison(p, size);
  san_backend_release(&tsan_backend_token);
  dallocx(p, MALLOCX_TCACHE_NONE);
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

/* jemalloc may hand out memory islet gave back, with anything in it.  Its
 * regions are private anonymous mappings, so giving the pages to the kernel
 * makes them read as zeros, faulted in only when used. */
void islet_backend_clear(void *p, size_t n) {
  n = (n + 4095) & ~(size_t)4095;
  if (!dontneed_zeroes() || madvise(p, n, MADV_DONTNEED)) memset(p, 0, n);
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

void islet_backend_arena_purge(unsigned arena) { /* munmap gave it back already */
  (void)arena;
}

void islet_backend_arena_release(unsigned arena) {
  (void)arena;
}

/* The bases of the regions unmapped last: every region is SEG_SIZE-aligned,
 * so a new one is tried at the newest of them first, and a hit costs one
 * mmap.  The over-map's two trimming munmaps were a quarter of a lifecycle
 * fuzz run's time.  A miss (the hole is too small or was taken, or the
 * kernel predates MAP_FIXED_NOREPLACE) costs one failed mmap.  Reusing only
 * freed addresses keeps the address space compact, so page tables and
 * ASan's shadow are reused (a hint that walked down the address space grew
 * a fuzz run's RSS past 2 GiB).  A ring of FREED_MAX: a destroy frees many
 * regions at once. */
#define FREED_MAX 16
static uintptr_t freed[FREED_MAX];
static unsigned nfreed; /* pushes, modulo the ring */
static pthread_mutex_t freed_lock = PTHREAD_MUTEX_INITIALIZER;

static void freed_push(void *p) {
  pthread_mutex_lock(&freed_lock);
  freed[nfreed++ % FREED_MAX] = (uintptr_t)p;
  pthread_mutex_unlock(&freed_lock);
}

static char *freed_pop(void) {
  pthread_mutex_lock(&freed_lock);
  uintptr_t p = 0;
  if (nfreed) {
    p = freed[--nfreed % FREED_MAX];
    freed[nfreed % FREED_MAX] = 0;
  }
  pthread_mutex_unlock(&freed_lock);
  return (char *)p;
}

static void *map_at_freed(size_t size) {
  char *want = freed_pop();
  if (!want) return NULL;
  char *p = mmap(want, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (p != want) { /* an old kernel took the flag for a hint */
    munmap(p, size);
    return NULL;
  }
  return p;
}

/* Over-map by the alignment and trim both ends. */
static void *map_trimmed(size_t size, size_t align) {
  size_t span = size + align;
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  if (raw + span > p + size) munmap(p + size, (size_t)(raw + span - (p + size)));
  return p;
}

void *islet_backend_map(unsigned arena, size_t size, size_t align) {
  (void)arena;
  size = (size + 4095) & ~(size_t)4095;
  char *p = align == SEG_SIZE ? map_at_freed(size) : NULL;
  if (!p) p = map_trimmed(size, align);
  if (!p) return NULL;
  san_backend_acquire(&tsan_backend_token);
  return p;
}

void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  san_backend_release(&tsan_backend_token);
  munmap(p, (size + 4095) & ~(size_t)4095);
  if (((uintptr_t)p & (SEG_SIZE - 1)) == 0) freed_push(p);
}

bool islet_backend_resize(void *p, size_t old, size_t size) {
  return mremap(p, (old + 4095) & ~(size_t)4095, (size + 4095) & ~(size_t)4095, 0) != MAP_FAILED;
}

/* The kernel moves the page tables: nothing is copied or faulted in, and
 * the reserved range at to is replaced in one step. */
bool islet_backend_move(void *from, size_t old, void *to, size_t size) {
  old = (old + 4095) & ~(size_t)4095;
  size = (size + 4095) & ~(size_t)4095;
  if (mremap(from, old, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED) return false;
  san_backend_release(&tsan_backend_token);
  freed_push(from);
  return true;
}
#endif

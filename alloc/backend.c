/* Where arenas and large blocks come from: jemalloc or the kernel.
 *
 * jemalloc backend: each interpreter gets its own jemalloc arena
 * (arenas.create), every region is taken with mallocx(MALLOCX_ARENA |
 * MALLOCX_TCACHE_NONE) and teardown is one arena.<i>.destroy.  The thread
 * cache stays off because it would hand one arena's memory to another
 * (jemalloc #1535), and mallocx is kept off the small-object fast path, which
 * islet serves from its own pages.  jemalloc is linked privately into
 * libislet, so the host's malloc is not replaced.
 *
 * system backend: aligned mmap/munmap, nothing shared with anyone.
 */
#include "internal.h"
#include "sanitize.h"
#include <sys/mman.h>

/* jemalloc synchronises reuse of freed memory internally, out of TSan's
 * sight: a region freed by one thread and handed to another would look like a
 * race.  Releasing and acquiring this token around backend calls tells TSan
 * what jemalloc's own locks guarantee. */
static char tsan_backend_token;

#ifdef ISLET_BACKEND_JEMALLOC
#include <jemalloc/jemalloc.h>

const bool islet_backend_destroy_frees_all = true;
const char islet_backend_name[] = "jemalloc";

int islet_backend_arena_new(unsigned *arena) {
  size_t sz = sizeof *arena;
  return mallctl("arenas.create", arena, &sz, NULL, 0) ? -1 : 0;
}

void islet_backend_arena_destroy(unsigned arena) {
  char name[32];
  snprintf(name, sizeof name, "arena.%u.destroy", arena);
  san_backend_release(&tsan_backend_token);
  mallctl(name, NULL, NULL, NULL, 0);
}

void *islet_backend_map(unsigned arena, size_t size, size_t align) {
  void *p = mallocx(size, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE | MALLOCX_ALIGN(align));
  san_backend_acquire(&tsan_backend_token);
  return p;
}

void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  (void)size;
  san_backend_release(&tsan_backend_token);
  dallocx(p, MALLOCX_TCACHE_NONE);
}

#else

const bool islet_backend_destroy_frees_all = false;
const char islet_backend_name[] = "system";

int islet_backend_arena_new(unsigned *arena) {
  *arena = 0;
  return 0;
}

void islet_backend_arena_destroy(unsigned arena) {
  (void)arena;
}

/* Over-map by the alignment and trim both ends. */
void *islet_backend_map(unsigned arena, size_t size, size_t align) {
  (void)arena;
  size = (size + 4095) & ~(size_t)4095;
  size_t span = size + align;
  char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  if (raw + span > p + size) munmap(p + size, (size_t)(raw + span - (p + size)));
  san_backend_acquire(&tsan_backend_token);
  return p;
}

void islet_backend_unmap(unsigned arena, void *p, size_t size) {
  (void)arena;
  san_backend_release(&tsan_backend_token);
  munmap(p, (size + 4095) & ~(size_t)4095);
}
#endif

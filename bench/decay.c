/* (9) RSS after a peak: how much of a heap's peak an allocator still holds
 * once 99 % of it is freed, and a few seconds later.
 *
 * Why: a CPython process often builds a big heap once (an import, a large
 * request, a data load), drops it and keeps a scattered 1 %; whether the
 * memory of the rest goes back to the kernel decides its RSS from then on.
 * Allocators that purge free memory after a delay (jemalloc's decay,
 * mimalloc's purge delay) need time and some traffic to do it, so RSS is
 * read again after a stretch of small steady work: 1,000 blocks allocated,
 * written and freed every 10 ms, a program ticking over.
 *
 * Why a forked child per allocator: the memory an allocator keeps after one
 * run would be reused by the next without showing in its RSS.  The child's
 * own arrays come from mmap, resident before the baseline, so that no
 * allocator under test holds them and they count for none.
 */
#include "bench.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEED 0xdeca7u
#define KEEP_PERCENT 1   /* of the peak's blocks, kept to the end */
#define TICK_NS 10000000 /* 10 ms */
#define TICK_BLOCKS 1000 /* allocated and freed per tick */

typedef struct {
  const alloc_vt_t *vt;
  size_t bytes;
  double idle_s;
} decay_arg_t;

/* Resident memory from /proc/self/statm, read without allocating. */
static double rss_mib(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  unsigned long pages;
  if (n <= 0) die("cannot read /proc/self/statm");
  buf[n] = '\0';
  if (sscanf(buf, "%*u %lu", &pages) != 1) die("cannot parse /proc/self/statm");
  return (double)pages * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void *region(size_t bytes) {
  void *p =
      mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) die("decay: mmap of %zu bytes failed", bytes);
  return p;
}

/* How many blocks of the mix, drawn from SEED, make up bytes. */
static size_t count_blocks(size_t bytes) {
  uint64_t rng = SEED;
  size_t n = 0;
  for (size_t total = 0; total < bytes; n++) total += mix_size(&rng);
  return n;
}

/* A block written through, so that all of its pages are resident. */
static void *block(const alloc_vt_t *vt, void *heap, size_t size) {
  void *p = vt->malloc(heap, size);
  if (!p) die("%s: allocation failed", vt->name);
  memset(p, 0xa5, size);
  return p;
}

static void next_tick(struct timespec *t) {
  t->tv_nsec += TICK_NS;
  if (t->tv_nsec >= 1000000000) {
    t->tv_nsec -= 1000000000;
    t->tv_sec++;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR) continue;
}

static void tick_over(const alloc_vt_t *vt, void *heap, double seconds, uint64_t *rng) {
  void *p[TICK_BLOCKS];
  size_t ticks = (size_t)(seconds * 1e9 / TICK_NS + 0.5);
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  for (size_t k = 0; k < ticks; k++) {
    for (size_t i = 0; i < TICK_BLOCKS; i++) p[i] = block(vt, heap, mix_size(rng));
    for (size_t i = 0; i < TICK_BLOCKS; i++) vt->free(heap, p[i]);
    next_tick(&t);
  }
}

static void decay_child(void *arg, void *out) {
  const decay_arg_t *a = arg;
  decay_t *d = out;
  size_t n = count_blocks(a->bytes), kept = n * KEEP_PERCENT / 100;
  void **blocks = region(n * sizeof *blocks);
  uint32_t *order = region(n * sizeof *order);
  shuffle(order, n, SEED + 1); /* a stream of its own, not the sizes' */
  void *heap = a->vt->setup();
  double base = rss_mib();
  uint64_t rng = SEED;
  for (size_t i = 0; i < n; i++) blocks[i] = block(a->vt, heap, mix_size(&rng));
  d->blocks = n;
  d->peak_mib = rss_mib() - base;
  for (size_t i = 0; i < n - kept; i++) a->vt->free(heap, blocks[order[i]]);
  d->freed_mib = rss_mib() - base;
  tick_over(a->vt, heap, a->idle_s, &rng);
  d->idle_mib = rss_mib() - base;
}

decay_t decay_rss(const alloc_vt_t *vt, size_t bytes, double idle_s) {
  decay_arg_t arg = {vt, bytes, idle_s};
  decay_t d = {0};
  in_child(vt->name, decay_child, &arg, &d, sizeof d);
  return d;
}

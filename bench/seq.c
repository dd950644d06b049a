/* The size mix, the pregenerated operation sequence and small helpers.
 *
 * Why pregenerated: every allocator must see exactly the same requests in
 * the same order, and drawing random numbers in the timed loop would cost
 * about as much as the allocation itself.  Sizes and slot indices are drawn
 * once, from a fixed seed, before anything is timed.
 *
 * The mix imitates what a CPython process asks its object allocator for
 * (everything at most 512 B, pymalloc's limit; sizes are what CPython
 * requests, GC header included): mostly small objects, a tail of containers'
 * item arrays and bigger instances.  Within a band every byte size is
 * equally likely.
 */
#include "bench.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  unsigned lo, hi, weight; /* sizes lo..hi, weight in percent */
} band_t;

static const band_t bands[] = {
    {16, 32, 25},   /* int, float, cell, small bytes */
    {33, 64, 35},   /* short str, 1-3 tuples, bound methods, list heads */
    {65, 128, 22},  /* instances, dicts, longer str and tuples */
    {129, 256, 11}, /* small containers' item arrays */
    {257, 512, 7},  /* dict key tables, bigger item arrays */
};
#define NBANDS (sizeof bands / sizeof *bands)

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) { /* n < 2^32 */
  return (size_t)(((rng_next(s) >> 32) * n) >> 32);
}

size_t mix_size(uint64_t *rng) {
  size_t r = rng_below(rng, 100);
  const band_t *b = bands;
  while (r >= b->weight) r -= b++->weight;
  return b->lo + rng_below(rng, b->hi - b->lo + 1);
}

double mix_mean(void) {
  double m = 0;
  for (size_t i = 0; i < NBANDS; i++) m += bands[i].weight * (bands[i].lo + bands[i].hi) / 200.0;
  return m;
}

void mix_describe(char *buf, size_t len) {
  int n = 0;
  for (size_t i = 0; i < NBANDS && n >= 0 && (size_t)n < len; i++)
    n += snprintf(buf + n, len - (size_t)n, "%s%u-%u B %u%%", i ? ", " : "", bands[i].lo,
                  bands[i].hi, bands[i].weight);
}

void seq_init(seq_t *seq, size_t nslots, size_t nops, uint64_t seed) {
  if (nslots == 0 || nslots > UINT32_MAX) die("bad slot count %zu", nslots);
  seq->nslots = nslots;
  seq->nops = nops;
  seq->fill_size = xmalloc(nslots * sizeof *seq->fill_size);
  seq->size = xmalloc(nops * sizeof *seq->size);
  seq->slot = xmalloc(nops * sizeof *seq->slot);
  uint64_t rng = seed;
  for (size_t i = 0; i < nslots; i++) seq->fill_size[i] = (uint16_t)mix_size(&rng);
  for (size_t i = 0; i < nops; i++) {
    seq->size[i] = (uint16_t)mix_size(&rng);
    seq->slot[i] = (uint32_t)rng_below(&rng, nslots);
  }
}

void seq_fini(seq_t *seq) {
  free(seq->fill_size);
  free(seq->size);
  free(seq->slot);
}

void shuffle(uint32_t *v, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) v[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
    size_t j = rng_below(&seed, i);
    uint32_t t = v[i - 1];
    v[i - 1] = v[j];
    v[j] = t;
  }
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("islet-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

void in_child(const char *what, void (*fn)(void *arg, void *out), void *arg, void *out,
              size_t len) {
  int fd[2];
  if (pipe(fd)) die("pipe failed");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    close(fd[0]);
    allocators_after_fork();
    fn(arg, out);
    _exit(write(fd[1], out, len) == (ssize_t)len ? 0 : 1);
  }
  close(fd[1]);
  ssize_t n = read(fd[0], out, len);
  close(fd[0]);
  int status;
  waitpid(pid, &status, 0);
  if (n != (ssize_t)len || !WIFEXITED(status) || WEXITSTATUS(status))
    die("%s: the forked child failed", what);
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) die("out of memory (%zu x %zu bytes)", n, size);
  return p;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double median(double *v, size_t n) {
  if (n == 0) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

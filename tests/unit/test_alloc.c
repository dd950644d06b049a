/* Allocation on one interpreter: sizes, classes, alignment, calloc, realloc,
 * zero sizes, usable size, stats. */
#include "common.h"
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

TestSuite(alloc, .init = setup_default, .fini = teardown_runtime);

Test(alloc, every_size_up_to_64k_is_usable_and_distinct) {
  islet_interp_t *in = islet_interp_new(rt);
  static void *p[65537];
  for (size_t n = 0; n <= 65536; n += (n < 1024 ? 1 : 97)) {
    p[n] = islet_malloc(in, n);
    cr_assert_not_null(p[n], "malloc(%zu)", n);
    cr_assert_eq((uintptr_t)p[n] % 16, 0, "malloc(%zu) not 16-aligned", n);
    cr_assert_geq(islet_usable_size(p[n]), n ? n : 1);
    memset(p[n], 0xab, n);
    cr_assert_eq(islet_owner(p[n]), in);
  }
  for (size_t n = 0; n <= 65536; n += (n < 1024 ? 1 : 97)) islet_free(in, p[n]);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0);
  cr_assert_eq(s.bytes, 0);
  expect_no_event();
}

Test(alloc, size_classes_are_monotonic_and_cover_small_max) {
  size_t prev = 0;
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++) {
    cr_assert_gt(islet_class_size(c), prev);
    prev = islet_class_size(c);
  }
  cr_assert_eq(prev, ISLET_SMALL_MAX);
  cr_assert_eq(islet_class_size(ISLET_SIZE_CLASSES), 0);
}

Test(alloc, blocks_never_overlap) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { N = 20000 };
  static unsigned char *p[N];
  static size_t len[N];
  for (int i = 0; i < N; i++) {
    len[i] = 1 + (size_t)(i * 7919) % 700;
    p[i] = islet_malloc(in, len[i]);
    memset(p[i], i & 0xff, len[i]);
  }
  for (int i = 0; i < N; i += 2) islet_free(in, p[i]);
  for (int i = 0; i < N; i += 2) {
    p[i] = islet_malloc(in, len[i]);
    memset(p[i], i & 0xff, len[i]);
  }
  for (int i = 0; i < N; i++)
    for (size_t k = 0; k < len[i]; k++) cr_assert_eq(p[i][k], i & 0xff, "block %d clobbered", i);
  for (int i = 0; i < N; i++) islet_free(in, p[i]);
}

/* A freed block is the next one of its size while its page was not full
 * (it is in cache); a free into a full page leaves the current page
 * current, which would otherwise give out that one block and then find its
 * page full again.  Pages that were full serve again once the current one
 * is full, before any fresh page, the one waiting longest first (by then
 * more of its blocks may be free). */
Test(alloc, a_free_into_a_full_page_leaves_the_current_page_current) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { N = 400, SIZE = 1000 };
  void *p[N];
  uintptr_t page[3]; /* 64 KiB pages: the first two fill, the third is current */
  int n = 0, first[3];
  p[n] = islet_malloc(in, SIZE);
  for (int k = 0; k < 3; k++) { /* p[n]: the first block of page k */
    page[k] = (uintptr_t)p[n] >> 16;
    first[k] = n++;
    while (k < 2 && n < N && (uintptr_t)(p[n] = islet_malloc(in, SIZE)) >> 16 == page[k]) n++;
    cr_assert_lt(n, N);
  }
  p[n++] = islet_malloc(in, SIZE); /* the current page has two blocks out */
  islet_free(in, p[n - 1]);
  cr_assert_eq(islet_malloc(in, SIZE), p[n - 1], "the block just freed, its page not full");
  void *a = p[first[0] + 3], *b = p[first[1] + 3];
  islet_free(in, a);
  islet_free(in, b);
  int from = n;
  while (n < N && (uintptr_t)(p[n] = islet_malloc(in, SIZE)) >> 16 == page[2]) n++;
  cr_assert_lt(n, N);
  cr_assert_gt(n - from, 50, "the current page served first, to its last block");
  cr_assert_eq(p[n], a, "then the page that was full first, before a fresh one");
  cr_assert_eq(islet_malloc(in, SIZE), b, "then the other");
  for (int i = 0; i < n; i++) islet_free(in, p[i]); /* a and b are in p again */
  cr_assert_eq(live_blocks(in), 0);
  expect_no_event();
}

Test(alloc, zero_size_gives_unique_minimal_blocks) {
  islet_interp_t *in = islet_interp_new(rt);
  void *a = islet_malloc(in, 0), *b = islet_malloc(in, 0);
  cr_assert(a && b && a != b);
  cr_assert_geq(islet_usable_size(a), 1);
  void *c = islet_calloc(in, 0, 8), *d = islet_calloc(in, 8, 0);
  cr_assert(c && d && c != d);
  islet_free(in, a);
  islet_free(in, b);
  islet_free(in, c);
  islet_free(in, d);
  islet_free(in, NULL); /* a no-op, as free(NULL) */
  expect_no_event();
}

Test(alloc, calloc_zeroes_reused_memory) {
  islet_interp_t *in = islet_interp_new(rt);
  for (int round = 0; round < 3; round++) {
    unsigned char *p = islet_malloc(in, 300);
    memset(p, 0xff, 300);
    islet_free(in, p);
    unsigned char *q = islet_calloc(in, 30, 10);
    for (int i = 0; i < 300; i++) cr_assert_eq(q[i], 0);
    islet_free(in, q);
  }
  unsigned char *big = islet_calloc(in, 1, 100000);
  for (int i = 0; i < 100000; i++) cr_assert_eq(big[i], 0);
  islet_free(in, big);
}

Test(alloc, calloc_and_aligned_overflow_return_null) {
  islet_interp_t *in = islet_interp_new(rt);
  errno = 0;
  cr_assert_null(islet_calloc(in, SIZE_MAX / 2, 3));
  cr_assert_eq(islet_last_error(), ISLET_EOVERFLOW);
  cr_assert_eq(errno, ENOMEM);
  cr_assert_null(islet_malloc(in, SIZE_MAX - 8));
  cr_assert_eq(islet_last_error(), ISLET_EOVERFLOW);
  cr_assert_null(islet_aligned_alloc(in, 64, SIZE_MAX - 100));
  cr_assert_eq(islet_last_error(), ISLET_EOVERFLOW);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0);
}

Test(alloc, realloc_keeps_contents_and_moves_across_classes) {
  islet_interp_t *in = islet_interp_new(rt);
  unsigned char *p = islet_realloc(in, NULL, 10); /* realloc(NULL) is malloc */
  for (int i = 0; i < 10; i++) p[i] = (unsigned char)i;
  size_t sizes[] = {12, 100, 1000, 20000, 300000, 50, 10};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    p = islet_realloc(in, p, sizes[k]);
    cr_assert_not_null(p);
    for (int i = 0; i < 10; i++) cr_assert_eq(p[i], i, "byte %d after realloc to %zu", i, sizes[k]);
  }
  islet_free(in, p);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0);
  cr_assert_eq(s.large_blocks, 0);
}

/* A small block stays where it is while the new size is at least half its
 * usable size (its room; under ASan, the size last asked for), and moves
 * otherwise, the old block then free and off the books. */
Test(alloc, realloc_keeps_a_small_block_while_half_of_it_is_used) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 100);
  size_t room = islet_usable_size(p);
  strcpy(p, "kept");
  cr_assert_eq(islet_realloc(in, p, room), p);
  cr_assert_eq(islet_realloc(in, p, room / 2), p);
  char *q = islet_realloc(in, p, islet_usable_size(p) / 2 - 1);
  cr_assert_neq(q, p);
  cr_assert_str_eq(q, "kept");
  cr_assert_eq(islet_usable_size(p), 0, "the old block is free");
  char *r = islet_realloc(in, q, room + 1);
  cr_assert_neq(r, q);
  cr_assert_str_eq(r, "kept");
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 1);
  islet_free(in, r);
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0);
  cr_assert_eq(s.bytes, 0);
  expect_no_event();
}

Test(alloc, realloc_to_zero_gives_minimal_block_and_frees_old) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 5000);
  void *q = islet_realloc(in, p, 0);
  cr_assert_not_null(q);
  cr_assert_neq(p, q);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 1);
  islet_free(in, q);
}

Test(alloc, realloc_to_zero_of_a_one_byte_block_stays_usable) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 1);
  p = islet_realloc(in, p, 0); /* found by fuzz/lifecycle under ASan */
  cr_assert_not_null(p);
  cr_assert_geq(islet_usable_size(p), 1);
  p = islet_realloc(in, p, 1777);
  cr_assert_not_null(p, "%s", islet_strerror(islet_last_error()));
  islet_free(in, p);
  expect_no_event();
}

/* A large block grows in place when the space after it is free (it starts
 * on a 4 MiB granule); either way contents, stats and the limit hold. */
Test(alloc, realloc_grows_large_blocks_keeping_contents_stats_and_limit) {
  islet_interp_t *in = islet_interp_new(rt);
  size_t size = 100000;
  unsigned char *p = islet_malloc(in, size);
  memset(p, 0x5a, size);
  int stayed = 0;
  for (size_t next = size + 65536; next <= (size_t)6 << 20; next += 65536) {
    unsigned char *q = islet_realloc(in, p, next);
    cr_assert_not_null(q);
    stayed += q == p;
    cr_assert_eq(q[0], 0x5a);
    cr_assert_eq(q[size - 1], 0x5a, "the old end of the block after growing to %zu", next);
    memset(q + size, 0x5a, next - size);
    p = q;
    size = next;
  }
  islet_stats_t st;
  islet_interp_stats(in, &st);
  cr_assert_eq(st.blocks, 1);
  cr_assert(st.bytes >= size && st.bytes < size + 4096, "bytes %zu for one block of %zu", st.bytes,
            size); /* its usable size: whole pages after a header */
  cr_assert(islet_contains(p + size - 1), "every granule of the block is registered");
  cr_log_info("%d of the growth steps stayed in place", stayed);
  islet_interp_set_limit(in, st.bytes + 100000);
  cr_assert_null(islet_realloc(in, p, size + ((size_t)1 << 20)), "growing past the limit");
  cr_assert_eq(islet_last_error(), ISLET_ELIMIT);
  cr_assert_eq(p[size - 1], 0x5a, "a failed realloc keeps the block");
  islet_free(in, p);
}

/* Blocked growth: the system backend moves the pages (mremap), so the old
 * and new sizes never need to fit under the limit together.  jemalloc
 * grows in place or copies, and a copy is refused by the limit. */
Test(alloc, realloc_of_a_blocked_large_block_moves_its_pages_on_the_system_backend) {
  islet_interp_t *in = islet_interp_new(rt);
  /* it fills its granule, so growing needs the next one */
  size_t granule = (size_t)4 << 20, size = granule - 4096, next = granule + size / 2;
  unsigned char *p = islet_malloc(in, size);
  memset(p, 0x3c, size);
  bool sys = !strcmp(islet_backend(), "system");
  uintptr_t end = ((uintptr_t)p + islet_usable_size(p) + 4095) & ~(uintptr_t)4095;
  char *wall = NULL; /* the next region is cut right after p's */
  islet_stats_t st;
  islet_interp_stats(in, &st);
  size_t p_bytes = st.bytes;
  if (sys) {
    cr_assert_eq(end % granule, 0);
    wall = islet_malloc(in, 100000);
    cr_assert_eq((uintptr_t)wall / granule, end / granule);
  }
  islet_interp_stats(in, &st);
  size_t wall_bytes = st.bytes - p_bytes;
  islet_interp_set_limit(in, st.bytes + next - size / 2); /* a copy would need size + next */
  unsigned char *q = islet_realloc(in, p, next);
  if (!sys) {
    cr_assert(q == p || (!q && islet_last_error() == ISLET_ELIMIT), "in place, or no copy");
    q = p;
  } else {
    cr_assert_not_null(q, "%s", islet_strerror(islet_last_error()));
    cr_assert_neq(q, p, "the space after the block is taken");
    cr_assert_null(islet_owner(p), "the old address is no islet block any more");
    cr_assert_eq(islet_owner(q), in);
    cr_assert_geq(islet_usable_size(q), next);
    memset(q + size, 0x3c, next - size);
    islet_interp_stats(in, &st);
    cr_assert_eq(st.blocks, 2);
    size_t want = next + wall_bytes;
    cr_assert(st.bytes >= want && st.bytes < want + 4096, "bytes %zu", st.bytes);
    cr_assert_eq(st.limit_hits, 0);
  }
  islet_free(in, wall);
  cr_assert(q[0] == 0x3c && q[size - 1] == 0x3c, "contents kept");
  islet_free(in, q);
  expect_no_event();
}

/* Below half its size, a block that stays large is cut where it is: its
 * address stays, its stats drop, and its tail is no longer islet's. */
Test(alloc, realloc_shrinks_a_large_block_in_place) {
  islet_interp_t *in = islet_interp_new(rt);
  size_t size = (size_t)8 << 20, small = 100000;
  unsigned char *p = islet_malloc(in, size);
  memset(p, 0x6d, size);
  unsigned char *q = islet_realloc(in, p, small);
  cr_assert_eq(q, p, "shrunk in place");
  cr_assert_eq(q[small - 1], 0x6d);
  cr_assert_geq(islet_usable_size(q), small);
  cr_assert_lt(islet_usable_size(q), small + 4096);
  islet_stats_t st;
  islet_interp_stats(in, &st);
  cr_assert(st.bytes >= small && st.bytes < small + 4096, "bytes %zu", st.bytes);
  cr_assert_not(islet_contains(p + ((size_t)6 << 20)), "the granules past the end left the map");
  cr_assert(islet_contains(p + small - 1));
  islet_free(in, q);
  expect_no_event();
}

static int overcommit_mode(void) {
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = -1;
  if (f && fscanf(f, "%d", &mode) != 1) mode = -1;
  if (f) fclose(f);
  return mode;
}

/* Writable and MAP_NORESERVE ("nr"): the pages a block never touches are
 * not charged to the commit limit (kernel overcommit modes 0 and 1). */
static void expect_uncharged(const void *p, const char *what) {
  char flags[512];
  vma_flags(p, flags, sizeof flags);
  cr_assert(strstr(flags, " wr"), "%s at %p: a writable mapping, flags '%s'", what, p, flags);
  cr_assert(strstr(flags, " nr"), "%s at %p: charged to the commit limit, flags '%s'", what, p,
            flags);
}

Test(alloc, spans_are_not_charged_to_the_commit_limit) {
  if (overcommit_mode() == 2) cr_skip_test("vm.overcommit_memory=2 charges every mapping");
  islet_interp_t *in = islet_interp_new(rt);
  char *small = islet_malloc(in, 100), *large = islet_malloc(in, 100000);
  expect_uncharged(small, "a small block's segment");
  expect_uncharged(large, "a large block");
  large = islet_realloc(in, large, (size_t)9 << 20); /* past its first granule */
  cr_assert(large);
  expect_uncharged(large + ((size_t)9 << 20) - 1, "a grown large block's end");
  islet_free(in, small);
  islet_free(in, large);
  expect_no_event();
}

Test(alloc, realloc_overflow_keeps_the_block) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 32);
  strcpy(p, "still here");
  cr_assert_null(islet_realloc(in, p, SIZE_MAX - 4));
  cr_assert_eq(islet_last_error(), ISLET_EOVERFLOW);
  cr_assert_str_eq(p, "still here");
  islet_free(in, p);
  expect_no_event();
}

Test(alloc, aligned_alloc_honours_alignment) {
  islet_interp_t *in = islet_interp_new(rt);
  for (size_t a = 1; a <= ISLET_MAX_ALIGN; a <<= 1) {
    size_t sizes[] = {1, 24, 100, 5000, 70000};
    for (size_t k = 0; k < 5; k++) {
      void *p = islet_aligned_alloc(in, a, sizes[k]);
      cr_assert_not_null(p, "aligned_alloc(%zu, %zu)", a, sizes[k]);
      cr_assert_eq((uintptr_t)p % a, 0, "aligned_alloc(%zu, %zu) = %p", a, sizes[k], p);
      memset(p, 1, sizes[k]);
      cr_assert_eq(islet_owner(p), in);
      islet_free(in, p);
    }
  }
  void *z = islet_aligned_alloc(in, 64, 0); /* zero size: a unique, usable block */
  cr_assert_not_null(z);
  cr_assert_geq(islet_usable_size(z), 1);
  islet_free(in, z);
  cr_assert_null(islet_aligned_alloc(in, 24, 10));
  cr_assert_eq(islet_last_error(), ISLET_EINVAL);
  cr_assert_null(islet_aligned_alloc(in, 0, 10));
  cr_assert_null(islet_aligned_alloc(in, ISLET_MAX_ALIGN * 2, 10));
  cr_assert_eq(islet_last_error(), ISLET_EINVAL);
  expect_no_event();
}

Test(alloc, stats_track_bytes_blocks_and_peaks) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = islet_malloc(in, 64);
  void *big = islet_malloc(in, 1 << 20);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 101);
  cr_assert_geq(s.bytes, 100 * 64 + (1 << 20));
  cr_assert_eq(s.large_blocks, 1);
  cr_assert_eq(s.allocs, 101);
  cr_assert_geq(s.segments, 1);
  cr_assert_geq(s.mapped, s.bytes);
  size_t peak = s.bytes;
  for (int i = 0; i < 100; i++) islet_free(in, p[i]);
  islet_free(in, big);
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0);
  cr_assert_eq(s.bytes, 0);
  cr_assert_eq(s.bytes_peak, peak);
  cr_assert_eq(s.blocks_peak, 101);
  cr_assert_eq(s.large_blocks, 0);
}

/* Peaks are exact through growth, shrinking and regrowth, with a limit
 * below, at and above the heap's bytes: after every operation the peaks
 * are the largest bytes and blocks seen so far. */
Test(alloc, peaks_are_exact_through_random_growth_and_limits) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { N = 4096, OPS = 60000 };
  static void *live[N];
  size_t nlive = 0, bytes_peak = 0, blocks_peak = 0;
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (int op = 0; op < OPS; op++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    unsigned r = (unsigned)(x >> 33);
    if (op % 10000 == 5000) { /* a limit near the bytes in use: below, at or above */
      islet_stats_t s;
      islet_interp_stats(in, &s);
      size_t limits[] = {s.bytes / 2, s.bytes, s.bytes + 4096, 0};
      islet_interp_set_limit(in, limits[(op / 10000) % 4]);
    }
    bool grow = (op / 7000) % 2 == 0 ? r % 3 != 0 : r % 3 == 0; /* phases of growth and decline */
    if (nlive && (!grow || nlive == N)) {
      size_t i = r % nlive;
      islet_free(in, live[i]);
      live[i] = live[--nlive];
    } else {
      size_t size = r % 64 == 0 ? 3000 + r % 70000 : 1 + r % 600;
      void *p = islet_malloc(in, size);
      if (p) live[nlive++] = p;
    }
    islet_stats_t s;
    islet_interp_stats(in, &s);
    cr_assert_eq(s.blocks, nlive);
    if (s.bytes > bytes_peak) bytes_peak = s.bytes;
    if (s.blocks > blocks_peak) blocks_peak = s.blocks;
    cr_assert_eq(s.bytes_peak, bytes_peak, "op %d", op);
    cr_assert_eq(s.blocks_peak, blocks_peak, "op %d", op);
  }
  islet_interp_set_limit(in, 0);
  while (nlive) islet_free(in, live[--nlive]);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.bytes, 0);
  cr_assert_eq(s.bytes_peak, bytes_peak);
}

Test(alloc, stats_json_names_every_field) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 10);
  char buf[1024] = {0}, bytes[64];
  FILE *f = fmemopen(buf, sizeof buf - 1, "w");
  cr_assert_eq(islet_interp_stats_json(in, f), 0);
  fclose(f);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  snprintf(bytes, sizeof bytes, "\"bytes\":%zu,", s.bytes);
  const char *keys[] = {"\"id\":",           bytes,        "\"blocks\":1,", "\"remote_pending\":0,",
                        "\"limit_hits\":0,", "\"mapped\":"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
    cr_assert_not_null(strstr(buf, keys[k]), "%s missing in %s", keys[k], buf);
  islet_free(in, p);
}

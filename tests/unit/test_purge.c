/* Purging: an ended heap keeps resident only the OS pages that hold a live
 * block, and a live heap gives free OS pages back after its purge delay.
 * Residency is read with mincore. */
#include "common.h"
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

TestSuite(purge, .fini = teardown_runtime);

#define OS_PAGE 4096u
#define PAGE ((uintptr_t)64 << 10)
#define SEG ((uintptr_t)4 << 20)
#define NBLOCKS 40960 /* 40 pages of 64-byte blocks (more under ASan's redzones) */
#define KEEP_EVERY 256

static void *blocks[NBLOCKS];

/* Every KEEP_EVERY-th block of the first quarter stays: a quarter of those
 * pages' OS pages keep a block, and the later pages empty whole. */
static bool is_kept(size_t i) {
  return i % KEEP_EVERY == 0 && i < NBLOCKS / 4;
}

/* The 64 KiB page of p. */
static uintptr_t page_base(const void *p) {
  return (uintptr_t)p & ~(PAGE - 1);
}

/* Resident OS pages in [p, p + len), p page-aligned. */
static size_t resident(uintptr_t p, size_t len) {
  unsigned char vec[(SEG / OS_PAGE)];
  size_t n = len / OS_PAGE;
  cr_assert(n <= sizeof vec);
  cr_assert_eq(mincore((void *)p, len, vec), 0);
  size_t r = 0;
  for (size_t i = 0; i < n; i++) r += vec[i] & 1;
  return r;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Resident OS pages of the 64 KiB pages the blocks lie in, and how many OS
 * pages the kept ones (written whole) touch.  No islet call here: one that
 * reads a bitmap maps the kernel's zero page there, which mincore counts
 * (RSS does not). */
static void residency(size_t *in_pages, size_t *kept_os) {
  uintptr_t pages[NBLOCKS / 16], os[2 * (NBLOCKS / KEEP_EVERY)];
  size_t np = 0, nos = 0;
  for (size_t i = 0; i < NBLOCKS; i++) {
    uintptr_t pg = page_base(blocks[i]);
    if (!np || pages[np - 1] != pg) pages[np++] = pg; /* allocated page by page */
    if (!is_kept(i)) continue;
    os[nos++] = (uintptr_t)blocks[i] / OS_PAGE;
    os[nos++] = ((uintptr_t)blocks[i] + 63) / OS_PAGE;
  }
  qsort(pages, np, sizeof *pages, cmp_ptr);
  qsort(os, nos, sizeof *os, cmp_ptr);
  *in_pages = 0;
  for (size_t i = 0; i < np; i++)
    if (!i || pages[i] != pages[i - 1]) *in_pages += resident(pages[i], PAGE);
  *kept_os = 0;
  for (size_t i = 0; i < nos; i++) *kept_os += !i || os[i] != os[i - 1];
}

/* NBLOCKS 64-byte blocks written whole, then all but the kept ones freed.
 * Returns the resident OS pages right after the frees. */
static size_t peak_then_free(islet_interp_t *in) {
  for (size_t i = 0; i < NBLOCKS; i++) {
    blocks[i] = islet_malloc(in, 64);
    cr_assert_not_null(blocks[i]);
    memset(blocks[i], 0xab, 64);
  }
  for (size_t i = 0; i < NBLOCKS; i++)
    if (!is_kept(i)) islet_free(in, blocks[i]);
  size_t res, kept;
  residency(&res, &kept);
  return res;
}

static size_t kept_os_pages(void) {
  size_t res, kept;
  residency(&res, &kept);
  return kept;
}

static void expect_only_kept_resident(void) {
  size_t res, kept;
  residency(&res, &kept);
  cr_assert_eq(res, kept, "%zu OS pages resident, %zu hold a live block", res, kept);
}

static void expect_kept_intact(void) {
  for (size_t i = 0; i < NBLOCKS / 4; i += KEEP_EVERY)
    for (int j = 0; j < 64; j++) cr_assert_eq(((unsigned char *)blocks[i])[j], 0xab);
}

/* The segment's header, descriptors and bitmaps (its first 128 KiB). */
static size_t meta_resident(void) {
  return resident((uintptr_t)blocks[0] & ~(SEG - 1), 128 << 10);
}

Test(purge, an_orphan_keeps_only_the_os_pages_of_its_live_blocks) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_ORPHAN, .reclaim_inline = 1});
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  unsigned id = islet_interp_id(a);
  size_t before = peak_then_free(a);
  size_t meta_before = meta_resident();
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert(r.orphaned);
  expect_only_kept_resident();
  cr_assert_lt(meta_resident(), meta_before, "the bitmaps of free pages went back");
  cr_assert_leq(meta_resident(), 3, "the header and the live rows of the pages in use: %zu",
                meta_resident());
  cr_assert_gt(before, 10 * kept_os_pages());
  expect_kept_intact();
  /* everything a live block needs still works after the purge */
  cr_assert_geq(islet_usable_size(blocks[KEEP_EVERY]), 64);
  cr_assert_eq(islet_owner(blocks[KEEP_EVERY]), a);
  islet_free(b, blocks[0]);
  expect_no_event();
  cr_assert_eq(islet_usable_size(blocks[0]), 0);
  islet_free(b, blocks[0]);
  expect_one_event(ISLET_EDOUBLE_FREE, blocks[0], id);
  islet_free_any(blocks[KEEP_EVERY]);
  expect_no_event();
  blocks[0] = blocks[KEEP_EVERY] = blocks[2 * KEEP_EVERY]; /* the freed ones count no more */
  expect_only_kept_resident();
  for (size_t i = 2 * KEEP_EVERY; i < NBLOCKS / 4; i += KEEP_EVERY) islet_free(b, blocks[i]);
  expect_no_event();
  islet_interp_destroy(b, NULL);
}

/* All of a's blocks again, each distinct, none reported. */
static void reuse_everything(islet_interp_t *in) {
  void **more = malloc(NBLOCKS * sizeof *more);
  for (size_t i = 0; i < NBLOCKS; i++) {
    more[i] = islet_malloc(in, 64);
    cr_assert_not_null(more[i]);
    memset(more[i], 0xcd, 64);
  }
  expect_no_event();
  expect_kept_intact();
  qsort(more, NBLOCKS, sizeof *more, cmp_ptr);
  for (size_t i = 1; i < NBLOCKS; i++) cr_assert_neq(more[i], more[i - 1]);
  for (size_t i = 0; i < NBLOCKS; i++) islet_free(in, more[i]);
  free(more);
}

Test(purge, islet_interp_purge_gives_back_every_free_os_page_now) {
  capture_config((islet_config_t){.purge_delay_ms = -1});
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  peak_then_free(a);
  size_t meta_before = meta_resident();
  islet_interp_purge(a);
  expect_only_kept_resident();
  cr_assert_lt(meta_resident(), meta_before);
  expect_kept_intact();
  reuse_everything(a);
  /* a free by another interpreter, a double free, the usable size */
  islet_free(b, blocks[0]);
  islet_interp_collect(a);
  cr_assert_eq(islet_usable_size(blocks[0]), 0);
  islet_free(a, blocks[0]);
  expect_one_event(ISLET_EDOUBLE_FREE, blocks[0], islet_interp_id(a));
  for (size_t i = KEEP_EVERY; i < NBLOCKS / 4; i += KEEP_EVERY) islet_free(a, blocks[i]);
  expect_no_event();
  cr_assert_eq(live_blocks(a), 0);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocation elsewhere in the heap for up to seconds, until only the kept
 * OS pages are resident; the time taken.  Large blocks: a small class
 * would take the freed pages. */
static double churn_until_purged(islet_interp_t *in, double seconds) {
  double t0 = now_s();
  void *tmp[100];
  while (now_s() - t0 < seconds) {
    for (int i = 0; i < 100; i++) tmp[i] = islet_malloc(in, 20000);
    for (int i = 0; i < 100; i++) islet_free(in, tmp[i]);
    size_t res, kept;
    residency(&res, &kept);
    if (res == kept) break;
    usleep(5000);
  }
  return now_s() - t0;
}

/* A heap's regions, a segment's and a large block's, new and grown, ask for
 * 4 KiB pages (VmFlags nh) whatever the system's THP mode, but a segment's
 * ask for huge pages (hg) under huge_pages 1.  A kernel without THP shows
 * neither. */
static void expect_region_flags(int huge_pages, const char *small_want, const char *small_not) {
  if (access("/sys/kernel/mm/transparent_hugepage", F_OK))
    cr_skip_test("this kernel has no transparent huge pages");
  capture_config((islet_config_t){.huge_pages = huge_pages});
  islet_interp_t *a = islet_interp_new(rt);
  size_t sizes[] = {64, 100 << 10, 6 << 20};
  char *blocks[] = {islet_malloc(a, sizes[0]), islet_malloc(a, sizes[1]),
                    islet_realloc(a, islet_malloc(a, sizes[1]), sizes[2])};
  for (int i = 0; i < 3; i++) {
    cr_assert_not_null(blocks[i]);
    const char *want = i ? " nh" : small_want, *unwanted = i ? " hg" : small_not;
    char *ends[] = {blocks[i], blocks[i] + sizes[i] - 1}, flags[512];
    for (int e = 0; e < 2; e++) {
      vma_flags(ends[e], flags, sizeof flags);
      cr_assert(strstr(flags, want) && !strstr(flags, unwanted),
                "huge_pages %d, block %d, byte %p: %s wanted in '%s'", huge_pages, i,
                (void *)ends[e], want, flags);
    }
    islet_free(a, blocks[i]);
  }
  islet_interp_destroy(a, NULL);
}

/* madvise as libislet calls it: this definition comes before libc's, and
 * counts the calls that ask for 4 KiB pages. */
static _Atomic unsigned small_page_advice;
int madvise(void *addr, size_t len, int advice) {
#ifdef MADV_NOHUGEPAGE
  if (advice == MADV_NOHUGEPAGE) small_page_advice++;
#endif
  return (int)syscall(SYS_madvise, addr, len, advice);
}

/* A large block grown within its span asks the kernel nothing: only a
 * region that is new, or that grows into granules it did not span, is
 * advised (a list that grows in place made a system call at every step). */
Test(purge, a_large_block_grown_in_place_asks_for_no_page_size) {
  capture_config((islet_config_t){0});
  islet_interp_t *a = islet_interp_new(rt);
  unsigned char *p = islet_malloc(a, 100000);
  unsigned before = small_page_advice, moves = 0, steps = 0;
  for (size_t n = 112500; n < 3000000; n += n / 8, steps++) {
    unsigned char *q = islet_realloc(a, p, n);
    cr_assert_not_null(q);
    moves += q != p;
    p = q;
  }
  cr_assert_geq(steps, 20);
  cr_assert_leq(small_page_advice - before, moves, "one call for each new region at most");
  islet_free(a, p);
  islet_interp_destroy(a, NULL);
}

/* Kernel mappings in the process. */
static size_t mappings(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f);
  size_t n = 0;
  for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
  fclose(f);
  return n;
}

/* The advice covers a region's whole span, so that neighbouring large
 * blocks keep sharing a kernel mapping (an advised head and a plain tail
 * would take two each: vm.max_map_count bounds them).  jemalloc's own
 * mappings, which it grows as it goes, split where its unused part starts:
 * a few more. */
static void expect_large_blocks_share_mappings(int huge_pages) {
  enum { N = 200 };
  capture_config((islet_config_t){.huge_pages = huge_pages});
  islet_interp_t *a = islet_interp_new(rt);
  static void *large[N];
  large[0] = islet_malloc(a, 20000);
  size_t before = mappings();
  for (int i = 1; i < N; i++) cr_assert_not_null(large[i] = islet_malloc(a, 20000));
  size_t after = mappings();
  cr_assert_lt(after, before + N / 4,
               "huge_pages %d: %zu kernel mappings for %d large blocks, %zu before", huge_pages,
               after, N, before);
  for (int i = 0; i < N; i++) islet_free(a, large[i]);
  islet_interp_destroy(a, NULL);
}

Test(purge, large_blocks_share_kernel_mappings) {
  expect_large_blocks_share_mappings(0);
}

Test(purge, large_blocks_share_kernel_mappings_with_huge_pages) {
  expect_large_blocks_share_mappings(1);
}

Test(purge, a_heap_takes_no_huge_pages_by_default) {
  expect_region_flags(0, " nh", " hg");
}

Test(purge, a_heap_asks_for_huge_pages_for_small_blocks_when_told) {
  expect_region_flags(1, " hg", " nh");
}

Test(purge, a_live_heap_gives_back_what_stays_free_for_its_delay) {
  capture_config((islet_config_t){.purge_delay_ms = 50});
  islet_interp_t *a = islet_interp_new(rt);
  size_t peak = peak_then_free(a);
  size_t res, kept;
  residency(&res, &kept);
  cr_assert_eq(res, peak, "nothing goes back before the delay");
  double took = churn_until_purged(a, 3);
  expect_only_kept_resident();
  cr_assert_geq(took, 0.04, "purged after %.3f s, before the delay", took);
  expect_kept_intact();
  reuse_everything(a);
  expect_no_event();
}

Test(purge, a_negative_delay_never_purges_a_live_heap) {
  capture_config((islet_config_t){.purge_delay_ms = -1});
  islet_interp_t *a = islet_interp_new(rt);
  size_t peak = peak_then_free(a);
  churn_until_purged(a, 0.3);
  size_t res, kept;
  residency(&res, &kept);
  cr_assert_eq(res, peak);
}

static size_t heap_mapped(islet_interp_t *in) {
  islet_stats_t st;
  islet_interp_stats(in, &st);
  return st.mapped;
}

/* Small allocations (purge ticks) for up to 3 s while the heap maps
 * mapped bytes; the time taken. */
static double tick_while_mapped(islet_interp_t *in, size_t mapped) {
  double t0 = now_s();
  while (heap_mapped(in) == mapped && now_s() - t0 < 3) {
    void *tmp[100];
    for (int i = 0; i < 100; i++) tmp[i] = islet_malloc(in, 64);
    for (int i = 0; i < 100; i++) islet_free(in, tmp[i]);
    usleep(1000);
  }
  return now_s() - t0;
}

/* A freed large block's region stays for the heap's next large block (as
 * CPython reads one .pyc after another into a bytes object): its pages are
 * resident, no fault; the freed block is still a double free; unused, the
 * region goes after the delay. */
Test(purge, a_freed_large_region_serves_the_next_large_block_for_the_delay) {
  capture_config((islet_config_t){.purge_delay_ms = 50});
  islet_interp_t *a = islet_interp_new(rt);
  void *small = islet_malloc(a, 64); /* its segment is mapped from here on */
  unsigned char *p = islet_malloc(a, 100000);
  memset(p, 0xab, 100000);
  size_t mapped = heap_mapped(a);
  islet_free(a, p);
  cr_assert_eq(heap_mapped(a), mapped, "the region stays");
  islet_free(a, p);
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
  unsigned char *q = islet_malloc(a, 60000);
  cr_assert_eq(q, p, "the next large block takes the region");
  cr_assert_eq(resident((uintptr_t)q & ~(uintptr_t)(OS_PAGE - 1), 60 * OS_PAGE / 4), 15,
               "its pages are resident");
  q = islet_realloc(a, q, 90000); /* within the region: no move */
  cr_assert_eq(q, p);
  cr_assert_eq(q[59999], 0xab);
  cr_assert_eq(heap_mapped(a), mapped);
  islet_free(a, q);
  cr_assert_geq(tick_while_mapped(a, mapped), 0.04);
  cr_assert_lt(heap_mapped(a), mapped, "the unused region went back");
  islet_free(a, q);
  expect_one_event(ISLET_EDOUBLE_FREE, q, islet_interp_id(a));
  islet_free(a, small);
  islet_interp_destroy(a, NULL);
}

/* A block that takes a bigger spare region keeps the rest as room to grow
 * into without a fault, and that room goes back at the next purge passes.
 * A heap with a limit, which counts blocks only, gives a block no more
 * room than its own size: what it keeps stays within twice what it may
 * hold. */
static void spare_gives_room(size_t limit) {
  capture_config((islet_config_t){.purge_delay_ms = 50});
  islet_interp_t *a = islet_interp_new(rt);
  islet_interp_set_limit(a, limit);
  void *small = islet_malloc(a, 64);
  unsigned char *p = islet_malloc(a, 400000);
  memset(p, 0x11, 400000);
  islet_free(a, p);
  size_t spare = heap_mapped(a);
  unsigned char *q = islet_malloc(a, 30000);
  cr_assert_eq(q, p);
  size_t with_room = heap_mapped(a), grow = limit ? 55000 : 350000;
  if (limit) {
    cr_assert_lt(with_room, spare - 300000, "cut to twice the block at once");
  } else {
    cr_assert_eq(with_room, spare, "the room stays");
    cr_assert_eq(resident((uintptr_t)q & ~(uintptr_t)(OS_PAGE - 1), 90 * OS_PAGE), 90,
                 "resident: growing into it faults nothing");
  }
  memset(q, 0x22, 30000);
  q = islet_realloc(a, q, grow);
  cr_assert_eq(q, p, "grown into its room");
  cr_assert_eq(heap_mapped(a), with_room);
  memset(q + 30000, 0x22, grow - 30000);
  tick_while_mapped(a, with_room);
  cr_assert_lt(heap_mapped(a), with_room, "the room went back");
  for (size_t i = 0; i < grow; i++) cr_assert_eq(q[i], 0x22);
  cr_assert_geq(islet_usable_size(q), grow);
  islet_free(a, q);
  islet_free(a, small);
  expect_no_event();
  islet_interp_destroy(a, NULL);
}

Test(purge, a_spare_region_gives_a_block_its_room_for_the_delay) {
  spare_gives_room(0);
}

Test(purge, under_a_limit_a_spare_region_gives_a_block_room_up_to_its_size) {
  spare_gives_room(8 << 20);
}

/* The last two freed regions serve the next large blocks, each the
 * smallest that holds it (json's dump and its list of pieces alternate);
 * a third freed sends the oldest back. */
Test(purge, the_last_two_freed_regions_serve_the_next_large_blocks) {
  capture_config((islet_config_t){.purge_delay_ms = 60000});
  islet_interp_t *a = islet_interp_new(rt);
  void *small = islet_malloc(a, 64);
  unsigned char *p1 = islet_malloc(a, 300000), *p2 = islet_malloc(a, 500000);
  memset(p1, 0x11, 300000);
  memset(p2, 0x22, 500000);
  size_t mapped = heap_mapped(a);
  islet_free(a, p1);
  islet_free(a, p2);
  cr_assert_eq(heap_mapped(a), mapped, "both stay");
  unsigned char *q = islet_malloc(a, 450000), *r = islet_malloc(a, 250000);
  cr_assert_eq(q, p2, "the one that holds it");
  cr_assert_eq(r, p1, "and the other");
  cr_assert_eq(heap_mapped(a), mapped);
  unsigned char *t = islet_malloc(a, 100000); /* a region of its own */
  size_t with_t = heap_mapped(a);
  islet_free(a, t);
  islet_free(a, r);
  islet_free(a, q);
  cr_assert_lt(mapped, with_t);
  cr_assert_eq(heap_mapped(a), mapped, "the oldest, t's region, went back");
  islet_free(a, small);
  expect_no_event();
  islet_interp_destroy(a, NULL);
}

/* The segment of p. */
static uintptr_t seg_of(const void *p) {
  return (uintptr_t)p & ~(SEG - 1);
}

/* Resident OS pages of the block pages of p's segment. */
static size_t seg_blocks_resident(const void *p) {
  return resident(seg_of(p) + 2 * PAGE, SEG - 2 * PAGE);
}

/* Past two emptied segments, the next goes back at once: a program that
 * drops a big structure and goes quiet, with no allocation to run a purge
 * pass, keeps no more than that. */
Test(purge, past_two_emptied_segments_the_next_goes_back_at_once) {
  capture_config((islet_config_t){.purge_delay_ms = 60000});
  islet_interp_t *a = islet_interp_new(rt);
  enum { N = 16384 }; /* 16 MiB of 1 KiB blocks: five segments */
  static void *b[N];
  uintptr_t segs[16];
  unsigned nsegs = 0;
  for (size_t i = 0; i < N; i++) {
    b[i] = islet_malloc(a, 1024);
    cr_assert_not_null(b[i]);
    memset(b[i], 0xab, 1024);
    if (!nsegs || segs[nsegs - 1] != seg_of(b[i])) segs[nsegs++] = seg_of(b[i]);
  }
  cr_assert_geq(nsegs, 5);
  islet_free(a, b[0]); /* the class keeps that page */
  for (size_t i = 1; i < N; i++)
    if (seg_of(b[i]) == segs[1] || seg_of(b[i]) == segs[2] || seg_of(b[i]) == segs[3])
      islet_free(a, b[i]);
  unsigned warm = 0, gone = 0;
  for (unsigned k = 1; k <= 3; k++) {
    size_t res = seg_blocks_resident((void *)segs[k]);
    warm += res > 0;
    gone += res == 0;
  }
  cr_assert_eq(warm, 2, "two emptied segments stay for the delay");
  cr_assert_eq(gone, 1, "the third went back at once");
  for (size_t i = 1; i < N; i++)
    if (seg_of(b[i]) != segs[1] && seg_of(b[i]) != segs[2] && seg_of(b[i]) != segs[3])
      islet_free(a, b[i]);
  expect_no_event();
  islet_interp_destroy(a, NULL);
}

/* A segment that empties is free memory like any other: it stays for the
 * delay, so a heap that fills it again (CPython building a table of records
 * as the last one goes) takes no fault, then it goes back. */
Test(purge, an_emptied_segment_waits_for_the_delay_too) {
  capture_config((islet_config_t){.purge_delay_ms = 50});
  islet_interp_t *a = islet_interp_new(rt);
  enum { N = 6144 }; /* 6 MiB of 1 KiB blocks: two segments */
  static void *b[N];
  for (size_t i = 0; i < N; i++) {
    b[i] = islet_malloc(a, 1024);
    cr_assert_not_null(b[i]);
    memset(b[i], 0xab, 1024);
  }
  cr_assert_neq(seg_of(b[N - 1]), seg_of(b[0]));
  void *last = b[N - 1];
  size_t before = seg_blocks_resident(last);
  islet_free(a, b[0]); /* the class keeps that page, not one of the second segment */
  for (size_t i = 1; i < N; i++)
    if (seg_of(b[i]) == seg_of(last)) islet_free(a, b[i]);
  cr_assert_eq(seg_blocks_resident(last), before, "nothing goes back before the delay");
  double t0 = now_s();
  void *tmp[100];
  while (seg_blocks_resident(last) && now_s() - t0 < 3) { /* large blocks: no small page */
    for (int i = 0; i < 100; i++) tmp[i] = islet_malloc(a, 20000);
    for (int i = 0; i < 100; i++) islet_free(a, tmp[i]);
    usleep(5000);
  }
  cr_assert_eq(seg_blocks_resident(last), 0, "the emptied segment went back after the delay");
  cr_assert_geq(now_s() - t0, 0.04);
  expect_no_event();
  for (size_t i = 1; i < N; i++)
    if (seg_of(b[i]) != seg_of(last)) islet_free(a, b[i]);
  islet_interp_destroy(a, NULL);
}

Test(purge, a_new_heap_takes_over_an_orphans_segment_and_fills_its_free_space) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_ORPHAN, .reclaim_inline = 1});
  islet_interp_t *a = islet_interp_new(rt);
  peak_then_free(a);
  islet_interp_destroy(a, NULL);
  islet_interp_t *b = islet_interp_new(rt);
  void *p = islet_malloc(b, 64);
  cr_assert_eq(seg_of(p), seg_of(blocks[0]), "b's first block comes from the orphan's segment");
  cr_assert_eq(islet_owner(blocks[0]), b, "and the orphan's blocks are b's now");
  size_t kept = 0;
  for (size_t i = 0; i < NBLOCKS; i++) kept += is_kept(i);
  cr_assert_eq(live_blocks(b), kept + 1);
  expect_kept_intact();
  /* b's policy changes after it took blocks it does not know: it still ends
   * as an orphan, and they stay valid */
  islet_interp_set_teardown(b, ISLET_TEARDOWN_QUARANTINE);
  islet_leak_report_t r;
  islet_interp_destroy(b, &r);
  cr_assert(r.orphaned);
  cr_assert_eq(r.blocks, kept + 1);
  expect_kept_intact();
  expect_no_event();
}

/* Under the orphan policy, a heap that maps a segment of its own while no
 * orphan exists (its 256-byte block *own), and the heap that will end as
 * an orphan beside it. */
static islet_interp_t *heap_with_own_segment(void **own, islet_interp_t **to_end) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_ORPHAN, .reclaim_inline = 1});
  islet_interp_t *b = islet_interp_new(rt);
  *own = islet_malloc(b, 256);
  *to_end = islet_interp_new(rt);
  return b;
}

/* A heap with free pages of its own still fills an orphan's holes of a
 * class before it starts a page of that class: the holes' OS pages are
 * resident for the orphan's blocks anyway. */
Test(purge, a_class_fills_an_orphans_holes_before_a_fresh_page_of_its_own) {
  void *own;
  islet_interp_t *a, *b = heap_with_own_segment(&own, &a);
  peak_then_free(a);
  cr_assert_neq(seg_of(blocks[0]), seg_of(own));
  islet_interp_destroy(a, NULL);
  void *p = islet_malloc(b, 64);
  cr_assert_eq(seg_of(p), seg_of(blocks[0]), "the block fills the orphan's segment");
  bool in_kept_page = false;
  for (size_t i = 0; i < NBLOCKS; i += KEEP_EVERY)
    in_kept_page |= is_kept(i) && page_base(p) == page_base(blocks[i]);
  cr_assert(in_kept_page, "in a page that holds the orphan's blocks");
  cr_assert_eq(islet_owner(blocks[0]), b);
  islet_free(b, own);
  islet_free(b, p);
  expect_kept_intact();
  expect_no_event();
}

/* A page that fills stays in its class's list until an allocation finds
 * it full, and an orphan allocates no more: its listed page of a class may
 * be full, and a heap out of that class takes no such segment over. */
Test(purge, a_class_takes_no_orphan_segment_whose_listed_page_is_full) {
  void *own;
  islet_interp_t *a, *b = heap_with_own_segment(&own, &a);
  void *first = islet_malloc(a, 128);
  size_t per_page = 1;
  while (page_base(islet_malloc(a, 128)) == page_base(first))
    per_page++; /* the first page is full now, and the last block starts the second */
  for (size_t i = 1; i < per_page; i++) islet_malloc(a, 128); /* the second fills, still listed */
  cr_assert_eq(live_blocks(a), 2 * per_page);
  islet_interp_destroy(a, NULL);
  void *q = islet_malloc(b, 128);
  cr_assert_neq(seg_of(q), seg_of(first));
  cr_assert_eq(islet_owner(first), a, "the orphan kept its segment");
  islet_free(b, own);
  islet_free(b, q);
  expect_no_event();
}

Test(purge, a_heap_with_a_limit_or_another_policy_takes_nothing_over) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_ORPHAN, .reclaim_inline = 1});
  islet_interp_t *a = islet_interp_new(rt);
  peak_then_free(a);
  islet_interp_destroy(a, NULL);
  islet_interp_t *limited = islet_interp_new(rt), *released = islet_interp_new(rt);
  islet_interp_set_limit(limited, 64 << 20);
  islet_interp_set_teardown(released, ISLET_TEARDOWN_RELEASE);
  cr_assert_neq(seg_of(islet_malloc(limited, 64)), seg_of(blocks[0]));
  cr_assert_neq(seg_of(islet_malloc(released, 64)), seg_of(blocks[0]));
  cr_assert_eq(islet_owner(blocks[0]), a);
  cr_assert_eq(live_blocks(limited), 1);
  cr_assert_eq(live_blocks(released), 1);
}

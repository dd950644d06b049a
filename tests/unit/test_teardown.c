/* Teardown: the leak report, release, quarantine, runtime teardown. */
#include "common.h"
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(teardown, .fini = teardown_runtime);

static void *find(const islet_leak_report_t *r, void *p) {
  for (size_t i = 0; i < r->naddrs; i++)
    if (r->addrs[i] == p) return p;
  return NULL;
}

Test(teardown, leak_report_lists_exactly_the_live_blocks) {
  setup_default();
  islet_interp_t *in = islet_interp_new(rt);
  void *keep[3] = {islet_malloc(in, 24), islet_malloc(in, 500), islet_malloc(in, 100000)};
  for (int i = 0; i < 10000; i++) islet_free(in, islet_malloc(in, (size_t)i % 2000));
  islet_leak_report_t r;
  islet_interp_destroy(in, &r);
  cr_assert_eq(r.blocks, 3);
  cr_assert_eq(r.large_blocks, 1);
  cr_assert_eq(r.naddrs, 3);
  for (int i = 0; i < 3; i++) cr_assert_not_null(find(&r, keep[i]));
  size_t small = 0;
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++) small += r.class_blocks[c];
  cr_assert_eq(small, 2);
  cr_assert_geq(r.bytes, 24 + 500 + 100000);
  cr_assert_geq(r.segments, 1);
  cr_assert_eq(r.quarantined, 0);
  expect_no_event();
}

Test(teardown, leak_report_counts_per_class_and_caps_addresses) {
  setup_default();
  islet_interp_t *in = islet_interp_new(rt);
  for (int i = 0; i < 1000; i++) islet_malloc(in, 64);
  for (int i = 0; i < 7; i++) islet_malloc(in, 3000);
  islet_leak_report_t r;
  islet_interp_destroy(in, &r);
  cr_assert_eq(r.blocks, 1007);
  cr_assert_eq(r.naddrs, ISLET_LEAK_ADDRS);
  size_t c64 = 0, c3000 = 0;
  for (unsigned c = 0; c < ISLET_SIZE_CLASSES; c++) {
    if (islet_class_size(c) >= 64 && !c64 && r.class_blocks[c])
      c64 = r.class_blocks[c];
    else if (r.class_blocks[c])
      c3000 = r.class_blocks[c];
  }
  cr_assert_eq(c64, 1000);
  cr_assert_eq(c3000, 7);
}

Test(teardown, pending_cross_frees_are_not_leaks) {
  setup_default();
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  for (int i = 0; i < 100; i++) islet_free(b, islet_malloc(a, 80));
  islet_free(b, islet_malloc(a, 100000));
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert_eq(r.blocks, 0);
}

Test(teardown, release_returns_memory_and_tombstones_addresses) {
  setup_default();
  islet_interp_t *a = islet_interp_new(rt);
  void *p = islet_malloc(a, 100);
  unsigned id = islet_interp_id(a);
  islet_interp_destroy(a, NULL);
  islet_runtime_flush(rt);
  islet_free_any(p);
  expect_one_event(ISLET_EDESTROYED, p, id);
}

static sigjmp_buf jump;
static void on_segv(int sig) {
  (void)sig;
  siglongjmp(jump, 1);
}

static int faults(volatile char *p) {
  struct sigaction sa = {.sa_handler = on_segv}, old;
  sigaction(SIGSEGV, &sa, &old);
  int faulted = 0;
  if (sigsetjmp(jump, 1) == 0)
    (void)p[0];
  else
    faulted = 1;
  sigaction(SIGSEGV, &old, NULL);
  return faulted;
}

static int nthreads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

Test(teardown, quarantine_keeps_the_range_inaccessible_until_the_runtime_ends) {
  capture_runtime(ISLET_CROSS_DEFER, ISLET_BAD_REPORT, ISLET_TEARDOWN_QUARANTINE);
  islet_interp_t *a = islet_interp_new(rt);
  volatile char *p = islet_malloc(a, 100);
  volatile char *big = islet_malloc(a, 1 << 20);
  p[0] = 1;
  big[0] = 1;
  unsigned id = islet_interp_id(a);
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert_eq(r.quarantined, 1);
  cr_assert_eq(r.blocks, 2);
  islet_runtime_flush(rt);
  /* never reused: new interpreters get other addresses */
  islet_interp_t *b = islet_interp_new(rt);
  for (int i = 0; i < 1000; i++) {
    char *q = islet_malloc(b, 100);
    cr_assert_neq(q, (char *)p);
  }
  cr_assert(faults(p), "a quarantined block must not be readable");
  islet_free_any((void *)p);
  expect_one_event(ISLET_EDESTROYED, (void *)p, id);
}

/* Is p in a mapping with no access (quarantine's mprotect, or a range the
 * system backend holds for reuse)? */
static int protected_none(const void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  cr_assert_not_null(f);
  char line[512], perms[8];
  unsigned long lo, hi;
  int none = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= (uintptr_t)p &&
        (uintptr_t)p < hi)
      none = !strncmp(perms, "---", 3);
  fclose(f);
  return none;
}

/* Was p's range released, so islet may use it again?  jemalloc's arena
 * holds it, accessible; the system backend holds it reserved, and maps the
 * next region there.  A quarantined range is neither. */
static int released(const void *p) {
  if (strcmp(islet_backend(), "system")) return !protected_none(p);
  if (!protected_none(p)) return 0;
  islet_interp_t *x = islet_interp_new(rt);
  islet_interp_set_teardown(x, ISLET_TEARDOWN_RELEASE);
  uintptr_t q = (uintptr_t)islet_malloc(x, 100), granule = (uintptr_t)4 << 20;
  islet_interp_destroy(x, NULL);
  islet_runtime_flush(rt); /* x's range is held again */
  return q / granule == (uintptr_t)p / granule;
}

/* A policy per interpreter overrides the runtime's. */
Test(teardown, per_interpreter_policy_overrides_the_runtime) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_RELEASE, .reclaim_inline = 1});
  islet_interp_t *q = islet_interp_new(rt), *r = islet_interp_new(rt);
  cr_assert_eq(islet_interp_set_teardown(q, (islet_teardown_t)7), ISLET_EINVAL);
  cr_assert_eq(islet_interp_set_teardown(q, ISLET_TEARDOWN_QUARANTINE), 0);
  void *pq = islet_malloc(q, 100), *pr = islet_malloc(r, 100);
  islet_leak_report_t rq, rr;
  islet_interp_destroy(q, &rq);
  islet_interp_destroy(r, &rr);
  cr_assert(rq.quarantined && protected_none(pq));
  cr_assert(!rr.quarantined && released(pr));
}

/* Bounded quarantine: past quarantine_max the oldest heap is released, on
 * the destroying thread and on the reclaimer (which gets them in batches). */
static void quarantine_bound(int inline_reclaim) {
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_QUARANTINE,
                                  .quarantine_max = 8 << 20,
                                  .reclaim_inline = inline_reclaim});
  enum { N = 3 }; /* a fourth could reuse the first's range once released */
  void *p[N];
  for (int i = 0; i < N; i++) { /* one 4 MiB segment each */
    islet_interp_t *in = islet_interp_new(rt);
    p[i] = islet_malloc(in, 100);
    islet_interp_destroy(in, NULL);
  }
  islet_runtime_flush(rt);
  cr_assert(protected_none(p[1]) && protected_none(p[2]), "the newest two stay quarantined");
  cr_assert(released(p[0]), "past the bound, the oldest must be released");
  cr_assert_not(released(p[1]) || released(p[2]), "quarantined ranges are not reused");
}

Test(teardown, quarantine_max_releases_the_oldest_first) {
  quarantine_bound(1);
}

Test(teardown, quarantine_max_releases_the_oldest_first_in_the_background) {
  quarantine_bound(0);
}

static void destroy_one(volatile char **p) {
  islet_interp_t *a = islet_interp_new(rt);
  *p = islet_malloc(a, 100);
  (*p)[0] = 1;
  islet_interp_destroy(a, NULL);
}

/* Inline reclaim: destroy has done the work when it returns, and no thread
 * is started.  The default (background) runtime is the control: its destroy
 * starts one. */
Test(teardown, reclaim_inline_is_done_when_destroy_returns) {
  int before = nthreads();
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_QUARANTINE, .reclaim_inline = 1});
  volatile char *p;
  destroy_one(&p);
  cr_assert(faults(p), "quarantine must be in force when destroy returns");
  cr_assert_eq(nthreads(), before, "inline reclaim started a thread");
}

Test(teardown, background_reclaim_starts_one_thread) {
  int before = nthreads();
  capture_config((islet_config_t){.teardown = ISLET_TEARDOWN_QUARANTINE});
  volatile char *p;
  destroy_one(&p);
  cr_assert_eq(nthreads(), before + 1);
}

/* Orphan: live blocks stay valid and owned while other interpreters churn
 * (memory the orphan gave back would be reused by then), empty segments go
 * at once, a heap of the same policy takes over the rest, and the orphan
 * ends with its last block. */
Test(teardown, orphan_keeps_live_blocks_and_releases_the_rest) {
  capture_runtime(ISLET_CROSS_DEFER, ISLET_BAD_REPORT, ISLET_TEARDOWN_ORPHAN);
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  enum { N = 12000 }; /* 1 KiB blocks: three segments */
  static char *blk[N];
  for (int i = 0; i < N; i++) blk[i] = islet_malloc(a, 1024);
  char *keep = blk[0], *big = islet_malloc(a, 1 << 20), *last = blk[N - 1];
  for (int i = 1; i < N; i++) islet_free(a, blk[i]);
  memset(keep, 0x5a, 1024);
  memset(big, 0xa5, 1 << 20);
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert(r.orphaned);
  cr_assert_eq(r.blocks, 2);
  islet_runtime_flush(rt);
  cr_assert_not_null(islet_owner(keep));
  cr_assert_null(islet_owner(last), "an empty segment of an orphan must be released");
  for (int i = 0; i < 3 * N; i++) memset(islet_malloc(b, 1024), 0xee, 1024);
  for (int i = 0; i < 1024; i++) cr_assert_eq((unsigned char)keep[i], 0x5a);
  for (int i = 0; i < 1 << 20; i += 4096) cr_assert_eq((unsigned char)big[i], 0xa5);
  cr_assert_eq(islet_owner(keep), b, "b took the orphan's segment over, keep with it");
  cr_assert_eq(islet_owner(big), a);
  islet_free(b, keep);
  expect_no_event();
  islet_free(b, keep);
  expect_one_event(ISLET_EDOUBLE_FREE, keep, islet_interp_id(b));
  islet_free(b, big); /* the orphan's last block: it ends */
  expect_no_event();
  cr_assert_null(islet_owner(big));
}

Test(teardown, runtime_destroy_ends_live_interpreters) {
  setup_default();
  for (int i = 0; i < 5; i++) {
    islet_interp_t *in = islet_interp_new(rt);
    islet_malloc(in, 100);
    islet_malloc(in, 1 << 20);
  }
}

Test(teardown, many_create_destroy_cycles) {
  setup_default();
  for (int i = 0; i < 300; i++) {
    islet_interp_t *in = islet_interp_new(rt);
    for (int k = 0; k < 100; k++) islet_malloc(in, (size_t)k * 10);
    islet_leak_report_t r;
    islet_interp_destroy(in, &r);
    cr_assert_eq(r.blocks, 100);
    cr_assert_eq(r.id, (unsigned)i + 1);
  }
}

/* More live interpreters than jemalloc has arenas (4,095, and an arena
 * index from 2,047 on overflowed MALLOCX_ARENA's int, which UBSan stops
 * at): past them interpreters share arenas, and an arena serves the next
 * heap only when its last one has ended. */
Test(teardown, five_thousand_live_interpreters) {
  setup_default();
  enum { N = 5000 };
  static islet_interp_t *in[N];
  static char *small[N], *big[N];
  for (int i = 0; i < N; i++) {
    in[i] = islet_interp_new(rt);
    cr_assert_not_null(in[i], "interpreter %d: %s", i + 1, islet_strerror(islet_last_error()));
    small[i] = islet_malloc(in[i], 16);
    big[i] = islet_malloc(in[i], ISLET_SMALL_MAX + 1);
    cr_assert(small[i] && big[i], "interpreter %d: %s", i + 1, islet_strerror(islet_last_error()));
    small[i][0] = big[i][ISLET_SMALL_MAX] = (char)i;
  }
  for (int i = 0; i < N; i++) {
    cr_assert(islet_owner(small[i]) == in[i] && islet_owner(big[i]) == in[i]);
    cr_assert(small[i][0] == (char)i && big[i][ISLET_SMALL_MAX] == (char)i);
    islet_leak_report_t r;
    islet_interp_destroy(in[i], &r);
    cr_assert_eq(r.blocks, 2);
    cr_assert_eq(r.large_blocks, 1);
  }
  expect_no_event();
}

static long rss_kib(void) {
  return (long)(statm_bytes(1) / 1024);
}

/* One interpreter's life: small blocks over many pages and a large block,
 * left to teardown (release), or outliving the interpreter and freed by
 * another one after it ended (orphan). */
static void one_life(islet_interp_t *other) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { N = 300 };
  void *p[N + 1];
  for (int k = 0; k < N; k++) memset(p[k] = islet_malloc(in, 1000), 1, 1000);
  memset(p[N] = islet_malloc(in, 200000), 2, 200000);
  islet_interp_destroy(in, NULL);
  for (int k = 0; other && k <= N; k++) islet_free(other, p[k]);
}

/* An embedder ends interpreters by the thousand (CPython sub-interpreters):
 * nothing of an ended one may stay, whatever the backend keeps per arena. */
static void lives_leave_nothing(islet_teardown_t teardown) {
  if (UNDER_ASAN) cr_skip_test("RSS is not islet's under ASan");
  capture_config((islet_config_t){.teardown = teardown, .reclaim_inline = 1});
  islet_interp_t *other = teardown == ISLET_TEARDOWN_ORPHAN ? islet_interp_new(rt) : NULL;
  for (int i = 0; i < 100; i++) one_life(other);
  long before = rss_kib();
  for (int i = 0; i < 2000; i++) one_life(other);
  long grown = rss_kib() - before;
  cr_assert_lt(grown, 1024, "2,000 interpreter lives grew RSS by %ld KiB", grown);
}

Test(teardown, release_lives_leave_nothing_resident) {
  lives_leave_nothing(ISLET_TEARDOWN_RELEASE);
}

Test(teardown, orphan_lives_leave_nothing_resident) {
  lives_leave_nothing(ISLET_TEARDOWN_ORPHAN);
}

/* Out of address space, a destroyed heap's is on its way back (the runtime
 * thread gives it back): an allocation waits for it rather than failing.
 * In a child (Criterion's own machinery needs room), which says by its exit
 * status: 0 fine, 1 too little room to start, 2 no memory for a new heap. */
static int short_of_address_space(void) {
  islet_interp_t *in = islet_interp_new(rt);
  struct rlimit lim = {statm_bytes(0) + ((size_t)300 << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &lim)) return 1;
  size_t n = 0;
  while (islet_malloc(in, (size_t)1 << 20)) n++;
  if (n < 10 || islet_last_error() != ISLET_ENOMEM) return 1;
  islet_interp_destroy(in, NULL); /* its blocks and all: the runtime thread's work */
  for (int i = 0; i < 5; i++) {
    islet_interp_t *next = islet_interp_new(rt);
    void *p = islet_malloc(next, (size_t)1 << 20);
    islet_interp_destroy(next, NULL);
    if (!p) return 2;
  }
  return 0;
}

/* The exit status of fn, run in a child under RLIMIT_AS (set by fn), which
 * must not crash; 1 means it could not fill its address space. */
static int short_child(int (*fn)(void)) {
  if (UNDER_ASAN) cr_skip_test("ASan's shadow does not fit under RLIMIT_AS");
  setup_default();
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st), "the child crashed: signal %d", WTERMSIG(st));
  cr_assert_neq(WEXITSTATUS(st), 1, "the child could not fill its address space");
  return WEXITSTATUS(st);
}

Test(teardown, an_allocation_waits_for_memory_on_its_way_back) {
  if (strcmp(islet_backend(), "system")) cr_skip_test("jemalloc decides what it reuses");
  cr_assert_eq(short_child(short_of_address_space), 0,
               "no memory while a destroyed heap's was on its way back");
}

/* Under an address space 256 MiB larger than now, blocks of size bytes of
 * in's, into blk, until it runs out: how many, or 0 when the limit could
 * not be set or did not end the fill between min and max blocks. */
static size_t fill_address_space(islet_interp_t *in, void **blk, size_t max, size_t size,
                                 size_t min) {
  struct rlimit lim = {statm_bytes(0) + ((size_t)256 << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &lim)) return 0;
  size_t n = 0;
  while (n < max && (blk[n] = islet_malloc(in, size))) n++;
  return n == max || n < min || islet_last_error() != ISLET_ENOMEM ? 0 : n;
}

/* Out of address space, a heap whose small blocks are all gone turns an
 * emptied segment into a large block's region, and back into small pages
 * when that block goes. */
static int large_from_emptied_segments(void) {
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  enum { MAX = 400000 };
  static void *blk[MAX];
  size_t n = fill_address_space(in, blk, MAX, 1000, 1000);
  if (!n) return 1;
  for (size_t i = 0; i < n; i++) islet_free(in, blk[i]);
  char *big = islet_malloc(in, 200000);
  if (!big) return 2;
  memset(big, 0x5a, 200000);
  char *grown = islet_realloc(in, big, 3 << 20); /* in place when in a granule of its own */
  if (!grown || grown[199999] != 0x5a) return 3;
  islet_free(in, grown);
  for (size_t i = 0; i < n; i++) /* every small block fits again */
    if (!(blk[i] = islet_malloc(in, 1000))) return 4;
  if (live_blocks(in) != n) return 5;
  for (size_t i = 0; i < n; i++) islet_free(in, blk[i]);
  /* such a block freed by another interpreter, and one left to teardown */
  if (!(big = islet_malloc(in, 200000))) return 2;
  islet_free(other, big);
  islet_interp_collect(in);
  if (live_blocks(in) != 0 || !(big = islet_malloc(in, 200000))) return 5;
  islet_leak_report_t r;
  islet_interp_destroy(in, &r);
  return r.blocks == 1 && r.large_blocks == 1 && nevents == 0 ? 0 : 5;
}

Test(teardown, emptied_segments_serve_a_large_block_when_the_address_space_runs_out) {
  static const char *const why[] = {[2] = "no large block from the emptied segments",
                                    [3] = "the large block could not grow to 3 MiB",
                                    [4] = "its segment did not serve small blocks again",
                                    [5] = "a cross free, the stats or the leak report went wrong"};
  int st = short_child(large_from_emptied_segments);
  cr_assert_eq(st, 0, "%s", st < 6 ? why[st] : "?");
}

/* Out of address space, a heap gives back the freed large block's region
 * it keeps for the next one (the spare) before it fails a block that the
 * spare cannot serve (over 1 MiB) but whose room it holds. */
static int spare_goes_before_enomem(void) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { MAX = 1000 };
  static void *blk[MAX];
  size_t n = fill_address_space(in, blk, MAX, (size_t)1000 << 10, 10);
  if (!n) return 1;
  islet_free(in, blk[--n]); /* kept mapped: the spare */
  void *big = islet_malloc(in, (size_t)1100 << 10);
  if (!big) return 2;
  islet_free(in, big);
  while (n) islet_free(in, blk[--n]);
  islet_interp_destroy(in, NULL);
  return 0;
}

Test(teardown, the_spare_region_goes_back_before_an_allocation_fails) {
  if (strcmp(islet_backend(), "system")) cr_skip_test("jemalloc decides what it reuses");
  cr_assert_eq(short_child(spare_goes_before_enomem), 0,
               "out of address space with a spare region kept");
}

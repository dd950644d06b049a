/* Bad input: each case has one documented result (include/islet.h), and a
 * bad free never changes allocator state. */
#include "common.h"
#include <criterion/redirect.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

TestSuite(bad, .init = setup_default, .fini = teardown_runtime);

Test(bad, double_free_is_reported_and_changes_nothing) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 48), *keep = islet_malloc(in, 48);
  islet_free(in, p);
  expect_no_event();
  islet_free(in, p);
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(in));
  cr_assert_eq(islet_last_error(), ISLET_EDOUBLE_FREE);
  cr_assert_eq(live_blocks(in), 1);
  /* the allocator still hands p out exactly once */
  void *a = islet_malloc(in, 48), *b = islet_malloc(in, 48);
  cr_assert(a != b && a != keep && b != keep);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.bad_frees, 1);
}

/* A freed large block's range stays islet's, and says whose it was: every
 * later free of it is a double free until a new block reuses the range.
 * Under ASan the top small classes are large blocks (their redzone). */
Test(bad, double_free_of_a_large_block) {
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  unsigned id = islet_interp_id(in);
  static const size_t sizes[] = {ISLET_SMALL_MAX - 15, ISLET_SMALL_MAX, 200000, (size_t)10 << 20};
  for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    void *p = islet_malloc(in, sizes[i]);
    islet_free(i & 1 ? other : in, p); /* a cross free: taken back by the owner */
    islet_interp_collect(in);
    expect_no_event();
    islet_free(in, p);
    expect_one_event(ISLET_EDOUBLE_FREE, p, id);
    islet_free(other, p);
    expect_one_event(ISLET_EDOUBLE_FREE, p, id);
    islet_free_any(p);
    expect_one_event(ISLET_EDOUBLE_FREE, p, id);
    cr_assert_eq(islet_try_free(in, p), 1, "%zu bytes: islet's range, so islet reports it",
                 sizes[i]);
    expect_one_event(ISLET_EDOUBLE_FREE, p, id);
    cr_assert_null(islet_realloc(in, p, 100));
    expect_one_event(ISLET_EDOUBLE_FREE, p, id);
    cr_assert_eq(islet_usable_size(p), 0);
    if (sizes[i] > ISLET_SMALL_MAX) cr_assert_null(islet_owner(p), "its region is gone");
  }
  cr_assert_eq(live_blocks(in), 0);
  void *r = islet_malloc(in, 200000); /* the range again, or another: a live block either way */
  cr_assert_eq(islet_owner(r), in);
  islet_free(in, r);
  expect_no_event();
  cr_assert_eq(live_blocks(in), 0);
}

Test(bad, double_free_across_interpreters_is_caught_at_the_second_free) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_malloc(a, 64), *big = islet_malloc(a, 100000);
  islet_free(b, p);
  islet_free(b, big);
  expect_no_event();
  islet_free(b, p);
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
  islet_free(b, big);
  expect_one_event(ISLET_EDOUBLE_FREE, big, islet_interp_id(a));
  islet_free(a, p); /* the owner too, while the hand-off is pending */
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
  islet_free(a, big);
  expect_one_event(ISLET_EDOUBLE_FREE, big, islet_interp_id(a));
  islet_interp_collect(a);
  expect_no_event();
  cr_assert_eq(live_blocks(a), 0);
}

Test(bad, local_then_remote_double_free) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_malloc(a, 64);
  islet_free(a, p);
  islet_free(b, p);
  cr_assert_eq(events[0].offender, islet_interp_id(b));
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
  void *q = islet_malloc(a, 64);
  islet_free(b, q);
  islet_free_any(q);
  expect_one_event(ISLET_EDOUBLE_FREE, q, islet_interp_id(a));
  islet_interp_collect(a);
  cr_assert_eq(live_blocks(a), 0);
}

Test(bad, foreign_pointer_is_reported) {
  islet_interp_t *in = islet_interp_new(rt);
  void *heap = malloc(32);
  int on_stack;
  islet_free(in, heap);
  expect_one_event(ISLET_EFOREIGN, heap, 0);
  islet_free(in, &on_stack);
  expect_one_event(ISLET_EFOREIGN, &on_stack, 0);
  islet_free_any(heap);
  expect_one_event(ISLET_EFOREIGN, heap, 0);
  free(heap);
}

Test(bad, interior_pointer_is_reported) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 100), *big = islet_malloc(in, 100000);
  char *huge = islet_malloc(in, (size_t)10 << 20); /* spans three granules */
  islet_free(in, p + 8);
  expect_one_event(ISLET_EINTERIOR, p + 8, islet_interp_id(in));
  islet_free(in, big + 4096);
  expect_one_event(ISLET_EINTERIOR, big + 4096, islet_interp_id(in));
  islet_free(in, huge + ((size_t)9 << 20));
  expect_one_event(ISLET_EINTERIOR, huge + ((size_t)9 << 20), islet_interp_id(in));
  cr_assert_null(islet_owner(huge + ((size_t)5 << 20)));
  cr_assert_eq(live_blocks(in), 3);
  islet_free(in, p);
  islet_free(in, big);
  islet_free(in, huge);
  expect_no_event();
}

/* What a stale pointer does to a block after its free (a use after free);
 * ASan would rightly stop the test at it. */
static __attribute__((no_sanitize("address"))) void stale_write(void *p, uint16_t v) {
  memcpy(p, &v, sizeof v);
}

static bool among(void *const *live, int n, const void *p) {
  for (int i = 0; i < n; i++)
    if (live[i] == p) return true;
  return false;
}

/* A freed block's first bytes link it to the next free block of its page.
 * Whatever a stale write leaves there, islet never hands out a live block:
 * a link that names one (or no block of the page) is reported once and the
 * page's lists are rebuilt from its live bits. */
Test(bad, a_write_into_a_freed_block_never_hands_out_a_live_block) {
  islet_interp_t *in = islet_interp_new(rt);
  enum { N = 64, SPARE = 1024 }; /* SPARE: a page of 64-byte blocks */
  void *live[N], *spare[SPARE];
  for (int i = 0; i < N; i++) live[i] = islet_malloc(in, 64); /* one fresh page, in order */
  static const uint16_t stale[] = {1, 2, 0, 63, 4000, 0xfffe, 0xffff, 7};
  int corrupt = 0;
  for (unsigned k = 0; k < sizeof stale / sizeof *stale; k++) {
    int v = (int)(k * 7 % N), nspare = 0;
    void *victim = live[v];
    islet_free(in, victim);
    stale_write(victim, stale[k]);
    nevents = 0;
    /* until the victim comes back, then once more: what its link named */
    for (bool back = false, next = false; !next && nspare < SPARE;) {
      void *p = islet_malloc(in, 64);
      cr_assert_not_null(p);
      cr_assert(!among(live, N, p) || (p == victim && !back), "a live block handed out");
      next = back;
      if (p == victim && !back) {
        back = true;
        continue;
      }
      spare[nspare++] = p;
    }
    cr_assert_lt(nspare, SPARE, "the freed block never came back");
    for (int i = 0; i < nspare; i++) islet_free(in, spare[i]);
    for (int e = 0; e < nevents; e++) cr_assert_eq(events[e].error, ISLET_ECORRUPT);
    corrupt += nevents;
    nevents = 0;
  }
  cr_assert_geq(corrupt, 3, "links naming live blocks were not reported");
  cr_assert_eq(live_blocks(in), N);
  for (int i = 0; i < N; i++) islet_free(in, live[i]);
  expect_no_event();
  cr_assert_eq(live_blocks(in), 0);
}

Test(bad, free_after_destroy_is_reported) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  unsigned id = islet_interp_id(a);
  void *p = islet_malloc(a, 100), *big = islet_malloc(a, 1 << 20);
  islet_interp_destroy(a, NULL);
  islet_free(b, p);
  expect_one_event(ISLET_EDESTROYED, p, id);
  islet_free_any(big);
  expect_one_event(ISLET_EDESTROYED, big, id);
  cr_assert_null(islet_realloc(b, p, 10));
  expect_one_event(ISLET_EDESTROYED, p, id);
  cr_assert_eq(live_blocks(b), 0);
}

Test(bad, limit_returns_null_with_enomem_and_counts_hits) {
  islet_interp_t *in = islet_interp_new(rt);
  islet_interp_set_limit(in, 64 * 1024);
  void *p[2000];
  int n = 0;
  while (n < 2000 && (p[n] = islet_malloc(in, 1000))) n++;
  cr_assert_lt(n, 2000);
  cr_assert_geq(n, 40);
  cr_assert_eq(errno, ENOMEM);
  cr_assert_eq(islet_last_error(), ISLET_ELIMIT);
  cr_assert_null(islet_malloc(in, 1 << 20), "a large block is held to the limit too");
  cr_assert_null(islet_calloc(in, 1, 5000));
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.limit_hits, 3);
  cr_assert_leq(s.bytes, 64 * 1024);
  cr_assert_eq(s.limit, 64 * 1024);
  /* raised at run time: allocation works again */
  islet_interp_set_limit(in, 1 << 22);
  void *more = islet_malloc(in, 1 << 20);
  cr_assert_not_null(more);
  islet_free(in, more);
  islet_interp_set_limit(in, 0); /* none */
  for (int i = 0; i < n; i++) islet_free(in, p[i]);
  expect_no_event();
}

Test(bad, limit_counts_blocks_freed_by_others_once_taken_back) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_interp_set_limit(a, 4096);
  void *p[4];
  for (int i = 0; i < 4; i++) cr_assert_not_null(p[i] = islet_malloc(a, 1000));
  cr_assert_null(islet_malloc(a, 1000));
  for (int i = 0; i < 4; i++) islet_free(b, p[i]); /* pending at a */
  cr_assert_not_null(islet_malloc(a, 1000), "the limit check takes back pending frees first");
}

Test(bad, abort_policy_aborts_on_a_bad_free, .signal = SIGABRT) {
  teardown_runtime();
  capture_runtime(ISLET_CROSS_DEFER, ISLET_BAD_ABORT, ISLET_TEARDOWN_RELEASE);
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 10);
  islet_free(in, p);
  islet_free(in, p);
}

Test(bad_plain, report_without_hook_prints_one_line, .init = cr_redirect_stderr) {
  islet_runtime_t *plain = islet_runtime_new(NULL);
  islet_interp_t *in = islet_interp_new(plain);
  void *p = islet_malloc(in, 10);
  islet_free(in, p);
  islet_free(in, p);
  char expect[160];
  snprintf(expect, sizeof expect, "islet: double free: %p (owner interp 1, caller interp 1)\n", p);
  fflush(stderr);
  cr_assert_stderr_eq_str(expect);
  islet_runtime_destroy(plain);
}

/* Every entry point answers a pointer from one classification: README's
 * bad-input table, row by row, for free, try_free, realloc, usable_size,
 * owner and contains alike. */
typedef struct {
  const char *what;
  void *p;
  islet_error_t err; /* what a free reports; ISLET_OK: it frees */
  unsigned owner_id;
  islet_interp_t *owner;
  int contains;
} row_t;

static void expect_row(islet_interp_t *caller, const row_t *r) {
  cr_assert_eq(islet_usable_size(r->p), 0, "%s: usable size", r->what);
  cr_assert_eq(islet_owner(r->p), r->owner, "%s: owner", r->what);
  cr_assert_eq(islet_contains(r->p), r->contains, "%s: contains", r->what);
  cr_assert_null(islet_realloc(caller, r->p, 100), "%s: realloc", r->what);
  expect_one_event(r->err, r->p, r->owner_id);
  cr_assert_eq(islet_try_free(caller, r->p), r->contains, "%s: try_free", r->what);
  if (r->contains) expect_one_event(r->err, r->p, r->owner_id);
  islet_free(caller, r->p);
  expect_one_event(r->err, r->p, r->owner_id);
}

Test(bad, every_entry_point_answers_from_one_classification) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_interp_t *gone = islet_interp_new(rt);
  islet_interp_set_teardown(gone, ISLET_TEARDOWN_QUARANTINE); /* its range stays islet's */
  unsigned ida = islet_interp_id(a), idgone = islet_interp_id(gone);
  static int on_stack;
  char *live = islet_malloc(a, 64), *freed = islet_malloc(a, 64), *remote = islet_malloc(a, 64);
  char *large = islet_malloc(a, 100000), *dead = islet_malloc(gone, 64);
  islet_malloc(a, 64); /* keeps the page in use */
  islet_free(a, freed);
  islet_free(b, remote); /* not taken back yet */
  islet_free(a, large);
  islet_interp_destroy(gone, NULL);
  islet_runtime_flush(rt);
  expect_no_event();
  const row_t rows[] = {
      {"foreign", &on_stack, ISLET_EFOREIGN, 0, NULL, 0},
      {"destroyed", dead, ISLET_EDESTROYED, idgone, NULL, 1},
      {"a freed large block", large, ISLET_EDOUBLE_FREE, ida, NULL, 1},
      {"interior", live + 16, ISLET_EINTERIOR, ida, NULL, 1},
      {"free", freed, ISLET_EDOUBLE_FREE, ida, a, 1},
      {"freed by another", remote, ISLET_EDOUBLE_FREE, ida, a, 1},
  };
  for (unsigned i = 0; i < sizeof rows / sizeof *rows; i++) expect_row(b, &rows[i]);
  /* and a live block: each entry point sees it as one */
  cr_assert_geq(islet_usable_size(live), 64);
  cr_assert_eq(islet_owner(live), a);
  cr_assert(islet_contains(live));
  cr_assert_eq(islet_try_free(b, live), 1); /* a cross free */
  expect_no_event();
  cr_assert_eq(islet_usable_size(live), 0);
}

/* Cross-interpreter frees: the block goes back to its owner, is never
 * handed out by the freeing interpreter, and the policies do what they say. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

TestSuite(cross, .init = setup_default, .fini = teardown_runtime);

static islet_stats_t stats(islet_interp_t *in) {
  islet_stats_t s;
  islet_interp_stats(in, &s);
  return s;
}

Test(cross, block_returns_to_its_owner_and_not_to_the_freer) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_malloc(a, 64);
  islet_free(b, p);
  cr_assert_eq(stats(a).remote_pending, 1);
  cr_assert_eq(stats(b).remote_sent, 1);
  for (int i = 0; i < 5000; i++) { /* b never gets p */
    void *q = islet_malloc(b, 64);
    cr_assert_neq(q, p);
    cr_assert_eq(islet_owner(q), b);
  }
  cr_assert_eq(stats(a).blocks, 1, "still counted until a takes it back");
  islet_interp_collect(a);
  islet_stats_t s = stats(a);
  cr_assert_eq(s.blocks, 0);
  cr_assert_eq(s.remote_pending, 0);
  cr_assert_eq(s.remote_processed, 1);
  expect_no_event();
}

Test(cross, owner_reuses_blocks_it_took_back) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  enum { N = 5000 };
  static void *p[N];
  for (int i = 0; i < N; i++) p[i] = islet_malloc(a, 100);
  islet_stats_t before = stats(a);
  for (int i = 0; i < N; i++) islet_free(b, p[i]);
  for (int i = 0; i < N; i++) p[i] = islet_malloc(a, 100); /* the slow path collects */
  islet_stats_t after = stats(a);
  cr_assert_eq(after.segments, before.segments, "no new arena: freed blocks were reused");
  cr_assert_eq(after.remote_processed, N);
  for (int i = 0; i < N; i++) islet_free(a, p[i]);
}

Test(cross, the_owners_next_free_into_the_segment_takes_back_what_others_freed_there) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_malloc(a, 64), *q = islet_malloc(a, 64);
  islet_free(b, p);
  cr_assert_eq(stats(a).remote_pending, 1);
  islet_free(a, q); /* the segment is flagged: a slow free, which collects */
  islet_stats_t s = stats(a);
  cr_assert_eq(s.remote_pending, 0);
  cr_assert_eq(s.remote_processed, 1);
  cr_assert_eq(s.blocks, 0);
  void *r = islet_malloc(a, 64);
  islet_free(a, r); /* and frees into it are fast again: nothing else to see */
  cr_assert_eq(stats(a).blocks, 0);
  expect_no_event();
}

Test(cross, free_any_hands_back_without_an_interpreter) {
  islet_interp_t *a = islet_interp_new(rt);
  void *p = islet_malloc(a, 64), *big = islet_malloc(a, 200000);
  islet_free_any(p);
  islet_free_any(big);
  cr_assert_eq(stats(a).remote_pending, 2);
  islet_interp_collect(a);
  cr_assert_eq(stats(a).blocks, 0);
  cr_assert_eq(stats(a).large_blocks, 0);
  expect_no_event();
}

Test(cross, report_policy_reports_and_still_hands_back) {
  teardown_runtime();
  capture_runtime(ISLET_CROSS_REPORT, ISLET_BAD_REPORT, ISLET_TEARDOWN_RELEASE);
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_malloc(a, 64);
  islet_free(b, p);
  cr_assert_eq(events[0].offender, islet_interp_id(b));
  expect_one_event(ISLET_ECROSS, p, islet_interp_id(a));
  islet_interp_collect(a);
  cr_assert_eq(stats(a).blocks, 0);
  cr_assert_eq(stats(b).bad_frees, 0, "a cross free is not a bad free");
}

Test(cross, abort_policy_aborts, .signal = SIGABRT) {
  teardown_runtime();
  capture_runtime(ISLET_CROSS_ABORT, ISLET_BAD_REPORT, ISLET_TEARDOWN_RELEASE);
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_free(b, islet_malloc(a, 64));
}

Test(cross, policy_can_change_at_run_time) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_free(b, islet_malloc(a, 64));
  expect_no_event();
  islet_runtime_set_cross_policy(rt, ISLET_CROSS_REPORT);
  void *p = islet_malloc(a, 64);
  islet_free(b, p);
  expect_one_event(ISLET_ECROSS, p, islet_interp_id(a));
}

Test(cross, realloc_of_another_interpreters_block_moves_it_home) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  char *p = islet_malloc(a, 50);
  strcpy(p, "hello");
  char *q = islet_realloc(b, p, 40); /* shrinking would fit, but p is a's */
  cr_assert_neq(q, p);
  cr_assert_eq(islet_owner(q), b);
  cr_assert_str_eq(q, "hello");
  islet_interp_collect(a);
  cr_assert_eq(stats(a).blocks, 0);
  islet_free(b, q);
}

/* A block another interpreter freed is freed from that moment, small or
 * large, as after a local free, though its owner has not taken it back:
 * realloc must not hand it out again (ASan's poison would hide this). */
Test(cross, a_block_freed_by_another_is_not_live_before_its_owner_collects) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *blocks[] = {islet_malloc(a, 64), islet_malloc(a, 100000)};
  size_t fits[] = {60, 90000}; /* what a live block would resize in place */
  for (int i = 0; i < 2; i++) {
    void *p = blocks[i];
    islet_free(b, p);
    cr_assert_eq(islet_usable_size(p), 0, "block %d", i);
    cr_assert_eq(islet_owner(p), a);
    cr_assert_null(islet_realloc(a, p, fits[i]), "block %d handed out again", i);
    expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
    cr_assert_null(islet_realloc(b, p, fits[i]));
    expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(a));
  }
  islet_stats_t sa = stats(a);
  cr_assert_eq(sa.blocks, 2);
  cr_assert_eq(sa.remote_pending, 2);
  cr_assert_eq(stats(b).blocks, 0);
  islet_interp_collect(a);
  cr_assert_eq(stats(a).blocks, 0);
  expect_no_event();
}

/* Threads: each publishes its block i, then frees the other's block i. */
typedef struct {
  islet_interp_t *self;
  void **mine, **theirs;
} pair_t;

enum { PING_N = 20000 };

static void *ping(void *arg) {
  pair_t *t = arg;
  for (int i = 0; i < PING_N; i++) {
    void *p = islet_malloc(t->self, 16 + (size_t)(i % 300));
    memset(p, 0x5a, 16);
    __atomic_store_n(&t->mine[i], p, __ATOMIC_RELEASE);
    void *q;
    while (!(q = __atomic_load_n(&t->theirs[i], __ATOMIC_ACQUIRE))) sched_yield();
    islet_free(t->self, q);
  }
  return NULL;
}

Test(cross, two_threads_free_each_others_blocks) {
  static void *from_a[PING_N], *from_b[PING_N];
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  pair_t ta = {a, from_a, from_b}, tb = {b, from_b, from_a};
  pthread_t x, y;
  pthread_create(&x, NULL, ping, &ta);
  pthread_create(&y, NULL, ping, &tb);
  pthread_join(x, NULL);
  pthread_join(y, NULL);
  islet_interp_collect(a);
  islet_interp_collect(b);
  islet_stats_t sa = stats(a), sb = stats(b);
  cr_assert_eq(sa.blocks, 0);
  cr_assert_eq(sb.blocks, 0);
  cr_assert_eq(sa.remote_processed, PING_N);
  cr_assert_eq(sb.remote_processed, PING_N);
  cr_assert_eq(sa.remote_sent, PING_N);
  expect_no_event();
}

Test(cross, large_blocks_freed_by_others_come_back_to_a_large_only_allocator) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  for (int i = 0; i < 200; i++) islet_free(b, islet_malloc(a, 1 << 20));
  islet_stats_t s = stats(a);
  cr_assert_leq(s.large_blocks, 1, "%zu large blocks held: remote frees never taken back",
                s.large_blocks);
  cr_assert_leq(s.mapped, (size_t)8 << 20);
  cr_assert_geq(s.remote_processed, 199);
}

/* Free lists: O(1) reuse, caps, stats, never shared, cleared and disabled
 * at finalization, and the CPython preset. */
#include "common.h"
#include "islet_freelist.h"

static void setup_lists(void) {
  setup_default();
  cr_assert_eq(islet_freelists_register(rt, islet_freelist_cpython, ISLET_FL_CPYTHON_KINDS), 0);
  islet_freelist_kind_t none = {40, 64, 0, "cap zero"};
  cr_assert_eq(islet_freelists_register(rt, &none, 1), 0);
}

TestSuite(freelist, .init = setup_lists, .fini = teardown_runtime);

static islet_freelist_stats_t stats(islet_interp_t *in, unsigned kind) {
  islet_freelist_stats_t s;
  islet_freelist_stats(in, kind, &s);
  return s;
}

Test(freelist, reuses_the_last_block_pushed) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_freelist_alloc(in, ISLET_FL_FLOAT);
  cr_assert_not_null(p);
  cr_assert_eq(stats(in, ISLET_FL_FLOAT).misses, 1);
  islet_freelist_free(in, ISLET_FL_FLOAT, p);
  cr_assert_eq(stats(in, ISLET_FL_FLOAT).count, 1);
  cr_assert_eq(islet_freelist_alloc(in, ISLET_FL_FLOAT), p);
  cr_assert_eq(stats(in, ISLET_FL_FLOAT).hits, 1);
  islet_freelist_free(in, ISLET_FL_FLOAT, p);
}

Test(freelist, cap_is_honoured_and_high_water_recorded) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p[150];
  for (int i = 0; i < 150; i++) p[i] = islet_freelist_alloc(in, ISLET_FL_FLOAT);
  int kept = 0;
  for (int i = 0; i < 150; i++) kept += islet_freelist_push(in, ISLET_FL_FLOAT, p[i]);
  cr_assert_eq(kept, 100, "CPython's float cap is 100");
  islet_freelist_stats_t s = stats(in, ISLET_FL_FLOAT);
  cr_assert_eq(s.high_water, 100);
  cr_assert_eq(s.refused, 50);
  for (int i = 100; i < 150; i++) islet_free(in, p[i]);
  islet_stats_t hs;
  islet_interp_stats(in, &hs);
  cr_assert_eq(hs.blocks, 100, "kept blocks stay allocated in the heap");
}

Test(freelist, preset_has_cpython_caps) {
  cr_assert_eq(islet_freelist_cpython[ISLET_FL_TUPLE1].cap, 2000);
  cr_assert_eq(islet_freelist_cpython[ISLET_FL_TUPLE1 + 19].cap, 2000);
  cr_assert_eq(islet_freelist_cpython[ISLET_FL_TUPLE1 + 19].size, 24 + 8 * 20);
  size_t caps[] = {
      [ISLET_FL_FLOAT] = 100,    [ISLET_FL_LIST] = 80,         [ISLET_FL_DICT] = 80,
      [ISLET_FL_DICTKEYS] = 80,  [ISLET_FL_SLICE] = 1,         [ISLET_FL_CONTEXT] = 255,
      [ISLET_FL_ASYNC_GEN] = 80, [ISLET_FL_MEMORY_ERROR] = 16, [ISLET_FL_INT] = 100};
  for (unsigned k = ISLET_FL_FLOAT; k < ISLET_FL_CPYTHON_KINDS; k++)
    cr_assert_eq(islet_freelist_cpython[k].cap, caps[k], "%s", islet_freelist_cpython[k].name);
}

Test(freelist, another_interpreters_block_is_refused_and_reported) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  void *p = islet_freelist_alloc(a, ISLET_FL_LIST);
  cr_assert_eq(islet_freelist_push(b, ISLET_FL_LIST, p), 0);
  expect_one_event(ISLET_EISOLATION, p, islet_interp_id(a));
  cr_assert_eq(stats(b, ISLET_FL_LIST).count, 0);
  islet_free(a, p);
}

Test(freelist, cap_zero_keeps_nothing) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_freelist_alloc(in, 40);
  cr_assert_not_null(p);
  cr_assert_eq(islet_freelist_push(in, 40, p), 0);
  cr_assert_eq(islet_last_error(), ISLET_OK);
  islet_free(in, p);
  expect_no_event();
}

Test(freelist, unknown_kind_is_refused) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 64);
  cr_assert_eq(islet_freelist_push(in, 50, p), 0);
  cr_assert_eq(islet_last_error(), ISLET_EINVAL);
  cr_assert_null(islet_freelist_pop(in, 50));
  cr_assert_null(islet_freelist_alloc(in, 63));
  islet_freelist_kind_t bad = {ISLET_FREELIST_KINDS, 64, 1, "bad id"};
  cr_assert_eq(islet_freelists_register(rt, &bad, 1), ISLET_EINVAL);
  islet_free(in, p);
}

Test(freelist, finalize_empties_into_the_heap_and_disables) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p[10];
  for (int i = 0; i < 10; i++) p[i] = islet_freelist_alloc(in, ISLET_FL_TUPLE1 + 2);
  for (int i = 0; i < 10; i++) islet_freelist_free(in, ISLET_FL_TUPLE1 + 2, p[i]);
  islet_freelists_finalize(in);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0, "every kept block went back to the heap");
  void *late = islet_malloc(in, 48);
  cr_assert_eq(islet_freelist_push(in, ISLET_FL_TUPLE1 + 2, late), 0, "no late refill");
  cr_assert_eq(islet_last_error(), ISLET_EDISABLED);
  islet_free(in, late);
}

Test(freelist, teardown_clears_lists_so_they_are_not_leaks) {
  islet_interp_t *in = islet_interp_new(rt);
  for (int i = 0; i < 50; i++) islet_freelist_free(in, ISLET_FL_DICT, islet_malloc(in, 48));
  cr_assert_eq(stats(in, ISLET_FL_DICT).count, 50);
  islet_leak_report_t r;
  islet_interp_destroy(in, &r);
  cr_assert_eq(r.blocks, 0);
}

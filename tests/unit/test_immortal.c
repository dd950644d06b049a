/* Immortal objects: the encoding, no stores, immortalization, the final
 * sweep, decref below zero, and the isolation checker. */
#define ISLET_CHECK_ISOLATION 1
#include "common.h"
#include "islet_object.h"

TestSuite(immortal, .init = setup_default, .fini = teardown_runtime);

static int finalized;
static void count_finalize(islet_object_t *ob) {
  (void)ob;
  finalized++;
}
static const islet_type_t counted = {"counted", count_finalize};

/* In .rodata: any store to it faults. */
static const islet_object_t read_only = ISLET_OBJECT_HEAD_INIT(&counted);

Test(immortal, static_immortals_are_never_written) {
  islet_object_t *ob = (islet_object_t *)&read_only;
  cr_assert(islet_is_immortal(ob));
  for (int i = 0; i < 1000; i++) {
    islet_incref(ob);
    islet_decref(ob);
    islet_decref(ob);
  }
  cr_assert_eq(read_only.ob_refcnt, ISLET_STATIC_IMMORTAL_REFCNT);
  cr_assert_eq(finalized, 0);
}

Test(immortal, encoding_matches_the_configured_cpython_abi) {
  cr_assert_eq(islet_immortal_abi(), ISLET_IMMORTAL_ABI);
#if ISLET_IMMORTAL_ABI >= 314
  cr_assert_eq(ISLET_IMMORTAL_REFCNT, (islet_ssize_t)3 << 30);
  cr_assert_eq(ISLET_STATIC_IMMORTAL_REFCNT, ((islet_ssize_t)5 << 48) | ((islet_ssize_t)3 << 30));
#else
  cr_assert_eq(ISLET_IMMORTAL_REFCNT, (islet_ssize_t)0xffffffff);
#endif
  islet_object_t ob = {{(islet_ssize_t)1 << 31}, &counted}; /* the lowest immortal count */
  cr_assert(islet_is_immortal(&ob));
  ob.ob_refcnt = ((islet_ssize_t)1 << 31) - 1; /* the highest mortal one */
  cr_assert(!islet_is_immortal(&ob));
}

Test(immortal, mortal_objects_count_and_die_at_zero) {
  islet_interp_t *in = islet_interp_new(rt);
  islet_interp_enter(in);
  finalized = 0;
  islet_object_t *ob = islet_object_new(in, &counted, 64);
  cr_assert_eq(ob->ob_refcnt, 1);
  islet_incref(ob);
  cr_assert_eq(ob->ob_refcnt, 2);
  islet_decref(ob);
  cr_assert_eq(finalized, 0);
  islet_decref(ob);
  cr_assert_eq(finalized, 1);
  islet_stats_t s;
  islet_interp_stats(in, &s);
  cr_assert_eq(s.blocks, 0, "the object's memory went back to its heap");
  islet_interp_enter(NULL);
  expect_no_event();
}

/* The destroyed interpreter's memory is gone: a later dealloc on this
 * thread must not use it as the freeing interpreter. */
Test(immortal, destroying_the_held_interpreter_leaves_none_held) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_interp_enter(a);
  islet_interp_destroy(a, NULL);
  cr_assert_null(islet_current(), "the thread still holds a destroyed interpreter");
  islet_object_t *ob = islet_object_new(b, &counted, 64);
  islet_decref(ob); /* freed by no interpreter: handed back to b */
  islet_interp_collect(b);
  cr_assert_eq(live_blocks(b), 0);
  expect_no_event();
}

Test(immortal, immortalized_objects_are_not_counted_or_freed) {
  islet_interp_t *in = islet_interp_new(rt);
  islet_object_t *ob = islet_object_new(in, &counted, 32);
  cr_assert_eq(islet_immortalize(ob), ISLET_OK);
  cr_assert(islet_is_immortal(ob));
  islet_ssize_t before = ob->ob_refcnt;
  for (int i = 0; i < 10; i++) islet_decref(ob);
  islet_incref(ob);
  cr_assert_eq(ob->ob_refcnt, before);
  cr_assert_eq(islet_immortalize(ob), ISLET_EIMMORTAL, "immortalizing twice is refused");
  expect_one_event(ISLET_EIMMORTAL, ob, islet_interp_id(in));
}

Test(immortal, decref_below_zero_is_reported_and_changes_nothing) {
  islet_interp_t *in = islet_interp_new(rt);
  islet_interp_enter(in);
  islet_object_t *ob = islet_object_new(in, &counted, 32);
  ob->ob_refcnt = 0; /* a count already spent */
  finalized = 0;
  islet_decref(ob);
  expect_one_event(ISLET_EREFCNT, ob, islet_interp_id(in));
  cr_assert_eq(ob->ob_refcnt, 0);
  cr_assert_eq(finalized, 0);
  islet_interp_enter(NULL);
}

Test(immortal, the_final_sweep_frees_runtime_immortals_exactly_once_after_the_interpreters) {
  finalized = 0;
  islet_object_t *shared[10];
  for (int i = 0; i < 10; i++) {
    shared[i] = islet_runtime_object_new(rt, &counted, 48);
    cr_assert_not_null(shared[i]);
    cr_assert_eq(islet_immortalize(shared[i]), ISLET_OK);
  }
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_incref(shared[3]);
  islet_interp_destroy(a, NULL);
  islet_interp_destroy(b, NULL);
  cr_assert_eq(finalized, 0, "immortals outlive every interpreter");
  islet_runtime_destroy(rt);
  rt = islet_runtime_new(NULL); /* for the fixture's teardown */
  cr_assert_eq(finalized, 10);
}

Test(immortal, checker_reports_another_interpreters_mortal_object) {
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  islet_object_t *mine = islet_object_new(a, &counted, 32);
  islet_object_t *forever = islet_runtime_object_new(rt, &counted, 32);
  islet_immortalize(forever);
  islet_interp_enter(b);
  islet_incref(forever); /* immortal: fine from anywhere */
  islet_decref(forever);
  expect_no_event();
  islet_incref(mine);
  cr_assert_eq(events[0].offender, islet_interp_id(b));
  expect_one_event(ISLET_EISOLATION, mine, islet_interp_id(a));
  islet_runtime_check_isolation(rt, 0);
  islet_decref(mine);
  expect_no_event();
  islet_interp_enter(a);
  islet_decref(mine); /* its own interpreter: fine, and it dies here */
  expect_no_event();
  islet_interp_enter(NULL);
}

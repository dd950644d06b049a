/* Singleton tables: both policies, O(1) lookup, teardown order, the CPython
 * preset, and bad ids. */
#include "common.h"
#include "islet_singletons.h"

TestSuite(singletons, .init = setup_default, .fini = teardown_runtime);

static int order[8], norder, built;

static islet_object_t *make(islet_runtime_t *r, islet_interp_t *in, void *ctx) {
  (void)ctx;
  built++;
  return in ? islet_object_new(in, &islet_int_type, sizeof(islet_int_t))
            : islet_runtime_object_new(r, &islet_int_type, sizeof(islet_int_t));
}
static void note(islet_object_t *ob, void *ctx) {
  (void)ob;
  order[norder++] = (int)(intptr_t)ctx;
}

Test(singletons, per_interpreter_slots_are_built_per_interpreter_and_torn_down_in_reverse) {
  islet_singleton_def_t defs[] = {{10, ISLET_PER_INTERPRETER, make, note, (void *)1},
                                  {11, ISLET_PER_INTERPRETER, make, note, (void *)2},
                                  {12, ISLET_SHARED_IMMORTAL, make, note, (void *)3}};
  built = norder = 0;
  cr_assert_eq(islet_singletons_register(rt, defs, 3), 0);
  cr_assert_eq(built, 1, "the shared slot is built once, now");
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  cr_assert_eq(built, 5);
  islet_object_t *a10 = islet_singleton(a, 10), *b10 = islet_singleton(b, 10);
  cr_assert(a10 && b10 && a10 != b10);
  cr_assert_eq(islet_owner(a10), a);
  cr_assert_eq(islet_singleton(a, 12), islet_singleton(b, 12), "one shared object");
  cr_assert(islet_is_immortal(islet_singleton(a, 12)));
  cr_assert(!islet_is_immortal(a10));
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert_eq(norder, 2);
  cr_assert_eq(order[0], 2, "reverse order of registration");
  cr_assert_eq(order[1], 1);
  cr_assert_eq(r.blocks, 0, "per-interpreter singletons are freed, not leaked");
  islet_interp_destroy(b, NULL);
  cr_assert_eq(norder, 4, "the shared destructor waits for the runtime's end");
  islet_runtime_destroy(rt);
  rt = islet_runtime_new(NULL);
  cr_assert_eq(norder, 5);
  cr_assert_eq(order[4], 3);
}

Test(singletons, bad_and_unregistered_ids) {
  islet_singleton_def_t dup[] = {{7, ISLET_PER_INTERPRETER, make, NULL, NULL},
                                 {7, ISLET_PER_INTERPRETER, make, NULL, NULL}};
  cr_assert_eq(islet_singletons_register(rt, dup, 2), ISLET_EINVAL);
  islet_singleton_def_t big = {ISLET_SINGLETONS_MAX, ISLET_PER_INTERPRETER, make, NULL, NULL};
  cr_assert_eq(islet_singletons_register(rt, &big, 1), ISLET_EINVAL);
  islet_interp_t *in = islet_interp_new(rt);
  cr_assert_not_null(islet_singleton(in, 7));
  cr_assert_null(islet_singleton(in, 8));
  cr_assert_eq(islet_last_error(), ISLET_ENOENT);
  cr_assert_null(islet_singleton(in, 5000));
}

static void check_preset(islet_singleton_policy_t policy) {
  cr_assert_eq(islet_singletons_cpython(rt, policy), 0);
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt);
  for (long v = -5; v <= 256; v++) {
    islet_int_t *i = islet_small_int(a, v);
    cr_assert_not_null(i);
    cr_assert_eq(i->value, v);
    cr_assert_eq(i->ob.ob_type, &islet_int_type);
    cr_assert_eq(i == islet_small_int(b, v), policy == ISLET_SHARED_IMMORTAL);
  }
  cr_assert_null(islet_small_int(a, 257));
  cr_assert_null(islet_small_int(a, -6));
  for (int c = 0; c < 256; c++) {
    islet_bytes_t *s = (islet_bytes_t *)islet_singleton(a, ISLET_S_LATIN1_CHAR + (unsigned)c);
    islet_bytes_t *by = (islet_bytes_t *)islet_singleton(a, ISLET_S_BYTE_CHAR + (unsigned)c);
    cr_assert(s->size == 1 && s->data[0] == c && s->ob.ob_type == &islet_str_type);
    cr_assert(by->size == 1 && by->data[0] == c && by->ob.ob_type == &islet_bytes_type);
  }
  cr_assert_eq(((islet_tuple_t *)islet_singleton(a, ISLET_S_EMPTY_TUPLE))->size, 0);
  cr_assert_eq(((islet_bytes_t *)islet_singleton(a, ISLET_S_EMPTY_STR))->size, 0);
  cr_assert_eq(((islet_int_t *)islet_singleton(a, ISLET_S_TRUE))->value, 1);
  cr_assert_eq(islet_singleton(a, ISLET_S_NONE)->ob_type, &islet_none_type);
  cr_assert_eq(islet_singleton(a, ISLET_S_NOTIMPLEMENTED)->ob_type, &islet_notimplemented_type);
  islet_leak_report_t r;
  islet_interp_destroy(a, &r);
  cr_assert_eq(r.blocks, 0);
}

Test(singletons, cpython_preset_shared_immortal) {
  check_preset(ISLET_SHARED_IMMORTAL);
}
Test(singletons, cpython_preset_per_interpreter) {
  check_preset(ISLET_PER_INTERPRETER);
}

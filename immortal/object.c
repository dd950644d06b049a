/* Objects: creation, deallocation and the isolation checker.
 *
 * Why: the inline reference counting in islet_object.h needs a few
 * out-of-line partners: freeing an object whose count reached zero into the
 * right heap, reporting a decref below zero instead of corrupting memory, and
 * the checker that catches an interpreter touching another interpreter's
 * mortal object (the bug class of CPython gh-116510 and gh-119213), using
 * the heap's owner lookup.  Immortal objects always pass: sharing them is
 * the point.
 */
#include "immortal.h"
#include <stdatomic.h>

int islet_immortal_abi(void) {
  return ISLET_IMMORTAL_ABI;
}

void islet_runtime_check_isolation(islet_runtime_t *rt, int on) {
  immortals_t *im = islet_immortals(rt);
  if (im) atomic_store_explicit(&im->unchecked, !on, memory_order_relaxed);
}

/* On until islet_runtime_check_isolation turns it off. */
static bool checks_isolation(islet_runtime_t *rt) {
  immortals_t *im = islet_runtime_state(rt, RT_EXT_IMMORTALS);
  return !im || !atomic_load_explicit(&im->unchecked, memory_order_relaxed);
}

islet_object_t *islet_object_new(islet_interp_t *in, const islet_type_t *type, size_t size) {
  islet_object_t *ob = islet_malloc(in, size < sizeof *ob ? sizeof *ob : size);
  if (ob) *ob = (islet_object_t){{1}, type};
  return ob;
}

void islet_dealloc(islet_object_t *ob) {
  if (ob->ob_type && ob->ob_type->finalize) ob->ob_type->finalize(ob);
  islet_interp_t *current = islet_current();
  if (current)
    islet_free(current, ob);
  else
    islet_free_any(ob);
}

void islet_refcnt_underflow(islet_object_t *ob) {
  islet_report_owner(ob, islet_current(), ISLET_EREFCNT);
}

void islet_check_access(const islet_object_t *ob) {
  islet_interp_t *current = islet_current();
  if (islet_is_immortal(ob) || !current) return;
  islet_interp_t *owner = islet_owner(ob);
  if (!owner || owner == current || !checks_isolation(islet_interp_runtime(owner))) return;
  islet_report(islet_interp_runtime(owner), current, ISLET_EISOLATION, ob, islet_interp_id(owner));
}

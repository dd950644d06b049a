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
#include "islet_object.h"
#include "internal.h"

static _Thread_local islet_interp_t *current;

void islet_interp_enter(islet_interp_t *in) {
  current = in;
}
islet_interp_t *islet_current(void) {
  return current;
}
void islet_interp_leave(islet_interp_t *in) {
  if (current == in) current = NULL;
}
int islet_immortal_abi(void) {
  return ISLET_IMMORTAL_ABI;
}

void islet_runtime_check_isolation(islet_runtime_t *rt, int on) {
  atomic_store_explicit(&rt->check_isolation, on != 0, memory_order_relaxed);
}

islet_object_t *islet_object_new(islet_interp_t *in, const islet_type_t *type, size_t size) {
  islet_object_t *ob = islet_malloc(in, size < sizeof *ob ? sizeof *ob : size);
  if (ob) *ob = (islet_object_t){{1}, type};
  return ob;
}

void islet_dealloc(islet_object_t *ob) {
  if (ob->ob_type && ob->ob_type->finalize) ob->ob_type->finalize(ob);
  if (current)
    islet_free(current, ob);
  else
    islet_free_any(ob);
}

void islet_refcnt_underflow(islet_object_t *ob) {
  islet_interp_t *owner = islet_owner(ob);
  islet_report(owner ? owner->rt : NULL, current, ISLET_EREFCNT, ob, owner ? owner->id : 0);
}

void islet_check_access(const islet_object_t *ob) {
  if (islet_is_immortal(ob) || !current) return;
  islet_interp_t *owner = islet_owner(ob);
  if (!owner || owner == current ||
      !atomic_load_explicit(&owner->rt->check_isolation, memory_order_relaxed))
    return;
  islet_report(owner->rt, current, ISLET_EISOLATION, ob, owner->id);
}

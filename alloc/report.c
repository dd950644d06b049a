/* Errors and reports: the per-thread error code and the one-line report.
 *
 * Why: bad input must have one clear, documented result.  Allocation
 * failures return NULL and set errno and islet_last_error(); a bad free
 * changes nothing and is reported as one line naming the pointer, its owner
 * and the caller (or handed to the runtime's on_event hook), then aborts if
 * the policy says so.
 */
#include "internal.h"
#include <errno.h>
#include <stdlib.h>

static _Thread_local islet_error_t last_error;
islet_runtime_t *_Atomic islet_default_rt;

static const char *const names[] = {
    [ISLET_OK] = "ok",
    [ISLET_ENOMEM] = "out of memory",
    [ISLET_ELIMIT] = "memory limit reached",
    [ISLET_EOVERFLOW] = "size overflow",
    [ISLET_EINVAL] = "invalid argument",
    [ISLET_EDOUBLE_FREE] = "double free",
    [ISLET_EFOREIGN] = "free of a pointer islet did not allocate",
    [ISLET_EINTERIOR] = "free of an interior pointer",
    [ISLET_EDESTROYED] = "free after its interpreter was destroyed",
    [ISLET_ECROSS] = "cross-interpreter free",
    [ISLET_EISOLATION] = "object of another interpreter touched",
    [ISLET_EREFCNT] = "decref below zero",
    [ISLET_EIMMORTAL] = "already immortal",
    [ISLET_ENOENT] = "no such singleton",
    [ISLET_EDISABLED] = "free list disabled",
    [ISLET_ECORRUPT] = "a freed block of this page was written to (use after free)",
};

const char *islet_strerror(islet_error_t e) {
  return (unsigned)e < sizeof names / sizeof *names ? names[e] : "unknown error";
}

islet_error_t islet_last_error(void) {
  return last_error;
}

/* errno follows malloc's conventions for allocation errors only. */
void islet_set_error(islet_error_t e) {
  last_error = e;
  if (e == ISLET_EINVAL)
    errno = EINVAL;
  else if (e == ISLET_ENOMEM || e == ISLET_ELIMIT || e == ISLET_EOVERFLOW)
    errno = ENOMEM;
}

void islet_report(islet_runtime_t *rt, islet_interp_t *caller, islet_error_t e, const void *p,
                  unsigned owner) {
  if (caller) {
    rt = caller->rt;
    if (e >= ISLET_EDOUBLE_FREE && e <= ISLET_EDESTROYED) caller->bad_frees++;
  }
  if (!rt) rt = atomic_load(&islet_default_rt);
  last_error = e;
  islet_event_t ev = {e, p, owner, caller ? caller->id : 0};
  if (rt && rt->cfg.on_event)
    rt->cfg.on_event(rt->cfg.event_ctx, &ev);
  else
    fprintf(stderr, "islet: %s: %p (owner interp %u, caller interp %u)\n", islet_strerror(e), p,
            owner, ev.offender);
  bool abort_now = rt && (e == ISLET_ECROSS ? islet_cross_policy(rt) == ISLET_CROSS_ABORT
                                            : rt->cfg.bad_free == ISLET_BAD_ABORT);
  if (abort_now) {
    if (rt->cfg.on_event) /* the hook replaced the line; abort still says why */
      fprintf(stderr, "islet: %s: %p (owner interp %u, caller interp %u)\n", islet_strerror(e), p,
              owner, ev.offender);
    abort();
  }
}

/* immortal/'s state per runtime, and what singletons/ uses of it.
 *
 * Why a header: singletons' shared objects are immortalized with a
 * destructor of their own (islet_immortalize_fin), and the isolation
 * checker's switch lives with the immortals, not in the heap. */
#ifndef ISLET_IMMORTAL_H
#define ISLET_IMMORTAL_H

#include "islet_object.h"
#include "module.h"
#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
  void *ob;
  void (*fin)(islet_object_t *ob, void *ctx); /* NULL: the type's finalize */
  void *ctx;
} immortal_entry_t;

/* The runtime's immortals (module.h's state): its own heap's, finalized and
 * freed by the final sweep, newest first. */
typedef struct {
  islet_runtime_t *rt;    /* first: see islet_runtime_module */
  _Atomic bool unchecked; /* islet_runtime_check_isolation(rt, 0) */
  immortal_entry_t *objs; /* under immortal.c's lock */
  size_t n, cap;
} immortals_t;

/* Made on first use, with the sweep's hook; NULL without memory. */
immortals_t *islet_immortals(islet_runtime_t *rt);

/* islet_immortalize with a finalizer run by the final sweep instead of the
 * type's (singletons' destructors). */
int islet_immortalize_fin(islet_object_t *ob, void (*fin)(islet_object_t *, void *), void *ctx);

/* Reports e on p, naming p's owner (if any) and caller. */
void islet_report_owner(const void *p, islet_interp_t *caller, islet_error_t e);

#endif

/* The object side of the stress run (objects.h).
 *
 * Every thread hammers the same shared immortal objects (the CPython preset's
 * small ints and characters, plus a few immortalized runtime objects) with
 * plain increfs and decrefs: they must never be written, so TSan must see no
 * race and their counts must be unchanged at the end.  Each interpreter also
 * has its own per_interpreter singleton, checked to be its own, and keeps a
 * ring of free-list blocks of the tuple kinds.
 */
#define ISLET_CHECK_ISOLATION 1
#include "objects.h"
#include "islet_freelist.h"
#include "islet_singletons.h"
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define NSHARED 8
#define OWN_ID 1000

static islet_object_t *shared[NSHARED];
static islet_ssize_t shared_count[NSHARED];
static _Atomic int failures;

static islet_object_t *own(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  (void)rt;
  (void)ctx;
  return islet_object_new(in, &islet_int_type, sizeof(islet_int_t));
}

void objects_setup(islet_runtime_t *rt) {
  islet_freelists_register(rt, islet_freelist_cpython, ISLET_FL_CPYTHON_KINDS);
  islet_singletons_cpython(rt, ISLET_SHARED_IMMORTAL);
  islet_singleton_def_t mine = {OWN_ID, ISLET_PER_INTERPRETER, own, NULL, NULL};
  islet_singletons_register(rt, &mine, 1);
  for (int i = 0; i < NSHARED; i++) {
    shared[i] = islet_runtime_object_new(rt, &islet_int_type, sizeof(islet_int_t));
    islet_immortalize(shared[i]);
    shared_count[i] = shared[i]->ob_refcnt;
  }
}

void objects_step(islet_interp_t *in, long i, void **ring) {
  islet_object_t *s = shared[i % NSHARED];
  islet_incref(s);
  islet_decref(s);
  islet_int_t *small = islet_small_int(in, i % 262 - 5);
  islet_incref(&small->ob);
  islet_decref(&small->ob);
  islet_object_t *c = islet_singleton(in, ISLET_S_LATIN1_CHAR + (unsigned)(i & 255));
  islet_incref(c);
  islet_decref(c);
  if (i % 1024 == 0 && islet_owner(islet_singleton(in, OWN_ID)) != in) {
    fprintf(stderr, "stress: a per-interpreter singleton of another interpreter\n");
    atomic_fetch_add(&failures, 1);
  }
  unsigned kind = ISLET_FL_TUPLE1 + (unsigned)(i % 20);
  size_t r = (size_t)i % RING;
  if (ring[r]) islet_freelist_free(in, ISLET_FL_TUPLE1 + (unsigned)((i - RING) % 20), ring[r]);
  ring[r] = islet_freelist_alloc(in, kind);
  if (ring[r]) memset(ring[r], 0x33, 24);
}

void objects_end_cycle(islet_interp_t *in, void **ring) {
  for (size_t r = 0; r < RING; r++) {
    islet_free(in, ring[r]); /* the size of the kind it came from does not matter to free */
    ring[r] = NULL;
  }
  islet_freelists_finalize(in);
}

int objects_failures(void) {
  for (int i = 0; i < NSHARED; i++)
    if (shared[i]->ob_refcnt != shared_count[i]) {
      fprintf(stderr, "stress: shared immortal %d was written: %lld\n", i,
              (long long)shared[i]->ob_refcnt);
      atomic_fetch_add(&failures, 1);
    }
  return atomic_load(&failures);
}

/* (5) Interpreter teardown: create a heap, leave k blocks live in it,
 * destroy it.
 *
 * Why only create and destroy are timed: the claim under test is that
 * ending an interpreter costs time proportional to its arenas, not to the
 * blocks its extensions forgot to free.  Filling the heap is setup, and the
 * background return of the memory (islet_runtime_flush) happens between
 * repetitions, outside the timed region.
 */
#include "bench.h"

teardown_us_t teardown_us(const alloc_vt_t *vt, const seq_t *seq, size_t k) {
  uint64_t t0 = now_ns();
  void *heap = vt->setup();
  uint64_t t1 = now_ns();
  for (size_t i = 0; i < k; i++)
    if (!vt->malloc(heap, seq->size[i % seq->nops])) die("%s: allocation failed", vt->name);
  uint64_t t2 = now_ns();
  vt->teardown(heap);
  uint64_t t3 = now_ns();
  if (vt->quiesce) vt->quiesce();
  return (teardown_us_t){.create_us = (double)(t1 - t0) / 1e3,
                         .destroy_us = (double)(t3 - t2) / 1e3};
}

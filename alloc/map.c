/* The owner map: a two-level radix tree from 4 MiB granule to the header of
 * the islet region that starts there.
 *
 * Why: islet_owner() and every free must tell islet memory from foreign
 * memory for any address, for every interpreter, without a lock (jemalloc's
 * arenas.lookup takes one) and without reading the address itself (it may be
 * unmapped).  Regions are granule-aligned, so only their base granule is
 * recorded: two loads answer.  Leaves are created once, with a CAS, and never
 * freed; entries are written by the owning interpreter (release) and read by
 * anyone (acquire).
 */
#include "internal.h"
#include <sys/mman.h>

#define ADDR_BITS 48
#define LEAF_BITS (ADDR_BITS - SEG_SHIFT - ROOT_BITS)
#define ROOT_BITS 12
#define LEAF_LEN ((size_t)1 << LEAF_BITS)

typedef _Atomic uintptr_t leaf_t[LEAF_LEN];
static _Atomic(leaf_t *) root[1u << ROOT_BITS];

uintptr_t islet_map_get(const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (UNLIKELY(a >> ADDR_BITS)) return 0;
  leaf_t *leaf = atomic_load_explicit(&root[a >> (SEG_SHIFT + LEAF_BITS)], memory_order_acquire);
  if (UNLIKELY(!leaf)) return 0;
  return atomic_load_explicit(&(*leaf)[(a >> SEG_SHIFT) & (LEAF_LEN - 1)], memory_order_acquire);
}

static leaf_t *leaf_for(uintptr_t a) {
  _Atomic(leaf_t *) *slot = &root[a >> (SEG_SHIFT + LEAF_BITS)];
  leaf_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
  if (leaf) return leaf;
  leaf_t *fresh =
      mmap(NULL, sizeof(leaf_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return NULL;
  if (atomic_compare_exchange_strong_explicit(slot, &leaf, fresh, memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  munmap(fresh, sizeof(leaf_t)); /* another thread won; leaf holds its leaf */
  return leaf;
}

/* False only when a new leaf cannot be mapped; the caller then gives the
 * region back, so an unregistered region is never handed out. */
bool islet_map_set(const void *base, uintptr_t word) {
  uintptr_t a = (uintptr_t)base;
  if (a >> ADDR_BITS) return false;
  leaf_t *leaf = leaf_for(a);
  if (!leaf) return false;
  atomic_store_explicit(&(*leaf)[(a >> SEG_SHIFT) & (LEAF_LEN - 1)], word, memory_order_release);
  return true;
}

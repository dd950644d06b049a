/* The owner map: a two-level radix tree from 4 MiB granule to the header of
 * the islet region that starts there.
 *
 * Why: islet_owner() and every free must tell islet memory from foreign
 * memory for any address, for every interpreter, without a lock (jemalloc's
 * arenas.lookup takes one) and without reading the address itself (it may be
 * unmapped).  Regions are granule-aligned, so only their base granule is
 * recorded: two loads answer (islet_map_get, inline in internal.h).  A
 * region that is gone leaves a tombstone, so a late free of it is reported
 * for what it is (a double free, a destroyed owner's block).  Leaves
 * are created once, with a CAS, and never freed; entries are written by the
 * owning interpreter (release) and read by anyone (acquire).  The free fast
 * path asks the fast map instead (fastmap.c).
 */
#include "internal.h"
#include <sys/mman.h>

static map_leaf_t no_leaf; /* every root slot's until its leaf exists; never written */
_Atomic(map_leaf_t *) islet_map_root[1u << MAP_ROOT_BITS] = {[0 ...(1u << MAP_ROOT_BITS) - 1] =
                                                                 &no_leaf};

static map_leaf_t *leaf_for(uintptr_t a) {
  _Atomic(map_leaf_t *) *slot = &islet_map_root[a >> (SEG_SHIFT + MAP_LEAF_BITS)];
  map_leaf_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
  if (leaf != &no_leaf) return leaf;
  map_leaf_t *fresh =
      mmap(NULL, sizeof(map_leaf_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) return NULL;
  if (atomic_compare_exchange_strong_explicit(slot, &leaf, fresh, memory_order_acq_rel,
                                              memory_order_acquire))
    return fresh;
  munmap(fresh, sizeof(map_leaf_t)); /* another thread won; leaf holds its leaf */
  return leaf;
}

/* A granule that no longer starts a region (a tombstone, 0, or the inside
 * of a large block) starts no small segment either: its fast map entry goes
 * (fastmap.c).  A small segment's owner sets it (segment.c). */
static bool set_one(uintptr_t a, uintptr_t word) {
  map_leaf_t *leaf = a >> MAP_ADDR_BITS ? NULL : leaf_for(a);
  if (!leaf) return false;
  if (word != a) islet_fast_set((void *)a, 0);
  atomic_store_explicit(&(*leaf)[(a >> SEG_SHIFT) & (MAP_LEAF_LEN - 1)], word,
                        memory_order_release);
  return true;
}

/* Every granule of [base, base + size) says word, so a pointer anywhere in a
 * large block finds its header.  False only when a new leaf cannot be
 * mapped; the range is then left unregistered and the caller gives the
 * region back, so an unregistered region is never handed out. */
bool islet_map_set(const void *base, size_t size, uintptr_t word) {
  uintptr_t a = (uintptr_t)base, end = a + size;
  for (uintptr_t g = a; g < end; g += SEG_SIZE)
    if (!set_one(g, word)) {
      for (uintptr_t u = a; u < g; u += SEG_SIZE) set_one(u, 0);
      return false;
    }
  return true;
}

/* The region [base, base + size), granule-aligned and mapped (its leaves
 * exist), leaves id's tombstone of kind tomb on its granules. */
void islet_map_tomb(const void *base, size_t size, unsigned id, unsigned tomb) {
  uintptr_t a = (uintptr_t)base, end = a + size;
  for (uintptr_t g = a; g < end; g += SEG_SIZE) {
    uintptr_t held = end - g < SEG_SIZE ? end - g : SEG_SIZE;
    set_one(g, (uintptr_t)id << TOMB_ID_SHIFT | (held + 4095) >> 12 << 2 | tomb);
  }
}

/* The fast map: from a 4 MiB granule to the id of the heap whose small
 * segment starts there, for the free fast path.
 *
 * Why: the owner's free of its own small block is the common free, and its
 * question, "is p a block of one of my small segments, with no remote free
 * pending", must be answered without reading memory that may not be
 * islet's.  One load of a flat table answers it: one 16-bit entry per
 * granule of the whole address space (2^26 of them, 128 MiB of address
 * space reserved once with MAP_NORESERVE, of which only the 4 KiB pages
 * covering islet's granules are ever written: one covers 8 GiB).  The
 * owner map (map.c) answers every other question.
 *
 * An entry is 0 (no small segment, or any under Valgrind), its heap's id,
 * or that id | FAST_FLAGGED while remote frees into the segment are pending
 * (handoff.c says who writes it, and with what ordering).  A heap holds its
 * id from its creation until its struct is freed, as an orphan's segments
 * keep naming it, so no entry ever names another heap than its segment's.
 * Ids run out at 32,766 heaps at once: a heap past that has NO_FAST_ID,
 * which no entry holds, and all its frees take the classified path.  When
 * the table cannot be reserved (RLIMIT_AS), no heap's can.
 */
#include "internal.h"
#include <sys/mman.h>

_Atomic uint16_t *islet_fast_ids;
size_t islet_fast_granules;

static pthread_once_t reserved = PTHREAD_ONCE_INIT;

static void reserve(void) {
  size_t size = MAP_GRANULES * sizeof *islet_fast_ids;
  void *t =
      mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (t == MAP_FAILED) return;
  islet_fast_ids = t;
  islet_fast_granules = MAP_GRANULES;
}

void islet_fast_map_init(void) {
  pthread_once(&reserved, reserve); /* both written once, before any heap */
}

void islet_fast_set(const void *granule, uint16_t id) {
  if (islet_fast_granules) atomic_store_explicit(fast_entry(granule), id, memory_order_relaxed);
}

/* Bit i: id i is some heap's.  0 and NO_FAST_ID are never handed out. */
#define ID_WORDS ((NO_FAST_ID + 1) / 64)
static _Atomic uint64_t ids_held[ID_WORDS] = {[0] = 1, [ID_WORDS - 1] = (uint64_t)1 << 63};

uint16_t islet_fast_id_take(void) {
  for (unsigned w = 0; w < ID_WORDS; w++)
    for (uint64_t held = atomic_load(&ids_held[w]); ~held;) {
      uint64_t bit = ~held & (held + 1); /* the lowest clear one */
      if (atomic_compare_exchange_weak(&ids_held[w], &held, held | bit))
        return (uint16_t)(w * 64 + (unsigned)__builtin_ctzll(bit));
    }
  return NO_FAST_ID;
}

void islet_fast_id_give(uint16_t id) {
  if (id != NO_FAST_ID) atomic_fetch_and(&ids_held[id / 64], ~((uint64_t)1 << (id % 64)));
}

/* The fast map: from a 4 MiB granule to the id of the heap whose small
 * segment starts there, for the free fast path.
 *
 * Why: the owner's free of its own small block is the common free, and its
 * question, "is p a block of one of my small segments, with no remote free
 * pending", must be answered without reading memory that may not be
 * islet's.  One load of a flat table answers it: one 16-bit entry per
 * granule of the whole address space (2^26 of them, 128 MiB of address
 * space reserved once).  The owner map (map.c) answers every other
 * question.
 *
 * The table is mapped read-only, so untouched it reads as zeros and costs
 * no memory, nor commit charge even under vm.overcommit_memory 2; the
 * kernel page holding an entry is made writable when a segment first needs
 * it (one covers 8 GiB of address space with 4 KiB pages), and never huge.
 *
 * An entry is 0 (no small segment, or one of a heap without an id: past
 * the ids, or any under Valgrind), its heap's id, or that id |
 * FAST_FLAGGED while remote frees into the segment are pending (handoff.c
 * says who writes it, and with what ordering).  A heap holds its id from its creation until its
 * struct is freed, as an orphan's segments keep naming it, so no entry
 * ever names another heap than its segment's.  Ids run out at 32,766 heaps
 * at once: a heap past that has NO_FAST_ID, its segments' entries are 0,
 * and all its frees take the classified path.  When the table cannot be
 * reserved (RLIMIT_AS), no heap's can; when a page of it cannot be made
 * writable, the segments it covers have no entry.
 */
#include "internal.h"
#include <sys/mman.h>
#include <unistd.h>

_Atomic uint16_t *islet_fast_ids;
size_t islet_fast_granules;

static pthread_once_t reserved = PTHREAD_ONCE_INIT;
static size_t kpage; /* the kernel's page size */
/* Bit i: the table's kernel page i is writable (set once, never cleared).
 * 4 KiB pages are the smallest: 2^26 entries take 2^15 of them. */
static _Atomic uint64_t writable[MAP_GRANULES * sizeof(uint16_t) / 4096 / 64];

static void reserve(void) {
  size_t size = MAP_GRANULES * sizeof *islet_fast_ids;
  long ps = sysconf(_SC_PAGESIZE);
  if (ps < 4096 || (size_t)ps > size) return;
  void *t = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (t == MAP_FAILED) return;
#ifdef MADV_NOHUGEPAGE
  madvise(t, size, MADV_NOHUGEPAGE); /* a first write must not fault in 2 MiB */
#endif
  kpage = (size_t)ps;
  islet_fast_ids = t;
  islet_fast_granules = MAP_GRANULES;
}

void islet_fast_map_init(void) {
  pthread_once(&reserved, reserve); /* all three written once, before any heap */
}

/* Whether the entry at e can be written: its page made writable now if an
 * id is to go there (an entry on a page never made writable reads 0). */
static bool entry_writable(_Atomic uint16_t *e, bool nonzero) {
  size_t off = (size_t)((char *)e - (char *)islet_fast_ids) & ~(kpage - 1), i = off / kpage;
  uint64_t bit = (uint64_t)1 << (i % 64);
  if (atomic_load_explicit(&writable[i / 64], memory_order_acquire) & bit) return true;
  if (!nonzero || mprotect((char *)islet_fast_ids + off, kpage, PROT_READ | PROT_WRITE))
    return false;
  atomic_fetch_or_explicit(&writable[i / 64], bit, memory_order_release);
  return true;
}

void islet_fast_set(const void *granule, uint16_t id) {
  if ((uintptr_t)granule >> SEG_SHIFT >= islet_fast_granules) return; /* none, or past 2^48 */
  if (id == NO_FAST_ID) id = 0; /* a heap without an id: its segments have no entry */
  _Atomic uint16_t *e = fast_entry(granule);
  if (entry_writable(e, id != 0)) atomic_store_explicit(e, id, memory_order_relaxed);
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

/* The heap's data structures, shared by the files of alloc/.
 *
 * Why this shape: every byte islet hands out lives in a region whose base is
 * aligned to ISLET_SEG_SIZE and is recorded in a process-wide owner map, so
 * the owner of any address is two loads away.  Small blocks are carved from
 * 64 KiB pages of 4 MiB segments; a page keeps one "live" bit per block
 * (owner-written) and one "remote" bit per block (set atomically by other
 * threads freeing into it).  The bitmaps are the truth.  A page also keeps a
 * free list for speed, threaded through its free blocks as 16-bit block
 * indices (mimalloc threads pointers the same way): a hint, checked against
 * the live bit on every allocation, so a use-after-free write into a free
 * block can make islet rebuild the list, never hand out a live block or
 * memory outside the page.  Large blocks get a region of their own from the
 * backend with a header at its base.
 */
#ifndef ISLET_INTERNAL_H
#define ISLET_INTERNAL_H

#include "islet.h"
#include "module.h"
#include "sanitize.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
/* A variable of the library's own, read on a fast path: its address is
 * known at link time, with no load of it from the GOT. */
#define HIDDEN __attribute__((visibility("hidden")))
/* A slow path that takes its arguments as the fast path has them, not
 * split into the fields it reads (gcc's IPA-SRA would make the fast path
 * load them for it). */
#if defined(__GNUC__) && !defined(__clang__)
#define NOIPA __attribute__((noipa))
#else
#define NOIPA
#endif

#define SEG_SHIFT 22 /* 4 MiB segments: the owner map's granule */
#define SEG_SIZE ((size_t)1 << SEG_SHIFT)
#define PAGE_SHIFT 16 /* 64 KiB pages, like mimalloc's small pages */
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)
#define SEG_PAGES (SEG_SIZE / PAGE_SIZE)
#define META_PAGES 2 /* the segment header and page descriptors */
#define MIN_BLOCK 16
#define PAGE_WORDS (PAGE_SIZE / MIN_BLOCK / 64)
#define LARGE_HDR 128
/* The unit memory goes back to the kernel in (purge.c).  A kernel with
 * larger pages refuses such an madvise, and the memory stays. */
#define OS_PAGE_SHIFT 12
#define OS_PAGE ((size_t)1 << OS_PAGE_SHIFT)
#define PAGE_OS_PAGES (PAGE_SIZE / OS_PAGE)

enum { KIND_SMALL = 1, KIND_LARGE = 2 };
enum { PG_FREE = 0, PG_AVAIL, PG_FULL };

/* A page's descriptor: one cache line of the owner's fields.  Descriptors
 * are 64 bytes apart after the segment's header, so a block's descriptor is
 * a mask and a shift of its address, and a segment's 64 of them fill 4 KiB.
 * (Apart from the bitmaps, so that their fields spread over the L1 cache's
 * sets.)  The first META_PAGES descriptors describe
 * no page: their nblocks stays 0, so any pointer into the header's pages is
 * interior.  The bitmaps are the segment's (segment_t): the live one,
 * owner-written and read by others, and the remote one, which other threads
 * write.  No field points at a block: a leak checker scanning islet's
 * metadata must not find leaked blocks reachable. */
typedef struct __attribute__((aligned(64))) page {
  uint32_t off;          /* of the page's first block from this descriptor */
  uint32_t bsize, magic; /* magic = ceil(2^32 / bsize): exact division */
  uint16_t nblocks, used, nwords;
  uint16_t free;      /* the free list's first block, LIST_END when empty */
  uint16_t scan;      /* the live word the next refill of the list starts at */
  uint16_t os_idle;   /* bit k: OS page k held no live block at the last purge pass */
  uint16_t os_purged; /* bit k: ... and went back to the kernel; no write since */
  uint8_t cls, state;
  struct page *next, *prev; /* the class's list of pages with free blocks */
  _Atomic uint64_t *live;   /* page_live's row, kept for malloc's fast path */
} page_t;

/* The owner fields change only when a live heap inherits an orphan's
 * segment (orphan.c), under orphan_lock, while any thread may read them:
 * atomic, and relaxed where read on the free fast path.  A freeing thread
 * reads orphaned and rt here, never through owner: an orphan whose
 * segments were all taken over ends, and its struct goes. */
typedef struct seghdr {
  uint32_t kind;
  _Atomic uint32_t owner_id;
  islet_interp_t *_Atomic owner;
  struct seghdr *next, *prev; /* the owner's list of segments or large blocks */
  islet_runtime_t *rt;        /* the owner's, for good */
  _Atomic bool orphaned;      /* the owner has ended (orphan.c) */
} seghdr_t;
#define USABLE_PAGES (~(uint64_t)0 << META_PAGES) /* a segment's free_pages when empty */

typedef struct segment {
  seghdr_t h;
  _Atomic uint64_t pending; /* bit i: page i has remote frees (handoff.c) */
  uint64_t free_pages;      /* bit i: page i is free (owner only) */
  uint64_t purged;          /* bit i: free page i's memory went back (purge.c) */
  uint64_t idle;            /* bit i: free page i was free at the last purge pass */
  uint64_t touched;         /* bit i: page i was ever used (its descriptor written) */
  uint32_t meta_purged;     /* bit k: the bitmaps' OS page k went back (purge.c) */
  page_t pages[SEG_PAGES];  /* 0 .. META_PAGES-1 describe no page */
  /* OS-page aligned, so that the rows of 8 free pages are one OS page */
  _Alignas(OS_PAGE) _Atomic uint64_t live[SEG_PAGES][PAGE_WORDS]; /* bit j of page i: block j
                                                                      is live */
  _Atomic uint64_t remote[SEG_PAGES][PAGE_WORDS]; /* ... and another thread freed it */
} segment_t;

typedef struct large {
  seghdr_t h;
  /* Not used: where a segment keeps its pending flags, so that a freeing
   * thread's late flag of the emptied segment this header may replace
   * (large.c) lands here. */
  _Atomic uint64_t pending;
  uint32_t off;    /* of the block from the header (no pointer: see page_t) */
  bool in_segment; /* in an emptied segment of its heap's, which it goes back to */
  size_t size, mapped;
  _Atomic int state; /* LARGE_LIVE, LARGE_REMOTE */
  struct large *rnext;
} large_t;
enum { LARGE_LIVE = 1, LARGE_REMOTE, LARGE_DEAD };

_Static_assert(sizeof(segment_t) <= META_PAGES * PAGE_SIZE, "segment header too big");
_Static_assert(sizeof(page_t) == 64, "see page_row");
_Static_assert(PAGE_WORDS == 64 && sizeof(uint64_t[PAGE_WORDS]) == 8 * sizeof(page_t),
               "see page_bits (a bitmap row is 8 descriptors) and block_live_word");
_Static_assert(PAGE_OS_PAGES == 16 && 2 * sizeof(uint64_t[SEG_PAGES][PAGE_WORDS]) / OS_PAGE <= 32,
               "see os_idle, os_purged and meta_purged");
_Static_assert(sizeof(large_t) <= LARGE_HDR, "large header too big");
_Static_assert(offsetof(large_t, pending) == offsetof(segment_t, pending), "see large_t");
_Static_assert((uint64_t)PAGE_SIZE *ISLET_SMALL_MAX <= (uint64_t)1 << 32,
               "page_block_index divides exactly only up to 2^32");
_Static_assert(ISLET_MAX_ALIGN < SEG_SIZE, "a large block must start in its first granule");

#define MAX_HOOKS 8 /* modules' hooks per runtime (module.h) */

/* A freed large block's region a heap keeps for its next ones (large.c). */
#define SPARES 2
typedef struct {
  void *base; /* NULL: none */
  size_t bytes;
  bool idle; /* it was there at the last purge pass */
} spare_t;

struct islet_interp {
  /* hot, owner only */
  page_t *cur[ISLET_SIZE_CLASSES]; /* the page each class allocates from (small.c) */
  ptrdiff_t room;                  /* the books (books_in, below) */
  size_t fast_max;       /* sizes 1..fast_max take the malloc fast path (none under Valgrind) */
  ptrdiff_t blocks_room; /* not beside room: gcc would add the pair in SSE registers */
  uint32_t tick_left;    /* allocations until the next tick (purge.c) */
  uint16_t fast_id;      /* its small segments' entry in the fast map (fastmap.c) */
  /* islet_small_classes[k + 1], the class of sizes 16k+1 .. 16k+16, here
   * for malloc's fast path to read it off in, with no table address */
  _Alignas(64) uint8_t fast_class[1024 / 16];
  size_t redzone;
  _Atomic uint64_t any_pending; /* some segment or large block has remote frees */
  /* cold */
  size_t limit; /* SIZE_MAX when none */
  size_t bytes_mark, bytes_peak, blocks_peak, limit_hits;
  size_t allocs; /* made before the last tick (islet_allocs) */
  size_t remote_processed, remote_sent, bad_frees;
  size_t nsegs, npages, nlarge, mapped;
  spare_t spares[SPARES];            /* freed large blocks' regions kept, newest first (large.c) */
  page_t *pages[ISLET_SIZE_CLASSES]; /* each class's pages with a free block */
  page_t *last[ISLET_SIZE_CLASSES];  /* ... and the last of them (small.c) */
  seghdr_t segs, larges;             /* circular lists with sentinels */
  _Atomic(large_t *) remote_large;
  unsigned id, arena;
  islet_teardown_t teardown;
  islet_runtime_t *rt;
  islet_interp_t *rt_next, *rt_prev; /* runtime's list, under rt->lock */
  void *ext[EXT_SLOTS];              /* per-interpreter state of freelists/, singletons/ */
  bool runtime_heap;                 /* the runtime's own heap (modules.c) */
  bool orphaned;                     /* ended, blocks still live (orphan.c; its regions say so) */
  bool inherited;                    /* took over an orphan's segment: ends as an orphan */
  size_t orphan_mapped;              /* mapped at the orphan's last purge */
  /* purge.c: the decay of free memory, looked at on every tick */
  uint64_t purge_at;  /* the next pass, in CLOCK_MONOTONIC_COARSE ns */
  uint64_t purge_gap; /* ns between passes; UINT64_MAX: never */
};

/* The regions of a destroyed interpreter, listed outside them (a
 * quarantined region is inaccessible), on their way back to the backend. */
typedef struct {
  void *base;
  size_t size;
} region_t;

typedef struct retired {
  struct retired *next;
  unsigned arena, id;
  bool quarantine, partial; /* partial: the heap lives on (orphan.c) */
  size_t nregions, bytes;
  region_t regions[];
} retired_t;

struct islet_runtime {
  islet_config_t cfg;
  _Atomic int cross_free; /* cfg.cross_free, changeable while others free */
  pthread_mutex_t lock;
  islet_interp_t live; /* list sentinel (only rt_next/rt_prev used) */
  unsigned next_id;
  /* reclaim.c, under lock */
  pthread_cond_t wake, idle;
  pthread_t reclaimer;
  bool reclaimer_started, stopping;
  unsigned reclaiming; /* heaps being given back now, on any thread */
  retired_t *queue, *queue_last, *quarantined, *quarantined_last; /* oldest first */
  size_t queued_bytes, quarantined_bytes;
  /* modules.c: lifecycle hooks (under lock) and the runtime-owned heap */
  hooks_t hooks[MAX_HOOKS];
  int nhooks;
  pthread_mutex_t heap_lock;
  islet_interp_t *heap;
  void *_Atomic ext[RT_EXT_SLOTS]; /* modules' state (module.h), made under lock */
  /* orphan.c: ended interpreters with live blocks, under orphan_lock */
  pthread_mutex_t orphan_lock;
  islet_interp_t orphans;
  struct islet_runtime *fork_next; /* fork.c: every runtime, under runtimes_lock */
};

/* fork.c: a runtime's locks are taken around fork() from creation until
 * just before its mutexes are destroyed. */
void islet_fork_track(islet_runtime_t *rt);
void islet_fork_untrack(islet_runtime_t *rt);

/* modules.c (the rest is module.h) */
void islet_run_interp_hooks(islet_interp_t *in, bool create);
void islet_runtime_end_hooks(islet_runtime_t *rt);
islet_interp_t *islet_interp_create(islet_runtime_t *rt); /* not listed, no hooks */

/* The books: a heap's bytes and blocks in use are kept as what may still
 * be allocated before something must happen, so that malloc's fast path
 * tests one counter for the limit and the bytes' peak and one for the
 * blocks' peak.  bytes = bytes_mark - room, where the mark is the limit or
 * the peak, whichever is lower; blocks = blocks_peak - blocks_room (blocks
 * have no limit).  A counter that goes negative says a peak moved or the
 * limit is near: islet_books_settle (api.c) notes the peaks and moves the
 * marks.  Owner only (or orphan_lock, for an orphan). */
void islet_books_settle(islet_interp_t *in);
static inline size_t heap_bytes(const islet_interp_t *in) {
  return in->bytes_mark - (size_t)in->room;
}
static inline size_t heap_blocks(const islet_interp_t *in) {
  return in->blocks_peak - (size_t)in->blocks_room;
}
/* bytes (negative: they left) in blocks joined the books. */
static inline void books_in(islet_interp_t *in, ptrdiff_t bytes, ptrdiff_t blocks) {
  in->room -= bytes;
  in->blocks_room -= blocks;
  if (UNLIKELY((in->room < 0) | (in->blocks_room < 0))) islet_books_settle(in);
}
static inline void books_out(islet_interp_t *in, size_t bytes, size_t blocks) {
  in->room += (ptrdiff_t)bytes;
  in->blocks_room += (ptrdiff_t)blocks;
}

/* purge.c: free memory of a heap goes back to the kernel.  A live heap
 * gives back what stayed free for its delay, looked at every TICK_ALLOCS
 * allocations (a tick); an orphan, all at once. */
#define TICK_ALLOCS 1024
void islet_purge_init(islet_interp_t *in, long delay_ms);
void islet_purge_tick(islet_interp_t *in);
static inline size_t islet_allocs(const islet_interp_t *in) { /* all time */
  return in->allocs + TICK_ALLOCS - in->tick_left;
}
/* Every segment of in: its free pages, the free OS pages of its pages in
 * use and its bitmaps' free rows: only what was free at the last pass too
 * (decayed), or all of it now; an orphan's zero remote rows too. */
typedef enum { PURGE_DECAYED, PURGE_ALL, PURGE_ORPHAN } purge_how_t;
void islet_purge_pass(islet_interp_t *in, purge_how_t how);
void islet_purge_adopted(segment_t *seg);            /* a live heap took seg over from an orphan */
void islet_purge_page(page_t *pg, bool force);       /* the free OS pages of pg, a page in use */
void islet_purge_forget(segment_t *seg, unsigned i); /* page i of seg is used again */
/* One MADV_DONTNEED per run of set bits of mask, bit i standing for the
 * unit bytes at base + i * unit. */
void islet_dontneed_runs(char *base, uint64_t mask, size_t unit);

/* reclaim.c */
void islet_reclaim_submit(islet_runtime_t *rt, retired_t *rec);
/* islet_backend_map for in, waiting for destroyed heaps to be given back
 * when it finds nothing.  No lock the runtime thread takes may be held.
 * The region is advised (islet_region_advise). */
void *islet_region_map(islet_interp_t *in, size_t size);
/* Asks the kernel for 4 KiB pages for the granules a region at p spans
 * with to bytes and did not with from (0: a new one): every region mapped
 * (islet_region_map) or grown or moved into (large.c); segments may ask
 * for huge ones after (segment.c). */
void islet_region_advise(void *p, size_t from, size_t to);
void islet_reclaim_now(islet_interp_t *in);
/* interp.c: tombstones and lists the regions of in, all of them or only the
 * segments with no page in use (which leave the heap); NULL without memory */
retired_t *islet_retire_regions(islet_interp_t *in, bool quarantine, bool empty_only);
bool islet_retire_heap(islet_interp_t *in, bool quarantine); /* all of it, and in; quarantined? */
/* orphan.c (orphan_lock is taken inside unless noted) */
void islet_orphan_adopt(islet_interp_t *in);
bool islet_orphan_tidy(islet_interp_t *o); /* orphan_lock held; true: o ended */
/* orphan_lock held, after o lost a block of page pg (NULL: a large one) */
void islet_orphan_freed(islet_interp_t *o, page_t *pg);
/* A segment of an orphan's, now in's (a heap of the orphan policy with no
 * limit), or NULL: one with a page of class cls that has a free block, or
 * with cls ORPHAN_ANY_CLASS any. */
#define ORPHAN_ANY_CLASS (-1)
segment_t *islet_orphan_inherit(islet_interp_t *in, int cls);
void islet_orphans_sweep(islet_runtime_t *rt, bool end_all);
void islet_reclaim_shutdown(islet_runtime_t *rt);

/* sizeclass.c */
extern const uint32_t islet_class_sizes[ISLET_SIZE_CLASSES];
extern const uint8_t islet_small_classes[1024 / 16 + 1]; /* by (size + 15) / 16 */
/* A table up to 1 KiB: the mix of small sizes would mispredict a branch. */
static inline unsigned islet_size_to_class(size_t size) {
  if (LIKELY(size <= 1024)) return islet_small_classes[(size + 15) >> 4];
  if (size <= 2048) return 40 + (unsigned)((size - 1025) >> 7);
  unsigned lg = 63u - (unsigned)__builtin_clzll(size - 1); /* size in (2^lg, 2^(lg+1)] */
  return 48 + (lg - 11) * 4 + (unsigned)((size - 1) >> (lg - 2)) - 4;
}

/* map.c: address -> owner word.  A word is a seghdr_t pointer, 0, or a
 * tombstone, id << TOMB_ID_SHIFT | pages << 2 | TOMB_*, that a region leaves
 * on its granules when its interpreter is destroyed or, a large block's,
 * when it is freed.  pages: how many of the granule's 4 KiB pages the region
 * held (1 to 1,024), as past a large block's end its last granule may hold
 * anyone's memory. */
#define TOMB_RELEASED 1u
#define TOMB_FREED 2u
#define TOMB_QUARANTINED 3u
#define TOMB_ID_SHIFT 13
#define MAP_ADDR_BITS 48
#define MAP_ROOT_BITS 12
#define MAP_LEAF_BITS (MAP_ADDR_BITS - SEG_SHIFT - MAP_ROOT_BITS)
#define MAP_LEAF_LEN ((size_t)1 << MAP_LEAF_BITS)
typedef _Atomic uintptr_t map_leaf_t[MAP_LEAF_LEN];
extern _Atomic(map_leaf_t *) islet_map_root[1u << MAP_ROOT_BITS];
bool islet_map_set(const void *base, size_t size, uintptr_t word);
void islet_map_tomb(const void *base, size_t size, unsigned id, unsigned tomb);

#define MAP_GRANULES ((size_t)1 << (MAP_ADDR_BITS - SEG_SHIFT))

/* fastmap.c: granule -> the id of the heap whose small segment starts
 * there, 0 for none, | FAST_FLAGGED while remote frees into it are pending
 * (the owner's frees then take the slow path, which looks at the remote
 * bits and collects them: handoff.c). */
#define FAST_FLAGGED 0x8000u
#define NO_FAST_ID 0x7fffu /* a heap's when ids ran out: its segments' entries are 0 */
extern HIDDEN _Atomic uint16_t *islet_fast_ids;
extern HIDDEN size_t islet_fast_granules; /* MAP_GRANULES, or 0 when the table is not there */
void islet_fast_map_init(void);           /* once, before any heap */
uint16_t islet_fast_id_take(void);
void islet_fast_id_give(uint16_t id);
/* granule's entry: a small segment's, a granule of islet's with the table there */
static inline _Atomic uint16_t *fast_entry(const void *granule) {
  return &islet_fast_ids[(uintptr_t)granule >> SEG_SHIFT];
}
static inline unsigned fast_get(const void *granule) {
  return islet_fast_granules ? atomic_load(fast_entry(granule)) : 0;
}
/* nothing without the table; NO_FAST_ID sets 0 */
void islet_fast_set(const void *granule, uint16_t id);
/* Whether p's granule is a small segment of in's with no remote free
 * pending: the free fast path's first question, in one load.  in may be
 * NULL (islet_free(NULL, p) is islet_free_any). */
static inline bool fast_own(const islet_interp_t *in, const void *p) {
  uintptr_t g = (uintptr_t)p >> SEG_SHIFT;
  if (UNLIKELY(!in) || UNLIKELY(g >= islet_fast_granules)) return false;
  return LIKELY(atomic_load_explicit(&islet_fast_ids[g], memory_order_relaxed) == in->fast_id);
}

/* The word of a's granule, for any a below 2^64: an address past 2^48
 * reads some other granule's word.  An empty root slot holds a leaf of
 * zeros, so the lookup never tests for one. */
static inline uintptr_t map_word(uintptr_t a) {
  map_leaf_t *leaf = atomic_load_explicit(
      &islet_map_root[(a >> (SEG_SHIFT + MAP_LEAF_BITS)) & ((1u << MAP_ROOT_BITS) - 1)],
      memory_order_acquire);
  return atomic_load_explicit(&(*leaf)[(a >> SEG_SHIFT) & (MAP_LEAF_LEN - 1)],
                              memory_order_acquire);
}
static inline uintptr_t islet_map_get(const void *p) {
  uintptr_t a = (uintptr_t)p;
  return UNLIKELY(a >> MAP_ADDR_BITS) ? 0 : map_word(a);
}
static inline bool map_is_hdr(uintptr_t w) {
  return w != 0 && (w & 3) == 0;
}
/* Whether w, which is no header, is a tombstone whose region held p. */
static inline bool tomb_holds(uintptr_t w, const void *p) {
  return (((uintptr_t)p & (SEG_SIZE - 1)) >> 12) < ((w >> 2) & ((1u << (TOMB_ID_SHIFT - 2)) - 1));
}
static inline unsigned tomb_id(uintptr_t w) {
  return (unsigned)(w >> TOMB_ID_SHIFT);
}

/* backend.c */
int islet_backend_arena_new(unsigned *arena);
/* Gives what the arena was given back to the kernel now. */
void islet_backend_arena_purge(unsigned arena);
/* The arena's heap has ended: it may serve another heap.  Its regions are
 * unmapped, or quarantined (they stay allocated in it, untouched). */
void islet_backend_arena_release(unsigned arena);
/* A region of size bytes at the start of its own granule-aligned span. */
void *islet_backend_map(unsigned arena, size_t size);
void islet_backend_unmap(unsigned arena, void *p, size_t size);
/* The region p of old bytes now serves size bytes, in place (jemalloc may
 * keep more of it); false: unchanged. */
bool islet_backend_resize(void *p, size_t old, size_t size);
/* The pages of the region from (old bytes) now back the mapped region to
 * (size bytes), and from is gone; false: from is unchanged, and to may be
 * gone too (the caller unmaps it either way).  Only where
 * islet_backend_moves. */
bool islet_backend_move(void *from, size_t old, void *to, size_t size);
extern const bool islet_backend_moves;
/* The backend's fork() handlers, registered before islet's (fork.c). */
void islet_backend_atfork(void);
/* The n bytes at p (page-aligned, of a region just mapped) read as zeros,
 * without touching what the kernel can zero itself. */
void islet_backend_clear(void *p, size_t n);
/* The same for n bytes of a region in use: their memory goes back too. */
void islet_backend_zero(void *p, size_t n);

/* segment.c */
page_t *islet_page_fresh(islet_interp_t *in, unsigned cls);
void islet_segment_own(segment_t *seg, islet_interp_t *in);
/* An empty segment of in's, out of its list, for a large block of up to
 * SEG_SIZE bytes with its header; NULL when in has none. */
void *islet_segment_take(islet_interp_t *in);
/* The granule of a large block made by islet_segment_take, whose block is
 * gone, is in's empty segment again. */
void islet_segment_give(islet_interp_t *in, void *granule);
void islet_page_free(islet_interp_t *in, page_t *pg);
static inline segment_t *seg_of(const void *p) {
  return (segment_t *)((uintptr_t)p & ~(SEG_SIZE - 1));
}
static inline unsigned page_index(const void *p) {
  return (unsigned)(((uintptr_t)p & (SEG_SIZE - 1)) >> PAGE_SHIFT);
}
/* The offset of p's page's descriptor in its segment's pages: descriptors
 * are 64 bytes apart, so it is a shift and a mask of p (a bitmap row is 8
 * times that: block_live_word). */
static inline uintptr_t page_row(const void *p) {
  return ((uintptr_t)p >> (PAGE_SHIFT - 6)) & ((uintptr_t)(SEG_PAGES - 1) << 6);
}
static inline page_t *page_at_row(segment_t *seg, uintptr_t row) {
  return (page_t *)((char *)seg + offsetof(segment_t, pages) + row);
}
static inline unsigned seg_page_index(const segment_t *seg, const page_t *pg) {
  return (unsigned)(pg - seg->pages);
}

/* pg's bitmaps (pg is a page of a segment, not an empty_page): a row of
 * a bitmap is 8 times a descriptor's size, so the row is the descriptor's
 * offset scaled, with no division. */
static inline _Atomic uint64_t *page_bits(page_t *pg, size_t bitmap) {
  uintptr_t a = (uintptr_t)pg, off = a & (SEG_SIZE - 1);
  return (_Atomic uint64_t *)(a - off + bitmap + (off - offsetof(segment_t, pages)) * 8);
}
static inline _Atomic uint64_t *page_live(page_t *pg) {
  return page_bits(pg, offsetof(segment_t, live));
}
static inline _Atomic uint64_t *page_remote(page_t *pg) {
  return page_bits(pg, offsetof(segment_t, remote));
}

/* The live word of block idx of the page at row (page_row): the page's
 * bitmap row starts at 8 times the descriptor's offset. */
static inline _Atomic uint64_t *block_live_word(segment_t *seg, uintptr_t row, long idx) {
  return (_Atomic uint64_t *)((char *)seg + offsetof(segment_t, live) +
                              (row + ((uintptr_t)idx >> 6)) * sizeof(uint64_t));
}

static inline char *page_block(const page_t *pg, size_t i) {
  return (char *)pg + pg->off + i * pg->bsize;
}
static inline char *large_block(const large_t *lg) {
  return (char *)lg + lg->off;
}

/* Whether p lies in lg's region: the map covers whole granules, and past
 * its end the last one may hold anyone's memory. */
static inline bool large_holds(const large_t *lg, const void *p) {
  return (const char *)p < (const char *)lg + __atomic_load_n(&lg->mapped, __ATOMIC_RELAXED);
}

/* small.c */
extern page_t islet_empty_pages[ISLET_SIZE_CLASSES];
static inline page_t *empty_page(unsigned cls) {
  return &islet_empty_pages[cls];
}

/* A free block's link: the index of the next block of its page's free list.
 * A free block is poisoned for ASan and inaccessible to Valgrind; only these
 * two touch it.  vg: Valgrind may be on (the fast paths know it is not). */
#define LIST_END 0xffffu
typedef uint16_t __attribute__((may_alias)) link_t;
static inline __attribute__((no_sanitize("address"))) unsigned link_get(const void *b, bool vg) {
  if (vg) vg_defined(b, sizeof(link_t));
  unsigned next = *(const link_t *)b;
  if (vg) vg_noaccess(b, sizeof(link_t));
  return next;
}
static inline __attribute__((no_sanitize("address"))) void link_set(void *b, unsigned next,
                                                                    bool vg) {
  if (vg) vg_defined(b, sizeof(link_t));
  *(link_t *)b = (uint16_t)next;
  if (vg) vg_noaccess(b, sizeof(link_t));
}

/* Bit i (mod 64) of *w set (bit_set) or cleared (bit_clear), and whether
 * it was set before: the fast paths' test and change of a live bit, in a
 * register's copy of the live word (its load and store stay atomic C).
 * x86-64's bts and btr do both in one instruction, where a mask, a test
 * and an or or xor take five. */
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
static inline bool bit_set(uint64_t *w, unsigned i) {
  bool was;
  __asm__("btsq %2, %0" : "+r"(*w), "=@ccc"(was) : "r"((uint64_t)i));
  return was;
}
static inline bool bit_clear(uint64_t *w, unsigned i) {
  bool was;
  __asm__("btrq %2, %0" : "+r"(*w), "=@ccc"(was) : "r"((uint64_t)i));
  return was;
}
#else
static inline bool bit_set(uint64_t *w, unsigned i) {
  uint64_t m = (uint64_t)1 << (i & 63), was = *w & m;
  *w |= m;
  return was;
}
static inline bool bit_clear(uint64_t *w, unsigned i) {
  uint64_t m = (uint64_t)1 << (i & 63), was = *w & m;
  *w &= ~m;
  return was;
}
#endif

/* The head of pg's free list, marked live; NULL when the list is empty or
 * its head is not a free block of the page (a freed block was written to:
 * islet_class_refill reports it).  A page that fills stays in its
 * class's list: under churn the next free would put it straight back, so
 * only the allocation that finds it full takes it out. */
static inline void *page_pop(page_t *pg, bool vg) {
  unsigned i = pg->free;
  if (UNLIKELY(i >= pg->nblocks)) return NULL;
  char *p = page_block(pg, i); /* read before the live word's store, which may alias */
  _Atomic uint64_t *lw = &pg->live[i >> 6];
  uint64_t bits = atomic_load_explicit(lw, memory_order_relaxed);
  if (UNLIKELY(bit_set(&bits, i))) return NULL;
  pg->free = (uint16_t)link_get(p, vg);
  pg->used++;
  atomic_store_explicit(lw, bits, memory_order_relaxed);
  return p;
}

/* Block idx (p) got free: the next allocation from this page takes it (the
 * block just freed is the warmest).  The list's head before it. */
static inline unsigned page_push(page_t *pg, unsigned idx, void *p, bool vg) {
  unsigned head = pg->free;
  link_set(p, head, vg);
  pg->free = (uint16_t)idx;
  return head;
}
void *islet_class_refill(islet_interp_t *in, unsigned cls);
void islet_page_after_free(islet_interp_t *in, page_t *pg);
void islet_page_drop(islet_interp_t *in, page_t *pg); /* an empty listed page leaves the heap */
void islet_page_move(islet_interp_t *from, islet_interp_t *to, page_t *pg); /* a page in use */
/* p's block index in pg when p is a multiple of the block size from the
 * page's start, else -1.  The index may be past the last block: its live
 * bit is 0, so the free fast path needs no other test. */
static inline long page_slot(const page_t *pg, const void *p) {
  uint64_t prod = ((uintptr_t)p & (PAGE_SIZE - 1)) * (uint64_t)pg->magic;
  /* off is a multiple of bsize iff the low half is below magic: exact for
   * offsets below 2^16 and sizes up to 2^14 (Lemire, Kaser and Kurz, "Faster
   * remainder by direct computation", 2019; checked for every offset and every
   * multiple of 16 up to 16 KiB).  A page never used has magic 0. */
  return UNLIKELY((uint32_t)prod >= pg->magic) ? -1 : (long)(prod >> 32);
}
/* block index of p in pg, or -1 for an interior pointer */
static inline long page_block_index(const page_t *pg, const void *p) {
  long idx = page_slot(pg, p);
  return idx < pg->nblocks ? idx : -1;
}
/* The bits of live word w that stand for blocks of the page. */
static inline uint64_t page_blocks_in(const page_t *pg, unsigned w) {
  unsigned n = pg->nblocks - w * 64u;
  return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

/* large.c */
/* The usable size of a large block of size bytes, 0 when it overflows. */
size_t islet_large_usable(size_t size, size_t align);
/* align: 0 or a power of two up to ISLET_MAX_ALIGN, so the block starts in
 * the region's first granule, where the owner map looks */
large_t *islet_large_alloc(islet_interp_t *in, size_t size, size_t align);
void islet_large_free(islet_interp_t *caller, large_t *lg);
/* The owner's live block lg grown in place to size bytes; false: unchanged
 * (the backend could not, or the limit is in the way). */
bool islet_large_grow(islet_interp_t *in, large_t *lg, size_t size);
/* The owner's live block lg, cut to serve size bytes (still a large size),
 * or unchanged when the backend keeps it whole. */
void islet_large_shrink(islet_interp_t *in, large_t *lg, size_t size);
/* The owner's live block lg, moved to a region of its own for size bytes,
 * its contents kept without a copy; NULL: unchanged (the backend cannot
 * move, the limit is in the way, or no memory). */
large_t *islet_large_move(islet_interp_t *in, large_t *lg, size_t size);
void islet_large_collect(islet_interp_t *in);
/* The owner's end of its large block lg, claimed (state not LIVE). */
void islet_large_drop(islet_interp_t *in, large_t *lg);
/* The spare regions go back, now or (decayed) if unused since the last
 * pass, and live blocks' room past their size. */
void islet_large_purge(islet_interp_t *in, bool now);

/* handoff.c (and islet_large_free, islet_large_collect) */
void islet_remote_free_small(islet_interp_t *caller, segment_t *seg, page_t *pg, long idx);
void islet_collect(islet_interp_t *in);
/* seg's only, whether or not any_pending says so: the owner's slow free
 * into a flagged segment (a fork may have lost the any_pending of its
 * flag, which would then stay). */
void islet_collect_segment(islet_interp_t *in, segment_t *seg);
size_t islet_remote_backlog(islet_interp_t *in);
void islet_flag_pending(_Atomic uint64_t *word, uint64_t bit);

static inline islet_cross_policy_t islet_cross_policy(islet_runtime_t *rt) {
  return (islet_cross_policy_t)atomic_load_explicit(&rt->cross_free, memory_order_relaxed);
}

/* report.c (and module.h) */
extern islet_runtime_t *_Atomic islet_default_rt;

/* Circular doubly linked lists with a sentinel: an owner's segments and
 * large blocks (list_*), and the runtime's live and orphaned interpreters
 * (interps_*).  push adds after the sentinel (or any element). */
#define DLIST(name, type, next, prev)                                                              \
  static inline void name##_init(type *s) {                                                        \
    s->next = s->prev = s;                                                                         \
  }                                                                                                \
  static inline void name##_push(type *s, type *x) {                                               \
    x->next = s->next;                                                                             \
    x->prev = s;                                                                                   \
    s->next->prev = x;                                                                             \
    s->next = x;                                                                                   \
  }                                                                                                \
  static inline void name##_del(type *x) {                                                         \
    x->prev->next = x->next;                                                                       \
    x->next->prev = x->prev;                                                                       \
  }
DLIST(list, seghdr_t, next, prev)
DLIST(interps, islet_interp_t, rt_next, rt_prev)

#endif

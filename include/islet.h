/* islet: per-interpreter heaps for multi-interpreter runtimes.
 *
 * Why: an interpreter of a multi-interpreter runtime (CPython's own-GIL
 * sub-interpreters, PEP 684) must own its memory, so that one interpreter's
 * objects are never reused by another, its memory can be accounted and
 * limited, and all of it goes away when the interpreter ends.
 *
 * Threading contract
 *   - An interpreter allocates from one thread at a time (it is an own-GIL
 *     interpreter): islet_malloc/calloc/realloc/aligned_alloc/free (and
 *     islet_try_free, islet_free_or, islet_realloc_or) on an interpreter,
 *     islet_interp_set_limit, islet_interp_stats and islet_interp_collect
 *     need the caller to hold that interpreter.
 *   - Any thread may free any islet pointer: islet_free(in, p) with the
 *     interpreter it holds, or islet_free_any(p) with none.  A block of
 *     interpreter A freed while holding B goes back to A through a lock-free
 *     hand-off and is never handed out by B.
 *   - islet_interp_destroy must not run concurrently with frees of that
 *     interpreter's blocks.  A free that comes after it is reported as
 *     ISLET_EDESTROYED: always under ISLET_TEARDOWN_QUARANTINE (the range is
 *     never reused while the runtime lives); under ISLET_TEARDOWN_RELEASE
 *     only until the backend reuses the range for a new block, after which a
 *     stale pointer is indistinguishable from that block, as with any
 *     allocator.
 *   - Two threads freeing the same block at the same time race in the
 *     caller; islet detects a double free that happens after the first
 *     free, not one that races it.
 *   - Runtime and interpreter creation and destruction may come from any
 *     thread; islet_runtime_destroy must not race with them or with frees.
 *   - Nothing in islet is async-signal-safe: a signal handler must not
 *     allocate or free with it.
 *   - fork(): islet holds its locks across it (pthread_atfork), and waits
 *     for a heap being given back to be done, so the child may create, use
 *     and destroy interpreters, and flush.  The child starts no thread:
 *     the runtimes it inherits give destroyed heaps back on the destroying
 *     thread, as with reclaim_inline (POSIX allows a child of a
 *     multi-threaded fork only async-signal-safe calls, and TSan kills one
 *     that starts a thread); a runtime the child creates follows its own
 *     config.  An interpreter that another thread was allocating from at
 *     the fork is copied as it was: the child may free its blocks and
 *     destroy it (CPython's child deletes such interpreters), but should
 *     not allocate from it.
 */
#ifndef ISLET_H
#define ISLET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ISLET_API /* the LD_PRELOAD shim builds islet into itself, hidden */
#define ISLET_API __attribute__((visibility("default")))
#endif

typedef struct islet_runtime islet_runtime_t;
typedef struct islet_interp islet_interp_t;

/* Error codes: returned by islet_last_error() (per thread) after a call
 * that returned NULL or reported bad input, and carried by events. */
typedef enum {
  ISLET_OK = 0,
  ISLET_ENOMEM,       /* the backend has no memory */
  ISLET_ELIMIT,       /* the interpreter's memory limit would be exceeded */
  ISLET_EOVERFLOW,    /* calloc/realloc/aligned size overflows size_t */
  ISLET_EINVAL,       /* bad argument (alignment not a power of two, ...) */
  ISLET_EDOUBLE_FREE, /* the block is not allocated */
  ISLET_EFOREIGN,     /* not memory of any islet interpreter */
  ISLET_EINTERIOR,    /* points inside an islet block, not at its start */
  ISLET_EDESTROYED,   /* the owning interpreter was destroyed */
  ISLET_ECROSS,       /* a cross-interpreter free (policy report/abort) */
  ISLET_EISOLATION,   /* a mortal object or block of another interpreter was touched */
  ISLET_EREFCNT,      /* decref of a mortal object whose count is already zero */
  ISLET_EIMMORTAL,    /* the object is already immortal */
  ISLET_ENOENT,       /* no singleton is registered under that id */
  ISLET_EDISABLED,    /* the free list is disabled (its interpreter is finalizing) */
  ISLET_ECORRUPT      /* a freed block was written to (a use after free); reported
                         by the allocation that finds out, which hands out no
                         block twice and rebuilds what it lost */
} islet_error_t;

/* What a cross-interpreter free does (islet_free(B, p) with p owned by A). */
typedef enum {
  ISLET_CROSS_DEFER = 0, /* hand the block back to A, silently */
  ISLET_CROSS_REPORT,    /* hand it back and report one line */
  ISLET_CROSS_ABORT      /* report one line and abort() */
} islet_cross_policy_t;

/* What a bad free (double, foreign, interior, destroyed) does.  It never
 * changes allocator state. */
typedef enum {
  ISLET_BAD_REPORT = 0, /* report one line, ignore the free */
  ISLET_BAD_ABORT       /* report one line and abort() */
} islet_bad_policy_t;

/* What islet_interp_destroy does with the interpreter's memory. */
typedef enum {
  ISLET_TEARDOWN_RELEASE = 0, /* give it back to the backend now */
  ISLET_TEARDOWN_QUARANTINE,  /* keep the address range reserved and
                                 inaccessible until the runtime ends, or
                                 past quarantine_max (oldest first) */
  ISLET_TEARDOWN_ORPHAN       /* give back what is free now; blocks still live
                                 stay valid (another interpreter may hold
                                 them: CPython <= 3.11 shares objects) and go
                                 back as they are freed */
} islet_teardown_t;

typedef struct {
  islet_error_t error;
  const void *ptr;
  unsigned owner;    /* interpreter id owning ptr, 0 if none */
  unsigned offender; /* interpreter id of the caller, 0 if none/unknown */
} islet_event_t;

typedef void (*islet_event_fn)(void *ctx, const islet_event_t *ev);

typedef struct {
  islet_cross_policy_t cross_free;
  islet_bad_policy_t bad_free;
  islet_teardown_t teardown;
  /* Bytes of address space quarantine may hold (0: no bound).  Past it the
   * oldest quarantined interpreter is released, as ASan bounds its
   * quarantine (quarantine_size_mb): with the jemalloc backend every range
   * kept costs jemalloc metadata, about 1 KiB per MiB kept. */
  size_t quarantine_max;
  /* Nonzero: islet_interp_destroy gives the memory back itself, and no
   * runtime thread is started.  Zero (default): a background thread does it,
   * so destroy takes time per arena, not per resident page; in a child of
   * fork(), the destroying thread does (see fork() above). */
  int reclaim_inline;
  /* Called for every reported event instead of printing it to stderr.
   * It may run on any thread, with islet's locks held: it must not call
   * islet or fork(). */
  islet_event_fn on_event;
  void *event_ctx;
  /* Milliseconds a live heap keeps free memory before it goes back to the
   * kernel: 4 KiB OS pages holding no live block, inside partly used pages
   * too.  It goes between one and two delays after it was freed, checked
   * when the heap allocates (a heap that stops allocating keeps it until
   * islet_interp_purge).  0: ISLET_PURGE_DELAY_DEFAULT; negative: never.
   * An ended heap (ISLET_TEARDOWN_ORPHAN) gives its free memory back at
   * once, whatever the delay. */
  long purge_delay_ms;
  /* Nonzero: the heaps' 4 MiB segments, which hold the small blocks, ask
   * for 2 MiB transparent huge pages (MADV_HUGEPAGE): fewer data TLB
   * misses, but memory becomes resident 2 MiB at a time, and a purge splits
   * a huge page rather than give it back whole.  0 (default): 4 KiB pages
   * (MADV_NOHUGEPAGE) whatever the system's THP mode, so that a heap holds
   * the OS pages its blocks touch and no more: under THP "always", regions,
   * which start on a 4 MiB boundary, would otherwise take huge pages as
   * they fault in.  Large blocks take 4 KiB pages either way: a huge page
   * would hold 2 MiB for a block of 20 KB. */
  int huge_pages;
} islet_config_t;

#define ISLET_PURGE_DELAY_DEFAULT 1000

/* Size classes of small blocks (16 B .. 16 KiB); larger blocks are "large". */
#define ISLET_SIZE_CLASSES 60
#define ISLET_SMALL_MAX 16384
#define ISLET_LEAK_ADDRS 16
#define ISLET_MAX_ALIGN ((size_t)2 << 20) /* islet_aligned_alloc: EINVAL above */

typedef struct {
  unsigned id;
  size_t bytes, bytes_peak;   /* usable bytes in live blocks */
  size_t blocks, blocks_peak; /* live blocks */
  size_t allocs;              /* allocations made, all time */
  size_t segments;            /* small-block arenas mapped */
  size_t pages;               /* small-block pages in use */
  size_t large_blocks;        /* blocks from the backend */
  size_t mapped;              /* bytes of arenas and large blocks */
  size_t remote_pending;      /* blocks freed by others, not yet taken back */
  size_t remote_processed;    /* blocks freed by others and taken back */
  size_t remote_sent;         /* blocks of others freed while holding this one */
  size_t limit;               /* 0 = none */
  size_t limit_hits;
  size_t bad_frees; /* bad frees made while holding this interpreter */
} islet_stats_t;

typedef struct {
  unsigned id;
  size_t blocks, bytes;                    /* live at teardown */
  size_t class_blocks[ISLET_SIZE_CLASSES]; /* live small blocks per class */
  size_t large_blocks, large_bytes;
  size_t naddrs;                 /* how many of addrs are set */
  void *addrs[ISLET_LEAK_ADDRS]; /* the first live blocks found */
  size_t segments, mapped;       /* arenas and bytes released or quarantined */
  int quarantined;
  int orphaned; /* ISLET_TEARDOWN_ORPHAN kept the live blocks */
  uint64_t teardown_ns;
} islet_leak_report_t;

/* Runtime: one per process (or per embedding).  cfg may be NULL (defaults:
 * cross-interpreter frees deferred, bad frees reported, teardown release). */
ISLET_API islet_runtime_t *islet_runtime_new(const islet_config_t *cfg);
/* Destroys every interpreter still alive, then releases quarantined memory. */
ISLET_API void islet_runtime_destroy(islet_runtime_t *rt);
ISLET_API void islet_runtime_set_cross_policy(islet_runtime_t *rt, islet_cross_policy_t p);
/* Destroyed interpreters' memory is returned (or quarantined) by a runtime
 * thread; this waits until all of it is. */
ISLET_API void islet_runtime_flush(islet_runtime_t *rt);

/* Interpreters.  report may be NULL.  With the jemalloc backend each
 * interpreter has a jemalloc arena of its own; past jemalloc's 4,095
 * arenas, interpreters share them (the least shared first), so
 * islet_interp_new fails (NULL, ISLET_ENOMEM) only for want of memory. */
ISLET_API islet_interp_t *islet_interp_new(islet_runtime_t *rt);
ISLET_API void islet_interp_destroy(islet_interp_t *in, islet_leak_report_t *report);
ISLET_API unsigned islet_interp_id(const islet_interp_t *in);
ISLET_API void islet_interp_set_limit(islet_interp_t *in, size_t bytes); /* 0 = none */
/* The teardown policy of this interpreter, instead of the runtime's (an
 * embedder whose interpreters differ in what may outlive them). */
ISLET_API int islet_interp_set_teardown(islet_interp_t *in,
                                        islet_teardown_t t); /* 0, ISLET_EINVAL */
ISLET_API void islet_interp_stats(islet_interp_t *in, islet_stats_t *out);
ISLET_API int islet_interp_stats_json(islet_interp_t *in, FILE *out);
/* The interpreter the calling thread holds, for the isolation checker
 * (islet_object.h) and for integrations that route by thread; NULL if
 * none.  Destroying an interpreter makes the destroying thread hold none;
 * any other thread that entered it must enter another (or NULL) first. */
ISLET_API void islet_interp_enter(islet_interp_t *in);
ISLET_API islet_interp_t *islet_current(void);
/* Takes back the blocks other threads freed; the allocator also does this
 * on its own when it needs memory. */
ISLET_API void islet_interp_collect(islet_interp_t *in);
/* Takes back the blocks other threads freed, then gives every free OS page
 * of the heap back to the kernel now, whatever the purge delay (a heap
 * that goes idle after a peak). */
ISLET_API void islet_interp_purge(islet_interp_t *in);

/* Allocation on the interpreter the caller holds.  NULL with
 * islet_last_error() and errno set on failure; a zero size gives a unique
 * minimal block. */
ISLET_API void *islet_malloc(islet_interp_t *in, size_t size);
ISLET_API void *islet_calloc(islet_interp_t *in, size_t n, size_t size);
ISLET_API void *islet_realloc(islet_interp_t *in, void *p, size_t size);
ISLET_API void *islet_aligned_alloc(islet_interp_t *in, size_t align, size_t size);
ISLET_API void islet_free(islet_interp_t *in, void *p); /* in NULL: islet_free_any */

/* No interpreter needed.  A bad pointer given to islet_free_any is
 * reported to its owner's runtime when that interpreter lives, and
 * otherwise (foreign, a freed large block, or its interpreter destroyed) to
 * the default runtime (the first one made; after it ends, the next one
 * made; with none, to stderr).  With several runtimes the report may name
 * another runtime's interpreter id: ids count per runtime. */
ISLET_API void islet_free_any(void *p);
ISLET_API size_t islet_usable_size(const void *p);    /* 0 for anything but a live islet block */
ISLET_API islet_interp_t *islet_owner(const void *p); /* NULL: foreign, interior, freed owner */
/* Nonzero when p lies in memory islet manages or managed: a live heap's, or
 * a freed large block's or a destroyed interpreter's while its tombstone
 * stands (quarantine: until the runtime ends; otherwise until islet maps
 * the range again); never the rest of a large block's last 4 MiB granule,
 * past its end.  A wrapper around another allocator routes a free by it:
 * nobody else can map where this says yes (islet keeps such ranges
 * reserved, or jemalloc keeps them). */
ISLET_API int islet_contains(const void *p);
/* islet_free(in, p) and 1 when islet_contains(p); 0, and nothing done,
 * for other memory, which the wrapper hands to the allocator it wraps.
 * One owner lookup where islet_contains and islet_free take two. */
ISLET_API int islet_try_free(islet_interp_t *in, void *p);
/* islet_try_free for a wrapper's free hook: other memory goes to
 * other(ctx, p), the wrapped allocator's free, as islet's last step (a
 * tail call), so the hook itself can end in one. */
ISLET_API void islet_free_or(islet_interp_t *in, void *p, void (*other)(void *ctx, void *p),
                             void *ctx);
/* islet_realloc for a wrapper's realloc hook: a p that is not islet's goes
 * to other(ctx, p, size), the wrapped allocator's realloc, and stays its;
 * one owner lookup where islet_contains and islet_realloc take two. */
ISLET_API void *islet_realloc_or(islet_interp_t *in, void *p, size_t size,
                                 void *(*other)(void *ctx, void *p, size_t size), void *ctx);
ISLET_API islet_error_t islet_last_error(void);
ISLET_API const char *islet_strerror(islet_error_t e);
ISLET_API size_t islet_class_size(unsigned cls);
/* "jemalloc" or "system" (meson option mem_backend): where regions come
 * from.  Only the system backend moves a large block's pages on realloc. */
ISLET_API const char *islet_backend(void);

#ifdef __cplusplus
}
#endif
#endif

/* Fuzz target: the lifecycle of a runtime and its interpreters, checked
 * step by step against a reference model.
 *
 * Why: finalization is where multi-interpreter runtimes break (CPython's own
 * fuzzers never finalize), so the input drives create/destroy of
 * interpreters under every teardown policy (the runtime's or one set per
 * interpreter), allocation of every kind and size (aligned too, and realloc
 * that grows large blocks in place), cross frees under the defer and report
 * policies, bad frees and reallocs, free lists, singletons, immortals and
 * limits, and ends the runtime with interpreters still alive.  The model knows which blocks are
 * live and who owns them.  After every step the heap's stats must agree with it; after a destroy
 * the leak report must name exactly the model's live blocks, and under the release policy none of
 * the interpreter's memory may stay resident once the reclaimer is done, and all of it stays
 * reserved (checked with mincore on the system backend).  An orphan keeps no OS page its freed
 * blocks emptied, and a purge loses no live byte.
 *
 * Input: one byte of policy (bits 0-1 teardown, bits 2-4 singletons, bits 2-5
 * the end order, bits 6-7 both set: reclaim on the runtime's thread), then
 * operations of 4 bytes: opcode, slot, and a 16-bit argument.
 */
#include "islet_freelist.h"
#include "islet_singletons.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 4
#define MAXB 512

typedef struct {
  unsigned char *p;
  size_t size;
  int slot, freelist_kind; /* kind + 1 when it came from a free list */
} block_t;

static islet_runtime_t *rt;
static islet_interp_t *in[SLOTS];
static block_t blocks[MAXB];
#define ORPHAN (-1) /* the slot of a block whose interpreter ended under orphan */

static int nblocks, events, cross_events;   /* reports: bad input, and cross frees */
static islet_teardown_t teardown_of[SLOTS]; /* the runtime's, or set per interpreter */
static islet_teardown_t teardown;           /* the runtime's */
static bool cross_report;                   /* policy report, not defer */
static size_t singletons_each;              /* blocks each interpreter's singletons hold */
static int preset; /* 0 none, the CPython preset per interpreter (1) or shared (2), 3 small */
static size_t bytes_before;          /* of the stepping interpreter, before the step */
static unsigned char *retired[MAXB]; /* blocks of destroyed interpreters */
static int nretired;
static bool inherited[SLOTS]; /* the heap took an orphan's blocks over */
typedef struct {
  uintptr_t p, end;
  int slot;
} freed_t;
static freed_t freed[MAXB]; /* small blocks freed by their live interpreter */
static int nfreed;

static void on_event(void *ctx, const islet_event_t *ev) {
  (void)ctx;
  if (ev->error == ISLET_ECROSS)
    cross_events++;
  else
    events++;
}

static void fail(const char *what) {
  fprintf(stderr, "lifecycle: %s\n", what);
  abort();
}

static size_t live_in(int s) {
  size_t n = 0;
  for (int i = 0; i < nblocks; i++) n += blocks[i].slot == s;
  return n;
}

/* A heap of the orphan policy takes orphans' segments over, their blocks
 * with them (orphan.c): the model follows islet_owner. */
static void follow_inheritance(int s) {
  for (int i = 0; i < nblocks; i++) {
    if (blocks[i].slot != ORPHAN || islet_owner(blocks[i].p) != in[s]) continue;
    if (teardown_of[s] != ISLET_TEARDOWN_ORPHAN) fail("a heap not under orphan took blocks over");
    blocks[i].slot = s;
    inherited[s] = true;
  }
}

static void check_stats(int s) {
  follow_inheritance(s);
  islet_stats_t st;
  islet_interp_stats(in[s], &st);
  size_t kept = 0;
  for (unsigned k = 0; k < ISLET_FL_CPYTHON_KINDS; k++) {
    islet_freelist_stats_t f;
    islet_freelist_stats(in[s], k, &f);
    kept += f.count;
  }
  if (st.blocks - st.remote_pending - kept - singletons_each != live_in(s))
    fail("stats disagree with the model's live blocks");
}

static void stamp(block_t *b) {
  memset(b->p, (int)(b->size & 0xff), b->size < 16 ? b->size : 16);
}
static void check_stamp(const block_t *b) {
  for (size_t i = 0; i < b->size && i < 16; i++)
    if (b->p[i] != (unsigned char)(b->size & 0xff)) fail("a live block's contents changed");
}

static void add(int s, void *p, size_t size, int kind) {
  if (!p) return;
  if (islet_owner(p) != in[s]) fail("a new block is not its interpreter's");
  islet_stats_t st;
  islet_interp_stats(in[s], &st);
  if (st.limit && st.bytes > st.limit && st.bytes > bytes_before) /* it grew past the limit */
    fail("an allocation went past the limit");
  if (nblocks == MAXB) {
    islet_free(in[s], p);
    return;
  }
  blocks[nblocks] = (block_t){p, size, s, kind};
  stamp(&blocks[nblocks++]);
}

/* A live block leaves the model: it still has its contents, its owner and
 * at least its size. */
static block_t take(int i) {
  block_t b = blocks[i];
  blocks[i] = blocks[--nblocks];
  /* a small block lies past its segment's first 128 KiB, a large one at
   * 128 B or its alignment from its granule's start (a freed large block's
   * range may be mapped again for a segment) */
  uintptr_t off = (uintptr_t)b.p & ((4u << 20) - 1);
  bool small = off >= 128u << 10 && (off & (off - 1));
  if (!b.freelist_kind && b.slot != ORPHAN && small && nfreed < MAXB)
    freed[nfreed++] = (freed_t){(uintptr_t)b.p, (uintptr_t)b.p + islet_usable_size(b.p), b.slot};
  check_stamp(&b);
  if (!islet_contains(b.p)) fail("a live block is not islet memory");
  islet_interp_t *owner = islet_owner(b.p);
  if (b.slot == ORPHAN ? !owner : owner != in[b.slot]) fail("a live block lost its owner");
  if (islet_usable_size(b.p) < b.size) fail("a live block is smaller than asked");
  return b;
}

static islet_object_t *own(islet_runtime_t *r, islet_interp_t *i, void *ctx) {
  (void)ctx;
  return i ? islet_object_new(i, &islet_int_type, sizeof(islet_int_t))
           : islet_runtime_object_new(r, &islet_int_type, sizeof(islet_int_t));
}

#define SMALL_IDS 4 /* the small table: even ids per interpreter, odd shared */

static size_t table_ids(void) {
  return preset == 3 ? SMALL_IDS : ISLET_S_CPYTHON_COUNT;
}

static void start(uint8_t policy) {
  static const islet_teardown_t policies[4] = {ISLET_TEARDOWN_RELEASE, ISLET_TEARDOWN_QUARANTINE,
                                               ISLET_TEARDOWN_ORPHAN, ISLET_TEARDOWN_ORPHAN};
  teardown = policies[policy & 3];
  islet_config_t cfg = {.teardown = teardown,
                        /* the reclaim thread for a quarter of the inputs: its
                         * start, hand-off and wake-ups dominate a short input */
                        .reclaim_inline = (policy & 0xc0) != 0xc0,
                        .on_event = on_event};
  rt = islet_runtime_new(&cfg);
  islet_freelists_register(rt, islet_freelist_cpython, ISLET_FL_CPYTHON_KINDS);
  /* bits 2-4: the CPython preset per interpreter (0) or shared (1), none
   * (2, 3) or the small table (4-7).  The preset is rare: its 782 objects
   * per interpreter would dominate every input. */
  static const int presets[8] = {1, 2, 0, 0, 3, 3, 3, 3};
  preset = presets[policy >> 2 & 7];
  if (preset == 1 || preset == 2)
    islet_singletons_cpython(rt, preset == 1 ? ISLET_PER_INTERPRETER : ISLET_SHARED_IMMORTAL);
  for (unsigned id = 0; preset == 3 && id < SMALL_IDS; id++) {
    islet_singleton_def_t d = {id, id & 1 ? ISLET_SHARED_IMMORTAL : ISLET_PER_INTERPRETER, own,
                               NULL, NULL};
    islet_singletons_register(rt, &d, 1);
  }
  singletons_each = 1 + (preset == 1 ? ISLET_S_CPYTHON_COUNT : preset == 3 ? SMALL_IDS / 2 : 0);
  islet_singleton_def_t mine = {1000, ISLET_PER_INTERPRETER, own, NULL, NULL};
  islet_singletons_register(rt, &mine, 1);
}

#ifdef ISLET_FUZZ_SYSTEM_BACKEND
/* A released page stays reserved (its tombstone stands, so nobody else may
 * map there) and holds no memory. */
static const char *release_error(const void *p) {
  unsigned char v;
  uintptr_t page = (uintptr_t)p & ~(uintptr_t)4095;
  if (mincore((void *)page, 4096, &v)) return "released memory went back to the kernel";
  return v & 1 ? "released memory is still resident" : NULL;
}
#endif

/* Whether [a, e) holds part of a block the model knows live: its usable
 * bytes, and what its size class and an ASan red zone may add past them. */
static bool holds_live(uintptr_t a, uintptr_t e) {
  for (int i = 0; i < nblocks; i++) {
    uintptr_t p = (uintptr_t)blocks[i].p;
    size_t n = islet_usable_size(blocks[i].p);
    if (p < e && a < p + n + n / 4 + 32) return true;
  }
  return false;
}

/* An orphan keeps resident only the OS pages of its live blocks (purge.c):
 * every OS page of a block s freed that holds no live block went back (or
 * left islet with its segment).  Only the model's blocks are live now: the
 * leak report equals them. */
static void check_orphan_purged(int s) {
  for (int i = 0; i < nfreed; i++) {
    if (freed[i].slot != s) continue;
    for (uintptr_t a = freed[i].p & ~(uintptr_t)4095; a < freed[i].end; a += 4096) {
      unsigned char v;
      if (holds_live(a, a + 4096) || mincore((void *)a, 4096, &v)) continue; /* or unmapped */
      if (v & 1) fail("an orphan kept an OS page with no live block");
    }
  }
}

/* The blocks s freed leave the record; the records keep their order. */
static void forget_freed(int s) {
  int n = 0;
  for (int i = 0; i < nfreed; i++)
    if (freed[i].slot != s) freed[n++] = freed[i];
  nfreed = n;
}

/* After a destroy the leak report names exactly the model's live blocks.
 * Under orphan they stay valid and owned, and other interpreters free them
 * later; otherwise, once the reclaimer is done, none of them has an owner
 * and, released on the system backend, none is resident or given back to
 * the kernel (checked before anything can reuse it). */
static void destroy(int s) {
  islet_teardown_t teardown = teardown_of[s];
  islet_leak_report_t r;
  size_t expect = live_in(s);
  islet_interp_destroy(in[s], &r);
  in[s] = NULL;
  if (r.blocks != expect) fail("the leak report differs from the model's live blocks");
  /* a heap that took blocks over ends as an orphan, whatever its policy */
  if (r.orphaned != ((teardown == ISLET_TEARDOWN_ORPHAN || inherited[s]) && expect))
    fail("an interpreter was orphaned, or not, against its policy");
  if (r.orphaned) teardown = ISLET_TEARDOWN_ORPHAN;
  islet_runtime_flush(rt);
  for (int i = nblocks - 1; i >= 0; i--) {
    if (blocks[i].slot != s) continue;
    int found = 0;
    for (size_t k = 0; k < r.naddrs; k++) found |= r.addrs[k] == blocks[i].p;
    if (!found && expect <= ISLET_LEAK_ADDRS) fail("a live block is missing from the report");
    if (teardown == ISLET_TEARDOWN_ORPHAN) { /* still valid, freed by others from now on */
      if (!islet_owner(blocks[i].p)) fail("an orphaned block lost its owner");
      check_stamp(&blocks[i]);
      blocks[i].slot = ORPHAN;
      blocks[i].freelist_kind = 0; /* its free list is gone: a plain free now */
      continue;
    }
    block_t b = blocks[i];
    blocks[i] = blocks[--nblocks];
    if (islet_owner(b.p)) fail("a destroyed interpreter's block still has an owner");
#ifdef ISLET_FUZZ_SYSTEM_BACKEND
    if (teardown == ISLET_TEARDOWN_RELEASE && release_error(b.p)) fail(release_error(b.p));
#endif
    if (teardown == ISLET_TEARDOWN_QUARANTINE && nretired < MAXB)
      retired[nretired++] = b.p; /* never reused */
  }
  if (teardown == ISLET_TEARDOWN_ORPHAN) check_orphan_purged(s);
  forget_freed(s);
}

static void bad_free(int s, uint16_t arg) {
  static int on_stack_target;
  int before = events;
  void *p;
  if (arg % 3 == 0 && nblocks)
    p = blocks[arg % nblocks].p + 1 + arg % 15; /* interior */
  else if (arg % 3 == 1 && nretired)
    p = retired[arg % nretired]; /* quarantined */
  else
    p = &on_stack_target; /* foreign */
  if (arg & 0x8000) {     /* realloc of it: reported as its free would be, and no block */
    if (islet_realloc(in[s], p, arg % 600)) fail("a bad realloc returned a block");
  } else {
    islet_free(in[s], p);
  }
  if (events != before + 1) fail("a bad free was not reported exactly once");
}

/* Under the report policy a cross free is reported once, under defer never;
 * either way the block goes back to its owner. */
static void free_block(int s, block_t b) {
  int before = cross_events;
  islet_free(in[s], b.p); /* a cross free when s is not b.slot */
  if (cross_events != before + (cross_report && b.slot != s))
    fail("a cross free was not reported as the policy says");
}

/* A teardown policy for one interpreter; 3 is none and must be refused. */
static void set_teardown(int s, uint16_t arg) {
  islet_teardown_t t = (islet_teardown_t)(arg >> 8 & 3);
  int rc = islet_interp_set_teardown(in[s], t);
  if (t > ISLET_TEARDOWN_ORPHAN ? rc != ISLET_EINVAL : rc != 0)
    fail("islet_interp_set_teardown answered wrong");
  if (!rc) teardown_of[s] = t;
}

/* Sizes of malloc and realloc: small, or large up to 2.6 MB (a realloc of a
 * large block grows or shrinks it in place when it can). */
static size_t any_size(uint16_t arg) {
  return arg % 4 == 0 ? (size_t)arg * 40 : arg % 600;
}

/* An aligned block: the alignment is a power of two up to ISLET_MAX_ALIGN,
 * or a bad one (not a power of two, too large) that must be refused. */
static void aligned(int s, uint16_t arg) {
  size_t align = (size_t)1 << (arg % 23), size = (arg >> 5) * 24;
  bool bad = arg & 0x8000 || align > ISLET_MAX_ALIGN;
  if (arg & 0x8000) align = align << 1 | 3; /* two bits or more: not a power of two */
  void *p = islet_aligned_alloc(in[s], align, size);
  if (bad) {
    if (p || islet_last_error() != ISLET_EINVAL) fail("a bad alignment was not refused");
    return;
  }
  if (p && (uintptr_t)p % align) fail("an aligned block is misaligned");
  add(s, p, size, 0);
}

static void step(uint8_t op, int s, uint16_t arg) {
  if (!in[s] && op % 16 != 0) return;
  if (in[s]) {
    islet_stats_t st;
    islet_interp_stats(in[s], &st);
    bytes_before = st.bytes;
  }
  switch (op % 16) {
  case 0:
    if (in[s])
      destroy(s);
    else if ((in[s] = islet_interp_new(rt)))
      teardown_of[s] = teardown, inherited[s] = false;
    break;
  case 1: {
    size_t size = any_size(arg);
    add(s, islet_malloc(in[s], size), size, 0);
    break;
  }
  case 2: { /* calloc, overflowing for large counts */
    size_t n = (size_t)arg << 48 | 3;
    void *p = islet_calloc(in[s], arg & 0x8000 ? n : arg % 64, 7);
    if (arg & 0x8000) {
      if (p || islet_last_error() != ISLET_EOVERFLOW) fail("calloc overflow not refused");
    } else {
      for (size_t i = 0; p && i < (size_t)(arg % 64) * 7; i++)
        if (((unsigned char *)p)[i]) fail("calloc memory not zeroed");
      add(s, p, (size_t)(arg % 64) * 7, 0);
    }
    break;
  }
  case 3:
    if (nblocks) {
      int i = arg % nblocks;
      block_t b = take(i);
      if (b.freelist_kind) { /* back to the free list of its interpreter */
        islet_freelist_free(in[b.slot], (unsigned)b.freelist_kind - 1, b.p);
        break;
      }
      free_block(s, b);
    }
    break;
  case 4:
    if (nblocks && !blocks[arg % nblocks].freelist_kind) {
      block_t b = take(arg % nblocks);
      size_t size = any_size((uint16_t)(arg * 7919u)); /* not the slot's bits */
      unsigned char *p = islet_realloc(in[s], b.p, size);
      if (!p) { /* only a limit may refuse it, and the old block stays */
        if (islet_last_error() != ISLET_ELIMIT) {
          fprintf(stderr, "realloc(%p, %zu): %s\n", (void *)b.p, size,
                  islet_strerror(islet_last_error()));
          fail("realloc failed");
        }
        blocks[nblocks++] = b;
        break;
      }
      /* an orphan's block moved into its own 4 MiB granule: s took the
       * orphan's segment over on the way, and with it this block, which
       * the move then freed (follow_inheritance never sees it) */
      if (b.slot == ORPHAN && ((uintptr_t)p ^ (uintptr_t)b.p) >> 22 == 0) inherited[s] = true;
      b.p = p;
      for (size_t i = 0; i < b.size && i < size && i < 16; i++)
        if (p[i] != (unsigned char)(b.size & 0xff)) fail("realloc lost contents");
      add(s, p, size, 0);
    }
    break;
  case 5:
    if (nblocks) islet_free_any(take(arg % nblocks).p);
    break;
  case 6: {
    unsigned kind = arg % ISLET_FL_CPYTHON_KINDS;
    add(s, islet_freelist_alloc(in[s], kind), islet_freelist_cpython[kind].size, (int)kind + 1);
    break;
  }
  case 7:
    islet_freelists_finalize(in[s]);
    break;
  case 8: { /* the table's ids exist only when the input registered one; 1000 always */
    unsigned id = arg & 1 ? 1000 : (unsigned)(arg % table_ids());
    islet_object_t *o = islet_singleton(in[s], id);
    if (!o != (id != 1000 && !preset)) fail("a singleton lookup disagrees with the registrations");
    if (!o && islet_last_error() != ISLET_ENOENT) fail("a missing singleton without ISLET_ENOENT");
    if (o) {
      islet_incref(o);
      islet_decref(o);
    }
    break;
  }
  case 9: {
    islet_object_t *o = islet_object_new(in[s], &islet_int_type, sizeof(islet_int_t));
    if (o && islet_immortalize(o) != ISLET_OK) fail("immortalize failed");
    if (o) {
      islet_decref(o);
      if (nblocks < MAXB)
        blocks[nblocks++] = (block_t){(unsigned char *)o, 0, s, 0};
      else
        islet_free(in[s], o);
    }
    break;
  }
  case 10:
    if ((arg & 0xc000) == 0xc000)
      set_teardown(s, arg);
    else
      islet_interp_set_limit(in[s], arg ? (size_t)arg * 64 : 0);
    break;
  case 11:
    if (arg & 0x8000) { /* the cross policy, changed while blocks are out */
      cross_report = arg & 1;
      islet_runtime_set_cross_policy(rt, cross_report ? ISLET_CROSS_REPORT : ISLET_CROSS_DEFER);
    }
    islet_interp_collect(in[s]);
    break;
  case 12:
    bad_free(s, arg);
    break;
  case 14:
    aligned(s, arg);
    break;
  case 13:
    if (nblocks && !blocks[arg % nblocks].freelist_kind && blocks[arg % nblocks].size) {
      block_t b = take(arg % nblocks);
      int before = events;
      islet_free(b.slot == ORPHAN ? in[s] : in[b.slot], b.p);
      islet_free(in[s], b.p); /* a double free: reported, nothing changes */
      if (events != before + 1) fail("a double free was not reported exactly once");
    }
    break;
  case 15: /* free memory back to the kernel now: no live block may lose a byte */
    islet_interp_purge(in[s]);
    for (int i = 0; i < nblocks; i++) check_stamp(&blocks[i]);
    break;
  default:
    add(s, islet_malloc(in[s], 16 + arg % 100000), 16 + arg % 100000, 0);
  }
  if (in[s]) check_stats(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  start(data[0]);
  for (size_t i = 1; i + 4 <= size; i += 4)
    step(data[i], data[i + 1] % SLOTS, (uint16_t)(data[i + 2] | data[i + 3] << 8));
  for (int s = 0; s < SLOTS; s++) /* end the runtime in the order the input says */
    if (in[s] && (data[0] >> (2 + s)) & 1) destroy(s);
  islet_runtime_destroy(rt); /* with whatever is still alive */
  for (int s = 0; s < SLOTS; s++) in[s] = NULL;
  nblocks = nretired = nfreed = events = cross_events = 0;
  cross_report = false;
  return 0;
}

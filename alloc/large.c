/* Large blocks (over ISLET_SMALL_MAX): one backend region each.
 *
 * Why: big blocks are rare and long-lived, and a region of their own returns
 * to the backend when they are freed.  The region's base is
 * granule-aligned and holds a header, so the owner map finds it like a
 * segment.  A free from another thread goes through the hand-off
 * (handoff.c), which ends here, on the owner's side (islet_large_drop).
 *
 * The last SPARES freed regions of up to SPARE_MAX each stay mapped for
 * the heap's next large blocks (the spares): CPython reads each module's
 * .pyc into a bytes object of 10-100 KiB and frees it, and builds a big
 * string in a buffer or a list of pieces it frees (json's dump alternates
 * the two each round); a fresh region for each would fault every page in
 * again, where glibc's malloc, behind pymalloc, reuses its heap.  A spare
 * goes back after the purge delay if unused (purge.c), and when the heap
 * ends.
 */
#include "internal.h"
#include <sys/mman.h>

static size_t header_size(size_t align) {
  return align > LARGE_HDR ? align : LARGE_HDR;
}

size_t islet_large_usable(size_t size, size_t align) {
  size_t hdr = header_size(align);
  if (size > SIZE_MAX / 2 - hdr) return 0;
  return ((hdr + size + 4095) & ~(size_t)4095) - hdr;
}

#define SPARE_MAX ((size_t)1 << 20)

/* A region of in's, which the map no longer names as a block, goes back to
 * the backend. */
static void region_unmap(islet_interp_t *in, void *base, size_t bytes) {
  in->mapped -= bytes;
  san_unpoison(base, bytes); /* its shadow outlives it */
  islet_backend_unmap(in->arena, base, bytes);
}

/* Spare i leaves the list (the newer ones keep their order). */
static spare_t spare_out(islet_interp_t *in, unsigned i) {
  spare_t sp = in->spares[i];
  for (; i + 1 < SPARES; i++) in->spares[i] = in->spares[i + 1];
  in->spares[SPARES - 1].base = NULL;
  return sp;
}

/* The spares go when unused since the last pass (or now), and so does
 * the room a spare gave a block past what the block holds. */
void islet_large_purge(islet_interp_t *in, bool now) {
  for (seghdr_t *h = in->larges.next; h != &in->larges; h = h->next)
    islet_large_shrink(in, (large_t *)h, ((large_t *)h)->size);
  for (unsigned i = SPARES; i-- > 0;) {
    spare_t *sp = &in->spares[i];
    if (!sp->base) continue;
    if (now || sp->idle) {
      spare_t gone = spare_out(in, i);
      region_unmap(in, gone.base, gone.bytes);
    } else {
      sp->idle = true;
    }
  }
}

/* A live heap's dropped region (its tombstone in the map) becomes the
 * newest spare, the oldest going back when all are kept; its header is not
 * read again. */
static bool spare_keep(islet_interp_t *in, large_t *lg) {
  if (in->orphaned || vg_on() || lg->mapped > SPARE_MAX) return false;
  if (in->spares[SPARES - 1].base) {
    spare_t gone = spare_out(in, SPARES - 1);
    region_unmap(in, gone.base, gone.bytes);
  }
  for (unsigned i = SPARES - 1; i > 0; i--) in->spares[i] = in->spares[i - 1];
  in->spares[0] = (spare_t){lg, lg->mapped, false};
  san_poison(lg, lg->mapped); /* a use after free of anything in it is caught */
  return true;
}

/* Whether a spare of has bytes serves a block that maps want better than
 * one of had: one that holds it before one that does not (which grows in
 * place); of two that do, the smaller; of two that do not, the larger. */
static bool better(size_t has, size_t had, size_t want) {
  if ((has >= want) != (had >= want)) return has >= want;
  return has >= want ? has < had : has > had;
}

static int spare_pick(const islet_interp_t *in, size_t want) {
  int best = -1;
  for (int i = 0; i < SPARES && in->spares[i].base; i++)
    if (best < 0 || better(in->spares[i].bytes, in->spares[best].bytes, want)) best = i;
  return best;
}

/* A spare as the region of a block that needs *mapped bytes, grown in
 * place when smaller; *mapped: what it maps.  Past what the block needs,
 * it is room to grow without faults (CPython grows a string or a list in
 * one buffer) until the next purge pass.  A heap with a limit, which
 * counts the block only, cuts the room to the block's size. */
static void *spare_take(islet_interp_t *in, size_t *mapped) {
  size_t want = *mapped;
  int i = want > SPARE_MAX ? -1 : spare_pick(in, want);
  if (i < 0) return NULL;
  void *sp = in->spares[i].base;
  size_t has = in->spares[i].bytes;
  if (has < want && !islet_backend_resize(sp, has, want)) return NULL;
  spare_out(in, (unsigned)i);
  in->mapped -= has; /* islet_large_alloc counts what the block maps */
  if (has < want) {
    islet_region_advise(sp, has, want);
    has = want;
  } else if (in->limit != SIZE_MAX && has / 2 > want) {
    san_unpoison((char *)sp + 2 * want, has - 2 * want); /* its shadow outlives it */
    if (islet_backend_resize(sp, has, 2 * want)) has = 2 * want;
  }
  san_unpoison(sp, want); /* the room stays poisoned until the block grows into it */
  *mapped = has;
  return sp;
}

/* size must have passed islet_large_usable. */
large_t *islet_large_alloc(islet_interp_t *in, size_t size, size_t align) {
  size_t hdr = header_size(align), usable = islet_large_usable(size, align);
  size_t mapped = hdr + usable;
  large_t *lg = spare_take(in, &mapped);
  if (!lg) lg = islet_region_map(in, mapped);
  bool in_segment = !lg && mapped <= SEG_SIZE && (lg = islet_segment_take(in));
  if (!lg) {
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
  vg_defined(lg, sizeof *lg);
  lg->h.kind = KIND_LARGE;
  atomic_init(&lg->h.owner, in);
  atomic_init(&lg->h.owner_id, in->id);
  atomic_init(&lg->h.orphaned, false);
  lg->h.rt = in->rt;
  lg->off = (uint32_t)hdr;
  lg->size = usable;
  lg->mapped = mapped;
  lg->rnext = NULL;
  lg->in_segment = in_segment;
  atomic_init(&lg->pending, 0);
  atomic_init(&lg->state, LARGE_LIVE);
  if (!in_segment && !islet_map_set(lg, mapped, (uintptr_t)lg)) {
    islet_backend_unmap(in->arena, lg, mapped);
    islet_set_error(ISLET_ENOMEM);
    return NULL;
  }
  list_push(&in->larges, &lg->h);
  in->nlarge++;
  in->mapped += mapped;
  return lg;
}

static uintptr_t granule_up(uintptr_t a) {
  return (a + SEG_SIZE - 1) & ~(uintptr_t)(SEG_SIZE - 1);
}

/* The usable bytes lg would have for size bytes (0: too big), and the bytes
 * it would map. */
static size_t resized(const large_t *lg, size_t size, size_t *mapped) {
  size_t usable = islet_large_usable(size, lg->off);
  *mapped = lg->off + usable;
  return usable;
}

/* Other threads read lg->size (islet_usable_size, a cross free's
 * poisoning) and lg->mapped (large_holds) while the owner resizes: a size
 * that stays is not written (the purge pass trims only a block's room),
 * and mapped is stored relaxed, as large_holds loads it (a pointer into
 * the trimmed tail is no block's either way). */
static void account_resize(islet_interp_t *in, large_t *lg, size_t usable, size_t mapped) {
  books_in(in, (ptrdiff_t)usable - (ptrdiff_t)lg->size, 0);
  in->mapped += mapped - lg->mapped;
  if (usable != lg->size) lg->size = usable;
  __atomic_store_n(&lg->mapped, mapped, __ATOMIC_RELAXED);
}

/* Growing buffers (a string built by appending, a list that doubles) would
 * otherwise copy at every step and leave each old size behind.  A region
 * holds whole granules (system backend) or starts on one (jemalloc), so
 * there is room after a large block to grow into. */
bool islet_large_grow(islet_interp_t *in, large_t *lg, size_t size) {
  size_t mapped, usable = resized(lg, size, &mapped), old = lg->mapped;
  if (!usable || usable <= lg->size || heap_bytes(in) + (usable - lg->size) > in->limit)
    return false;
  if (mapped <= old) { /* in what a spare region brought */
    account_resize(in, lg, usable, old);
    return true;
  }
  if (lg->in_segment) { /* its granule is mapped whole, and the map names it */
    if (mapped > SEG_SIZE) return false;
    account_resize(in, lg, usable, mapped);
    return true;
  }
  if (!islet_backend_resize(lg, old, mapped)) return false;
  islet_region_advise(lg, old, mapped);
  /* only the new granules: a failed map_set clears what it was given */
  uintptr_t from = granule_up((uintptr_t)lg + old), end = (uintptr_t)lg + mapped;
  if (from < end && !islet_map_set((void *)from, end - from, (uintptr_t)lg)) { /* no leaf */
    islet_backend_resize(lg, mapped, old);
    return false;
  }
  account_resize(in, lg, usable, mapped);
  return true;
}

/* A block shrunk to less than half gives its tail back in place rather than
 * being copied to a new region.  Granules past the new end leave the map. */
void islet_large_shrink(islet_interp_t *in, large_t *lg, size_t size) {
  size_t mapped, usable = resized(lg, size, &mapped), old = lg->mapped;
  if (mapped >= old || lg->in_segment) return; /* that one is kept whole */
  uintptr_t end = granule_up((uintptr_t)lg + mapped), was = (uintptr_t)lg + old;
  if (end < was) islet_map_set((void *)end, was - end, 0);
  san_unpoison((char *)lg + mapped, old - mapped); /* its shadow outlives it */
  if (!islet_backend_resize(lg, old, mapped)) {    /* the kernel would not split it */
    if (end < was) islet_map_set((void *)end, was - end, (uintptr_t)lg); /* leaves exist */
    return;
  }
  account_resize(in, lg, usable, mapped);
}

/* When the space after it is taken: the pages move to a new region, so a
 * big realloc costs neither a copy nor the faults of fresh pages.  The old
 * range leaves the owner map before it goes: someone else may map there. */
large_t *islet_large_move(islet_interp_t *in, large_t *lg, size_t size) {
  size_t mapped, usable = resized(lg, size, &mapped), old = lg->mapped;
  if (!islet_backend_moves || lg->in_segment || !usable ||
      heap_bytes(in) - lg->size + usable > in->limit)
    return NULL;
  large_t *to = islet_backend_map(in->arena, mapped);
  if (!to) return NULL;
  if (!islet_map_set(to, mapped, 0)) { /* its leaves, before the header is there */
    islet_backend_unmap(in->arena, to, mapped);
    return NULL;
  }
  islet_map_set(lg, old, 0);
  list_del(&lg->h);
  if (!islet_backend_move(lg, old, to, mapped)) {
    list_push(&in->larges, &lg->h);
    islet_map_set(lg, old, (uintptr_t)lg); /* its leaves are there: this cannot fail */
    islet_backend_unmap(in->arena, to, mapped);
    return NULL;
  }
  islet_map_set(to, mapped, (uintptr_t)to); /* nor this */
  islet_region_advise(to, 0, mapped);       /* the moved pages keep theirs; the span's tail */
  san_unpoison(lg, old);                    /* only the shadow: the range is gone */
  list_push(&in->larges, &to->h);
  account_resize(in, to, usable, mapped);
  return to;
}

/* The owner's side: the block is already claimed (state not LIVE).  Its
 * range keeps a tombstone naming the owner, so a second free is a double
 * free, not a foreign pointer, until a new region reuses the range: only
 * islet can (the system backend holds it, and only islet calls jemalloc). */
void islet_large_drop(islet_interp_t *in, large_t *lg) {
  books_out(in, lg->size, 1);
  list_del(&lg->h);
  in->nlarge--;
  if (lg->in_segment) { /* its granule serves small blocks again */
    in->mapped -= lg->mapped;
    islet_segment_give(in, lg);
    return;
  }
  islet_map_tomb(lg, lg->mapped, in->id, TOMB_FREED);
  if (!spare_keep(in, lg)) region_unmap(in, lg, lg->mapped);
}

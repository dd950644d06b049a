/* Fuzz target: bad pointers.  Frees of foreign, interior, double-freed and
 * destroyed-interpreter pointers, and of raw addresses taken from the input,
 * under the report policy: each must be reported exactly once and change
 * nothing (the heap's counts stay put, every live block keeps its
 * contents), while the real blocks among them are freed normally.  The
 * frees go through islet_free with an interpreter or NULL, or through
 * islet_try_free, which must report and answer 1 exactly for the pointers
 * islet_contains, and leave every other pointer alone.
 *
 * Input: operations of 9 bytes: a kind, then 8 bytes of address or offset.
 */
#include "islet.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE 64

static int events;
static void on_event(void *ctx, const islet_event_t *ev) {
  (void)ctx;
  (void)ev;
  events++;
}

static void fail(const char *what) {
  fprintf(stderr, "badptr: %s\n", what);
  abort();
}

typedef struct {
  unsigned char *p;
  size_t size;
} live_t;

static live_t live[LIVE];
static int nlive;
static unsigned char *freed[LIVE], *dead[LIVE];
static int nfreed, ndead;

static int find(const void *p) {
  for (int i = 0; i < nlive; i++)
    if (live[i].p == p) return i;
  return -1;
}

static void check_live(void) {
  for (int i = 0; i < nlive; i++)
    for (size_t k = 0; k < live[i].size && k < 32; k++)
      if (live[i].p[k] != (unsigned char)i) fail("a live block changed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int global;
  int local;
  islet_runtime_t *rt = islet_runtime_new(&(islet_config_t){.bad_free = ISLET_BAD_REPORT,
                                                            .teardown = ISLET_TEARDOWN_QUARANTINE,
                                                            .reclaim_inline = 1,
                                                            .on_event = on_event});
  islet_interp_t *a = islet_interp_new(rt), *b = islet_interp_new(rt), *gone = islet_interp_new(rt);
  for (int i = 0; i < 8; i++) dead[ndead++] = islet_malloc(gone, (size_t)16 << i);
  islet_interp_destroy(gone, NULL); /* quarantined: its addresses are never reused */
  void *heap = malloc(64);
  for (nlive = 0; nlive < LIVE; nlive++) {
    size_t n = nlive % 7 == 6 ? 20000 + (size_t)nlive * 100 : 16 + (size_t)nlive * 13;
    live[nlive] = (live_t){islet_malloc(a, n), n};
    memset(live[nlive].p, nlive, n < 32 ? n : 32);
  }
  for (size_t off = 0; off + 9 <= size; off += 9) {
    uint64_t x;
    memcpy(&x, data + off + 1, 8);
    unsigned char *p;
    switch (data[off] % 6) {
    case 0:
      p = (unsigned char *)(uintptr_t)x;
      break; /* any address at all */
    case 1:
      p = nlive ? live[x % nlive].p + 1 + x % 64 : NULL;
      break;
    case 2:
      p = nfreed ? freed[x % nfreed] : NULL;
      break;
    case 3:
      p = dead[x % ndead] + (x & 1 ? 0 : 16);
      break;
    case 4:
      p = x & 1 ? (unsigned char *)&local : x & 2 ? (unsigned char *)&global : heap;
      break;
    default: { /* a real free, so double frees have something to hit */
      if (!nlive) continue;
      int i = (int)(x % (uint64_t)nlive);
      if (nfreed < LIVE) freed[nfreed++] = live[i].p;
      if (!(x & 8))
        islet_free(x & 2 ? b : a, live[i].p);
      else if (islet_try_free(x & 2 ? b : a, live[i].p) != 1)
        fail("islet_try_free did not take a live block");
      live[i] = live[--nlive];
      for (int k = i; k < nlive; k++) memset(live[k].p, k, live[k].size < 32 ? live[k].size : 32);
      continue;
    }
    }
    if (!p || find(p) >= 0) continue; /* a live block: not a bad pointer */
    islet_stats_t before, after;
    islet_interp_stats(a, &before);
    int ev = events, reported = 1;
    islet_interp_t *caller = x & 4 ? b : x & 16 ? NULL : a;
    if (x & 8) {
      reported = islet_contains(p) != 0;
      if (islet_try_free(caller, p) != reported) fail("islet_try_free answered wrong");
    } else {
      islet_free(caller, p);
    }
    islet_interp_stats(a, &after);
    if (events != ev + reported)
      fail("a bad pointer was not reported exactly once, or one islet does not hold was");
    if (after.blocks != before.blocks || after.bytes != before.bytes)
      fail("a bad free changed the heap");
    check_live();
  }
  free(heap);
  islet_runtime_destroy(rt);
  nfreed = ndead = 0;
  events = 0;
  return 0;
}

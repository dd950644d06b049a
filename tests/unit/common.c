/* Shared test fixtures (see common.h). */
#include "common.h"
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

islet_event_t events[MAX_EVENTS];
int nevents;
islet_runtime_t *rt;

static void capture(void *ctx, const islet_event_t *ev) {
  (void)ctx;
  if (nevents < MAX_EVENTS) events[nevents] = *ev;
  nevents++;
}

islet_runtime_t *capture_runtime(islet_cross_policy_t cross, islet_bad_policy_t bad,
                                 islet_teardown_t teardown) {
  return capture_config(
      (islet_config_t){.cross_free = cross, .bad_free = bad, .teardown = teardown});
}

islet_runtime_t *capture_config(islet_config_t cfg) {
  cfg.on_event = capture;
  nevents = 0;
  rt = islet_runtime_new(&cfg);
  cr_assert_not_null(rt);
  return rt;
}

void setup_default(void) {
  capture_runtime(ISLET_CROSS_DEFER, ISLET_BAD_REPORT, ISLET_TEARDOWN_RELEASE);
}

void teardown_runtime(void) {
  islet_runtime_destroy(rt);
  rt = NULL;
}

void expect_one_event(islet_error_t e, const void *p, unsigned owner) {
  cr_assert_eq(nevents, 1, "expected one event, got %d", nevents);
  cr_assert_eq(events[0].error, e, "event %s, expected %s", islet_strerror(events[0].error),
               islet_strerror(e));
  cr_assert_eq(events[0].ptr, p);
  cr_assert_eq(events[0].owner, owner);
  nevents = 0;
}

void expect_no_event(void) {
  cr_assert_eq(nevents, 0, "unexpected events: %d", nevents);
}

size_t statm_bytes(int field) {
  long pages[2] = {0, 0};
  FILE *f = fopen("/proc/self/statm", "r");
  cr_assert(f && fscanf(f, "%ld %ld", &pages[0], &pages[1]) == 2);
  fclose(f);
  return (size_t)pages[field] * (size_t)sysconf(_SC_PAGESIZE);
}

size_t live_blocks(islet_interp_t *in) {
  islet_stats_t s;
  islet_interp_stats(in, &s);
  return s.blocks;
}

/* The VmFlags of the kernel mapping that holds p (/proc/self/smaps), or "". */
void vma_flags(const void *p, char *out, size_t n) {
  FILE *f = fopen("/proc/self/smaps", "r");
  cr_assert(f);
  char line[512];
  bool here = false;
  out[0] = 0;
  while (fgets(line, sizeof line, f)) {
    uintptr_t lo, hi;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2)
      here = lo <= (uintptr_t)p && (uintptr_t)p < hi;
    else if (here && !strncmp(line, "VmFlags:", 8))
      snprintf(out, n, "%s", line + 8);
  }
  fclose(f);
}

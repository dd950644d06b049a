/* Shared test fixtures (see common.h). */
#include "common.h"
#include <stdio.h>
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

/* Shared test fixtures: a runtime whose events are captured, not printed,
 * so tests can assert exactly which reports a call made. */
#ifndef ISLET_TEST_COMMON_H
#define ISLET_TEST_COMMON_H

#include "islet.h"
#include <criterion/criterion.h>

#define MAX_EVENTS 64

extern islet_event_t events[MAX_EVENTS];
extern int nevents;
extern islet_runtime_t *rt;

/* A runtime with the given policies whose events land in events[]. */
islet_runtime_t *capture_runtime(islet_cross_policy_t cross, islet_bad_policy_t bad,
                                 islet_teardown_t teardown);
/* The same with any configuration (its on_event is replaced). */
islet_runtime_t *capture_config(islet_config_t cfg);
void setup_default(void);
void teardown_runtime(void);
/* Asserts that exactly one event was reported since the last call, with
 * this error, pointer and owner, and clears the list. */
void expect_one_event(islet_error_t e, const void *p, unsigned owner);
void expect_no_event(void);
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* The process's virtual size (field 0) or resident size (field 1), in
 * bytes, from /proc/self/statm. */
size_t statm_bytes(int field);

/* The VmFlags of the kernel mapping that holds p (/proc/self/smaps), or "". */
void vma_flags(const void *p, char *out, size_t n);

/* The interpreter's live blocks, from its stats. */
size_t live_blocks(islet_interp_t *in);

#endif

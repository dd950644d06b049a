/* sancheck: negative controls that prove the sanitizers and Valgrind watch
 * islet blocks.  Each mode commits one bug on an islet block; the suite
 * expects the tool to report it (tests/expect-report.sh), so a tool that
 * stops seeing islet memory fails the build.  Mode "clean" commits none.
 *
 *   sancheck uaf|large-uaf|overflow|overflow-request|large-overflow-request|leak|race|mortal|
 *            reuse|refcnt|clean
 *
 * overflow reads one byte past the block's usable size; overflow-request one
 * past the size asked for, inside the size class's room, and
 * large-overflow-request the same past what a realloc asked of a large block.
 *
 * The TSan controls (race, mortal, reuse, refcnt) keep each racing access in
 * its own non-inlined function, so the compiler cannot fold an increment and
 * a decrement away.
 */
#include "islet_object.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static char *shared;
static islet_object_t *_Atomic shared_ob;
static char *_Atomic stale;
static islet_interp_t *other;

static void *writer(void *arg) {
  (void)arg;
  shared[0] = 1; /* no lock, no hand-off: a data race with main */
  return NULL;
}

static __attribute__((noinline)) void incref_mortal(islet_object_t *ob) {
  islet_incref(ob);
}
static __attribute__((noinline)) void naive_incref(islet_object_t *ob) {
  ob->ob_refcnt++;
}

static void *mortal_user(void *arg) { /* a mortal object of another interpreter */
  incref_mortal(arg);
  return NULL;
}

static void *naive_user(void *arg) { /* a plain ++ on a shared count */
  naive_incref(arg);
  return NULL;
}

static _Atomic int reused; /* relaxed too: it orders in time, not for TSan */

static void *stale_user(void *arg) { /* keeps using a block its owner has reused */
  (void)arg;
  char *p;
  while (!(p = atomic_load_explicit(&stale, memory_order_relaxed))) continue;
  while (!atomic_load_explicit(&reused, memory_order_relaxed))
    continue; /* after the owner's write */
  p[0] = 7;
  return NULL;
}

static void run_pair(void *(*fn)(void *), void *arg, void (*mine)(islet_object_t *)) {
  pthread_t t;
  pthread_create(&t, NULL, fn, arg);
  mine(arg);
  pthread_join(t, NULL);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "clean";
  islet_runtime_t *rt = islet_runtime_new(NULL);
  islet_interp_t *in = islet_interp_new(rt);
  volatile char *p = islet_malloc(in, 24);
  memset((char *)p, 1, 24);
  int rc = 0;
  if (!strcmp(mode, "uaf")) {
    islet_free(in, (void *)p);
    rc = p[3]; /* read after free */
  } else if (!strcmp(mode, "large-uaf")) {
    volatile char *big = islet_malloc(in, 200000);
    big[1000] = 1;
    islet_free(in, (void *)big);
    rc = big[1000];
  } else if (!strcmp(mode, "overflow")) {
    rc = p[islet_usable_size((void *)p)]; /* one past what the block may use */
  } else if (!strcmp(mode, "overflow-request")) {
    volatile char *q = islet_malloc(in, 40); /* a class of 48 bytes or more */
    rc = q[40];
    islet_free(in, (void *)q);
  } else if (!strcmp(mode, "large-overflow-request")) {
    volatile char *big = islet_realloc(in, islet_malloc(in, 100000), 150000);
    rc = big[150000];
    islet_free(in, (void *)big);
  } else if (!strcmp(mode, "leak")) {
    p = NULL; /* lost, and the interpreter is never destroyed */
    return 0;
  } else if (!strcmp(mode, "race")) {
    shared = (char *)p;
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    shared[0] = 2;
    pthread_join(t, NULL);
  } else if (!strcmp(mode, "mortal") || !strcmp(mode, "refcnt")) {
    static const islet_type_t plain = {"plain", NULL};
    islet_object_t *ob = islet_object_new(in, &plain, 32);
    ob->ob_refcnt = 10;
    atomic_store(&shared_ob, ob);
    if (mode[0] == 'm')
      run_pair(mortal_user, ob, incref_mortal);
    else
      run_pair(naive_user, ob, naive_incref);
    islet_free(in, ob);
  } else if (!strcmp(mode, "reuse")) {
    other = islet_interp_new(rt);
    pthread_t t;
    pthread_create(&t, NULL, stale_user, NULL);
    char *q = islet_malloc(in, 64);
    atomic_store_explicit(&stale, q, memory_order_relaxed); /* no hand-off: relaxed */
    islet_free(in, q);
    char *again = islet_malloc(in, 64); /* the same block, reused */
    again[0] = 1;
    atomic_store_explicit(&reused, 1, memory_order_relaxed);
    pthread_join(t, NULL);
    islet_free(in, again);
  }
  islet_free(in, (void *)p);
  islet_interp_destroy(in, NULL);
  islet_runtime_destroy(rt);
  printf("sancheck %s: done\n", mode);
  return rc & 0;
}

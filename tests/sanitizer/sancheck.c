/* sancheck: negative controls that prove the sanitizers and Valgrind watch
 * islet blocks.  Each mode commits one bug on an islet block; the suite
 * expects the tool to report it (tests/expect-report.sh), so a tool that
 * stops seeing islet memory fails the build.  Mode "clean" commits none.
 *
 *   sancheck uaf|overflow|leak|race|clean
 */
#include "islet.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static char *shared;

static void *writer(void *arg) {
  (void)arg;
  shared[0] = 1; /* no lock, no hand-off: a data race with main */
  return NULL;
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
  } else if (!strcmp(mode, "overflow")) {
    rc = p[islet_usable_size((void *)p)]; /* one past what the block may use */
  } else if (!strcmp(mode, "leak")) {
    p = NULL; /* lost, and the interpreter is never destroyed */
    return 0;
  } else if (!strcmp(mode, "race")) {
    shared = (char *)p;
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    shared[0] = 2;
    pthread_join(t, NULL);
  }
  islet_free(in, (void *)p);
  islet_interp_destroy(in, NULL);
  islet_runtime_destroy(rt);
  printf("sancheck %s: done\n", mode);
  return rc & 0;
}

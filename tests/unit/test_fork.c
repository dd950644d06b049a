/* fork(): a child of a process that uses islet on several threads can use
 * islet itself: no lock is left held, and the child gives destroyed heaps
 * back on its own thread, starting none (a thread started in a child of a
 * multi-threaded fork is what POSIX leaves undefined and TSan kills). */
#include "../threads.h"
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(fork, .init = setup_default, .fini = teardown_runtime);

/* The child's life, by exit status: 0 when it allocated, destroyed a heap
 * and got its memory back with no thread started; 1 when that memory is
 * still resident; 2 when islet started a thread; killed by SIGALRM when it
 * hung.  No Criterion assertion runs in the child. */
static void child_life(bool end_runtime) {
  alarm(10);
  int threads = count_threads();
  islet_interp_t *in = islet_interp_new(rt);
  for (int k = 0; k < 200; k++) islet_free(in, islet_malloc(in, k % 2 ? 64 : 300000));
  size_t size = (size_t)1 << 20;
  char *big = islet_malloc(in, size);
  memset(big, 1, size);
  islet_interp_destroy(in, NULL); /* given back here, on the child's only thread */
  islet_runtime_flush(rt);
  unsigned char vec = 1;
  void *page = (void *)((uintptr_t)(big + size / 2) & ~(uintptr_t)4095);
  int kept = mincore(page, 4096, &vec) || (vec & 1);
  bool threaded = threads < 0 || count_threads() != threads;
  if (end_runtime) islet_runtime_destroy(rt); /* on condition variables made anew */
  _exit(threaded ? 2 : kept);
}

/* Forks n children; how each ended: hung, started a thread, failed, or
 * fine.  No assertion here: a caller with a thread running stops it first. */
typedef struct {
  int hung, threaded, failed;
} ends_t;
static ends_t fork_children(int n, bool end_runtime) {
  ends_t e = {0, 0, 0};
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) child_life(end_runtime);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
      e.failed++;
    else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
      e.hung++;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
      e.threaded++;
    else if (!WIFEXITED(st) || WEXITSTATUS(st))
      e.failed++;
  }
  return e;
}

static void expect_fine(ends_t e, int n) {
  cr_assert_eq(e.hung, 0, "%d of %d children hung in islet", e.hung, n);
  cr_assert_eq(e.threaded, 0, "%d of %d children started a thread", e.threaded, n);
  cr_assert_eq(e.failed, 0, "%d of %d children crashed or kept a destroyed heap resident", e.failed,
               n);
}

Test(fork, a_child_gives_heaps_back_without_a_thread) {
  islet_interp_destroy(islet_interp_new(rt), NULL); /* the parent's runtime thread runs */
  islet_runtime_flush(rt);                          /* it waits for more, on a condition variable */
  expect_fine(fork_children(3, true), 3);
}

static atomic_bool stop;

/* Heaps that end as orphans, each with one live block, the oldest freed as
 * a new one comes: the orphan lock is held for much of the time (every
 * destroy and every free of an orphan's block tidies under it). */
static void *cycle(void *arg) {
  (void)arg;
  enum { KEEP = 32 };
  void *kept[KEEP] = {0};
  for (unsigned n = 0; !atomic_load(&stop); n++) {
    islet_interp_t *in = islet_interp_new(rt);
    islet_interp_set_teardown(in, ISLET_TEARDOWN_ORPHAN);
    void *p[16];
    for (int i = 0; i < 16; i++) p[i] = islet_malloc(in, i % 2 ? 100 : 300000);
    for (int i = 1; i < 16; i++) islet_free(in, p[i]);
    islet_free_any(kept[n % KEEP]);
    kept[n % KEEP] = p[0];
    islet_interp_destroy(in, NULL);
  }
  for (int i = 0; i < KEEP; i++) islet_free_any(kept[i]);
  return NULL;
}

/* The other thread is anywhere in islet when fork() copies this one:
 * creating, allocating, destroying, tidying orphans, or the runtime
 * thread giving memory back. */
Test(fork, fork_while_another_thread_creates_and_destroys_heaps) {
  /* clang 14's ASan does not hold its own allocator's locks across fork:
   * a child's thread then waits in ASan's malloc for a lock the other
   * thread held (seen in 5 of 15 runs, in SizeClassAllocator64). */
  if (UNDER_ASAN) cr_skip_test("ASan's allocator is not fork-safe with threads running");
  pthread_t t;
  atomic_store(&stop, false);
  cr_assert_eq(pthread_create(&t, NULL, cycle, NULL), 0);
  ends_t e = fork_children(100, false); /* the other thread's heap may be mid-change */
  atomic_store(&stop, true);
  pthread_join(t, NULL);
  expect_fine(e, 100);
  expect_no_event();
}

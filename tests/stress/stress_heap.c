/* stress_heap: N interpreters on N threads hammer their heaps and free each
 * other's blocks, incref and decref shared immortal objects with no atomics,
 * look up singletons and recycle free-list blocks (objects.c), and are
 * destroyed and created again while the others run.
 *
 * A plain executable (Criterion aborts under TSan), run under TSan, ASan and
 * Valgrind.  It checks, and exits 1 on any miss: every block's contents
 * survive until its free (no block is handed out twice), each teardown's leak
 * report names exactly the blocks left live on purpose, every block handed to
 * another thread comes back to its owner (sent == taken back), shared
 * immortals are never written, and islet reports no event at all (the
 * isolation checker is on).
 *
 * With --orphan, interpreters end under ISLET_TEARDOWN_ORPHAN: the blocks
 * left live go to other threads, which free them while new interpreters
 * take the orphans' segments over (orphan.c); a heap's stats and report
 * then count what it took over too, so they are bounds, not equalities.
 *
 * With --fork N, the main thread forks N times while the workers run (they
 * go on cycling until it is done), as multiprocessing forks a threaded
 * program.  Each child allocates, destroys a heap of its own and flushes,
 * and must neither hang nor start a thread to do it (fork.c): TSan kills a
 * child of a multi-threaded fork that starts one.
 *
 *   stress_heap [--interps N] [--ops N] [--cycles N] [--seconds S] [--orphan] [--fork N]
 */
#include "../threads.h"
#include "islet.h"
#include "objects.h"
#include "islet_object.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INTERPS 64
#define SLOTS 4096
#define LEAK 10
#define QUEUE 512
#define ORPHANED UINT32_MAX /* tag_t.cycle of a block its interpreter left behind */

typedef struct {
  uint32_t worker, cycle; /* who allocated it, and in which interpreter life */
  uint64_t serial;
} tag_t;

typedef struct {
  pthread_mutex_t lock;
  void *ring[QUEUE];
  size_t head, tail;
} queue_t;

typedef struct {
  pthread_t tid;
  unsigned id;
  queue_t inbox;
  _Atomic long outstanding; /* blocks of the current interpreter held by others */
  islet_interp_t *in;
  unsigned seed;
  long sent, created, ops, orphans_sent;
} worker_t;

static worker_t workers[MAX_INTERPS];
static int ninterps = 4, ncycles = 3, nforks;
static long nops = 200000;
static double seconds;
static bool orphan;
static islet_runtime_t *rt;
static _Atomic int done, failures;
static atomic_bool forking; /* the workers go on while the main thread forks */
static _Atomic long events, remote_taken, remote_sent;

static void fail(const char *what, unsigned w) {
  fprintf(stderr, "stress_heap: worker %u: %s\n", w, what);
  atomic_fetch_add(&failures, 1);
}

static void on_event(void *ctx, const islet_event_t *ev) {
  (void)ctx;
  fprintf(stderr, "stress_heap: unexpected islet event: %s %p\n", islet_strerror(ev->error),
          ev->ptr);
  atomic_fetch_add(&events, 1);
}

static size_t pick_size(unsigned *seed) {
  unsigned r = (unsigned)rand_r(seed);
  if (r % 200 == 0) return ISLET_SMALL_MAX + 1 + r % 200000;  /* large */
  if (r % 8 == 0) return sizeof(tag_t) + r % ISLET_SMALL_MAX; /* every class */
  return sizeof(tag_t) + r % 500;
}

static void *alloc_tagged(worker_t *w, unsigned cycle, uint64_t serial) {
  size_t n = pick_size(&w->seed);
  tag_t *t = islet_malloc(w->in, n);
  if (!t) {
    fail("allocation failed", w->id);
    return NULL;
  }
  *t = (tag_t){w->id, cycle, serial};
  size_t body = islet_usable_size(t) - sizeof *t;
  memset(t + 1, (int)(serial & 0xff), body > 64 ? 64 : body);
  return t;
}

static void check_tag(const tag_t *t, unsigned w) {
  const unsigned char *b = (const unsigned char *)(t + 1);
  size_t n = islet_usable_size(t) - sizeof *t;
  for (size_t i = 0; i < n && i < 64; i++)
    if (b[i] != (t->serial & 0xff)) {
      fail("block contents changed before its free", w);
      return;
    }
}

static int send(worker_t *to, void *p) {
  pthread_mutex_lock(&to->inbox.lock);
  int ok = to->inbox.tail - to->inbox.head < QUEUE;
  if (ok) to->inbox.ring[to->inbox.tail++ % QUEUE] = p;
  pthread_mutex_unlock(&to->inbox.lock);
  return ok;
}

/* Frees what others sent, from this thread's interpreter: cross frees. */
static void drain(worker_t *w) {
  for (;;) {
    pthread_mutex_lock(&w->inbox.lock);
    void *p = w->inbox.head < w->inbox.tail ? w->inbox.ring[w->inbox.head++ % QUEUE] : NULL;
    pthread_mutex_unlock(&w->inbox.lock);
    if (!p) return;
    tag_t *t = p;
    check_tag(t, w->id);
    worker_t *owner = t->cycle == ORPHANED ? NULL : &workers[t->worker];
    islet_free(w->in, p);
    if (owner) atomic_fetch_sub(&owner->outstanding, 1);
  }
}

static void run_cycle(worker_t *w, unsigned cycle, void **slot) {
  uint64_t serial = 0;
  void *ring[RING] = {0};
  islet_interp_enter(w->in);
  for (long i = 0; i < nops; i++) {
    objects_step(w->in, i, ring);
    size_t k = (size_t)rand_r(&w->seed) % SLOTS;
    if (slot[k]) {
      check_tag(slot[k], w->id);
      islet_free(w->in, slot[k]);
    }
    slot[k] = alloc_tagged(w, cycle, ++serial);
    if (slot[k] && i % 8 == 0 && ninterps > 1) {
      worker_t *to = &workers[(w->id + 1 + (unsigned)rand_r(&w->seed) % (unsigned)(ninterps - 1)) %
                              (unsigned)ninterps];
      atomic_fetch_add(&w->outstanding, 1);
      if (send(to, slot[k])) {
        slot[k] = NULL;
        w->sent++;
      } else {
        atomic_fetch_sub(&w->outstanding, 1);
      }
    }
    if (i % 64 == 0) drain(w);
  }
  objects_end_cycle(w->in, ring);
  w->ops += nops;
}

static void count_cross(islet_interp_t *in) {
  islet_stats_t s;
  islet_interp_stats(in, &s);
  atomic_fetch_add(&remote_taken, (long)s.remote_processed);
  atomic_fetch_add(&remote_sent, (long)s.remote_sent);
}

/* The blocks an orphan left: another thread frees each, or this one
 * when their inboxes are full. */
static void send_orphans(worker_t *w, void **left, size_t n) {
  for (size_t i = 0; i < n; i++) {
    ((tag_t *)left[i])->cycle = ORPHANED;
    worker_t *to = &workers[(w->id + 1 + i) % (unsigned)ninterps];
    if (to == w || !send(to, left[i])) islet_free_any(left[i]);
    w->orphans_sent += to != w;
  }
}

static void end_cycle(worker_t *w, void **slot) {
  size_t leaked = 0;
  void *left[LEAK];
  for (size_t k = 0; k < SLOTS; k++) {
    if (!slot[k]) continue;
    if (leaked < LEAK)
      left[leaked++] = slot[k]; /* left live on purpose */
    else
      islet_free(w->in, slot[k]);
    slot[k] = NULL;
  }
  while (atomic_load(&w->outstanding) > 0) { /* others still hold our blocks */
    drain(w);
    sched_yield();
  }
  drain(w);
  islet_interp_collect(w->in);
  islet_stats_t s;
  islet_interp_stats(w->in, &s);
  if ((orphan ? s.blocks < leaked + OBJECTS_LIVE : s.blocks != leaked + OBJECTS_LIVE) ||
      s.remote_pending)
    fail("stats do not balance before teardown", w->id);
  count_cross(w->in);
  islet_leak_report_t r;
  islet_interp_destroy(w->in, &r);
  if (orphan ? r.blocks < leaked || !r.orphaned : r.blocks != leaked)
    fail("leak report differs from the blocks left on purpose", w->id);
  if (orphan) send_orphans(w, left, leaked);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool more_cycles(unsigned c, double t0) {
  if (atomic_load(&forking)) return true;
  return seconds ? now() - t0 < seconds : c < (unsigned)ncycles;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  void **slot = calloc(SLOTS, sizeof *slot);
  double t0 = now();
  for (unsigned c = 0; more_cycles(c, t0); c++) {
    if (c) w->in = islet_interp_new(rt); /* the first was made before the threads */
    w->created++;
    run_cycle(w, c, slot);
    end_cycle(w, slot);
    /* blocks sent before this point were freed: a new interpreter starts */
  }
  w->in = islet_interp_new(rt); /* to free what still arrives */
  atomic_fetch_add(&done, 1);
  while (atomic_load(&done) < ninterps) {
    drain(w);
    sched_yield();
  }
  drain(w);
  count_cross(w->in);
  free(slot);
  return NULL;
}

/* A child's life, by exit status: 0 when it allocated, destroyed a heap and
 * flushed with no thread started; 1 when islet started one (or /proc cannot
 * tell); 2 when an allocation failed; killed by SIGALRM when it hung.  No
 * stdio here. */
enum { CHILD_THREADED = 1, CHILD_NOMEM = 2 };
static void child_life(void) {
  alarm(60);
  int threads = count_threads();
  size_t size = (size_t)1 << 20;
  islet_interp_t *in = islet_interp_new(rt);
  char *big = in ? islet_malloc(in, size) : NULL;
  if (!big) _exit(CHILD_NOMEM);
  memset(big, 1, size);
  for (int k = 0; k < 100; k++) islet_free(in, islet_malloc(in, k % 2 ? 64 : 300000));
  islet_interp_destroy(in, NULL);
  islet_runtime_flush(rt);
  _exit(threads < 0 || count_threads() != threads ? CHILD_THREADED : 0);
}

static void fork_children(void) {
  int hung = 0, threaded = 0, failed = 0;
  for (int i = 0; i < nforks; i++) {
    pid_t pid = fork();
    if (pid == 0) child_life();
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
      failed++;
    else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
      hung++;
    else if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_THREADED)
      threaded++;
    else if (!WIFEXITED(st) || WEXITSTATUS(st))
      failed++;
  }
  if (hung || threaded || failed) {
    fprintf(stderr, "stress_heap: of %d children %d hung, %d started a thread, %d failed\n", nforks,
            hung, threaded, failed);
    failures++;
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--interps"))
      ninterps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--ops"))
      nops = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--cycles"))
      ncycles = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds"))
      seconds = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--fork"))
      nforks = atoi(argv[i + 1]);
  }
  for (int i = 1; i < argc; i++) orphan |= !strcmp(argv[i], "--orphan");
  if (ninterps < 1 || ninterps > MAX_INTERPS) {
    fprintf(stderr, "stress_heap: --interps must be 1..%d\n", MAX_INTERPS);
    return 2;
  }
  rt = islet_runtime_new(&(islet_config_t){
      .on_event = on_event, .teardown = orphan ? ISLET_TEARDOWN_ORPHAN : ISLET_TEARDOWN_RELEASE});
  objects_setup(rt);
  double t0 = now();
  for (int i = 0; i < ninterps; i++) {
    workers[i].id = (unsigned)i;
    workers[i].seed = 77u + (unsigned)i;
    workers[i].in = islet_interp_new(rt);
    pthread_mutex_init(&workers[i].inbox.lock, NULL);
  }
  atomic_store(&forking, nforks > 0);
  for (int i = 0; i < ninterps; i++) pthread_create(&workers[i].tid, NULL, worker, &workers[i]);
  fork_children();
  atomic_store(&forking, false);
  long ops = 0, created = 0, sent = 0, orphans_sent = 0;
  for (int i = 0; i < ninterps; i++) {
    pthread_join(workers[i].tid, NULL);
    ops += workers[i].ops;
    created += workers[i].created + 1;
    sent += workers[i].sent;
    orphans_sent += workers[i].orphans_sent;
  }
  failures += objects_failures();
  islet_runtime_destroy(rt); /* ends the last interpreters */
  /* an orphan's block freed by another thread is a cross free its owner
   * never takes back (orphan.c), or a local free of the heap that took it
   * over */
  bool balanced = orphan ? remote_sent >= sent && remote_sent <= sent + orphans_sent &&
                               remote_taken <= remote_sent
                         : remote_sent == remote_taken && remote_sent == sent;
  if (!balanced) {
    fprintf(stderr, "stress_heap: %ld cross frees sent, %ld counted, %ld taken back\n", sent,
            (long)remote_sent, (long)remote_taken);
    failures++;
  }
  printf("stress_heap: %d threads, %ld operations, %ld interpreters created and destroyed, %ld "
         "cross-interpreter frees, %.1f s, %ld islet events, %d failures\n",
         ninterps, ops, created, sent, now() - t0, (long)events, (int)failures);
  return failures || events ? 1 : 0;
}

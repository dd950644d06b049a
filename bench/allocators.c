/* The allocators islet-bench compares, each behind the same small vtable.
 *
 * Why thin forwarders: a workload calls vt->malloc(heap, n), and each entry
 * here is one tail call into the allocator, so every allocator pays the
 * same indirect call and nothing else.
 *
 *   islet       one interpreter per heap, all on one runtime
 *   glibc       malloc/free as libc.so.6 itself defines them, looked up in
 *               libc alone: jemalloc is the process malloc here (linked in),
 *               and libmimalloc exports __libc_malloc/__libc_free too
 *   jemalloc    the process malloc; allocators_init checks that it is
 *   mimalloc    one mi_heap_t per heap (per thread), freed with mi_free
 *   pymalloc    CPython 3.11's PyObject_Malloc/PyObject_Free, pymalloc
 *               whatever the environment says; one thread only, since it
 *               relies on the GIL
 *   islet+lock  one interpreter shared by threads behind a mutex, the way a
 *               single GIL shares one heap between threads
 *   lists       not an allocator: per-heap LIFO lists of 16-byte size
 *               classes in a private region, with no checks and no stats.
 *               Churn on it is churn's memory traffic with next to nothing
 *               of an allocator in it, so its 2-thread scaling is what the
 *               machine allows in (3).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "bench.h"
#include "islet.h"
#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* jemalloc's control interface; the rest of jemalloc is reached as malloc. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

static islet_runtime_t *rt;
/* glibc's own malloc and free, from libc.so.6 (allocators_init). */
static void *(*libc_malloc)(size_t size);
static void (*libc_free)(void *p);

/* --- islet ------------------------------------------------------------- */

static void *islet_setup(void) {
  islet_interp_t *in = islet_interp_new(rt);
  if (!in) die("islet_interp_new: %s", islet_strerror(islet_last_error()));
  return in;
}
static void islet_teardown(void *h) {
  islet_interp_destroy(h, NULL);
}
static void *islet_m(void *h, size_t n) {
  return islet_malloc(h, n);
}
static void islet_f(void *h, void *p) {
  islet_free(h, p);
}
static void islet_collect(void *h) {
  islet_interp_collect(h);
}
static void islet_quiesce(void) {
  islet_runtime_flush(rt);
}

const alloc_vt_t vt_islet = {.name = "islet",
                             .setup = islet_setup,
                             .teardown = islet_teardown,
                             .malloc = islet_m,
                             .free = islet_f,
                             .collect = islet_collect,
                             .quiesce = islet_quiesce,
                             .thread_safe = true,
                             .teardown_frees = true};

/* --- islet behind one lock --------------------------------------------- */

typedef struct {
  pthread_mutex_t lock;
  islet_interp_t *in;
} locked_t;

static void *locked_setup(void) {
  locked_t *l = xmalloc(sizeof *l);
  pthread_mutex_init(&l->lock, NULL);
  l->in = islet_setup();
  return l;
}
static void locked_teardown(void *h) {
  locked_t *l = h;
  islet_interp_destroy(l->in, NULL);
  pthread_mutex_destroy(&l->lock);
  free(l);
}
static void *locked_m(void *h, size_t n) {
  locked_t *l = h;
  pthread_mutex_lock(&l->lock);
  void *p = islet_malloc(l->in, n);
  pthread_mutex_unlock(&l->lock);
  return p;
}
static void locked_f(void *h, void *p) {
  locked_t *l = h;
  pthread_mutex_lock(&l->lock);
  islet_free(l->in, p);
  pthread_mutex_unlock(&l->lock);
}

const alloc_vt_t vt_islet_locked = {.name = "islet+lock",
                                    .setup = locked_setup,
                                    .teardown = locked_teardown,
                                    .malloc = locked_m,
                                    .free = locked_f,
                                    .quiesce = islet_quiesce,
                                    .thread_safe = true,
                                    .teardown_frees = true};

/* --- process-wide mallocs ---------------------------------------------- */

static void *no_setup(void) {
  return NULL;
}
static void no_teardown(void *h) {
  (void)h;
}
static void *glibc_m(void *h, size_t n) {
  (void)h;
  return libc_malloc(n);
}
static void glibc_f(void *h, void *p) {
  (void)h;
  libc_free(p);
}
static void *je_m(void *h, size_t n) {
  (void)h;
  return malloc(n);
}
static void je_f(void *h, void *p) {
  (void)h;
  free(p);
}

const alloc_vt_t vt_glibc = {.name = "glibc",
                             .setup = no_setup,
                             .teardown = no_teardown,
                             .malloc = glibc_m,
                             .free = glibc_f,
                             .thread_safe = true};
const alloc_vt_t vt_jemalloc = {.name = "jemalloc",
                                .setup = no_setup,
                                .teardown = no_teardown,
                                .malloc = je_m,
                                .free = je_f,
                                .thread_safe = true};

/* --- mimalloc: one heap per thread ------------------------------------- */

static void *mih_setup(void) {
  mi_heap_t *h = mi_heap_new();
  if (!h) die("mi_heap_new failed");
  return h;
}
static void mih_teardown(void *h) {
  mi_heap_destroy(h);
}
static void *mih_m(void *h, size_t n) {
  return mi_heap_malloc(h, n);
}
static void mih_f(void *h, void *p) {
  (void)h;
  mi_free(p);
}
static void mih_collect(void *h) {
  mi_heap_collect(h, false);
}

/* --- lists: the machine's ceiling for (3) ------------------------------ */

#define LIST_CLASSES 33             /* 16-byte classes up to 512 B, the mix's largest */
#define LIST_SPAN ((size_t)8 << 20) /* each class's part of the region */

typedef struct {
  char *base;
  char *top[LIST_CLASSES];
  void *free[LIST_CLASSES];
} lists_t;

static void *lists_setup(void) {
  lists_t *l = xcalloc(1, sizeof *l);
  l->base = mmap(NULL, LIST_CLASSES * LIST_SPAN, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (l->base == MAP_FAILED) die("lists: mmap failed");
  for (size_t c = 0; c < LIST_CLASSES; c++) l->top[c] = l->base + c * LIST_SPAN;
  return l;
}
static void lists_teardown(void *h) {
  lists_t *l = h;
  munmap(l->base, LIST_CLASSES * LIST_SPAN);
  free(l);
}
static void *lists_m(void *h, size_t n) {
  lists_t *l = h;
  size_t c = n ? (n + 15) >> 4 : 1;
  if (c >= LIST_CLASSES) return NULL;
  void *p = l->free[c];
  if (p) {
    l->free[c] = *(void **)p;
    return p;
  }
  if (l->top[c] + c * 16 > l->base + (c + 1) * LIST_SPAN) return NULL;
  p = l->top[c];
  l->top[c] += c * 16;
  return p;
}
static void lists_f(void *h, void *p) {
  lists_t *l = h;
  size_t c = (size_t)((char *)p - l->base) / LIST_SPAN;
  *(void **)p = l->free[c];
  l->free[c] = p;
}

const alloc_vt_t vt_lists = {.name = "lists",
                             .setup = lists_setup,
                             .teardown = lists_teardown,
                             .malloc = lists_m,
                             .free = lists_f,
                             .teardown_frees = true};

const alloc_vt_t vt_mimalloc = {.name = "mimalloc",
                                .setup = mih_setup,
                                .teardown = mih_teardown,
                                .malloc = mih_m,
                                .free = mih_f,
                                .collect = mih_collect,
                                .thread_safe = true,
                                .teardown_frees = true};

/* --- pymalloc ---------------------------------------------------------- */

/* pymalloc by name: PYTHONMALLOC or PYTHONDEVMODE would otherwise put
 * malloc or the debug hooks behind PyObject_Malloc, still in libpython. */
static void py_init(void) {
  PyPreConfig pre;
  PyPreConfig_InitIsolatedConfig(&pre);
  pre.allocator = PYMEM_ALLOCATOR_PYMALLOC;
  PyStatus st = Py_PreInitialize(&pre);
  if (PyStatus_Exception(st)) die("Py_PreInitialize: %s", st.err_msg ? st.err_msg : "failed");
  Py_InitializeEx(0); /* this thread now holds the GIL */
}

static void *py_setup(void) {
  if (!Py_IsInitialized()) py_init();
  return NULL;
}
static void *py_m(void *h, size_t n) {
  (void)h;
  return PyObject_Malloc(n);
}
static void py_f(void *h, void *p) {
  (void)h;
  PyObject_Free(p);
}

const alloc_vt_t vt_pymalloc = {
    .name = "pymalloc", .setup = py_setup, .teardown = no_teardown, .malloc = py_m, .free = py_f};

/* --- runtime ------------------------------------------------------------ */

/* Linking order decides whose malloc the process gets (mimalloc's shared
 * library exports one too): make sure the jemalloc column is jemalloc. */
static void check_jemalloc(void) {
  uint64_t before = 0, after = 0;
  size_t sz = sizeof before;
  if (mallctl("thread.allocated", &before, &sz, NULL, 0))
    die("jemalloc's mallctl(\"thread.allocated\") failed");
  void *volatile p = malloc(4096);
  mallctl("thread.allocated", &after, &sz, NULL, 0);
  free(p);
  if (after - before < 4096) die("malloc is not jemalloc's: check the link order");
}

/* A handle on libc.so.6 searches libc (then the loader) only, so these are
 * glibc's definitions whatever the libraries before it export. */
static void find_glibc(void) {
  void *libc = dlopen(LIBC_SO, RTLD_NOLOAD | RTLD_LAZY);
  if (!libc) die("dlopen(%s): %s", LIBC_SO, dlerror());
  *(void **)&libc_malloc = dlsym(libc, "malloc");
  *(void **)&libc_free = dlsym(libc, "free");
  if (!libc_malloc || !libc_free) die("no malloc or free in %s", LIBC_SO);
}

/* Every function an anchor calls, and where it must be defined: the start
 * of its object's file name, or NULL for libpython or this executable. */
typedef struct {
  const char *anchor, *fn, *lib;
  void *addr;
} anchor_fn_t;

/* The file name, without its directory, of the object that defines addr. */
static const char *object_of(const void *addr, void **base) {
  Dl_info info;
  if (!dladdr(addr, &info) || !info.dli_fname) return NULL;
  *base = info.dli_fbase;
  const char *slash = strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}

static bool defined_in(const anchor_fn_t *a, const char *name, void *base) {
  if (a->lib) return !strncmp(name, a->lib, strlen(a->lib));
  void *exe = NULL;
  return !strncmp(name, "libpython", 9) || (object_of((void *)die, &exe) && base == exe);
}

/* Symbol interposition decides which allocator an anchor really runs (the
 * glibc column once ran mimalloc, through its __libc_malloc): check them all. */
static void check_anchors(void) {
  const anchor_fn_t fns[] = {
      {"glibc", "malloc", LIBC_SO, (void *)libc_malloc},
      {"glibc", "free", LIBC_SO, (void *)libc_free},
      {"jemalloc", "malloc", "libjemalloc", (void *)malloc},
      {"jemalloc", "free", "libjemalloc", (void *)free},
      {"jemalloc", "mallctl", "libjemalloc", (void *)mallctl},
      {"mimalloc", "mi_heap_new", "libmimalloc", (void *)mi_heap_new},
      {"mimalloc", "mi_heap_destroy", "libmimalloc", (void *)mi_heap_destroy},
      {"mimalloc", "mi_heap_malloc", "libmimalloc", (void *)mi_heap_malloc},
      {"mimalloc", "mi_heap_collect", "libmimalloc", (void *)mi_heap_collect},
      {"mimalloc", "mi_free", "libmimalloc", (void *)mi_free},
      {"pymalloc", "PyObject_Malloc", NULL, (void *)PyObject_Malloc},
      {"pymalloc", "PyObject_Free", NULL, (void *)PyObject_Free},
  };
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    const anchor_fn_t *a = &fns[i];
    void *base = NULL;
    const char *name = object_of(a->addr, &base);
    if (!name) die("the %s anchor's %s is in no loaded object", a->anchor, a->fn);
    if (!defined_in(a, name, base))
      die("the %s anchor's %s is defined in %s, not in %s: that column would not measure %s",
          a->anchor, a->fn, name, a->lib ? a->lib : "libpython or islet-bench", a->anchor);
  }
}

void allocators_init(void) {
  find_glibc();
  check_anchors();
  check_jemalloc();
  rt = islet_runtime_new(NULL);
  if (!rt) die("islet_runtime_new failed");
}

void allocators_after_fork(void) {
  rt = islet_runtime_new(NULL); /* the parent's may be mid-use by a thread the child lacks */
  if (!rt) die("islet_runtime_new failed");
}

void allocators_fini(void) {
  islet_runtime_destroy(rt);
  rt = NULL;
}

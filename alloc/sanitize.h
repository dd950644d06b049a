/* Annotations that let ASan, Valgrind and TSan see islet blocks.
 *
 * Why: islet carves blocks out of memory the tools regard as one big mapping,
 * so without these a use-after-free or an overflow of an islet block, or a
 * leak, would go unseen.  ASan poisoning is compiled in under ASan; Valgrind
 * client requests are compiled in when memcheck.h exists and cost one
 * predictable branch when not running under Valgrind.  TSan cannot see the
 * synchronisation inside the backend (jemalloc is not instrumented), so
 * memory handed back to it and handed out again is ordered by hand.
 */
#ifndef ISLET_SANITIZE_H
#define ISLET_SANITIZE_H

#include <stddef.h>
#include <stdbool.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif

/* What the caller asked for of the n bytes of a live block at p, as ASan's
 * and memcheck's malloc_usable_size answer: the bytes before the first one
 * the tool sees as inaccessible.  islet hides a live block only past the
 * requested size, so those bytes are a suffix and a binary search finds
 * the first one in O(log n) probes (a scan of a 100 KB block cost the
 * fuzzer a tenth of its time in realloc). */
static inline size_t requested_size(const void *p, size_t n, bool (*hidden)(const char *)) {
  const char *c = p;
  size_t lo = 0, hi = n; /* [0, lo) accessible, [hi, n) not */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (hidden(c + mid))
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define san_backend_acquire(tok) __tsan_acquire(tok)
#define san_backend_release(tok) __tsan_release(tok)
#else
#define san_backend_acquire(tok) ((void)(tok))
#define san_backend_release(tok) ((void)(tok))
#endif

#ifdef ISLET_HAVE_VALGRIND
#include <valgrind/memcheck.h>
extern bool islet_vg; /* running under Valgrind, set once at runtime creation */
#define vg_on() __builtin_expect(islet_vg, 0)
#define vg_alloc(p, n, zeroed)                                                                     \
  do {                                                                                             \
    if (vg_on()) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, (zeroed));                                 \
  } while (0)
#define vg_free(p)                                                                                 \
  do {                                                                                             \
    if (vg_on()) VALGRIND_FREELIKE_BLOCK((p), 0);                                                  \
  } while (0)
#define vg_noaccess(p, n)                                                                          \
  do {                                                                                             \
    if (vg_on()) VALGRIND_MAKE_MEM_NOACCESS((p), (n));                                             \
  } while (0)
#define vg_defined(p, n)                                                                           \
  do {                                                                                             \
    if (vg_on()) VALGRIND_MAKE_MEM_DEFINED((p), (n));                                              \
  } while (0)
#define vg_resize(p, old, n)                                                                       \
  do {                                                                                             \
    if (vg_on()) VALGRIND_RESIZEINPLACE_BLOCK((p), (old), (n), 0);                                 \
  } while (0)
#define vg_detect() (RUNNING_ON_VALGRIND != 0)
static inline bool vg_hidden(const char *c) {
  char vbits;
  return VALGRIND_GET_VBITS(c, &vbits, 1) == 3; /* 3: not addressable; nothing reported */
}
#define vg_usable(p, n) (vg_on() ? requested_size((p), (n), vg_hidden) : (n))
#else
#define vg_on() 0
#define vg_alloc(p, n, zeroed) ((void)0)
#define vg_free(p) ((void)0)
#define vg_noaccess(p, n) ((void)0)
#define vg_defined(p, n) ((void)0)
#define vg_resize(p, old, n) ((void)(p), (void)(old), (void)(n))
#define vg_detect() 0
#define vg_usable(p, n) ((void)(p), (n))
#endif

#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define ISLET_ASAN 1
#define san_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define san_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
static inline bool asan_hidden(const char *c) {
  return __asan_address_is_poisoned(c);
}
#define san_usable(p, n) requested_size((p), (n), asan_hidden)
#else
#define ISLET_ASAN 0
#define san_poison(p, n) ((void)(p), (void)(n))
#define san_unpoison(p, n) ((void)(p), (void)(n))
#define san_usable(p, n) vg_usable((p), (n)) /* Valgrind is never on under ASan */
#endif

/* Bytes added after each small block so that an overflow lands in poisoned
 * memory rather than in the next block. */
#define ISLET_SAN_REDZONE 16

#endif

/* Owner lookup: every interpreter's blocks, foreign memory, interior
 * pointers, destroyed interpreters. */
#include "common.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(owner, .init = setup_default, .fini = teardown_runtime);

Test(owner, names_the_owner_of_every_interpreters_blocks) {
  islet_interp_t *in[8];
  void *small[8], *large[8];
  for (int i = 0; i < 8; i++) {
    in[i] = islet_interp_new(rt);
    small[i] = islet_malloc(in[i], 40);
    large[i] = islet_malloc(in[i], 100000);
  }
  for (int i = 0; i < 8; i++) {
    cr_assert_eq(islet_owner(small[i]), in[i]);
    cr_assert_eq(islet_owner(large[i]), in[i]);
    cr_assert_eq(islet_interp_id(in[i]), (unsigned)i + 1);
  }
}

Test(owner, foreign_memory_has_no_owner) {
  int on_stack = 0;
  static int in_data;
  void *heap = malloc(64);
  void *map = mmap(NULL, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert_null(islet_owner(&on_stack));
  cr_assert_null(islet_owner(&in_data));
  cr_assert_null(islet_owner(heap));
  cr_assert_null(islet_owner(map));
  cr_assert_null(islet_owner(NULL));
  cr_assert_null(islet_owner((void *)~(uintptr_t)0));
  cr_assert_eq(islet_usable_size(heap), 0);
  free(heap);
  munmap(map, 1 << 22);
}

Test(owner, interior_pointers_have_no_owner) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 100);
  char *big = islet_malloc(in, 1 << 20);
  cr_assert_null(islet_owner(p + 1));
  cr_assert_null(islet_owner(p + 16));
  cr_assert_null(islet_owner(big + 8));
  cr_assert_null(islet_owner(big - 8)); /* the large block's header */
  cr_assert_eq(islet_usable_size(p + 16), 0);
  islet_free(in, p);
  islet_free(in, big);
}

Test(owner, freed_blocks_have_no_usable_size) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 100);
  cr_assert_geq(islet_usable_size(p), 100);
  islet_free(in, p);
  cr_assert_eq(islet_usable_size(p), 0);
}

Test(owner, destroyed_interpreters_own_nothing) {
  islet_interp_t *in = islet_interp_new(rt);
  void *p = islet_malloc(in, 100), *big = islet_malloc(in, 1 << 20);
  islet_interp_destroy(in, NULL);
  cr_assert_null(islet_owner(p));
  cr_assert_null(islet_owner(big));
  cr_assert_eq(islet_usable_size(p), 0);
}

Test(owner, try_free_frees_what_islet_holds_and_hands_back_the_rest) {
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  char *p = islet_malloc(in, 100), *q = islet_malloc(in, 100), *big = islet_malloc(in, 1 << 20);
  void *heap = malloc(64);
  cr_assert_eq(islet_try_free(in, heap), 0);
  cr_assert_eq(islet_try_free(in, NULL), 0);
  expect_no_event();
  free(heap); /* untouched: still the C library's */
  cr_assert_eq(islet_try_free(in, p), 1);
  cr_assert_eq(islet_try_free(other, q), 1); /* a cross-interpreter free */
  cr_assert_eq(islet_try_free(in, big), 1);
  expect_no_event();
  islet_interp_collect(in); /* q came back from other */
  cr_assert_eq(live_blocks(in), 0);
  cr_assert_eq(islet_try_free(in, p), 1, "islet's memory, so islet reports it");
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(in));
  char *r = islet_malloc(in, 100);
  cr_assert_eq(islet_try_free(in, r + 16), 1);
  expect_one_event(ISLET_EINTERIOR, r + 16, islet_interp_id(in));
  unsigned id = islet_interp_id(in);
  islet_interp_destroy(in, NULL);
  cr_assert_eq(islet_try_free(other, r), 1);
  expect_one_event(ISLET_EDESTROYED, r, id);
}

/* islet_free_or is islet_try_free with the wrapped allocator's free as its
 * last step: only memory islet does not hold reaches it, with its ctx. */
static int handed;
static void *handed_ctx, *handed_p;
static void other_free(void *ctx, void *p) {
  handed++;
  handed_ctx = ctx;
  handed_p = p;
}

Test(owner, free_or_hands_only_foreign_memory_to_the_other_free) {
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  char *p = islet_malloc(in, 100), *q = islet_malloc(in, 100), *big = islet_malloc(in, 1 << 20);
  void *heap = malloc(64);
  int ctx;
  islet_free_or(in, heap, other_free, &ctx);
  cr_assert(handed == 1 && handed_ctx == &ctx && handed_p == heap);
  free(heap);
  islet_free_or(in, p, other_free, &ctx);
  islet_free_or(other, q, other_free, &ctx); /* a cross-interpreter free */
  islet_free_or(in, big, other_free, &ctx);
  cr_assert_eq(handed, 1);
  expect_no_event();
  islet_interp_collect(in);
  cr_assert_eq(live_blocks(in), 0);
  islet_free_or(in, p, other_free, &ctx); /* islet's memory: reported, not handed on */
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(in));
  cr_assert_eq(handed, 1);
}

/* islet_realloc_or: islet_realloc for islet's memory, the wrapped
 * allocator's realloc (with its ctx) for the rest, from one lookup. */
static void *other_realloc(void *ctx, void *p, size_t size) {
  handed++;
  handed_ctx = ctx;
  handed_p = p;
  return realloc(p, size);
}

Test(owner, realloc_or_hands_only_foreign_memory_to_the_other_realloc) {
  islet_interp_t *in = islet_interp_new(rt);
  int ctx;
  char *heap = malloc(16);
  strcpy(heap, "foreign");
  char *moved = islet_realloc_or(in, heap, 4096, other_realloc, &ctx);
  cr_assert(handed == 1 && handed_ctx == &ctx && handed_p == heap);
  cr_assert_str_eq(moved, "foreign");
  cr_assert_not(islet_contains(moved), "the wrapped allocator's memory stays its own");
  free(moved);
  char *p = islet_realloc_or(in, NULL, 100, other_realloc, &ctx);
  strcpy(p, "islet");
  char *q = islet_realloc_or(in, p, 3000, other_realloc, &ctx);
  cr_assert_eq(islet_owner(q), in);
  cr_assert_str_eq(q, "islet");
  cr_assert_eq(handed, 1);
  expect_no_event();
  cr_assert_null(islet_realloc_or(in, p, 200, other_realloc, &ctx), "p was freed by the move");
  expect_one_event(ISLET_EDOUBLE_FREE, p, islet_interp_id(in));
  cr_assert_eq(handed, 1);
  islet_free(in, q);
  cr_assert_eq(live_blocks(in), 0);
}

/* Past a large block's end its last granule may hold anyone's memory: not
 * islet's while the block lives, nor under the tombstone it leaves when it
 * is freed or its interpreter is destroyed. */
static void past_the_end_is_foreign(islet_interp_t *in, char *big) {
  char *past = big + ((size_t)2 << 20); /* same 4 MiB granule, past the region */
  cr_assert(islet_contains(big + 99999));
  cr_assert_not(islet_contains(past));
  cr_assert_eq(islet_try_free(in, past), 0);
  expect_no_event();
  islet_free(in, past);
  expect_one_event(ISLET_EFOREIGN, past, 0);
}

Test(owner, the_granule_past_a_large_blocks_end_is_not_islets) {
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  char *big = islet_malloc(in, 100000), *kept = islet_malloc(in, 100000);
  past_the_end_is_foreign(in, big);
  islet_free(in, big);
  past_the_end_is_foreign(other, big);
  islet_interp_destroy(in, NULL);
  islet_runtime_flush(rt);
  past_the_end_is_foreign(other, kept);
}

/* Where the owner map names islet, nobody else can map: a large block's
 * last granule past its end, and a destroyed interpreter's released range
 * (its tombstone stands).  Otherwise another allocator's memory there would
 * count as islet's, and a wrapper routing frees by islet_contains would keep
 * it. */
static int others_can_map(void *p) {
  void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);
  void *got = mmap(page, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (got != MAP_FAILED) munmap(got, 4096);
  return got == page;
}

Test(owner, nobody_else_maps_where_the_owner_map_names_islet) {
  islet_interp_t *in = islet_interp_new(rt);
  islet_interp_set_teardown(in, ISLET_TEARDOWN_RELEASE);
  char *p = islet_malloc(in, 100), *big = islet_malloc(in, 100000);
  cr_assert_not(others_can_map(big + ((size_t)2 << 20)), "the rest of a large block's granule");
  islet_interp_destroy(in, NULL);
  islet_runtime_flush(rt);
  cr_assert(islet_contains(p) && islet_contains(big));
  cr_assert_not(others_can_map(p), "a released segment");
  cr_assert_not(others_can_map(big), "a released large block");
  cr_assert_not(others_can_map(big + ((size_t)2 << 20)), "the rest of its granule");
}

Test(owner, free_with_no_interpreter_is_free_any) {
  islet_interp_t *in = islet_interp_new(rt);
  char *p = islet_malloc(in, 100), *big = islet_malloc(in, 1 << 20);
  memset(big, 0xff, 1 << 20); /* bytes that read as busy page descriptors */
  islet_free(NULL, big + 65536);
  expect_one_event(ISLET_EINTERIOR, big + 65536, islet_interp_id(in));
  islet_free(NULL, p);
  islet_free(NULL, big);
  expect_no_event();
  islet_interp_collect(in); /* p came back as a cross free */
  cr_assert_eq(live_blocks(in), 0);
  cr_assert_eq(islet_usable_size(big), 0);
}

/* The fast map has ids for 32,766 heaps at once (alloc/fastmap.c).  Heaps
 * past them free by the classified path: a free of another such heap's
 * block is a cross free, taken back by its owner, and each one's own frees
 * stay its own. */
Test(owner, heaps_past_the_fast_maps_ids_free_as_others_do) {
  enum { N = 32768 };
  static islet_interp_t *in[N];
  for (int i = 0; i < N; i++) cr_assert_not_null(in[i] = islet_interp_new(rt));
  islet_interp_t *x = in[N - 2], *y = in[N - 1];
  void *mine = islet_malloc(x, 64), *p = islet_malloc(y, 64);
  islet_free(x, p);
  cr_assert_eq(live_blocks(x), 1, "x's books are its own");
  cr_assert_eq(live_blocks(y), 1, "y's block is on its way back");
  cr_assert_eq(islet_usable_size(p), 0);
  islet_interp_collect(y);
  cr_assert_eq(live_blocks(y), 0);
  islet_free(x, mine);
  cr_assert_eq(live_blocks(x), 0);
  void *again = islet_malloc(in[0], 64);
  islet_free(y, again);
  cr_assert_eq(live_blocks(in[0]), 1, "a heap with an id gets its block back too");
  islet_interp_collect(in[0]);
  cr_assert_eq(live_blocks(in[0]), 0);
  expect_no_event();
  for (int i = 0; i < N; i++) islet_interp_destroy(in[i], NULL);
}

/* With no room for the fast map (alloc/fastmap.c: 128 MiB of address
 * space) under RLIMIT_AS, every free asks the owner map, and frees stay
 * exact: own and cross-interpreter frees, a double free reported once.  In
 * a child that sets the limit before islet reserves anything (this suite
 * makes no runtime first); its exit status says what went wrong. */
static int frees_without_the_fast_map(void) {
  struct rlimit lim = {statm_bytes(0) + ((size_t)96 << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &lim)) return 1;
  void *t =
      mmap(NULL, (size_t)128 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (t != MAP_FAILED) return 1; /* the table would fit */
  setup_default();
  islet_interp_t *in = islet_interp_new(rt), *other = islet_interp_new(rt);
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++)
    if (!(p[i] = islet_malloc(in, 16 + (size_t)i % 500))) return 2;
  for (int i = 0; i < N; i += 2) islet_free(in, p[i]);
  for (int i = 1; i < N; i += 2) islet_free(other, p[i]);
  if (nevents) return 3;
  islet_free(in, p[0]);
  if (nevents != 1 || events[0].error != ISLET_EDOUBLE_FREE || events[0].ptr != p[0]) return 4;
  islet_interp_collect(in);
  if (live_blocks(in) != 0) return 5;
  for (int i = 0; i < N; i++) /* and allocation goes on */
    if (!(p[i] = islet_malloc(in, 16 + (size_t)i % 500))) return 2;
  return live_blocks(in) == N ? 0 : 5;
}

Test(fastmap, frees_are_exact_without_room_for_it) {
  if (UNDER_ASAN) cr_skip_test("ASan's shadow does not fit under RLIMIT_AS");
  pid_t pid = fork();
  if (pid == 0) _exit(frees_without_the_fast_map());
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st), "the child crashed: signal %d", WTERMSIG(st));
  cr_assert_eq(WEXITSTATUS(st), 0, "the child's step %d failed (1: no such limit)",
               WEXITSTATUS(st));
}

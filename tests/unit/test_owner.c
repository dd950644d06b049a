/* Owner lookup: every interpreter's blocks, foreign memory, interior
 * pointers, destroyed interpreters. */
#include "common.h"
#include <stdlib.h>
#include <sys/mman.h>

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
  int on_stack;
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

/* A small object model and the CPython singleton preset.
 *
 * Why: islet's tests and benchmarks need objects shaped like CPython's
 * (refcount, type, payload) and the singleton set CPython keeps: small ints
 * -5..256 (_PY_NSMALLNEGINTS 5, _PY_NSMALLPOSINTS 257), the empty tuple,
 * bytes and str, the 256 one-byte bytes and latin-1 one-character strings,
 * None, True, False, Ellipsis and NotImplemented.
 */
#include "islet_singletons.h"
#include <string.h>

static void tuple_finalize(islet_object_t *ob) {
  islet_tuple_t *t = (islet_tuple_t *)ob;
  for (islet_ssize_t i = 0; i < t->size; i++)
    if (t->items[i]) islet_decref(t->items[i]);
}

const islet_type_t islet_int_type = {"int", NULL};
const islet_type_t islet_tuple_type = {"tuple", tuple_finalize};
const islet_type_t islet_bytes_type = {"bytes", NULL};
const islet_type_t islet_str_type = {"str", NULL};
const islet_type_t islet_none_type = {"NoneType", NULL};
const islet_type_t islet_bool_type = {"bool", NULL};
const islet_type_t islet_ellipsis_type = {"ellipsis", NULL};
const islet_type_t islet_notimplemented_type = {"NotImplementedType", NULL};

static islet_object_t *make(islet_runtime_t *rt, islet_interp_t *in, const islet_type_t *type,
                            size_t size) {
  return in ? islet_object_new(in, type, size) : islet_runtime_object_new(rt, type, size);
}

static islet_object_t *make_int(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  islet_int_t *o = (islet_int_t *)make(rt, in, &islet_int_type, sizeof *o);
  if (!o) return NULL;
  o->value = (long)(intptr_t)ctx;
  return &o->ob;
}

static islet_object_t *make_bool(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  islet_int_t *o = (islet_int_t *)make(rt, in, &islet_bool_type, sizeof *o);
  if (!o) return NULL;
  o->value = ctx != NULL;
  return &o->ob;
}

static const islet_type_t *const constant_types[] = {
    [ISLET_S_NONE] = &islet_none_type,
    [ISLET_S_ELLIPSIS] = &islet_ellipsis_type,
    [ISLET_S_NOTIMPLEMENTED] = &islet_notimplemented_type,
    [ISLET_S_EMPTY_TUPLE] = &islet_tuple_type,
};

static islet_object_t *make_constant(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  unsigned id = (unsigned)(uintptr_t)ctx;
  islet_tuple_t *o = (islet_tuple_t *)make(rt, in, constant_types[id], sizeof(islet_tuple_t));
  if (!o) return NULL;
  o->size = 0; /* the empty tuple; the others have no payload */
  return &o->ob;
}

/* ctx: -1 for the empty string, else the one character. */
static islet_object_t *make_chars(islet_runtime_t *rt, islet_interp_t *in, const islet_type_t *type,
                                  void *ctx) {
  long c = (long)(intptr_t)ctx;
  islet_bytes_t *o = (islet_bytes_t *)make(rt, in, type, sizeof(islet_bytes_t) + 2);
  if (!o) return NULL;
  o->size = c >= 0;
  o->data[0] = (unsigned char)(c >= 0 ? c : 0);
  o->data[1] = 0;
  return &o->ob;
}

static islet_object_t *make_bytes(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  return make_chars(rt, in, &islet_bytes_type, ctx);
}

static islet_object_t *make_str(islet_runtime_t *rt, islet_interp_t *in, void *ctx) {
  return make_chars(rt, in, &islet_str_type, ctx);
}

#define DEF(i, f, c) ((islet_singleton_def_t){(i), policy, (f), NULL, (void *)(intptr_t)(c)})

int islet_singletons_cpython(islet_runtime_t *rt, islet_singleton_policy_t policy) {
  islet_singleton_def_t defs[ISLET_S_CPYTHON_COUNT]; /* copied by the table */
  islet_singleton_def_t *d = defs;
  *d++ = DEF(ISLET_S_NONE, make_constant, ISLET_S_NONE);
  *d++ = DEF(ISLET_S_TRUE, make_bool, 1);
  *d++ = DEF(ISLET_S_FALSE, make_bool, 0);
  *d++ = DEF(ISLET_S_ELLIPSIS, make_constant, ISLET_S_ELLIPSIS);
  *d++ = DEF(ISLET_S_NOTIMPLEMENTED, make_constant, ISLET_S_NOTIMPLEMENTED);
  *d++ = DEF(ISLET_S_EMPTY_TUPLE, make_constant, ISLET_S_EMPTY_TUPLE);
  *d++ = DEF(ISLET_S_EMPTY_BYTES, make_bytes, -1);
  *d++ = DEF(ISLET_S_EMPTY_STR, make_str, -1);
  for (long v = ISLET_SMALL_INT_MIN; v <= ISLET_SMALL_INT_MAX; v++)
    *d++ = DEF(ISLET_S_SMALL_INT + 5 + v, make_int, v);
  for (int c = 0; c < 256; c++) *d++ = DEF(ISLET_S_BYTE_CHAR + c, make_bytes, c);
  for (int c = 0; c < 256; c++) *d++ = DEF(ISLET_S_LATIN1_CHAR + c, make_str, c);
  return islet_singletons_register(rt, defs, (size_t)(d - defs));
}

islet_int_t *islet_small_int(islet_interp_t *in, long v) {
  if (v < ISLET_SMALL_INT_MIN || v > ISLET_SMALL_INT_MAX) return NULL;
  return (islet_int_t *)islet_singleton(in, (unsigned)(ISLET_S_SMALL_INT + 5 + v));
}

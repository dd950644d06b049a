/* The CPython preset: caps from CPython 3.13/3.14
 * (Include/internal/pycore_freelist_state.h: PyTuple_MAXSAVESIZE 20,
 * Py_tuple_MAXFREELIST 2000, Py_floats 100, Py_lists 80, Py_dicts 80,
 * Py_dictkeys 80, Py_slices 1, Py_contexts 255, Py_async_gens 80,
 * Py_ints 100; MEMERRORS_SAVE 16 in pycore_exceptions.h), and block sizes of
 * the matching objects on 64-bit CPython (a 16-byte object header, 8 more
 * for a variable size, 8 per item or field). */
#include "islet_freelist.h"

#define TUPLE(n) [ISLET_FL_TUPLE1 + (n)-1] = {ISLET_FL_TUPLE1 + (n)-1, 24 + 8 * (n), 2000, "tuple"}

const islet_freelist_kind_t islet_freelist_cpython[ISLET_FL_CPYTHON_KINDS] = {
    TUPLE(1),
    TUPLE(2),
    TUPLE(3),
    TUPLE(4),
    TUPLE(5),
    TUPLE(6),
    TUPLE(7),
    TUPLE(8),
    TUPLE(9),
    TUPLE(10),
    TUPLE(11),
    TUPLE(12),
    TUPLE(13),
    TUPLE(14),
    TUPLE(15),
    TUPLE(16),
    TUPLE(17),
    TUPLE(18),
    TUPLE(19),
    TUPLE(20),
    [ISLET_FL_FLOAT] = {ISLET_FL_FLOAT, 24, 100, "float"},
    [ISLET_FL_LIST] = {ISLET_FL_LIST, 40, 80, "list"},
    [ISLET_FL_DICT] = {ISLET_FL_DICT, 48, 80, "dict"},
    [ISLET_FL_DICTKEYS] = {ISLET_FL_DICTKEYS, 160, 80, "dict keys"},
    [ISLET_FL_SLICE] = {ISLET_FL_SLICE, 40, 1, "slice"},
    [ISLET_FL_CONTEXT] = {ISLET_FL_CONTEXT, 48, 255, "context"},
    [ISLET_FL_ASYNC_GEN] = {ISLET_FL_ASYNC_GEN, 104, 80, "async generator"},
    [ISLET_FL_MEMORY_ERROR] = {ISLET_FL_MEMORY_ERROR, 88, 16, "MemoryError"},
    [ISLET_FL_INT] = {ISLET_FL_INT, 32, 100, "int"},
};

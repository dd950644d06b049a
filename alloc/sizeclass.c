/* Size classes: 16-byte steps up to 128 B, then four classes per doubling up
 * to 16 KiB (the spacing jemalloc and mimalloc use), so internal waste stays
 * under 25% and every power of two is a class (aligned allocation relies on
 * power-of-two classes being naturally aligned within a page). */
#include "internal.h"

const uint32_t islet_class_sizes[ISLET_SIZE_CLASSES] = {
    16,   32,   48,   64,   80,   96,   112,  128,  160,   192,   224,   256,
    320,  384,  448,  512,  640,  768,  896,  1024, 1280,  1536,  1792,  2048,
    2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384};

#define C8(c) c, c, c, c, c, c, c, c
/* islet_small_classes[(size + 15) / 16]: the class of size (0 and 1..16 are class 0). */
const uint8_t islet_small_classes[1024 / 16 + 1] = {
    0,      0,      1,      2,     3,  4,  5,  6,  7, /* .. 128 */
    8,      8,      9,      9,     10, 10, 11, 11,    /* .. 256 */
    12,     12,     12,     12,    13, 13, 13, 13,    /* .. 384 */
    14,     14,     14,     14,    15, 15, 15, 15,    /* .. 512 */
    C8(16), C8(17), C8(18), C8(19)};                  /* .. 1024 */

size_t islet_class_size(unsigned cls) {
  return cls < ISLET_SIZE_CLASSES ? islet_class_sizes[cls] : 0;
}

/* Size classes: 16-byte steps up to 512 B, as pymalloc's, eight classes
 * per doubling up to 2 KiB, then four up to 16 KiB (the spacing jemalloc
 * and mimalloc use), so internal waste stays under 25% and every power of
 * two is a class (aligned allocation relies on power-of-two classes being naturally
 * aligned within a page).  A block that outlives its interpreter keeps
 * what its class wastes: CPython 3.11 leaves about 3,000 blocks of every
 * sub-interpreter that imports decimal, and with four classes per doubling
 * from 512 B each such interpreter cost 3 % more RSS than under pymalloc
 * and glibc; with eight up to 2 KiB, 2 % (bench/python/cycles.py). */
#include "internal.h"

#define S16(a) a, a + 16, a + 32, a + 48, a + 64, a + 80, a + 96, a + 112
#define S64(a) a, a + 64, a + 128, a + 192, a + 256, a + 320, a + 384, a + 448
const uint32_t islet_class_sizes[ISLET_SIZE_CLASSES] = {
    S16(16),  S16(144), S16(272), S16(400),                               /* .. 512 */
    S64(576), 1152,     1280,     1408,     1536, 1664, 1792, 1920, 2048, /* .. 2048 */
    2560,     3072,     3584,     4096,     5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384};

#define C4(c) c, c, c, c
#define I8(c) c, c + 1, c + 2, c + 3, c + 4, c + 5, c + 6, c + 7
/* islet_small_classes[(size + 15) / 16]: the class of size (0 and 1..16 are class 0). */
const uint8_t islet_small_classes[1024 / 16 + 1] = {
    0,      I8(0),  I8(8),  I8(16), I8(24),                          /* .. 512 */
    C4(32), C4(33), C4(34), C4(35), C4(36), C4(37), C4(38), C4(39)}; /* .. 1024 */

size_t islet_class_size(unsigned cls) {
  return cls < ISLET_SIZE_CLASSES ? islet_class_sizes[cls] : 0;
}

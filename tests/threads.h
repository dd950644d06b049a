/* How many threads this process has, for tests that fork: read from
 * /proc without allocating (another thread may have held malloc's locks at
 * the fork); -1 if unknown. */
#ifndef ISLET_TEST_THREADS_H
#define ISLET_TEST_THREADS_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int count_threads(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (fd >= 0) close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *t = strstr(buf, "\nThreads:");
  return t ? atoi(t + strlen("\nThreads:")) : -1;
}

#endif

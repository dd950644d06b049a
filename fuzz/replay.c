/* Replays fuzz inputs through a target without libFuzzer: every file named
 * on the command line, or every file in a directory named there.  The
 * normal test suite runs it on fuzz/corpus/, so seeds and the inputs of
 * fixed crashes are checked by every build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, n);
  return 1;
}

int main(int argc, char **argv) {
  int files = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) || !S_ISDIR(st.st_mode)) {
      files += run_file(argv[i]);
      continue;
    }
    DIR *d = opendir(argv[i]);
    for (struct dirent *e; d && (e = readdir(d));) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      files += run_file(path);
    }
    if (d) closedir(d);
  }
  printf("replayed %d inputs\n", files);
  return files ? 0 : 1;
}

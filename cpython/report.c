/* The per-interpreter table `islet run` prints at exit, as text or JSON.
 *
 * Why: what no CPython tool shows is memory per interpreter: how much each
 * one used, what its finalization left behind, how many of its frees were
 * of another interpreter's objects, and whether it hit its limit.
 */
#include "cpython.h"
#include <stdlib.h>

static double mib(size_t bytes) {
  return (double)bytes / (1 << 20);
}

static void text_row(FILE *out, const islet_cpython_record_t *r) {
  fprintf(out, "%8lld %5u  %-5s %10zu %9.2f %9.2f %11zu %9.2f %8zu %6zu\n", r->id, r->round,
          r->ended ? "ended" : "live", r->stats.allocs, mib(r->stats.bytes_peak),
          mib(r->stats.bytes), r->leaked_blocks, mib(r->leaked_bytes), r->stats.remote_sent,
          r->stats.limit_hits);
}

static void json_row(FILE *out, const islet_cpython_record_t *r, int last) {
  fprintf(out,
          "  {\"interp\": %lld, \"round\": %u, \"ended\": %s, \"allocs\": %zu, "
          "\"peak_bytes\": %zu, \"live_bytes\": %zu, \"leaked_blocks\": %zu, "
          "\"leaked_bytes\": %zu, \"cross_frees\": %zu, \"limit_hits\": %zu}%s\n",
          r->id, r->round, r->ended ? "true" : "false", r->stats.allocs, r->stats.bytes_peak,
          r->stats.bytes, r->leaked_blocks, r->leaked_bytes, r->stats.remote_sent,
          r->stats.limit_hits, last ? "" : ",");
}

int islet_cpython_report(FILE *out, int json) {
  size_t n = islet_cpython_records(NULL, 0);
  islet_cpython_record_t *rs = malloc((n ? n : 1) * sizeof *rs);
  if (!rs) return -1;
  size_t now = islet_cpython_records(rs, n); /* interpreters may have come meanwhile */
  n = now < n ? now : n;
  if (json) {
    fprintf(out, "[\n");
    for (size_t i = 0; i < n; i++) json_row(out, &rs[i], i + 1 == n);
    fprintf(out, "]\n");
  } else {
    fprintf(out, "islet: memory per CPython interpreter (MiB; live = at its end, or now)\n");
    fprintf(out, "%8s %5s  %-5s %10s %9s %9s %11s %9s %8s %6s\n", "interp", "round", "state",
            "allocs", "peak", "live", "leaked-blk", "leaked", "x-frees", "limit");
    for (size_t i = 0; i < n; i++) text_row(out, &rs[i]);
  }
  free(rs);
  return 0;
}

/* Per-interpreter statistics, as a struct and as JSON.
 *
 * Why: per-interpreter accounting is what multi-interpreter embedders lack
 * (which interpreter holds the memory, who frees into whom, who hit a limit);
 * the JSON form feeds tools and the CPython integration's table.
 */
#include "internal.h"

void islet_interp_stats(islet_interp_t *in, islet_stats_t *s) {
  *s = (islet_stats_t){
      .id = in->id,
      .bytes = heap_bytes(in),
      .bytes_peak = in->bytes_peak,
      .blocks = heap_blocks(in),
      .blocks_peak = in->blocks_peak,
      .allocs = islet_allocs(in),
      .segments = in->nsegs,
      .pages = in->npages,
      .large_blocks = in->nlarge,
      .mapped = in->mapped,
      .remote_pending = islet_remote_backlog(in),
      .remote_processed = in->remote_processed,
      .remote_sent = in->remote_sent,
      .limit = in->limit == SIZE_MAX ? 0 : in->limit,
      .limit_hits = in->limit_hits,
      .bad_frees = in->bad_frees,
  };
}

int islet_interp_stats_json(islet_interp_t *in, FILE *out) {
  islet_stats_t s;
  islet_interp_stats(in, &s);
  return fprintf(out,
                 "{\"id\":%u,\"bytes\":%zu,\"bytes_peak\":%zu,\"blocks\":%zu,"
                 "\"blocks_peak\":%zu,\"allocs\":%zu,\"segments\":%zu,\"pages\":%zu,\"large_"
                 "blocks\":%zu,"
                 "\"mapped\":%zu,\"remote_pending\":%zu,\"remote_processed\":%zu,"
                 "\"remote_sent\":%zu,\"limit\":%zu,\"limit_hits\":%zu,\"bad_frees\":%zu}\n",
                 s.id, s.bytes, s.bytes_peak, s.blocks, s.blocks_peak, s.allocs, s.segments,
                 s.pages, s.large_blocks, s.mapped, s.remote_pending, s.remote_processed,
                 s.remote_sent, s.limit, s.limit_hits, s.bad_frees) < 0
             ? -1
             : 0;
}

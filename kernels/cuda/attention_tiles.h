// The work decomposition of paged attention, shared by the kernel (device) and its tests
// (host): which query tile of which sequence a block owns, and which keys a KV split covers.
//
// Tiles: sequence s owns tile indices [query_start[s] / R + s, ... + ceil(q_len_s / R)), where
// R is the number of queries per tile (vLLM's varlen numbering). These ranges never overlap
// (floor((a + q) / R) + 1 >= floor(a / R) + ceil(q / R)), so num_tokens / R + num_seqs tiles
// cover any batch, the owner of a tile is found by binary search over query_start, and a tile
// past its sequence's queries owns nothing.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define HERD_HOST_DEVICE __host__ __device__
#else
#define HERD_HOST_DEVICE
#endif

namespace herd::cuda {

// (query, head) rows per block: R = kAttentionRows / group queries of one GQA group per tile.
constexpr int kAttentionRows = 64;
// group <= kAttentionRows (the backend rejects larger groups).
HERD_HOST_DEVICE inline int attention_rows_per_tile(int group) { return kAttentionRows / group; }

HERD_HOST_DEVICE inline int attention_tile_count(int num_tokens, int num_seqs, int rows_per_tile) {
  return num_tokens / rows_per_tile + num_seqs;
}

struct TileWork {
  int seq = 0;      // owning sequence
  int q_begin = 0;  // its first query row in the batch
  int q_len = 0;    // its number of queries
  int q0 = 0;       // first query of the tile within the sequence
  int rows = 0;     // queries in the tile; 0 = the tile owns nothing
};

HERD_HOST_DEVICE inline TileWork attention_tile(const int32_t* query_start, int num_seqs,
                                                int rows_per_tile, int tile) {
  const int R = rows_per_tile;
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {  // largest s with query_start[s] / R + s <= tile
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] / R + mid <= tile)
      lo = mid;
    else
      hi = mid - 1;
  }
  TileWork w;
  w.seq = lo;
  w.q_begin = query_start[lo];
  w.q_len = query_start[lo + 1] - w.q_begin;
  w.q0 = (tile - (w.q_begin / R + lo)) * R;
  const int left = w.q_len - w.q0;
  w.rows = left <= 0 ? 0 : (left < R ? left : R);
  return w;
}

// Keys [begin, end) of split `split` out of `splits` over a context of ctx_end keys: equal
// chunks rounded up to whole steps of `step` keys; trailing splits may be empty.
struct KeyRange {
  int begin = 0, end = 0;
};
HERD_HOST_DEVICE inline KeyRange attention_split_keys(int ctx_end, int splits, int split,
                                                      int step) {
  if (splits <= 1) return {0, ctx_end};
  const int chunk = ((ctx_end + splits - 1) / splits + step - 1) / step * step;
  KeyRange r;
  r.begin = split * chunk < ctx_end ? split * chunk : ctx_end;
  r.end = r.begin + chunk < ctx_end ? r.begin + chunk : ctx_end;
  return r;
}

}  // namespace herd::cuda

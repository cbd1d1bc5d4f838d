// Causal paged attention with GQA over a varlen batch, flash-style on the tensor cores (WMMA,
// BF16 inputs, fp32 accumulation).
//
// One block = (query tile of one sequence, kv head, KV split). Its 64 "rows" are (query, head)
// pairs: the R = 64 / group queries of the tile times the group query heads that share the kv
// head, so each K/V tile read from the paged cache serves every head of the group. The block
// walks the keys 64 at a time through the block table: it gathers a K and a V tile into shared
// memory, each of its 4 warps computes S = Q K^T for its 16 rows, an online softmax (running
// max and sum per row, in log2 units) turns S into P, and the warp rescales its output
// accumulators when a row's max grew and adds P V. Keys past the tile's last query position
// are never read; the causal mask is applied per row inside the diagonal tiles.
//
// Grid: tiles are numbered as attention_tiles.h explains (vLLM's varlen trick), so the grid
// size needs no host-side copy of the batch; blocks whose tile owns no queries exit at once.
//
// Split-K (decode and other small batches with long contexts): with splits > 1 the keys of a
// block's tile are cut into `splits` contiguous ranges handled by separate blocks, which write
// unnormalized partials that attention_merge.cu combines.
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "kernels/cuda/attention_split.h"
#include "kernels/cuda/attention_tiles.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kBM = kAttentionRows;  // (query, head) rows per block
constexpr int kBN = 64;              // keys per step
constexpr int kWarps = 4;            // each warp owns 16 rows
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory layout for head size D. Rows are padded by 16 bytes (8 BF16 / 4 floats) against
// bank conflicts; every WMMA tile pointer stays 32-byte aligned.
// 16-byte asynchronous copy global -> shared (sm_80+); with valid false nothing is read and
// the 16 bytes are zero-filled.
__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src),
               "r"(src_bytes)
               : "memory");
}
// Waits for this thread's copies; a __syncthreads() after it publishes them to the block.
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

template <int D>
struct Smem {
  static constexpr int kLdQ = D + 8, kLdK = D + 8, kLdS = kBN + 4, kLdP = kBN + 8;
  static constexpr size_t align(size_t n) { return (n + 127) / 128 * 128; }
  static constexpr size_t q = 0;
  static constexpr size_t k = q + align(size_t(kBM) * kLdQ * sizeof(bf16));
  static constexpr size_t v = k + align(size_t(kBN) * kLdK * sizeof(bf16));
  static constexpr size_t s = v + align(size_t(kBN) * kLdK * sizeof(bf16));
  static constexpr size_t p = s + align(size_t(kBM) * kLdS * sizeof(float));
  static constexpr size_t scratch = p + align(size_t(kBM) * kLdP * sizeof(bf16));
  static constexpr size_t stats = scratch + align(size_t(kWarps) * 256 * sizeof(float));
  static constexpr size_t slot = stats + align(size_t(3) * kBM * sizeof(float));
  static constexpr size_t bytes = slot + align(size_t(kBN) * sizeof(int32_t));
};

struct KernelArgs {
  const bf16* q;
  const bf16* kc;
  const bf16* vc;
  bf16* out;
  const int32_t* query_start;
  const int32_t* seq_lens;
  const int32_t* block_tables;
  int max_blocks_per_seq;
  int num_seqs;
  int num_tokens;
  int num_heads;
  int num_kv_heads;
  int group;          // num_heads / num_kv_heads
  int rows_per_tile;  // R = kBM / group queries per tile
  int block_size;
  float scale_log2;  // scale * log2(e): scores are kept in log2 units
  int splits;
  SplitWorkspace ws;
};

template <int D>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(const KernelArgs a) {
  using L = Smem<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem + L::q);
  bf16* sK = reinterpret_cast<bf16*>(smem + L::k);
  bf16* sV = reinterpret_cast<bf16*>(smem + L::v);
  float* sS = reinterpret_cast<float*>(smem + L::s);
  bf16* sP = reinterpret_cast<bf16*>(smem + L::p);
  float* sScratch = reinterpret_cast<float*>(smem + L::scratch);
  float* sM = reinterpret_cast<float*>(smem + L::stats);
  float* sL = sM + kBM;
  float* sCorr = sL + kBM;
  int32_t* sSlot = reinterpret_cast<int32_t*>(smem + L::slot);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int R = a.rows_per_tile;
  const int kvh = blockIdx.y, split = blockIdx.z;

  // ---- which sequence, query tile and keys this block owns (attention_tiles.h) -----------
  const TileWork w = attention_tile(a.query_start, a.num_seqs, R, int(blockIdx.x));
  if (w.rows == 0) return;  // the whole block agrees: no query rows here
  const int seq = w.seq, q_begin = w.q_begin, q_len = w.q_len, q0 = w.q0, rows_here = w.rows;
  const int pos0 = a.seq_lens[seq] - q_len;   // position of the sequence's first new token
  const int ctx_end = pos0 + q0 + rows_here;  // the tile's last row sees keys [0, ctx_end)
  const KeyRange keys = attention_split_keys(ctx_end, a.splits, split, kBN);
  const int k_begin = keys.begin, k_end = keys.end;
  const int32_t* table = a.block_tables + int64_t(seq) * a.max_blocks_per_seq;
  const int64_t q_stride = int64_t(a.num_heads) * D;
  const int64_t kv_stride = int64_t(a.num_kv_heads) * D;

  // ---- Q tile and row statistics -----------------------------------------------------------
  constexpr int kVecPerRow = D / 8;
  for (int e = tid; e < kBM * kVecPerRow; e += kThreads) {
    const int m = e / kVecPerRow, c = (e % kVecPerRow) * 8;
    const int r = m / a.group, g = m % a.group;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < rows_here) {
      val = *reinterpret_cast<const uint4*>(a.q + int64_t(q_begin + q0 + r) * q_stride +
                                            int64_t(kvh * a.group + g) * D + c);
    }
    *reinterpret_cast<uint4*>(sQ + m * L::kLdQ + c) = val;
  }
  if (lane < 16) {
    sM[warp * 16 + lane] = -INFINITY;
    sL[warp * 16 + lane] = 0.0f;
  }
  __syncthreads();

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[D / 16];
#pragma unroll
  for (int f = 0; f < D / 16; ++f) wmma::fill_fragment(acc[f], 0.0f);

  for (int kt = k_begin; kt < k_end; kt += kBN) {
    // ---- gather the K/V tile through the block table ---------------------------------------
    __syncthreads();  // every warp is done with the previous tile
    if (tid < kBN) {
      const int t = kt + tid;
      sSlot[tid] = t < k_end ? table[t / a.block_size] * a.block_size + t % a.block_size : -1;
    }
    __syncthreads();
    // cp.async copies global -> shared without staging in registers; a key past the range
    // is zero-filled (source size 0), so P V never sees garbage.
#pragma unroll
    for (int e = tid; e < kBN * kVecPerRow; e += kThreads) {
      const int n = e / kVecPerRow, c = (e % kVecPerRow) * 8;
      const int32_t slot = sSlot[n];
      const int64_t off = int64_t(slot < 0 ? 0 : slot) * kv_stride + int64_t(kvh) * D + c;
      cp_async16(sK + n * L::kLdK + c, a.kc + off, slot >= 0);
      cp_async16(sV + n * L::kLdK + c, a.vc + off, slot >= 0);
    }
    cp_async_wait_all();
    __syncthreads();

    // ---- S = Q K^T for this warp's 16 rows ------------------------------------------------
    // A warp whose 16 rows are all padding (a short tile: decode with a large group) skips
    // the math; it still takes part in the block's barriers above.
    const int row0 = warp * 16;
    if (row0 / a.group >= rows_here) continue;
#pragma unroll
    for (int j = 0; j < kBN / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
      wmma::fill_fragment(s, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> qa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> kb;
        wmma::load_matrix_sync(qa, sQ + row0 * L::kLdQ + kk * 16, L::kLdQ);
        wmma::load_matrix_sync(kb, sK + (j * 16) * L::kLdK + kk * 16, L::kLdK);
        wmma::mma_sync(s, qa, kb, s);
      }
      wmma::store_matrix_sync(sS + row0 * L::kLdS + j * 16, s, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // ---- online softmax, one row at a time across the warp (2 keys per lane) --------------
    for (int rr = 0; rr < 16; ++rr) {
      const int m = row0 + rr;
      const int r = m / a.group;
      if (r >= rows_here) {  // padding row: P = 0, state untouched (never written out)
        sP[m * L::kLdP + lane] = sP[m * L::kLdP + lane + 32] = __float2bfloat16_rn(0.0f);
        if (lane == 0) sCorr[m] = 1.0f;
        continue;
      }
      const int qpos = pos0 + q0 + r;  // this row attends to keys 0..qpos
      float sv[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = lane + 32 * h, t = kt + col;
        sv[h] = (t < k_end && t <= qpos) ? sS[m * L::kLdS + col] * a.scale_log2 : -INFINITY;
      }
      float mx = fmaxf(sv[0], sv[1]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float old_max = sM[m];
      const float new_max = fmaxf(old_max, mx);
      float corr = 1.0f, p[2] = {0.0f, 0.0f};
      if (new_max != -INFINITY) {         // else nothing seen yet: P = 0 and the state stays empty
        corr = exp2f(old_max - new_max);  // 0 when old_max = -inf
        p[0] = exp2f(sv[0] - new_max);
        p[1] = exp2f(sv[1] - new_max);
      }
      float sum = p[0] + p[1];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      sP[m * L::kLdP + lane] = __float2bfloat16_rn(p[0]);
      sP[m * L::kLdP + lane + 32] = __float2bfloat16_rn(p[1]);
      __syncwarp();  // every lane has read sM[m] before lane 0 updates it
      if (lane == 0) {
        sL[m] = sL[m] * corr + sum;
        sM[m] = new_max;
        sCorr[m] = corr;
      }
    }
    __syncwarp();

    // ---- rescale the accumulators where a row's max grew, then O += P V ---------------------
    const bool rescale = __any_sync(0xffffffffu, lane < 16 && sCorr[row0 + lane] != 1.0f);
    if (rescale) {
      float* scratch = sScratch + warp * 256;
#pragma unroll
      for (int f = 0; f < D / 16; ++f) {
        wmma::store_matrix_sync(scratch, acc[f], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) scratch[e] *= sCorr[row0 + e / 16];
        __syncwarp();
        wmma::load_matrix_sync(acc[f], scratch, 16, wmma::mem_row_major);
        __syncwarp();
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> pa;
      wmma::load_matrix_sync(pa, sP + row0 * L::kLdP + kk * 16, L::kLdP);
#pragma unroll
      for (int f = 0; f < D / 16; ++f) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> vb;
        wmma::load_matrix_sync(vb, sV + (kk * 16) * L::kLdK + f * 16, L::kLdK);
        wmma::mma_sync(acc[f], pa, vb, acc[f]);
      }
    }
  }

  // ---- write this warp's rows: normalized output, or the split's partials -------------------
  const int row0 = warp * 16;
  float* scratch = sScratch + warp * 256;
#pragma unroll
  for (int f = 0; f < D / 16; ++f) {
    wmma::store_matrix_sync(scratch, acc[f], 16, wmma::mem_row_major);
    __syncwarp();
    for (int e = lane; e < 256; e += 32) {
      const int m = row0 + e / 16, d = f * 16 + e % 16;
      const int r = m / a.group, g = m % a.group;
      if (r >= rows_here) continue;
      const int token = q_begin + q0 + r, head = kvh * a.group + g;
      if (a.splits > 1) {
        const int64_t row = (int64_t(split) * a.num_tokens + token) * a.num_heads + head;
        a.ws.o[row * D + d] = scratch[e];
        if (d == 0) a.ws.ml[row] = make_float2(sM[m], sL[m]);
      } else {
        // sL > 0: key 0 precedes every query, so each real row has seen at least one key.
        a.out[int64_t(token) * q_stride + int64_t(head) * D + d] =
            __float2bfloat16_rn(scratch[e] / sL[m]);
      }
    }
    __syncwarp();
  }
}

template <int D>
void launch(const KernelArgs& args, const AttentionBatch& b, cudaStream_t stream) {
  constexpr size_t kSmem = Smem<D>::bytes;
  // Above 48 KB a kernel must opt in; the attribute is per function and device, set once.
  static std::atomic<uint64_t> opted_in{0};
  int device = 0;
  HERD_CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((opted_in.load() & bit) == 0) {
    HERD_CUDA_CHECK(cudaFuncSetAttribute(paged_attention_kernel<D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem)));
    opted_in |= bit;
  }
  const dim3 grid(unsigned(attention_tile_count(b.num_tokens, b.num_seqs, args.rows_per_tile)),
                  unsigned(args.num_kv_heads), unsigned(args.splits));
  paged_attention_kernel<D><<<grid, kThreads, kSmem, stream>>>(args);
  HERD_CUDA_CHECK_LAUNCH("paged_attention kernel");
}

}  // namespace

bool attention_head_dim_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

int attention_splits(const AttentionBatch& b, int num_kv_heads, int group, int sm_count) {
  const int R = attention_rows_per_tile(group);
  // Blocks with real work: about one tile per sequence plus one per R queries.
  const int64_t tiles = std::min(b.num_seqs, b.num_tokens) + b.num_tokens / R;
  const int64_t blocks = std::max<int64_t>(1, tiles * num_kv_heads);
  const int64_t target = 2 * int64_t(sm_count);  // two resident blocks per multiprocessor
  if (blocks >= target) return 1;
  // A split below 256 keys costs more in merging than it saves.
  const int64_t by_len = b.max_seq_len / 256;
  const int64_t by_fill = (target + blocks - 1) / blocks;
  const int splits = int(std::min<int64_t>({by_len, by_fill, 32}));
  return splits >= 2 ? splits : 1;
}

void paged_attention(const PagedAttentionArgs& p, const AttentionBatch& b, int splits,
                     void* workspace, cudaStream_t stream) {
  if (b.num_tokens <= 0 || b.num_seqs <= 0) return;
  KernelArgs a{};
  a.q = static_cast<const bf16*>(p.q);
  a.kc = static_cast<const bf16*>(p.k_cache);
  a.vc = static_cast<const bf16*>(p.v_cache);
  a.out = static_cast<bf16*>(p.out);
  a.query_start = b.query_start;
  a.seq_lens = b.seq_lens;
  a.block_tables = b.block_tables;
  a.max_blocks_per_seq = b.max_blocks_per_seq;
  a.num_seqs = b.num_seqs;
  a.num_tokens = b.num_tokens;
  a.num_heads = p.num_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.group = p.num_heads / p.num_kv_heads;
  a.rows_per_tile = attention_rows_per_tile(a.group);
  a.block_size = p.block_size;
  a.scale_log2 = p.scale * kLog2e;
  a.splits = std::max(1, splits);
  if (a.splits > 1)
    a.ws = split_workspace(workspace, a.splits, b.num_tokens, p.num_heads, p.head_dim);
  if (p.head_dim == 64)
    launch<64>(a, b, stream);
  else
    launch<128>(a, b, stream);
  if (a.splits > 1)
    merge_splits(a.ws, a.splits, b.num_tokens, p.num_heads, p.head_dim, p.out, stream);
}

}  // namespace herd::cuda

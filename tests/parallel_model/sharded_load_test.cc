// Sharded loading: a rank's load_llama_weights maps the checkpoint but makes resident only
// the pages of its own part. Measured on a ~30 MB random BF16 checkpoint: after touching every
// byte of every view a rank holds, the resident set of the checkpoint's mapping
// (/proc/self/smaps "Rss" of that file) must lie between
//   lower: the pages the rank's views cover, plus the header, and
//   upper: the same ranges widened to the kernel's fault-around window (file pages already
//          in the page cache are mapped up to 64 KiB around a faulting address)
// The kernel may map more than was touched: fault-around maps neighbouring pages that are in
// the page cache, and a large folio (ext4 writes create them) is mapped as a whole. So before
// each rank loads, the file is written back and dropped from the page cache
// (POSIX_FADV_DONTNEED), and the rank's mapping is set MADV_RANDOM (no read-ahead): only the
// pages the rank faults in enter the cache, one page each.
// And, for a tp=2 x pp=2 job, every rank's resident bytes stay under half the file (a
// first-stage rank also holds the whole replicated embedding, 28% of this file).
// The views themselves are checked against the whole model's (same bytes, right slices).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "engine/model/config.h"
#include "engine/model/make_model.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/weights.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using testing::ScratchDir;

constexpr int64_t kVocab = 32003, kHidden = 128, kFfn = 4096, kLayers = 4, kHeads = 4, kKvHeads = 2,
                  kHeadDim = 32;

// config.json of make-model's tiny shape with bigger (and uneven: vocab % 2 != 0) sizes.
void write_checkpoint(const std::string& dir) {
  auto cfg = make_model_config_json("tiny", DType::kBF16);
  cfg["vocab_size"] = kVocab;
  cfg["hidden_size"] = kHidden;
  cfg["intermediate_size"] = kFfn;
  cfg["num_hidden_layers"] = kLayers;
  cfg["num_attention_heads"] = kHeads;
  cfg["num_key_value_heads"] = kKvHeads;
  cfg["head_dim"] = kHeadDim;
  testing::write_json(dir + "/config.json", cfg);
  std::vector<TensorSpec> specs;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    TensorSpec s{name, DType::kBF16, std::move(shape), nullptr};
    const uint64_t salt = std::hash<std::string>{}(name);
    s.fill = [salt](int64_t first, int64_t count, void* dst) {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < count; ++i)
        out[i] = f32_to_bf16(
            float(int64_t((uint64_t(first + i) * 2654435761u + salt) % 201) - 100) / 1000.0f);
    };
    specs.push_back(std::move(s));
  };
  const int64_t q = kHeads * kHeadDim, kv = kKvHeads * kHeadDim;
  add("model.embed_tokens.weight", {kVocab, kHidden});
  for (int64_t l = 0; l < kLayers; ++l) {
    auto n = [l](const char* m) { return llama_layer_tensor_name(l, m); };
    add(n("input_layernorm"), {kHidden});
    add(n("self_attn.q_proj"), {q, kHidden});
    add(n("self_attn.k_proj"), {kv, kHidden});
    add(n("self_attn.v_proj"), {kv, kHidden});
    add(n("self_attn.o_proj"), {kHidden, q});
    add(n("post_attention_layernorm"), {kHidden});
    add(n("mlp.gate_proj"), {kFfn, kHidden});
    add(n("mlp.up_proj"), {kFfn, kHidden});
    add(n("mlp.down_proj"), {kHidden, kFfn});
  }
  add("model.norm.weight", {kHidden});
  add("lm_head.weight", {kVocab, kHidden});
  write_safetensors_dir(dir, specs);
}

struct Mapping {
  uintptr_t begin = 0, end = 0;
  size_t rss = 0;
};

// A smaps header line: "begin-end perms offset dev inode path".
bool is_mapping_header(const std::string& line) {
  const std::string first = line.substr(0, line.find(' '));
  return first.find('-') != std::string::npos &&
         std::all_of(first.begin(), first.end(), [](char ch) {
           return ch == '-' || std::isxdigit(static_cast<unsigned char>(ch));
         });
}

// The mappings of `path` in this process, with their resident bytes.
std::vector<Mapping> mappings_of(const std::string& path) {
  std::ifstream in("/proc/self/smaps");
  std::vector<Mapping> out;
  std::string line;
  bool mine = false;
  while (std::getline(in, line)) {
    if (is_mapping_header(line)) {
      mine = line.ends_with(" " + path);
      if (mine) {
        const size_t dash = line.find('-'), space = line.find(' ');
        Mapping m;
        m.begin = std::stoull(line.substr(0, dash), nullptr, 16);
        m.end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
        out.push_back(m);
      }
    } else if (mine && line.starts_with("Rss:")) {
      out.back().rss = size_t(std::stoull(line.substr(4))) * 1024;
    }
  }
  return out;
}

// Every contiguous byte range a view covers (one per row when strided).
void ranges_of(const Tensor& t, std::vector<std::pair<uintptr_t, uintptr_t>>& out) {
  if (t.data == nullptr) return;
  const size_t esz = dtype_size(t.dtype), row = size_t(t.cols) * esz;
  if (t.contiguous()) {
    const auto b = reinterpret_cast<uintptr_t>(t.data);
    out.emplace_back(b, b + t.bytes());
    return;
  }
  for (int64_t r = 0; r < t.rows; ++r) {
    const auto b = reinterpret_cast<uintptr_t>(t.data) + size_t(r * t.row_stride()) * esz;
    out.emplace_back(b, b + row);
  }
}

std::vector<const Tensor*> views(const LlamaWeights& w) {
  std::vector<const Tensor*> v = {&w.embed_tokens, &w.norm, &w.lm_head};
  for (const auto& l : w.layers)
    for (const Tensor* t : {&l.input_layernorm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                            &l.post_attention_layernorm, &l.gate_proj, &l.up_proj, &l.down_proj})
      v.push_back(t);
  return v;
}

// Bytes of the pages [begin, end) ranges cover, each widened to `window` alignment and
// clipped to the mapping.
size_t covered_bytes(const std::vector<std::pair<uintptr_t, uintptr_t>>& ranges, size_t window,
                     const Mapping& m) {
  std::set<uintptr_t> units;
  for (auto [b, e] : ranges) {
    for (uintptr_t u = b / window; u * window < e; ++u) units.insert(u);
  }
  size_t bytes = 0;
  for (uintptr_t u : units) {
    const uintptr_t b = std::max(m.begin, u * window), e = std::min(m.end, (u + 1) * window);
    if (e > b) bytes += e - b;
  }
  return bytes;
}

// Writes the file back and drops its clean pages from the page cache.
void drop_page_cache(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

uint64_t header_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  uint8_t b[8] = {};
  in.read(reinterpret_cast<char*>(b), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  return 8 + n;
}

class ShardedLoadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir();
    write_checkpoint(dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static ScratchDir* dir_;
};
ScratchDir* ShardedLoadTest::dir_ = nullptr;

TEST_F(ShardedLoadTest, ViewsAreTheRightSlicesOfTheWholeModel) {
  const ModelConfig c = load_model_config(dir_->path());
  const LlamaWeights whole = load_llama_weights(dir_->path(), c);
  auto bytes_equal = [](const Tensor& a, const Tensor& b) {
    if (a.rows != b.rows || a.cols != b.cols) return false;
    for (int64_t r = 0; r < a.rows; ++r)
      if (std::memcmp(a.slice_rows(r, 1).data, b.slice_rows(r, 1).data,
                      size_t(a.cols) * dtype_size(a.dtype)) != 0)
        return false;
    return true;
  };
  for (int tp_rank = 0; tp_rank < 2; ++tp_rank) {
    RankLayout l;
    l.tp_rank = tp_rank;
    l.tp_size = 2;
    l.pp_rank = 1;
    l.pp_size = 2;
    l.layer_begin = 2;
    l.layer_end = 4;
    const LlamaWeights w = load_llama_weights(dir_->path(), c, l);
    EXPECT_EQ(w.embed_tokens.data, nullptr);  // not the first stage
    ASSERT_EQ(w.layers.size(), 2u);
    const auto& f = whole.layers[3];
    const auto& s = w.layers[1];
    const int64_t q = kHeads * kHeadDim / 2, ff = kFfn / 2;
    EXPECT_TRUE(bytes_equal(s.q_proj, f.q_proj.slice_rows(tp_rank * q, q)));
    EXPECT_TRUE(bytes_equal(s.o_proj, f.o_proj.slice_cols(tp_rank * q, q)));
    EXPECT_TRUE(bytes_equal(s.up_proj, f.up_proj.slice_rows(tp_rank * ff, ff)));
    EXPECT_TRUE(bytes_equal(s.down_proj, f.down_proj.slice_cols(tp_rank * ff, ff)));
    EXPECT_FALSE(s.down_proj.contiguous());
    EXPECT_EQ(s.down_proj.row_stride(), kFfn);
    // Vocab-parallel head: ceil(32003 / 2) = 16002 rows, the last shard one shorter.
    EXPECT_EQ(w.lm_head.rows, tp_rank == 0 ? 16002 : 16001);
    EXPECT_TRUE(bytes_equal(w.lm_head, whole.lm_head.slice_rows(tp_rank * 16002, w.lm_head.rows)));
  }
}

TEST_F(ShardedLoadTest, RankTouchesOnlyItsShare) {
  const ModelConfig c = load_model_config(dir_->path());
  const std::string file = dir_->path() + "/model.safetensors";
  const size_t file_bytes = std::filesystem::file_size(file);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const uint64_t header = header_bytes(file);
  ParallelConfig pc;
  pc.tensor_parallel_size = 2;
  for (int pp : {1, 2}) {
    pc.pipeline_parallel_size = pp;
    size_t total_rss = 0;
    for (int rank = 0; rank < 2 * pp; ++rank) {
      SCOPED_TRACE(::testing::Message() << "tp 2 pp " << pp << " rank " << rank);
      const RankLayout l =
          make_rank_layout(pc, int(kLayers), int(kHeads), int(kKvHeads), 2 * pp, rank);
      drop_page_cache(file);
      const LlamaWeights w = load_llama_weights(dir_->path(), c, l);
      {
        const auto maps = mappings_of(file);
        ASSERT_EQ(maps.size(), 1u);
        ASSERT_EQ(::madvise(reinterpret_cast<void*>(maps[0].begin), maps[0].end - maps[0].begin,
                            MADV_RANDOM),
                  0);
      }
      std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
      uint64_t sum = 0;
      size_t share = 0;
      for (const Tensor* t : views(w)) {
        ranges_of(*t, ranges);
        share += t->data ? t->bytes() : 0;
      }
      // Touch every byte of the rank's views.
      for (auto [b, e] : ranges)
        for (uintptr_t p = b; p < e; p += 2) sum += *reinterpret_cast<const volatile uint16_t*>(p);
      EXPECT_NE(sum, 0u);
      const auto maps = mappings_of(file);
      ASSERT_EQ(maps.size(), 1u);
      const Mapping& m = maps[0];
      ranges.emplace_back(m.begin, m.begin + header);  // the loader parses the header
      const size_t lower = covered_bytes(ranges, page, m);
      const size_t upper = covered_bytes(ranges, std::max<size_t>(page, 64 << 10), m);
      EXPECT_GE(m.rss, lower);
      EXPECT_LE(m.rss, upper);
      std::printf("tp 2 pp %d rank %d: resident %.2f MB of the %.2f MB file (its views: %.2f MB)\n",
                  pp, rank, double(m.rss) / 1e6, double(file_bytes) / 1e6, double(share) / 1e6);
      if (pp == 2) {
        EXPECT_LT(double(m.rss), 0.5 * double(file_bytes));
      }
      total_rss += m.rss;
    }
    // Without the replicated embedding / norms every byte would be resident on exactly one
    // rank; with them the sum stays well under what tp * pp whole copies would be.
    EXPECT_LT(double(total_rss), 1.5 * double(file_bytes));
  }
}

}  // namespace
}  // namespace herd

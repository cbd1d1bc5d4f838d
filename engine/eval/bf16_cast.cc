#include "engine/eval/bf16_cast.h"

#include <map>
#include <memory>
#include <vector>

#include "engine/common/error.h"

namespace herd::eval {

namespace {

struct CastStorage {
  std::vector<std::vector<uint16_t>> tensors;
};

float load(const Tensor& t, int64_t r, int64_t c) {
  const int64_t i = r * t.row_stride() + c;
  if (t.dtype == DType::kF32) return static_cast<const float*>(t.data)[i];
  return f16_to_f32(static_cast<const uint16_t*>(t.data)[i]);
}

}  // namespace

LlamaWeights cast_llama_weights_bf16(const LlamaWeights& whole) {
  if (whole.dtype == DType::kBF16) return whole;
  if (whole.layout.tp_size != 1 || whole.layout.pp_size != 1)
    throw Error("bf16 cast: the input must be the whole model");
  if (whole.dtype != DType::kF32 && whole.dtype != DType::kF16)
    throw Error("bf16 cast: weights must be F32 or F16");
  auto storage = std::make_shared<CastStorage>();
  std::map<const void*, void*> done;  // tied tensors share their cast
  auto cast = [&](Tensor& t) {
    if (t.data == nullptr) return;
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16)
      throw Error("bf16 cast: unexpected tensor dtype (FP8 weights are quantized after the cast)");
    auto it = done.find(t.data);
    void* out;
    if (it != done.end()) {
      out = it->second;
    } else {
      std::vector<uint16_t> v(static_cast<size_t>(t.rows * t.cols));
      for (int64_t r = 0; r < t.rows; ++r)
        for (int64_t c = 0; c < t.cols; ++c) v[size_t(r * t.cols + c)] = f32_to_bf16(load(t, r, c));
      storage->tensors.push_back(std::move(v));
      out = storage->tensors.back().data();
      done[t.data] = out;
    }
    t = Tensor{out, DType::kBF16, t.rows, t.cols};
  };
  LlamaWeights w = whole;
  cast(w.embed_tokens);
  for (auto& l : w.layers)
    for (Tensor* t : {&l.input_layernorm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                      &l.post_attention_layernorm, &l.gate_proj, &l.up_proj, &l.down_proj})
      cast(*t);
  cast(w.norm);
  cast(w.lm_head);
  w.dtype = DType::kBF16;
  // The new tensors, and the source mapping (nothing of it is read any more, but the caller may
  // still hold views of it through `whole`).
  w.storage = std::shared_ptr<const void>(
      std::make_shared<std::pair<std::shared_ptr<CastStorage>, std::shared_ptr<const void>>>(
          storage, whole.storage));
  return w;
}

}  // namespace herd::eval

// Argument checks shared by the backends (kernels/cpu, kernels/cuda). A failed check is a bug in
// the caller: it throws herd::Error (std::invalid_argument for a strided operand where only a
// linear() weight may be strided, see tensor.h) naming the backend, the op and the operand.
// C++17: the .cu files see it through the backends' headers.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/tensor.h"

namespace herd::op_checks {

// "[rows, cols] DTYPE", plus the row stride of a strided view.
inline std::string describe(const Tensor& t) {
  std::ostringstream s;
  s << "[" << t.rows << ", " << t.cols << "] " << dtype_name(t.dtype);
  if (!t.contiguous()) s << " (row stride " << t.row_stride() << ")";
  return s.str();
}

// One backend's checks; every message starts with `backend` ("cpu backend linear: ...").
// `activation` is the backend's activation and KV dtype. Called as check(ok, op, what),
// check.same_shape(...), etc.
class Checks {
 public:
  constexpr Checks(const char* backend, DType activation)
      : backend_(backend), activation_(activation) {}

  void operator()(bool ok, const char* op, const std::string& what) const {
    if (!ok) throw Error(std::string(backend_) + " " + op + ": " + what);
  }

  void contiguous(const Tensor& t, const char* op, const std::string& name) const {
    if (!t.contiguous())
      throw std::invalid_argument(std::string(backend_) + " " + op + ": " + name +
                                  " must be contiguous, got " + describe(t));
  }

  // An activation (or KV cache) of the backend: its dtype, with data, contiguous.
  void activation(const Tensor& t, const char* op, const char* name) const {
    (*this)(t.dtype == activation_ && t.data != nullptr, op,
            std::string(name) + " must be " + std::string(dtype_name(activation_)) +
                " with data, got " + describe(t));
    contiguous(t, op, name);
  }

  // An F32/F16/BF16 weight with data; strided only where the op allows it (linear).
  void float_weight(const Tensor& t, const char* op, const char* name,
                    bool strided_ok = false) const {
    (*this)(t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16, op,
            std::string(name) + " must be F32, F16 or BF16, got " + describe(t));
    (*this)(t.data != nullptr, op, std::string(name) + " has no data");
    if (!strided_ok) contiguous(t, op, name);
    (*this)(t.row_stride() >= t.cols, op,
            std::string(name) + " row stride " + std::to_string(t.row_stride()) +
                " is shorter than its rows " + describe(t));
  }

  void same_shape(const Tensor& a, const Tensor& b, const char* op, const char* an,
                  const char* bn) const {
    (*this)(a.rows == b.rows && a.cols == b.cols, op,
            std::string(an) + " " + describe(a) + " and " + bn + " " + describe(b) +
                " must have the same shape");
  }

  // rms_norm / add_rms_norm: x and out activations of one shape, one weight value per column.
  void norm(const Tensor& x, const Tensor& weight, const Tensor& out, const char* op) const {
    activation(x, op, "x");
    activation(out, op, "out");
    float_weight(weight, op, "weight");
    (*this)(weight.numel() == x.cols, op,
            "weight " + describe(weight) + " must hold one value per column of x " + describe(x));
    same_shape(x, out, op, "x", "out");
  }

  // kv_write: k and v rows as wide as the layer's cache rows.
  void kv_write(const Tensor& k, const Tensor& v, const KvLayer& layer) const {
    const char* op = "kv_write";
    const int64_t width = int64_t(layer.num_kv_heads) * layer.head_dim;
    activation(k, op, "k");
    activation(v, op, "v");
    activation(layer.k, op, "cache k");
    activation(layer.v, op, "cache v");
    same_shape(k, v, op, "k", "v");
    same_shape(layer.k, layer.v, op, "cache k", "cache v");
    (*this)(k.cols == width && layer.k.cols == width, op,
            "k " + describe(k) + " and cache " + describe(layer.k) + " must be num_kv_heads * " +
                "head_dim = " + std::to_string(width) + " wide");
  }

  // paged_attention: q and out [num_tokens, num_heads * head_dim], GQA heads that divide.
  void attention(const Tensor& q, const KvLayer& layer, int num_tokens, int num_heads,
                 const Tensor& out) const {
    const char* op = "paged_attention";
    activation(q, op, "q");
    activation(out, op, "out");
    activation(layer.k, op, "cache k");
    activation(layer.v, op, "cache v");
    (*this)(layer.num_kv_heads > 0 && num_heads % layer.num_kv_heads == 0 && layer.head_dim > 0 &&
                layer.block_size > 0,
            op,
            "num_heads " + std::to_string(num_heads) + " must be a multiple of num_kv_heads " +
                std::to_string(layer.num_kv_heads));
    (*this)(q.cols == int64_t(num_heads) * layer.head_dim && q.rows == num_tokens, op,
            "q " + describe(q) + " must be num_tokens x num_heads * head_dim");
    same_shape(q, out, op, "q", "out");
    (*this)(layer.k.cols == int64_t(layer.num_kv_heads) * layer.head_dim, op,
            "cache " + describe(layer.k) + " must be num_kv_heads * head_dim wide");
  }

 private:
  const char* backend_;
  DType activation_;
};

}  // namespace herd::op_checks

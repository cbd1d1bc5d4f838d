// A view of a 2-D row-major matrix living in a Backend's memory. Every tensor the model passes
// to a kernel is [rows, cols] with contiguous rows: activations are [tokens, features], weights
// are [out_features, in_features], norm weights are [1, dim]. Views do not own memory.
#pragma once

#include <cstdint>

#include "engine/common/dtype.h"

namespace herd {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t numel() const { return rows * cols; }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  // Rows [begin, begin + n) as a view.
  Tensor slice_rows(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<char*>(data) + size_t(begin * cols) * dtype_size(dtype);
    t.rows = n;
    return t;
  }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace herd

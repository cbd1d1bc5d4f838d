// A view of a 2-D row-major matrix living in a Backend's memory. Every tensor the model passes
// to a kernel is [rows, cols]: activations are [tokens, features], weights are [out_features,
// in_features], norm weights are [1, dim]. Views do not own memory.
//
// Rows are `stride` elements apart (0 = cols, contiguous). Only a linear() WEIGHT may be
// strided — a tensor-parallel row-parallel shard (o_proj / down_proj) is a column slice of the
// checkpoint's [out, in] matrix, used in place in the mmap; every other operand of every op
// must be contiguous and backends reject a strided one.
#pragma once

#include <cstdint>

#include "engine/common/dtype.h"

namespace herd {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements between row starts; 0 means cols (contiguous)

  int64_t row_stride() const { return stride != 0 ? stride : cols; }
  bool contiguous() const { return rows <= 1 || row_stride() == cols; }
  int64_t numel() const { return rows * cols; }
  // The elements' bytes (of a strided view: its payload, not the span it covers).
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  // Rows [begin, begin + n) as a view (keeps the stride).
  Tensor slice_rows(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<char*>(data) + size_t(begin * row_stride()) * dtype_size(dtype);
    t.rows = n;
    return t;
  }
  // Columns [begin, begin + n) of every row as a strided view.
  Tensor slice_cols(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<char*>(data) + size_t(begin) * dtype_size(dtype);
    t.stride = row_stride();
    t.cols = n;
    return t;
  }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace herd

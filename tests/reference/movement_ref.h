// Naive reference loops for the data-movement kernels (strided copy, pad, gather). Written
// independently of kernels/ (only the param structs are shared): every output element is
// addressed from its full multi-index.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gather.h"
#include "kernels/pad.h"
#include "kernels/strided_copy.h"

namespace convoy::ref {

// Calls fn(index vector) for every multi-index over shape, last dimension fastest.
template <class F>
void for_each_index(const kernels::Dims& shape, const F& fn) {
  for (size_t k = 0; k < shape.rank; ++k)
    if (shape.d[k] == 0) return;
  std::vector<int64_t> idx(shape.rank, 0);
  while (true) {
    fn(idx);
    size_t k = shape.rank;
    while (k > 0) {
      --k;
      if (++idx[k] < shape.d[k]) break;
      idx[k] = 0;
      if (k == 0) return;
    }
    if (shape.rank == 0) return;
  }
}

// Writes into an existing dst buffer (elements outside the strided window keep their value).
inline void strided_copy(const kernels::StridedCopyParams& p, const float* src, float* dst) {
  for_each_index(p.shape, [&](const std::vector<int64_t>& idx) {
    int64_t s = 0, d = 0;
    for (size_t k = 0; k < idx.size(); ++k) {
      s += idx[k] * p.src_strides.d[k];
      d += idx[k] * p.dst_strides.d[k];
    }
    dst[d] = src[s];
  });
}

// One dimension of ONNX Pad semantics, written as "crop, then pad" on the cropped extent
// [lo, hi) of the input: returns the input index, or -1 for the constant value.
inline int64_t pad_source(int64_t i, int64_t begin, int64_t n, kernels::PadMode mode) {
  const int64_t lo = begin < 0 ? -begin : 0;  // cropped at the start
  const int64_t pb = begin < 0 ? 0 : begin;   // padded at the start
  const int64_t pos = i - pb;                 // position relative to the cropped input start
  const int64_t cropped_end = n;              // end crops never matter: out size bounds i
  int64_t s = lo + pos;
  if (pos >= 0 && s < cropped_end) return s;
  switch (mode) {
    case kernels::PadMode::kConstant: return -1;
    case kernels::PadMode::kEdge: return pos < 0 ? lo : cropped_end - 1;
    case kernels::PadMode::kReflect: return pos < 0 ? lo - pos : 2 * (cropped_end - 1) - s;
  }
  return -1;
}

inline std::vector<float> pad(const kernels::PadParams& p, const std::vector<float>& in) {
  size_t total = 1;
  for (size_t k = 0; k < p.out_shape.rank; ++k) total *= static_cast<size_t>(p.out_shape.d[k]);
  std::vector<float> out(total);
  size_t flat = 0;
  for_each_index(p.out_shape, [&](const std::vector<int64_t>& idx) {
    int64_t src = 0;
    bool constant = false;
    for (size_t k = 0; k < idx.size(); ++k) {
      const int64_t s = pad_source(idx[k], p.pads_begin.d[k], p.in_shape.d[k], p.mode);
      if (s < 0) constant = true;
      src = src * p.in_shape.d[k] + (s < 0 ? 0 : s);
    }
    out[flat++] = constant ? p.value : in[static_cast<size_t>(src)];
  });
  return out;
}

inline std::vector<float> gather(const kernels::GatherParams& p, const std::vector<float>& in,
                                 const std::vector<int64_t>& indices) {
  std::vector<float> out(p.outer * p.n_indices * p.inner);
  for (size_t o = 0; o < p.outer; ++o)
    for (size_t j = 0; j < p.n_indices; ++j)
      for (size_t i = 0; i < p.inner; ++i)
        out[(o * p.n_indices + j) * p.inner + i] = in[(o * p.axis_len + static_cast<size_t>(indices[j])) * p.inner + i];
  return out;
}

}  // namespace convoy::ref

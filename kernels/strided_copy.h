// General strided copy, the workhorse of Transpose, Slice (any step, negative too), Concat
// (one call per input into a window of the output), Expand/broadcast (stride 0):
//   for every index i over shape: dst[sum i_k*dst_strides[k]] = src[sum i_k*src_strides[k]]
// Strides are in elements and may be negative or zero (src only). src/dst do not overlap.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"
#include "kernels/tensor_shape.h"

namespace convoy::kernels {

struct StridedCopyParams {
  Dims shape;
  Dims src_strides;
  Dims dst_strides;
};
void strided_copy(const StridedCopyParams& p, const float* src, float* dst, const Parallel& par);

}  // namespace convoy::kernels

// Helpers shared by the op plan functions: broadcasting, strides, spatial padding rules,
// and dtype-generic evaluation of data-movement ops on constants (shape chains).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor_shape.h"
#include "runtime/op_context.h"

namespace convoy::ops {

Shape contiguous_strides(const Shape& s);
// numpy broadcasting of two shapes; fails through ctx when incompatible.
Shape broadcast_shapes(const OpContext& ctx, const Shape& a, const Shape& b);
// Strides of `in` read as `out` (right-aligned; broadcast dims get stride 0).
kernels::Dims broadcast_strides(const Shape& in, const Shape& out);
kernels::Dims to_dims(const OpContext& ctx, const Shape& s);

// Output size and begin/end pads of one spatial axis for conv/pool.
struct SpatialAxis {
  int64_t out = 0, pad_begin = 0, pad_end = 0;
};
// pads/auto_pad per ONNX; ceil_mode for pools (a last window starting in the end padding is dropped).
std::vector<SpatialAxis> spatial_geometry(const OpContext& ctx, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                                          const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                                          bool ceil_mode);

// Generic constant evaluation of a strided gather of elements (any dtype): out element j (over
// out_shape, C order) = src element at sum(idx_k * src_strides[k]) + src_offset.
std::shared_ptr<ConstTensor> const_strided(const ConstTensor& src, const Shape& out_shape, const Shape& src_strides,
                                           int64_t src_offset);

}  // namespace convoy::ops

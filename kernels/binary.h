// Elementwise binary ops with numpy broadcasting, expressed by strides: for every output index
// (i_0..i_{r-1}) over out_shape, out[flat] = a[sum i_k*a_strides[k]] OP b[sum i_k*b_strides[k]]
// (a broadcast dimension has stride 0). The output is contiguous. out may alias a or b when
// that input has the output's shape (contiguous strides).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"
#include "kernels/tensor_shape.h"

namespace convoy::kernels {

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow };

struct BinaryParams {
  BinaryOp op = BinaryOp::kAdd;
  Dims out_shape;
  Dims a_strides, b_strides;
};
void binary(const BinaryParams& p, const float* a, const float* b, float* out, const Parallel& par);

}  // namespace convoy::kernels

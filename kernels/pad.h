// N-D Pad (ONNX Pad modes). pads_begin/pads_end may be negative (cropping), out_shape[k] =
// in_shape[k] + pads_begin[k] + pads_end[k] > 0. reflect: mirror without repeating the edge
// (requires pad < dim); edge: repeat the border value; constant: fill with value.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"
#include "kernels/tensor_shape.h"

namespace convoy::kernels {

enum class PadMode : uint8_t { kConstant, kReflect, kEdge };

struct PadParams {
  Dims in_shape, out_shape;
  Dims pads_begin;
  PadMode mode = PadMode::kConstant;
  float value = 0.f;
};
void pad(const PadParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels

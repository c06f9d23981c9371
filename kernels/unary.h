// Elementwise unary ops. In-place (in == out) is allowed.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"

namespace convoy::kernels {

enum class UnaryOp : uint8_t {
  kCopy,       // y = x
  kRelu,       // max(x, 0)
  kLeakyRelu,  // x >= 0 ? x : alpha * x
  kClip,       // min(max(x, alpha), beta)
  kSigmoid,    // 1 / (1 + exp(-x))
  kTanh,
  kExp,
  kNeg,
  kAbs,
  kSqrt,
};

struct UnaryParams {
  size_t count = 0;
  UnaryOp op = UnaryOp::kCopy;
  float alpha = 0.f, beta = 0.f;
};
void unary(const UnaryParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels

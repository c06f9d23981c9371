// Backward of elementwise activations and of training-mode Dropout. In-place (dx == dy) allowed.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"

namespace convoy::kernels {

// dx = dy * f'(.) where the derivative is read from the forward OUTPUT y (so the input need not
// be kept): Relu: y > 0; LeakyRelu (alpha > 0): y > 0 ? 1 : alpha. At 0 the derivative is 0
// for Relu and alpha for LeakyRelu, as in PyTorch.
enum class ActGradKind : uint8_t { kRelu, kLeakyRelu };
struct ActGradParams {
  size_t count = 0;
  ActGradKind kind = ActGradKind::kRelu;
  float alpha = 0.f;
};
void activation_backward(const ActGradParams& p, const float* y, const float* dy, float* dx, const Parallel& par);

// Inverted dropout, training mode: keep element i with probability 1 - ratio; y = x * mask with
// mask[i] = keep ? 1/(1-ratio) : 0. The keep decision is a pure function of (seed, i) (a
// counter-based hash), so it does not depend on threads or call order. mask may be null when
// the caller does not need it; backward: dx = dy * mask.
struct DropoutParams {
  size_t count = 0;
  float ratio = 0.5f;
  uint64_t seed = 0;
};
void dropout_forward(const DropoutParams& p, const float* x, float* y, float* mask, const Parallel& par);
void dropout_backward(size_t count, const float* dy, const float* mask, float* dx, const Parallel& par);

}  // namespace convoy::kernels

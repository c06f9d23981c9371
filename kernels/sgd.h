// SGD with momentum and weight decay, PyTorch torch.optim.SGD semantics (dampening 0, no
// Nesterov), on one parameter tensor:
//   g = grad + weight_decay * w
//   v = momentum * v + g        (v starts at zero, so the first step gives v = g as in PyTorch)
//   w = w - lr * v
#pragma once
#include <cstddef>

#include "kernels/parallel.h"

namespace convoy::kernels {

struct SgdParams {
  size_t count = 0;
  float lr = 0.01f, momentum = 0.9f, weight_decay = 5e-4f;
};
void sgd_step(const SgdParams& p, float* w, const float* grad, float* velocity, const Parallel& par);

}  // namespace convoy::kernels

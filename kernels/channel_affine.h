// Per-channel affine transform, NC(HW): y[n,c,i] = x[n,c,i] * scale[c] + shift[c], then an
// optional activation. Used for inference BatchNormalization that could not be folded into a
// convolution (scale/shift are precomputed at plan time). In-place allowed.
#pragma once
#include <cstddef>

#include "kernels/activation.h"
#include "kernels/parallel.h"

namespace convoy::kernels {

struct ChannelAffineParams {
  size_t N = 1, C = 0, HW = 1;
  Activation act = Activation::kNone;
  float alpha = 0.f, beta = 0.f;
};
void channel_affine(const ChannelAffineParams& p, const float* in, const float* scale, const float* shift,
                    float* out, const Parallel& par);

}  // namespace convoy::kernels

// Backward of the 2-D convolution (kernels/conv2d.h), NCHW float32, groups, stride, asymmetric
// padding, dilation. Same Conv2dParams as the forward pass; p.ep is ignored (the activation's
// and the bias's gradients are separate kernels). Weights are in the ONNX layout
// [M, C/group, KH, KW] (never the packed one).
// Work is split over output tiles only (never over a reduction), so results do not depend on
// the thread count.
#pragma once
#include <cstddef>

#include "kernels/conv2d.h"
#include "kernels/parallel.h"

namespace convoy::kernels {

// dx[N,C,H,W] = d(loss)/d(in): the "transposed convolution" of dy with the weights
// (W^T * dy per image and group, then col2im). dx is overwritten.
size_t conv2d_backward_data_scratch_floats(const Conv2dParams& p, size_t threads);
void conv2d_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx, float* scratch,
                          const Parallel& par);

// dw[M, C/group, KH, KW] = sum over images of dy * im2col(x)^T. Overwrites dw, or adds to it
// when `accumulate` is true (gradient accumulation over micro-batches).
size_t conv2d_backward_weight_scratch_floats(const Conv2dParams& p, size_t threads);
void conv2d_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw, bool accumulate,
                            float* scratch, const Parallel& par);

}  // namespace convoy::kernels

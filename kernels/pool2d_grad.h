// Backward of 2-D max/average pooling and global average pooling (kernels/pool2d.h semantics:
// ONNX windows, dilation, asymmetric pads, ceil mode via OH/OW, count_include_pad).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/parallel.h"
#include "kernels/pool2d.h"

namespace convoy::kernels {

// Max pooling forward that also records, for each output, the flat index h*W + w of the chosen
// input element within its (n, c) plane (first maximum in window order on ties, as PyTorch), or
// -1 for a window entirely in the padding (its output is the lowest float, as pool2d; it passes
// no gradient). argmax is int32 [N, C, OH, OW] (it may live in float-sized arena slots).
void maxpool2d_forward_argmax(const Pool2dParams& p, const float* in, float* out, int32_t* argmax,
                              const Parallel& par);
// dx[N,C,H,W] = scatter-add of dy to the recorded argmax positions (-1: none); dx is overwritten.
void maxpool2d_backward(const Pool2dParams& p, const float* dy, const int32_t* argmax, float* dx,
                        const Parallel& par);
// dx of average pooling (same divisor rule as the forward); dx is overwritten.
void avgpool2d_backward(const Pool2dParams& p, const float* dy, float* dx, const Parallel& par);
// dx[nc, i] = dy[nc] / HW.
void global_avgpool_backward(const GlobalPoolParams& p, const float* dy, float* dx, const Parallel& par);

}  // namespace convoy::kernels

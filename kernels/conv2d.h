// 2-D convolution, NCHW, float32, groups + dilation + asymmetric pads, fused epilogue.
// Input [N, C, H, W], weights [M, C/group, KH, KW] (ONNX layout), output [N, M, OH, OW].
// The planner computes OH/OW and checks every precondition; the kernel trusts them.
// 1-D convolutions are lowered as H = KH = 1.
#pragma once
#include <cstddef>

#include "kernels/activation.h"
#include "kernels/parallel.h"

namespace convoy::kernels {

struct Conv2dParams {
  size_t N = 1, C = 0, H = 0, W = 0;
  size_t M = 0, OH = 0, OW = 0;
  size_t KH = 1, KW = 1;
  size_t group = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0;  // bottom/right pads are implied by OH/OW
  size_t dil_h = 1, dil_w = 1;
  Epilogue ep;  // ep.bias: [M] or nullptr; ep.residual: [N, M, OH, OW] or nullptr
};

// Packed weights are made once at plan time: per group, the weight matrix in the GEMM's
// packed-A panel layout (kernels/gemm.h; it depends on the SIMD target chosen at run time, so
// pack and run in the same process). Depthwise weights keep the ONNX layout.
size_t conv2d_packed_weight_floats(const Conv2dParams& p);
// True when the packed layout is the ONNX layout itself (depthwise): the planner then hands
// conv2d the model's weights directly instead of holding a second copy.
bool conv2d_packing_is_identity(const Conv2dParams& p);
void pack_conv2d_weights(const Conv2dParams& p, const float* w, float* packed);
// The inverse of pack_conv2d_weights: the ONNX-layout weights back, bit for bit.
void unpack_conv2d_weights(const Conv2dParams& p, const float* packed, float* w);
size_t conv2d_scratch_floats(const Conv2dParams& p, size_t threads);
// ep.bias/ep.residual are read from p.ep.
void conv2d(const Conv2dParams& p, const float* in, const float* w_packed, float* out, float* scratch,
            const Parallel& par);

}  // namespace convoy::kernels

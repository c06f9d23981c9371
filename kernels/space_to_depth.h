// A strided convolution as a stride-1 one ("space to depth"), so that a large-kernel strided conv
// (AlexNet's first: 11x11, stride 4, 3 -> 64 channels; a ResNet stem: 7x7, stride 2) can take the
// Winograd kernel.
//
// With stride (Sh, Sw), write kh = Sh a + s and kw = Sw b + t. Then
//   out[m][y][x] = sum_{c, kh, kw} w[m][c][kh][kw] in_pad[c][Sh y + kh][Sw x + kw]
//                = sum_{(c, s, t), a, b} w'[m][(c, s, t)][a][b] D[(c, s, t)][y + a][x + b]
// with D[(c, s, t)][i][j] = in_pad[c][Sh i + s][Sw j + t] (the padded input cut into Sh Sw phases:
// C Sh Sw channels of an (OH + KH' - 1) x (OW + KW' - 1) map) and w' the weights cut the same way
// into KH' x KW' = ceil(KH / Sh) x ceil(KW / Sw) kernels, zero where Sh a + s >= KH or Sw b + t >= KW.
// Only taps with zero weights ever read past the padded input (the output size's floor): those
// read zeros. The cost: C' KH' KW' = C Sh Sw ceil(KH/Sh) ceil(KW/Sw) taps instead of C KH KW (AlexNet:
// 48 x 9 = 432 against 363), then Winograd F(4x4, 3x3) does 4x fewer multiplies than that.
//
// Measured on AlexNet /features/features.0/Conv (224x224, pad 2, 55x55 output, Relu; the
// rewritten conv is 48 -> 64 channels, 3x3 on a 57x57 map, F(4x4, 3x3)): 1.60 -> 0.94 ms at 1
// thread, 0.92 -> 0.61 at 2 (runtime/ops/conv.cpp). Making D is a plain strided copy (~7%).
#pragma once
#include <cstddef>

#include "kernels/conv2d.h"

namespace convoy::kernels {

// Strided (Sh or Sw >= 2), dilation 1, group 1.
bool space_to_depth_applicable(const Conv2dParams& p);

// The equivalent stride-1 convolution of D: C Sh Sw input channels, KH' x KW' kernel, no pads,
// the same N, M, OH, OW and epilogue.
Conv2dParams space_to_depth_params(const Conv2dParams& p);

// Floats of D for a batch (N C' H' W' of space_to_depth_params(p)).
size_t space_to_depth_input_floats(const Conv2dParams& p);

// D from the NCHW input `in`, pads as zeros; tasks over the planes of D.
void space_to_depth_input(const Conv2dParams& p, const float* in, float* d, const Parallel& par);

// w' ([M][C Sh Sw][KH'][KW'], zeros past KH/KW) from the ONNX weights w ([M][C][KH][KW]), and
// back (bit for bit: a rearrangement).
void space_to_depth_weights(const Conv2dParams& p, const float* w, float* w_s2d);
void space_to_depth_weights_back(const Conv2dParams& p, const float* w_s2d, float* w);

}  // namespace convoy::kernels

// The shape of a conv kernel test case, shared by the conv tests' case tables: ONNX Conv terms in
// the tables' column order, its Conv2dParams (output size by ONNX's floor rule) and a one-line
// description for INFO(). Cases that also carry an epilogue are ConvEpilogueCase, written flat
// (brace elision): {N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw, bias, residual,
// act}.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

#include "kernels/conv2d.h"

namespace convoy::kernel_test {

struct ConvShape {
  size_t N, C, H, W, M, KH, KW, group;
  size_t sh, sw, pt, pl, pb, pr, dh, dw;  // strides, pads (top, left, bottom, right), dilations
};

inline kernels::Conv2dParams conv_params(const ConvShape& s) {
  kernels::Conv2dParams p;
  p.N = s.N;
  p.C = s.C;
  p.H = s.H;
  p.W = s.W;
  p.M = s.M;
  p.KH = s.KH;
  p.KW = s.KW;
  p.group = s.group;
  p.stride_h = s.sh;
  p.stride_w = s.sw;
  p.pad_top = s.pt;
  p.pad_left = s.pl;
  p.dil_h = s.dh;
  p.dil_w = s.dw;
  p.OH = (s.H + s.pt + s.pb - ((s.KH - 1) * s.dh + 1)) / s.sh + 1;
  p.OW = (s.W + s.pl + s.pr - ((s.KW - 1) * s.dw + 1)) / s.sw + 1;
  return p;
}

inline std::string describe(const ConvShape& s) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "N=%zu C=%zu H=%zu W=%zu M=%zu K=%zux%zu g=%zu s=%zu,%zu pads=%zu,%zu,%zu,%zu dil=%zu,%zu",
                s.N, s.C, s.H, s.W, s.M, s.KH, s.KW, s.group, s.sh, s.sw, s.pt, s.pl, s.pb, s.pr, s.dh, s.dw);
  return buf;
}

// With the epilogue a case asks for.
inline std::string describe(const ConvShape& s, bool bias, bool residual, kernels::Activation act) {
  return describe(s) + " bias=" + std::to_string(bias) + " res=" + std::to_string(residual) +
         " act=" + std::to_string(static_cast<int>(act));
}

struct ConvEpilogueCase : ConvShape {
  bool bias, residual;
  kernels::Activation act;
};

inline std::string describe(const ConvEpilogueCase& c) { return describe(c, c.bias, c.residual, c.act); }

}  // namespace convoy::kernel_test

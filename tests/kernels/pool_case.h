// A pooling test case in ONNX terms and the kernel parameters it gives (shared by the forward
// and backward pooling tests).
#pragma once
#include <cstddef>

#include "kernels/pool2d.h"

namespace convoy::test {

// ONNX output size: floor or ceil of (in + pads - dilated kernel) / stride, + 1.
inline size_t onnx_out(size_t in, size_t pb, size_t pe, size_t k, size_t s, size_t dil, bool ceil_mode) {
  const size_t num = in + pb + pe - ((k - 1) * dil + 1);
  return (ceil_mode ? (num + s - 1) / s : num / s) + 1;
}

struct PoolCase {
  size_t N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw;
  bool ceil_mode;
};

inline kernels::Pool2dParams pool_params(const PoolCase& cs, kernels::PoolKind kind, bool count_include_pad) {
  kernels::Pool2dParams p;
  p.N = cs.N;
  p.C = cs.C;
  p.H = cs.H;
  p.W = cs.W;
  p.KH = cs.KH;
  p.KW = cs.KW;
  p.stride_h = cs.sh;
  p.stride_w = cs.sw;
  p.pad_top = cs.pt;
  p.pad_left = cs.pl;
  p.pad_bottom = cs.pb;
  p.pad_right = cs.pr;
  p.dil_h = cs.dh;
  p.dil_w = cs.dw;
  p.kind = kind;
  p.count_include_pad = count_include_pad;
  p.OH = onnx_out(cs.H, cs.pt, cs.pb, cs.KH, cs.sh, cs.dh, cs.ceil_mode);
  p.OW = onnx_out(cs.W, cs.pl, cs.pr, cs.KW, cs.sw, cs.dw, cs.ceil_mode);
  return p;
}

}  // namespace convoy::test

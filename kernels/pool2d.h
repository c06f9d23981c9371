// 2-D max/average pooling, NCHW, and global pooling. 1-D pools are lowered as H = KH = 1.
// ONNX semantics: windows start at o*stride - pad_begin with dilation; positions outside the
// input are skipped by max pooling. Average pooling divides by the count of in-input elements
// (count_include_pad = 0) or by the count of elements inside the padded input
// [-pad_begin, H + pad_end) (count_include_pad = 1; with ceil_mode a window may reach past
// the padded input, those positions are not counted), as ONNX Runtime and PyTorch do.
#pragma once
#include <cstddef>

#include "kernels/parallel.h"

namespace convoy::kernels {

enum class PoolKind { kMax, kAvg };

struct Pool2dParams {
  size_t N = 1, C = 0, H = 0, W = 0, OH = 0, OW = 0;
  size_t KH = 1, KW = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  size_t dil_h = 1, dil_w = 1;
  PoolKind kind = PoolKind::kMax;
  bool count_include_pad = false;
};
void pool2d(const Pool2dParams& p, const float* in, float* out, const Parallel& par);

// in [NC, HW] -> out [NC]
struct GlobalPoolParams {
  size_t NC = 0, HW = 0;
  PoolKind kind = PoolKind::kAvg;
};
void global_pool(const GlobalPoolParams& p, const float* in, float* out, const Parallel& par);

}  // namespace convoy::kernels

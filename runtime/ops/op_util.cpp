#include "runtime/ops/op_util.h"

#include <cstring>

namespace convoy::ops {

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

Shape broadcast_shapes(const OpContext& ctx, const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() >= r ? a[k + a.size() - r] : 1;
    const int64_t db = k + b.size() >= r ? b[k + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      ctx.fail(str_cat("shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast"));
    out[k] = da == 1 ? db : da;
  }
  return out;
}

kernels::Dims broadcast_strides(const Shape& in, const Shape& out) {
  kernels::Dims d;
  d.rank = out.size();
  const Shape st = contiguous_strides(in);
  for (size_t k = 0; k < out.size(); ++k) {
    const size_t off = out.size() - in.size();
    if (k < off) { d.d[k] = 0; continue; }
    d.d[k] = in[k - off] == 1 ? 0 : st[k - off];
  }
  return d;
}

kernels::Dims to_dims(const OpContext& ctx, const Shape& s) {
  if (s.size() > kernels::kMaxRank) ctx.fail(str_cat("rank ", s.size(), " exceeds convoy's limit of ", kernels::kMaxRank));
  kernels::Dims d;
  d.rank = s.size();
  for (size_t k = 0; k < s.size(); ++k) d.d[k] = s[k];
  return d;
}

std::vector<SpatialAxis> spatial_geometry(const OpContext& ctx, const Shape& in, const std::vector<int64_t>& kernel,
                                          const std::vector<int64_t>& strides, const std::vector<int64_t>& dil,
                                          bool ceil_mode) {
  const size_t n = in.size();
  std::vector<SpatialAxis> g(n);
  const std::string auto_pad = ctx.attr_str("auto_pad", "NOTSET");
  std::vector<int64_t> pads = ctx.attr_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (pads.size() != 2 * n) ctx.fail(str_cat("pads has ", pads.size(), " values, expected ", 2 * n));
  for (size_t k = 0; k < n; ++k) {
    if (kernel[k] <= 0) ctx.fail(str_cat("kernel size ", kernel[k], " must be positive"));
    if (strides[k] <= 0) ctx.fail(str_cat("stride ", strides[k], " must be positive"));
    if (dil[k] <= 0) ctx.fail(str_cat("dilation ", dil[k], " must be positive"));
    const int64_t eff = (kernel[k] - 1) * dil[k] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = (in[k] + strides[k] - 1) / strides[k];
      const int64_t total = std::max<int64_t>(0, (out - 1) * strides[k] + eff - in[k]);
      g[k].out = out;
      g[k].pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g[k].pad_end = total - g[k].pad_begin;
      continue;
    }
    if (auto_pad == "VALID") {
      g[k].pad_begin = g[k].pad_end = 0;
    } else if (auto_pad == "NOTSET" || auto_pad.empty()) {
      g[k].pad_begin = pads[k];
      g[k].pad_end = pads[k + n];
      if (pads[k] < 0 || pads[k + n] < 0) ctx.fail("negative pads are not supported");
    } else {
      ctx.fail(str_cat("unknown auto_pad '", auto_pad, "'"));
    }
    const int64_t span = in[k] + g[k].pad_begin + g[k].pad_end - eff;
    if (span < 0)
      ctx.fail(str_cat("kernel extent ", eff, " is larger than the padded input (", in[k] + g[k].pad_begin + g[k].pad_end,
                       ") on spatial axis ", k));
    int64_t out = ceil_mode ? (span + strides[k] - 1) / strides[k] + 1 : span / strides[k] + 1;
    // PyTorch/ONNX: the last window must start inside the input or the begin padding.
    if (ceil_mode && (out - 1) * strides[k] >= in[k] + g[k].pad_begin) --out;
    g[k].out = out;
  }
  return g;
}

std::shared_ptr<ConstTensor> const_strided(const ConstTensor& src, const Shape& out_shape, const Shape& src_strides,
                                           int64_t src_offset) {
  auto out = ConstTensor::make(src.dtype, out_shape);
  const size_t es = dtype_size(src.dtype);
  const int64_t n = out->numel();
  const size_t r = out_shape.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t j = 0; j < n; ++j) {
    int64_t off = src_offset;
    for (size_t k = 0; k < r; ++k) off += idx[k] * src_strides[k];
    std::memcpy(out->bytes.data() + static_cast<size_t>(j) * es, src.bytes.data() + static_cast<size_t>(off) * es, es);
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

}  // namespace convoy::ops

// MaxPool, AveragePool (1-D and 2-D), GlobalAveragePool, GlobalMaxPool.
#include "kernels/pool2d.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

kernels::Pool2dParams pool2d_params(const OpContext& c, kernels::PoolKind kind, Shape* out_shape) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  if (x.size() != 3 && x.size() != 4)
    c.fail(str_cat("input rank ", x.size(), " not supported: convoy pools 1-D and 2-D maps (rank 3 or 4)"));
  if (c.output_used(1)) c.fail("the Indices output of MaxPool is not supported");
  const size_t ns = x.size() - 2;
  const auto kernel = c.attr_ints("kernel_shape");
  if (kernel.size() != ns) c.fail(str_cat("kernel_shape must have ", ns, " values"));
  const auto strides = c.attr_ints("strides", std::vector<int64_t>(ns, 1));
  const auto dil = c.attr_ints("dilations", std::vector<int64_t>(ns, 1));
  if (strides.size() != ns || dil.size() != ns) c.fail("strides/dilations have the wrong length");
  if (c.attr_int("storage_order", 0) != 0) c.fail("storage_order 1 is not supported");
  const bool ceil_mode = c.attr_int("ceil_mode", 0) != 0;
  const Shape spatial(x.begin() + 2, x.end());
  const auto geo = spatial_geometry(c, spatial, kernel, strides, dil, ceil_mode);
  kernels::Pool2dParams p;
  const bool two = ns == 2;
  p.N = static_cast<size_t>(x[0]);
  p.C = static_cast<size_t>(x[1]);
  p.H = two ? static_cast<size_t>(x[2]) : 1;
  p.W = static_cast<size_t>(x.back());
  p.KH = two ? static_cast<size_t>(kernel[0]) : 1;
  p.KW = static_cast<size_t>(kernel.back());
  p.stride_h = two ? static_cast<size_t>(strides[0]) : 1;
  p.stride_w = static_cast<size_t>(strides.back());
  p.dil_h = two ? static_cast<size_t>(dil[0]) : 1;
  p.dil_w = static_cast<size_t>(dil.back());
  p.pad_top = two ? static_cast<size_t>(geo[0].pad_begin) : 0;
  p.pad_bottom = two ? static_cast<size_t>(geo[0].pad_end) : 0;
  p.pad_left = static_cast<size_t>(geo.back().pad_begin);
  p.pad_right = static_cast<size_t>(geo.back().pad_end);
  p.OH = two ? static_cast<size_t>(geo[0].out) : 1;
  p.OW = static_cast<size_t>(geo.back().out);
  p.kind = kind;
  p.count_include_pad = c.attr_int("count_include_pad", 0) != 0;
  if (p.OH == 0 || p.OW == 0) c.fail("output would be empty");
  if (out_shape) {
    *out_shape = {x[0], x[1]};
    for (const auto& g : geo) out_shape->push_back(g.out);
  }
  return p;
}

namespace {

void plan_pool(OpContext& c, kernels::PoolKind kind, const char* name) {
  Shape out_shape;
  const kernels::Pool2dParams p = pool2d_params(c, kind, &out_shape);
  TensorLoc out = c.set_tensor(0, out_shape);
  c.emit(name, {c.loc(0)}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::pool2d(p, a.in[0], a.out[0], par); }, 0,
         static_cast<double>(p.N * p.C * p.OH * p.OW * p.KH * p.KW));
}

void plan_global(OpContext& c, kernels::PoolKind kind, const char* name) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.fail(str_cat("input rank ", x.size(), " is below 3"));
  kernels::GlobalPoolParams p;
  p.NC = static_cast<size_t>(x[0] * x[1]);
  p.HW = 1;
  Shape out_shape = {x[0], x[1]};
  for (size_t k = 2; k < x.size(); ++k) {
    p.HW *= static_cast<size_t>(x[k]);
    out_shape.push_back(1);
  }
  p.kind = kind;
  TensorLoc out = c.set_tensor(0, out_shape);
  c.emit(name, {c.loc(0)}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::global_pool(p, a.in[0], a.out[0], par); }, 0,
         static_cast<double>(p.NC * p.HW));
}

}  // namespace

void plan_max_pool(OpContext& c) { plan_pool(c, kernels::PoolKind::kMax, "MaxPool"); }
void plan_average_pool(OpContext& c) { plan_pool(c, kernels::PoolKind::kAvg, "AveragePool"); }
void plan_global_average_pool(OpContext& c) { plan_global(c, kernels::PoolKind::kAvg, "GlobalAveragePool"); }
void plan_global_max_pool(OpContext& c) { plan_global(c, kernels::PoolKind::kMax, "GlobalMaxPool"); }

}  // namespace convoy::ops

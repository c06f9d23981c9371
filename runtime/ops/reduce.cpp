// ReduceMean (any axes; keepdims). Non-adjacent reduced axes are moved last by a transpose.
#include <algorithm>

#include "kernels/reduce.h"
#include "kernels/strided_copy.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

void plan_reduce_mean(OpContext& c) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes = c.opset() < 18 ? c.attr_ints("axes") : (c.has_input(1) ? c.const_ints(1, "axes") : std::vector<int64_t>{});
  const bool keep = c.attr_int("keepdims", 1) != 0;
  if (axes.empty())
    for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  for (int64_t& a : axes) a = c.axis(a, r);
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  std::vector<bool> red(static_cast<size_t>(r), false);
  for (int64_t a : axes) red[static_cast<size_t>(a)] = true;
  Shape out_shape;
  for (int64_t k = 0; k < r; ++k) {
    if (!red[static_cast<size_t>(k)]) out_shape.push_back(x[static_cast<size_t>(k)]);
    else if (keep) out_shape.push_back(1);
  }
  kernels::ReduceParams p;
  p.kind = kernels::ReduceKind::kMean;
  const bool adjacent = axes.back() - axes.front() + 1 == static_cast<int64_t>(axes.size());
  TensorLoc src = c.loc(0);
  if (adjacent) {
    p.outer = p.len = p.inner = 1;
    for (int64_t k = 0; k < r; ++k) {
      const size_t d = static_cast<size_t>(x[static_cast<size_t>(k)]);
      if (k < axes.front()) p.outer *= d;
      else if (k <= axes.back()) p.len *= d;
      else p.inner *= d;
    }
  } else {
    // Kept axes first, reduced axes last, then reduce the trailing block.
    Shape perm_shape, perm_strides;
    const Shape st = contiguous_strides(x);
    p.outer = p.len = 1;
    p.inner = 1;
    for (int64_t k = 0; k < r; ++k)
      if (!red[static_cast<size_t>(k)]) { perm_shape.push_back(x[static_cast<size_t>(k)]); perm_strides.push_back(st[static_cast<size_t>(k)]); p.outer *= static_cast<size_t>(x[static_cast<size_t>(k)]); }
    for (int64_t k = 0; k < r; ++k)
      if (red[static_cast<size_t>(k)]) { perm_shape.push_back(x[static_cast<size_t>(k)]); perm_strides.push_back(st[static_cast<size_t>(k)]); p.len *= static_cast<size_t>(x[static_cast<size_t>(k)]); }
    kernels::StridedCopyParams cp;
    cp.shape = to_dims(c, perm_shape);
    cp.src_strides = to_dims(c, perm_strides);
    cp.dst_strides = to_dims(c, contiguous_strides(perm_shape));
    TensorLoc t = c.temp(p.outer * p.len);
    c.emit("ReduceMean.Transpose", {src}, {t},
           [cp](const StepArgs& a, const kernels::Parallel& par) { kernels::strided_copy(cp, a.in[0], a.out[0], par); });
    src = t;
  }
  TensorLoc out = c.set_tensor(0, out_shape);
  c.emit("ReduceMean", {src}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::reduce(p, a.in[0], a.out[0], par); }, 0,
         static_cast<double>(p.outer * p.len * p.inner));
}

}  // namespace convoy::ops

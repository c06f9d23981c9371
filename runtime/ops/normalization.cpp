// BatchNormalization (inference), LRN, Softmax, LogSoftmax.
#include <cmath>
#include <memory>

#include "kernels/channel_affine.h"
#include "kernels/lrn.h"
#include "kernels/softmax.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

void plan_batch_norm(OpContext& c) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  if (x.size() < 2) c.fail("input must have rank >= 2");
  if (c.attr_int("training_mode", 0) != 0 || c.num_outputs() > 1)
    c.fail("training-mode BatchNormalization (running statistics outputs) is not supported; export in eval mode");
  const int64_t C = x[1];
  for (size_t i = 1; i < 5; ++i) {
    c.require_float(i);
    if (c.shape(i) != Shape{C}) c.fail(str_cat("input #", i, " has shape ", shape_str(c.shape(i)), ", expected [", C, "]"));
  }
  const float eps = c.attr_float("epsilon", 1e-5f);
  kernels::ChannelAffineParams p;
  p.N = static_cast<size_t>(x[0]);
  p.C = static_cast<size_t>(C);
  p.HW = 1;
  for (size_t k = 2; k < x.size(); ++k) p.HW *= static_cast<size_t>(x[k]);
  float alpha = 0, beta = 0;
  p.act = fused_activation(c, &alpha, &beta);
  p.alpha = alpha;
  p.beta = beta;
  // scale = gamma / sqrt(var + eps), shift = beta - mean * scale; [2C] = scale then shift.
  auto fold = [eps](size_t n, const float* g, const float* b, const float* m, const float* v, float* out) {
    for (size_t k = 0; k < n; ++k) {
      const double s = static_cast<double>(g[k]) / std::sqrt(static_cast<double>(v[k]) + eps);
      out[k] = static_cast<float>(s);
      out[n + k] = static_cast<float>(static_cast<double>(b[k]) - static_cast<double>(m[k]) * s);
    }
  };
  TensorLoc ss;
  const size_t n = static_cast<size_t>(C);
  if (c.is_const(1) && c.is_const(2) && c.is_const(3) && c.is_const(4)) {
    auto v = std::make_shared<std::vector<float>>(2 * n);
    fold(n, c.const_input(1, "scale").f32(), c.const_input(2, "B").f32(), c.const_input(3, "mean").f32(),
         c.const_input(4, "var").f32(), v->data());
    ss = c.keep_const(std::move(v));
  } else {
    ss = c.temp(2 * n);
    c.emit("BatchNormParams", {c.loc(1), c.loc(2), c.loc(3), c.loc(4)}, {ss},
           [fold, n](const StepArgs& a, const kernels::Parallel&) { fold(n, a.in[0], a.in[1], a.in[2], a.in[3], a.out[0]); });
  }
  TensorLoc out = c.set_tensor(0, x);
  c.emit("BatchNormalization", {c.loc(0), ss}, {out},
         [p, n](const StepArgs& a, const kernels::Parallel& par) {
           kernels::channel_affine(p, a.in[0], a.in[1], a.in[1] + n, a.out[0], par);
         },
         0, 2.0 * static_cast<double>(p.N * p.C * p.HW));
}

void plan_lrn(OpContext& c) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.fail("input must have rank >= 3");
  if (!c.has_attr("size")) c.fail("attribute 'size' is required");
  kernels::LrnParams p;
  const int64_t size = c.attr_int("size", 1);
  if (size <= 0) c.fail(str_cat("size ", size, " must be positive"));
  p.size = static_cast<size_t>(size);
  p.alpha = c.attr_float("alpha", 1e-4f);
  p.beta = c.attr_float("beta", 0.75f);
  p.bias = c.attr_float("bias", 1.f);
  p.N = static_cast<size_t>(x[0]);
  p.C = static_cast<size_t>(x[1]);
  p.HW = 1;
  for (size_t k = 2; k < x.size(); ++k) p.HW *= static_cast<size_t>(x[k]);
  TensorLoc out = c.set_tensor(0, x);
  c.emit("LRN", {c.loc(0)}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::lrn(p, a.in[0], a.out[0], par); }, 0,
         static_cast<double>(p.N * p.C * p.HW * (p.size + 4)));
}

namespace {
// Opset < 13: the input is flattened to 2-D at `axis` (default 1) and normalised over the
// second dimension. Opset >= 13: normalised along the one axis (default -1).
void plan_softmax_like(OpContext& c, bool log) {
  c.require_float(0);
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  kernels::SoftmaxParams p;
  p.log = log;
  if (c.opset() < 13) {
    const int64_t ax = r == 0 ? 0 : c.axis(c.attr_int("axis", 1), r);
    p.outer = 1;
    p.axis_len = 1;
    for (int64_t k = 0; k < r; ++k) (k < ax ? p.outer : p.axis_len) *= static_cast<size_t>(x[static_cast<size_t>(k)]);
    p.inner = 1;
  } else {
    if (r == 0) c.fail("input must have rank >= 1");
    const int64_t ax = c.axis(c.attr_int("axis", -1), r);
    p.outer = p.inner = 1;
    for (int64_t k = 0; k < r; ++k) {
      const size_t d = static_cast<size_t>(x[static_cast<size_t>(k)]);
      if (k < ax) p.outer *= d;
      else if (k == ax) p.axis_len = d;
      else p.inner *= d;
    }
  }
  TensorLoc out = c.set_tensor(0, x);
  c.emit(log ? "LogSoftmax" : "Softmax", {c.loc(0)}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::softmax(p, a.in[0], a.out[0], par); }, 0,
         4.0 * static_cast<double>(p.outer * p.axis_len * p.inner));
}
}  // namespace

void plan_softmax(OpContext& c) { plan_softmax_like(c, false); }
void plan_log_softmax(OpContext& c) { plan_softmax_like(c, true); }

}  // namespace convoy::ops

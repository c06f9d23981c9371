// Relu, LeakyRelu, Clip, Sigmoid, Tanh (unary) and Add, Sub, Mul, Div, Sum (broadcasting).
#include <cmath>
#include <limits>

#include "kernels/binary.h"
#include "kernels/unary.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {
namespace {

void plan_unary(OpContext& c, kernels::UnaryOp op, const char* name, float alpha = 0.f, float beta = 0.f) {
  c.require_float(0);
  const Shape s = c.shape(0);
  TensorLoc out = c.set_tensor(0, s);
  kernels::UnaryParams p;
  p.count = static_cast<size_t>(c.in(0).numel());
  p.op = op;
  p.alpha = alpha;
  p.beta = beta;
  c.emit(name, {c.loc(0)}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::unary(p, a.in[0], a.out[0], par); }, 0,
         static_cast<double>(p.count));
}

// Integer arithmetic on constants (shape chains): numpy broadcasting, C semantics.
std::shared_ptr<ConstTensor> int_binary(const OpContext& c, const ConstTensor& a, const ConstTensor& b, kernels::BinaryOp op) {
  const Shape out_shape = broadcast_shapes(c, a.shape, b.shape);
  const kernels::Dims sa = broadcast_strides(a.shape, out_shape), sb = broadcast_strides(b.shape, out_shape);
  const std::vector<int64_t> va = a.as_i64(), vb = b.as_i64();
  auto out = ConstTensor::make(DType::kInt64, out_shape);
  const int64_t n = out->numel();
  std::vector<int64_t> idx(out_shape.size(), 0);
  for (int64_t j = 0; j < n; ++j) {
    int64_t ia = 0, ib = 0;
    for (size_t k = 0; k < idx.size(); ++k) { ia += idx[k] * sa.d[k]; ib += idx[k] * sb.d[k]; }
    const int64_t x = va[static_cast<size_t>(ia)], y = vb[static_cast<size_t>(ib)];
    int64_t r = 0;
    switch (op) {
      case kernels::BinaryOp::kAdd: r = x + y; break;
      case kernels::BinaryOp::kSub: r = x - y; break;
      case kernels::BinaryOp::kMul: r = x * y; break;
      case kernels::BinaryOp::kDiv:
        if (y == 0) c.fail("integer division by zero in a constant expression");
        r = x / y;
        break;
      default: c.fail("unsupported integer op");
    }
    out->i64()[j] = r;
    for (size_t k = idx.size(); k-- > 0;) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

bool is_int(DType t) { return t == DType::kInt64 || t == DType::kInt32; }

// out = a OP b with broadcasting; returns the output location.
void emit_binary(OpContext& c, kernels::BinaryOp op, const char* name, const TensorLoc& la, const Shape& a,
                 const TensorLoc& lb, const Shape& b, const TensorLoc& out, const Shape& out_shape) {
  kernels::BinaryParams p;
  p.op = op;
  p.out_shape = to_dims(c, out_shape);
  p.a_strides = broadcast_strides(a, out_shape);
  p.b_strides = broadcast_strides(b, out_shape);
  int64_t n = 1;
  for (int64_t d : out_shape) n *= d;
  c.emit(name, {la, lb}, {out},
         [p](const StepArgs& s, const kernels::Parallel& par) { kernels::binary(p, s.in[0], s.in[1], s.out[0], par); }, 0,
         static_cast<double>(n));
}

void plan_binary(OpContext& c, kernels::BinaryOp op, const char* name) {
  if (c.opset() < 7 && c.has_attr("broadcast")) c.fail("legacy broadcast attribute (opset < 7) is not supported");
  const PValue& a = c.in(0);
  const PValue& b = c.in(1);
  if (a.constant && b.constant && is_int(a.dtype) && is_int(b.dtype)) {
    c.set_const(0, int_binary(c, *a.constant, *b.constant, op));
    return;
  }
  c.require_float(0);
  c.require_float(1);
  const Shape out_shape = broadcast_shapes(c, a.shape, b.shape);
  TensorLoc out = c.set_tensor(0, out_shape);
  emit_binary(c, op, name, c.loc(0), a.shape, c.loc(1), b.shape, out, out_shape);
}

}  // namespace

void plan_relu(OpContext& c) { plan_unary(c, kernels::UnaryOp::kRelu, "Relu"); }
void plan_leaky_relu(OpContext& c) {
  plan_unary(c, kernels::UnaryOp::kLeakyRelu, "LeakyRelu", c.attr_float("alpha", 0.01f));
}
void plan_sigmoid(OpContext& c) { plan_unary(c, kernels::UnaryOp::kSigmoid, "Sigmoid"); }
void plan_tanh(OpContext& c) { plan_unary(c, kernels::UnaryOp::kTanh, "Tanh"); }

// Opset < 11: min/max attributes; 11+: optional constant inputs.
void plan_clip(OpContext& c) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (c.opset() < 11) {
    lo = c.attr_float("min", lo);
    hi = c.attr_float("max", hi);
  } else {
    auto scalar = [&](size_t i, const char* what) {
      const ConstTensor& t = c.const_input(i, what);
      if (t.numel() != 1) c.fail(str_cat(what, " must be a scalar"));
      return static_cast<float>(t.as_f64()[0]);
    };
    if (c.has_input(1)) lo = scalar(1, "Clip min");
    if (c.has_input(2)) hi = scalar(2, "Clip max");
  }
  plan_unary(c, kernels::UnaryOp::kClip, "Clip", lo, hi);
}

void plan_add(OpContext& c) { plan_binary(c, kernels::BinaryOp::kAdd, "Add"); }
void plan_sub(OpContext& c) { plan_binary(c, kernels::BinaryOp::kSub, "Sub"); }
void plan_mul(OpContext& c) { plan_binary(c, kernels::BinaryOp::kMul, "Mul"); }
void plan_div(OpContext& c) { plan_binary(c, kernels::BinaryOp::kDiv, "Div"); }

void plan_sum(OpContext& c) {
  Shape out_shape = c.shape(0);
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    c.require_float(i);
    out_shape = broadcast_shapes(c, out_shape, c.shape(i));
  }
  TensorLoc out = c.set_tensor(0, out_shape);
  if (c.num_inputs() == 1) {
    kernels::UnaryParams p;  // a one-input Sum is a copy
    p.count = static_cast<size_t>(c.in(0).numel());
    c.emit("Sum", {c.loc(0)}, {out},
           [p](const StepArgs& a, const kernels::Parallel& par) { kernels::unary(p, a.in[0], a.out[0], par); });
    return;
  }
  emit_binary(c, kernels::BinaryOp::kAdd, "Sum", c.loc(0), c.shape(0), c.loc(1), c.shape(1), out, out_shape);
  for (size_t i = 2; i < c.num_inputs(); ++i)
    emit_binary(c, kernels::BinaryOp::kAdd, "Sum", out, out_shape, c.loc(i), c.shape(i), out, out_shape);
}

}  // namespace convoy::ops

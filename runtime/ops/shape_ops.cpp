// Ops that only change how data is viewed or that produce constants: Flatten, Reshape,
// Squeeze, Unsqueeze, Identity, Dropout, Cast, Shape, Constant, ConstantOfShape.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {

void plan_flatten(OpContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t ax = c.attr_int("axis", 1);
  if (ax < -r || ax > r) c.fail(str_cat("axis ", ax, " is out of range for rank ", r));
  if (ax < 0) ax += r;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < r; ++k) (k < ax ? outer : inner) *= x[static_cast<size_t>(k)];
  c.set_alias(0, 0, {outer, inner});
}

void plan_reshape(OpContext& c) {
  const Shape& x = c.shape(0);
  std::vector<int64_t> target = c.opset() < 5 ? c.attr_ints("shape") : c.const_ints(1, "target shape");
  const bool allow_zero = c.attr_int("allowzero", 0) != 0;
  int64_t known = 1;
  int infer = -1;
  for (size_t k = 0; k < target.size(); ++k) {
    int64_t& d = target[k];
    if (d == 0 && !allow_zero) {
      if (k >= x.size()) c.fail(str_cat("target shape ", shape_str(target), ": 0 at position ", k, " has no input dimension to copy"));
      d = x[k];
    }
    if (d == -1) {
      if (infer >= 0) c.fail(str_cat("target shape ", shape_str(target), " has more than one -1"));
      infer = static_cast<int>(k);
      continue;
    }
    if (d < 0) c.fail(str_cat("target shape has invalid dimension ", d));
    if (d != 0 && known > (int64_t{1} << 40) / d) c.fail("target shape has too many elements");  // before it overflows
    known = known * d;
  }
  const int64_t n = c.in(0).numel();
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      c.fail(str_cat("cannot reshape ", shape_str(x), " to ", shape_str(c.opset() < 5 ? c.attr_ints("shape") : c.const_ints(1, "shape"))));
    target[static_cast<size_t>(infer)] = n / known;
  } else if (known != n) {
    c.fail(str_cat("cannot reshape ", shape_str(x), " (", n, " elements) to ", shape_str(target)));
  }
  c.set_alias(0, 0, target);
}

namespace {
std::vector<int64_t> axes_of(const OpContext& c, size_t input, int64_t rank) {
  std::vector<int64_t> axes = c.opset() < 13 ? c.attr_ints("axes") : (c.has_input(input) ? c.const_ints(input, "axes") : std::vector<int64_t>{});
  std::set<int64_t> seen;
  for (int64_t& a : axes) {
    a = c.axis(a, rank);
    if (!seen.insert(a).second) c.fail(str_cat("axis ", a, " repeated"));
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}
}  // namespace

void plan_squeeze(OpContext& c) {
  const Shape& x = c.shape(0);
  const auto axes = axes_of(c, 1, static_cast<int64_t>(x.size()));
  Shape out;
  for (size_t k = 0; k < x.size(); ++k) {
    const bool listed = std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(k));
    if (listed && x[k] != 1) c.fail(str_cat("cannot squeeze axis ", k, " of size ", x[k]));
    if (listed || (axes.empty() && x[k] == 1)) continue;
    out.push_back(x[k]);
  }
  c.set_alias(0, 0, out);
}

void plan_unsqueeze(OpContext& c) {
  const Shape& x = c.shape(0);
  const size_t nax = (c.opset() < 13 ? c.attr_ints("axes") : c.const_ints(1, "axes")).size();
  const auto axes = axes_of(c, 1, static_cast<int64_t>(x.size() + nax));
  if (axes.empty()) c.fail("axes must not be empty");
  Shape out;
  size_t src = 0;
  for (size_t k = 0; k < x.size() + axes.size(); ++k) {
    if (std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(k))) out.push_back(1);
    else out.push_back(x[src++]);
  }
  c.set_alias(0, 0, out);
}

void plan_identity(OpContext& c) { c.set_alias(0, 0, c.shape(0)); }

// Inference: Dropout is the identity. A requested mask or training mode is refused.
void plan_dropout(OpContext& c) {
  if (c.output_used(1)) c.fail("the mask output of Dropout is not supported (inference only)");
  if (c.has_input(2)) {
    const auto t = c.const_input(2, "training_mode").as_i64();  // bool in ONNX
    if (!t.empty() && t[0] != 0) c.fail("training_mode Dropout is not supported (inference only)");
  }
  c.set_alias(0, 0, c.shape(0));
}

void plan_cast(OpContext& c) {
  const DType to = static_cast<DType>(c.attr_int("to", 0));
  if (dtype_size(to) == 0) c.fail(str_cat("cast to unsupported type ", static_cast<int>(to)));
  const PValue& x = c.in(0);
  if (x.constant) {
    const ConstTensor& src = *x.constant;
    auto out = ConstTensor::make(to, src.shape);
    const int64_t n = src.numel();
    const bool src_float = src.dtype == DType::kFloat32 || src.dtype == DType::kFloat64;
    const std::vector<double> fv = src_float ? src.as_f64() : std::vector<double>{};
    const std::vector<int64_t> iv = src_float ? std::vector<int64_t>{} : src.as_i64();
    for (int64_t i = 0; i < n; ++i) {
      const double d = src_float ? fv[static_cast<size_t>(i)] : static_cast<double>(iv[static_cast<size_t>(i)]);
      const int64_t v = src_float ? static_cast<int64_t>(d) : iv[static_cast<size_t>(i)];
      char* dst = out->bytes.data() + static_cast<size_t>(i) * dtype_size(to);
      switch (to) {
        case DType::kFloat32: { float f = static_cast<float>(d); std::memcpy(dst, &f, 4); break; }
        case DType::kFloat64: std::memcpy(dst, &d, 8); break;
        case DType::kInt64: std::memcpy(dst, &v, 8); break;
        case DType::kInt32: { int32_t w = static_cast<int32_t>(v); std::memcpy(dst, &w, 4); break; }
        case DType::kBool: *dst = (src_float ? d != 0.0 : v != 0) ? 1 : 0; break;
        case DType::kUInt8: case DType::kInt8: *dst = static_cast<char>(v); break;
        default: c.fail(str_cat("cast of a constant to ", dtype_name(to), " is not supported"));
      }
    }
    c.set_const(0, out);
    return;
  }
  if (x.dtype != DType::kFloat32 || to != DType::kFloat32)
    c.fail(str_cat("cast of a run-time ", dtype_name(x.dtype), " tensor to ", dtype_name(to),
                   " is not supported; convoy runs float32 tensors"));
  c.set_alias(0, 0, x.shape);
}

void plan_shape(OpContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t start = c.attr_int("start", 0), end = c.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> v;
  for (int64_t k = start; k < end; ++k) v.push_back(x[static_cast<size_t>(k)]);
  c.set_const(0, ConstTensor::from_i64({static_cast<int64_t>(v.size())}, v));
}

void plan_constant(OpContext& c) {
  if (const ConstTensor* t = c.attr_tensor("value")) {
    c.set_const(0, std::make_shared<ConstTensor>(*t));
  } else if (c.has_attr("value_float")) {
    c.set_const(0, ConstTensor::from_f32({}, {c.attr_float("value_float", 0)}));
  } else if (c.has_attr("value_floats")) {
    const auto v = c.attr_floats("value_floats");
    c.set_const(0, ConstTensor::from_f32({static_cast<int64_t>(v.size())}, v));
  } else if (c.has_attr("value_int")) {
    c.set_const(0, ConstTensor::from_i64({}, {c.attr_int("value_int", 0)}));
  } else if (c.has_attr("value_ints")) {
    const auto v = c.attr_ints("value_ints");
    c.set_const(0, ConstTensor::from_i64({static_cast<int64_t>(v.size())}, v));
  } else {
    c.fail("Constant needs one of value, value_float(s), value_int(s) (sparse and string values are not supported)");
  }
}

void plan_constant_of_shape(OpContext& c) {
  const auto dims = c.const_ints(0, "shape");
  for (int64_t d : dims)
    if (d < 0) c.fail(str_cat("negative dimension ", d, " in shape"));
  const ConstTensor* v = c.attr_tensor("value");
  const DType t = v ? v->dtype : DType::kFloat32;
  if (v && v->numel() != 1) c.fail("value must hold exactly one element");
  auto out = ConstTensor::make(t, Shape(dims.begin(), dims.end()));
  const size_t es = dtype_size(t);
  for (int64_t i = 0; v && i < out->numel(); ++i) std::memcpy(out->bytes.data() + static_cast<size_t>(i) * es, v->bytes.data(), es);
  c.set_const(0, out);
}

}  // namespace convoy::ops

// Data movement: Transpose, Concat, Slice, Gather, Pad. Constants of any dtype (shape chains)
// are evaluated here; float32 run-time tensors get strided-copy / gather / pad steps.
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/gather.h"
#include "kernels/pad.h"
#include "kernels/strided_copy.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/ops.h"

namespace convoy::ops {
namespace {

// Emits out = src viewed through (shape, src_strides, src_offset), or folds it for constants.
void strided_output(OpContext& c, const char* name, const Shape& out_shape, const Shape& src_strides, int64_t src_offset) {
  const PValue& x = c.in(0);
  if (x.constant) {
    c.set_const(0, const_strided(*x.constant, out_shape, src_strides, src_offset));
    return;
  }
  c.require_float(0);
  const int64_t n = checked_numel(out_shape, c.where());
  if (n == 0) c.fail(str_cat("empty output ", shape_str(out_shape), " is not supported"));
  TensorLoc out = c.set_tensor(0, out_shape);
  kernels::StridedCopyParams p;
  p.shape = to_dims(c, out_shape);
  p.src_strides = to_dims(c, src_strides);
  p.dst_strides = to_dims(c, contiguous_strides(out_shape));
  TensorLoc in = c.loc(0);
  in.elem_offset += static_cast<size_t>(src_offset);
  c.emit(name, {in}, {out},
         [p](const StepArgs& a, const kernels::Parallel& par) { kernels::strided_copy(p, a.in[0], a.out[0], par); });
}

}  // namespace

void plan_transpose(OpContext& c) {
  const Shape& x = c.shape(0);
  const size_t r = x.size();
  std::vector<int64_t> perm = c.attr_ints("perm");
  if (perm.empty())
    for (size_t k = 0; k < r; ++k) perm.push_back(static_cast<int64_t>(r - 1 - k));
  if (perm.size() != r) c.fail(str_cat("perm has ", perm.size(), " entries for rank ", r));
  std::vector<bool> seen(r, false);
  const Shape st = contiguous_strides(x);
  Shape out_shape(r), src_strides(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t p = perm[k];
    if (p < 0 || p >= static_cast<int64_t>(r) || seen[static_cast<size_t>(p)]) c.fail(str_cat("invalid perm ", shape_str(perm)));
    seen[static_cast<size_t>(p)] = true;
    out_shape[k] = x[static_cast<size_t>(p)];
    src_strides[k] = st[static_cast<size_t>(p)];
  }
  strided_output(c, "Transpose", out_shape, src_strides, 0);
}

void plan_concat(OpContext& c) {
  if (!c.has_attr("axis")) c.fail("attribute 'axis' is required");
  const Shape& first = c.shape(0);
  const int64_t r = static_cast<int64_t>(first.size());
  if (r == 0) c.fail("cannot concatenate scalars");
  const int64_t ax = c.axis(c.attr_int("axis", 0), r);
  Shape out_shape = first;
  out_shape[static_cast<size_t>(ax)] = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Shape& s = c.shape(i);
    if (s.size() != first.size() || c.in(i).dtype != c.in(0).dtype)
      c.fail(str_cat("input #", i, " ", shape_str(s), " does not match input #0 ", shape_str(first)));
    for (size_t k = 0; k < s.size(); ++k)
      if (static_cast<int64_t>(k) != ax && s[k] != first[k])
        c.fail(str_cat("input #", i, " ", shape_str(s), " differs from ", shape_str(first), " outside axis ", ax));
    out_shape[static_cast<size_t>(ax)] += s[static_cast<size_t>(ax)];
  }
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < r; ++k) {
    if (k < ax) outer *= out_shape[static_cast<size_t>(k)];
    if (k > ax) inner *= out_shape[static_cast<size_t>(k)];
  }
  const int64_t out_axis = out_shape[static_cast<size_t>(ax)];
  if (c.all_const()) {
    auto out = ConstTensor::make(c.in(0).dtype, out_shape);
    const size_t es = dtype_size(out->dtype);
    int64_t pos = 0;
    for (size_t i = 0; i < c.num_inputs(); ++i) {
      const ConstTensor& t = *c.in(i).constant;
      const int64_t len = t.shape[static_cast<size_t>(ax)];
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(out->bytes.data() + static_cast<size_t>((o * out_axis + pos) * inner) * es,
                    t.bytes.data() + static_cast<size_t>(o * len * inner) * es, static_cast<size_t>(len * inner) * es);
      pos += len;
    }
    c.set_const(0, out);
    return;
  }
  TensorLoc out = c.set_tensor(0, out_shape);
  int64_t pos = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    c.require_float(i);
    const int64_t len = c.shape(i)[static_cast<size_t>(ax)];
    if (len == 0) continue;
    kernels::StridedCopyParams p;
    p.shape.rank = 3;
    p.shape.d[0] = outer; p.shape.d[1] = len; p.shape.d[2] = inner;
    p.src_strides.rank = 3;
    p.src_strides.d[0] = len * inner; p.src_strides.d[1] = inner; p.src_strides.d[2] = 1;
    p.dst_strides.rank = 3;
    p.dst_strides.d[0] = out_axis * inner; p.dst_strides.d[1] = inner; p.dst_strides.d[2] = 1;
    TensorLoc dst = out;
    dst.elem_offset += static_cast<size_t>(pos * inner);
    c.emit("Concat", {c.loc(i)}, {dst},
           [p](const StepArgs& a, const kernels::Parallel& par) { kernels::strided_copy(p, a.in[0], a.out[0], par); });
    pos += len;
  }
}

void plan_slice(OpContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset() < 10) {
    starts = c.attr_ints("starts");
    ends = c.attr_ints("ends");
    axes = c.attr_ints("axes");
  } else {
    starts = c.const_ints(1, "starts");
    ends = c.const_ints(2, "ends");
    if (c.has_input(3)) axes = c.const_ints(3, "axes");
    if (c.has_input(4)) steps = c.const_ints(4, "steps");
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    c.fail("starts, ends, axes and steps must have the same length");
  const Shape st = contiguous_strides(x);
  Shape out_shape = x, src_strides = st;
  int64_t offset = 0;
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t a = c.axis(axes[i], r);
    if (seen[static_cast<size_t>(a)]) c.fail(str_cat("axis ", a, " repeated"));
    seen[static_cast<size_t>(a)] = true;
    const int64_t dim = x[static_cast<size_t>(a)], step = steps[i];
    if (step == 0) c.fail("slice step must not be 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0 && e > std::numeric_limits<int64_t>::min() / 2) e += dim;
    int64_t len;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      len = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    out_shape[static_cast<size_t>(a)] = len;
    offset += s * st[static_cast<size_t>(a)];
    src_strides[static_cast<size_t>(a)] = st[static_cast<size_t>(a)] * step;
  }
  strided_output(c, "Slice", out_shape, src_strides, offset);
}

void plan_gather(OpContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0) c.fail("data must have rank >= 1");
  const int64_t ax = c.axis(c.attr_int("axis", 0), r);
  const ConstTensor& ind = c.const_input(1, "indices");
  std::vector<int64_t> idx = c.const_ints(1, "indices");
  const int64_t dim = x[static_cast<size_t>(ax)];
  for (int64_t& i : idx) {
    if (i < -dim || i >= dim) c.fail(str_cat("index ", i, " is out of range for axis ", ax, " of size ", dim));
    if (i < 0) i += dim;
  }
  Shape out_shape(x.begin(), x.begin() + ax);
  out_shape.insert(out_shape.end(), ind.shape.begin(), ind.shape.end());
  out_shape.insert(out_shape.end(), x.begin() + ax + 1, x.end());
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < r; ++k) {
    if (k < ax) outer *= x[static_cast<size_t>(k)];
    if (k > ax) inner *= x[static_cast<size_t>(k)];
  }
  const PValue& data = c.in(0);
  if (data.constant) {
    auto out = ConstTensor::make(data.dtype, out_shape);
    const size_t es = dtype_size(data.dtype);
    const int64_t n = static_cast<int64_t>(idx.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(out->bytes.data() + static_cast<size_t>((o * n + j) * inner) * es,
                    data.constant->bytes.data() + static_cast<size_t>((o * dim + idx[static_cast<size_t>(j)]) * inner) * es,
                    static_cast<size_t>(inner) * es);
    c.set_const(0, out);
    return;
  }
  c.require_float(0);
  if (idx.empty()) c.fail("empty indices are not supported");
  kernels::GatherParams p;
  p.outer = static_cast<size_t>(outer);
  p.axis_len = static_cast<size_t>(dim);
  p.inner = static_cast<size_t>(inner);
  p.n_indices = idx.size();
  auto held = std::make_shared<std::vector<int64_t>>(idx);
  const int64_t* ip = held->data();
  TensorLoc out = c.set_tensor(0, out_shape);
  c.emit("Gather", {c.loc(0)}, {out},
         [p, held, ip](const StepArgs& a, const kernels::Parallel& par) { kernels::gather(p, a.in[0], ip, a.out[0], par); });
}

void plan_pad(OpContext& c) {
  const Shape& x = c.shape(0);
  const size_t r = x.size();
  const std::string mode = c.attr_str("mode", "constant");
  std::vector<int64_t> pads;
  float value = 0.f;
  if (c.opset() < 11) {
    pads = c.attr_ints(c.opset() < 2 ? "paddings" : "pads");
    value = c.attr_float("value", 0.f);
  } else {
    pads = c.const_ints(1, "pads");
    if (c.has_input(2)) {
      const ConstTensor& v = c.const_input(2, "constant_value");
      if (v.numel() != 1) c.fail("constant_value must be a scalar");
      value = static_cast<float>(v.as_f64()[0]);
    }
    if (c.has_input(3)) c.fail("the axes input of Pad (opset 18) is not supported");
  }
  if (pads.size() != 2 * r) c.fail(str_cat("pads has ", pads.size(), " values, expected ", 2 * r));
  kernels::PadParams p;
  if (mode == "constant") p.mode = kernels::PadMode::kConstant;
  else if (mode == "reflect") p.mode = kernels::PadMode::kReflect;
  else if (mode == "edge") p.mode = kernels::PadMode::kEdge;
  else c.fail(str_cat("unknown mode '", mode, "'"));
  p.value = value;
  Shape out_shape(r);
  for (int64_t v : pads)  // |pad| <= 2^40 keeps the sums below from overflowing (fuzz finding)
    if (v < -(int64_t{1} << 40) || v > (int64_t{1} << 40)) c.fail(str_cat("pad ", v, " is out of range"));
  for (size_t k = 0; k < r; ++k) {
    out_shape[k] = x[k] + pads[k] + pads[k + r];
    if (out_shape[k] <= 0) c.fail(str_cat("pads ", shape_str(pads), " leave axis ", k, " empty"));
    if (p.mode == kernels::PadMode::kReflect && (pads[k] >= x[k] || pads[k + r] >= x[k]) && (pads[k] > 0 || pads[k + r] > 0))
      c.fail(str_cat("reflect pad ", std::max(pads[k], pads[k + r]), " must be smaller than axis ", k, " of size ", x[k]));
  }
  c.require_float(0);
  p.in_shape = to_dims(c, x);
  p.out_shape = to_dims(c, out_shape);
  p.pads_begin.rank = r;
  for (size_t k = 0; k < r; ++k) p.pads_begin.d[k] = pads[k];
  TensorLoc out = c.set_tensor(0, out_shape);
  c.emit("Pad", {c.loc(0)}, {out}, [p](const StepArgs& a, const kernels::Parallel& par) { kernels::pad(p, a.in[0], a.out[0], par); });
}

}  // namespace convoy::ops

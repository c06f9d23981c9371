// The trainable suffix's plan: forward steps (saving what backward needs: ReLU outputs, max-pool
// switches, dropout masks, layer inputs), the softmax cross-entropy loss, then backward steps in
// reverse node order. Every tensor is an arena buffer with a lifetime (first write, last read),
// so assign_arena_offsets() packs forward values, saved tensors and gradients by liveness like
// any inference plan. Gradient buffers are written once: a value read by several nodes gets
// its contributions summed into a new buffer. Parameter gradients and momentum live in Param.
// The per-op lowering is in train_ops.cpp.
#include <algorithm>
#include <climits>

#include "kernels/bias_grad.h"
#include "kernels/binary.h"
#include "kernels/conv2d.h"
#include "kernels/softmax_xent.h"
#include "runtime/train/plan_builder.h"

namespace convoy::train {

using kernels::Parallel;

PlanBuilder::PlanBuilder(const SplitModel& m, const std::map<std::string, PValue>& vals, bool train, size_t threads)
    : m_(m), g_(m.suffix), vals_(vals), train_(train), threads_(threads), dummy_(m.suffix) {
  for (const auto& p : m.params) params_[p->name] = p.get();
  tp_.state = std::make_shared<RunState>();
}

TrainPlan PlanBuilder::build(const std::vector<Shape>& frontier_shapes) {
  for (size_t i = 0; i < m_.frontier.size(); ++i) {
    TensorLoc l;
    l.buffer = new_buffer(numel(frontier_shapes[i]));
    fwd_[m_.frontier[i]] = l;
    tp_.frontier.push_back(l);
    tp_.frontier_floats.push_back(numel(frontier_shapes[i]));
  }
  // The logits: the graph output, or the input of a final Softmax.
  std::string logits = g_.outputs[0];
  std::vector<size_t> lowered;
  for (size_t k = 0; k < g_.nodes.size(); ++k) {
    const Node& n = g_.nodes[k];
    bool all_const = true;
    for (const std::string& o : n.outputs)
      if (!o.empty() && !(vals_.count(o) && vals_.at(o).constant)) all_const = false;
    if (all_const) continue;  // folded at plan time (shape chains)
    if (n.op_type == "Softmax" && n.outputs[0] == g_.outputs[0]) {
      // The loss applies its own softmax over the classes (axis 1 of [batch, classes]).
      node_ = &n;
      const int64_t rank = static_cast<int64_t>(shape(n.inputs[0]).size());
      const int64_t axis = ctx(n).axis(ctx(n).attr_int("axis", g_.opset < 13 ? 1 : -1), rank);
      if (rank != 2 || axis != 1) node_fail("a final Softmax must be over the classes of [batch, classes]");
      logits = n.inputs[0];
      continue;
    }
    forward(k);
    lowered.push_back(k);
  }
  if (!fwd_.count(logits)) fail(str_cat(g_.model_path, ": the logits '", logits, "' are not computed by the suffix"));
  const Shape& ls = shape(logits);
  if (ls.size() < 2 || numel(ls) != static_cast<size_t>(ls[0] * ls[1]))
    fail(str_cat(g_.model_path, ": the logits '", logits, "' have shape ", shape_str(ls), "; training needs [batch, classes]"));
  tp_.batch = static_cast<size_t>(ls[0]);
  tp_.classes = static_cast<size_t>(ls[1]);
  tp_.logits = fwd_.at(logits);
  const size_t B = tp_.batch, K = tp_.classes;
  auto state = tp_.state;
  const bool train = train_;
  TensorLoc dlogits;
  std::vector<TensorLoc> outs;
  if (train_) {
    dlogits.buffer = new_buffer(B * K);
    outs.push_back(dlogits);
  }
  emit("SoftmaxCrossEntropy", {tp_.logits}, outs, [state, B, K, train](const StepArgs& a, const Parallel&) {
    if (state->labels) state->xent = kernels::softmax_xent(a.in[0], state->labels, B, K, train ? a.out[0] : nullptr);
  });
  if (train_) {
    grad_[logits] = dlogits;
    for (size_t i = lowered.size(); i-- > 0;) backward(lowered[i]);
    for (const auto& p : m_.params)
      if (!written_.count(p.get())) tp_.unwritten_grads.push_back(p.get());
  } else {
    // predict() reads the logits after the last step.
    tp_.plan.buffers[static_cast<size_t>(tp_.logits.buffer)].last = static_cast<int>(tp_.plan.steps.size());
  }
  for (const TensorLoc& l : tp_.frontier) tp_.plan.buffers[static_cast<size_t>(l.buffer)].first = -1;
  tp_.plan.inputs = tp_.frontier;
  tp_.plan.input_shapes = frontier_shapes;
  assign_arena_offsets(tp_.plan);
  return std::move(tp_);
}

int PlanBuilder::new_buffer(size_t floats) {
  Buffer b;
  b.bytes = floats * sizeof(float);
  b.first = b.last = static_cast<int>(tp_.plan.steps.size());
  tp_.plan.buffers.push_back(b);
  return static_cast<int>(tp_.plan.buffers.size() - 1);
}

TensorLoc PlanBuilder::buf(size_t floats) {
  TensorLoc l;
  l.buffer = new_buffer(floats);
  return l;
}

void PlanBuilder::emit(const std::string& op, std::vector<TensorLoc> in, std::vector<TensorLoc> out, StepFn fn,
                       size_t scratch_floats) {
  const int idx = static_cast<int>(tp_.plan.steps.size());
  for (const TensorLoc& l : in)
    if (l.buffer >= 0) {
      Buffer& b = tp_.plan.buffers[static_cast<size_t>(l.buffer)];
      b.last = std::max(b.last, idx);
    }
  for (const TensorLoc& l : out)
    if (l.buffer >= 0) {
      Buffer& b = tp_.plan.buffers[static_cast<size_t>(l.buffer)];
      b.first = std::min(b.first, idx);
      b.last = std::max(b.last, idx);
    }
  if (in.size() > kMaxStepInputs || out.size() > kMaxStepOutputs) fail("internal: too many step operands");
  Step s;
  s.node = node_ ? node_->name : "";
  s.op = op;
  s.in = std::move(in);
  s.out = std::move(out);
  if (scratch_floats > 0) s.scratch = new_buffer(scratch_floats);
  s.fn = std::move(fn);
  tp_.plan.steps.push_back(std::move(s));
}

const Shape& PlanBuilder::shape(const std::string& v) const {
  auto it = vals_.find(v);
  if (it == vals_.end()) fail(str_cat(g_.model_path, ": internal: no shape for '", v, "'"));
  return it->second.shape;
}

Param* PlanBuilder::param(const std::string& v) const {
  auto it = params_.find(v);
  return it == params_.end() ? nullptr : it->second;
}

TensorLoc PlanBuilder::in_loc(const std::string& v) {
  if (Param* p = param(v)) return cloc(p->data());
  auto it = vals_.find(v);
  if (it != vals_.end() && it->second.constant) {
    if (it->second.constant->dtype != DType::kFloat32) node_fail(str_cat("input '", v, "' is not float32"));
    tp_.keep.push_back(it->second.constant);
    return cloc(it->second.constant->f32());
  }
  auto f = fwd_.find(v);
  if (f == fwd_.end()) node_fail(str_cat("input '", v, "' is not available"));
  return f->second;
}

bool PlanBuilder::is_const(const std::string& v) const {
  auto it = vals_.find(v);
  return param(v) || (it != vals_.end() && it->second.constant);
}

TensorLoc PlanBuilder::out_buf(const std::string& v) {
  TensorLoc l = buf(numel(shape(v)));
  fwd_[v] = l;
  produced_.insert(v);
  return l;
}

void PlanBuilder::alias(const std::string& out, const std::string& in) {
  fwd_[out] = in_loc(in);
  produced_.insert(out);
}

void PlanBuilder::contribute(const std::string& v, TensorLoc g) {
  auto it = grad_.find(v);
  if (it == grad_.end()) {
    grad_[v] = g;
    return;
  }
  const size_t n = numel(shape(v));
  TensorLoc sum = buf(n);
  kernels::BinaryParams p;
  p.op = kernels::BinaryOp::kAdd;
  p.out_shape.rank = p.a_strides.rank = p.b_strides.rank = 1;
  p.out_shape.d[0] = static_cast<int64_t>(n);
  p.a_strides.d[0] = p.b_strides.d[0] = 1;
  emit("GradSum", {it->second, g}, {sum},
       [p](const StepArgs& a, const Parallel& par) { kernels::binary(p, a.in[0], a.in[1], a.out[0], par); });
  it->second = sum;
}

OpContext PlanBuilder::ctx(const Node& n) {
  std::vector<const PValue*> in;
  for (const std::string& v : n.inputs) in.push_back(v.empty() || !vals_.count(v) ? nullptr : &vals_.at(v));
  return OpContext(dummy_, g_, n, std::move(in));
}

void PlanBuilder::bias_grad(Param* pb, TensorLoc dy, kernels::BiasGradParams bp, float scale) {
  float* db = pb->grad.data();
  written_.insert(pb);
  const size_t C = bp.C;
  emit("BiasGrad", {dy}, {}, [bp, db, scale, C](const StepArgs& a, const Parallel& par) {
    kernels::bias_backward(bp, a.in[0], db, par);
    if (scale != 1.f)
      for (size_t i = 0; i < C; ++i) db[i] *= scale;
  });
}

TrainPlan build_train_plan(const SplitModel& m, const std::vector<Shape>& frontier_shapes, bool train, size_t threads) {
  // Shapes (and plan-time constants such as folded shape chains) of every suffix value.
  Planner shapes(m.suffix, 1);
  shapes.build(frontier_shapes);
  PlanBuilder b(m, shapes.values(), train, threads);
  return b.build(frontier_shapes);
}

void run_train_plan(TrainPlan& tp, char* arena, const kernels::Parallel& par) {
  for (auto& r : tp.repacks)
    if (r.version != r.param->version) {
      kernels::pack_conv2d_weights(r.p, r.param->data(), r.packed->data());
      r.version = r.param->version;
    }
  for (Param* p : tp.unwritten_grads) std::fill(p->grad.begin(), p->grad.end(), 0.f);
  const Plan& plan = tp.plan;
  auto resolve = [&](const TensorLoc& l) -> float* {
    if (l.cptr) return const_cast<float*>(l.cptr);  // steps only read constants
    if (l.buffer < 0) return nullptr;
    return reinterpret_cast<float*>(arena + plan.buffers[static_cast<size_t>(l.buffer)].offset) + l.elem_offset;
  };
  for (const Step& s : plan.steps) {
    StepArgs a;
    for (size_t k = 0; k < s.in.size(); ++k) a.in[k] = resolve(s.in[k]);
    for (size_t k = 0; k < s.out.size(); ++k) a.out[k] = resolve(s.out[k]);
    if (s.scratch >= 0) a.scratch = reinterpret_cast<float*>(arena + plan.buffers[static_cast<size_t>(s.scratch)].offset);
    s.fn(a, par);
  }
}

}  // namespace convoy::train

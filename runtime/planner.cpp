#include "runtime/planner.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "runtime/aligned_buffer.h"

namespace convoy {

// ---------------------------------------------------------------- OpContext

OpContext::OpContext(Planner& planner, const Graph& g, const Node& n, std::vector<const PValue*> in)
    : planner_(planner), graph_(g), node_(n), in_(std::move(in)), out_(n.outputs.size()), out_set_(n.outputs.size()) {
  first_step_ = planner_.plan_.steps.size();
}

size_t OpContext::threads() const { return planner_.threads_; }

const PValue& OpContext::in(size_t i) const {
  if (!has_input(i)) fail(str_cat("required input #", i, " is missing"));
  return *in_[i];
}

bool OpContext::all_const() const {
  for (const PValue* v : in_)
    if (v && !v->constant) return false;
  return true;
}

const ConstTensor& OpContext::const_input(size_t i, const char* what) const {
  const PValue& v = in(i);
  if (!v.constant)
    fail(str_cat(what, " (input '", node_.inputs[i], "') must be a constant known at plan time"));
  return *v.constant;
}

std::vector<int64_t> OpContext::const_ints(size_t i, const char* what) const {
  const ConstTensor& t = const_input(i, what);
  if (t.dtype != DType::kInt64 && t.dtype != DType::kInt32)
    fail(str_cat(what, " must be int64, got ", dtype_name(t.dtype)));
  return t.as_i64();
}

void OpContext::require_float(size_t i) const {
  if (in(i).dtype != DType::kFloat32)
    fail(str_cat("input '", node_.inputs[i], "' has type ", dtype_name(in(i).dtype), "; convoy computes float32 tensors"));
}

int64_t OpContext::attr_int(const std::string& a, int64_t def) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return def;
  if (it->second.kind != Attribute::Kind::kInt) fail(str_cat("attribute '", a, "' must be an int"));
  return it->second.i;
}

float OpContext::attr_float(const std::string& a, float def) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return def;
  if (it->second.kind == Attribute::Kind::kInt) return static_cast<float>(it->second.i);
  if (it->second.kind != Attribute::Kind::kFloat) fail(str_cat("attribute '", a, "' must be a float"));
  return it->second.f;
}

std::string OpContext::attr_str(const std::string& a, const std::string& def) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return def;
  if (it->second.kind != Attribute::Kind::kString) fail(str_cat("attribute '", a, "' must be a string"));
  return it->second.s;
}

std::vector<int64_t> OpContext::attr_ints(const std::string& a, std::vector<int64_t> def) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return def;
  if (it->second.kind != Attribute::Kind::kInts) fail(str_cat("attribute '", a, "' must be a list of ints"));
  return it->second.ints;
}

std::vector<float> OpContext::attr_floats(const std::string& a) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return {};
  if (it->second.kind != Attribute::Kind::kFloats) fail(str_cat("attribute '", a, "' must be a list of floats"));
  return it->second.floats;
}

const ConstTensor* OpContext::attr_tensor(const std::string& a) const {
  auto it = node_.attrs.find(a);
  if (it == node_.attrs.end()) return nullptr;
  if (it->second.kind != Attribute::Kind::kTensor) fail(str_cat("attribute '", a, "' must be a tensor"));
  return it->second.t.get();
}

int64_t OpContext::axis(int64_t a, int64_t rank, const char* what) const {
  if (a < -rank || a >= rank) fail(str_cat(what, " ", a, " is out of range for rank ", rank));
  return a < 0 ? a + rank : a;
}

void OpContext::set_const(size_t i, ConstPtr value) {
  if (i >= out_.size()) return;
  out_[i].dtype = value->dtype;
  out_[i].shape = value->shape;
  out_[i].constant = std::move(value);
  out_set_[i] = true;
}

void OpContext::set_alias(size_t i, size_t input, Shape shape) {
  if (i >= out_.size()) return;
  const PValue& src = in(input);
  if (checked_numel(shape, where()) != src.numel())
    fail(str_cat("cannot view ", shape_str(src.shape), " as ", shape_str(shape)));
  out_[i].dtype = src.dtype;
  out_[i].shape = std::move(shape);
  if (src.constant) {
    auto c = std::make_shared<ConstTensor>(*src.constant);
    c->shape = out_[i].shape;
    out_[i].constant = std::move(c);
  } else {
    out_[i].loc = src.loc;
  }
  out_set_[i] = true;
}

TensorLoc OpContext::set_tensor(size_t i, Shape shape) {
  const int64_t n = checked_numel(shape, str_cat(where(), ": output"));
  TensorLoc l;
  l.buffer = planner_.new_buffer(static_cast<size_t>(n) * sizeof(float), static_cast<int>(planner_.plan_.steps.size()));
  if (i < out_.size()) {
    out_[i].dtype = DType::kFloat32;
    out_[i].shape = std::move(shape);
    out_[i].loc = l;
    out_set_[i] = true;
  }
  return l;
}

TensorLoc OpContext::set_tensor_over(size_t i, Shape shape, size_t input) {
  if (!has_input(input) || is_const(input) || i >= out_.size()) return set_tensor(i, std::move(shape));
  const PValue& src = in(input);
  const TensorLoc l = src.loc;
  const int64_t n = checked_numel(shape, str_cat(where(), ": output"));
  const std::string& name = node_.inputs[input];
  // This node is the value's last reader: no later node and no graph output reads it.
  auto unread = planner_.unread_.find(name);
  bool ok = l.buffer >= 0 && l.elem_offset == 0 && src.dtype == DType::kFloat32 &&
            unread != planner_.unread_.end() && unread->second == 0;
  if (ok) {
    const Buffer& b = planner_.plan_.buffers[static_cast<size_t>(l.buffer)];
    ok = b.first >= 0 && b.bytes == static_cast<size_t>(n) * sizeof(float);
  }
  // The node's other inputs must not live there (Conv(x) + x reads x everywhere).
  for (size_t k = 0; ok && k < in_.size(); ++k)
    if (k != input && in_[k] && !in_[k]->constant && in_[k]->loc.buffer == l.buffer) ok = false;
  // Another value on the same buffer (a view made by Reshape & co.) may be read later.
  for (const auto& [other, v] : planner_.values_) {
    if (!ok) break;
    if (other == name || v.constant || v.loc.buffer != l.buffer) continue;
    auto u = planner_.unread_.find(other);
    if (u == planner_.unread_.end() || u->second != 0) ok = false;
  }
  if (!ok) return set_tensor(i, std::move(shape));
  out_[i].dtype = DType::kFloat32;
  out_[i].shape = std::move(shape);
  out_[i].loc = l;
  out_set_[i] = true;
  return l;
}

TensorLoc OpContext::set_window(size_t i, Shape shape, const TensorLoc& base, size_t elem_offset) {
  TensorLoc l = base;
  l.elem_offset += elem_offset;
  out_[i].dtype = DType::kFloat32;
  out_[i].shape = std::move(shape);
  out_[i].loc = l;
  out_set_[i] = true;
  return l;
}

TensorLoc OpContext::loc(size_t input) const {
  const PValue& v = in(input);
  if (v.constant) {
    if (v.constant->dtype != DType::kFloat32)
      fail(str_cat("input '", node_.inputs[input], "' is a ", dtype_name(v.constant->dtype), " constant where float32 is needed"));
    TensorLoc l;
    l.cptr = v.constant->f32();
    // Constants made at plan time are owned by the planner's values: the plan keeps them.
    planner_.plan_.keep_alive.push_back(v.constant);
    if (planner_.store_ && graph_.is_const(node_.inputs[input])) planner_.store_->pin(node_.inputs[input]);
    return l;
  }
  if (v.dtype != DType::kFloat32)
    fail(str_cat("input '", node_.inputs[input], "' is a ", dtype_name(v.dtype),
                 " tensor computed at run time; convoy runs float32 tensors (integer tensors must fold at plan time)"));
  return v.loc;
}

TensorLoc OpContext::temp(size_t floats) {
  TensorLoc l;
  l.buffer = planner_.new_buffer(floats * sizeof(float), static_cast<int>(planner_.plan_.steps.size()));
  return l;
}

TensorLoc OpContext::keep_packed(size_t input, std::shared_ptr<const std::vector<float>> data, WeightStore::Unpack unpack) {
  if (!is_const(input)) fail("internal: keep_packed of a runtime input");
  if (planner_.cache_) data = planner_.cache_->intern(node_.name, std::move(data));
  const std::string& name = node_.inputs[input];
  auto uses = planner_.uses_.find(name);
  if (planner_.store_ && graph_.is_const(name) && uses != planner_.uses_.end() && uses->second == 1)
    planner_.pending_release_.push_back({name, data, std::move(unpack)});
  return keep_const(std::move(data));
}

TensorLoc OpContext::keep_const(std::shared_ptr<const std::vector<float>> data) {
  // Another session's plan may already hold these exact packed bytes: use that copy (interning
  // what intern() returned finds itself at once).
  if (planner_.cache_) data = planner_.cache_->intern(node_.name, std::move(data));
  planner_.plan_.packed_bytes += data->size() * sizeof(float);
  TensorLoc l;
  l.cptr = data->data();
  planner_.plan_.keep_alive.push_back(std::move(data));
  return l;
}

Step& OpContext::emit(std::string op, std::vector<TensorLoc> in, std::vector<TensorLoc> out, StepFn fn,
                      size_t scratch_floats, double flops) {
  Plan& plan = planner_.plan_;
  const int idx = static_cast<int>(plan.steps.size());
  Step s;
  s.node = node_.name;
  s.op = std::move(op);
  for (const std::string& f : node_.fused) s.fused += (s.fused.empty() ? "" : "+") + f;
  if (in.size() > kMaxStepInputs || out.size() > kMaxStepOutputs) fail("internal: too many step operands");
  for (const TensorLoc& l : in) planner_.note_read(l, idx);
  for (const TensorLoc& l : out) {
    if (l.buffer >= 0) {
      Buffer& b = plan.buffers[static_cast<size_t>(l.buffer)];
      b.last = std::max(b.last, idx);
    }
  }
  s.in = std::move(in);
  s.out = std::move(out);
  if (scratch_floats > 0) s.scratch = planner_.new_buffer(scratch_floats * sizeof(float), idx);
  s.fn = std::move(fn);
  s.flops = flops;
  for (size_t k = 0; k < in_.size(); ++k)
    if (in_[k]) s.in_shapes.push_back(in_[k]->shape);
  plan.steps.push_back(std::move(s));
  return plan.steps.back();
}

// ---------------------------------------------------------------- Planner

int Planner::new_buffer(size_t bytes, int first_step) {
  Buffer b;
  b.bytes = bytes;
  b.first = first_step;
  b.last = first_step;
  plan_.buffers.push_back(b);
  return static_cast<int>(plan_.buffers.size() - 1);
}

void Planner::note_read(const TensorLoc& l, int step) {
  if (l.buffer < 0) return;
  Buffer& b = plan_.buffers[static_cast<size_t>(l.buffer)];
  b.last = std::max(b.last, step);
}

// Runs the steps a node just emitted (all its inputs are constants) and turns its outputs into
// constants: constant folding through the same kernels that run the model.
void Planner::fold_steps(OpContext& ctx, size_t first_step, size_t first_buffer) {
  size_t fold_bytes = 0;  // each buffer is below 2^40 elements (checked_numel): the sum fits
  for (size_t b = first_buffer; b < plan_.buffers.size(); ++b) fold_bytes += plan_.buffers[b].bytes;
  if (fold_bytes > kMaxFoldedBytes)
    ctx.fail(str_cat("folding this node at plan time needs ", fold_bytes >> 20, " MiB, over convoy's limit of ",
                     kMaxFoldedBytes >> 20, " MiB"));
  std::vector<AlignedBuffer> storage;
  std::vector<float*> base(plan_.buffers.size(), nullptr);
  for (size_t b = first_buffer; b < plan_.buffers.size(); ++b) {
    storage.emplace_back(plan_.buffers[b].bytes + kArenaAlign);
    base[b] = reinterpret_cast<float*>(storage.back().data());
  }
  auto resolve = [&](const TensorLoc& l) -> float* {
    if (l.cptr) return const_cast<float*>(l.cptr);
    if (l.buffer < 0) return nullptr;  // an absent optional operand
    return base[static_cast<size_t>(l.buffer)] + l.elem_offset;
  };
  kernels::SerialParallel serial;
  for (size_t s = first_step; s < plan_.steps.size(); ++s) {
    const Step& st = plan_.steps[s];
    StepArgs a;
    for (size_t k = 0; k < st.in.size(); ++k) a.in[k] = resolve(st.in[k]);
    for (size_t k = 0; k < st.out.size(); ++k) a.out[k] = resolve(st.out[k]);
    if (st.scratch >= 0) a.scratch = base[static_cast<size_t>(st.scratch)];
    st.fn(a, serial);
  }
  for (size_t i = 0; i < ctx.out_.size(); ++i) {
    PValue& v = ctx.out_[i];
    if (!ctx.out_set_[i] || v.constant) continue;
    auto c = ConstTensor::make(DType::kFloat32, v.shape);
    std::memcpy(c->bytes.data(), resolve(v.loc), c->bytes.size());
    v.constant = std::move(c);
    v.loc = TensorLoc{};
  }
  plan_.steps.resize(first_step);
  plan_.buffers.resize(first_buffer);
}

void Planner::run_node(const Node& n, bool fold_only, bool* folded) {
  const OpDef* def = find_op(n.op_type, n.domain);
  if (!def) convoy::fail(str_cat(graph_.where(n), ": unsupported op"));
  const int nin = static_cast<int>(n.inputs.size()), nout = static_cast<int>(n.outputs.size());
  if (nin < def->min_inputs || (def->max_inputs >= 0 && nin > def->max_inputs))
    convoy::fail(str_cat(graph_.where(n), ": has ", nin, " inputs, expected ", def->min_inputs,
                         def->max_inputs < 0 ? " or more" : str_cat("-", def->max_inputs)));
  if (nout < def->min_outputs || nout > def->max_outputs)
    convoy::fail(str_cat(graph_.where(n), ": has ", nout, " outputs, expected ", def->min_outputs, "-", def->max_outputs));
  std::vector<const PValue*> in;
  for (const std::string& name : n.inputs) {
    if (name.empty()) { in.push_back(nullptr); continue; }
    auto it = values_.find(name);
    if (it == values_.end()) {
      if (fold_only) return;  // depends on a runtime value
      convoy::fail(str_cat(graph_.where(n), ": input '", name, "' is not available"));
    }
    if (fold_only && !it->second.constant) return;
    // A constant the model holds in packed form only: rebuilt for as long as this plan needs it.
    if (store_ && store_->released(name) && it->second.constant && it->second.constant->bytes.empty())
      it->second.constant = store_->restore(name);
    in.push_back(&it->second);
  }
  const size_t first_step = plan_.steps.size(), first_buffer = plan_.buffers.size();
  if (!fold_only)
    for (const std::string& name : n.inputs)
      if (!name.empty()) --unread_[name];
  OpContext ctx(*this, graph_, n, std::move(in));
  pending_release_.clear();
  def->plan(ctx);
  // The node packed a constant nobody else reads: keep only the packed copy from now on.
  for (PendingRelease& r : pending_release_) {
    store_->release(r.name, std::move(r.packed), std::move(r.unpack));
    if (store_->released(r.name)) values_[r.name].constant = graph_.constants.at(r.name);
  }
  pending_release_.clear();
  for (size_t i = 0; i < ctx.out_.size(); ++i)
    if (ctx.output_used(i) && !ctx.out_set_[i]) ctx.fail(str_cat("internal: output #", i, " was not defined"));
  for (size_t s = first_step; s < plan_.steps.size(); ++s)
    if (!ctx.out_.empty()) plan_.steps[s].out_shape = ctx.out_[0].shape;  // for inspect
  bool inputs_const = ctx.all_const();
  if (inputs_const && plan_.steps.size() > first_step) fold_steps(ctx, first_step, first_buffer);
  if (fold_only && !inputs_const) return;
  if (folded) *folded = inputs_const;
  for (size_t i = 0; i < ctx.out_.size(); ++i)
    if (ctx.output_used(i)) values_[n.outputs[i]] = std::move(ctx.out_[i]);
}

std::map<std::string, ConstPtr> Planner::fold_constant_nodes(std::vector<bool>* folded_nodes) {
  for (const auto& kv : graph_.constants) {
    PValue v;
    v.dtype = kv.second->dtype;
    v.shape = kv.second->shape;
    v.constant = kv.second;
    values_[kv.first] = v;
  }
  folded_nodes->assign(graph_.nodes.size(), false);
  std::map<std::string, ConstPtr> out;
  for (size_t k = 0; k < graph_.nodes.size(); ++k) {
    const Node& n = graph_.nodes[k];
    bool folded = false;
    run_node(n, /*fold_only=*/true, &folded);
    if (!folded) continue;
    (*folded_nodes)[k] = true;
    for (const std::string& o : n.outputs)
      if (!o.empty()) out[o] = values_.at(o).constant;
  }
  return out;
}

Plan Planner::build(const std::vector<Shape>& input_shapes) {
  const std::string& model = graph_.model_path;
  if (input_shapes.size() != graph_.inputs.size())
    convoy::fail(str_cat(model, ": expected ", graph_.inputs.size(), " inputs, got ", input_shapes.size()));
  uses_ = graph_.use_counts();
  unread_ = uses_;
  for (const auto& kv : graph_.constants) {
    PValue v;
    v.dtype = kv.second->dtype;
    v.shape = kv.second->shape;
    v.constant = kv.second;
    values_[kv.first] = v;
  }
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    const std::string& name = graph_.inputs[i];
    const Shape& s = input_shapes[i];
    const ValueInfo& info = graph_.infos.at(name);
    if (info.dtype != DType::kFloat32)
      convoy::fail(str_cat(model, ": input '", name, "' has type ", dtype_name(info.dtype), "; convoy accepts float32 inputs"));
    bool ok = !info.known_rank || info.shape.size() == s.size();
    for (size_t d = 0; ok && info.known_rank && d < s.size(); ++d)
      if (info.shape[d] >= 0 && info.shape[d] != s[d]) ok = false;
    for (int64_t d : s)
      if (d <= 0) ok = false;
    if (!ok)
      convoy::fail(str_cat(model, ": input '", name, "' expects shape ", shape_str(info.shape), " but got ", shape_str(s)));
    PValue v;
    v.dtype = DType::kFloat32;
    v.shape = s;
    const int64_t n = checked_numel(s, str_cat(model, ": input '", name, "'"));
    v.loc.buffer = new_buffer(static_cast<size_t>(n) * sizeof(float), -1);
    plan_.inputs.push_back(v.loc);
    plan_.input_shapes.push_back(s);
    values_[name] = std::move(v);
  }
  for (const Node& n : graph_.nodes) run_node(n, false, nullptr);
  const int end = static_cast<int>(plan_.steps.size());
  for (const std::string& name : graph_.outputs) {
    auto it = values_.find(name);
    if (it == values_.end()) convoy::fail(str_cat(model, ": graph output '", name, "' was not computed"));
    const PValue& v = it->second;
    TensorLoc l = v.loc;
    if (v.constant) {
      if (v.constant->dtype != DType::kFloat32)
        convoy::fail(str_cat(model, ": graph output '", name, "' is ", dtype_name(v.constant->dtype), "; convoy returns float32 outputs"));
      l = TensorLoc{};
      l.cptr = v.constant->f32();
      plan_.keep_alive.push_back(v.constant);
    } else if (v.dtype != DType::kFloat32) {
      convoy::fail(str_cat(model, ": graph output '", name, "' is ", dtype_name(v.dtype), "; convoy returns float32 outputs"));
    } else {
      plan_.buffers[static_cast<size_t>(l.buffer)].last = end;
    }
    plan_.outputs.push_back(l);
    plan_.output_shapes.push_back(v.shape);
  }
  // Graph inputs stay live from the start.
  for (const TensorLoc& l : plan_.inputs) plan_.buffers[static_cast<size_t>(l.buffer)].first = -1;
  for (const Step& s : plan_.steps) plan_.flops += s.flops;
  assign_arena_offsets(plan_);
  return std::move(plan_);
}

std::map<std::string, Shape> infer_shapes(const Graph& g, const std::vector<Shape>& input_shapes) {
  Planner planner(g);
  planner.build(input_shapes);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, v] : planner.values()) shapes[name] = v.shape;
  return shapes;
}

}  // namespace convoy

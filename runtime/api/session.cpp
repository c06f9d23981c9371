#include <unistd.h>

#include "runtime/api/model_impl.h"
#include "runtime/error.h"
#include "runtime/planner.h"

namespace convoy {

namespace {
// Detects a second concurrent run() on one session (sessions are not re-entrant).
struct RunGuard {
  std::atomic<bool>& flag;
  explicit RunGuard(std::atomic<bool>& f, const std::string& model) : flag(f) {
    if (flag.exchange(true))
      fail(str_cat(model, ": Session::run called while another run on the same session is in progress; "
                          "use one Session per thread"));
  }
  ~RunGuard() { flag.store(false); }
};
}  // namespace

namespace {
std::string bytes_str(size_t b) {
  if (b >= (size_t{1} << 30)) return str_cat(static_cast<double>(b) / double(1 << 30), " GiB");
  if (b >= (size_t{1} << 20)) return str_cat(static_cast<double>(b) / double(1 << 20), " MiB");
  if (b >= (size_t{1} << 10)) return str_cat(static_cast<double>(b) / double(1 << 10), " KiB");
  return str_cat(b, " bytes");
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string r;
  for (const Shape& s : shapes) r += (r.empty() ? "" : ", ") + shape_str(s);
  return r;
}
}  // namespace

const Plan& Session::Impl::plan_for(const Model& model, const std::vector<Shape>& shapes) {
  auto it = plans.find(shapes);
  if (it != plans.end()) return *it->second;
  const Graph& g = model.impl().graph;
  std::unique_ptr<Plan> plan;
  {
    std::lock_guard<std::mutex> lock(model.impl().plan_mu);
    Planner planner(g, pool->threads(), &model.impl().packed, &model.impl().store);
    plan = std::make_unique<Plan>(planner.build(shapes));
  }
  // Overflow-safe: each term is below 2^40 elements (checked_numel), so the sum fits size_t.
  const size_t weights = model.impl().held_weight_bytes();
  if (max_memory > 0 && plan->arena_bytes + weights > max_memory)
    fail(str_cat(g.model_path, ": the plan for input ", shapes_str(shapes), " needs ", bytes_str(plan->arena_bytes + weights),
                 " (arena ", bytes_str(plan->arena_bytes), " + weights ", bytes_str(weights),
                 "), more than the session's max_memory of ", bytes_str(max_memory)));
  // Refuse plans that cannot fit this machine instead of dying later in the kernel.
  const double phys = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  if (phys > 0 && static_cast<double>(plan->arena_bytes) > phys)
    fail(str_cat(g.model_path, ": the plan for input ", shapes_str(shapes), " needs ", plan->arena_bytes >> 20,
                 " MiB of activations, more than this machine's ", static_cast<size_t>(phys) >> 20, " MiB of memory"));
  try {
    arena.resize(plan->arena_bytes);
  } catch (const std::bad_alloc&) {
    fail(str_cat(g.model_path, ": cannot allocate the ", plan->arena_bytes >> 20, " MiB arena"));
  }
  return *plans.emplace(shapes, std::move(plan)).first->second;
}

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options)
    : model_(std::move(model)), impl_(std::make_unique<Impl>()) {
  if (!model_) fail("Session: null model");
  if (options.threads < 0) fail(str_cat("Session: threads must be >= 0, got ", options.threads));
  impl_->pool = std::make_unique<ThreadPool>(options.threads == 0 ? hardware_threads() : static_cast<size_t>(options.threads));
  impl_->max_memory = options.max_memory;
}

Session::~Session() = default;

int Session::threads() const { return static_cast<int>(impl_->pool->threads()); }

size_t Session::memory_bytes() const {
  size_t n = impl_->arena.size();
  for (const auto& kv : impl_->plans) n += kv.second->packed_bytes;
  return n;
}

std::vector<Tensor> Session::run(const std::vector<Tensor>& inputs) { return run_profiled(inputs, nullptr); }

std::vector<Tensor> Session::run_profiled(const std::vector<Tensor>& inputs, std::vector<double>* step_seconds) {
  const Graph& g = model_->impl().graph;
  RunGuard guard(impl_->running, g.model_path);
  if (inputs.size() != g.inputs.size())
    fail(str_cat(g.model_path, ": expected ", g.inputs.size(), " inputs, got ", inputs.size()));
  std::vector<Shape> shapes;
  std::vector<const float*> in_ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (static_cast<int64_t>(t.size()) != checked_numel(t.shape(), g.model_path))
      fail(str_cat(g.model_path, ": input '", g.inputs[i], "' holds ", t.size(), " values for shape ", shape_str(t.shape())));
    shapes.push_back(t.shape());
    in_ptrs.push_back(t.data());
  }
  const Plan& plan = impl_->plan_for(*model_, shapes);
  std::vector<Tensor> outs;
  std::vector<float*> out_ptrs;
  outs.reserve(plan.output_shapes.size());
  for (const Shape& s : plan.output_shapes) {
    outs.emplace_back(s);
    out_ptrs.push_back(outs.back().data());
  }
  execute_plan(plan, impl_->arena.data(), in_ptrs, out_ptrs, *impl_->pool, step_seconds);
  return outs;
}

std::map<std::string, Tensor> Session::run_named(const std::map<std::string, Tensor>& inputs) {
  const Graph& g = model_->impl().graph;
  for (const auto& kv : inputs)
    if (model_->input_index(kv.first) < 0) fail(str_cat(g.model_path, ": the model has no input '", kv.first, "'"));
  std::vector<Tensor> ordered;
  for (const std::string& name : g.inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) fail(str_cat(g.model_path, ": input '", name, "' is missing"));
    ordered.push_back(it->second);
  }
  std::vector<Tensor> outs = run(ordered);
  std::map<std::string, Tensor> named;
  for (size_t i = 0; i < outs.size(); ++i) named.emplace(g.outputs[i], std::move(outs[i]));
  return named;
}

void Session::run(const std::vector<std::span<const float>>& inputs, const std::vector<std::vector<int64_t>>& input_shapes,
                  const std::vector<std::span<float>>& outputs) {
  const Graph& g = model_->impl().graph;
  RunGuard guard(impl_->running, g.model_path);
  if (inputs.size() != g.inputs.size() || input_shapes.size() != g.inputs.size())
    fail(str_cat(g.model_path, ": expected ", g.inputs.size(), " inputs, got ", inputs.size(), " buffers and ",
                 input_shapes.size(), " shapes"));
  std::vector<const float*> in_ptrs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t n = checked_numel(input_shapes[i], str_cat(g.model_path, ": input '", g.inputs[i], "'"));
    if (inputs[i].size() != static_cast<size_t>(n))
      fail(str_cat(g.model_path, ": input '", g.inputs[i], "' holds ", inputs[i].size(), " values for shape ",
                   shape_str(input_shapes[i])));
    in_ptrs.push_back(inputs[i].data());
  }
  const Plan& plan = impl_->plan_for(*model_, input_shapes);
  if (outputs.size() != plan.output_shapes.size())
    fail(str_cat(g.model_path, ": expected ", plan.output_shapes.size(), " output buffers, got ", outputs.size()));
  std::vector<float*> out_ptrs;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const int64_t n = checked_numel(plan.output_shapes[i], g.model_path);
    if (outputs[i].size() < static_cast<size_t>(n))
      fail(str_cat(g.model_path, ": output '", g.outputs[i], "' ", shape_str(plan.output_shapes[i]), " needs ", n,
                   " floats, the buffer holds ", outputs[i].size()));
    out_ptrs.push_back(outputs[i].data());
  }
  execute_plan(plan, impl_->arena.data(), in_ptrs, out_ptrs, *impl_->pool);
}

std::vector<std::vector<int64_t>> Session::output_shapes(const std::vector<std::vector<int64_t>>& input_shapes) {
  const Graph& g = model_->impl().graph;
  RunGuard guard(impl_->running, g.model_path);
  return impl_->plan_for(*model_, input_shapes).output_shapes;
}

PlanInfo Session::plan_info(const std::vector<std::vector<int64_t>>& input_shapes) {
  const Graph& g = model_->impl().graph;
  RunGuard guard(impl_->running, g.model_path);
  const Plan& plan = impl_->plan_for(*model_, input_shapes);
  PlanInfo info;
  for (const Step& s : plan.steps) {
    StepInfo si;
    si.node = s.node;
    si.op = s.op;
    si.fused = s.fused;
    si.input_shapes = s.in_shapes;
    si.output_shape = s.out_shape;
    if (!s.out.empty() && s.out[0].buffer >= 0)
      si.output_offset = plan.buffers[static_cast<size_t>(s.out[0].buffer)].offset + s.out[0].elem_offset * sizeof(float);
    si.flops = s.flops;
    info.steps.push_back(std::move(si));
  }
  info.arena_bytes = plan.arena_bytes;
  info.intermediate_bytes = plan.intermediate_bytes;
  info.live_bound_bytes = plan.live_bound_bytes;
  info.flops = plan.flops;
  info.weight_bytes = model_->impl().weight_bytes;
  info.held_weight_bytes = model_->impl().held_weight_bytes();
  return info;
}

}  // namespace convoy

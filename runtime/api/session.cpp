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

const Plan& Session::Impl::plan_for(const Graph& g, const std::vector<Shape>& shapes) {
  auto it = plans.find(shapes);
  if (it != plans.end()) return *it->second;
  Planner planner(g, pool->threads());
  auto plan = std::make_unique<Plan>(planner.build(shapes));
  // Refuse plans that cannot fit this machine instead of dying later in the kernel.
  const double phys = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  if (phys > 0 && static_cast<double>(plan->arena_bytes) > phys)
    fail(str_cat(g.model_path, ": the plan for input ", shape_str(shapes.empty() ? Shape{} : shapes[0]), " needs ",
                 plan->arena_bytes >> 20, " MiB of activations, more than this machine's ",
                 static_cast<size_t>(phys) >> 20, " MiB of memory"));
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
}

Session::~Session() = default;

int Session::threads() const { return static_cast<int>(impl_->pool->threads()); }

std::vector<Tensor> Session::run(const std::vector<Tensor>& inputs) {
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
  const Plan& plan = impl_->plan_for(g, shapes);
  std::vector<Tensor> outs;
  std::vector<float*> out_ptrs;
  outs.reserve(plan.output_shapes.size());
  for (const Shape& s : plan.output_shapes) {
    outs.emplace_back(s);
    out_ptrs.push_back(outs.back().data());
  }
  execute_plan(plan, impl_->arena.data(), in_ptrs, out_ptrs, *impl_->pool);
  return outs;
}

PlanInfo Session::plan_info(const std::vector<std::vector<int64_t>>& input_shapes) {
  const Graph& g = model_->impl().graph;
  RunGuard guard(impl_->running, g.model_path);
  const Plan& plan = impl_->plan_for(g, input_shapes);
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
  for (const auto& kv : g.constants)
    if (kv.second->dtype == DType::kFloat32) info.weight_bytes += kv.second->bytes.size();
  return info;
}

}  // namespace convoy

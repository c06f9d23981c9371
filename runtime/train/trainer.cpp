// convoy::train::Trainer: the frozen prefix runs as an inference plan writing straight into the
// training arena's frontier buffers; the suffix runs its training plan; then SGD per parameter.
#include <cstring>
#include <set>

#include "importer/onnx_writer.h"
#include "kernels/sgd.h"
#include "runtime/aligned_buffer.h"
#include "runtime/error.h"
#include "runtime/planner.h"
#include "runtime/thread_pool.h"
#include "runtime/train/train_internal.h"
#include "runtime/weight_cache.h"

namespace convoy::train {

struct BatchPlans {
  bool has_frozen = false;
  Plan frozen;
  std::vector<int> frozen_output;  // per frontier value: index of the frozen output, -1 = graph input
  std::unique_ptr<TrainPlan> train, eval;
};

struct Trainer::Impl {
  std::string path;
  TrainOptions opt;
  SplitModel m;
  std::unique_ptr<ThreadPool> pool;
  WeightCache cache;
  std::map<size_t, BatchPlans> plans;
  AlignedBuffer frozen_arena, train_arena;
  float lr = 0.01f;
  uint64_t steps = 0;
  int classes = 0;

  size_t threads() const { return pool->threads(); }
  BatchPlans& plans_for(size_t batch);
  TrainPlan& suffix_plan(size_t batch, bool train);
  void run(TrainPlan& tp, BatchPlans& bp, const float* images);
  StepResult forward(const float* images, const int32_t* labels, size_t batch, bool train);
};

BatchPlans& Trainer::Impl::plans_for(size_t batch) {
  auto it = plans.find(batch);
  if (it != plans.end()) return it->second;
  BatchPlans bp;
  const Shape in = {static_cast<int64_t>(batch), m.input_chw[0], m.input_chw[1], m.input_chw[2]};
  if (!m.frozen.outputs.empty()) {
    Planner planner(m.frozen, threads(), &cache);
    bp.frozen = planner.build({in});
    bp.has_frozen = true;
  }
  int next = 0;
  for (size_t i = 0; i < m.frontier.size(); ++i) bp.frozen_output.push_back(m.frontier_is_input[i] ? -1 : next++);
  return plans.emplace(batch, std::move(bp)).first->second;
}

TrainPlan& Trainer::Impl::suffix_plan(size_t batch, bool train) {
  BatchPlans& bp = plans_for(batch);
  std::unique_ptr<TrainPlan>& slot = train ? bp.train : bp.eval;
  if (!slot) {
    const Shape in = {static_cast<int64_t>(batch), m.input_chw[0], m.input_chw[1], m.input_chw[2]};
    std::vector<Shape> shapes;
    for (int j : bp.frozen_output) shapes.push_back(j < 0 ? in : bp.frozen.output_shapes[static_cast<size_t>(j)]);
    slot = std::make_unique<TrainPlan>(build_train_plan(m, shapes, train, threads()));
  }
  return *slot;
}

void Trainer::Impl::run(TrainPlan& tp, BatchPlans& bp, const float* images) {
  train_arena.resize(tp.plan.arena_bytes);
  char* arena = train_arena.data();
  auto at = [&](const TensorLoc& l) {
    return reinterpret_cast<float*>(arena + tp.plan.buffers[static_cast<size_t>(l.buffer)].offset);
  };
  std::vector<float*> outs(bp.frozen.outputs.size(), nullptr);
  for (size_t i = 0; i < bp.frozen_output.size(); ++i) {
    const int j = bp.frozen_output[i];
    if (j < 0) {
      std::memcpy(at(tp.frontier[i]), images, tp.frontier_floats[i] * sizeof(float));
    } else {
      outs[static_cast<size_t>(j)] = at(tp.frontier[i]);
    }
  }
  if (bp.has_frozen) {
    frozen_arena.resize(bp.frozen.arena_bytes);
    execute_plan(bp.frozen, frozen_arena.data(), {images}, outs, *pool);
  }
  run_train_plan(tp, arena, *pool);
}

StepResult Trainer::Impl::forward(const float* images, const int32_t* labels, size_t batch, bool train) {
  if (batch == 0) fail(str_cat(path, ": empty batch"));
  if (!images) fail(str_cat(path, ": no images"));
  if (labels)
    for (size_t i = 0; i < batch; ++i)
      if (labels[i] < 0 || labels[i] >= classes)
        fail(str_cat(path, ": label ", labels[i], " of image ", i, " is outside [0, ", classes, ")"));
  TrainPlan& tp = suffix_plan(batch, train);
  BatchPlans& bp = plans_for(batch);
  tp.state->labels = labels;
  tp.state->xent = {};
  // Dropout masks: a pure function of (seed, step).
  Rng r(opt.seed ^ (steps * 0xD1B54A32D192ED03ull));
  tp.state->dropout_seed = r.next();
  run(tp, bp, images);
  tp.state->labels = nullptr;
  StepResult res;
  res.loss = tp.state->xent.loss;
  res.correct = tp.state->xent.correct;
  res.count = batch;
  return res;
}

Trainer::Trainer(const std::string& model_path, const TrainOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = model_path;
  d.opt = options;
  d.lr = options.lr;
  if (options.threads < 0) fail(str_cat(model_path, ": threads ", options.threads, " is negative"));
  d.pool = std::make_unique<ThreadPool>(options.threads == 0 ? hardware_threads() : static_cast<size_t>(options.threads));
  d.m = split_model(model_path, options);
  // Plans for batch 1 now: unsupported ops in the suffix fail here, not in the first step.
  d.classes = static_cast<int>(d.suffix_plan(1, true).classes);
}

Trainer::~Trainer() = default;

std::vector<int64_t> Trainer::input_shape() const { return impl_->m.input_chw; }
int Trainer::num_classes() const { return impl_->classes; }
const std::map<std::string, std::string>& Trainer::metadata() const { return impl_->m.source.metadata; }

std::vector<ParamInfo> Trainer::trainable() const {
  std::vector<ParamInfo> out;
  for (const auto& p : impl_->m.params) out.push_back({p->name, p->node, p->value->shape});
  return out;
}

MemoryReport Trainer::memory(size_t batch) {
  Impl& d = *impl_;
  if (batch == 0) fail(str_cat(d.path, ": empty batch"));
  TrainPlan& tp = d.suffix_plan(batch, true);
  BatchPlans& bp = d.plans_for(batch);
  MemoryReport r;
  r.frozen_arena_bytes = bp.has_frozen ? bp.frozen.arena_bytes : 0;
  r.train_arena_bytes = tp.plan.arena_bytes;
  r.train_live_bound_bytes = tp.plan.live_bound_bytes;
  for (const auto& p : d.m.params) {
    r.param_bytes += p->numel() * sizeof(float);
    r.grad_bytes += p->grad.size() * sizeof(float);
    r.optimizer_bytes += p->velocity.size() * sizeof(float);
  }
  std::set<const ConstTensor*> seen;
  for (const auto& kv : d.m.source.constants)
    if (seen.insert(kv.second.get()).second) r.weight_bytes += kv.second->bytes.size();
  return r;
}

StepResult Trainer::train_step(const float* images, const int32_t* labels, size_t batch) {
  Impl& d = *impl_;
  if (!labels) fail(str_cat(d.path, ": train_step needs labels"));
  const StepResult res = d.forward(images, labels, batch, true);
  for (const auto& p : d.m.params) {
    kernels::SgdParams sp;
    sp.count = p->numel();
    sp.lr = d.lr;
    sp.momentum = d.opt.momentum;
    sp.weight_decay = d.opt.weight_decay;
    kernels::sgd_step(sp, p->data(), p->grad.data(), p->velocity.data(), *d.pool);
    ++p->version;
  }
  ++d.steps;
  return res;
}

StepResult Trainer::evaluate(const float* images, const int32_t* labels, size_t batch) {
  if (!labels) fail(str_cat(impl_->path, ": evaluate needs labels"));
  return impl_->forward(images, labels, batch, false);
}

std::vector<float> Trainer::predict(const float* images, size_t batch) {
  Impl& d = *impl_;
  d.forward(images, nullptr, batch, false);
  TrainPlan& tp = d.suffix_plan(batch, false);
  const float* logits = tp.logits.cptr;
  if (!logits) {
    const size_t offset = tp.plan.buffers[static_cast<size_t>(tp.logits.buffer)].offset;
    logits = reinterpret_cast<const float*>(d.train_arena.data() + offset) + tp.logits.elem_offset;
  }
  return std::vector<float>(logits, logits + tp.batch * tp.classes);
}

std::map<std::string, std::vector<float>> Trainer::last_gradients() const {
  std::map<std::string, std::vector<float>> out;
  for (const auto& p : impl_->m.params) out[p->name] = p->grad;
  return out;
}

std::map<std::string, std::vector<float>> Trainer::parameters() const {
  std::map<std::string, std::vector<float>> out;
  for (const auto& p : impl_->m.params) out[p->name] = std::vector<float>(p->data(), p->data() + p->numel());
  return out;
}

float Trainer::lr() const { return impl_->lr; }
void Trainer::set_lr(float lr) {
  if (!(lr >= 0.f)) fail(str_cat(impl_->path, ": learning rate ", lr, " must be >= 0"));
  impl_->lr = lr;
}
uint64_t Trainer::steps() const { return impl_->steps; }

void Trainer::export_onnx(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  // The source graph holds the trained tensors themselves (shared with the parameters).
  Graph g = impl_->m.source;
  for (const auto& kv : metadata) g.metadata[kv.first] = kv.second;
  write_onnx_file(g, path);
}

void Trainer::save_checkpoint(const std::string& path, const std::string& extra) const {
  save_checkpoint_impl(impl_->m, impl_->steps, impl_->lr, path, extra);
}

std::string Trainer::load_checkpoint(const std::string& path) {
  return load_checkpoint_impl(impl_->m, &impl_->steps, &impl_->lr, path);
}

}  // namespace convoy::train

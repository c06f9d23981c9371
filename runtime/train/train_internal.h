// Internals of the training add-on (include/convoy/train.hpp): the split of a model into a frozen
// prefix and a trainable suffix, trainable parameters, and the suffix's training plan.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/train.hpp"
#include "kernels/conv2d.h"
#include "kernels/softmax_xent.h"
#include "runtime/ir.h"
#include "runtime/plan.h"

namespace convoy::train {

// One trainable parameter. `value` is the very tensor the graphs hold (shared, mutated in place
// by SGD), so each weight exists once and export writes the trained values as they are.
struct Param {
  std::string name;  // initializer name
  std::string node;  // node that uses it
  std::shared_ptr<ConstTensor> value;
  std::vector<float> grad, velocity;
  uint64_t version = 0;  // bumped by every update: packed copies compare it
  size_t numel() const { return static_cast<size_t>(value->numel()); }
  float* data() { return value->f32(); }
};

// The model split for training (see split.cpp).
struct SplitModel {
  Graph source;   // as read (trainable initializers replaced by the shared Param tensors); for export
  Graph frozen;   // frozen prefix, optimised; inputs = source inputs, outputs = frozen frontier values
  Graph suffix;   // the trainable suffix, unoptimised; inputs = frontier values (graph input included)
  std::vector<std::string> frontier;  // suffix inputs in order
  std::vector<bool> frontier_is_input;  // frontier value is the graph input itself
  std::vector<std::unique_ptr<Param>> params;
  std::vector<std::string> trainable_nodes;
  bool head_replaced = false;
  std::vector<int64_t> input_chw;
};

// Splitmix64-based generator: reproducible across platforms (no std:: distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  double uniform();  // [0, 1)
  double normal();   // N(0, 1), Box-Muller
 private:
  uint64_t state_;
};

// Replaces the head node's weight/bias (in `g`, by name) with a fresh layer of `num_classes`
// outputs. Returns false when the head already has that many outputs.
bool replace_head(Graph& g, size_t head_node, int num_classes, TrainOptions::HeadInit init, uint64_t seed);
// Output count of a Conv/Gemm/MatMul node with a constant weight.
int64_t layer_outputs(const Graph& g, const Node& n);
// Name of the constant bias of trainable-capable node g.nodes[idx] (Conv/Gemm input 2, or the
// constant of the Add following a MatMul), or "".
std::string layer_bias(const Graph& g, size_t idx);
// The Add adding a constant vector to MatMul g.nodes[idx]'s output (its only reader), or -1.
int matmul_bias_add(const Graph& g, size_t idx);

SplitModel split_model(const std::string& path, const TrainOptions& opt);

// State shared by the steps of a training plan while it runs.
struct RunState {
  const int32_t* labels = nullptr;
  uint64_t dropout_seed = 0;
  kernels::XentResult xent;
};

// Training (or evaluation) plan of the suffix for one batch size.
struct TrainPlan {
  Plan plan;                               // steps + buffers with arena offsets
  std::vector<TensorLoc> frontier;         // where each frontier value goes (plan.inputs order)
  std::vector<size_t> frontier_floats;
  TensorLoc logits;
  size_t batch = 0, classes = 0;
  // Conv weights whose packed layout differs from ONNX: repacked when the param changed.
  struct Repack {
    Param* param;
    std::shared_ptr<std::vector<float>> packed;
    kernels::Conv2dParams p;
    uint64_t version = UINT64_MAX;
  };
  std::vector<Repack> repacks;
  std::vector<Param*> unwritten_grads;     // params whose gradient no step writes (zeroed)
  std::vector<std::shared_ptr<const void>> keep;  // folded BN scales etc.
  std::shared_ptr<RunState> state;
};

// Builds the suffix plan for `batch` (frontier shapes given). `train`: Dropout active, loss
// gradient and backward steps; otherwise forward (+ loss when labels are given at run time).
TrainPlan build_train_plan(const SplitModel& m, const std::vector<Shape>& frontier_shapes, bool train,
                           size_t threads);
void run_train_plan(TrainPlan& tp, char* arena, const kernels::Parallel& par);

// Checkpoint file (checkpoint.cpp): parameters, momentum, steps, lr, the caller's bytes.
void save_checkpoint_impl(const SplitModel& m, uint64_t steps, float lr, const std::string& path, const std::string& extra);
std::string load_checkpoint_impl(SplitModel& m, uint64_t* steps, float* lr, const std::string& path);

}  // namespace convoy::train

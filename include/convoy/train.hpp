// convoy training add-on: fine-tune the last layers of an ONNX classifier on CPU and export a
// new ONNX model. Implemented in runtime/train/ (part of the convoy library: no OpenCV; the
// image folder pipeline of `convoy finetune` lives in tools/).
//
//   convoy::train::TrainOptions opt;
//   opt.train_last = 2;               // the last 2 layers with weights (Conv/Gemm/MatMul)
//   opt.num_classes = 2;              // replaces the head when the model has another class count
//   convoy::train::Trainer t("resnet18.onnx", opt);
//   for (...) { auto r = t.train_step(images, labels, batch); }   // images [B, C, H, W]
//   t.export_onnx("resnet18_pets.onnx", {{"convoy.labels", "cat\ndog"}});
//
// How it works: the model is loaded without fusions; layers whose output does not depend on a
// trainable parameter form the frozen prefix, planned and run by the inference runtime (all
// graph passes on, no gradient buffers, no saved activations); the rest is the trainable
// suffix, run by a training plan of forward steps (saving what backward needs), the loss, and
// backward steps, whose buffers get arena offsets by liveness like any plan. BatchNormalization
// runs in eval mode (frozen statistics and affine parameters); Dropout is active in train_step
// (seeded, reproducible) and off in evaluate.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

namespace convoy::train {

struct TrainOptions {
  // Trainable layers: the last `train_last` nodes with weights (Conv, Gemm, MatMul with a
  // constant weight) in graph order, or exactly the nodes named in `train_nodes` when it is
  // not empty. Their weight and bias initializers are the trainable parameters.
  int train_last = 1;
  std::vector<std::string> train_nodes;
  // 0: keep the model's head. Otherwise, when the last layer's output count differs, that layer
  // is replaced by a freshly initialised one with num_classes outputs (and is trainable).
  int num_classes = 0;
  // kNormal: weights N(0, 0.01), bias 0. kKaiming: PyTorch nn.Linear/Conv2d default,
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. Seeded by `seed` (splitmix64).
  enum class HeadInit { kNormal, kKaiming } head_init = HeadInit::kNormal;
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  uint64_t seed = 0;  // new-head initialisation and Dropout masks
  int threads = 0;    // 0: all hardware threads
};

struct ParamInfo {
  std::string name;            // initializer name in the ONNX model
  std::string node;            // node that uses it
  std::vector<int64_t> shape;
};

struct MemoryReport {
  size_t frozen_arena_bytes = 0;    // inference arena of the frozen prefix
  size_t train_arena_bytes = 0;     // forward + saved activations + backward of the suffix, by liveness
  size_t train_live_bound_bytes = 0;
  size_t param_bytes = 0;           // trainable parameters
  size_t grad_bytes = 0;            // their gradients
  size_t optimizer_bytes = 0;       // momentum buffers
  size_t weight_bytes = 0;          // all model weights (frozen ones held once)
};

struct StepResult {
  double loss = 0;      // mean softmax cross-entropy over the batch
  size_t correct = 0;   // arg-max == label
  size_t count = 0;
};

class Trainer {
 public:
  // Loads the model; throws convoy::Error naming the model (and node) when it cannot be trained:
  // no trainable layer found, an op in the trainable suffix without a backward, a head that is
  // not a Gemm/MatMul/Conv, more than one input or output.
  Trainer(const std::string& model_path, const TrainOptions& options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Per-image input shape [C, H, W] (batch dimension excluded) and the class count.
  std::vector<int64_t> input_shape() const;
  int num_classes() const;
  const std::map<std::string, std::string>& metadata() const;  // the source model's metadata_props
  std::vector<ParamInfo> trainable() const;
  MemoryReport memory(size_t batch);  // plans for this batch size if needed

  // One SGD step on a batch: images [batch, C, H, W] (C order), labels in [0, num_classes).
  // Returns the loss and accuracy of the forward pass before the update.
  StepResult train_step(const float* images, const int32_t* labels, size_t batch);
  // Forward only (Dropout off, no update): loss and accuracy.
  StepResult evaluate(const float* images, const int32_t* labels, size_t batch);
  // Logits [batch, num_classes] of the current weights (Dropout off).
  std::vector<float> predict(const float* images, size_t batch);

  // Gradients of the last train_step's loss (before its update), by parameter name. For tests.
  std::map<std::string, std::vector<float>> last_gradients() const;
  // Current trainable parameter values by name.
  std::map<std::string, std::vector<float>> parameters() const;

  float lr() const;
  void set_lr(float lr);
  uint64_t steps() const;  // SGD steps taken (Dropout masks are seeded by (seed, step))

  // Checkpoint: parameters, momentum buffers, step count, lr and the caller's `extra` bytes
  // (e.g. the loop state of `convoy finetune`). Written atomically (temp file + rename).
  void save_checkpoint(const std::string& path, const std::string& extra) const;
  // Restores a checkpoint written for the same model and options; returns its `extra` bytes.
  // Throws convoy::Error when the file is unreadable, truncated or belongs to another model.
  std::string load_checkpoint(const std::string& path);

  // Writes the source model's graph (opset preserved) with the trained weights and, when the
  // head was replaced, the new head; metadata = the source's metadata_props overridden by
  // `metadata`. Atomic (temp file + rename).
  void export_onnx(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy::train

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

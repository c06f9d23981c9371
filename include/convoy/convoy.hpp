// convoy C++ API: load an ONNX model once, run it from sessions.
//
//   auto model = convoy::Model::load("resnet18.onnx");
//   convoy::Session session(model, {.threads = 2});
//   convoy::Tensor x({1, 3, 224, 224});          // fill x.data()
//   std::vector<convoy::Tensor> y = session.run({x});
//
// A Model is immutable after load and may be shared by many sessions and threads; packed weights
// are held once per Model, whatever the number of sessions. A Session owns its plans (one per
// concrete input shape, cached) and arena; it is not re-entrant: run one call at a time per
// session (a second concurrent call throws convoy::Error). docs/EMBEDDING.md has the rules.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

// The shared library exports exactly what this header declares (it is built with hidden
// visibility), so everything below is marked default-visible.
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

namespace convoy {

// Every error convoy reports: "<model>: node '<name>' (<Op>): <reason>".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string version();

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // -1 where the model leaves a dimension dynamic
  std::string dtype;           // "float32", "int64", ...
};

// A dense float32 tensor, C order.
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape);
  Tensor(std::vector<int64_t> shape, std::vector<float> data);
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t size() const { return data_.size(); }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::vector<float>& values() { return data_; }
  const std::vector<float>& values() const { return data_; }

 private:
  std::vector<int64_t> shape_;
  std::vector<float> data_;
};

struct LoadOptions {
  bool optimize = true;     // run the graph passes (folding, fusion); off only for debugging
  bool fc_to_conv = false;  // convert the fully-connected head to convolutions (dense scoring)
};

class Model {
 public:
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& options = {});
  static std::shared_ptr<Model> from_bytes(std::span<const uint8_t> bytes, const std::string& name = "<memory>",
                                           const LoadOptions& options = {});
  ~Model();

  const std::string& path() const;
  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  // ONNX metadata_props (convoy.* keys carry the preprocessing, see docs/ARCHITECTURE.md).
  const std::map<std::string, std::string>& metadata() const;
  int64_t opset() const;
  std::string producer() const;
  size_t parameter_count() const;  // float parameters after folding
  size_t node_count() const;       // nodes after the graph passes
  // Index of the input/output called `name` in inputs()/outputs(); -1 when there is none.
  int input_index(const std::string& name) const;
  int output_index(const std::string& name) const;
  size_t weight_bytes() const;         // float constants (weights) as loaded, shared by all sessions
  size_t packed_weight_bytes() const;  // packed copies currently held for the sessions, each held once
  // Dense scoring geometry (models loaded with fc_to_conv): the training input size [H, W]
  // (one score-map cell = one crop of this size) and the total stride of the conv/pool stack
  // (cell (i, j) = crop with top-left pixel (i*stride, j*stride)).
  std::vector<int64_t> training_size() const;
  int64_t dense_stride() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
  int threads = 0;        // 0: all hardware threads
  size_t max_memory = 0;  // bytes; 0: no cap. A plan whose arena + weights exceed it is refused
                          // with a convoy::Error (checked when the plan for a new shape is built).
};

// One plan step as `convoy inspect` prints it.
struct StepInfo {
  std::string node;                          // source node name
  std::string op;                            // e.g. "Conv"
  std::string fused;                         // e.g. "Relu" or "Add+Relu"; empty when none
  std::vector<std::vector<int64_t>> input_shapes;
  std::vector<int64_t> output_shape;
  size_t output_offset = 0;                  // arena byte offset of the output
  double flops = 0;                          // multiply-adds count as 2
};

struct PlanInfo {
  std::vector<StepInfo> steps;
  size_t arena_bytes = 0;          // size of the one arena
  size_t intermediate_bytes = 0;   // sum of all intermediate tensors (no reuse)
  size_t live_bound_bytes = 0;     // max over steps of the bytes live at once
  size_t weight_bytes = 0;          // the model's float weights as loaded
  size_t held_weight_bytes = 0;     // weights held now: raw ones not (only) packed + packed copies
  double flops = 0;
};

// Writes `out` = `in` with its fully-connected head converted to convolutions and a dynamic
// HxW input (an ONNX model any runtime can load). Throws convoy::Error when the head cannot be
// converted exactly; the output file is written whole or not at all.
void convert_fc_to_conv(const std::string& in, const std::string& out);

class Session {
 public:
  Session(std::shared_ptr<const Model> model, const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return *model_; }
  int threads() const;

  // Inputs in the model's input order; outputs in the model's output order.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  // Inputs by name (every model input, any order); every output by name.
  std::map<std::string, Tensor> run_named(const std::map<std::string, Tensor>& inputs);
  // Into caller-provided buffers, no allocation once the plan for these shapes exists:
  // inputs[i] holds exactly product(input_shapes[i]) floats, outputs[i] at least
  // product(output_shapes(input_shapes)[i]) floats (both checked).
  void run(const std::vector<std::span<const float>>& inputs, const std::vector<std::vector<int64_t>>& input_shapes,
           const std::vector<std::span<float>>& outputs);
  // Output shapes for these input shapes (builds and caches the plan).
  std::vector<std::vector<int64_t>> output_shapes(const std::vector<std::vector<int64_t>>& input_shapes);
  // Bytes this session holds: its arena plus the packed weights of its plans (shared with the
  // other sessions of the model, see Model::packed_weight_bytes).
  size_t memory_bytes() const;
  // Builds (or fetches from the cache) the plan for these input shapes and describes it.
  PlanInfo plan_info(const std::vector<std::vector<int64_t>>& input_shapes);
  // run() that also times each plan step: step_seconds[i] is the wall time of
  // plan_info(shapes).steps[i] (resized to the step count). For `convoy bench --per-op`; the
  // plain run() pays nothing for it.
  std::vector<Tensor> run_profiled(const std::vector<Tensor>& inputs, std::vector<double>* step_seconds);

  struct Impl;

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

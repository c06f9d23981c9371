#include <thread>

#include "importer/onnx_reader.h"
#include "importer/onnx_writer.h"
#include "importer/passes/passes.h"
#include "importer/pipeline.h"
#include "runtime/api/model_impl.h"
#include "runtime/error.h"

namespace convoy {

std::string version() { return "0.1.0"; }

Tensor::Tensor(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  data_.assign(static_cast<size_t>(checked_numel(shape_, "tensor")), 0.f);
}

Tensor::Tensor(std::vector<int64_t> shape, std::vector<float> data) : shape_(std::move(shape)), data_(std::move(data)) {
  if (static_cast<int64_t>(data_.size()) != checked_numel(shape_, "tensor"))
    fail(str_cat("tensor of shape ", shape_str(shape_), " needs ", checked_numel(shape_, "tensor"), " values, got ", data_.size()));
}

namespace {

std::shared_ptr<Model> finish(Graph g, const LoadOptions& options, std::unique_ptr<Model::Impl>& impl) {
  check_supported_ops(g);
  if (options.fc_to_conv) prepare_fc_to_conv(g);
  if (options.optimize) optimize_graph(g);
  impl->graph = std::move(g);
  const Graph& gr = impl->graph;
  for (const std::string& n : gr.inputs) {
    const ValueInfo& v = gr.infos.at(n);
    impl->inputs.push_back({n, v.shape, dtype_name(v.dtype)});
  }
  for (const std::string& n : gr.outputs) {
    auto it = gr.infos.find(n);
    TensorInfo t{n, {}, "float32"};
    if (it != gr.infos.end()) {
      t.shape = it->second.shape;
      if (it->second.dtype != DType::kUndefined) t.dtype = dtype_name(it->second.dtype);
    }
    impl->outputs.push_back(t);
  }
  for (const auto& kv : gr.constants)
    if (kv.second->dtype == DType::kFloat32) impl->weight_bytes += kv.second->bytes.size();
  return nullptr;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  finish(read_onnx_file(path), options, impl);
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

std::shared_ptr<Model> Model::from_bytes(std::span<const uint8_t> bytes, const std::string& name, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  finish(read_onnx_bytes(bytes, name), options, impl);
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

const std::string& Model::path() const { return impl_->graph.model_path; }
const std::vector<TensorInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->outputs; }
const std::map<std::string, std::string>& Model::metadata() const { return impl_->graph.metadata; }
int64_t Model::opset() const { return impl_->graph.opset; }
std::string Model::producer() const { return impl_->graph.producer; }
size_t Model::node_count() const { return impl_->graph.nodes.size(); }
size_t Model::weight_bytes() const { return impl_->weight_bytes; }
size_t Model::packed_weight_bytes() const { return impl_->packed.bytes(); }

int Model::input_index(const std::string& name) const {
  for (size_t i = 0; i < impl_->inputs.size(); ++i)
    if (impl_->inputs[i].name == name) return static_cast<int>(i);
  return -1;
}

int Model::output_index(const std::string& name) const {
  for (size_t i = 0; i < impl_->outputs.size(); ++i)
    if (impl_->outputs[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<int64_t> Model::training_size() const { return passes::training_size(impl_->graph); }

// Product of the strides along the first-input path from the output back to the input.
int64_t Model::dense_stride() const {
  const Graph& g = impl_->graph;
  auto producers = g.producers();
  int64_t stride = 1;
  std::string v = g.outputs.at(0);
  for (auto it = producers.find(v); it != producers.end(); it = producers.find(v)) {
    const Node& n = g.nodes[it->second];
    if ((n.op_type == "Conv" || n.op_type == "MaxPool" || n.op_type == "AveragePool") && n.has("strides")) {
      const auto& s = n.attrs.at("strides").ints;
      if (!s.empty()) stride *= s[0];
    }
    if (n.inputs.empty()) break;
    v = n.inputs[0];
  }
  return stride;
}

void convert_fc_to_conv(const std::string& in, const std::string& out) {
  Graph g = read_onnx_file(in);
  check_supported_ops(g);
  prepare_fc_to_conv(g);
  write_onnx_file(g, out);
}

size_t Model::parameter_count() const {
  size_t n = 0;
  for (const auto& kv : impl_->graph.constants)
    if (kv.second->dtype == DType::kFloat32) n += static_cast<size_t>(kv.second->numel());
  return n;
}

}  // namespace convoy

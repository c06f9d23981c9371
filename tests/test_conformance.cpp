// ONNX node conformance: every $CONVOY_TEST_DATA/node/test_* case (tests/gen/gen_node_tests.py)
// whose ops are all in convoy's claimed set and whose tensors are float32 must reproduce the
// ONNX reference outputs. Cases listed in tests/conformance_exclusions.txt are skipped with the
// reason given there; every skip is printed with its reason.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"
#include "npy_test_util.h"
#include "onnx/onnx_pb.h"  // defines ONNX_API, then includes onnx-ml.pb.h (ONNX_ML=1)

namespace fs = std::filesystem;

namespace {

// The ops convoy claims (README's op table). A case using any other op is skipped.
const std::set<std::string> kClaimedOps = {
    "Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN", "BatchNormalization",
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Gemm", "MatMul", "Add", "Sub",
    "Mul", "Div", "Sum", "Flatten", "Reshape", "Transpose", "Concat", "Pad", "Dropout", "Identity", "Constant",
    "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Slice", "ConstantOfShape", "ReduceMean"};

// Inputs that older opsets had as attributes and that real models always feed from constants:
// Clip's min/max, Pad's pads/constant_value/axes, Dropout's ratio/training_mode. The node tests
// pass them as graph inputs; they are baked into the model like the int64 inputs below.
bool is_parameter_slot(const std::string& op, int slot) {
  if (op == "Clip") return slot == 1 || slot == 2;
  if (op == "Pad") return slot >= 1;
  if (op == "Dropout") return slot >= 1;
  return false;
}

struct Exclusion {
  std::string pattern;  // exact case name, or a prefix when it ended in '*'
  bool prefix = false;
  std::string reason;
  mutable int hits = 0;
};

std::vector<Exclusion> read_exclusions(const fs::path& path) {
  std::vector<Exclusion> list;
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot read ", path.string());
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    Exclusion e;
    if (!(ss >> e.pattern) || e.pattern[0] == '#') continue;
    std::getline(ss >> std::ws, e.reason);
    REQUIRE_MESSAGE(!e.reason.empty(), path.string(), ": exclusion '", e.pattern, "' gives no reason");
    if (e.pattern.back() == '*') {
      e.prefix = true;
      e.pattern.pop_back();
    }
    list.push_back(e);
  }
  return list;
}

const Exclusion* find_exclusion(const std::vector<Exclusion>& list, const std::string& name) {
  for (const Exclusion& e : list) {
    if (e.prefix ? name.compare(0, e.pattern.size(), e.pattern) == 0 : name == e.pattern) return &e;
  }
  return nullptr;
}

std::string dtype_name(int32_t elem_type) {
  if (elem_type < 0) return "not a tensor";
  return onnx::TensorProto_DataType_IsValid(elem_type)
             ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(elem_type))
             : std::to_string(elem_type);
}

int32_t elem_type(const onnx::ValueInfoProto& v) {
  return v.type().has_tensor_type() ? v.type().tensor_type().elem_type() : -1;
}

template <typename Proto>
bool parse_file(const fs::path& path, Proto& proto) {
  const std::vector<char> bytes = convoy::testing::read_file_bytes(path);
  return proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

std::vector<float> float_values(const onnx::TensorProto& t) {
  if (t.has_raw_data()) {
    // TensorProto raw_data is little-endian, as is every host convoy builds for.
    std::vector<float> v(t.raw_data().size() / sizeof(float));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
    return v;
  }
  return {t.float_data().begin(), t.float_data().end()};
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

// "" when `got` matches the reference: |a-b| <= atol + rtol*|b|, atol scaled by max|ref|.
std::string compare(const convoy::Tensor& got, const onnx::TensorProto& want) {
  const std::vector<int64_t> want_shape(want.dims().begin(), want.dims().end());
  if (got.shape() != want_shape) return "shape " + shape_str(got.shape()) + ", expected " + shape_str(want_shape);
  const std::vector<float> ref = float_values(want);
  if (ref.size() != got.size()) return "element count differs from the reference";
  float max_ref = 0;
  for (float r : ref) {
    if (std::isfinite(r)) max_ref = std::max(max_ref, std::fabs(r));
  }
  const float rtol = 1e-4f, atol = 1e-5f * std::max(1.0f, max_ref);
  for (size_t i = 0; i < ref.size(); ++i) {
    const float a = got.data()[i], b = ref[i];
    const bool ok = std::isnan(b) ? std::isnan(a) : std::isinf(b) ? a == b : std::fabs(a - b) <= atol + rtol * std::fabs(b);
    if (!ok) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %zu: %.8g, expected %.8g (rtol %g, atol %g)", i,
                    static_cast<double>(a), static_cast<double>(b), static_cast<double>(rtol),
                    static_cast<double>(atol));
      return buf;
    }
  }
  return "";
}

struct Outcome {
  enum Kind { kPass, kSkip, kFail } kind = kPass;
  std::string reason;
};

Outcome run_data_set(const onnx::ModelProto& proto, const std::set<std::string>& baked, const fs::path& set_dir,
                     const std::string& case_name) {
  const onnx::GraphProto& graph = proto.graph();
  onnx::ModelProto rewritten = proto;
  onnx::GraphProto* g = rewritten.mutable_graph();
  g->clear_input();
  std::map<std::string, convoy::Tensor> feeds;
  for (int j = 0; j < graph.input_size(); ++j) {
    const onnx::ValueInfoProto& in = graph.input(j);
    onnx::TensorProto t;
    const fs::path file = set_dir / ("input_" + std::to_string(j) + ".pb");
    if (!parse_file(file, t)) return {Outcome::kFail, "cannot parse " + file.string()};
    if (baked.count(in.name())) {
      // Convoy computes float32 with shapes/indices/parameters known at load time: the test's
      // value becomes an initializer and the graph input goes away.
      t.set_name(in.name());
      *g->add_initializer() = t;
    } else {
      *g->add_input() = in;
      feeds[in.name()] = convoy::Tensor(std::vector<int64_t>(t.dims().begin(), t.dims().end()), float_values(t));
    }
  }
  std::string bytes;
  if (!rewritten.SerializeToString(&bytes)) return {Outcome::kFail, "cannot serialise the rewritten model"};

  auto model = convoy::Model::from_bytes(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), case_name);
  std::vector<convoy::Tensor> inputs;
  for (const convoy::TensorInfo& info : model->inputs()) {
    auto it = feeds.find(info.name);
    if (it == feeds.end()) return {Outcome::kFail, "convoy expects input '" + info.name + "' the test does not feed"};
    inputs.push_back(it->second);
  }
  if (inputs.size() != feeds.size()) return {Outcome::kFail, "convoy ignores some graph inputs"};

  convoy::Session session(model, {.threads = 2});
  const std::vector<convoy::Tensor> outputs = session.run(inputs);
  if (outputs.size() != model->outputs().size() || outputs.size() != static_cast<size_t>(graph.output_size()))
    return {Outcome::kFail, "convoy returned " + std::to_string(outputs.size()) + " outputs, expected " +
                                std::to_string(graph.output_size())};
  for (int k = 0; k < graph.output_size(); ++k) {
    const std::string& name = graph.output(k).name();
    size_t pos = 0;
    while (pos < outputs.size() && model->outputs()[pos].name != name) ++pos;
    if (pos == outputs.size()) return {Outcome::kFail, "convoy has no output '" + name + "'"};
    onnx::TensorProto want;
    const fs::path file = set_dir / ("output_" + std::to_string(k) + ".pb");
    if (!parse_file(file, want)) return {Outcome::kFail, "cannot parse " + file.string()};
    const std::string diff = compare(outputs[pos], want);
    if (!diff.empty()) return {Outcome::kFail, set_dir.filename().string() + " output '" + name + "': " + diff};
  }
  return {};
}

Outcome run_case(const fs::path& dir) {
  const std::string name = dir.filename().string();
  onnx::ModelProto proto;
  if (!parse_file(dir / "model.onnx", proto)) return {Outcome::kFail, "cannot parse model.onnx"};
  const onnx::GraphProto& graph = proto.graph();

  std::set<std::string> unclaimed;
  for (const onnx::NodeProto& node : graph.node()) {
    const bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    if (!default_domain || !kClaimedOps.count(node.op_type()))
      unclaimed.insert(default_domain ? node.op_type() : node.domain() + "." + node.op_type());
  }
  if (!unclaimed.empty()) {
    std::string ops;
    for (const std::string& op : unclaimed) {
      if (!ops.empty()) ops += ", ";
      ops += op;
    }
    return {Outcome::kSkip, "op " + ops + " not claimed"};
  }
  for (const onnx::ValueInfoProto& out : graph.output()) {
    if (elem_type(out) != onnx::TensorProto::FLOAT)
      return {Outcome::kSkip, "dtype: output '" + out.name() + "' is " + dtype_name(elem_type(out))};
  }
  std::set<std::string> parameter_inputs;
  for (const onnx::NodeProto& node : graph.node()) {
    for (int i = 0; i < node.input_size(); ++i) {
      if (is_parameter_slot(node.op_type(), i)) parameter_inputs.insert(node.input(i));
    }
  }
  std::set<std::string> baked;
  for (const onnx::ValueInfoProto& in : graph.input()) {
    const int32_t t = elem_type(in);
    if (t == onnx::TensorProto::INT64 || t == onnx::TensorProto::INT32 || parameter_inputs.count(in.name())) {
      baked.insert(in.name());
    } else if (t != onnx::TensorProto::FLOAT) {
      return {Outcome::kSkip, "dtype: input '" + in.name() + "' is " + dtype_name(t)};
    }
  }

  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory() && entry.path().filename().string().starts_with("test_data_set_"))
      sets.push_back(entry.path());
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return {Outcome::kFail, "no test_data_set_* directory"};
  try {
    for (const fs::path& set_dir : sets) {
      Outcome o = run_data_set(proto, baked, set_dir, name);
      if (o.kind != Outcome::kPass) return o;
    }
  } catch (const std::exception& e) {
    return {Outcome::kFail, e.what()};
  }
  return {};
}

}  // namespace

TEST_CASE("ONNX node conformance tests") {
  const fs::path data = convoy::testing::test_data_dir();
  const fs::path node_dir = data / "node";
  REQUIRE_MESSAGE(!data.empty(), convoy::testing::kMissingDataHint);
  REQUIRE_MESSAGE(fs::is_directory(node_dir), convoy::testing::kMissingDataHint, " (no ", node_dir.string(), ")");
  const std::vector<Exclusion> exclusions =
      read_exclusions(fs::path(CONVOY_SOURCE_DIR) / "tests" / "conformance_exclusions.txt");

  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(node_dir)) {
    if (entry.is_directory() && entry.path().filename().string().starts_with("test_")) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  REQUIRE_MESSAGE(cases.size() > 500, "only ", cases.size(), " node cases in ", node_dir.string(),
                  "; regenerate with tests/gen/generate_all.sh");

  int passed = 0, skipped = 0;
  std::vector<std::string> failures;
  for (const fs::path& dir : cases) {
    const std::string name = dir.filename().string();
    Outcome o;
    if (const Exclusion* e = find_exclusion(exclusions, name)) {
      ++e->hits;
      o = {Outcome::kSkip, "excluded: " + e->reason};
    } else {
      try {
        o = run_case(dir);
      } catch (const std::exception& e) {
        o = {Outcome::kFail, e.what()};
      }
      // Every op of such a case is claimed: its exclusion must be listed with a reason.
      if (o.kind == Outcome::kSkip && o.reason.rfind("dtype:", 0) == 0)
        o = {Outcome::kFail, o.reason + "; list the case in tests/conformance_exclusions.txt with its reason"};
    }
    switch (o.kind) {
      case Outcome::kPass: ++passed; break;
      case Outcome::kSkip:
        ++skipped;
        std::printf("SKIP %s: %s\n", name.c_str(), o.reason.c_str());
        break;
      case Outcome::kFail:
        failures.push_back(name + ": " + o.reason);
        std::printf("FAIL %s: %s\n", name.c_str(), o.reason.c_str());
        break;
    }
  }
  for (const Exclusion& e : exclusions) {
    if (e.hits == 0) std::printf("note: exclusion '%s%s' matches no case\n", e.pattern.c_str(), e.prefix ? "*" : "");
  }
  std::printf("conformance: %d passed, %zu failed, %d skipped\n", passed, failures.size(), skipped);
  std::fflush(stdout);
  CHECK_MESSAGE(passed > 0, "no conformance case passed");
  for (const std::string& f : failures) CHECK_MESSAGE(false, f);
}

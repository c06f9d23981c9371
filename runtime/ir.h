// convoy's graph IR: values (tensors) by name, nodes in topological order, constants.
// Only importer/onnx_reader.cpp sees protobuf; everything after it sees this.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace convoy {

// ONNX TensorProto.DataType codes for the types convoy handles.
enum class DType : int32_t {
  kUndefined = 0, kFloat32 = 1, kUInt8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7, kBool = 9,
  kFloat16 = 10, kFloat64 = 11,
};
const char* dtype_name(DType t);
size_t dtype_size(DType t);  // 0 for unsupported

using Shape = std::vector<int64_t>;  // -1: unknown (dynamic) dimension

// Largest tensor convoy computes while loading or planning (folded constants, ConstantOfShape):
// a hostile model must not make the planner allocate unbounded memory. Weights read from the
// file are bounded by the file itself.
inline constexpr size_t kMaxFoldedBytes = size_t{1} << 30;

// Overflow-checked element count; throws convoy::Error naming `what` on overflow/negative.
int64_t checked_numel(const Shape& s, const std::string& what);
std::string shape_str(const Shape& s);

// A constant tensor (initializer, Constant node, folded value). Bytes are owned; float32 data is
// 4-byte aligned (std::string storage from the allocator is at least 16-byte aligned).
struct ConstTensor {
  DType dtype = DType::kFloat32;
  Shape shape;
  std::string bytes;

  int64_t numel() const;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
  float* f32() { return reinterpret_cast<float*>(bytes.data()); }
  const int64_t* i64() const { return reinterpret_cast<const int64_t*>(bytes.data()); }
  int64_t* i64() { return reinterpret_cast<int64_t*>(bytes.data()); }
  // Values converted to int64 / double whatever the stored integer/float type.
  std::vector<int64_t> as_i64() const;
  std::vector<double> as_f64() const;

  static std::shared_ptr<ConstTensor> make(DType t, Shape shape);  // zero-filled
  static std::shared_ptr<ConstTensor> from_f32(Shape shape, const std::vector<float>& v);
  static std::shared_ptr<ConstTensor> from_i64(Shape shape, const std::vector<int64_t>& v);
};
using ConstPtr = std::shared_ptr<const ConstTensor>;

struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kGraph, kOther } kind = Kind::kOther;
  float f = 0;
  int64_t i = 0;
  std::string s;
  ConstPtr t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;
  std::vector<std::string> inputs;   // "" for an omitted optional input
  std::vector<std::string> outputs;  // "" for an omitted optional output
  std::map<std::string, Attribute> attrs;
  // Set by fusion passes: the activation/residual folded into this node, for the plan.
  std::vector<std::string> fused;

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
};

struct ValueInfo {
  DType dtype = DType::kUndefined;
  Shape shape;          // may hold -1 for dynamic dims; empty + known_rank=false when unknown
  bool known_rank = false;
};

struct Graph {
  std::string model_path;  // for messages
  std::string name;
  int64_t opset = 0;       // default-domain opset
  int64_t ir_version = 0;
  std::string producer;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> inputs;   // runtime inputs (initializers removed)
  std::vector<std::string> outputs;
  std::map<std::string, ValueInfo> infos;      // declared types/shapes of inputs/outputs
  std::map<std::string, ConstPtr> constants;  // initializers and folded values
  std::vector<Node> nodes;                    // topologically sorted

  bool is_const(const std::string& v) const { return constants.count(v) != 0; }
  const ConstTensor* constant(const std::string& v) const {
    auto it = constants.find(v);
    return it == constants.end() ? nullptr : it->second.get();
  }
  // Context prefix for messages about a node.
  std::string where(const Node& n) const;
  // Number of nodes reading each value, graph outputs count as a reader.
  std::map<std::string, int> use_counts() const;
  // Node index producing each value.
  std::map<std::string, size_t> producers() const;
};

}  // namespace convoy

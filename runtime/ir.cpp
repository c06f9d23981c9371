#include "runtime/ir.h"

#include <cstring>
#include <limits>

#include "runtime/error.h"

namespace convoy {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    default: return "unsupported";
  }
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: return 4;
    case DType::kUInt8: case DType::kInt8: case DType::kBool: return 1;
    case DType::kInt64: case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    default: return 0;
  }
}

// Element counts are capped well below what fits a size_t of bytes.
static constexpr int64_t kMaxElements = int64_t{1} << 40;

int64_t checked_numel(const Shape& s, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail(str_cat(what, ": negative or unknown dimension in shape ", shape_str(s)));
    if (d != 0 && n > kMaxElements / d) fail(str_cat(what, ": shape ", shape_str(s), " has too many elements"));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ',';
    if (s[i] < 0) r += '?';
    else r += std::to_string(s[i]);
  }
  r += ']';
  return r;
}

int64_t ConstTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<int64_t> ConstTensor::as_i64() const {
  const int64_t n = numel();
  std::vector<int64_t> r(static_cast<size_t>(n));
  const char* p = bytes.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::kInt64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); r[i] = v; break; }
      case DType::kInt32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); r[i] = v; break; }
      case DType::kUInt8: r[i] = static_cast<uint8_t>(p[i]); break;
      case DType::kInt8: case DType::kBool: r[i] = static_cast<int8_t>(p[i]); break;
      case DType::kFloat32: { float v; std::memcpy(&v, p + 4 * i, 4); r[i] = static_cast<int64_t>(v); break; }
      case DType::kFloat64: { double v; std::memcpy(&v, p + 8 * i, 8); r[i] = static_cast<int64_t>(v); break; }
      default: fail(str_cat("cannot read ", dtype_name(dtype), " tensor as integers"));
    }
  }
  return r;
}

std::vector<double> ConstTensor::as_f64() const {
  if (dtype == DType::kFloat32) {
    const int64_t n = numel();
    std::vector<double> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) { float v; std::memcpy(&v, bytes.data() + 4 * i, 4); r[i] = v; }
    return r;
  }
  if (dtype == DType::kFloat64) {
    const int64_t n = numel();
    std::vector<double> r(static_cast<size_t>(n));
    std::memcpy(r.data(), bytes.data(), static_cast<size_t>(n) * 8);
    return r;
  }
  auto iv = as_i64();
  return std::vector<double>(iv.begin(), iv.end());
}

std::shared_ptr<ConstTensor> ConstTensor::make(DType t, Shape shape) {
  auto c = std::make_shared<ConstTensor>();
  c->dtype = t;
  c->shape = std::move(shape);
  const size_t bytes = static_cast<size_t>(checked_numel(c->shape, "constant")) * dtype_size(t);
  if (bytes > kMaxFoldedBytes)
    fail(str_cat("a constant of shape ", shape_str(c->shape), " needs ", bytes >> 20, " MiB, over convoy's limit of ",
                 kMaxFoldedBytes >> 20, " MiB for values computed at load/plan time"));
  c->bytes.assign(bytes, '\0');
  return c;
}

std::shared_ptr<ConstTensor> ConstTensor::from_f32(Shape shape, const std::vector<float>& v) {
  auto c = make(DType::kFloat32, std::move(shape));
  if (!c->bytes.empty()) std::memcpy(c->bytes.data(), v.data(), c->bytes.size());  // v.data() may be null
  return c;
}

std::shared_ptr<ConstTensor> ConstTensor::from_i64(Shape shape, const std::vector<int64_t>& v) {
  auto c = make(DType::kInt64, std::move(shape));
  if (!c->bytes.empty()) std::memcpy(c->bytes.data(), v.data(), c->bytes.size());  // v.data() may be null
  return c;
}

std::string Graph::where(const Node& n) const { return node_context(model_path, n.name, n.op_type); }

std::map<std::string, int> Graph::use_counts() const {
  std::map<std::string, int> uses;
  for (const Node& n : nodes)
    for (const std::string& i : n.inputs)
      if (!i.empty()) ++uses[i];
  for (const std::string& o : outputs) ++uses[o];
  return uses;
}

std::map<std::string, size_t> Graph::producers() const {
  std::map<std::string, size_t> p;
  for (size_t k = 0; k < nodes.size(); ++k)
    for (const std::string& o : nodes[k].outputs)
      if (!o.empty()) p[o] = k;
  return p;
}

}  // namespace convoy

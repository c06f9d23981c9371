#include "importer/onnx_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <set>


#include "importer/onnx_wire.h"
#include "onnx/onnx_pb.h"
#include "runtime/error.h"
#include "runtime/huge_pages.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

struct ReadCtx {
  std::string model;    // path or name, for messages
  std::string dir;      // directory of the model file; empty: external data refused
  int fd = -1;          // the model file, for initializer payloads cut out by onnx_wire
  const std::vector<RawDataRef>* raw_refs = nullptr;
};

struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

// Resolves an external-data location strictly inside the model directory.
std::string external_path(const ReadCtx& ctx, const std::string& tensor, const std::string& location) {
  const std::string what = str_cat(ctx.model, ": initializer '", tensor, "'");
  if (ctx.dir.empty()) fail(str_cat(what, ": external data is not allowed for a model loaded from memory"));
  if (location.empty()) fail(str_cat(what, ": external data has no location"));
  fs::path loc(location);
  if (loc.is_absolute()) fail(str_cat(what, ": external data path '", location, "' is absolute"));
  for (const auto& part : loc)
    if (part == "..") fail(str_cat(what, ": external data path '", location, "' leaves the model directory"));
  std::error_code ec;
  const fs::path dir = fs::canonical(ctx.dir, ec);
  if (ec) fail(str_cat(what, ": cannot resolve model directory '", ctx.dir, "'"));
  const fs::path full = fs::canonical(dir / loc, ec);
  if (ec) fail(str_cat(what, ": external data file '", location, "' not found"));
  auto rel = full.lexically_relative(dir);
  if (rel.empty() || *rel.begin() == "..")
    fail(str_cat(what, ": external data path '", location, "' resolves outside the model directory"));
  if (!fs::is_regular_file(full, ec)) fail(str_cat(what, ": external data '", location, "' is not a regular file"));
  return full.string();
}

void read_external(const ReadCtx& ctx, const onnx::TensorProto& t, size_t expect, std::string& out) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    } catch (const std::exception&) {
      fail(str_cat(ctx.model, ": initializer '", t.name(), "': bad external data ", kv.key(), " '", kv.value(), "'"));
    }
  }
  const std::string path = external_path(ctx, t.name(), location);
  const std::string what = str_cat(ctx.model, ": initializer '", t.name(), "'");
  if (offset < 0) fail(str_cat(what, ": negative external data offset"));
  if (length >= 0 && static_cast<uint64_t>(length) != expect)
    fail(str_cat(what, ": external data length ", length, " does not match its shape (", expect, " bytes)"));
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail(str_cat(what, ": cannot open external data '", location, "': ", std::strerror(errno)));
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) fail(str_cat(what, ": cannot stat external data '", location, "'"));
  if (st.st_nlink > 1) fail(str_cat(what, ": external data '", location, "' is a hard link (may reach outside the model directory)"));
  if (static_cast<uint64_t>(offset) > static_cast<uint64_t>(st.st_size) ||
      expect > static_cast<uint64_t>(st.st_size) - static_cast<uint64_t>(offset))
    fail(str_cat(what, ": external data range (offset ", offset, ", ", expect, " bytes) runs past the end of '",
                 location, "' (", st.st_size, " bytes)"));
  resize_for_weights(out, expect);
  size_t done = 0;
  while (done < expect) {
    ssize_t r = ::pread(f.fd, out.data() + done, expect - done, offset + static_cast<off_t>(done));
    if (r <= 0) fail(str_cat(what, ": read error in external data '", location, "'"));
    done += static_cast<size_t>(r);
  }
}

// Moves the tensor's payload out of the proto (no second copy of large weights).
ConstPtr convert_tensor(const ReadCtx& ctx, onnx::TensorProto& t, const std::string& name,
                        const RawDataRef* raw = nullptr) {
  auto c = std::make_shared<ConstTensor>();
  const std::string what = str_cat(ctx.model, ": tensor '", name, "'");
  c->dtype = static_cast<DType>(t.data_type());
  const size_t esize = dtype_size(c->dtype);
  if (esize == 0) fail(str_cat(what, ": unsupported data type ", t.data_type()));
  for (int64_t d : t.dims()) {
    if (d < 0) fail(str_cat(what, ": negative dimension ", d));
    c->shape.push_back(d);
  }
  const int64_t n = checked_numel(c->shape, what);
  if (static_cast<uint64_t>(n) > (uint64_t{1} << 40) / esize) fail(str_cat(what, ": tensor too large"));
  const size_t bytes = static_cast<size_t>(n) * esize;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    read_external(ctx, t, bytes, c->bytes);
    return c;
  }
  if (raw && raw->present) {
    // The payload stayed in the file: read it once, into its final buffer.
    if (raw->length != bytes)
      fail(str_cat(what, ": raw_data holds ", raw->length, " bytes but shape ", shape_str(c->shape), " of ",
                   dtype_name(c->dtype), " needs ", bytes));
    resize_for_weights(c->bytes, bytes);
    size_t done = 0;
    while (done < bytes) {
      const ssize_t r = ::pread(ctx.fd, c->bytes.data() + done, bytes - done, static_cast<off_t>(raw->offset + done));
      if (r <= 0) fail(str_cat(what, ": read error"));
      done += static_cast<size_t>(r);
    }
    return c;
  }
  if (t.has_raw_data()) {
    if (t.raw_data().size() != bytes)
      fail(str_cat(what, ": raw_data holds ", t.raw_data().size(), " bytes but shape ", shape_str(c->shape), " of ",
                   dtype_name(c->dtype), " needs ", bytes));
    c->bytes.swap(*t.mutable_raw_data());
    return c;
  }
  c->bytes.assign(bytes, '\0');
  auto check = [&](int count) {
    if (static_cast<uint64_t>(count) != static_cast<uint64_t>(n))
      fail(str_cat(what, ": holds ", count, " values but shape ", shape_str(c->shape), " needs ", n));
  };
  switch (c->dtype) {
    case DType::kFloat32: check(t.float_data_size()); if (n) std::memcpy(c->bytes.data(), t.float_data().data(), bytes); break;
    case DType::kInt64: check(t.int64_data_size()); if (n) std::memcpy(c->bytes.data(), t.int64_data().data(), bytes); break;
    case DType::kFloat64: check(t.double_data_size()); if (n) std::memcpy(c->bytes.data(), t.double_data().data(), bytes); break;
    case DType::kInt32: check(t.int32_data_size()); if (n) std::memcpy(c->bytes.data(), t.int32_data().data(), bytes); break;
    case DType::kUInt8: case DType::kInt8: case DType::kBool:
      check(t.int32_data_size());
      for (int64_t i = 0; i < n; ++i) c->bytes[i] = static_cast<char>(t.int32_data(static_cast<int>(i)));
      break;
    case DType::kFloat16:
      check(t.int32_data_size());
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = static_cast<uint16_t>(t.int32_data(static_cast<int>(i)));
        std::memcpy(c->bytes.data() + 2 * i, &h, 2);
      }
      break;
    default: fail(str_cat(what, ": unsupported data type ", t.data_type()));
  }
  return c;
}

ValueInfo convert_value_info(const onnx::ValueInfoProto& v) {
  ValueInfo info;
  if (!v.type().has_tensor_type()) return info;
  const auto& tt = v.type().tensor_type();
  info.dtype = static_cast<DType>(tt.elem_type());
  if (tt.has_shape()) {
    info.known_rank = true;
    for (const auto& d : tt.shape().dim())
      info.shape.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value() : -1);
  }
  return info;
}

Attribute convert_attribute(const ReadCtx& ctx, onnx::AttributeProto& a, const std::string& node) {
  Attribute r;
  using A = onnx::AttributeProto;
  switch (a.type()) {
    case A::FLOAT: r.kind = Attribute::Kind::kFloat; r.f = a.f(); break;
    case A::INT: r.kind = Attribute::Kind::kInt; r.i = a.i(); break;
    case A::STRING: r.kind = Attribute::Kind::kString; r.s = a.s(); break;
    case A::TENSOR: r.kind = Attribute::Kind::kTensor; r.t = convert_tensor(ctx, *a.mutable_t(), node + "." + a.name()); break;
    case A::FLOATS: r.kind = Attribute::Kind::kFloats; r.floats.assign(a.floats().begin(), a.floats().end()); break;
    case A::INTS: r.kind = Attribute::Kind::kInts; r.ints.assign(a.ints().begin(), a.ints().end()); break;
    case A::STRINGS: r.kind = Attribute::Kind::kStrings; r.strings.assign(a.strings().begin(), a.strings().end()); break;
    case A::GRAPH: case A::GRAPHS: r.kind = Attribute::Kind::kGraph; break;
    default: r.kind = Attribute::Kind::kOther; break;
  }
  return r;
}

// Kahn's algorithm; reports dangling edges and cycles.
void sort_nodes(Graph& g) {
  std::set<std::string> available(g.inputs.begin(), g.inputs.end());
  for (const auto& kv : g.constants) available.insert(kv.first);
  std::map<std::string, size_t> producer;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const std::string& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      if (producer.count(o) || available.count(o))
        fail(str_cat(g.where(g.nodes[k]), ": output '", o, "' is produced more than once"));
      producer[o] = k;
    }
  for (const Node& n : g.nodes)
    for (const std::string& i : n.inputs)
      if (!i.empty() && !available.count(i) && !producer.count(i))
        fail(str_cat(g.where(n), ": input '", i, "' is not produced by any node (dangling edge)"));
  for (const std::string& o : g.outputs)
    if (!available.count(o) && !producer.count(o))
      fail(str_cat(g.model_path, ": graph output '", o, "' is not produced by any node"));

  std::vector<int> missing(g.nodes.size(), 0);
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const std::string& i : g.nodes[k].inputs)
      if (!i.empty() && !available.count(i)) { ++missing[k]; consumers[i].push_back(k); }
  std::vector<size_t> ready, order;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (missing[k] == 0) ready.push_back(k);
  // Keep the file's order among ready nodes (a stable, readable plan).
  std::set<size_t> queue(ready.begin(), ready.end());
  while (!queue.empty()) {
    size_t k = *queue.begin();
    queue.erase(queue.begin());
    order.push_back(k);
    for (const std::string& o : g.nodes[k].outputs) {
      if (o.empty()) continue;
      for (size_t c : consumers[o])
        if (--missing[c] == 0) queue.insert(c);
    }
  }
  if (order.size() != g.nodes.size()) {
    for (size_t k = 0; k < g.nodes.size(); ++k)
      if (missing[k] > 0) fail(str_cat(g.where(g.nodes[k]), ": the graph has a cycle through this node"));
  }
  std::vector<Node> sorted;
  sorted.reserve(order.size());
  for (size_t k : order) sorted.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(sorted);
}

Graph convert_model(onnx::ModelProto& m, const ReadCtx& ctx) {
  Graph g;
  g.model_path = ctx.model;
  g.ir_version = m.ir_version();
  g.producer = m.producer_name() + (m.producer_version().empty() ? "" : " " + m.producer_version());
  if (!m.has_graph()) fail(str_cat(ctx.model, ": not an ONNX model (no graph)"));
  bool have_default = false;
  for (const auto& op : m.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") { g.opset = op.version(); have_default = true; }
  }
  if (!have_default) {
    if (m.opset_import_size() == 0 && m.ir_version() >= 3)
      fail(str_cat(ctx.model, ": model declares no opset_import"));
    g.opset = have_default ? g.opset : (m.opset_import_size() == 0 ? 1 : kMinOpset);
  }
  if (g.opset > kMaxOpset)
    fail(str_cat(ctx.model, ": opset ", g.opset, " is newer than convoy supports (opsets ", kMinOpset, "-", kMaxOpset, ")"));
  if (g.opset < kMinOpset)
    fail(str_cat(ctx.model, ": opset ", g.opset, " is older than convoy supports (opsets ", kMinOpset, "-", kMaxOpset, ")"));
  for (const auto& kv : m.metadata_props()) g.metadata[kv.key()] = kv.value();

  onnx::GraphProto& gp = *m.mutable_graph();
  g.name = gp.name();
  if (gp.sparse_initializer_size() > 0) fail(str_cat(ctx.model, ": sparse initializers are not supported"));
  for (int k = 0; k < gp.initializer_size(); ++k) {
    onnx::TensorProto& t = *gp.mutable_initializer(k);
    if (t.name().empty()) fail(str_cat(ctx.model, ": initializer #", k, " has no name"));
    const RawDataRef* raw = ctx.raw_refs && static_cast<size_t>(k) < ctx.raw_refs->size() ? &(*ctx.raw_refs)[static_cast<size_t>(k)] : nullptr;
    g.constants[t.name()] = convert_tensor(ctx, t, t.name(), raw);
    t.Clear();  // the payload now lives in g.constants only
  }
  std::set<std::string> seen;
  for (const auto& v : gp.input()) {
    if (v.name().empty()) fail(str_cat(ctx.model, ": graph input with no name"));
    if (!seen.insert(v.name()).second) fail(str_cat(ctx.model, ": graph input '", v.name(), "' declared twice"));
    if (g.constants.count(v.name())) continue;  // an initializer with a declared input: a constant
    g.inputs.push_back(v.name());
    ValueInfo info = convert_value_info(v);
    for (int64_t d : info.shape)
      if (d == 0) fail(str_cat(ctx.model, ": input '", v.name(), "' has a zero dimension"));
    g.infos[v.name()] = info;
  }
  for (const auto& v : gp.output()) {
    g.outputs.push_back(v.name());
    g.infos[v.name()] = convert_value_info(v);
  }
  if (g.outputs.empty()) fail(str_cat(ctx.model, ": graph has no outputs"));
  for (int k = 0; k < gp.node_size(); ++k) {
    onnx::NodeProto& np = *gp.mutable_node(k);
    Node n;
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.name = np.name().empty() ? str_cat(n.op_type, "_", k) : np.name();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (auto& a : *np.mutable_attribute()) {
      if (a.name().empty()) fail(str_cat(node_context(ctx.model, n.name, n.op_type), ": attribute with no name"));
      n.attrs[a.name()] = convert_attribute(ctx, a, n.name);
    }
    g.nodes.push_back(std::move(n));
  }
  sort_nodes(g);
  return g;
}

}  // namespace

Graph read_onnx_file(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail(str_cat(path, ": cannot open model: ", std::strerror(errno)));
  struct stat st{};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) fail(str_cat(path, ": not a regular file"));
  if (st.st_size == 0) fail(str_cat(path, ": empty file, not an ONNX model"));
  if (st.st_size >= INT_MAX) fail(str_cat(path, ": model file over 2 GB (protobuf limit); use external data"));
  // Map the file, cut the initializers' payloads out of the wire data (onnx_wire), parse the
  // small rest with protobuf, then read each payload once into its tensor.
  std::string stripped;
  std::vector<RawDataRef> refs;
  {
    void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, f.fd, 0);
    if (map == MAP_FAILED) fail(str_cat(path, ": cannot map model: ", std::strerror(errno)));
    const bool ok = strip_initializer_raw_data(static_cast<const uint8_t*>(map), static_cast<size_t>(st.st_size), &stripped, &refs);
    ::munmap(map, static_cast<size_t>(st.st_size));
    if (!ok) fail(str_cat(path, ": not a valid ONNX model (protobuf parse failed: corrupt or truncated file)"));
  }
  onnx::ModelProto m;
  if (!m.ParseFromString(stripped))
    fail(str_cat(path, ": not a valid ONNX model (protobuf parse failed: corrupt or truncated file)"));
  std::string().swap(stripped);
  ReadCtx ctx{path, fs::path(path).parent_path().string(), f.fd, &refs};
  if (ctx.dir.empty()) ctx.dir = ".";
  return convert_model(m, ctx);
}

Graph read_onnx_bytes(std::span<const uint8_t> bytes, const std::string& name) {
  onnx::ModelProto m;
  if (bytes.size() >= INT_MAX || !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    fail(str_cat(name, ": not a valid ONNX model (protobuf parse failed: corrupt or truncated data)"));
  ReadCtx ctx{name, ""};
  return convert_model(m, ctx);
}

}  // namespace convoy

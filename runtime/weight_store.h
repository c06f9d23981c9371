// The model's constants, stored once. When the only consumer of a float32 initializer packs it
// into a kernel layout at plan time (conv weights in the GEMM panel layout), the packed copy
// becomes the model's copy: the raw bytes are dropped from the graph right after the node is
// planned and rebuilt from the packed copy (an exact inverse of the packing) only while a later
// plan (another input shape, thread count or session) plans that node again. So a model's
// weights are held once, in the layout the kernels read, instead of raw + packed.
//
// Released constants stay in Graph::constants as hollow tensors (dtype and shape, no bytes) so
// that everything reading only their shape keeps working; WeightStore::restore() is the one
// way to get their values back. All calls are serialised by the caller (Model::Impl::plan_mu).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/ir.h"

namespace convoy {

class WeightStore {
 public:
  using Packed = std::shared_ptr<const std::vector<float>>;
  // Writes the raw values (the constant's shape, C order) from the packed ones.
  using Unpack = std::function<void(const float* packed, float* raw)>;

  explicit WeightStore(std::map<std::string, ConstPtr>* constants) : constants_(constants) {}

  bool released(const std::string& name) const { return released_.count(name) != 0; }
  // The raw values of a released constant, rebuilt from its packed copy.
  ConstPtr restore(const std::string& name) const;
  // Replaces the graph's raw copy of `name` by a hollow tensor; `packed` + `unpack` rebuild it.
  // Ignored for constants some plan reads raw (pin()).
  void release(const std::string& name, Packed packed, Unpack unpack);
  // A plan step reads this constant's raw bytes directly: never release it.
  void pin(const std::string& name) { pinned_.insert(name); }
  // Bytes of raw float32 data dropped (held only in packed form).
  size_t released_bytes() const;

 private:
  struct Entry {
    ConstPtr hollow;
    Packed packed;
    Unpack unpack;
  };
  std::map<std::string, ConstPtr>* constants_;
  std::map<std::string, Entry> released_;
  std::set<std::string> pinned_;
};

}  // namespace convoy

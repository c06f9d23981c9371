#include "runtime/weight_store.h"

#include "runtime/error.h"

namespace convoy {

ConstPtr WeightStore::restore(const std::string& name) const {
  auto it = released_.find(name);
  if (it == released_.end()) fail(str_cat("internal: constant '", name, "' was not released"));
  const Entry& e = it->second;
  auto raw = ConstTensor::make(DType::kFloat32, e.hollow->shape);
  e.unpack(e.packed->data(), raw->f32());
  return raw;
}

void WeightStore::release(const std::string& name, Packed packed, Unpack unpack) {
  if (pinned_.count(name) || released_.count(name)) return;
  auto it = constants_->find(name);
  if (it == constants_->end() || it->second->dtype != DType::kFloat32) return;
  auto hollow = std::make_shared<ConstTensor>();
  hollow->dtype = DType::kFloat32;
  hollow->shape = it->second->shape;
  released_[name] = Entry{hollow, std::move(packed), std::move(unpack)};
  it->second = hollow;
}

size_t WeightStore::released_bytes() const {
  size_t n = 0;
  for (const auto& kv : released_) n += static_cast<size_t>(kv.second.hollow->numel()) * sizeof(float);
  return n;
}

}  // namespace convoy

// Packed weights shared by every plan of one Model, across sessions and threads. A plan function
// packs a constant (OpContext::keep_const); the planner then interns the result here, so that an
// identical copy already held by another plan is used instead and each packed layout exists once.
// Entries are keyed by node name and compared by content (a node may keep several constants, and
// a layout may depend on the thread count or shapes: only identical bytes are shared). Entries are
// weak: packed weights die with the last plan holding them.
#pragma once
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace convoy {

class WeightCache {
 public:
  using Packed = std::shared_ptr<const std::vector<float>>;

  // Returns a held copy equal to `data`, or remembers and returns `data` itself.
  Packed intern(const std::string& node, Packed data) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = entries_[node];
    for (auto it = list.begin(); it != list.end();) {
      Packed held = it->lock();
      if (!held) {
        it = list.erase(it);
        continue;
      }
      if (held == data) return held;
      if (held->size() == data->size() &&
          (data->empty() || std::memcmp(held->data(), data->data(), data->size() * sizeof(float)) == 0))
        return held;
      ++it;
    }
    list.push_back(data);
    return data;
  }

  // Bytes of the packed weights alive now.
  size_t bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& kv : entries_)
      for (const auto& w : kv.second)
        if (Packed p = w.lock()) n += p->size() * sizeof(float);
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::weak_ptr<const std::vector<float>>>> entries_;
};

}  // namespace convoy

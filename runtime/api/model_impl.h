// What a Model and a Session hold (shared between runtime/api/*.cpp only).
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "convoy/convoy.hpp"
#include "runtime/aligned_buffer.h"
#include "runtime/ir.h"
#include "runtime/plan.h"
#include "runtime/thread_pool.h"
#include "runtime/weight_cache.h"
#include "runtime/weight_store.h"

namespace convoy {

struct Model::Impl {
  Graph graph;  // optimised; after load only `store` changes it (raw constants made hollow)
  std::vector<TensorInfo> inputs, outputs;
  size_t weight_bytes = 0;       // float constants of the graph
  mutable WeightCache packed;    // packed weights of all sessions' plans, each held once
  mutable std::mutex plan_mu;    // one planner at a time (they share `store`)
  mutable WeightStore store{&graph.constants};  // constants held in packed form only

  // Bytes of weights held now: raw constants not released + every packed copy.
  size_t held_weight_bytes() const {
    std::lock_guard<std::mutex> lock(plan_mu);
    return weight_bytes - store.released_bytes() + packed.bytes();
  }
};

struct Session::Impl {
  std::unique_ptr<ThreadPool> pool;
  std::map<std::vector<Shape>, std::unique_ptr<Plan>> plans;  // one per concrete input shapes
  AlignedBuffer arena;                                        // shared by all plans, grown to the largest
  std::atomic<bool> running{false};
  size_t max_memory = 0;  // 0: no cap
  const Plan& plan_for(const Model& model, const std::vector<Shape>& shapes);
};

}  // namespace convoy

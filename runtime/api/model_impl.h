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

namespace convoy {

struct Model::Impl {
  Graph graph;  // optimised; immutable after load
  std::vector<TensorInfo> inputs, outputs;
};

struct Session::Impl {
  std::unique_ptr<ThreadPool> pool;
  std::map<std::vector<Shape>, std::unique_ptr<Plan>> plans;  // one per concrete input shapes
  AlignedBuffer arena;                                        // shared by all plans, grown to the largest
  std::atomic<bool> running{false};
  const Plan& plan_for(const Graph& g, const std::vector<Shape>& shapes);
};

}  // namespace convoy

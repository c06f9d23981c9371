// Builds a static Plan for one set of concrete input shapes: walks the (optimised) graph in
// order, lets each op's plan function fold constants, alias or emit steps, folds nodes whose
// inputs are all constant by running their steps at once, then assigns arena offsets.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "runtime/op_context.h"
#include "runtime/plan.h"
#include "runtime/weight_cache.h"
#include "runtime/weight_store.h"

namespace convoy {

class Planner {
 public:
  // `threads`: the pool size the plan runs with (per-thread scratch is sized for it).
  // `cache`: the model's packed-weight cache (shared by its sessions), or null.
  // `store`: the model's weight store (constants held in packed form only), or null; the caller
  // serialises planners sharing one store.
  explicit Planner(const Graph& g, size_t threads = 1, WeightCache* cache = nullptr, WeightStore* store = nullptr)
      : graph_(g), threads_(threads), cache_(cache), store_(store) {}

  // Full plan for these input shapes (one per graph input, in order).
  Plan build(const std::vector<Shape>& input_shapes);

  // Constant folding at load time: evaluates every node whose inputs are all constants and
  // returns the values of their outputs (name -> constant). Used by passes::fold_constants.
  std::map<std::string, ConstPtr> fold_constant_nodes(std::vector<bool>* folded_nodes);

  // After build(): every value's plan-time state (shape, dtype, constant).
  const std::map<std::string, PValue>& values() const { return values_; }

 private:
  friend class OpContext;
  int new_buffer(size_t bytes, int first_step);
  void note_read(const TensorLoc& l, int step);
  void run_node(const Node& n, bool fold_only, bool* folded);
  void fold_steps(OpContext& ctx, size_t first_step, size_t first_buffer);

  const Graph& graph_;
  size_t threads_ = 1;
  WeightCache* cache_ = nullptr;
  WeightStore* store_ = nullptr;
  struct PendingRelease {
    std::string name;
    WeightStore::Packed packed;
    WeightStore::Unpack unpack;
  };
  std::vector<PendingRelease> pending_release_;  // of the node being planned
  std::map<std::string, int> uses_;              // readers of each value (graph outputs count)
  std::map<std::string, int> unread_;            // build(): readers not planned yet
  Plan plan_;
  std::map<std::string, PValue> values_;
};

// Assigns buffer offsets in one arena by greedy best-fit over lifetimes (largest first) and
// fills arena_bytes, intermediate_bytes and live_bound_bytes.
void assign_arena_offsets(Plan& plan);

// Shapes of every value of `g` for these input shapes (plans once and throws the plan away).
std::map<std::string, Shape> infer_shapes(const Graph& g, const std::vector<Shape>& input_shapes);

// Runs a plan on an arena of at least plan.arena_bytes (64-byte aligned). With `step_seconds`,
// also times every step (wall clock, resized to plan.steps.size(), in step order); null costs
// one branch per step.
void execute_plan(const Plan& plan, char* arena, const std::vector<const float*>& inputs,
                  const std::vector<float*>& outputs, const kernels::Parallel& par,
                  std::vector<double>* step_seconds = nullptr);

inline constexpr size_t kArenaAlign = 64;

}  // namespace convoy

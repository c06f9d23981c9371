// Tiny helpers for the pass and planner tests: build a convoy::Graph in code (runtime inputs,
// seeded random float constants, nodes with attributes), plan and run it the way a Session does
// (Planner::build, an AlignedBuffer arena, execute_plan on kernels::SerialParallel), count ops,
// compare outputs, and a naive NCHW convolution for independent references.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/parallel.h"
#include "runtime/aligned_buffer.h"
#include "runtime/ir.h"
#include "runtime/planner.h"

namespace convoy::testing {

// ---------------------------------------------------------------- attributes

inline Attribute attr_int(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}
inline Attribute attr_float(float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
inline Attribute attr_ints(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
inline Attribute attr_str(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}

using Attrs = std::vector<std::pair<std::string, Attribute>>;

// ---------------------------------------------------------------- random data

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline size_t numel(const Shape& s) {
  size_t n = 1;
  for (int64_t d : s) n *= static_cast<size_t>(d);
  return n;
}

// ---------------------------------------------------------------- graph builder

class GraphBuilder {
 public:
  // Every random constant draws from its own seed: seed, seed + 1, ... in creation order.
  explicit GraphBuilder(int64_t opset = 13, uint32_t seed = 20240601) : seed_(seed) {
    g_.model_path = "test.onnx";
    g_.name = "test";
    g_.opset = opset;
    g_.ir_version = 8;
  }

  // A float32 runtime input with its declared shape (-1: a dynamic dimension).
  std::string input(const std::string& name, Shape shape) {
    g_.inputs.push_back(name);
    ValueInfo v;
    v.dtype = DType::kFloat32;
    v.shape = std::move(shape);
    v.known_rank = true;
    g_.infos[name] = v;
    return name;
  }

  // A float32 constant with seeded uniform values in [lo, hi).
  std::string constant(const std::string& name, Shape shape, float lo = -1.f, float hi = 1.f) {
    return constant_values(name, shape, random_floats(numel(shape), seed_++, lo, hi));
  }
  std::string constant_values(const std::string& name, Shape shape, const std::vector<float>& v) {
    REQUIRE(v.size() == numel(shape));
    g_.constants[name] = ConstTensor::from_f32(std::move(shape), v);
    return name;
  }
  std::string constant_i64(const std::string& name, Shape shape, const std::vector<int64_t>& v) {
    REQUIRE(v.size() == numel(shape));
    g_.constants[name] = ConstTensor::from_i64(std::move(shape), v);
    return name;
  }

  // Adds a node (named after its first output) and returns its first output.
  std::string node(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs,
                   const Attrs& attrs = {}) {
    Node n;
    n.name = outputs.empty() ? op : outputs[0];
    n.op_type = op;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    for (const auto& [k, a] : attrs) n.attrs[k] = a;
    g_.nodes.push_back(std::move(n));
    return g_.nodes.back().outputs.empty() ? std::string() : g_.nodes.back().outputs[0];
  }
  std::string node(const std::string& op, std::vector<std::string> inputs, const std::string& output,
                   const Attrs& attrs = {}) {
    return node(op, std::move(inputs), std::vector<std::string>{output}, attrs);
  }

  void output(const std::string& name) { g_.outputs.push_back(name); }

  Graph& graph() { return g_; }

 private:
  Graph g_;
  uint32_t seed_;
};

// ---------------------------------------------------------------- inspection

inline int count_ops(const Graph& g, const std::string& op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op_type == op; }));
}

inline const Node* find_node_by_output(const Graph& g, const std::string& out) {
  for (const Node& n : g.nodes)
    for (const std::string& o : n.outputs)
      if (o == out) return &n;
  return nullptr;
}

// ---------------------------------------------------------------- running

struct RunResult {
  std::vector<std::vector<float>> outputs;
  std::vector<Shape> shapes;
};

// Plans `g` for the given input shapes and runs it once on one arena. The arena is first
// filled with NaN so that a read of a value no step wrote shows up in the outputs.
inline RunResult run_graph(const Graph& g, const std::vector<Shape>& shapes,
                           const std::vector<std::vector<float>>& inputs) {
  Plan plan = Planner(g).build(shapes);
  AlignedBuffer arena(plan.arena_bytes);
  std::fill_n(reinterpret_cast<float*>(arena.data()), arena.size() / sizeof(float), std::nanf(""));
  std::vector<const float*> in;
  for (const auto& v : inputs) in.push_back(v.data());
  RunResult r;
  r.shapes = plan.output_shapes;
  r.outputs.resize(plan.output_shapes.size());
  std::vector<float*> out;
  for (size_t i = 0; i < plan.output_shapes.size(); ++i) {
    r.outputs[i].assign(numel(plan.output_shapes[i]), 0.f);
    out.push_back(r.outputs[i].data());
  }
  kernels::SerialParallel serial;
  execute_plan(plan, arena.data(), in, out, serial);
  return r;
}

// Seeded random inputs for every graph input, at the given shapes.
inline std::vector<std::vector<float>> random_inputs(const std::vector<Shape>& shapes, uint32_t seed) {
  std::vector<std::vector<float>> v;
  for (size_t i = 0; i < shapes.size(); ++i) v.push_back(random_floats(numel(shapes[i]), seed + static_cast<uint32_t>(i)));
  return v;
}

// |got - want| <= rel * max(1, max|want|) element-wise, and no NaN.
inline void check_close(const std::vector<float>& got, const std::vector<float>& want, double rel = 1e-5) {
  REQUIRE(got.size() == want.size());
  double scale = 1.0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  size_t bad = 0, first_bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (!(d <= rel * scale)) {
      if (bad++ == 0) first_bad = i;
    }
  }
  if (bad) {
    INFO("first mismatch at " << first_bad << ": got " << got[first_bad] << ", want " << want[first_bad]
                              << " (scale " << scale << ")");
    CHECK_MESSAGE(bad == 0, bad << " of " << got.size() << " elements differ");
  }
}

inline void check_close(const RunResult& got, const RunResult& want, double rel = 1e-5) {
  REQUIRE(got.outputs.size() == want.outputs.size());
  for (size_t i = 0; i < got.outputs.size(); ++i) {
    CHECK(got.shapes[i] == want.shapes[i]);
    check_close(got.outputs[i], want.outputs[i], rel);
  }
}

// Runs `before` (the unfused reference, separate kernels) and `after` on the same seeded inputs
// and checks that the outputs agree.
inline void check_same_outputs(const Graph& before, const Graph& after, const std::vector<Shape>& shapes,
                               uint32_t seed = 7, double rel = 1e-5) {
  INFO("input seed " << seed);
  const auto in = random_inputs(shapes, seed);
  check_close(run_graph(after, shapes, in), run_graph(before, shapes, in), rel);
}

// ---------------------------------------------------------------- naive references

// NCHW convolution in double: w [M][C/group][KH][KW], symmetric pads, optional bias [M].
inline std::vector<float> naive_conv2d(const std::vector<float>& x, const Shape& xs, const std::vector<float>& w,
                                       const Shape& ws, const float* bias, int64_t stride, int64_t pad,
                                       int64_t group = 1) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t M = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
  const int64_t Mg = M / group;
  REQUIRE(Cg * group == C);
  std::vector<float> y(static_cast<size_t>(N * M * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = bias ? bias[m] : 0.0;
          const int64_t g = m / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * stride + kh - pad, iw = ow * stride + kw - pad;
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                s += static_cast<double>(x[static_cast<size_t>(((n * C + g * Cg + c) * H + ih) * W + iw)]) *
                     w[static_cast<size_t>(((m * Cg + c) * KH + kh) * KW + kw)];
              }
          y[static_cast<size_t>(((n * M + m) * OH + oh) * OW + ow)] = static_cast<float>(s);
        }
  return y;
}

// y[n][j] = sum_k a[n][k] * w[j][k] + b[j]   (Gemm with transB = 1)
inline std::vector<float> naive_gemm_bt(const std::vector<float>& a, int64_t rows, int64_t K, const std::vector<float>& w,
                                        int64_t cols, const float* b) {
  std::vector<float> y(static_cast<size_t>(rows * cols));
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t j = 0; j < cols; ++j) {
      double s = b ? b[j] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        s += static_cast<double>(a[static_cast<size_t>(n * K + k)]) * w[static_cast<size_t>(j * K + k)];
      y[static_cast<size_t>(n * cols + j)] = static_cast<float>(s);
    }
  return y;
}

inline std::vector<float> naive_relu(std::vector<float> v) {
  for (float& x : v) x = x < 0.f ? 0.f : x;
  return v;
}

}  // namespace convoy::testing

// passes::fold_constants: nodes whose inputs are all constants become constants (evaluated with
// the runtime's kernels). Shape of a runtime input is known only once the input shape is, so
// such chains fold when Planner::build runs: the plan then holds only the real compute steps.
#include <doctest/doctest.h>

#include <set>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

std::vector<std::string> step_ops(const Plan& p) {
  std::vector<std::string> ops;
  for (const Step& s : p.steps) ops.push_back(s.op);
  return ops;
}

}  // namespace

TEST_CASE("fold_constants: Transpose and Mul of initializers fold into one weight constant") {
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.constant("w_raw", {3, 4, 3, 3});                  // [C][M][KH][KW]
  b.constant("scale", {4, 1, 1, 1}, 0.5f, 2.f);
  b.constant("bias", {4});
  b.node("Transpose", {"w_raw"}, "w_t", {{"perm", attr_ints({1, 0, 2, 3})}});
  b.node("Mul", {"w_t", "scale"}, "w");
  b.node("Conv", {"x", "w", "bias"}, "y", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;

  CHECK(count_ops(g, "Transpose") == 1);
  CHECK(count_ops(g, "Mul") == 1);
  CHECK(passes::fold_constants(g));
  CHECK(count_ops(g, "Transpose") == 0);
  CHECK(count_ops(g, "Mul") == 0);
  CHECK(count_ops(g, "Conv") == 1);
  CHECK(g.nodes.size() == 1);

  // The folded value, against a naive transpose-and-scale.
  const ConstTensor* w = g.constant("w");
  REQUIRE(w != nullptr);
  CHECK(w->dtype == DType::kFloat32);
  CHECK(w->shape == Shape{4, 3, 3, 3});
  const ConstTensor& raw = *g.constant("w_raw");
  const ConstTensor& scale = *g.constant("scale");
  std::vector<float> want(4 * 3 * 9);
  for (size_t m = 0; m < 4; ++m)
    for (size_t c = 0; c < 3; ++c)
      for (size_t k = 0; k < 9; ++k) want[(m * 3 + c) * 9 + k] = raw.f32()[(c * 4 + m) * 9 + k] * scale.f32()[m];
  check_close(std::vector<float>(w->f32(), w->f32() + want.size()), want, 0.0);

  check_same_outputs(before, g, {{1, 3, 5, 5}});
  // And against a naive convolution with the naive weights.
  const auto x = random_floats(75, 11);
  const auto got = run_graph(g, {{1, 3, 5, 5}}, {x});
  check_close(got.outputs[0], naive_conv2d(x, {1, 3, 5, 5}, want, {4, 3, 3, 3}, g.constant("bias")->f32(), 1, 1));
  CHECK_FALSE(passes::fold_constants(g));  // a fixed point
}

TEST_CASE("fold_constants: a Constant node and a constant graph output fold") {
  GraphBuilder b;
  b.input("x", {2, 3});
  ConstPtr value = ConstTensor::from_f32({2, 3}, {1, -2, 3, -4, 5, -6});
  Attribute va;
  va.kind = Attribute::Kind::kTensor;
  va.t = value;
  b.node("Constant", {}, "k", {{"value", va}});
  b.node("Relu", {"k"}, "k_relu");  // a constant graph output
  b.node("Add", {"x", "k"}, "y");
  b.output("y");
  b.output("k_relu");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fold_constants(g));
  CHECK(count_ops(g, "Constant") == 0);
  CHECK(count_ops(g, "Relu") == 0);
  CHECK(count_ops(g, "Add") == 1);
  REQUIRE(g.constant("k_relu") != nullptr);
  const std::vector<float> relu_want = {1, 0, 3, 0, 5, 0};
  check_close(std::vector<float>(g.constant("k_relu")->f32(), g.constant("k_relu")->f32() + 6), relu_want, 0.0);
  check_same_outputs(before, g, {{2, 3}});
  const std::vector<float> x = {0.5f, 0.25f, -1, 2, 0, 1};
  const auto r = run_graph(g, {{2, 3}}, {x});
  check_close(r.outputs[0], {1.5f, -1.75f, 2, -2, 5, -5}, 0.0);
  check_close(r.outputs[1], relu_want, 0.0);
}

TEST_CASE("fold_constants: does not fold nodes reading a runtime value") {
  GraphBuilder b;
  b.input("x", {1, 4});
  b.constant("c", {1, 4});
  b.node("Mul", {"x", "c"}, "m");
  b.node("Sigmoid", {"m"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fold_constants(g));
  CHECK(g.nodes.size() == 2);
  check_same_outputs(before, g, {{1, 4}});
}

TEST_CASE("fold_constants: a Shape->Gather->Unsqueeze->Concat->Reshape chain of a constant folds away") {
  // w2 = Reshape(w_flat, Concat(Unsqueeze(Gather(Shape(b2), 0)), [-1]))  -> [6, 20]
  GraphBuilder b;
  b.input("x", {2, 20});
  b.constant("w_flat", {120});
  b.constant("b2", {6});
  b.constant_i64("zero", {}, {0});
  b.constant_i64("axes0", {1}, {0});
  b.constant_i64("minus1", {1}, {-1});
  b.node("Shape", {"b2"}, "s");
  b.node("Gather", {"s", "zero"}, "g0", {{"axis", attr_int(0)}});
  b.node("Unsqueeze", {"g0", "axes0"}, "u");
  b.node("Concat", {"u", "minus1"}, "target", {{"axis", attr_int(0)}});
  b.node("Reshape", {"w_flat", "target"}, "w2");
  b.node("Gemm", {"x", "w2", "b2"}, "y", {{"transB", attr_int(1)}});
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(g.nodes.size() == 6);
  CHECK(passes::fold_constants(g));
  CHECK(g.nodes.size() == 1);
  CHECK(count_ops(g, "Gemm") == 1);
  REQUIRE(g.constant("target") != nullptr);
  CHECK(g.constant("target")->as_i64() == std::vector<int64_t>{6, -1});
  REQUIRE(g.constant("w2") != nullptr);
  CHECK(g.constant("w2")->shape == Shape{6, 20});
  check_same_outputs(before, g, {{2, 20}});
  const auto x = random_floats(40, 5);
  const std::vector<float> w(g.constant("w_flat")->f32(), g.constant("w_flat")->f32() + 120);
  check_close(run_graph(g, {{2, 20}}, {x}).outputs[0], naive_gemm_bt(x, 2, 20, w, 6, g.constant("b2")->f32()));
}

TEST_CASE("fold_constants: the Shape chain of a runtime input folds at plan time (no steps)") {
  // Dynamic batch, as exported: y = Gemm(Reshape(Conv(x), [N, -1]), w2, b2) with N taken
  // from Shape(conv output).
  GraphBuilder b;
  b.input("x", {-1, 3, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  b.constant("bias", {4});
  b.constant("w2", {6, 100});
  b.constant("b2", {6});
  b.constant_i64("zero", {}, {0});
  b.constant_i64("axes0", {1}, {0});
  b.constant_i64("minus1", {1}, {-1});
  b.node("Conv", {"x", "w", "bias"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.node("Shape", {"c"}, "s");
  b.node("Gather", {"s", "zero"}, "n", {{"axis", attr_int(0)}});
  b.node("Unsqueeze", {"n", "axes0"}, "n1");
  b.node("Concat", {"n1", "minus1"}, "target", {{"axis", attr_int(0)}});
  b.node("Reshape", {"c", "target"}, "flat");
  b.node("Gemm", {"flat", "w2", "b2"}, "y", {{"transB", attr_int(1)}});
  b.output("y");
  Graph& g = b.graph();
  // Nothing is constant before the shapes are known.
  CHECK_FALSE(passes::fold_constants(g));
  CHECK(g.nodes.size() == 7);

  for (int64_t batch : {1, 2, 3}) {
    CAPTURE(batch);
    const Shape xs = {batch, 3, 5, 5};
    const Plan plan = Planner(g).build({xs});
    CHECK(step_ops(plan) == std::vector<std::string>{"Conv", "Gemm"});
    std::set<std::string> nodes;
    for (const Step& s : plan.steps) nodes.insert(s.node);
    CHECK(nodes == std::set<std::string>{"c", "y"});
    REQUIRE(plan.output_shapes.size() == 1);
    CHECK(plan.output_shapes[0] == Shape{batch, 6});

    const auto x = random_floats(numel(xs), 100 + static_cast<uint32_t>(batch));
    const std::vector<float> w(g.constant("w")->f32(), g.constant("w")->f32() + 108);
    const std::vector<float> w2(g.constant("w2")->f32(), g.constant("w2")->f32() + 600);
    const auto conv = naive_conv2d(x, xs, w, {4, 3, 3, 3}, g.constant("bias")->f32(), 1, 1);
    const auto want = naive_gemm_bt(conv, batch, 100, w2, 6, g.constant("b2")->f32());
    check_close(run_graph(g, {xs}, {x}).outputs[0], want);
  }
}

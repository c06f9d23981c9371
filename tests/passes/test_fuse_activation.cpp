// passes::fuse_activation: Conv/Gemm/BatchNormalization followed by Relu, LeakyRelu or Clip
// (constant bounds) carry the activation in their epilogue. It must not match when the
// producer's output has another reader or is a graph output, when the producer already
// carries an activation, when Clip's bounds are not graph constants, or for other producers.
#include <doctest/doctest.h>

#include <limits>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

const Shape kX = {2, 3, 6, 6};

// x -> Conv(w, bias) -> "c"
GraphBuilder conv_graph(int64_t opset = 13) {
  GraphBuilder b(opset);
  b.input("x", kX);
  b.constant("w", {5, 3, 3, 3});
  b.constant("bias", {5});
  b.node("Conv", {"x", "w", "bias"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
  return b;
}

// Runs the pass and checks the activation landed on the node producing `out`.
void check_fused(Graph& g, const std::string& act, const std::string& out, const std::vector<Shape>& shapes) {
  const Graph before = g;
  const size_t nodes = g.nodes.size();
  CHECK(count_ops(g, act) == 1);
  CHECK(passes::fuse_activation(g));
  CHECK(count_ops(g, act) == 0);
  CHECK(g.nodes.size() == nodes - 1);
  const Node* p = find_node_by_output(g, out);
  REQUIRE(p != nullptr);
  REQUIRE(p->has("_act"));
  CHECK(p->attrs.at("_act").s == act);
  CHECK(p->fused.back() == act);
  check_same_outputs(before, g, shapes);
}

}  // namespace

TEST_CASE("fuse_activation: Conv + Relu") {
  GraphBuilder b = conv_graph();
  b.node("Relu", {"c"}, "y");
  b.output("y");
  check_fused(b.graph(), "Relu", "y", {kX});
}

TEST_CASE("fuse_activation: Conv + LeakyRelu (given and default alpha)") {
  SUBCASE("alpha 0.2") {
    GraphBuilder b = conv_graph();
    b.node("LeakyRelu", {"c"}, "y", {{"alpha", attr_float(0.2f)}});
    b.output("y");
    check_fused(b.graph(), "LeakyRelu", "y", {kX});
    CHECK(b.graph().nodes[0].attrs.at("_act_alpha").f == 0.2f);
  }
  SUBCASE("default alpha 0.01") {
    GraphBuilder b = conv_graph();
    b.node("LeakyRelu", {"c"}, "y");
    b.output("y");
    check_fused(b.graph(), "LeakyRelu", "y", {kX});
    CHECK(b.graph().nodes[0].attrs.at("_act_alpha").f == 0.01f);
  }
}

TEST_CASE("fuse_activation: Conv + Clip with constant bounds (opset 11+ inputs)") {
  SUBCASE("min and max") {
    GraphBuilder b = conv_graph();
    b.constant_values("lo", {}, {-0.25f});
    b.constant_values("hi", {}, {0.3f});
    b.node("Clip", {"c", "lo", "hi"}, "y");
    b.output("y");
    check_fused(b.graph(), "Clip", "y", {kX});
    CHECK(b.graph().nodes[0].attrs.at("_act_alpha").f == -0.25f);
    CHECK(b.graph().nodes[0].attrs.at("_act_beta").f == 0.3f);
  }
  SUBCASE("min only") {
    GraphBuilder b = conv_graph();
    b.constant_values("lo", {}, {0.f});
    b.node("Clip", {"c", "lo"}, "y");
    b.output("y");
    check_fused(b.graph(), "Clip", "y", {kX});
  }
  SUBCASE("max only (omitted min)") {
    GraphBuilder b = conv_graph();
    b.constant_values("hi", {}, {0.1f});
    b.node("Clip", {"c", "", "hi"}, "y");
    b.output("y");
    check_fused(b.graph(), "Clip", "y", {kX});
    CHECK(b.graph().nodes[0].attrs.at("_act_alpha").f == -std::numeric_limits<float>::infinity());
  }
}

TEST_CASE("fuse_activation: Conv + Clip with attribute bounds (opset 6)") {
  GraphBuilder b = conv_graph(6);
  b.node("Clip", {"c"}, "y", {{"min", attr_float(0.f)}, {"max", attr_float(0.5f)}});
  b.output("y");
  check_fused(b.graph(), "Clip", "y", {kX});
}

TEST_CASE("fuse_activation: Gemm + Relu, vector bias and full C") {
  SUBCASE("vector bias") {
    GraphBuilder b;
    b.input("a", {3, 7});
    b.constant("w", {5, 7});
    b.constant("bias", {5});
    b.node("Gemm", {"a", "w", "bias"}, "g", {{"transB", attr_int(1)}});
    b.node("Relu", {"g"}, "y");
    b.output("y");
    check_fused(b.graph(), "Relu", "y", {{3, 7}});
  }
  SUBCASE("full C with beta: relu(alpha*A*B + beta*C)") {
    GraphBuilder b;
    b.input("a", {3, 7});
    b.constant("w", {7, 5});
    b.constant("cmat", {3, 5});
    b.node("Gemm", {"a", "w", "cmat"}, "g", {{"alpha", attr_float(0.5f)}, {"beta", attr_float(2.f)}});
    b.node("LeakyRelu", {"g"}, "y", {{"alpha", attr_float(0.1f)}});
    b.output("y");
    check_fused(b.graph(), "LeakyRelu", "y", {{3, 7}});
  }
}

TEST_CASE("fuse_activation: BatchNormalization (not after a Conv) + Relu") {
  GraphBuilder b;
  b.input("x", kX);
  b.constant("gamma", {3}, 0.5f, 1.5f);
  b.constant("beta", {3});
  b.constant("mean", {3});
  b.constant("var", {3}, 0.1f, 2.f);
  b.node("BatchNormalization", {"x", "gamma", "beta", "mean", "var"}, "n");
  b.node("Relu", {"n"}, "y");
  b.output("y");
  check_fused(b.graph(), "Relu", "y", {kX});
}

TEST_CASE("fuse_activation: does not match a producer output with two readers") {
  GraphBuilder b = conv_graph();
  b.node("Relu", {"c"}, "y");
  b.node("Sigmoid", {"c"}, "s");
  b.output("y");
  b.output("s");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_activation(g));
  CHECK(count_ops(g, "Relu") == 1);
  CHECK_FALSE(g.nodes[0].has("_act"));
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_activation: does not match a producer output that is a graph output") {
  GraphBuilder b = conv_graph();
  b.node("Relu", {"c"}, "y");
  b.output("y");
  b.output("c");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_activation(g));
  CHECK(count_ops(g, "Relu") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_activation: a Conv already carrying _act takes no second activation") {
  GraphBuilder b = conv_graph();
  b.constant_values("hi", {}, {0.2f});
  b.node("Relu", {"c"}, "r");
  b.node("Clip", {"r", "", "hi"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fuse_activation(g));
  CHECK(count_ops(g, "Relu") == 0);
  CHECK(count_ops(g, "Clip") == 1);
  CHECK(g.nodes[0].attrs.at("_act").s == "Relu");
  CHECK_FALSE(passes::fuse_activation(g));  // the Clip stays a separate node
  CHECK(count_ops(g, "Clip") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_activation: does not match a Clip whose bound is not a graph constant") {
  // min = Cast(Gather(Shape(x), 1)) / 10 is known only at plan time (from the input shape):
  // the graph holds no constant for it, so the pass leaves the Clip alone; the plan folds it.
  GraphBuilder b = conv_graph();
  b.constant_i64("one", {}, {1});
  b.constant_values("ten", {}, {10.f});
  b.constant_values("hi", {}, {0.6f});
  b.node("Shape", {"x"}, "s");
  b.node("Gather", {"s", "one"}, "c_dim", {{"axis", attr_int(0)}});
  b.node("Cast", {"c_dim"}, "c_dim_f", {{"to", attr_int(static_cast<int64_t>(DType::kFloat32))}});
  b.node("Div", {"c_dim_f", "ten"}, "lo");  // 3 / 10 = 0.3
  b.node("Clip", {"c", "lo", "hi"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_activation(g));
  CHECK(count_ops(g, "Clip") == 1);
  CHECK_FALSE(find_node_by_output(g, "c")->has("_act"));
  check_same_outputs(before, g, {kX});
  // Against the formula: every output in [0.3, 0.6].
  const auto r = run_graph(g, {kX}, random_inputs({kX}, 9));
  for (float v : r.outputs[0]) {
    CHECK(v >= 0.3f);
    CHECK(v <= 0.6f);
  }
}

TEST_CASE("fuse_activation: does not match other producers or other activations") {
  SUBCASE("MaxPool + Relu") {
    GraphBuilder b;
    b.input("x", kX);
    b.node("MaxPool", {"x"}, "p", {{"kernel_shape", attr_ints({2, 2})}});
    b.node("Relu", {"p"}, "y");
    b.output("y");
    Graph& g = b.graph();
    const Graph before = g;
    CHECK_FALSE(passes::fuse_activation(g));
    CHECK(count_ops(g, "Relu") == 1);
    check_same_outputs(before, g, {kX});
  }
  SUBCASE("Relu of a graph input") {
    GraphBuilder b;
    b.input("x", kX);
    b.node("Relu", {"x"}, "y");
    b.output("y");
    CHECK_FALSE(passes::fuse_activation(b.graph()));
    CHECK(count_ops(b.graph(), "Relu") == 1);
  }
  SUBCASE("Conv + Sigmoid") {
    GraphBuilder b = conv_graph();
    b.node("Sigmoid", {"c"}, "y");
    b.output("y");
    CHECK_FALSE(passes::fuse_activation(b.graph()));
    CHECK(count_ops(b.graph(), "Sigmoid") == 1);
  }
}

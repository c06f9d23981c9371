// passes::fuse_residual_add: Add(Conv(x), y) becomes Conv(x, residual = y). It must not match
// when the Conv output has another reader or is a graph output, when the other operand is a
// constant (that is a bias), when the Conv already carries an activation (act(conv) + y is not
// act(conv + y)), or when the residual would need broadcasting.
#include <doctest/doctest.h>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

const Shape kX = {2, 4, 6, 6};

// A ResNet basic block: x -> Conv -> Relu -> Conv -> Add(., x) -> Relu, the Add operands in
// the given order.
GraphBuilder basic_block(bool conv_first) {
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w1", {4, 4, 3, 3});
  b.constant("b1", {4});
  b.constant("w2", {4, 4, 3, 3});
  b.constant("b2", {4});
  const Attrs pads = {{"pads", attr_ints({1, 1, 1, 1})}};
  b.node("Conv", {"x", "w1", "b1"}, "c1", pads);
  b.node("Relu", {"c1"}, "r1");
  b.node("Conv", {"r1", "w2", "b2"}, "c2", pads);
  b.node("Add", conv_first ? std::vector<std::string>{"c2", "x"} : std::vector<std::string>{"x", "c2"}, "sum");
  b.node("Relu", {"sum"}, "y");
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("fuse_residual_add: a basic block's Add goes into the second Conv (either operand order)") {
  for (bool conv_first : {true, false}) {
    CAPTURE(conv_first);
    GraphBuilder b = basic_block(conv_first);
    Graph& g = b.graph();
    const Graph before = g;
    CHECK(count_ops(g, "Add") == 1);
    CHECK(passes::fuse_residual_add(g));
    CHECK(count_ops(g, "Add") == 0);
    CHECK(count_ops(g, "Conv") == 2);
    const Node* conv = find_node_by_output(g, "sum");
    REQUIRE(conv != nullptr);
    CHECK(conv->op_type == "Conv");
    REQUIRE(conv->inputs.size() == 4);
    CHECK(conv->inputs[0] == "r1");
    CHECK(conv->inputs[3] == "x");
    CHECK(conv->fused == std::vector<std::string>{"Add"});
    check_same_outputs(before, g, {kX});
  }
}

TEST_CASE("fuse_residual_add: a Conv without bias and a residual computed after the Conv") {
  // a = Conv(x) comes first; the residual r = Sigmoid(x) is computed after it, so the fused
  // Conv must run where the Add was.
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w", {4, 4, 1, 1});
  b.node("Conv", {"x", "w"}, "a");
  b.node("Sigmoid", {"x"}, "r");
  b.node("Add", {"a", "r"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 0);
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].op_type == "Sigmoid");
  CHECK(g.nodes[1].op_type == "Conv");
  CHECK(g.nodes[1].inputs == std::vector<std::string>{"x", "w", "", "r"});
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: Add of two Convs fuses one of them") {
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w1", {4, 4, 3, 3});
  b.constant("w2", {4, 4, 1, 1});
  b.node("Conv", {"x", "w1"}, "a", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.node("Conv", {"x", "w2"}, "c");
  b.node("Add", {"a", "c"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 0);
  CHECK(count_ops(g, "Conv") == 2);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: then fuse_activation gives relu(conv + residual)") {
  GraphBuilder b = basic_block(true);
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::fuse_residual_add(g));
  CHECK(passes::fuse_activation(g));
  CHECK(count_ops(g, "Relu") == 0);
  CHECK(count_ops(g, "Add") == 0);
  const Node* conv = find_node_by_output(g, "y");
  REQUIRE(conv != nullptr);
  CHECK(conv->fused == std::vector<std::string>{"Add", "Relu"});
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: does not match an Add with a constant operand") {
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w", {4, 4, 3, 3});
  b.constant("shift", {1, 4, 1, 1});
  b.node("Conv", {"x", "w"}, "c");
  b.node("Add", {"c", "shift"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: does not match a Conv output with two readers") {
  GraphBuilder b = basic_block(true);
  b.node("Sigmoid", {"c2"}, "s");
  b.output("s");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: does not match a Conv output that is a graph output") {
  GraphBuilder b = basic_block(true);
  b.output("c2");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: does not match Add(c, c)") {
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w", {4, 4, 1, 1});
  b.node("Conv", {"x", "w"}, "c");
  b.node("Add", {"c", "c"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: does not match a Conv already carrying _act") {
  // x -> Conv -> Relu -> Add(., x): after fuse_activation the Conv carries the Relu.
  GraphBuilder b;
  b.input("x", kX);
  b.constant("w", {4, 4, 3, 3});
  b.node("Conv", {"x", "w"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.node("Relu", {"c"}, "r");
  b.node("Add", {"r", "x"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  REQUIRE(passes::fuse_activation(g));
  CHECK_FALSE(passes::fuse_residual_add(g));
  CHECK(count_ops(g, "Add") == 1);
  check_same_outputs(before, g, {kX});
}

TEST_CASE("fuse_residual_add: an Add that broadcasts the other operand keeps its result") {
  // Add(Conv(x) [2,4,6,6], s [2,4,1,1]) is valid ONNX (numpy broadcasting); the conv epilogue
  // reads a residual of the output's shape, so this must stay an Add (or compute the same).
  GraphBuilder b;
  b.input("x", kX);
  b.input("s", {2, 4, 1, 1});
  b.constant("w", {4, 4, 3, 3});
  b.node("Conv", {"x", "w"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
  b.node("Add", {"c", "s"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  passes::fuse_residual_add(g);
  const std::vector<Shape> shapes = {kX, {2, 4, 1, 1}};
  const auto in = random_inputs(shapes, 3);
  const RunResult want = run_graph(before, shapes, in);
  RunResult got;
  CHECK_NOTHROW(got = run_graph(g, shapes, in));
  if (!got.outputs.empty()) check_close(got, want);
}

// passes::remove_identity: Identity and inference Dropout are bypassed; a Dropout with a mask
// output or a training_mode input, and an Identity producing a graph output, stay.
#include <doctest/doctest.h>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

namespace {

// x -> Conv -> <op> -> Relu -> y
GraphBuilder conv_op_relu(const std::string& op, std::vector<std::string> extra_inputs = {},
                          std::vector<std::string> extra_outputs = {}) {
  GraphBuilder b;
  b.input("x", {1, 3, 6, 6});
  b.constant("w", {4, 3, 3, 3});
  b.constant("bias", {4});
  b.node("Conv", {"x", "w", "bias"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
  std::vector<std::string> in = {"c"};
  in.insert(in.end(), extra_inputs.begin(), extra_inputs.end());
  std::vector<std::string> out = {"mid"};
  out.insert(out.end(), extra_outputs.begin(), extra_outputs.end());
  b.node(op, in, out);
  b.node("Relu", {"mid"}, "y");
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("remove_identity: Identity between Conv and Relu is bypassed") {
  GraphBuilder b = conv_op_relu("Identity");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(count_ops(g, "Identity") == 1);
  CHECK(passes::remove_identity(g));
  CHECK(count_ops(g, "Identity") == 0);
  CHECK(g.nodes.size() == 2);
  CHECK(find_node_by_output(g, "y")->inputs[0] == "c");
  check_same_outputs(before, g, {{1, 3, 6, 6}});
  CHECK_FALSE(passes::remove_identity(g));  // nothing left to do
}

TEST_CASE("remove_identity: inference Dropout (with and without ratio, empty mask name) is bypassed") {
  SUBCASE("one input") {
    GraphBuilder b = conv_op_relu("Dropout");
    Graph& g = b.graph();
    const Graph before = g;
    CHECK(passes::remove_identity(g));
    CHECK(count_ops(g, "Dropout") == 0);
    check_same_outputs(before, g, {{1, 3, 6, 6}});
  }
  SUBCASE("constant ratio input") {
    GraphBuilder b = conv_op_relu("Dropout", {"ratio"});
    b.constant_values("ratio", {}, {0.5f});
    Graph& g = b.graph();
    const Graph before = g;
    CHECK(passes::remove_identity(g));
    CHECK(count_ops(g, "Dropout") == 0);
    check_same_outputs(before, g, {{1, 3, 6, 6}});
  }
  SUBCASE("omitted mask output") {
    GraphBuilder b = conv_op_relu("Dropout", {}, {""});
    Graph& g = b.graph();
    const Graph before = g;
    CHECK(passes::remove_identity(g));
    CHECK(count_ops(g, "Dropout") == 0);
    check_same_outputs(before, g, {{1, 3, 6, 6}});
  }
}

TEST_CASE("remove_identity: a chain of Identity nodes and an Identity of a constant") {
  GraphBuilder b;
  b.input("x", {1, 2, 5, 5});
  b.constant("w", {3, 2, 3, 3});
  b.constant("bias0", {3});
  b.node("Identity", {"bias0"}, "bias");  // as exporters write duplicated biases
  b.node("Identity", {"x"}, "x1");
  b.node("Identity", {"x1"}, "x2");
  b.node("Conv", {"x2", "w", "bias"}, "c");
  b.node("Identity", {"c"}, "c1");
  b.node("Sigmoid", {"c1"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(count_ops(g, "Identity") == 4);
  CHECK(passes::remove_identity(g));
  CHECK(count_ops(g, "Identity") == 0);
  const Node* conv = find_node_by_output(g, "c");
  REQUIRE(conv != nullptr);
  CHECK(conv->inputs == std::vector<std::string>{"x", "w", "bias0"});
  CHECK(find_node_by_output(g, "y")->inputs[0] == "c");
  check_same_outputs(before, g, {{1, 2, 5, 5}});
}

TEST_CASE("remove_identity: does not match an Identity producing a graph output") {
  GraphBuilder b;
  b.input("x", {1, 3, 4, 4});
  b.constant("w", {2, 3, 1, 1});
  b.node("Conv", {"x", "w"}, "c");
  b.node("Identity", {"c"}, "y");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::remove_identity(g));
  CHECK(count_ops(g, "Identity") == 1);
  CHECK(g.outputs == std::vector<std::string>{"y"});
  check_same_outputs(before, g, {{1, 3, 4, 4}});
}

TEST_CASE("remove_identity: an Identity reading a graph output is bypassed, the output stays") {
  // c is a graph output and also feeds Identity -> Relu.
  GraphBuilder b;
  b.input("x", {1, 3, 4, 4});
  b.constant("w", {2, 3, 1, 1});
  b.node("Conv", {"x", "w"}, "c");
  b.node("Identity", {"c"}, "i");
  b.node("Relu", {"i"}, "y");
  b.output("c");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::remove_identity(g));
  CHECK(count_ops(g, "Identity") == 0);
  check_same_outputs(before, g, {{1, 3, 4, 4}});
}

TEST_CASE("remove_identity: does not match a Dropout with a mask output") {
  GraphBuilder b = conv_op_relu("Dropout", {}, {"mask"});
  Graph& g = b.graph();
  CHECK_FALSE(passes::remove_identity(g));
  CHECK(count_ops(g, "Dropout") == 1);
  // The mask output is refused at plan time with a convoy::Error, never silently dropped.
  CHECK_THROWS_AS(Planner(g).build({{1, 3, 6, 6}}), convoy::Error);
}

TEST_CASE("remove_identity: does not match a Dropout with a training_mode input") {
  GraphBuilder b = conv_op_relu("Dropout", {"ratio", "training"});
  b.constant_values("ratio", {}, {0.5f});
  b.constant_i64("training", {}, {0});
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::remove_identity(g));
  CHECK(count_ops(g, "Dropout") == 1);
  // training_mode = false is still the identity at plan time.
  check_same_outputs(before, g, {{1, 3, 6, 6}});
}

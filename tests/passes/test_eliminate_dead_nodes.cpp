// passes::eliminate_dead_nodes: nodes none of whose outputs is read (by a live node or as a
// graph output) and constants nothing live reads are removed; everything else stays.
#include <doctest/doctest.h>

#include "importer/passes/passes.h"
#include "passes/graph_builder.h"

using namespace convoy;
using namespace convoy::testing;

TEST_CASE("eliminate_dead_nodes: a dead branch and its constants go, the live path stays") {
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.constant("w", {4, 3, 3, 3});
  b.constant("bias", {4});
  b.constant("dead_w", {4, 3, 3, 3});
  b.constant("unused", {7});
  b.node("Conv", {"x", "w", "bias"}, "c");
  b.node("Relu", {"c"}, "y");
  // Dead: a chain reading a live value and a dead constant, ending nowhere.
  b.node("Conv", {"x", "dead_w"}, "d1");
  b.node("Sigmoid", {"d1"}, "d2");
  b.node("Add", {"d2", "c"}, "d3");
  b.output("y");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(g.nodes.size() == 5);
  CHECK(passes::eliminate_dead_nodes(g));
  CHECK(g.nodes.size() == 2);
  CHECK(count_ops(g, "Conv") == 1);
  CHECK(count_ops(g, "Relu") == 1);
  CHECK(count_ops(g, "Sigmoid") == 0);
  CHECK(count_ops(g, "Add") == 0);
  CHECK(g.is_const("w"));
  CHECK(g.is_const("bias"));
  CHECK_FALSE(g.is_const("dead_w"));
  CHECK_FALSE(g.is_const("unused"));
  CHECK(g.inputs == std::vector<std::string>{"x"});
  check_same_outputs(before, g, {{1, 3, 5, 5}});
  CHECK_FALSE(passes::eliminate_dead_nodes(g));  // a fixed point
}

TEST_CASE("eliminate_dead_nodes: nothing dead, nothing changes") {
  GraphBuilder b;
  b.input("x", {2, 4});
  b.constant("c", {2, 4});
  b.node("Mul", {"x", "c"}, "m");
  b.node("Tanh", {"m"}, "t");
  b.node("Sigmoid", {"m"}, "s");  // two live consumers of m, two graph outputs
  b.output("t");
  b.output("s");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK_FALSE(passes::eliminate_dead_nodes(g));
  CHECK(g.nodes.size() == 3);
  CHECK(g.constants.size() == 1);
  check_same_outputs(before, g, {{2, 4}});
}

TEST_CASE("eliminate_dead_nodes: a value read only by a graph output keeps its producer") {
  GraphBuilder b;
  b.input("x", {1, 6});
  b.node("Relu", {"x"}, "r");   // a graph output, read by nobody else
  b.node("Tanh", {"x"}, "t");   // dead
  b.node("Sigmoid", {"r"}, "s");
  b.output("s");
  b.output("r");
  Graph& g = b.graph();
  const Graph before = g;
  CHECK(passes::eliminate_dead_nodes(g));
  CHECK(g.nodes.size() == 2);
  CHECK(count_ops(g, "Tanh") == 0);
  check_same_outputs(before, g, {{1, 6}});
}

TEST_CASE("eliminate_dead_nodes: a node with one live output of two is kept") {
  GraphBuilder b;
  b.input("x", {1, 2, 4, 4});
  b.node("MaxPool", {"x"}, std::vector<std::string>{"pooled", "indices"}, {{"kernel_shape", attr_ints({2, 2})}});
  b.node("Relu", {"indices"}, "y");  // only the second output is live
  b.output("y");
  Graph& g = b.graph();
  CHECK_FALSE(passes::eliminate_dead_nodes(g));
  CHECK(count_ops(g, "MaxPool") == 1);
  CHECK(count_ops(g, "Relu") == 1);
}

TEST_CASE("eliminate_dead_nodes: a graph whose output is a graph input drops every node") {
  GraphBuilder b;
  b.input("x", {3});
  b.constant("c", {3});
  b.node("Add", {"x", "c"}, "a");
  b.output("x");
  Graph& g = b.graph();
  CHECK(passes::eliminate_dead_nodes(g));
  CHECK(g.nodes.empty());
  CHECK(g.constants.empty());
  const std::vector<float> x = {1, 2, 3};
  const auto r = run_graph(g, {{3}}, {x});
  check_close(r.outputs[0], x, 0.0);
}

// convoy inspect: what a model holds, and the execution plan convoy builds for it.
#include <algorithm>
#include <cstdio>

#include "tools/cli_common.h"
#include "tools/npy.h"

namespace convoy::cli {
namespace {

constexpr FlagSpec kFlags[] = {{"--batch", true}, {"--size", true}};

void print_tensors(const char* title, const std::vector<convoy::TensorInfo>& ts) {
  std::printf("%s\n", title);
  for (const auto& t : ts) std::printf("  %-24s %-8s %s\n", t.name.c_str(), t.dtype.c_str(), shape_string(t.shape).c_str());
}

// Metadata values can be long multi-line strings (convoy.labels): show them on one line.
std::string one_line(const std::string& value) {
  std::string out;
  size_t lines = 1;
  for (char c : value) {
    if (c == '\n') {
      ++lines;
      out += " | ";
    } else {
      out += c;
    }
  }
  if (out.size() > 100) out = out.substr(0, 97) + "...";
  if (lines > 1) {
    std::string prefix = "(";  // built step by step: GCC 12 -Wrestrict misfires on "(" + std::string
    prefix += std::to_string(lines);
    prefix += " lines) ";
    out = prefix + out;
  }
  return out;
}

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu bytes (%.2f MiB)", bytes, double(bytes) / (1024.0 * 1024.0));
  return buf;
}

int inspect_main(const std::vector<std::string>& argv) {
  const ParsedArgs a = parse_args(argv, kFlags);
  if (a.positional.empty()) throw UsageError("missing MODEL");
  if (a.positional.size() > 1) throw UsageError("unexpected argument '" + a.positional[1] + "'");
  int64_t batch = 1;
  if (auto v = a.get("--batch")) batch = parse_int_flag("--batch", *v, 1, 1 << 20);
  const std::optional<HxW> size = parse_size_flag(a);

  auto model = convoy::Model::load(a.positional[0]);
  std::printf("model      %s\n", model->path().c_str());
  std::printf("producer   %s\n", model->producer().empty() ? "(none)" : model->producer().c_str());
  std::printf("opset      %lld\n", static_cast<long long>(model->opset()));
  std::printf("parameters %zu\n", model->parameter_count());
  std::printf("nodes      %zu (after graph passes)\n", model->node_count());
  print_tensors("inputs", model->inputs());
  print_tensors("outputs", model->outputs());
  std::printf("metadata%s\n", model->metadata().empty() ? " (none)" : "");
  for (const auto& [k, v] : model->metadata()) std::printf("  %s = %s\n", k.c_str(), one_line(v).c_str());

  std::vector<std::vector<int64_t>> shapes;
  std::string shapes_text;
  for (const auto& in : model->inputs()) {
    shapes.push_back(concrete_input_shape(*model, in, batch, size));
    shapes_text += (shapes_text.empty() ? "" : ", ") + in.name + " " + shape_string(shapes.back());
  }
  convoy::Session session(model, {.threads = 1});
  const convoy::PlanInfo plan = session.plan_info(shapes);

  std::printf("\nplan for %s\n", shapes_text.c_str());
  // Columns as wide as their longest entry (node names from exporters run long).
  int w_op = 2, w_fused = 5, w_node = 4, w_out = 6;
  auto widen = [](int& w, const std::string& s) { w = std::max(w, int(s.size())); };
  for (const auto& s : plan.steps) {
    widen(w_op, s.op);
    widen(w_fused, s.fused);
    widen(w_node, s.node);
    widen(w_out, shape_string(s.output_shape));
  }
  std::printf("  %4s  %-*s  %-*s  %-*s  %-*s  %12s  %10s\n", "step", w_op, "op", w_fused, "fused", w_node, "node", w_out,
              "output", "offset", "GFLOPs");
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const auto& s = plan.steps[i];
    std::printf("  %4zu  %-*s  %-*s  %-*s  %-*s  %12zu  %10.6f\n", i, w_op, s.op.c_str(), w_fused,
                s.fused.empty() ? "-" : s.fused.c_str(), w_node, s.node.c_str(), w_out, shape_string(s.output_shape).c_str(),
                s.output_offset, s.flops * 1e-9);
  }
  std::printf("steps         %zu\n", plan.steps.size());
  std::printf("total GFLOPs  %.6f\n", plan.flops * 1e-9);
  std::printf("arena         %s\n", mib(plan.arena_bytes).c_str());
  std::printf("  vs sum of intermediates %s\n", mib(plan.intermediate_bytes).c_str());
  std::printf("  vs live lower bound     %s\n", mib(plan.live_bound_bytes).c_str());
  std::printf("weights       %s\n", mib(plan.weight_bytes).c_str());
  std::printf("  held now as %s (raw weights not only packed + packed copies)\n", mib(plan.held_weight_bytes).c_str());
  return 0;
}

}  // namespace

const Command kInspectCommand = {
    "inspect",
    "show a model's inputs, outputs, metadata and execution plan",
    "convoy inspect MODEL [--batch B] [--size HxW]",
    "Prints the model's inputs and outputs (shapes, dtypes), opset, producer, metadata,\n"
    "parameter and node counts, then the plan convoy builds for one concrete input shape: each\n"
    "step's op, fused ops, node, output shape, arena offset and GFLOPs, the total GFLOPs, the\n"
    "arena size against the sum of all intermediates and the live lower bound, and the weight\n"
    "bytes.\n"
    "\n"
    "  --batch B    batch size for a dynamic batch dimension (default 1)\n"
    "  --size HxW   spatial size for dynamic H, W (default: convoy.input_size metadata)\n",
    inspect_main,
};

}  // namespace convoy::cli

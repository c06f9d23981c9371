// `convoy bench` (binary in $CONVOY_BIN) on the demo model: the --json report carries every
// field with sane relations (min <= median <= p90 <= p99 <= max, one sample per --iters, the
// per-op table covers each plan step once, shares sum to 1), its FLOPs equal the count from the
// architecture, and --help / usage errors exit 0 / 2, a missing model 1. --train-last: the
// training report's parameter and memory figures match the counts from the architecture
// (models/train_demo.py). No timing thresholds.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

const fs::path kDemoModel = fs::path(CONVOY_SOURCE_DIR) / "models" / "demo" / "fashion_cnn.onnx";

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CliResult cli(const std::string& args) {
  const char* bin = std::getenv("CONVOY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "CONVOY_BIN must name the built convoy CLI");
  std::string tmpl = (fs::temp_directory_path() / "convoy_test_bench_XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const fs::path dir = tmpl;
  const std::string out = (dir / "out").string(), err = (dir / "err").string();
  const int status = std::system(("timeout 120 '" + std::string(bin) + "' " + args + " >'" + out + "' 2>'" + err + "'").c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  fs::remove_all(dir);
  return r;
}

// The number after "key": at top level or inside an object (first occurrence).
double json_number(const std::string& json, const std::string& key) {
  const std::regex re("\"" + key + "\": (-?[0-9.eE+-]+)");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(json, m, re), "no numeric key '" << key << "' in: " << json);
  return std::stod(m[1]);
}

// Runs the JSON through Python's json module: a real parser, independent of the writer; returns
// the script's exit status (-1 if it did not exit normally).
int python_status(const std::string& json, const std::string& code) {
  std::string tmpl = (fs::temp_directory_path() / "convoy_test_bench_py_XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const fs::path dir = tmpl;
  std::ofstream(dir / "report.json") << json;
  std::ofstream(dir / "check.py") << "import json, sys\nd = json.load(open(sys.argv[1]))\n" << code << "\n";
  const int rc = std::system(("/usr/bin/python3 '" + (dir / "check.py").string() + "' '" + (dir / "report.json").string() + "'").c_str());
  fs::remove_all(dir);
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool python_checks(const std::string& json, const std::string& code) { return python_status(json, code) == 0; }

}  // namespace

TEST_CASE("bench --json reports every field") {
  REQUIRE(fs::exists(kDemoModel));
  const CliResult r = cli("bench '" + kDemoModel.string() + "' --iters 3 --warmup 1 --threads 1 --json --per-op");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* key : {"load_ms", "plan_ms", "first_run_ms", "min", "median", "p90", "p99", "max",
                          "throughput_images_per_s", "gflops_per_run", "gflop_per_s", "peak_rss_bytes", "arena_bytes",
                          "weight_bytes", "steps"})
    CHECK(json_number(r.out, key) >= 0);
  CHECK(json_number(r.out, "batch") == 1);
  CHECK(json_number(r.out, "threads") == 1);
  CHECK(json_number(r.out, "iters") == 3);
  CHECK(json_number(r.out, "peak_rss_bytes") > json_number(r.out, "weight_bytes"));
  // The demo CNN's FLOPs counted from its architecture (models/train_demo.py): conv 1->32,
  // 32->64, 64->64 (3x3, pad 1) at 28, 14, 7; FC 64*3*3 -> 128 -> 10; 2 FLOPs per multiply-add.
  const double conv = 2.0 * (28 * 28 * 32 * 1 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 64 * 9);
  const double fc = 2.0 * (64 * 3 * 3 * 128 + 128 * 10);
  CHECK(json_number(r.out, "gflops_per_run") * 1e9 >= conv + fc);
  CHECK(json_number(r.out, "gflops_per_run") * 1e9 <= (conv + fc) * 1.02);  // + bias, ReLU, pooling
  CHECK(python_checks(r.out, R"(
lat = d["latency_ms"]
assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
assert len(d["samples_ms"]) == 3 and min(d["samples_ms"]) == lat["min"] and max(d["samples_ms"]) == lat["max"]
assert d["inputs"] == [{"name": d["inputs"][0]["name"], "shape": [1, 1, 28, 28]}], d["inputs"]
ops = d["per_op"]
assert sorted(o["step"] for o in ops) == list(range(d["steps"])), ops
assert abs(sum(o["share"] for o in ops) - 1) < 1e-3, ops
assert all(a["ms"] >= b["ms"] for a, b in zip(ops, ops[1:])), "not sorted slowest first"
assert sum(o["op"] == "Conv" for o in ops) == 3, ops
assert all(set(o) == {"step", "op", "fused", "node", "ms", "share", "gflop_per_s", "gb_per_s"} for o in ops)
# GB/s: the step's operands and output once. The FC 576 -> 128 reads its 576 x 128 weights:
# at least that many bytes over its time.
fc = [o for o in ops if o["op"] in ("Gemm", "MatMul")]
big = max(fc, key=lambda o: o["gflop_per_s"] * o["ms"])
assert big["ms"] > 0 and big["gb_per_s"] * big["ms"] * 1e6 >= 4 * 576 * 128, big
)"));
}

TEST_CASE("bench text output and --peak --json") {
  const CliResult r = cli("bench '" + kDemoModel.string() + "' --iters 2 --warmup 0 --threads 1 --per-op");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* label : {"load ", "plan ", "first run ", "latency ", "throughput ", "compute ", "peak RSS ", "per step"})
    CHECK(r.out.find(label) != std::string::npos);

  const CliResult p = cli("bench --peak --threads 1 --json");
  INFO(p.err);
  REQUIRE(p.exit_code == 0);
  CHECK(python_checks(p.out, R"(
assert set(d) == {"target", "threads", "fma_gflops_1thread", "fma_gflops_all", "read_gbps_1thread", "read_gbps_all",
                 "handoff_ns"}, d
assert d["threads"] == 1 and all(d[k] > 0 for k in d if k not in ("target", "threads", "handoff_ns")), d
assert d["handoff_ns"] is None, d  # one thread: no CPU pair
)"));
}

// The CPU hand-off probe (tools/cli_handoff.h) with two threads: one CPU pair, measured before and
// after the timed runs, in the range a cache line's round trip can take (tens of ns on one die,
// hundreds across dies; far below the 100 ms a trial may last). A machine with one CPU has no pair;
// a pair whose CPUs are busy with other processes (ctest -j) may not be measurable: then null, and
// the test tries again a few times.
TEST_CASE("bench --threads 2 reports the CPU hand-off round trip") {
  const bool two_cpus = std::thread::hardware_concurrency() >= 2;
  bool measured = false;
  for (int attempt = 0; attempt < 5 && !measured; ++attempt) {
    const CliResult r = cli("bench '" + kDemoModel.string() + "' --iters 2 --warmup 0 --threads 2 --json");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    // Exit 0: both measured and plausible; 3: one was not measured (null); anything else fails.
    const std::string code = std::string("two_cpus = ") + (two_cpus ? "True" : "False") + R"(
h = d["handoff_ns"]
assert set(h) == {"before", "after"}, h
if not two_cpus:
    assert h["before"] is None and h["after"] is None, h
    sys.exit(0)
for x in h.values():
    if x is not None:
        assert set(x) == {"pairs", "min", "median", "max"} and x["pairs"] == 1, h
        assert 5 <= x["min"] <= x["median"] <= x["max"] < 100000, h
sys.exit(3 if None in h.values() else 0)
)";
    const int rc = python_status(r.out, code);
    REQUIRE((rc == 0 || rc == 3));
    measured = rc == 0;
  }
  if (!measured) MESSAGE("CPU hand-off not measurable in 5 tries: both CPUs busy with other processes");
  if (!two_cpus) return;
  // The text report's line, likewise retried.
  bool line = false;
  for (int attempt = 0; attempt < 5 && !line; ++attempt) {
    const CliResult t = cli("bench '" + kDemoModel.string() + "' --iters 2 --warmup 0 --threads 2");
    INFO(t.err);
    REQUIRE(t.exit_code == 0);
    line = std::regex_search(t.out, std::regex("hand-off +[0-9]+ ns round trip between CPUs before the timed runs, "
                                               "[0-9]+ ns after"));
  }
  if (measured) CHECK(line);
}

TEST_CASE("bench --help and usage errors") {
  const CliResult h = cli("bench --help");
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("usage: convoy bench MODEL") != std::string::npos);
  CHECK(h.out.find("--per-op") != std::string::npos);
  for (const std::string args : {"bench", "bench a.onnx b.onnx", "bench m.onnx --iters 0", "bench m.onnx --batch x",
                                 "bench m.onnx --nope", "bench --peak m.onnx", "bench --peak --per-op"}) {
    const CliResult u = cli(args);
    INFO(args);
    CHECK(u.exit_code == 2);
    CHECK(u.err.rfind("convoy: ", 0) == 0);
    CHECK(u.err.find("usage: convoy bench") != std::string::npos);
  }
  const CliResult missing = cli("bench /nonexistent/model.onnx --iters 1");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.rfind("convoy: /nonexistent/model.onnx", 0) == 0);
  CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);
}

// The demo model (models/train_demo.py, BatchNorm folded into the convs by the export): conv
// 1->32, 32->64, 64->64 (3x3, with bias), FC 576 -> 128 -> 10.
constexpr double kDemoWeightValues = (32 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 64 * 9 + 64) + (576 * 128 + 128) + (128 * 10 + 10);

TEST_CASE("bench --train-last --json reports the training step and memory") {
  REQUIRE(fs::exists(kDemoModel));
  const CliResult r = cli("bench '" + kDemoModel.string() + "' --train-last 1 --iters 2 --threads 1 --json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* key : {"load_ms", "plan_ms", "first_run_ms", "min", "median", "p90", "p99", "max",
                          "throughput_images_per_s", "peak_rss_bytes", "arena_bytes", "weight_bytes"})
    CHECK(json_number(r.out, key) >= 0);
  CHECK(json_number(r.out, "peak_rss_bytes") > json_number(r.out, "weight_bytes"));
  // Only the last layer (FC 128 -> 10) trains; its weight, gradient and momentum are each
  // 1290 floats. The frozen prefix's arena holds at least the first conv's output at batch 32
  // (32 x 32 x 28 x 28 floats); the training arena at least the logits (32 x 10).
  CHECK(python_checks(r.out, R"(
import math
assert d["mode"] == "train", d
assert (d["batch"], d["threads"], d["iters"], d["warmup"], d["train_last"], d["classes"]) == (32, 1, 2, 2, 1, 10), d
assert d["inputs"] == [{"shape": [32, 1, 28, 28]}], d["inputs"]
lat = d["latency_ms"]
assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
assert len(d["samples_ms"]) == 2 and min(d["samples_ms"]) == lat["min"] and max(d["samples_ms"]) == lat["max"]
assert abs(d["throughput_images_per_s"] * lat["median"] / 1e3 - 32) < 0.1, d
assert sorted(p["shape"] for p in d["trainable"]) == [[10], [10, 128]], d["trainable"]
assert len({p["node"] for p in d["trainable"]}) == 1 and all(p["name"] for p in d["trainable"]), d["trainable"]
assert d["trainable_values"] == 1290, d
m = d["memory"]
assert set(m) == {"frozen_arena_bytes", "train_arena_bytes", "train_live_bound_bytes", "param_bytes", "grad_bytes",
                  "optimizer_bytes", "weight_bytes"}, m
assert m["param_bytes"] == m["grad_bytes"] == m["optimizer_bytes"] == 1290 * 4, m
assert m["frozen_arena_bytes"] >= 32 * 32 * 28 * 28 * 4, m
assert 32 * 10 * 4 <= m["train_live_bound_bytes"] <= m["train_arena_bytes"] < m["frozen_arena_bytes"], m
assert d["arena_bytes"] == m["frozen_arena_bytes"] + m["train_arena_bytes"] and d["weight_bytes"] == m["weight_bytes"], d
assert all(math.isfinite(d[k]) and 0 < d[k] < 100 for k in ("loss_first", "loss_last")), d
assert 0 <= d["correct_last"] <= 32, d
)"));
  const double weights = json_number(r.out, "weight_bytes");
  CHECK(weights >= kDemoWeightValues * 4);
  CHECK(weights <= kDemoWeightValues * 4 * 1.5);  // held once, not once per plan
}

TEST_CASE("bench --train-last --classes replaces the head; text report") {
  const CliResult r = cli("bench '" + kDemoModel.string() +
                          "' --train-last 2 --classes 3 --batch 4 --iters 1 --warmup 0 --threads 1 --json");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // Trainable: FC 576 -> 128 and the new FC 128 -> 3.
  CHECK(python_checks(r.out, R"(
assert d["classes"] == 3 and d["batch"] == 4 and d["inputs"] == [{"shape": [4, 1, 28, 28]}], d
assert sorted(p["shape"] for p in d["trainable"]) == [[3], [3, 128], [128], [128, 576]], d["trainable"]
assert d["trainable_values"] == 576 * 128 + 128 + 128 * 3 + 3, d
m = d["memory"]
assert m["param_bytes"] == m["grad_bytes"] == m["optimizer_bytes"] == d["trainable_values"] * 4, m
)"));

  const CliResult t = cli("bench '" + kDemoModel.string() + "' --train-last 1 --batch 8 --iters 2 --warmup 0 --threads 1");
  INFO(t.err);
  REQUIRE(t.exit_code == 0);
  for (const char* label : {"training ", "trainable ", "input ", "load ", "plan ", "first step ", "step ", "throughput ",
                            "loss ", "memory ", "peak RSS "})
    CHECK(t.out.find(label) != std::string::npos);
  CHECK(t.out.find("[8,1,28,28]") != std::string::npos);
}

TEST_CASE("bench --train-last usage errors") {
  const CliResult h = cli("bench --help");
  CHECK(h.exit_code == 0);
  CHECK(h.out.find("--train-last N") != std::string::npos);
  CHECK(h.out.find("--classes K") != std::string::npos);
  for (const std::string args : {"bench m.onnx --train-last 0", "bench m.onnx --train-last x", "bench m.onnx --classes 3",
                                 "bench m.onnx --train-last 1 --classes 1", "bench m.onnx --train-last 1 --per-op",
                                 "bench m.onnx --train-last 1 --size 28x28", "bench --peak --train-last 1"}) {
    const CliResult u = cli(args);
    INFO(args);
    CHECK(u.exit_code == 2);
    CHECK(u.err.rfind("convoy: ", 0) == 0);
    CHECK(u.err.find("usage: convoy bench") != std::string::npos);
  }
  const CliResult missing = cli("bench /nonexistent/model.onnx --train-last 1 --iters 1");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.rfind("convoy: /nonexistent/model.onnx", 0) == 0);
  CHECK(std::count(missing.err.begin(), missing.err.end(), '\n') == 1);
}

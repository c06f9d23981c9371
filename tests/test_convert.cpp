// `convoy convert MODEL OUT.onnx --fc-to-conv` end to end: the written models load and run in
// ONNX Runtime (tests/gen/ort_run.js, onnxruntime-node from tools/setup_ort.sh) and give, at the
// training size, the original model's output (PyTorch / ONNX Runtime references) and at
// 384x384 the dense map of tests/gen/gen_dense_data.py's hand-converted net. Usage errors and
// unconvertible heads fail cleanly and leave no file behind.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"
#include "cli_test_util.h"
#include "npy_test_util.h"

namespace fs = std::filesystem;
using convoy::testing::NpyArray;
using convoy::testing::read_npy_f32;

namespace {

const fs::path kDemoModel = fs::path(CONVOY_SOURCE_DIR) / "models" / "demo" / "fashion_cnn.onnx";
const fs::path kOrtRun = fs::path(CONVOY_SOURCE_DIR) / "tests" / "gen" / "ort_run.js";

fs::path data_dir(const char* sub) {
  const fs::path d = convoy::testing::test_data_dir() / sub;
  REQUIRE_MESSAGE(fs::exists(d / ".stamp"), convoy::testing::kMissingDataHint << " (missing " << d << ")");
  return d;
}

using convoy::testing::CliResult;
using convoy::testing::quote;
using TempDir = convoy::testing::TempDir;
const auto& read_text = convoy::testing::read_file;

CliResult shell(const TempDir& dir, const std::string& cmd) { return convoy::testing::run_captured(dir.path, cmd, 300); }

CliResult cli(const TempDir& dir, const std::string& args) { return shell(dir, convoy::testing::convoy_bin() + " " + args); }

using convoy::testing::check_error;
using convoy::testing::check_ok;

// ONNX Runtime on `model` for each (input, output) .npy pair, one session.
void ort(const TempDir& dir, const std::string& model, const std::vector<std::pair<std::string, std::string>>& io) {
  std::string cmd = "node " + quote(kOrtRun.string()) + " " + quote(model);
  for (const auto& [in, out] : io) {
    cmd += ' ';  // appended piece by piece: GCC 12 -Wrestrict misfires on " " + std::string
    cmd += quote(in);
    cmd += ' ';
    cmd += quote(out);
  }
  const CliResult r = shell(dir, cmd);
  INFO("ort_run.js stderr: " << r.err << " (is onnxruntime-node installed? tools/setup_ort.sh)");
  REQUIRE(r.exit_code == 0);
}

double rel_err(const std::vector<float>& got, const NpyArray& ref) {
  REQUIRE(got.size() == ref.data.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, double(std::abs(got[i] - ref.data[i])));
    scale = std::max(scale, double(std::abs(ref.data[i])));
  }
  REQUIRE(scale > 0);
  return diff / scale;
}

}  // namespace

TEST_CASE("convert --fc-to-conv: alexnet and resnet18 run in ONNX Runtime at 224 (= original) and 384x384 (= dense map)") {
  const fs::path m = data_dir("models"), d = data_dir("dense");
  TempDir t;
  for (const char* net : {"alexnet", "resnet18"}) {
    INFO(net);
    const std::string out = t / (std::string(net) + "_dense.onnx");
    const CliResult r =
        cli(t, "convert " + quote((m / (std::string(net) + "_op13.onnx")).string()) + " " + quote(out) + " --fc-to-conv");
    check_ok(r);
    CHECK(r.out.find("[?,1000,?,?]") != std::string::npos);
    CHECK(r.out.find("224x224 crop; cells 32 pixels apart") != std::string::npos);

    // The file as a reader sees it: dynamic H, W, the training size in its metadata.
    auto model = convoy::Model::load(out);
    CHECK(model->inputs().at(0).shape == std::vector<int64_t>{-1, 3, -1, -1});
    CHECK(model->metadata().at("convoy.input_size") == "224x224");

    ort(t, out,
        {{(m / (std::string(net) + ".in_b3.npy")).string(), t / "y224.npy"},
         {(d / (std::string(net) + ".in_384.npy")).string(), t / "y384.npy"}});
    const NpyArray y224 = read_npy_f32(t / "y224.npy"), y384 = read_npy_f32(t / "y384.npy");
    CHECK(y224.shape == std::vector<int64_t>{3, 1000, 1, 1});
    CHECK(rel_err(y224.data, read_npy_f32(m / (std::string(net) + ".ref_b3.npy"))) <= 1e-4);
    const NpyArray ref384 = read_npy_f32(d / (std::string(net) + ".ort_384.npy"));
    CHECK(y384.shape == ref384.shape);
    CHECK(rel_err(y384.data, ref384) <= 1e-4);
  }
}

TEST_CASE("convert --fc-to-conv: the MatMul head (Reshape shape chain) and the demo model run in ONNX Runtime") {
  const fs::path m = data_dir("models"), d = data_dir("dense");
  TempDir t;
  // matmul_head: view(N, -1) exports a Shape/Gather/Unsqueeze/Concat/Reshape chain, then MatMul + Add.
  const std::string mm = t / "matmul_dense.onnx";
  check_ok(cli(t, "convert " + quote((m / "matmul_head_op13.onnx").string()) + " " + quote(mm) + " --fc-to-conv"));
  ort(t, mm, {{(m / "matmul_head.in_b3.npy").string(), t / "mm224.npy"}, {(d / "alexnet.in_384.npy").string(), t / "mm384.npy"}});
  const NpyArray mm224 = read_npy_f32(t / "mm224.npy");
  CHECK(mm224.shape == std::vector<int64_t>{3, 10, 1, 1});
  CHECK(rel_err(mm224.data, read_npy_f32(m / "matmul_head.ref_b3.npy")) <= 1e-4);
  CHECK(read_npy_f32(t / "mm384.npy").shape == std::vector<int64_t>{1, 10, 6, 6});

  // The demo model keeps its convoy.* metadata; at 28x28 it gives the original's output.
  const std::string demo = t / "demo_dense.onnx";
  check_ok(cli(t, "convert " + quote(kDemoModel.string()) + " " + quote(demo) + " --fc-to-conv"));
  auto model = convoy::Model::load(demo);
  CHECK(model->metadata().at("convoy.input_size") == "28x28");
  CHECK(model->metadata().at("convoy.labels").rfind("T-shirt/top\nTrouser\n", 0) == 0);
  ort(t, demo, {{(d / "demo.in.npy").string(), t / "demo.npy"}});
  const NpyArray y = read_npy_f32(t / "demo.npy");
  CHECK(y.shape == std::vector<int64_t>{2, 10, 1, 1});
  CHECK(rel_err(y.data, read_npy_f32(d / "demo.ort.npy")) <= 1e-4);
}

TEST_CASE("convert: usage errors exit 2; an unconvertible head exits 1 and writes nothing") {
  const fs::path d = data_dir("dense");
  TempDir t;
  const std::string demo = quote(kDemoModel.string());
  check_ok(cli(t, "convert --help"));
  check_error(cli(t, "convert " + demo + " " + quote(t / "x.onnx")), 2, "say which conversion: --fc-to-conv");
  check_error(cli(t, "convert " + demo + " --fc-to-conv"), 2, "missing OUT.onnx");
  check_error(cli(t, "convert --fc-to-conv"), 2, "missing MODEL and OUT.onnx");
  check_error(cli(t, "convert " + demo + " a.onnx b.onnx --fc-to-conv"), 2, "unexpected argument 'b.onnx'");
  check_error(cli(t, "convert " + demo + " " + quote(t / "x.onnx") + " --fc-to-cnv"), 2, "unknown option '--fc-to-cnv'");
  check_error(cli(t, "convert " + quote((d / "bad_head_op13.onnx").string()) + " " + quote(t / "bad.onnx") + " --fc-to-conv"), 1,
              "(ReduceMean): cannot convert this op of the fully-connected head to a convolution");
  check_error(cli(t, "convert " + quote(t / "missing.onnx") + " " + quote(t / "m.onnx") + " --fc-to-conv"), 1, "missing.onnx");
  check_error(cli(t, "convert " + demo + " " + quote(t / "no_such_dir/x.onnx") + " --fc-to-conv"), 1, "no_such_dir");
  // Nothing half-written is left behind.
  for (const auto& e : fs::directory_iterator(t.path)) CHECK(e.path().extension() != ".onnx");
}

// Dense scoring (LoadOptions::fc_to_conv and `convoy dense`) against references from PyTorch and
// ONNX Runtime written by tests/gen/gen_dense_data.py into $CONVOY_TEST_DATA/dense:
// - at the training size the converted model's 1x1 map equals the original's output;
// - for a net without padding (227x227, stride 32) every cell equals its crop scored alone, at
//   two larger sizes and at stride 16, with the crop origins of the JSON geometry;
// - for padded torchvision nets the dense map equals ONNX Runtime on a hand-converted net (the
//   agreement with crop-wise scoring is reported, docs/DENSE.md);
// - --stride 16 equals ONNX Runtime's shifted passes interleaved;
// - the demo model's heat map over models/demo/collage.png lights up the trousers;
// - clear errors for unconvertible heads, too-small images and strides that do not divide.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"
#include "importer/passes/passes.h"
#include "cli_test_util.h"
#include "npy_test_util.h"
#include "passes/graph_builder.h"
#include "runtime/error.h"

namespace fs = std::filesystem;
using convoy::testing::NpyArray;
using convoy::testing::read_npy_f32;

namespace {

const fs::path kDemoDir = fs::path(CONVOY_SOURCE_DIR) / "models" / "demo";

fs::path dense_dir() {
  const fs::path d = convoy::testing::test_data_dir() / "dense";
  REQUIRE_MESSAGE(fs::exists(d / ".stamp"), convoy::testing::kMissingDataHint << " (missing " << d << ")");
  return d;
}

fs::path models_dir() {
  const fs::path d = convoy::testing::test_data_dir() / "models";
  REQUIRE_MESSAGE(fs::exists(d / ".stamp"), convoy::testing::kMissingDataHint << " (missing " << d << ")");
  return d;
}

using convoy::testing::CliResult;
using convoy::testing::quote;
using TempDir = convoy::testing::TempDir;
const auto& read_text = convoy::testing::read_file;

CliResult cli(const TempDir& dir, const std::string& args) {
  return convoy::testing::run_captured(dir.path, convoy::testing::convoy_bin() + " " + args, 300);
}

using convoy::testing::check_error;
using convoy::testing::check_ok;

// max|got - ref| / max|ref|, after checking the shapes.
double rel_err(const std::vector<int64_t>& got_shape, const std::vector<float>& got, const NpyArray& ref) {
  REQUIRE(got_shape == ref.shape);
  REQUIRE(got.size() == ref.data.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, double(std::abs(got[i] - ref.data[i])));
    scale = std::max(scale, double(std::abs(ref.data[i])));
  }
  REQUIRE(scale > 0);
  return diff / scale;
}

double rel_err(const NpyArray& got, const NpyArray& ref) { return rel_err(got.shape, got.data, ref); }

convoy::Tensor run1(convoy::Session& s, const NpyArray& x) { return s.run({convoy::Tensor(x.shape, x.data)}).at(0); }

// "[0, 32, 64]" as the JSON writes lists of cell origins.
std::string origin_list(int64_t count, int64_t stride) {
  std::string s = "[";
  for (int64_t i = 0; i < count; ++i) s += (i ? ", " : "") + std::to_string(i * stride);
  return s + "]";
}

// Top-1 agreement and relative error of a dense map against crop-wise scores [1,K,R,C].
void report_crop_agreement(const std::string& name, const convoy::Tensor& dense, const NpyArray& crops) {
  REQUIRE(dense.shape() == crops.shape);
  const int64_t k = crops.shape[1], cells = crops.shape[2] * crops.shape[3];
  int same = 0;
  double diff = 0, scale = 0;
  for (int64_t c = 0; c < cells; ++c) {
    int64_t a = 0, b = 0;
    for (int64_t q = 0; q < k; ++q) {
      if (dense.data()[q * cells + c] > dense.data()[a * cells + c]) a = q;
      if (crops.data[size_t(q * cells + c)] > crops.data[size_t(b * cells + c)]) b = q;
      diff = std::max(diff, double(std::abs(dense.data()[q * cells + c] - crops.data[size_t(q * cells + c)])));
      scale = std::max(scale, double(std::abs(crops.data[size_t(q * cells + c)])));
    }
    same += a == b;
  }
  MESSAGE(name << " 384x384 dense vs crop-wise: top-1 equal in " << same << "/" << cells << " cells, max|diff|/max|crop score| "
               << diff / scale);
  // Zero padding at a lone crop's border is image context in the dense pass: they must differ.
  CHECK(diff / scale > 1e-3);
}

}  // namespace

TEST_CASE("dense: at the training size the converted model's 1x1 map equals the original") {
  const fs::path m = models_dir(), d = dense_dir();
  struct Case {
    fs::path model;
    fs::path input, ref;
    int64_t size, stride;
  };
  const std::vector<Case> cases = {
      {m / "alexnet_op9.onnx", m / "alexnet.in_b3.npy", m / "alexnet.ref_b3.npy", 224, 32},
      {m / "alexnet_op17.onnx", m / "alexnet.in_b3.npy", m / "alexnet.ref_b3.npy", 224, 32},
      {m / "resnet18_op9.onnx", m / "resnet18.in_b3.npy", m / "resnet18.ref_b3.npy", 224, 32},
      {m / "resnet18_op13.onnx", m / "resnet18.in_b3.npy", m / "resnet18.ref_b3.npy", 224, 32},
      {m / "vgg16_bn_op13.onnx", m / "vgg16_bn.in_b1.npy", m / "vgg16_bn.ref_b1.npy", 224, 32},
      {m / "matmul_head_op13.onnx", m / "matmul_head.in_b3.npy", m / "matmul_head.ref_b3.npy", 224, 32},
      {kDemoDir / "fashion_cnn.onnx", d / "demo.in.npy", d / "demo.ort.npy", 28, 8},
      {d / "unpadded_op13.onnx", d / "unpadded.in_227.npy", d / "unpadded.ref_227.npy", 227, 32},
  };
  for (const Case& c : cases) {
    INFO(c.model);
    auto model = convoy::Model::load(c.model.string(), {.fc_to_conv = true});
    CHECK(model->training_size() == std::vector<int64_t>{c.size, c.size});
    CHECK(model->dense_stride() == c.stride);
    REQUIRE(model->inputs().at(0).shape.size() == 4);
    CHECK(model->inputs()[0].shape[2] == -1);  // H and W dynamic after the conversion
    CHECK(model->inputs()[0].shape[3] == -1);
    convoy::Session s(model, {.threads = 2});
    const NpyArray x = read_npy_f32(c.input), ref = read_npy_f32(c.ref);
    const convoy::Tensor y = run1(s, x);
    REQUIRE(y.shape() == std::vector<int64_t>{ref.shape[0], ref.shape[1], 1, 1});
    CHECK(rel_err({ref.shape[0], ref.shape[1]}, y.values(), ref) <= 1e-4);
  }
}

TEST_CASE("dense: vgg16 1x1 at 224 equals PyTorch, and its 384x384 map ONNX Runtime") {
  const fs::path m = models_dir(), d = dense_dir();
  auto model = convoy::Model::load((m / "vgg16_op13.onnx").string(), {.fc_to_conv = true});
  CHECK(model->dense_stride() == 32);
  convoy::Session s(model, {.threads = 2});
  const NpyArray ref224 = read_npy_f32(m / "vgg16.ref_b1.npy");
  const convoy::Tensor y224 = run1(s, read_npy_f32(m / "vgg16.in_b1.npy"));
  CHECK(rel_err({1, 1000}, y224.values(), ref224) <= 1e-4);
  const convoy::Tensor y384 = run1(s, read_npy_f32(d / "vgg16.in_384.npy"));
  CHECK(rel_err(y384.shape(), y384.values(), read_npy_f32(d / "vgg16.ort_384.npy")) <= 1e-4);
  report_crop_agreement("vgg16", y384, read_npy_f32(d / "vgg16.crops_384.npy"));
}

TEST_CASE("dense: resnet18 384x384 map equals ONNX Runtime (GlobalAveragePool head as a 7x7 window)") {
  const fs::path m = models_dir(), d = dense_dir();
  for (const char* file : {"resnet18_op9.onnx", "resnet18_op17.onnx"}) {
    INFO(std::string(file));
    auto model = convoy::Model::load((m / file).string(), {.fc_to_conv = true});
    convoy::Session s(model, {.threads = 2});
    const convoy::Tensor y = run1(s, read_npy_f32(d / "resnet18.in_384.npy"));
    CHECK(y.shape() == std::vector<int64_t>{1, 1000, 6, 6});
    CHECK(rel_err(y.shape(), y.values(), read_npy_f32(d / "resnet18.ort_384.npy")) <= 1e-4);
    if (std::string(file) == "resnet18_op9.onnx")
      report_crop_agreement("resnet18", y, read_npy_f32(d / "resnet18.crops_384.npy"));
  }
}

TEST_CASE("dense: alexnet at 384x384 equals ONNX Runtime, at stride 32 and at stride 16 (shifted passes)") {
  const fs::path m = models_dir(), d = dense_dir();
  TempDir t;
  const std::string model = quote((m / "alexnet_op13.onnx").string()), in = quote((d / "alexnet.in_384.npy").string());
  CliResult r =
      cli(t, "dense " + model + " --input " + in + " --output " + quote(t / "s32.npy") + " --json " + quote(t / "s32.json"));
  check_ok(r);
  const NpyArray s32 = read_npy_f32(t / "s32.npy");
  CHECK(rel_err(s32, read_npy_f32(d / "alexnet.ort_384.npy")) <= 1e-4);
  const std::string j = read_text(t / "s32.json");
  CHECK(j.find("\"crop_size\": [224, 224]") != std::string::npos);
  CHECK(j.find("\"map_size\": [6, 6]") != std::string::npos);
  CHECK(j.find("\"row_origins\": " + origin_list(6, 32)) != std::string::npos);

  r = cli(t, "dense " + model + " --input " + in + " --stride 16 --output " + quote(t / "s16.npy") + " --json " +
                 quote(t / "s16.json"));
  check_ok(r);
  CHECK(rel_err(read_npy_f32(t / "s16.npy"), read_npy_f32(d / "alexnet.ort_s16_384.npy")) <= 1e-4);
  const std::string j16 = read_text(t / "s16.json");
  CHECK(j16.find("\"stride\": 16") != std::string::npos);
  CHECK(j16.find("\"passes\": 4") != std::string::npos);
  CHECK(j16.find("\"map_size\": [11, 11]") != std::string::npos);
  CHECK(j16.find("\"col_origins\": " + origin_list(11, 16)) != std::string::npos);

  convoy::Tensor dense(s32.shape, s32.data);
  report_crop_agreement("alexnet", dense, read_npy_f32(d / "alexnet.crops_384.npy"));

  // A batch of 3 at the training size: 3 one-cell maps, the original's outputs.
  check_ok(
      cli(t, "dense " + model + " --input " + quote((m / "alexnet.in_b3.npy").string()) + " --output " + quote(t / "b3.npy")));
  const NpyArray b3 = read_npy_f32(t / "b3.npy");
  REQUIRE(b3.shape == std::vector<int64_t>{3, 1000, 1, 1});
  CHECK(rel_err({3, 1000}, b3.data, read_npy_f32(m / "alexnet.ref_b3.npy")) <= 1e-4);
}

TEST_CASE("dense: without padding every cell equals its 227x227 crop scored alone (stride 32 and 16)") {
  const fs::path d = dense_dir();
  TempDir t;
  const std::string model = quote((d / "unpadded_op13.onnx").string());
  struct Size {
    int64_t h, w;
  };
  for (Size s : {Size{355, 355}, Size{291, 387}}) {
    const std::string tag = std::to_string(s.h) + "x" + std::to_string(s.w);
    INFO(tag);
    const CliResult r = cli(t, "dense " + model + " --input " + quote((d / ("unpadded.in_" + tag + ".npy")).string()) +
                                   " --output " + quote(t / "u.npy") + " --json " + quote(t / "u.json"));
    check_ok(r);
    const NpyArray ref = read_npy_f32(d / ("unpadded.crops_" + tag + ".npy"));
    // The grid: (H - 227) / 32 + 1 rows of crops with top-left rows 0, 32, 64, ...
    const int64_t rows = (s.h - 227) / 32 + 1, cols = (s.w - 227) / 32 + 1;
    REQUIRE(ref.shape == std::vector<int64_t>{1, 10, rows, cols});
    CHECK(rel_err(read_npy_f32(t / "u.npy"), ref) <= 1e-4);
    const std::string j = read_text(t / "u.json");
    CHECK(j.find("\"network_stride\": 32") != std::string::npos);
    CHECK(j.find("\"crop_size\": [227, 227]") != std::string::npos);
    CHECK(j.find("\"map_size\": [" + std::to_string(rows) + ", " + std::to_string(cols) + "]") != std::string::npos);
    CHECK(j.find("\"row_origins\": " + origin_list(rows, 32)) != std::string::npos);
    CHECK(j.find("\"col_origins\": " + origin_list(cols, 32)) != std::string::npos);
  }
  const CliResult r = cli(t, "dense " + model + " --input " + quote((d / "unpadded.in_355x355.npy").string()) +
                                 " --stride 16 --output " + quote(t / "u16.npy") + " --json " + quote(t / "u16.json"));
  check_ok(r);
  const NpyArray ref16 = read_npy_f32(d / "unpadded.crops16_355x355.npy");
  REQUIRE(ref16.shape == std::vector<int64_t>{1, 10, 9, 9});
  CHECK(rel_err(read_npy_f32(t / "u16.npy"), ref16) <= 1e-4);
  CHECK(read_text(t / "u16.json").find("\"row_origins\": " + origin_list(9, 16)) != std::string::npos);
}

TEST_CASE("dense: the demo heat map over the collage lights up the trousers") {
  const fs::path collage = kDemoDir / "collage.png", manifest = kDemoDir / "collage.json";
  REQUIRE_MESSAGE(fs::exists(collage), "missing " << collage << ": run models/make_collage.py");
  // The demo PNG stays in the build tree for a look: build/dense_demo/trouser_heat.png.
  const fs::path out_dir = fs::path(CONVOY_BINARY_DIR) / "dense_demo";
  fs::create_directories(out_dir);
  const std::string heat = (out_dir / "trouser_heat.png").string();
  TempDir t;
  const CliResult r = cli(t, "dense " + quote((kDemoDir / "fashion_cnn.onnx").string()) + " " + quote(collage.string()) +
                                 " --class Trouser --top 4 --heatmap " + quote(heat) + " --output " + quote(t / "scores.npy") +
                                 " --json " + quote(t / "heat.json"));
  check_ok(r);

  // Items from the manifest make_collage.py wrote (true labels from the dataset).
  struct Item {
    int x, y;
    std::string label;
  };
  std::vector<Item> items;
  static const std::regex item_re(R"re("x": (\d+),\s*"y": (\d+),\s*"w": 28,\s*"h": 28,\s*"label": "([^"]+)")re");
  const std::string text = read_text(manifest);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), item_re); it != std::sregex_iterator(); ++it)
    items.push_back({std::stoi((*it)[1]), std::stoi((*it)[2]), (*it)[3]});
  REQUIRE(items.size() == 16);

  // Each item sits exactly on the crop of cell (y/8, x/8): its Trouser probability (softmax over
  // the cell's scores) is high for trousers only.
  const NpyArray s = read_npy_f32(t / "scores.npy");
  REQUIRE(s.shape == std::vector<int64_t>{1, 10, 19, 19});
  const int64_t cells = 19 * 19;
  auto prob = [&](int64_t cls, int64_t i, int64_t j) {
    double mx = -1e30, sum = 0;
    for (int64_t q = 0; q < 10; ++q) mx = std::max(mx, double(s.data[size_t(q * cells + i * 19 + j)]));
    for (int64_t q = 0; q < 10; ++q) sum += std::exp(double(s.data[size_t(q * cells + i * 19 + j)]) - mx);
    return std::exp(double(s.data[size_t(cls * cells + i * 19 + j)]) - mx) / sum;
  };
  cv::Mat png = cv::imread(heat, cv::IMREAD_COLOR);
  REQUIRE(png.rows == 168);
  REQUIRE(png.cols == 168);
  double red_trouser = 0, red_other = 0;
  int n_trouser = 0;
  for (const Item& it : items) {
    INFO(it.label << " at " << it.x << "," << it.y);
    const double p = prob(1, it.y / 8, it.x / 8);
    const cv::Scalar mean = cv::mean(png(cv::Rect(it.x + 8, it.y + 8, 12, 12)));  // BGR around the crop centre
    const double red = mean[2] - mean[0];
    if (it.label == "Trouser") {
      CHECK(p > 0.8);
      red_trouser += red;
      ++n_trouser;
    } else {
      CHECK(p < 0.2);
      red_other += red;
    }
  }
  REQUIRE(n_trouser == 4);
  CHECK(red_trouser / 4 > red_other / 12 + 60);  // JET: high probability is red, low blue

  // The four best Trouser windows are the four trousers' crops.
  const std::string j = read_text(t / "heat.json");
  static const std::regex box_re(R"re("label": "Trouser".*?"box": \[(\d+), (\d+), 28, 28\])re");
  int found = 0;
  for (auto it = std::sregex_iterator(j.begin(), j.end(), box_re); it != std::sregex_iterator(); ++it) {
    const int x = std::stoi((*it)[1]), y = std::stoi((*it)[2]);
    CHECK(std::any_of(items.begin(), items.end(), [&](const Item& i) { return i.label == "Trouser" && i.x == x && i.y == y; }));
    ++found;
  }
  CHECK(found == 4);
}

TEST_CASE("dense: several scales write one map per scale with its geometry") {
  TempDir t;
  const CliResult r =
      cli(t, "dense " + quote((kDemoDir / "fashion_cnn.onnx").string()) + " " + quote((kDemoDir / "collage.png").string()) +
                 " --scales 1,0.5 --top 1 --output " + quote(t / "m.npy") + " --json " + quote(t / "m.json"));
  check_ok(r);
  // 168 -> 84x84 at scale 0.5: maxpools 84 -> 42 -> 21 -> 10, a 3x3 head conv: 8x8 cells.
  CHECK(read_npy_f32(t / "m_s0.npy").shape == std::vector<int64_t>{1, 10, 19, 19});
  CHECK(read_npy_f32(t / "m_s1.npy").shape == std::vector<int64_t>{1, 10, 8, 8});
  const std::string j = read_text(t / "m.json");
  CHECK(j.find("\"scale\": [0.5, 0.5], \"input_size\": [84, 84], \"map_size\": [8, 8]") != std::string::npos);
  CHECK(j.find("\"image_row_origins\": [0, 16, 32, 48, 64, 80, 96, 112]") != std::string::npos);  // 8 px / 0.5
  CHECK(j.find("\"image_crop_size\": [56, 56]") != std::string::npos);
}

TEST_CASE("dense: unconvertible heads, too-small images and strides that do not divide are clear errors") {
  const fs::path d = dense_dir();
  TempDir t;
  const std::string demo = quote((kDemoDir / "fashion_cnn.onnx").string()), collage = quote((kDemoDir / "collage.png").string());
  check_error(
      cli(t, "dense " + quote((d / "bad_head_op13.onnx").string()) + " --input " + quote((d / "unpadded.in_227.npy").string())),
      1, "(ReduceMean): cannot convert this op of the fully-connected head");
  check_error(cli(t, "dense " + demo + " " + collage + " --size 20x40"), 1,
              "smaller than the 28x28 crop the model was trained on");
  check_error(cli(t, "dense " + demo + " " + collage + " --scales 1,0.1"), 1,
              "at scale 0.1 is 17x17, smaller than the 28x28 crop");
  check_error(cli(t, "dense " + quote((d / "unpadded_op13.onnx").string()) + " --input " + collage), 1, "not a .npy");
  check_error(cli(t, "dense " + demo + " " + collage + " --stride 3"), 1,
              "--stride 3 does not divide the network's stride 8 (shifted passes need one of 8, 4, 2, 1)");
  check_error(cli(t, "dense " + demo + " " + collage + " --stride 16"), 1, "--stride 16 does not divide the network's stride 8");
  check_error(cli(t, "dense " + demo + " " + collage + " --stride 0"), 2, "option '--stride': 0 is out of range");
  check_error(cli(t, "dense " + demo + " " + collage + " --stride 1.5"), 2, "option '--stride': '1.5' is not an integer");
  check_error(cli(t, "dense " + demo + " " + collage + " --size 40x40 --scales 1"), 2, "give --size or --scales, not both");
  check_error(cli(t, "dense " + demo + " " + collage + " --class Hat"), 1, "--class 'Hat' is neither a class label");
  check_error(cli(t, "dense " + demo), 2, "nothing to score");
  CHECK(!fs::exists(t / "x.npy"));
}

// ---------------------------------------------------------------- the pass on tiny graphs
// (independent reference: naive loops over each crop; see also tests/gen for real exports)

namespace {

using convoy::testing::GraphBuilder;

// x [1,2,4,4] -> Flatten -> `head` ...; the training size is the input's static 4x4.
GraphBuilder flat_input(int64_t opset = 13) {
  GraphBuilder b(opset);
  b.input("x", {1, 2, 4, 4});
  b.node("Flatten", {"x"}, "f", {{"axis", convoy::testing::attr_int(1)}});
  return b;
}

std::string pass_error(convoy::Graph& g) {
  try {
    convoy::passes::fc_to_conv(g);
  } catch (const convoy::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("fc_to_conv pass: Gemm+Add+ReLU+Gemm+Softmax head; each cell equals the head on its crop") {
  using namespace convoy::testing;
  GraphBuilder b = flat_input();
  b.constant("w1", {5, 32});
  b.constant_values("c1", {1}, {0.25f});  // a scalar Gemm bias broadcasts
  b.constant("b2", {5});
  b.constant("w2", {5, 3});
  b.node("Gemm", {"f", "w1", "c1"}, "g1", {{"transB", attr_int(1)}, {"alpha", attr_float(0.5f)}});
  b.node("Add", {"g1", "b2"}, "a1");
  b.node("Relu", {"a1"}, "r1");
  b.node("MatMul", {"r1", "w2"}, "m2");
  b.node("Softmax", {"m2"}, "y", {{"axis", attr_int(-1)}});
  b.output("y");
  convoy::Graph& g = b.graph();
  const std::vector<float> w1(g.constants.at("w1")->f32(), g.constants.at("w1")->f32() + 160);
  const std::vector<float> b2(g.constants.at("b2")->f32(), g.constants.at("b2")->f32() + 5);
  const std::vector<float> w2(g.constants.at("w2")->f32(), g.constants.at("w2")->f32() + 15);
  REQUIRE(convoy::passes::fc_to_conv(g));
  CHECK(count_ops(g, "Gemm") == 0);
  CHECK(count_ops(g, "MatMul") == 0);
  CHECK(count_ops(g, "Conv") == 2);
  CHECK(g.metadata.at("convoy.input_size") == "4x4");

  // A 6x7 input: 3x4 cells, cell (i, j) = head(x[:, :, i:i+4, j:j+4]) (no trunk: stride 1).
  const convoy::Shape xs = {1, 2, 6, 7};
  const auto in = random_inputs({xs}, 11);
  const RunResult r = run_graph(g, {xs}, in);
  REQUIRE(r.shapes.at(0) == convoy::Shape{1, 3, 3, 4});
  std::vector<float> want(36);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      std::vector<float> crop;  // NCHW flatten order
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t y = 0; y < 4; ++y)
          for (int64_t x = 0; x < 4; ++x) crop.push_back(in[0][size_t((c * 6 + i + y) * 7 + j + x)]);
      std::vector<double> h(5), o(3);
      for (int64_t k = 0; k < 5; ++k) {
        double s = 0.25;
        for (int64_t q = 0; q < 32; ++q) s += 0.5 * double(w1[size_t(k * 32 + q)]) * crop[size_t(q)];
        h[size_t(k)] = std::max(0.0, s + b2[size_t(k)]);
      }
      double mx = -1e30, sum = 0;
      for (int64_t k = 0; k < 3; ++k) {
        for (int64_t q = 0; q < 5; ++q) o[size_t(k)] += h[size_t(q)] * w2[size_t(q * 3 + k)];
        mx = std::max(mx, o[size_t(k)]);
      }
      for (double v : o) sum += std::exp(v - mx);
      for (int64_t k = 0; k < 3; ++k) want[size_t((k * 3 + i) * 4 + j)] = float(std::exp(o[size_t(k)] - mx) / sum);
    }
  check_close(r.outputs[0], want, 1e-5);
}

TEST_CASE("fc_to_conv pass: heads it cannot convert exactly are refused, naming the node") {
  using namespace convoy::testing;
  {
    GraphBuilder b = flat_input();
    b.output("f");
    CHECK(pass_error(b.graph()).find("the flattened map is the graph output 'f'") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.node("Relu", {"f"}, "y");
    b.output("y");
    CHECK(pass_error(b.graph()).find("no Gemm/MatMul follows the flatten") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.constant("shift", {32});
    b.constant("w", {5, 32});
    b.node("Add", {"f", "shift"}, "a");
    b.node("Gemm", {"a", "w"}, "y", {{"transB", attr_int(1)}});
    b.output("y");
    CHECK(pass_error(b.graph()).find("node 'a' (Add): constant [32] is not a per-output vector") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.constant("w", {32, 5});
    b.node("Softmax", {"f"}, "s", {{"axis", attr_int(1)}});
    b.node("MatMul", {"s", "w"}, "y");
    b.output("y");
    CHECK(pass_error(b.graph()).find("a softmax over the flattened map") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.constant("w", {5, 1});
    b.node("MatMul", {"w", "f"}, "y");
    b.output("y");
    const std::string e = pass_error(b.graph());
    INFO(e);
    CHECK(e.find("the map must be the first input") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.constant("w", {1, 5});
    b.node("Gemm", {"f", "w"}, "y", {{"transA", attr_int(1)}});
    b.output("y");
    const std::string e = pass_error(b.graph());
    INFO(e);
    CHECK(e.find("transA=1 cannot be converted") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input(11);
    b.constant("w", {32, 5});
    b.node("MatMul", {"f", "w"}, "m");
    b.node("Softmax", {"m"}, "y", {{"axis", attr_int(1)}});
    b.output("y");
    CHECK(pass_error(b.graph()).find("at opset 11 Softmax flattens its input") != std::string::npos);
  }
  {
    GraphBuilder b = flat_input();
    b.constant("w", {32, 5});
    b.node("MatMul", {"f", "w"}, "m");
    b.node("ReduceMean", {"m"}, "y", {{"axes", attr_ints({1})}});
    b.output("y");
    CHECK(pass_error(b.graph()).find("node 'y' (ReduceMean): cannot convert this op") != std::string::npos);
  }
}

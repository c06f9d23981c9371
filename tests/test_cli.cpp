// The `convoy` CLI end to end (binary in $CONVOY_BIN) on the demo model models/demo/fashion_cnn.onnx:
// help and usage errors, predictions on the sample PNGs against their true labels, image
// preprocessing against numpy/PIL doing the same by hand, --output, and inspect against the FLOPs
// and parameters counted from the architecture.
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
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kDemoDir = fs::path(CONVOY_SOURCE_DIR) / "models" / "demo";
const fs::path kDemoModel = kDemoDir / "fashion_cnn.onnx";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "convoy_test_cli_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) { return "'" + s + "'"; }  // our paths hold no quotes

struct CliResult {
  int exit_code = -1;  // the shell's: 128+N when the CLI died from signal N, 124 on timeout
  std::string out, err;
};

// `env_args`: variables to set or unset first, as env(1) takes them ("-u NAME", "NAME=value").
CliResult cli_env(const TempDir& dir, const std::string& env_args, const std::string& args) {
  const char* bin = std::getenv("CONVOY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "CONVOY_BIN must name the built convoy CLI");
  const std::string out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = "env " + env_args + " timeout 60 " + quote(bin) + " " + args + " >" + quote(out) + " 2>" + quote(err);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

CliResult cli(const TempDir& dir, const std::string& args) { return cli_env(dir, "", args); }

// Runs a Python snippet (numpy, PIL, onnx available); true when it exits 0.
bool python(const TempDir& dir, const std::string& code) {
  const std::string script = dir / "snippet.py";
  std::ofstream(script) << "import numpy as np\n" << code << "\n";
  return std::system(("/usr/bin/python3 " + quote(script)).c_str()) == 0;
}

// The class names the trainer wrote next to the model (models/train_demo.py), one per line.
std::vector<std::string> demo_labels() {
  std::vector<std::string> out;
  std::ifstream f(kDemoDir / "labels.txt");
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::string demo() {
  REQUIRE_MESSAGE(fs::exists(kDemoModel), "missing " << kDemoModel << ": run models/train_demo.py");
  return quote(kDemoModel.string());
}

std::vector<std::string> sample_pngs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kDemoDir / "samples"))
    if (e.path().extension() == ".png") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string joined_quoted(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += quote(s) + " ";
  return out;
}

struct Prediction {
  int rank;
  std::string label;
  int index;
  double score;
};
struct Block {
  std::string name;
  std::vector<Prediction> top;
};

// Parses `convoy run` output: a line naming the image or row, then "  rank  label (index)  score".
std::vector<Block> parse_run_output(const std::string& text) {
  static const std::regex line_re(R"(^  (\d+)  (.*) \((\d+)\)  (\S+)$)");
  std::vector<Block> blocks;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, line_re)) {
      REQUIRE(!blocks.empty());
      blocks.back().top.push_back({std::stoi(m[1]), m[2], std::stoi(m[3]), std::stod(m[4])});
    } else {
      REQUIRE_MESSAGE(!line.empty(), "unexpected empty line in output");
      REQUIRE_MESSAGE(line[0] != ' ', "unparsed prediction line: " << line);
      blocks.push_back({line, {}});
    }
  }
  return blocks;
}

// "00_ankle_boot.png" -> 9: the sample's true class, from its name (see models/train_demo.py).
int true_label(const std::string& path, const std::vector<std::string>& labels) {
  std::string stem = fs::path(path).stem().string();
  stem = stem.substr(stem.find('_') + 1);
  for (int c = 0; c < int(labels.size()); ++c) {
    std::string l = labels[size_t(c)];
    std::transform(l.begin(), l.end(), l.begin(), [](char ch) { return ch == '/' || ch == ' ' ? '_' : char(std::tolower(ch)); });
    if (l == stem) return c;
  }
  FAIL("cannot tell the true label of " << path);
  return -1;
}

bool allclose(const TempDir& dir, const std::string& a, const std::string& b, const std::string& tol = "rtol=1e-4, atol=1e-5") {
  return python(dir, "a, b = np.load('" + a + "'), np.load('" + b +
                         "')\n"
                         "assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)\n"
                         "assert np.allclose(a, b, " + tol + "), abs(a - b).max()");
}

void check_clean_failure(const CliResult& r, int code) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(r.err.rfind("convoy: ", 0) == 0);
  if (code == 1) CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  if (code == 2) CHECK(r.err.find("usage: convoy") != std::string::npos);
}

}  // namespace

TEST_CASE("cli: --help, --version and every verb's --help exit 0") {
  TempDir t;
  CliResult r = cli(t, "--help");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("  run ") != std::string::npos);
  CHECK(r.out.find("  inspect ") != std::string::npos);
  r = cli(t, "--version");
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("convoy ", 0) == 0);
  for (const char* verb : {"run", "inspect"}) {
    for (const char* flag : {"--help", "-h"}) {
      r = cli(t, std::string(verb) + " " + flag);
      CHECK(r.exit_code == 0);
      CHECK(r.out.rfind(std::string("usage: convoy ") + verb, 0) == 0);
      CHECK(r.err.empty());
    }
  }
  // --help wins over everything else on the line, even a missing model.
  r = cli(t, "run /no/such/model.onnx --top 3 --help");
  CHECK(r.exit_code == 0);
}

TEST_CASE("cli: usage errors exit 2 with the synopsis") {
  TempDir t;
  const std::string m = demo(), img = quote(sample_pngs().at(0));
  check_clean_failure(cli(t, ""), 2);
  check_clean_failure(cli(t, "frobnicate"), 2);
  check_clean_failure(cli(t, "run"), 2);
  check_clean_failure(cli(t, "run " + m), 2);                          // nothing to run
  check_clean_failure(cli(t, "run " + m + " " + img + " --bogus"), 2);  // unknown flag
  check_clean_failure(cli(t, "run " + m + " " + img + " --top"), 2);    // missing value
  check_clean_failure(cli(t, "run " + m + " " + img + " --top abc"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --top 0"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --top 3x"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --threads -1"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --size 28by28"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --size 0x28"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --mean 0.1,x"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --scale nan"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --bgr=yes"), 2);
  check_clean_failure(cli(t, "run " + m + " " + img + " --input x.npy"), 2);  // both
  check_clean_failure(cli(t, "inspect"), 2);
  check_clean_failure(cli(t, "inspect " + m + " extra"), 2);
  check_clean_failure(cli(t, "inspect " + m + " --batch 0"), 2);
  CliResult r = cli(t, "run " + m + " " + img + " --top abc");
  CHECK(r.err.find("'--top'") != std::string::npos);
  CHECK(r.err.find("abc") != std::string::npos);
}

TEST_CASE("cli: run predicts the demo samples' true labels") {
  TempDir t;
  const std::vector<std::string> pngs = sample_pngs(), labels = demo_labels();
  REQUIRE(pngs.size() >= 4);
  REQUIRE(labels.size() == 10);
  const CliResult r = cli(t, "run " + demo() + " " + joined_quoted(pngs));
  INFO("stdout:\n" << r.out << "stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const auto blocks = parse_run_output(r.out);
  REQUIRE(blocks.size() == pngs.size());
  size_t correct = 0;
  for (size_t i = 0; i < pngs.size(); ++i) {
    CHECK(blocks[i].name == pngs[i]);
    REQUIRE(blocks[i].top.size() == 5);  // default --top
    for (size_t k = 0; k < 5; ++k) {
      const Prediction& p = blocks[i].top[k];
      CHECK(p.rank == int(k) + 1);
      REQUIRE((p.index >= 0 && p.index < 10));
      CHECK(p.label == labels[size_t(p.index)]);  // labels from the model's convoy.labels metadata
      if (k) CHECK(p.score <= blocks[i].top[k - 1].score);
    }
    correct += blocks[i].top[0].index == true_label(pngs[i], labels);
  }
  // PyTorch measured ~90% test accuracy (models/demo/README.md); a sane model gets most right.
  CHECK(correct * 4 >= pngs.size() * 3);

  // --top K, --labels FILE, --threads.
  const CliResult r3 = cli(t, "run " + demo() + " " + quote(pngs[0]) + " --top 3 --threads 1 --labels " +
                                  quote((kDemoDir / "labels.txt").string()));
  REQUIRE(r3.exit_code == 0);
  const auto b3 = parse_run_output(r3.out);
  REQUIRE(b3.size() == 1);
  CHECK(b3[0].top.size() == 3);
  CHECK(b3[0].top[0].index == blocks[0].top[0].index);
  const CliResult r20 = cli(t, "run " + demo() + " " + quote(pngs[0]) + " --top 20");
  REQUIRE(r20.exit_code == 0);
  CHECK(parse_run_output(r20.out).at(0).top.size() == 10);  // clamped to the class count
}

TEST_CASE("cli: images are preprocessed as numpy does it by hand; --output equals --input of that tensor") {
  TempDir t;
  const std::vector<std::string> pngs = sample_pngs();
  std::string list;
  for (const auto& p : pngs) list += "'" + p + "',";
  // gray, 28x28 stretch (no resize at 28x28): x = (pixel / scale - mean) / std from the metadata.
  REQUIRE(python(t, "import onnx; from PIL import Image\n"
                    "meta = {p.key: p.value for p in onnx.load('" + kDemoModel.string() + "').metadata_props}\n"
                    "mean, std, scale = float(meta['convoy.mean']), float(meta['convoy.std']), float(meta['convoy.scale'])\n"
                    "x = [(np.asarray(Image.open(p).convert('L'), np.float64) / scale - mean) / std for p in [" + list + "]]\n"
                    "np.save('" + t / "pre.npy" + "', np.stack(x)[:, None].astype(np.float32))\n"
                    "np.save('" + t / "pre_plain.npy" + "', np.stack([np.asarray(Image.open(p).convert('L'), np.float32) / 100 - 0.5 for p in [" + list + "]])[:, None])"));

  CliResult r = cli(t, "run " + demo() + " " + joined_quoted(pngs) + " --output " + quote(t / "from_images.npy"));
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  r = cli(t, "run " + demo() + " --input " + quote(t / "pre.npy") + " --output " + quote(t / "from_npy.npy"));
  REQUIRE(r.exit_code == 0);
  CHECK(allclose(t, t / "from_images.npy", t / "from_npy.npy"));
  CHECK(python(t, "assert np.load('" + t / "from_npy.npy" + "').shape == (" + std::to_string(pngs.size()) + ", 10)"));
  const auto blocks = parse_run_output(r.out);
  REQUIRE(blocks.size() == pngs.size());
  CHECK(blocks[1].name.find("pre.npy row 1") != std::string::npos);

  // One image at a time gives the batch's rows.
  r = cli(t, "run " + demo() + " " + quote(pngs[1]) + " --output " + quote(t / "one.npy"));
  REQUIRE(r.exit_code == 0);
  CHECK(python(t, "a, b = np.load('" + t / "one.npy" + "'), np.load('" + t / "from_images.npy" +
                      "')\nassert a.shape == (1, 10) and np.allclose(a[0], b[1], rtol=1e-4, atol=1e-5), (a, b[1])"));

  // Flags override the metadata: --scale 100 --mean 0.5 --std 1.
  r = cli(t, "run " + demo() + " " + joined_quoted(pngs) + " --scale 100 --mean 0.5 --std 1 --output " + quote(t / "flags.npy"));
  REQUIRE(r.exit_code == 0);
  r = cli(t, "run " + demo() + " --input " + quote(t / "pre_plain.npy") + " --output " + quote(t / "plain.npy"));
  REQUIRE(r.exit_code == 0);
  CHECK(allclose(t, t / "flags.npy", t / "plain.npy"));
}

TEST_CASE("cli: color images: center crop, RGB or BGR, ImageNet defaults") {
  TempDir t;
  // A model that returns its input flattened, so --output shows the preprocessed tensor; no
  // metadata, so ImageNet mean/std, RGB and center_crop apply. A 9x9 image at 8x8 is cropped
  // without resizing (256/224 * 8 = 9.14 -> 9), at offset round(0.5) = 0 as torchvision does.
  REQUIRE(python(t, "import onnx; from onnx import helper, TensorProto as T; from PIL import Image\n"
                    "g = helper.make_graph([helper.make_node('Flatten', ['x'], ['y'], name='flat')], 'g',\n"
                    "    [helper.make_tensor_value_info('x', T.FLOAT, [1, 3, 8, 8])], [helper.make_tensor_value_info('y', T.FLOAT, [1, 192])])\n"
                    "onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), '" + t / "flat.onnx" + "')\n"
                    "rgb = np.random.default_rng(5).integers(0, 256, (9, 9, 3), dtype=np.uint8)\n"
                    "Image.fromarray(rgb, 'RGB').save('" + t / "color.png" + "')\n"
                    "mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])\n"
                    "x = ((rgb[:8, :8] / 255.0 - mean) / std).transpose(2, 0, 1)\n"
                    "np.save('" + t / "rgb_ref.npy" + "', x.reshape(1, 192).astype(np.float32))\n"
                    "xb = ((rgb[:8, :8, ::-1] / 255.0 - mean) / std).transpose(2, 0, 1)\n"
                    "np.save('" + t / "bgr_ref.npy" + "', xb.reshape(1, 192).astype(np.float32))"));
  CliResult r = cli(t, "run " + quote(t / "flat.onnx") + " " + quote(t / "color.png") + " --output " + quote(t / "rgb.npy"));
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(allclose(t, t / "rgb.npy", t / "rgb_ref.npy"));
  r = cli(t, "run " + quote(t / "flat.onnx") + " " + quote(t / "color.png") + " --bgr --output " + quote(t / "bgr.npy"));
  REQUIRE(r.exit_code == 0);
  CHECK(allclose(t, t / "bgr.npy", t / "bgr_ref.npy"));
  CHECK(r.out.find("class_") != std::string::npos);  // no labels anywhere: class_<index>
  // A fixed 8x8 input refuses another --size.
  r = cli(t, "run " + quote(t / "flat.onnx") + " " + quote(t / "color.png") + " --size 16x16");
  check_clean_failure(r, 1);
  CHECK(r.err.find("input 'x'") != std::string::npos);
}

TEST_CASE("cli: run errors exit 1 on one line and leave no --output file") {
  TempDir t;
  const std::string m = demo(), img = quote(sample_pngs().at(0)), out = t / "out.npy";
  std::ofstream(t / "text.png") << "not an image\n";
  std::ofstream(t / "labels3.txt") << "a\nb\nc\n";
  REQUIRE(python(t, "np.save('" + t / "wrong.npy" + "', np.zeros((2, 1, 27, 28), np.float32))"));

  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {"run " + m + " " + quote(t / "missing.png"), "missing.png: cannot read image"},
      {"run " + m + " " + img + " " + quote(t / "text.png"), "text.png: cannot decode image"},
      {"run " + quote(t / "missing.onnx") + " " + img, "missing.onnx"},
      {"run " + m + " --input " + quote(t / "missing.npy"), "missing.npy: cannot open"},
      {"run " + m + " --input " + quote(t / "wrong.npy"), "input 'input' expects shape [?,1,28,28] (float32), " + t / "wrong.npy" + " has [2,1,27,28]"},
      {"run " + m + " " + img + " --labels " + quote(t / "labels3.txt"), "3 labels, but output 'logits' has 10 classes"},
      {"run " + m + " " + img + " --labels " + quote(t / "nolabels.txt"), "nolabels.txt: cannot open labels file"},
      {"run " + m + " " + img + " --size 32x32", "fixed spatial size"},
      {"run " + m + " " + img + " --mean 0.1,0.2,0.3", "--mean has 3 values but the model takes 1 channel"},
  };
  for (const Case& c : cases) {
    const CliResult r = cli(t, c.args + " --output " + quote(out));
    INFO("args: " << c.args);
    check_clean_failure(r, 1);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  // An output directory that does not exist: the run fails before anything is printed.
  const CliResult r = cli(t, "run " + m + " " + img + " --output " + quote(t / "no/such/dir/out.npy"));
  check_clean_failure(r, 1);
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(t / "no"));
  // A failed run leaves an existing output untouched (the write is atomic).
  REQUIRE(cli(t, "run " + m + " " + img + " --output " + quote(out)).exit_code == 0);
  const std::string before = read_file(out);
  check_clean_failure(cli(t, "run " + m + " " + quote(t / "text.png") + " --output " + quote(out)), 1);
  CHECK(read_file(out) == before);
  for (const auto& e : fs::directory_iterator(t.path))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp") == std::string::npos, "stray " << e.path());
}

TEST_CASE("cli: image codecs come from a plugin loaded on first use; without it images fail on one line, .npy runs") {
  TempDir t;
  const std::string m = demo(), img = quote(sample_pngs().at(0)), out = t / "out.npy";
  REQUIRE(python(t, "np.save('" + t / "x.npy" + "', np.random.default_rng(3).random((1, 1, 28, 28), np.float32))"));
  std::ofstream(t / "not_a_plugin.so") << "not a shared object\n";

  // The executable itself does not link OpenCV's imgcodecs (its ~120 libraries cost ~42 MiB).
  REQUIRE(std::system(("ldd " + quote(std::getenv("CONVOY_BIN")) + " >" + quote(t / "ldd.txt")).c_str()) == 0);
  const std::string ldd = read_file(t / "ldd.txt");
  CHECK(ldd.find("libopencv_core") != std::string::npos);
  CHECK_MESSAGE(ldd.find("libopencv_imgcodecs") == std::string::npos, ldd);

  // Found next to the executable when CONVOY_IMGCODECS_PLUGIN (set by ctest) is not set: the
  // same predictions as through the variable.
  const CliResult named = cli(t, "run " + m + " " + img);
  REQUIRE(named.exit_code == 0);
  const CliResult beside = cli_env(t, "-u CONVOY_IMGCODECS_PLUGIN", "run " + m + " " + img);
  INFO("stderr: " << beside.err);
  REQUIRE(beside.exit_code == 0);
  CHECK(beside.out == named.out);

  // A missing or broken plugin: exit 1, one line naming the path tried; no --output written.
  for (const std::string& plugin : {t / "missing/libconvoy_imgcodecs.so", t / "not_a_plugin.so"}) {
    CAPTURE(plugin);
    const CliResult r = cli_env(t, "CONVOY_IMGCODECS_PLUGIN=" + quote(plugin), "run " + m + " " + img + " --output " + quote(out));
    check_clean_failure(r, 1);
    CHECK(r.err.find("cannot load the image codec plugin") != std::string::npos);
    CHECK(r.err.find(plugin) != std::string::npos);
    CHECK(r.err.find("CONVOY_IMGCODECS_PLUGIN") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  const CliResult dense = cli_env(t, "CONVOY_IMGCODECS_PLUGIN=/nonexistent/plugin.so", "dense " + m + " " + img);
  check_clean_failure(dense, 1);
  CHECK(dense.err.find("/nonexistent/plugin.so") != std::string::npos);

  // Tensors never need it: --input runs and prints what it prints with the plugin.
  const CliResult npy = cli_env(t, "CONVOY_IMGCODECS_PLUGIN=/nonexistent/plugin.so", "run " + m + " --input " + quote(t / "x.npy"));
  INFO("stderr: " << npy.err);
  REQUIRE(npy.exit_code == 0);
  CHECK(npy.out == cli(t, "run " + m + " --input " + quote(t / "x.npy")).out);
  CHECK(parse_run_output(npy.out).size() == 1);
}

TEST_CASE("cli: inspect prints the model and its plan") {
  TempDir t;
  CliResult r = cli(t, "inspect " + demo());
  INFO("stdout:\n" << r.out << "stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* s : {"opset      13", "input ", "float32", "[?,1,28,28]", "logits", "[?,10]", "convoy.input_size = 28x28",
                        "plan for input [1,1,28,28]", "Conv", "total GFLOPs", "arena", "weights"})
    CHECK_MESSAGE(r.out.find(s) != std::string::npos, "missing '" << s << "'");

  // Reference counts from the ONNX file by Python: float initializers (PyTorch's eval export has
  // already folded BatchNorm into the convolutions) and 2 * multiply-adds of every Conv and Gemm
  // from ONNX shape inference at batch 1.
  REQUIRE(python(t, "import onnx; from onnx import shape_inference, numpy_helper\n"
                    "m = shape_inference.infer_shapes(onnx.load('" + kDemoModel.string() + "'))\n"
                    "inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}\n"
                    "shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]\n"
                    "          for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}\n"
                    "shapes.update({k: list(a.shape) for k, a in inits.items()})\n"
                    "flops = 0\n"
                    "for n in m.graph.node:\n"
                    "    out = np.prod(shapes[n.output[0]])\n"
                    "    if n.op_type == 'Conv': flops += 2 * out * np.prod(shapes[n.input[1]][1:])\n"
                    "    trans_a = any(a.name == 'transA' and a.i for a in n.attribute)\n"
                    "    if n.op_type == 'Gemm': flops += 2 * out * shapes[n.input[0]][0 if trans_a else 1]\n"
                    "params = sum(a.size for a in inits.values() if a.dtype == np.float32)\n"
                    "open('" + t / "ref.txt" + "', 'w').write(f'{params} {flops}')"));
  std::istringstream ref(read_file(t / "ref.txt"));
  size_t params = 0;
  double flops = 0;
  ref >> params >> flops;
  REQUIRE(params > 0);
  CHECK(r.out.find("parameters " + std::to_string(params) + "\n") != std::string::npos);

  auto number_after = [](const std::string& text, const std::string& key) {
    const size_t at = text.find(key);
    REQUIRE_MESSAGE(at != std::string::npos, "missing " << key);
    return std::stod(text.substr(at + key.size()));
  };
  // Pooling, bias and ReLU add well under 2% to the Conv and Gemm work.
  const double gflops = flops * 1e-9;
  const double total = number_after(r.out, "total GFLOPs");
  CHECK(total >= gflops * 0.999);
  CHECK(total <= gflops * 1.02);
  const double arena = number_after(r.out, "arena"), sum = number_after(r.out, "sum of intermediates"),
               live = number_after(r.out, "live lower bound"), weights = number_after(r.out, "weights");
  CHECK(live <= arena);
  CHECK(arena <= sum);
  CHECK(weights >= double(params) * 4);

  r = cli(t, "inspect " + demo() + " --batch 4");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("plan for input [4,1,28,28]") != std::string::npos);
  const double total4 = number_after(r.out, "total GFLOPs");
  CHECK(total4 == doctest::Approx(4 * total).epsilon(1e-3));
}

// `convoy finetune` end to end through the built CLI ($CONVOY_BIN), on the image folders of
// tests/gen/make_finetune_data.py ($CONVOY_TEST_DATA/finetune):
//  1. the demo model learns Fashion-MNIST sneaker vs bag (Kaggle layout) to >= 97% validation
//     accuracy in 3 epochs, skips the 2 corrupt files, and `convoy run` on the exported model
//     prints the class names;
//  2. a run killed (SIGKILL) during epoch 2 and resumed from its checkpoint ends with the same
//     model, bit for bit, as an uninterrupted run;
//  3. torchvision ResNet-18 (random weights) on 224x224 stripe images (one folder per class):
//     the training loss decreases and ONNX Runtime runs the exported model with convoy's outputs;
//  4. bad input fails with one clear line and leaves --out untouched.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_test_util.h"
#include "npy_test_util.h"
#include "tools/npy.h"

namespace fs = std::filesystem;
using convoy::testing::CliResult;
using convoy::testing::quote;
using convoy::testing::read_file;
using convoy::testing::TempDir;

namespace {

const fs::path kDemoModel = fs::path(CONVOY_SOURCE_DIR) / "models" / "demo" / "fashion_cnn.onnx";
const fs::path kOrtRun = fs::path(CONVOY_SOURCE_DIR) / "tests" / "gen" / "ort_run.js";

fs::path data_dir(const char* sub) {
  const fs::path d = convoy::testing::test_data_dir() / sub;
  REQUIRE_MESSAGE(fs::exists(d), convoy::testing::kMissingDataHint << " (missing " << d << ")");
  return d;
}
fs::path finetune_data() {
  const fs::path d = data_dir("finetune");
  REQUIRE_MESSAGE(fs::exists(d / ".stamp"), convoy::testing::kMissingDataHint << " (missing " << d / ".stamp" << ")");
  return d;
}

CliResult cli(const TempDir& dir, const std::string& args, int timeout = 600) {
  return convoy::testing::run_captured(dir.path, convoy::testing::convoy_bin() + " " + args, timeout);
}

// The --log CSV as rows of name -> value (header checked).
std::vector<std::map<std::string, double>> read_csv(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "epoch,train_loss,train_acc,val_loss,val_acc,lr,images_per_s,seconds");
  std::vector<std::string> cols;
  std::stringstream hs(line);
  for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
  std::vector<std::map<std::string, double>> rows;
  while (std::getline(in, line)) {
    std::stringstream ls(line);
    std::map<std::string, double> row;
    size_t i = 0;
    for (std::string v; std::getline(ls, v, ','); ++i) {
      REQUIRE(i < cols.size());
      row[cols[i]] = std::stod(v);
    }
    REQUIRE(i == cols.size());
    rows.push_back(row);
  }
  return rows;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// A deterministic float32 .npy of `shape` with values in [-2, 2).
void write_fixed_input(const std::string& path, const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  std::vector<float> v(n);
  uint32_t s = 12345;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float(s >> 8) / float(1 << 24) * 4.0f - 2.0f;
  }
  convoy::cli::write_npy_atomic(path, shape, v.data());
}

// Copies the first `per_class` images of each class of the Kaggle set into `dst` (same layout).
void copy_subset(const fs::path& src, const fs::path& dst, int per_class) {
  fs::create_directories(dst);
  for (const char* cls : {"sneaker", "bag"})
    for (int i = 0; i < per_class; ++i) {
      const std::string name = std::string(cls) + "." + std::to_string(i) + ".jpg";
      fs::copy_file(src / name, dst / name);
    }
}

}  // namespace

TEST_CASE("finetune --help describes every flag") {
  TempDir t("t3_help");
  const CliResult r = cli(t, "finetune --help");
  convoy::testing::check_ok(r);
  for (const char* flag : {"--out", "--epochs", "--train-last", "--train ", "--classes", "--head-init", "--lr ", "--lr-step",
                           "--lr-plateau", "--momentum", "--weight-decay", "--batch", "--val ", "--val-dir", "--augment",
                           "--seed", "--threads", "--resume", "--checkpoint", "--log", "--plot", "--size", "--mean", "--std",
                           "--scale", "--bgr"})
    CHECK_MESSAGE(r.out.find(flag) != std::string::npos, flag);
}

TEST_CASE("finetune: demo model, Fashion-MNIST sneaker vs bag (Kaggle layout), 3 epochs -> >= 97% val accuracy") {
  const fs::path data = finetune_data() / "fashion_kaggle";
  TempDir t("t3_demo");
  const std::string out = t / "fashion2.onnx", log = t / "metrics.csv", plot = t / "curves.png";
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult r = cli(t, "finetune " + quote(kDemoModel.string()) + " " + quote(data.string()) + " --out " + quote(out) +
                                 " --train-last 1 --classes auto --epochs 3 --threads 2 --log " + quote(log) + " --plot " +
                                 quote(plot));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  convoy::testing::check_ok(r);

  const auto rows = read_csv(log);
  REQUIRE(rows.size() == 3);
  double best = 0;
  for (const auto& row : rows) {
    MESSAGE("epoch " << row.at("epoch") << ": train loss " << row.at("train_loss") << " acc " << row.at("train_acc")
                     << ", val loss " << row.at("val_loss") << " acc " << row.at("val_acc") << ", " << row.at("images_per_s")
                     << " images/s, " << row.at("seconds") << " s");
    best = std::max(best, row.at("val_acc"));
  }
  MESSAGE("finetune wall time: " << seconds << " s (2 threads)");
  INFO("stderr: " << r.err);
  CHECK(best >= 0.97);
  CHECK(rows[0].at("lr") == doctest::Approx(0.01));
  // stdout names the best epoch; it is the one with the highest val accuracy.
  CHECK(r.out.find("best epoch ") == 0);
  CHECK(r.out.find(out) != std::string::npos);

  // Both corrupt files (garbage .jpg, empty .png) are skipped and reported once per epoch.
  CHECK(count_of(r.err, "skipped 2 unreadable files (first: ") == 3);
  CHECK(r.err.find("sneaker.corrupt.jpg") != std::string::npos);
  // One summary line per epoch, and progress lines in between.
  CHECK(count_of(r.err, "/3: train loss ") == 3);
  CHECK(count_of(r.err, "epoch 1/3 [") >= 1);

  // The curves PNG decodes.
  const cv::Mat png = cv::imread(plot, cv::IMREAD_COLOR);
  CHECK(!png.empty());

  // The exported model classifies with the data's class names (sorted: bag, sneaker).
  const fs::path sneaker = data / "train" / "sneaker.999.jpg", bag = data / "train" / "bag.999.jpg";
  const CliResult run = cli(t, "run " + quote(out) + " " + quote(sneaker.string()) + " " + quote(bag.string()) + " --top 1");
  convoy::testing::check_ok(run);
  const size_t s_at = run.out.find("sneaker.999.jpg"), b_at = run.out.find("bag.999.jpg");
  REQUIRE(s_at != std::string::npos);
  REQUIRE(b_at != std::string::npos);
  CHECK(run.out.find("1  sneaker (1)", s_at) < b_at);
  CHECK(run.out.find("1  bag (0)", b_at) != std::string::npos);
}

TEST_CASE("finetune: killed during epoch 2 and resumed = uninterrupted run, bit for bit") {
  const fs::path data = finetune_data() / "fashion_kaggle" / "train";
  TempDir t("t3_resume");
  copy_subset(data, t.path / "data", 500);
  const std::string common = quote(kDemoModel.string()) + " " + quote(t / "data") +
                             " --epochs 3 --augment on --batch 8 --seed 5 --threads 2 --train-last 2 --lr 0.005";

  // Uninterrupted reference run.
  const CliResult a = cli(t, "finetune " + common + " --out " + quote(t / "a.onnx") + " --log " + quote(t / "a.csv"));
  convoy::testing::check_ok(a);

  // The same run in the background, killed once the epoch-1 checkpoint exists and epoch 2 runs.
  const std::string b_out = t / "b.onnx", ckpt = b_out + ".ckpt", err = t / "b_err.txt";
  const std::string cmd = "exec " + convoy::testing::convoy_bin() + " finetune " + common + " --out " + quote(b_out) +
                          " --log " + quote(t / "b.csv") + " >/dev/null 2>" + quote(err);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  bool killed = false;
  int status = 0;
  for (int i = 0; i < 600000; ++i) {  // up to 10 minutes
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (fs::exists(ckpt) && read_file(err).find("epoch 2/3 [") != std::string::npos) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  INFO("stderr of the killed run: " << read_file(err));
  REQUIRE_MESSAGE(killed, "the run ended before epoch 2 could be interrupted");
  CHECK(WIFSIGNALED(status));
  CHECK(read_file(err).find("epoch 3/3") == std::string::npos);

  const CliResult b = cli(t, "finetune " + common + " --out " + quote(b_out) + " --log " + quote(t / "b.csv") + " --resume " +
                                 quote(ckpt));
  convoy::testing::check_ok(b);
  CHECK(b.err.find("resumed from " + ckpt + " after epoch 1") != std::string::npos);
  CHECK(b.err.find("epoch 1/3") == std::string::npos);

  // Same metrics (all but the timing columns) and same outputs on a fixed input.
  const auto ra = read_csv(t / "a.csv"), rb = read_csv(t / "b.csv");
  REQUIRE(ra.size() == 3);
  REQUIRE(rb.size() == 3);
  for (size_t e = 0; e < 3; ++e)
    for (const char* k : {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"}) CHECK(ra[e].at(k) == rb[e].at(k));
  write_fixed_input(t / "in.npy", {4, 1, 28, 28});
  convoy::testing::check_ok(cli(t, "run " + quote(t / "a.onnx") + " --input " + quote(t / "in.npy") + " --output " +
                                       quote(t / "ya.npy")));
  convoy::testing::check_ok(cli(t, "run " + quote(t / "b.onnx") + " --input " + quote(t / "in.npy") + " --output " +
                                       quote(t / "yb.npy")));
  const auto ya = convoy::testing::read_npy_f32(t / "ya.npy"), yb = convoy::testing::read_npy_f32(t / "yb.npy");
  CHECK(ya.shape == std::vector<int64_t>{4, 2});
  CHECK(ya.data == yb.data);
  CHECK(read_file(t / "a.onnx") == read_file(b_out));  // the exported files too, byte for byte
}

TEST_CASE("finetune: resnet18 (random weights) on stripe folders, loss decreases, ONNX Runtime agrees") {
  const fs::path data = finetune_data() / "pets_folders";
  const fs::path model = data_dir("models") / "resnet18_op13.onnx";
  REQUIRE(fs::exists(model));
  TempDir t("t3_resnet");
  const std::string out = t / "pets.onnx", log = t / "m.csv";
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult r = cli(t, "finetune " + quote(model.string()) + " " + quote(data.string()) + " --out " + quote(out) +
                                 " --train-last 2 --classes auto --epochs 2 --augment off --batch 8 --threads 2 --log " +
                                 quote(log));
  MESSAGE("resnet18 finetune wall time: "
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s (2 threads)");
  convoy::testing::check_ok(r);
  const auto rows = read_csv(log);
  REQUIRE(rows.size() == 2);
  MESSAGE("train loss " << rows[0].at("train_loss") << " -> " << rows[1].at("train_loss") << ", val loss "
                        << rows[0].at("val_loss") << " -> " << rows[1].at("val_loss"));
  CHECK(rows[1].at("train_loss") < rows[0].at("train_loss"));

  write_fixed_input(t / "in.npy", {2, 3, 224, 224});
  convoy::testing::check_ok(cli(t, "run " + quote(out) + " --input " + quote(t / "in.npy") + " --output " + quote(t / "convoy.npy")));
  const CliResult o = convoy::testing::run_captured(
      t.path, "node " + quote(kOrtRun.string()) + " " + quote(out) + " " + quote(t / "in.npy") + " " + quote(t / "ort.npy"), 300);
  INFO("ort_run.js stderr: " << o.err << " (is onnxruntime-node installed? tools/setup_ort.sh)");
  REQUIRE(o.exit_code == 0);
  const auto yc = convoy::testing::read_npy_f32(t / "convoy.npy"), yo = convoy::testing::read_npy_f32(t / "ort.npy");
  REQUIRE(yc.shape == std::vector<int64_t>{2, 2});
  REQUIRE(yo.shape == yc.shape);
  double diff = 0, scale = 1;
  for (size_t i = 0; i < yc.data.size(); ++i) {
    diff = std::max(diff, double(std::abs(yc.data[i] - yo.data[i])));
    scale = std::max(scale, double(std::abs(yo.data[i])));
  }
  MESSAGE("ONNX Runtime vs convoy run on the exported resnet18: max |diff| " << diff << " (max |ort| " << scale << ")");
  CHECK(diff <= 1e-4 * scale);
}

TEST_CASE("finetune: bad input is one clear line, exit 1 (2 for usage), and --out stays untouched") {
  const fs::path kaggle = finetune_data() / "fashion_kaggle";
  TempDir t("t3_bad");
  const std::string out = t / "keep.onnx";
  std::ofstream(out) << "precious";
  auto untouched = [&] { CHECK(read_file(out) == "precious"); };
  const std::string demo = quote(kDemoModel.string());
  auto run = [&](const std::string& args) { return cli(t, "finetune " + args, 300); };

  SUBCASE("missing data dir") {
    const std::string missing = t / "no_such_dir";
    convoy::testing::check_error(run(demo + " " + quote(missing) + " --out " + quote(out)), 1, missing + ": no such data directory");
  }
  SUBCASE("one class only") {
    fs::create_directories(t.path / "one" / "cat");
    fs::copy_file(kaggle / "train" / "bag.0.jpg", t.path / "one" / "cat" / "1.jpg");
    convoy::testing::check_error(run(demo + " " + quote(t / "one") + " --out " + quote(out)), 1, "found only 1 class ('cat'");
  }
  SUBCASE("unreadable model") {
    std::ofstream(t / "bad.onnx") << "this is not an onnx model";
    convoy::testing::check_error(run(quote(t / "bad.onnx") + " " + quote(kaggle.string()) + " --out " + quote(out)), 1, "bad.onnx");
  }
  SUBCASE("--val-dir with a class the training data lacks") {
    fs::create_directories(t.path / "val" / "sandal");
    fs::copy_file(kaggle / "train" / "bag.0.jpg", t.path / "val" / "sandal" / "1.jpg");
    convoy::testing::check_error(
        run(demo + " " + quote(kaggle.string()) + " --val-dir " + quote(t / "val") + " --out " + quote(out)), 1,
        "class 'sandal' is not one of the 2 training classes");
  }
  SUBCASE("--resume with a garbage file") {
    std::ofstream(t / "garbage.ckpt") << "garbage, not a checkpoint";
    convoy::testing::check_error(
        run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --resume " + quote(t / "garbage.ckpt")), 1,
        "garbage.ckpt");
  }
  SUBCASE("--classes that the data contradicts") {
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --classes 3 --out " + quote(out)), 1,
                                 "--classes 3 but the data has 2 classes");
  }
  SUBCASE("usage errors exit 2") {
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --bogus"), 2,
                                 "unknown option '--bogus'");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string())), 2, "missing --out");
    convoy::testing::check_error(run(demo + " --out " + quote(out)), 2, "missing DATA_DIR");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --epochs 0"), 2,
                                 "'--epochs'");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --lr abc"), 2,
                                 "'--lr': 'abc' is not a number");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --lr-step 2:x"), 2,
                                 "'--lr-step'");
    convoy::testing::check_error(
        run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --lr-step 2 --lr-plateau 3"), 2, "not both");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --val 0.95"), 2,
                                 "'--val'");
    convoy::testing::check_error(run(demo + " " + quote(kaggle.string()) + " --out " + quote(out) + " --augment maybe"), 2,
                                 "'--augment'");
  }
  untouched();
  CHECK(!fs::exists(out + ".ckpt"));
}

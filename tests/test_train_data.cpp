// The data pipeline of `convoy finetune` (tools/train_data.h): dataset layouts and labels, the
// stratified split, seeded permutations and augmentation draws, the augmentation itself against
// naive loops, skipped files, the prefetcher and the curve plot.
#include "tools/atomic_file.h"
#include "tools/train_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "cli_test_util.h"

namespace {

using namespace convoy::cli;
using convoy::testing::TempDir;
namespace fs = std::filesystem;

void touch(const fs::path& p, const std::string& bytes = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A gray 12x10 PNG whose pixel (y, x) is (y * 10 + x + k) % 256.
void write_png(const fs::path& p, int k) {
  fs::create_directories(p.parent_path());
  cv::Mat m(12, 10, CV_8UC1);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 10; ++x) m.at<uchar>(y, x) = uchar((y * 10 + x + k) % 256);
  REQUIRE(cv::imwrite(p.string(), m));
}

Preprocess gray_pre(int h, int w) {
  Preprocess p;
  p.height = h;
  p.width = w;
  p.channels = 1;
  p.center_crop = false;
  p.scale = 255;
  p.mean = {0.5f};
  p.std = {0.25f};
  return p;
}

std::vector<std::string> names(const Dataset& ds) {
  std::vector<std::string> v;
  for (const Sample& s : ds.samples) v.push_back(fs::path(s.path).filename().string() + ":" + ds.classes[size_t(s.label)]);
  return v;
}

}  // namespace

TEST_CASE("discover: Kaggle layout in the directory, labels from the file-name prefix") {
  TempDir d("t3_kaggle");
  touch(d.path / "dog.2.jpg");
  touch(d.path / "cat.10.JPG");
  touch(d.path / "cat.1.jpeg");
  touch(d.path / "dog.x.y.Png");
  touch(d.path / "bird.1.bmp");
  touch(d.path / "notes.txt");     // not an image
  touch(d.path / "lonely.jpg");    // no "<class>." before "<anything>.<ext>"
  touch(d.path / ".hidden.1.jpg");  // hidden
  const Dataset ds = discover_dataset(d.path.string());
  CHECK(ds.layout == DatasetLayout::kKaggle);
  CHECK(ds.root == d.path.string());
  CHECK(ds.classes == std::vector<std::string>{"bird", "cat", "dog"});
  CHECK(names(ds) == std::vector<std::string>{"bird.1.bmp:bird", "cat.1.jpeg:cat", "cat.10.JPG:cat", "dog.2.jpg:dog",
                                              "dog.x.y.Png:dog"});
}

TEST_CASE("discover: Kaggle layout in DATA_DIR/train") {
  TempDir d("t3_kaggle_train");
  touch(d.path / "train" / "cat.1.jpg");
  touch(d.path / "train" / "dog.1.jpg");
  touch(d.path / "test1" / "1.jpg");  // Kaggle's unlabeled test folder
  const Dataset ds = discover_dataset(d.path.string());
  CHECK(ds.layout == DatasetLayout::kKaggle);
  CHECK(ds.root == (d.path / "train").string());
  CHECK(ds.classes == std::vector<std::string>{"cat", "dog"});
  CHECK(ds.samples.size() == 2);
}

TEST_CASE("discover: one folder per class, images found below it, classes sorted by name") {
  TempDir d("t3_folders");
  touch(d.path / "zebra" / "a.png");
  touch(d.path / "zebra" / "sub" / "b.jpg");
  touch(d.path / "Ant" / "c.jpg");
  touch(d.path / "ant" / "d.jpg");
  touch(d.path / "empty" / "readme.md");  // no image: not a class
  touch(d.path / ".git" / "x.png");       // hidden: not a class
  const Dataset ds = discover_dataset(d.path.string());
  CHECK(ds.layout == DatasetLayout::kFolders);
  CHECK(ds.classes == std::vector<std::string>{"Ant", "ant", "zebra"});  // byte order
  CHECK(names(ds) == std::vector<std::string>{"c.jpg:Ant", "d.jpg:ant", "a.png:zebra", "b.jpg:zebra"});
}

TEST_CASE("discover: errors name the directory and what was looked for") {
  TempDir d("t3_errors");
  auto message = [](const std::string& dir) {
    try {
      discover_dataset(dir);
    } catch (const convoy::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = (d.path / "nope").string();
  CHECK(message(missing) == missing + ": no such data directory");
  const std::string empty = message(d.path.string());
  CHECK(empty.rfind(d.path.string() + ": no class found", 0) == 0);
  CHECK(empty.find("<class>.<anything>.<ext>") != std::string::npos);
  touch(d.path / "cats" / "1.jpg");
  const std::string one = message(d.path.string());
  CHECK(one.find("found only 1 class ('cats', 1 images)") != std::string::npos);
  CHECK(discover_dataset(d.path.string(), 1).classes.size() == 1);  // --val-dir may hold one class
  touch(d.path / "file.txt");
  CHECK(message((d.path / "file.txt").string()) == (d.path / "file.txt").string() + ": not a directory");
}

TEST_CASE("relabel: a validation set maps onto the training classes; unknown classes are errors") {
  TempDir d("t3_relabel");
  touch(d.path / "dog" / "1.jpg");
  touch(d.path / "dog" / "2.jpg");
  Dataset v = discover_dataset(d.path.string(), 1);
  REQUIRE(v.samples[0].label == 0);
  relabel_dataset(v, {"cat", "dog", "eel"});
  CHECK(v.classes == std::vector<std::string>{"cat", "dog", "eel"});
  CHECK(v.samples[0].label == 1);
  CHECK(v.samples[1].label == 1);
  touch(d.path / "fox" / "1.jpg");
  Dataset w = discover_dataset(d.path.string(), 1);
  CHECK_THROWS_WITH_AS(relabel_dataset(w, {"cat", "dog"}), (d.path.string() + ": class 'fox' is not one of the 2 training classes").c_str(),
                       convoy::Error);
}

TEST_CASE("stratified split: per-class sizes, disjoint, seeded") {
  std::vector<Sample> samples;
  for (int i = 0; i < 100; ++i) samples.push_back({"a" + std::to_string(1000 + i), 0});
  for (int i = 0; i < 30; ++i) samples.push_back({"b" + std::to_string(1000 + i), 1});
  for (int i = 0; i < 2; ++i) samples.push_back({"c" + std::to_string(1000 + i), 2});
  samples.push_back({"d1000", 3});
  const Split s = stratified_split(samples, 4, 0.1, 7);
  std::map<int, size_t> val_per_class;
  for (const Sample& x : s.val) ++val_per_class[x.label];
  CHECK(val_per_class[0] == 10);
  CHECK(val_per_class[1] == 3);
  CHECK(val_per_class[2] == 1);  // at least one of a class with 2+ images
  CHECK(val_per_class[3] == 0);  // a single image stays for training
  CHECK(s.train.size() + s.val.size() == samples.size());
  std::set<std::string> all;
  for (const Sample& x : s.train) all.insert(x.path);
  for (const Sample& x : s.val) all.insert(x.path);
  CHECK(all.size() == samples.size());
  // Both lists keep the input order.
  CHECK(std::is_sorted(s.val.begin(), s.val.end(), [](const Sample& a, const Sample& b) { return a.path < b.path; }));

  const Split again = stratified_split(samples, 4, 0.1, 7);
  const Split other = stratified_split(samples, 4, 0.1, 8);
  auto paths = [](const std::vector<Sample>& v) {
    std::vector<std::string> p;
    for (const Sample& x : v) p.push_back(x.path);
    return p;
  };
  CHECK(paths(again.val) == paths(s.val));
  CHECK(paths(other.val) != paths(s.val));
  CHECK(stratified_split(samples, 4, 0.0, 7).val.empty());
}

TEST_CASE("splitmix64 matches the reference sequence") {
  // Reference values of Vigna's splitmix64.c for seed 1234567.
  uint64_t s = 1234567;
  CHECK(splitmix64(s) == 6457827717110365317ull);
  CHECK(splitmix64(s) == 3203168211198807973ull);
  CHECK(splitmix64(s) == 9817491932198370423ull);
}

TEST_CASE("epoch permutation: a permutation, a pure function of (seed, epoch)") {
  const auto p = epoch_permutation(1000, 5, 1);
  std::vector<size_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<size_t> iota(1000);
  std::iota(iota.begin(), iota.end(), size_t(0));
  CHECK(sorted == iota);
  CHECK(p != iota);
  CHECK(epoch_permutation(1000, 5, 1) == p);
  CHECK(epoch_permutation(1000, 5, 2) != p);
  CHECK(epoch_permutation(1000, 6, 1) != p);
  CHECK(epoch_permutation(0, 5, 1).empty());
  CHECK(epoch_permutation(1, 5, 1) == std::vector<size_t>{0});
}

TEST_CASE("augmentation draws: pure function of (seed, epoch, sample), within the documented ranges") {
  const AugmentOptions o;
  size_t flips = 0;
  for (uint64_t id = 0; id < 4000; ++id) {
    const AugmentDraw d = draw_augment(o, 3, 2, id);
    const AugmentDraw e = draw_augment(o, 3, 2, id);
    CHECK(d.flip == e.flip);
    CHECK(d.angle_deg == e.angle_deg);
    CHECK(d.scale == e.scale);
    CHECK(d.shift_x == e.shift_x);
    CHECK(d.shift_y == e.shift_y);
    CHECK(d.noise_state == e.noise_state);
    CHECK(std::abs(d.angle_deg) <= 10);
    CHECK(d.scale >= 0.9);
    CHECK(d.scale <= 1.1);
    CHECK(std::abs(d.shift_x) <= 0.08);
    CHECK(std::abs(d.shift_y) <= 0.08);
    flips += d.flip;
  }
  CHECK(flips > 1800);  // p = 0.5: 2000 +- 4.5 sigma
  CHECK(flips < 2200);
  CHECK(draw_augment(o, 3, 2, 0).angle_deg != draw_augment(o, 3, 3, 0).angle_deg);
  CHECK(draw_augment(o, 3, 2, 0).angle_deg != draw_augment(o, 4, 2, 0).angle_deg);
  CHECK(draw_augment(o, 3, 2, 0).angle_deg != draw_augment(o, 3, 2, 1).angle_deg);
}

TEST_CASE("apply_augment against naive loops: identity, flip, integer shift, noise statistics") {
  const Preprocess p = gray_pre(9, 11);
  std::vector<float> img(99);
  for (size_t i = 0; i < img.size(); ++i) img[i] = float((i * 37) % 23) / 7.0f - 1.0f;
  AugmentOptions no_noise;
  no_noise.noise_sigma = 0;

  AugmentDraw id;  // no flip, no rotation, scale 1, no shift
  std::vector<float> a = img;
  apply_augment(id, no_noise, p, a.data());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(img[i]).epsilon(1e-6));

  AugmentDraw flip;
  flip.flip = true;
  a = img;
  apply_augment(flip, no_noise, p, a.data());
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 11; ++x) CHECK(a[size_t(y * 11 + x)] == doctest::Approx(img[size_t(y * 11 + (10 - x))]).epsilon(1e-5));

  // Shift by +2 px right and -1 px down (fractions of the size): dst(y, x) = src(y + 1, x - 2),
  // reflected (BORDER_REFLECT_101) outside.
  AugmentDraw shift;
  shift.shift_x = 2.0 / 11;
  shift.shift_y = -1.0 / 9;
  a = img;
  apply_augment(shift, no_noise, p, a.data());
  auto reflect = [](int v, int n) { return v < 0 ? -v : v >= n ? 2 * (n - 1) - v : v; };
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 11; ++x)
      CHECK(a[size_t(y * 11 + x)] == doctest::Approx(img[size_t(reflect(y + 1, 9) * 11 + reflect(x - 2, 11))]).epsilon(1e-4));

  // Noise only: mean ~0, sigma = 0.02 / std in normalised units (std 0.25 -> 0.08).
  const Preprocess big = gray_pre(100, 100);
  std::vector<float> z(10000, 0.0f);
  apply_augment(id, AugmentOptions{}, big, z.data());
  double sum = 0, sq = 0;
  for (float v : z) sum += v, sq += double(v) * v;
  const double mean = sum / 1e4, sd = std::sqrt(sq / 1e4 - mean * mean);
  CHECK(std::abs(mean) < 0.004);  // 5 sigma of the mean
  CHECK(sd == doctest::Approx(0.08).epsilon(0.03));
}

TEST_CASE("load_batch: a file that fails is skipped and counted; other samples keep their draws") {
  TempDir d("t3_batch");
  write_png(d.path / "a" / "0.png", 0);
  touch(d.path / "a" / "1.png", "garbage, not a PNG");
  write_png(d.path / "b" / "2.png", 50);
  write_png(d.path / "b" / "3.png", 99);
  const Dataset ds = discover_dataset(d.path.string());
  REQUIRE(ds.samples.size() == 4);
  const Preprocess p = gray_pre(12, 10);
  const AugmentOptions aug;
  const std::vector<size_t> order = {3, 1, 0, 2};

  BatchRequest r{&ds.samples, &order, 0, 4, true, 11, 4};
  const Batch b = load_batch(r, p, aug);
  CHECK(b.count == 3);
  CHECK(b.skipped == 1);
  CHECK(b.first_failure.find((d.path / "a" / "1.png").string() + ": cannot decode image") == 0);
  CHECK(b.labels == std::vector<int32_t>{1, 0, 1});
  REQUIRE(b.images.size() == 3 * 120);

  // Each decoded image equals its own load + augmentation with draw (seed 11, epoch 4, id).
  const size_t ids[] = {3, 0, 2};
  for (size_t k = 0; k < 3; ++k) {
    std::vector<float> want(120);
    load_image(ds.samples[ids[k]].path, p, want.data());
    apply_augment(draw_augment(aug, 11, 4, ids[k]), aug, p, want.data());
    CHECK(std::equal(want.begin(), want.end(), b.images.begin() + std::ptrdiff_t(k * 120)));
  }
  // Without augmentation: plain preprocessing, (px / 255 - 0.5) / 0.25 from the PNG's pixels.
  BatchRequest plain{&ds.samples, nullptr, 3, 4, false, 11, 4};
  const Batch c = load_batch(plain, p, aug);
  REQUIRE(c.count == 1);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 10; ++x)
      CHECK(c.images[size_t(y * 10 + x)] == doctest::Approx((float((y * 10 + x + 99) % 256) / 255.f - 0.5f) / 0.25f));

  // The prefetcher gives the same batches.
  BatchPrefetcher pf(p, aug);
  pf.prefetch(r);
  const Batch e = pf.next(r);
  CHECK(e.images == b.images);
  CHECK(e.skipped == 1);
  const Batch f = pf.next(plain);  // nothing prefetched: loads now
  CHECK(f.images == c.images);
}

TEST_CASE("plot_curves_png: a decodable 1000x400 PNG, NaN points left out") {
  std::vector<CurvePoint> pts = {{1, 0.7, 0.6, 0.65, 0.7}, {2, 0.4, 0.8, 0.45, 0.85}, {3, 0.3, 0.9, NAN, NAN}};
  const std::string png = plot_curves_png(pts);
  const cv::Mat m = cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
  REQUIRE(!m.empty());
  CHECK(m.cols == 1000);
  CHECK(m.rows == 400);
  // Something is drawn in both panels (not a blank canvas).
  CHECK(cv::countNonZero(m.colRange(0, 500).reshape(1) != 255) > 1000);
  CHECK(cv::countNonZero(m.colRange(500, 1000).reshape(1) != 255) > 1000);
}

TEST_CASE("write_file_atomic replaces the file and leaves no temporary behind") {
  TempDir d("t3_atomic");
  const std::string p = d / "x.txt";
  write_file_atomic(p, "one");
  write_file_atomic(p, "two");
  CHECK(convoy::testing::read_file(p) == "two");
  CHECK(std::distance(fs::directory_iterator(d.path), fs::directory_iterator()) == 1);
  CHECK_THROWS_AS(write_file_atomic((d.path / "no" / "x").string(), "z"), convoy::Error);
}

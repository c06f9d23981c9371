// The demo model (models/demo/fashion_cnn.onnx, models/train_demo.py) classifies the 10000
// Fashion-MNIST test images through convoy with >= 90% accuracy, preprocessing the pixels the
// way its convoy.* metadata says.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kDataDir = "/usr/share/datasets/fashion-mnist";

std::vector<uint8_t> read_gzip(const fs::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  REQUIRE_MESSAGE(f != nullptr, "cannot open ", path.string(), " (Debian package dataset-fashion-mnist)");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  const bool ok = n == 0;
  gzclose(f);
  REQUIRE_MESSAGE(ok, "error decompressing ", path.string());
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | uint32_t{b[at + 3]};
}

float metadata_float(const convoy::Model& model, const std::string& key) {
  const auto it = model.metadata().find(key);
  REQUIRE_MESSAGE(it != model.metadata().end(), "demo model lacks metadata ", key);
  return std::stof(it->second);  // one channel: a single value
}

}  // namespace

TEST_CASE("demo model reaches 90% on the Fashion-MNIST test set") {
  // IDX: images have magic 0x803, count, rows, cols then pixels at 16; labels 0x801, count at 8.
  const std::vector<uint8_t> images = read_gzip(kDataDir / "t10k-images-idx3-ubyte.gz");
  const std::vector<uint8_t> labels = read_gzip(kDataDir / "t10k-labels-idx1-ubyte.gz");
  REQUIRE(images.size() >= 16);
  REQUIRE(labels.size() >= 8);
  REQUIRE(be32(images, 0) == 0x803);
  REQUIRE(be32(labels, 0) == 0x801);
  const size_t count = be32(images, 4), rows = be32(images, 8), cols = be32(images, 12);
  REQUIRE(count == 10000);
  REQUIRE(be32(labels, 4) == count);
  REQUIRE(rows == 28);
  REQUIRE(cols == 28);
  REQUIRE(images.size() == 16 + count * rows * cols);
  REQUIRE(labels.size() == 8 + count);

  auto model = convoy::Model::load(CONVOY_SOURCE_DIR "/models/demo/fashion_cnn.onnx");
  const convoy::Model& m = *model;
  CHECK(m.metadata().at("convoy.channels") == "1");
  CHECK(m.metadata().at("convoy.input_size") == "28x28");
  const float scale = metadata_float(m, "convoy.scale");
  const float mean = metadata_float(m, "convoy.mean");
  const float std_dev = metadata_float(m, "convoy.std");

  convoy::Session session(model);
  constexpr size_t kBatch = 100;
  const size_t pixels = rows * cols;
  size_t correct = 0;
  for (size_t start = 0; start < count; start += kBatch) {
    convoy::Tensor x({static_cast<int64_t>(kBatch), 1, static_cast<int64_t>(rows), static_cast<int64_t>(cols)});
    const uint8_t* src = images.data() + 16 + start * pixels;
    for (size_t i = 0; i < kBatch * pixels; ++i) x.data()[i] = (static_cast<float>(src[i]) / scale - mean) / std_dev;
    const std::vector<convoy::Tensor> y = session.run({x});
    REQUIRE(y.size() == 1);
    REQUIRE(y[0].shape() == std::vector<int64_t>{static_cast<int64_t>(kBatch), 10});
    for (size_t r = 0; r < kBatch; ++r) {
      const float* row = y[0].data() + r * 10;
      const auto best = static_cast<size_t>(std::max_element(row, row + 10) - row);
      correct += best == labels[8 + start + r];
    }
  }
  const double accuracy = static_cast<double>(correct) / static_cast<double>(count);
  std::printf("demo model accuracy through convoy: %.4f (%zu/%zu)\n", accuracy, correct, count);
  CHECK(accuracy >= 0.90);
}

// Test helpers for generated data: the cache directory ($CONVOY_TEST_DATA) and a reader for
// the float32 C-order .npy files tests/gen/ writes (numpy format versions 1-3).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace convoy::testing {

// $CONVOY_TEST_DATA, or "" when unset. Tests REQUIRE the directory to exist: missing data is a
// failure ("run tools/test.sh"), never a silent pass.
inline std::filesystem::path test_data_dir() {
  const char* env = std::getenv("CONVOY_TEST_DATA");
  return env ? std::filesystem::path(env) : std::filesystem::path();
}

inline const std::string kMissingDataHint =
    "generated test data not found: set CONVOY_TEST_DATA or run tools/test.sh "
    "(it runs tests/gen/generate_all.sh to fill ~/.cache/convoy-testdata)";

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

inline std::vector<char> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path.string() + ": cannot open");
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Reads a little-endian float32 ("<f4"), C-order .npy file; throws std::runtime_error on
// anything else.
inline NpyArray read_npy_f32(const std::filesystem::path& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  auto fail = [&](const std::string& why) -> void { throw std::runtime_error(path.string() + ": " + why); };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) fail("not a .npy file");
  const auto major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail("truncated header");
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
    header_start = 12;
  } else {
    fail("unsupported .npy version " + std::to_string(major));
  }
  if (header_start + header_len > bytes.size()) fail("truncated header");
  const std::string header(bytes.data() + header_start, header_len);

  // The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }
  auto value_of = [&](const std::string& key) {
    const size_t k = header.find("'" + key + "'");
    if (k == std::string::npos) fail("header has no '" + key + "'");
    const size_t colon = header.find(':', k);
    if (colon == std::string::npos) fail("malformed header");
    return colon + 1;
  };
  const size_t d = header.find('\'', value_of("descr"));
  if (d == std::string::npos || header.compare(d, 5, "'<f4'") != 0) fail("dtype is not little-endian float32");
  if (header.compare(header.find_first_not_of(' ', value_of("fortran_order")), 5, "False") != 0)
    fail("Fortran-order arrays are not supported");
  const size_t open = header.find('(', value_of("shape"));
  const size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) fail("malformed shape");

  NpyArray a;
  size_t count = 1;
  for (size_t i = open + 1; i < close;) {
    const size_t j = header.find_first_of("0123456789", i);
    if (j == std::string::npos || j >= close) break;
    size_t end = j;
    while (end < close && header[end] >= '0' && header[end] <= '9') ++end;
    const int64_t dim = std::stoll(header.substr(j, end - j));
    a.shape.push_back(dim);
    count *= static_cast<size_t>(dim);
    i = end;
  }
  const size_t data_start = header_start + header_len;
  if (bytes.size() - data_start != count * sizeof(float)) fail("data size does not match the shape");
  a.data.resize(count);
  std::memcpy(a.data.data(), bytes.data() + data_start, count * sizeof(float));
  return a;
}

}  // namespace convoy::testing

// NumPy .npy files holding float32 arrays in C order (format versions 1.0, 2.0, 3.0).
//
// Reading is strict: anything but little-endian float32 in C order, a header that does not parse,
// or a data section shorter or longer than the shape says is an NpyError naming the file.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace convoy::cli {

class NpyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NpyArray {
  std::vector<int64_t> shape;  // empty for a 0-d array (one element)
  std::vector<float> data;     // C order
};

// `name` only labels error messages ("<name>: ...").
NpyArray parse_npy(std::string_view bytes, const std::string& name);
NpyArray read_npy(const std::string& path);

std::string encode_npy(const std::vector<int64_t>& shape, const float* data);
// Writes a temporary file next to `path`, then renames it over `path`: readers never see a
// partial file, and on failure nothing is left behind.
void write_npy_atomic(const std::string& path, const std::vector<int64_t>& shape, const float* data);

// "[2,3,28,28]"; -1 prints as "?".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace convoy::cli

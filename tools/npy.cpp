#include "tools/npy.h"

#include "convoy/convoy.hpp"
#include "tools/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace convoy::cli {
namespace {

static_assert(std::endian::native == std::endian::little, "the .npy code assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kMaxHeaderBytes = 1 << 20;  // numpy itself refuses headers over 10 kB by default

// A just-big-enough parser for the header: a Python dict literal with string keys whose values
// are strings, True/False, or tuples of non-negative integers, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    bool has_descr = false, has_fortran = false, has_shape = false;
  };

  Header parse() {
    Header h;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        h.descr = parse_string();
        h.has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        h.has_fortran = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        h.has_shape = true;
      } else {
        fail("unexpected header key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("trailing characters after the header dict");
    if (!h.has_descr || !h.has_fortran || !h.has_shape) fail("header lacks 'descr', 'fortran_order' or 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw NpyError(name_ + ": malformed .npy header (" + what + " at offset " + std::to_string(pos_) + ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    skip_space();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  int64_t parse_dim() {
    skip_space();
    if (peek() < '0' || peek() > '9') fail("expected a non-negative integer dimension");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      int digit = peek() - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) fail("dimension overflows int64");
      v = v * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;  // Python 2 longs
    return v;
  }
  std::vector<int64_t> parse_tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      dims.push_back(parse_dim());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view s_;
  const std::string& name_;
  size_t pos_ = 0;
};

uint32_t read_le(std::string_view bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint32_t(uint8_t(bytes[offset + i])) << (8 * i);
  return v;
}

std::string describe_dtype(const std::string& descr) {
  if (descr == "<f8") return "'<f8' (float64)";
  if (descr == ">f4") return "'>f4' (big-endian float32)";
  if (descr == "<f2") return "'<f2' (float16)";
  if (descr == "<i8") return "'<i8' (int64)";
  if (descr == "<i4") return "'<i4' (int32)";
  if (descr == "|u1") return "'|u1' (uint8)";
  return "'" + descr + "'";
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return out + "]";
}

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic)
    throw NpyError(name + ": not a .npy file (missing the \\x93NUMPY magic)");
  const int major = uint8_t(bytes[6]);
  if (major < 1 || major > 3)
    throw NpyError(name + ": unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(uint8_t(bytes[7])));
  // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4.
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) throw NpyError(name + ": truncated .npy header");
  const size_t header_len = read_le(bytes, 8, len_bytes);
  const size_t data_offset = 8 + len_bytes + header_len;
  if (header_len > kMaxHeaderBytes) throw NpyError(name + ": .npy header length " + std::to_string(header_len) + " is implausible");
  if (data_offset > bytes.size())
    throw NpyError(name + ": truncated .npy header (" + std::to_string(header_len) + " header bytes announced, " +
                   std::to_string(bytes.size() - 8 - len_bytes) + " present)");

  auto h = HeaderParser(bytes.substr(8 + len_bytes, header_len), name).parse();
  if (h.descr != "<f4" && h.descr != "|f4")  // '|f4' never comes from numpy, but is unambiguous
    throw NpyError(name + ": dtype " + describe_dtype(h.descr) + " is not supported; convoy needs float32 ('<f4')");
  if (h.fortran_order)
    throw NpyError(name + ": Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)");

  // Element count, refusing overflow before comparing with the bytes actually present.
  uint64_t count = 1;
  for (int64_t d : h.shape) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / 4 / uint64_t(d))
      throw NpyError(name + ": shape " + shape_string(h.shape) + " overflows");
    count *= uint64_t(d);
  }
  const uint64_t want = count * 4, have = bytes.size() - data_offset;
  if (have != want)
    throw NpyError(name + ": " + (have < want ? "truncated" : "trailing bytes in") + " .npy data: shape " +
                   shape_string(h.shape) + " needs " + std::to_string(want) + " bytes, file has " + std::to_string(have));

  NpyArray out;
  out.shape = std::move(h.shape);
  out.data.resize(count);
  if (count) std::memcpy(out.data.data(), bytes.data() + data_offset, want);
  return out;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NpyError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw NpyError(path + ": read error");
  return parse_npy(ss.view(), path);
}

std::string encode_npy(const std::vector<int64_t>& shape, const float* data) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) throw NpyError("cannot write a .npy with negative dimension in shape " + shape_string(shape));
    dict += (i ? ", " : "") + std::to_string(shape[i]);
    count *= uint64_t(shape[i]);
  }
  dict += shape.size() == 1 ? ",), }" : "), }";
  // Pad with spaces so that the data starts on a 64-byte boundary; the header ends with '\n'.
  size_t len_bytes = 2;
  int major = 1;
  if (10 + dict.size() + 1 > 65535) len_bytes = 4, major = 2;
  const size_t preamble = 8 + len_bytes;
  const size_t total = (preamble + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict += '\n';

  std::string out(kMagic);
  out += char(major);
  out += char(0);
  for (size_t i = 0; i < len_bytes; ++i) out += char((dict.size() >> (8 * i)) & 0xff);
  out += dict;
  out.append(reinterpret_cast<const char*>(data), count * 4);
  return out;
}

void write_npy_atomic(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  try {
    write_file_atomic(path, encode_npy(shape, data));
  } catch (const convoy::Error& e) {
    throw NpyError(e.what());
  }
}

}  // namespace convoy::cli

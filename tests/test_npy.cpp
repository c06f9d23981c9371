// tools/npy: .npy float32 reading and writing, checked against files numpy itself writes and
// reads, and against hand-built malformed files.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tools/npy.h"

namespace fs = std::filesystem;
using convoy::cli::NpyArray;
using convoy::cli::NpyError;

namespace {

const char* const kPython = "/usr/bin/python3";

// A fresh directory under the system temp dir, removed with the fixture.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "convoy_test_npy_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

// A .npy built by hand: magic, version, little-endian header length, the header text as given
// (padded with spaces and '\n' to a multiple of 64 bytes unless `pad` is false), then `data`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1, bool pad = true) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  if (pad) {
    const size_t total = (6 + 2 + len_bytes + header.size() + 1 + 63) / 64 * 64;
    header.append(total - (6 + 2 + len_bytes) - header.size() - 1, ' ');
    header += '\n';
  }
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  for (size_t i = 0; i < len_bytes; ++i) out += char((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string float_bytes(std::initializer_list<float> v) {
  std::string out;
  for (float f : v) out.append(reinterpret_cast<const char*>(&f), 4);
  return out;
}

std::string error_of(const std::string& bytes) {
  try {
    convoy::cli::parse_npy(bytes, "x.npy");
  } catch (const NpyError& e) {
    return e.what();
  }
  return "(no error)";
}

int python(const std::string& code) {
  const std::string cmd = std::string(kPython) + " -c \"" + code + "\"";
  return std::system(cmd.c_str());
}

}  // namespace

TEST_CASE("npy: reads what numpy writes (v1, v2, 0-d, empty, 4-d)") {
  TempDir dir;
  const std::string d = dir.path.string();
  REQUIRE(python("import numpy as np; from numpy.lib import format as f; d='" + d +
                 "'; "
                 "np.save(d+'/a.npy', (np.arange(6, dtype=np.float32) - 2.5).reshape(2, 3)); "
                 "np.save(d+'/s.npy', np.float32(3.5)); "
                 "np.save(d+'/e.npy', np.zeros((0, 3), np.float32)); "
                 "np.save(d+'/b.npy', np.arange(2*3*5*7, dtype=np.float32).reshape(2, 3, 5, 7) * 0.25); "
                 "f.write_array(open(d+'/v2.npy', 'wb'), np.arange(3, dtype=np.float32), version=(2, 0))") == 0);

  NpyArray a = convoy::cli::read_npy(d + "/a.npy");
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(a.data == std::vector<float>{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f});

  NpyArray s = convoy::cli::read_npy(d + "/s.npy");
  CHECK(s.shape.empty());
  CHECK(s.data == std::vector<float>{3.5f});

  NpyArray e = convoy::cli::read_npy(d + "/e.npy");
  CHECK(e.shape == std::vector<int64_t>{0, 3});
  CHECK(e.data.empty());

  NpyArray b = convoy::cli::read_npy(d + "/b.npy");
  CHECK(b.shape == std::vector<int64_t>{2, 3, 5, 7});
  REQUIRE(b.data.size() == 210);
  for (size_t i = 0; i < b.data.size(); ++i) CHECK(b.data[i] == float(i) * 0.25f);

  NpyArray v2 = convoy::cli::read_npy(d + "/v2.npy");
  CHECK(v2.shape == std::vector<int64_t>{3});
  CHECK(v2.data == std::vector<float>{0, 1, 2});
}

TEST_CASE("npy: numpy reads what we write; round trips") {
  TempDir dir;
  const std::string d = dir.path.string();
  std::vector<float> v(2 * 3 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) - 7.25f;
  convoy::cli::write_npy_atomic(d + "/w.npy", {2, 3, 4}, v.data());
  const float one = 1.5f;
  convoy::cli::write_npy_atomic(d + "/w1.npy", {1}, &one);
  convoy::cli::write_npy_atomic(d + "/w0.npy", {}, &one);
  CHECK(python("import numpy as np; d='" + d +
               "'; a = np.load(d+'/w.npy'); "
               "assert a.dtype == np.float32 and a.shape == (2, 3, 4) and a.flags.c_contiguous, a; "
               "assert (a.ravel() == np.arange(24, dtype=np.float32) - 7.25).all(); "
               "b = np.load(d+'/w1.npy'); assert b.shape == (1,) and b[0] == 1.5; "
               "c = np.load(d+'/w0.npy'); assert c.shape == () and c == 1.5") == 0);

  // No temporary file is left next to the output.
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    ++files;
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(files == 3);

  NpyArray back = convoy::cli::read_npy(d + "/w.npy");
  CHECK(back.shape == std::vector<int64_t>{2, 3, 4});
  CHECK(back.data == v);

  // Data starts on a 64-byte boundary, as numpy writes it.
  const std::string bytes = convoy::cli::encode_npy({2, 3, 4}, v.data());
  CHECK((bytes.size() - v.size() * 4) % 64 == 0);
  CHECK(bytes[bytes.size() - v.size() * 4 - 1] == '\n');
}

TEST_CASE("npy: atomic write replaces, and failure leaves nothing") {
  TempDir dir;
  const std::string path = (dir.path / "out.npy").string();
  const float a[2] = {1, 2}, b[3] = {3, 4, 5};
  convoy::cli::write_npy_atomic(path, {2}, a);
  convoy::cli::write_npy_atomic(path, {3}, b);
  CHECK(convoy::cli::read_npy(path).data == std::vector<float>{3, 4, 5});

  const std::string missing_dir = (dir.path / "no_such_dir" / "out.npy").string();
  CHECK_THROWS_AS(convoy::cli::write_npy_atomic(missing_dir, {2}, a), NpyError);
  CHECK_FALSE(fs::exists(missing_dir));
}

TEST_CASE("npy: header variations numpy may produce") {
  const std::string data = float_bytes({1, 2});
  // Key order, double quotes, no trailing comma, no padding.
  NpyArray a = convoy::cli::parse_npy(npy_bytes("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}", data), "x");
  CHECK(a.shape == std::vector<int64_t>{2});
  CHECK(a.data == std::vector<float>{1, 2});
  a = convoy::cli::parse_npy(npy_bytes("{'descr':'<f4','fortran_order':False,'shape':(1,2)}", data, 1, false), "x");
  CHECK(a.shape == std::vector<int64_t>{1, 2});
  a = convoy::cli::parse_npy(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data, 3), "x");
  CHECK(a.data == std::vector<float>{1, 2});
}

TEST_CASE("npy: malformed headers are errors naming the file") {
  const std::string data = float_bytes({1, 2});
  struct Case {
    std::string bytes, expect;
  };
  const Case cases[] = {
      {"", "not a .npy file"},
      {"PK\x03\x04 this is a zip", "not a .npy file"},
      {std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' '), "unsupported .npy format version 9"},
      {std::string("\x93NUMPY\x01\x00\x40\x00{'descr'", 17), "truncated .npy header"},
      {std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f{}", 14), "implausible"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False}", data), "lacks"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", data), "unexpected header key 'extra'"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", data), "expected True or False"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", data), "non-negative integer"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2}", data), "expected ',' or ')'"},
      {npy_bytes("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", data), "malformed .npy header"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", data), "overflows int64"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904)}", data),
       "overflows"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", data), "trailing characters"},
  };
  for (const Case& c : cases) {
    const std::string err = error_of(c.bytes);
    INFO("error: " << err);
    CHECK(err.rfind("x.npy: ", 0) == 0);
    CHECK(err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("npy: truncated or oversized data") {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string six = float_bytes({1, 2, 3, 4, 5, 6});
  CHECK(convoy::cli::parse_npy(npy_bytes(dict, six), "x.npy").data.size() == 6);
  std::string err = error_of(npy_bytes(dict, six.substr(0, 23)));
  CHECK(err.find("truncated .npy data") != std::string::npos);
  CHECK(err.find("[2,3] needs 24 bytes, file has 23") != std::string::npos);
  err = error_of(npy_bytes(dict, ""));
  CHECK(err.find("truncated .npy data") != std::string::npos);
  err = error_of(npy_bytes(dict, six + "xx"));
  CHECK(err.find("trailing bytes") != std::string::npos);

  TempDir dir;
  CHECK_THROWS_WITH_AS(convoy::cli::read_npy((dir.path / "absent.npy").string()),
                       doctest::Contains("absent.npy: cannot open (No such file or directory)"), NpyError);
}

TEST_CASE("npy: Fortran order and other dtypes are refused") {
  const std::string data = float_bytes({1, 2, 3, 4, 5, 6});
  std::string err = error_of(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data));
  CHECK(err.find("Fortran-order") != std::string::npos);
  err = error_of(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", data));
  CHECK(err.find("dtype '<f8' (float64) is not supported") != std::string::npos);
  err = error_of(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", data));
  CHECK(err.find("big-endian") != std::string::npos);
  err = error_of(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", data));
  CHECK(err.find("int32") != std::string::npos);

  // The same through files numpy writes.
  TempDir dir;
  const std::string d = dir.path.string();
  REQUIRE(python("import numpy as np; d='" + d +
                 "'; np.save(d+'/f.npy', np.asfortranarray(np.ones((2, 3), np.float32))); "
                 "np.save(d+'/d.npy', np.ones((2, 3)))") == 0);
  CHECK_THROWS_WITH_AS(convoy::cli::read_npy(d + "/f.npy"), doctest::Contains("Fortran-order"), NpyError);
  CHECK_THROWS_WITH_AS(convoy::cli::read_npy(d + "/d.npy"), doctest::Contains("float64"), NpyError);
}

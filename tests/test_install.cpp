// `cmake --install` into a temporary prefix, then the out-of-tree examples (examples/) built
// against it with find_package(convoy) and with pkg-config; each must print exactly what
// `convoy run MODEL --input X.npy` prints, and the top class must be the naive reference's.
// The installed package must not mention OpenCV (only the library's own dependencies).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "embed_test_model.h"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "convoy_test_install_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Shell-quoted (our temp paths hold no quotes); appends, as operator+ trips GCC 12's -Wrestrict.
std::string q(const fs::path& p) {
  std::string r(1, '\'');
  r.append(p.string()).push_back('\'');
  return r;
}

// Runs `cmd` through the shell with stdout to `out`, stderr to `out`.err; returns the exit code.
int sh(const std::string& cmd, const fs::path& out) {
  const std::string full = "(" + cmd + ") >" + q(out) + " 2>" + q(out.string() + ".err");
  const int status = std::system(full.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code != 0) MESSAGE("command failed (" << code << "): " << cmd << "\n" << read_file(out) << read_file(out.string() + ".err"));
  return code;
}

void write_npy(const fs::path& p, const std::vector<int64_t>& shape, const std::vector<float>& data) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(p, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char lenb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  f.write(lenb, 2);
  f << header;
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
}

}  // namespace

TEST_CASE("install: examples build with find_package and pkg-config and print what convoy run prints") {
  const char* bin = std::getenv("CONVOY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "CONVOY_BIN must name the built convoy CLI");
  TempDir tmp;
  const fs::path prefix = tmp.path / "prefix", log = tmp.path / "log.txt";

  // The model and input: batch 2 of the small CNN, labels in its metadata.
  convoy::testing::SmallCnn cnn(21);
  { std::ofstream(tmp.path / "model.onnx", std::ios::binary) << cnn.onnx_bytes(); }
  const std::vector<float> x = convoy::testing::small_cnn_input(2, 77);
  write_npy(tmp.path / "x.npy", {2, 3, 12, 12}, x);
  const fs::path model = tmp.path / "model.onnx", input = tmp.path / "x.npy";

  REQUIRE(sh("cmake --install " + q(CONVOY_BINARY_DIR) + " --prefix " + q(prefix), log) == 0);
  CHECK(fs::exists(prefix / "include/convoy/convoy.h"));
  CHECK(fs::exists(prefix / "include/convoy/convoy.hpp"));
  const fs::path libdir = fs::exists(prefix / "lib/pkgconfig/convoy.pc") ? prefix / "lib" : prefix / "lib64";
  REQUIRE(fs::exists(libdir / "pkgconfig/convoy.pc"));
  CHECK(fs::exists(libdir / "libconvoy.a"));
  CHECK(fs::exists(libdir / "libconvoy.so"));
  for (const auto& e : fs::recursive_directory_iterator(libdir)) {
    if (!e.is_regular_file() || (e.path().extension() != ".cmake" && e.path().extension() != ".pc")) continue;
    std::string text = read_file(e.path());
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK_MESSAGE(text.find("opencv") == std::string::npos, e.path().string() << " mentions OpenCV");
  }

  // What the CLI prints: the reference output of every example.
  const fs::path expect_file = tmp.path / "expect.txt";
  REQUIRE(sh(q(bin) + " run " + q(model) + " --input " + q(input), expect_file) == 0);
  const std::string expect = read_file(expect_file);
  REQUIRE(expect.find(input.string() + " row 1") != std::string::npos);
  // ... whose top classes are the naive reference's.
  const std::vector<double> ref = cnn.reference(x, 2);
  for (int r = 0; r < 2; ++r) {
    const auto* row = ref.data() + r * 10;
    const size_t top = static_cast<size_t>(std::max_element(row, row + 10) - row);
    const std::string line = "  1  c" + std::to_string(top) + " (" + std::to_string(top) + ")";
    CHECK_MESSAGE(expect.find(line) != std::string::npos, expect);
  }

  // find_package(convoy): C (shared), C++ (shared) and C++ (static).
  const fs::path build = tmp.path / "build-cmake";
  REQUIRE(sh("cmake -S " + q(fs::path(CONVOY_SOURCE_DIR) / "examples") + " -B " + q(build) +
                 " -DCMAKE_BUILD_TYPE=Release -DEXAMPLES_WERROR=ON -DCMAKE_PREFIX_PATH=" + q(prefix),
             log) == 0);
  REQUIRE(sh("cmake --build " + q(build) + " -j2", log) == 0);
  for (const char* exe : {"classify_c", "classify_cpp", "classify_cpp_static"}) {
    CAPTURE(exe);
    const fs::path out = tmp.path / (std::string(exe) + ".cmake.txt");
    REQUIRE(sh(q(build / exe) + " " + q(model) + " " + q(input), out) == 0);
    CHECK(read_file(out) == expect);
  }

  // pkg-config (examples/Makefile): C and C++ against the shared library.
  const fs::path pcbuild = tmp.path / "build-pc";
  fs::create_directories(pcbuild);
  REQUIRE(sh("PKG_CONFIG_PATH=" + q(libdir / "pkgconfig") + " make -s -C " + q(fs::path(CONVOY_SOURCE_DIR) / "examples") +
                 " WERROR=-Werror OUT=" + q(pcbuild),
             log) == 0);
  for (const char* exe : {"classify_c", "classify_cpp"}) {
    CAPTURE(exe);
    const fs::path out = tmp.path / (std::string(exe) + ".pc.txt");
    REQUIRE(sh(q(pcbuild / exe) + " " + q(model) + " " + q(input), out) == 0);
    CHECK(read_file(out) == expect);
  }

  // Errors reach the embedder as messages, exit 1.
  const fs::path err = tmp.path / "err.txt";
  CHECK(sh(q(build / "classify_c") + " " + q(tmp.path / "missing.onnx") + " " + q(input) + " || test $? = 1", err) == 0);
  CHECK(read_file(err.string() + ".err").find("missing.onnx") != std::string::npos);
}

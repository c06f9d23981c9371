// Hostile models (tests/gen/make_hostile_models.py, generated into a temporary directory here):
// each must end in a convoy::Error whose message names the problem, when loaded and planned for
// its declared input shape. No crash, no other exception, no huge allocation; .ci/sanitize.sh
// runs this under ASan+UBSan.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "convoy_test_hostile_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
};

struct Case {
  std::string file;
  std::vector<std::string> expect;
};

std::vector<Case> read_expected(const fs::path& path) {
  std::vector<Case> cases;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    for (size_t start = 0;;) {
      const size_t sep = line.find("  ", start);
      fields.push_back(line.substr(start, sep - start));
      if (sep == std::string::npos) break;
      start = sep + 2;
    }
    cases.push_back({fields[0], std::vector<std::string>(fields.begin() + 1, fields.end())});
  }
  return cases;
}

// Loads and plans `path`; returns the convoy::Error message, or "" when everything succeeded.
std::string load_and_plan(const fs::path& path) {
  try {
    auto model = convoy::Model::load(path.string());
    convoy::Session session(model, {.threads = 1});
    std::vector<std::vector<int64_t>> shapes;
    for (const convoy::TensorInfo& in : model->inputs()) {
      std::vector<int64_t> s = in.shape;
      for (int64_t& d : s)
        if (d < 0) d = 1;
      shapes.push_back(s);
    }
    session.output_shapes(shapes);
  } catch (const convoy::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("hostile models fail with clean errors") {
  TempDir dir;
  const std::string gen = std::string(CONVOY_SOURCE_DIR) + "/tests/gen/make_hostile_models.py";
  const std::string cmd = "/usr/bin/python3 '" + gen + "' -o '" + dir.path.string() + "'";
  const int status = std::system(cmd.c_str());
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "generator failed: " << cmd);
  const std::vector<Case> cases = read_expected(dir.path / "expected.txt");
  REQUIRE(cases.size() >= 15);
  for (const Case& c : cases) {
    CAPTURE(c.file);
    const std::string msg = load_and_plan(dir.path / c.file);
    CHECK_MESSAGE(!msg.empty(), c.file << " was accepted");
    // The message names the model file and every expected fragment.
    CHECK_MESSAGE(msg.find(fs::path(c.file).filename().string()) != std::string::npos, msg);
    for (const std::string& e : c.expect) CHECK_MESSAGE(msg.find(e) != std::string::npos, "missing '" << e << "' in: " << msg);
  }
}

TEST_CASE("hostile bytes through Model::from_bytes: external data is refused in memory") {
  // A model whose weight points at external data: from memory there is no directory to trust.
  TempDir dir;
  const std::string gen = std::string(CONVOY_SOURCE_DIR) + "/tests/gen/make_hostile_models.py";
  REQUIRE(std::system(("/usr/bin/python3 '" + gen + "' -o '" + dir.path.string() + "'").c_str()) == 0);
  std::ifstream f(dir.path / "ext/symlink_chain.onnx", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(!bytes.empty());
  try {
    convoy::Model::from_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                              "mem.onnx");
    FAIL("accepted");
  } catch (const convoy::Error& e) {
    CHECK(std::string(e.what()).find("external data is not allowed") != std::string::npos);
  }
}

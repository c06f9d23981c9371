// `convoy run` on malformed models and inputs (tests/gen/make_bad_models.py writes them): each must
// fail cleanly with exit 1, one line on stderr naming the file and the problem, no crash, no hang,
// and no --output file.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace fs = std::filesystem;

namespace {

using convoy::testing::CliResult;
using convoy::testing::quote;
using convoy::testing::read_file;

struct TempDir : convoy::testing::TempDir {
  TempDir() : convoy::testing::TempDir("convoy_test_bad_input") {}
};

// Runs `convoy run ARGS` under `timeout 20`, capturing stdout and stderr through files in `dir`.
CliResult run_cli(const fs::path& dir, const std::string& args) {
  return convoy::testing::run_captured(dir, convoy::testing::convoy_bin() + " run " + args, 20);
}

struct Case {
  std::string file;                 // relative to the corpus directory
  std::vector<std::string> expect;  // substrings stderr must hold
};

std::vector<Case> read_expected(const fs::path& path) {
  std::vector<Case> cases;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::vector<std::string> fields;
    size_t start = 0;
    while (true) {
      const size_t sep = line.find("  ", start);
      fields.push_back(line.substr(start, sep - start));
      if (sep == std::string::npos) break;
      start = sep + 2;
    }
    cases.push_back({fields[0], std::vector<std::string>(fields.begin() + 1, fields.end())});
  }
  return cases;
}

void make_corpus(const fs::path& dir) {
  const std::string cmd = std::string("/usr/bin/python3 ") + quote(CONVOY_SOURCE_DIR "/tests/gen/make_bad_models.py") + " " +
                          quote(dir.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("bad input: the control model runs") {
  TempDir tmp;
  const fs::path corpus = tmp.path / "corpus";
  make_corpus(corpus);
  const fs::path out = tmp.path / "good_out.npy";
  const CliResult r = run_cli(tmp.path, quote((corpus / "good.onnx").string()) + " --input " +
                                            quote((corpus / "input.npy").string()) + " --output " + quote(out.string()));
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(fs::exists(out));
  CHECK(r.out.find("input.npy row 0") != std::string::npos);
  const std::string compare = "/usr/bin/python3 -c \"import numpy as np; a = np.load('" + out.string() + "'); b = np.load('" +
                              (corpus / "good_ref.npy").string() +
                              "'); assert a.dtype == np.float32 and a.shape == b.shape == (1, 3), (a.shape, b.shape); "
                              "assert np.allclose(a, b, rtol=1e-4, atol=1e-5), (a, b)\"";
  CHECK(std::system(compare.c_str()) == 0);
}

TEST_CASE("bad input: every malformed model and input fails cleanly") {
  TempDir tmp;
  const fs::path corpus = tmp.path / "corpus";
  make_corpus(corpus);
  const std::vector<Case> cases = read_expected(corpus / "expected.txt");
  REQUIRE(cases.size() >= 20);

  const std::string good = quote((corpus / "good.onnx").string());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const fs::path file = corpus / c.file;
    const fs::path out = tmp.path / ("out_" + std::to_string(i) + ".npy");
    const std::string ext = file.extension().string();
    std::string args;
    if (ext == ".onnx") {
      args = quote(file.string()) + " --input " + quote((corpus / "input.npy").string());
    } else if (ext == ".npy") {
      args = good + " --input " + quote(file.string());
    } else {
      args = good + " " + quote(file.string());
    }
    const CliResult r = run_cli(tmp.path, args + " --output " + quote(out.string()));

    INFO("case: " << c.file);
    INFO("stderr: " << r.err);
    CHECK_MESSAGE(r.exit_code < 124, "crashed or timed out (exit " << r.exit_code << ")");
    CHECK(r.exit_code == 1);
    CHECK_FALSE(fs::exists(out));
    // Exactly one line, in the CLI's error format.
    CHECK(r.err.rfind("convoy: ", 0) == 0);
    CHECK((!r.err.empty() && r.err.back() == '\n' && r.err.find('\n') == r.err.size() - 1));
    CHECK(r.err.find(file.filename().string()) != std::string::npos);
    for (const std::string& s : c.expect) {
      INFO("expected substring: " << s);
      CHECK(r.err.find(s) != std::string::npos);
    }
  }
  // Nothing but the corpus and our captures: no stray temporary outputs.
  for (const auto& entry : fs::directory_iterator(tmp.path)) {
    const std::string name = entry.path().filename().string();
    CHECK_MESSAGE((name == "corpus" || name == "stdout.txt" || name == "stderr.txt"), "stray file " << name);
  }
}

// Shared by the tests that run the built `convoy` CLI: a temporary directory, file reading,
// shell quoting, and running a command with stdout/stderr captured through files.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

namespace convoy::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag = "convoy_test") {
    std::string tmpl = (fs::temp_directory_path() / (tag + "_XXXXXX")).string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Single-quoted for the shell (our temp paths hold no quotes).
inline std::string quote(const std::string& s) {
  std::string r(1, '\'');
  r.append(s).push_back('\'');
  return r;
}

struct CliResult {
  int exit_code = -1;  // the shell's: 128+N when the command died from signal N, 124 on timeout
  std::string out, err;
};

// Runs `cmd` through the shell under `timeout`, stdout and stderr captured in files in `dir`.
inline CliResult run_captured(const fs::path& dir, const std::string& cmd, int timeout_seconds) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string full = "timeout " + std::to_string(timeout_seconds) + " " + cmd + " >" + quote(out.string()) + " 2>" +
                           quote(err.string());
  const int status = std::system(full.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// The command succeeded (shows its output when it did not).
inline void check_ok(const CliResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

// Exit `code` with "convoy: ..." on stderr holding `needle`; one line when code is 1.
inline void check_error(const CliResult& r, int code, const std::string& needle) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(r.err.rfind("convoy: ", 0) == 0);
  if (code == 1) CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(needle) != std::string::npos);
}

// The built CLI (ctest sets CONVOY_BIN), quoted for the shell.
inline std::string convoy_bin() {
  const char* bin = std::getenv("CONVOY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "CONVOY_BIN must name the built convoy CLI");
  return quote(bin);
}

}  // namespace convoy::testing

// The C API (include/convoy/convoy.h): queries, a run checked against naive loops, and every
// error path returning a status and a message (run under ASan's leak check by .ci/sanitize.sh).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "convoy/convoy.h"
#include "convoy/convoy.hpp"
#include "embed_test_model.h"

namespace fs = std::filesystem;
using convoy::testing::SmallCnn;

namespace {

struct ModelHandle {
  convoy_model* m = nullptr;
  ~ModelHandle() { convoy_model_free(m); }
};
struct SessionHandle {
  convoy_session* s = nullptr;
  ~SessionHandle() { convoy_session_free(s); }
};

void load_small(const SmallCnn& cnn, ModelHandle& h) {
  const std::string bytes = cnn.onnx_bytes();
  REQUIRE(convoy_model_from_bytes(bytes.data(), bytes.size(), "small.onnx", &h.m) == CONVOY_OK);
  REQUIRE(h.m != nullptr);
}

std::string last_error() { return convoy_last_error(); }

}  // namespace

TEST_CASE("c_api: version and status names") {
  CHECK(std::string(convoy_version()) == convoy::version());
  CHECK(std::string(convoy_status_name(CONVOY_OK)) == "CONVOY_OK");
  CHECK(std::string(convoy_status_name(CONVOY_ERROR_MODEL)) == "CONVOY_ERROR_MODEL");
  CHECK(std::string(convoy_status_name(static_cast<convoy_status>(7))) == "CONVOY_STATUS_UNKNOWN");
}

TEST_CASE("c_api: model queries") {
  SmallCnn cnn;
  ModelHandle h;
  load_small(cnn, h);
  CHECK(convoy_model_input_count(h.m) == 1);
  CHECK(convoy_model_output_count(h.m) == 1);
  CHECK(std::string(convoy_model_input_name(h.m, 0)) == "input");
  CHECK(std::string(convoy_model_output_name(h.m, 0)) == "scores");
  CHECK(convoy_model_input_name(h.m, 1) == nullptr);
  CHECK(convoy_model_output_name(h.m, 5) == nullptr);
  size_t idx = 99;
  CHECK(convoy_model_input_index(h.m, "input", &idx) == CONVOY_OK);
  CHECK(idx == 0);
  CHECK(convoy_model_output_index(h.m, "scores", &idx) == CONVOY_OK);
  CHECK(idx == 0);
  CHECK(convoy_model_input_index(h.m, "nope", &idx) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("no input 'nope'") != std::string::npos);

  int64_t dims[4] = {0, 0, 0, 0};
  size_t rank = 0;
  REQUIRE(convoy_model_input_shape(h.m, 0, dims, 4, &rank) == CONVOY_OK);
  CHECK(rank == 4);
  CHECK(dims[0] == -1);  // dynamic batch
  CHECK(dims[1] == 3);
  CHECK(dims[3] == 12);
  // Too small a buffer: the rank is still reported.
  rank = 0;
  CHECK(convoy_model_input_shape(h.m, 0, dims, 2, &rank) == CONVOY_ERROR_INVALID_ARGUMENT);
  CHECK(rank == 4);
  CHECK(convoy_model_output_shape(h.m, 0, dims, 4, &rank) == CONVOY_OK);
  CHECK(rank == 2);
  CHECK(dims[1] == 10);
  CHECK(convoy_model_output_shape(h.m, 3, dims, 4, &rank) == CONVOY_ERROR_INVALID_ARGUMENT);

  const char* labels = convoy_model_metadata(h.m, "convoy.labels");
  REQUIRE(labels != nullptr);
  CHECK(std::string(labels).rfind("c0\nc1\n", 0) == 0);
  CHECK(convoy_model_metadata(h.m, "absent.key") == nullptr);
  CHECK(convoy_model_opset(h.m) == 13);
}

TEST_CASE("c_api: run matches naive loops, batch 1 and 3, caller buffers") {
  SmallCnn cnn;
  ModelHandle h;
  load_small(cnn, h);
  convoy_session_options opt;
  convoy_session_options_init(&opt);
  CHECK(opt.threads == 0);
  CHECK(opt.max_memory == 0);
  opt.threads = 2;
  SessionHandle s;
  REQUIRE(convoy_session_create(h.m, &opt, &s.s) == CONVOY_OK);
  for (int64_t n : {1, 3}) {
    CAPTURE(n);
    const std::vector<float> x = convoy::testing::small_cnn_input(n, 7 + static_cast<uint32_t>(n));
    const int64_t shape[4] = {n, 3, 12, 12};
    const convoy_input in = {x.data(), shape, 4};
    int64_t out_dims[2] = {0, 0};
    size_t rank = 0;
    REQUIRE(convoy_session_output_shape(s.s, &in, 1, 0, out_dims, 2, &rank) == CONVOY_OK);
    CHECK(rank == 2);
    CHECK(out_dims[0] == n);
    CHECK(out_dims[1] == 10);
    std::vector<float> y(static_cast<size_t>(n * 10), NAN);
    float* outs[1] = {y.data()};
    const size_t caps[1] = {y.size()};
    REQUIRE_MESSAGE(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_OK, last_error());
    const std::vector<double> ref = cnn.reference(x, n);
    for (size_t i = 0; i < y.size(); ++i) CHECK(std::abs(y[i] - ref[i]) <= 1e-4 * (1 + std::abs(ref[i])));
  }
}

TEST_CASE("c_api: the session keeps its model alive") {
  SmallCnn cnn;
  ModelHandle h;
  load_small(cnn, h);
  SessionHandle s;
  REQUIRE(convoy_session_create(h.m, nullptr, &s.s) == CONVOY_OK);
  convoy_model_free(h.m);
  h.m = nullptr;
  const std::vector<float> x = convoy::testing::small_cnn_input(1, 3);
  const int64_t shape[4] = {1, 3, 12, 12};
  const convoy_input in = {x.data(), shape, 4};
  std::vector<float> y(10);
  float* outs[1] = {y.data()};
  const size_t caps[1] = {10};
  REQUIRE(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_OK);
  const std::vector<double> ref = cnn.reference(x, 1);
  for (size_t i = 0; i < 10; ++i) CHECK(std::abs(y[i] - ref[i]) <= 1e-4 * (1 + std::abs(ref[i])));
}

TEST_CASE("c_api: load errors give a status and a message") {
  convoy_model* m = reinterpret_cast<convoy_model*>(0x1);  // must stay untouched on failure
  CHECK(convoy_model_load("/nonexistent/dir/model.onnx", &m) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("/nonexistent/dir/model.onnx") != std::string::npos);
  CHECK(m == reinterpret_cast<convoy_model*>(0x1));

  const char junk[] = "\x08\x07\x12\xff\xff\xff\xff\x0f this is not a model";
  m = nullptr;
  CHECK(convoy_model_from_bytes(junk, sizeof junk, "junk.onnx", &m) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("junk.onnx") != std::string::npos);
  CHECK(m == nullptr);
  CHECK(convoy_model_from_bytes(junk, 0, nullptr, &m) == CONVOY_ERROR_MODEL);  // empty
  CHECK(m == nullptr);

  // A file that exists but is not a model.
  const fs::path p = fs::temp_directory_path() / ("convoy_test_c_api_" + std::to_string(::getpid()) + ".onnx");
  { std::ofstream(p) << "hello"; }
  CHECK(convoy_model_load(p.c_str(), &m) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find(p.string()) != std::string::npos);
  fs::remove(p);

  CHECK(convoy_model_load(nullptr, &m) == CONVOY_ERROR_INVALID_ARGUMENT);
  CHECK(convoy_model_load("x.onnx", nullptr) == CONVOY_ERROR_INVALID_ARGUMENT);
  CHECK(convoy_model_from_bytes(nullptr, 10, "x", &m) == CONVOY_ERROR_INVALID_ARGUMENT);
  CHECK(!last_error().empty());
  convoy_model_free(nullptr);
  convoy_session_free(nullptr);
}

TEST_CASE("c_api: run errors give a status and a message, the session stays usable") {
  SmallCnn cnn;
  ModelHandle h;
  load_small(cnn, h);
  SessionHandle s;
  REQUIRE(convoy_session_create(h.m, nullptr, &s.s) == CONVOY_OK);
  const std::vector<float> x = convoy::testing::small_cnn_input(1, 5);
  std::vector<float> y(10);
  float* outs[1] = {y.data()};
  size_t caps[1] = {10};

  SUBCASE("wrong channel count") {
    const int64_t shape[4] = {1, 4, 12, 12};
    const convoy_input in = {x.data(), shape, 4};
    CHECK(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_ERROR_MODEL);
    CHECK(last_error().find("input 'input'") != std::string::npos);
  }
  SUBCASE("wrong rank") {
    const int64_t shape[2] = {1, 432};
    const convoy_input in = {x.data(), shape, 2};
    CHECK(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_ERROR_MODEL);
  }
  SUBCASE("negative and overflowing dimensions") {
    const int64_t neg[4] = {-1, 3, 12, 12};
    const convoy_input in = {x.data(), neg, 4};
    CHECK(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_ERROR_MODEL);
    const int64_t huge[4] = {int64_t{1} << 40, 3, 12, 12};
    const convoy_input in2 = {x.data(), huge, 4};
    CHECK(convoy_session_run(s.s, &in2, 1, outs, caps, 1) == CONVOY_ERROR_MODEL);
    CHECK_MESSAGE(last_error().find("too many elements") != std::string::npos, last_error());
  }
  SUBCASE("input count") {
    const int64_t shape[4] = {1, 3, 12, 12};
    const convoy_input in[2] = {{x.data(), shape, 4}, {x.data(), shape, 4}};
    CHECK(convoy_session_run(s.s, in, 2, outs, caps, 1) == CONVOY_ERROR_MODEL);
    CHECK(convoy_session_run(s.s, in, 0, outs, caps, 1) == CONVOY_ERROR_MODEL);
  }
  SUBCASE("output buffers") {
    const int64_t shape[4] = {1, 3, 12, 12};
    const convoy_input in = {x.data(), shape, 4};
    caps[0] = 9;
    CHECK(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
    CHECK(last_error().find("needs 10 floats") != std::string::npos);
    caps[0] = 10;
    CHECK(convoy_session_run(s.s, &in, 1, outs, caps, 0) == CONVOY_ERROR_INVALID_ARGUMENT);
    float* null_out[1] = {nullptr};
    CHECK(convoy_session_run(s.s, &in, 1, null_out, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
    CHECK(convoy_session_run(s.s, &in, 1, nullptr, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
  }
  SUBCASE("null pointers") {
    const int64_t shape[4] = {1, 3, 12, 12};
    const convoy_input null_data = {nullptr, shape, 4};
    CHECK(convoy_session_run(s.s, &null_data, 1, outs, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
    const convoy_input null_shape = {x.data(), nullptr, 4};
    CHECK(convoy_session_run(s.s, &null_shape, 1, outs, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
    CHECK(convoy_session_run(nullptr, &null_shape, 1, outs, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
    CHECK(convoy_session_run(s.s, nullptr, 1, outs, caps, 1) == CONVOY_ERROR_INVALID_ARGUMENT);
  }
  // After any failure the same session still runs correctly.
  const int64_t shape[4] = {1, 3, 12, 12};
  const convoy_input in = {x.data(), shape, 4};
  caps[0] = 10;
  REQUIRE(convoy_session_run(s.s, &in, 1, outs, caps, 1) == CONVOY_OK);
  const std::vector<double> ref = cnn.reference(x, 1);
  for (size_t i = 0; i < 10; ++i) CHECK(std::abs(y[i] - ref[i]) <= 1e-4 * (1 + std::abs(ref[i])));
}

TEST_CASE("c_api: session options are checked, max_memory refuses big plans") {
  SmallCnn cnn;
  ModelHandle h;
  load_small(cnn, h);
  convoy_session_options opt;
  convoy_session_options_init(&opt);
  opt.threads = -3;
  convoy_session* s = nullptr;
  CHECK(convoy_session_create(h.m, &opt, &s) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("threads") != std::string::npos);
  CHECK(s == nullptr);
  CHECK(convoy_session_create(nullptr, &opt, &s) == CONVOY_ERROR_INVALID_ARGUMENT);

  // The weights alone are ~6 KB: a 4 KB cap refuses every plan, a 16 MiB cap refuses batch 4096
  // (its arena holds the [4096,8,12,12] activation alone: 18 MiB).
  opt.threads = 1;
  opt.max_memory = 4096;
  SessionHandle tiny;
  REQUIRE(convoy_session_create(h.m, &opt, &tiny.s) == CONVOY_OK);
  const std::vector<float> x = convoy::testing::small_cnn_input(1, 9);
  const int64_t shape[4] = {1, 3, 12, 12};
  const convoy_input in = {x.data(), shape, 4};
  std::vector<float> y(10);
  float* outs[1] = {y.data()};
  const size_t caps[1] = {10};
  CHECK(convoy_session_run(tiny.s, &in, 1, outs, caps, 1) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("max_memory") != std::string::npos);
  CHECK(last_error().find("small.onnx") != std::string::npos);

  opt.max_memory = size_t{16} << 20;
  SessionHandle capped;
  REQUIRE(convoy_session_create(h.m, &opt, &capped.s) == CONVOY_OK);
  CHECK(convoy_session_run(capped.s, &in, 1, outs, caps, 1) == CONVOY_OK);
  const int64_t big[4] = {4096, 3, 12, 12};
  const convoy_input big_in = {x.data(), big, 4};  // refused while planning: data is never read
  int64_t dims[2];
  size_t rank = 0;
  CHECK(convoy_session_output_shape(capped.s, &big_in, 1, 0, dims, 2, &rank) == CONVOY_ERROR_MODEL);
  CHECK(last_error().find("max_memory") != std::string::npos);
}

TEST_CASE("c_api: the error message is per thread") {
  convoy_model* m = nullptr;
  CHECK(convoy_model_load("/nonexistent/main-thread.onnx", &m) == CONVOY_ERROR_MODEL);
  std::string other;
  std::thread t([&] {
    other = convoy_last_error();  // nothing failed in this thread yet
    convoy_model* m2 = nullptr;
    CHECK(convoy_model_load("/nonexistent/other-thread.onnx", &m2) == CONVOY_ERROR_MODEL);
    other.append("|").append(convoy_last_error());  // (operator+ trips GCC 12's -Wrestrict)
  });
  t.join();
  CHECK(other.rfind("|", 0) == 0);
  CHECK(other.find("other-thread.onnx") != std::string::npos);
  CHECK(last_error().find("main-thread.onnx") != std::string::npos);
}

// Whole-model checks against PyTorch: every torchvision export in $CONVOY_TEST_DATA/models
// (tests/gen/export_torchvision.py) runs at batch 1 and 3 and must match PyTorch's eval-mode
// outputs within 1e-4 * max|ref| with the same top-5 classes per row.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "convoy/convoy.hpp"
#include "npy_test_util.h"

namespace fs = std::filesystem;
using convoy::testing::NpyArray;

namespace {

struct ModelEntry {
  std::string name;
  int opset = 0;
  std::string file;
};

std::vector<ModelEntry> read_model_list(const fs::path& list) {
  std::vector<ModelEntry> entries;
  std::ifstream f(list);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    ModelEntry e;
    if (ss >> e.name >> e.opset >> e.file) entries.push_back(e);
  }
  return entries;
}

std::vector<size_t> top_k(const float* row, size_t n, size_t k) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t{0});
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(k), idx.end(),
                    [&](size_t a, size_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  idx.resize(k);
  return idx;
}

// Compares one batch; returns max|a-b| (for the log).
float check_batch(convoy::Session& session, const fs::path& dir, const ModelEntry& e, int batch) {
  const std::string stem = e.name + ".";
  const NpyArray in = convoy::testing::read_npy_f32(dir / (stem + "in_b" + std::to_string(batch) + ".npy"));
  const NpyArray ref = convoy::testing::read_npy_f32(dir / (stem + "ref_b" + std::to_string(batch) + ".npy"));
  const std::vector<convoy::Tensor> out = session.run({convoy::Tensor(in.shape, in.data)});
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].shape() == ref.shape);
  REQUIRE(ref.shape.size() == 2);

  float max_ref = 0, max_err = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref.data[i]));
    const float err = std::fabs(out[0].data()[i] - ref.data[i]);
    max_err = std::max(max_err, std::isnan(err) ? std::numeric_limits<float>::infinity() : err);
  }
  const float tol = 1e-4f * max_ref;
  CHECK_MESSAGE(max_err <= tol, e.file, " batch ", batch, ": max|convoy - pytorch| = ", max_err,
                " (tol ", tol, " (max|ref| = ", max_ref, ")");

  // Top-5 per row must agree. Random-weight logits can have near ties, so convoy's k-th class
  // is accepted when PyTorch's score for it is within 2*tol of PyTorch's k-th score (errors of
  // up to tol on both sides may swap such a pair); with no ties this is index equality.
  const size_t classes = static_cast<size_t>(ref.shape[1]);
  for (size_t r = 0; r < static_cast<size_t>(ref.shape[0]); ++r) {
    const float* ref_row = ref.data.data() + r * classes;
    const std::vector<size_t> want = top_k(ref_row, classes, 5);
    const std::vector<size_t> got = top_k(out[0].data() + r * classes, classes, 5);
    for (size_t k = 0; k < want.size(); ++k) {
      if (got[k] == want[k]) continue;
      CHECK_MESSAGE(std::fabs(ref_row[got[k]] - ref_row[want[k]]) <= 2 * tol, e.file, " batch ", batch,
                    " row ", r, ": top-", k + 1, " class ", got[k], " (pytorch ", ref_row[got[k]],
                    "), pytorch has ", want[k], " (", ref_row[want[k]], ")");
    }
  }
  return max_err;
}

}  // namespace

TEST_CASE("torchvision exports match PyTorch at batch 1 and 3") {
  const fs::path data = convoy::testing::test_data_dir();
  const fs::path dir = data / "models";
  REQUIRE_MESSAGE(!data.empty(), convoy::testing::kMissingDataHint);
  REQUIRE_MESSAGE(fs::is_regular_file(dir / "list.txt"), convoy::testing::kMissingDataHint, " (no ",
                  (dir / "list.txt").string(), ")");
  const std::vector<ModelEntry> entries = read_model_list(dir / "list.txt");
  REQUIRE_MESSAGE(!entries.empty(), (dir / "list.txt").string(), " lists no models");

  for (const ModelEntry& e : entries) {
    INFO("model ", e.file);
    auto model = convoy::Model::load((dir / e.file).string());
    REQUIRE(model->inputs().size() == 1);
    REQUIRE(model->outputs().size() == 1);
    convoy::Session session(model);
    const float err1 = check_batch(session, dir, e, 1);
    const float err3 = check_batch(session, dir, e, 3);
    // The arena stays within 5% of the liveness lower bound (issue 4) on these real graphs.
    for (int64_t batch : {1, 3}) {
      std::vector<int64_t> shape = model->inputs()[0].shape;
      shape[0] = batch;
      const convoy::PlanInfo plan = session.plan_info({shape});
      CHECK_MESSAGE(static_cast<double>(plan.arena_bytes) <= 1.05 * static_cast<double>(plan.live_bound_bytes),
                    e.file, " batch ", batch, ": arena ", plan.arena_bytes, " bytes, live bound ", plan.live_bound_bytes);
    }
    std::printf("%-24s opset %2d: %4zu nodes, max|err| b1 %.3g b3 %.3g\n", e.file.c_str(), e.opset,
                model->node_count(), static_cast<double>(err1), static_cast<double>(err3));
  }
}

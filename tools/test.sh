#!/usr/bin/env bash
# Build convoy with warnings as errors, fill the test-data cache, run every test under ctest.
#   CONVOY_TEST_DATA  test-data cache (default ~/.cache/convoy-testdata); ~4.5 GB, generated
#                     once by tests/gen/generate_all.sh and regenerated when a generator changes.
# -DCONVOY_WERROR=ON is always on here (not only when CI is set): tests are the gate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup.sh

convoy_install_packages "${convoy_build_packages[@]}" "${convoy_test_packages[@]}"

export CONVOY_TEST_DATA=${CONVOY_TEST_DATA:-$HOME/.cache/convoy-testdata}
convoy_build -DCONVOY_WERROR=ON -DCONVOY_TEST_DATA="$CONVOY_TEST_DATA"
source tools/setup_ort.sh
convoy_setup_ort  # ONNX Runtime (npm), the second reference of the dense-scoring tests
tests/gen/generate_all.sh "$CONVOY_TEST_DATA"

status=0
ctest --test-dir build --output-on-failure -j2 || status=$?
if ((status != 0)); then
  echo "test.sh: FAILED (ctest exit $status); see the output above" >&2
  exit "$status"
fi
# ASan+UBSan build of a test subset, 60 s of fuzzing, TSan on the concurrency test
# (.ci/sanitize.sh says which and why). CONVOY_SKIP_SANITIZE=1 skips it for a quick local run.
if [[ ${CONVOY_SKIP_SANITIZE:-0} != 1 ]]; then
  .ci/sanitize.sh || status=$?
  if ((status != 0)); then
    echo "test.sh: FAILED in .ci/sanitize.sh (exit $status); see the output above" >&2
    exit "$status"
  fi
fi
echo "test.sh: all tests passed"

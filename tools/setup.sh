# Shared set-up for tools/run.sh and tools/test.sh (sourced, not run): Debian packages and the
# CMake build in build/. The caller has `set -euo pipefail` and is in the repository root.

# shellcheck disable=SC2034  # the package lists are used by the scripts that source this file

# Everything needed to configure and build the tree (the tests are configured too, so doctest,
# zlib and pybind11 are here, not in the test set).
convoy_build_packages=(
  build-essential cmake pkg-config
  libonnx-dev libprotobuf-dev protobuf-compiler libhwy-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  doctest-dev zlib1g-dev pybind11-dev python3-pybind11 python3-dev
  python3-numpy python3-distributed
)
# Needed only to generate test data and run the tests.
convoy_test_packages=(
  clang libclang-rt-14-dev
  python3-onnx python3-torch python3-torchvision
  dataset-fashion-mnist python3-pil
)

# convoy_install_packages PKG...: apt-get install whichever are not installed yet.
convoy_install_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "setup: installing ${missing[*]}"
  local sudo=()
  if ((EUID != 0)); then
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# convoy_build [CMAKE_ARGS...]: configure build/ when it has no cache yet, or always when
# arguments are given (re-running cmake on a configured tree is cheap and only rebuilds what
# the changed options touch); then an incremental build.
convoy_build() {
  if [[ ! -f build/CMakeCache.txt || $# -gt 0 ]]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
  fi
  cmake --build build -j"$(nproc)"
}

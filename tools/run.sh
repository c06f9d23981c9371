#!/usr/bin/env bash
# Build convoy (installing missing Debian build packages) and classify the demo samples.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup.sh

convoy_install_packages "${convoy_build_packages[@]}"
convoy_build  # no arguments: configure only when build/ has no cache yet
build/convoy run models/demo/fashion_cnn.onnx models/demo/samples/*.png --top 3

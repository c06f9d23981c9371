#!/usr/bin/env bash
# Fill the convoy test-data cache: tests/gen/generate_all.sh [DIR]
# DIR defaults to $CONVOY_TEST_DATA, else ~/.cache/convoy-testdata. Each generator runs only
# when DIR/<sub>/.stamp differs from the sha256 of its script (the generator writes the stamp
# last, so an interrupted run is redone). Any failure stops the script with a non-zero exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=${1:-${CONVOY_TEST_DATA:-$HOME/.cache/convoy-testdata}}
python=/usr/bin/python3
mkdir -p "$data"

# generate SCRIPT SUBDIR: run tests/gen/SCRIPT -o DATA/SUBDIR unless its stamp is current.
generate() {
  local script=$here/$1 out=$data/$2 want have start
  want=$(sha256sum "$script" | cut -d' ' -f1)
  have=$(cat "$out/.stamp" 2>/dev/null || true)
  if [[ $want == "$have" ]]; then
    echo "generate_all: $2 is up to date ($1)"
    return
  fi
  echo "generate_all: running $1 -> $out"
  start=$SECONDS
  if ! "$python" "$script" -o "$out"; then
    echo "generate_all: FAILED: $1 (output in $out is incomplete)" >&2
    exit 1
  fi
  have=$(cat "$out/.stamp" 2>/dev/null || true)
  if [[ $want != "$have" ]]; then
    echo "generate_all: FAILED: $1 finished but did not write $out/.stamp" >&2
    exit 1
  fi
  echo "generate_all: $1 took $((SECONDS - start)) s"
}

generate gen_node_tests.py node
generate export_torchvision.py models
# Needs node + onnxruntime-node (tools/setup_ort.sh); reuses export_torchvision.py's seeds.
generate gen_dense_data.py dense
echo "generate_all: test data ready in $data"

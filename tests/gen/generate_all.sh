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

# generate SCRIPT SUBDIR [INPUT...]: run tests/gen/SCRIPT -o DATA/SUBDIR unless its stamp is
# current. The stamp is the sha256 of the script, or with INPUTs (other files the generator
# reads, relative to tests/gen) the sha256 over the script and them together.
generate() {
  local name=$1 sub=$2 script=$here/$1 out=$data/$2 own want have start
  shift 2
  own=$(sha256sum "$script" | cut -d' ' -f1)
  want=$own
  if (($# > 0)); then
    want=$( (cd "$here" && sha256sum "$name" "$@") | sha256sum | cut -d' ' -f1)  # relative names: the stamp does not depend on where the checkout lives
  fi
  set -- "$name" "$sub"
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
  if [[ $own != "$have" ]]; then
    echo "generate_all: FAILED: $1 finished but did not write $out/.stamp" >&2
    exit 1
  fi
  echo "$want" >"$out/.stamp"  # the script's own hash, or the hash over it and its inputs
  echo "generate_all: $1 took $((SECONDS - start)) s"
}

generate gen_node_tests.py node
generate export_torchvision.py models
generate gen_grad_data.py grad
# Needs the models generator first (the VGG test reads models/vgg16_op13.onnx).
generate gen_train_refs.py train ../../models/demo/fashion_cnn.onnx
generate make_finetune_data.py finetune
# Needs node + onnxruntime-node (tools/setup_ort.sh); reuses export_torchvision.py's seeds.
generate gen_dense_data.py dense export_torchvision.py ort_run.js ../../models/demo/fashion_cnn.onnx
echo "generate_all: test data ready in $data"

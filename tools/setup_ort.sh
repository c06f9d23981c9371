# ONNX Runtime for Node.js, the independent reference the dense-scoring tests compare against
# (tests/gen/ort_run.js). Sourced, not run; the caller has `set -euo pipefail`.
#
# convoy_setup_ort: install onnxruntime-node 1.30.0 into $CONVOY_ORT_DIR (default
# ~/.cache/convoy-ort) unless it is there already. It uses the machine's node/npm (Node 20; do
# not apt-install Debian's nodejs/npm, they conflict). --onnxruntime-node-install=skip keeps npm
# from fetching the optional GPU binaries: the CPU library ships inside the package (~290 MB).
convoy_setup_ort() {
  local dir=${CONVOY_ORT_DIR:-$HOME/.cache/convoy-ort}
  local want=1.30.0 have=
  if [[ -f $dir/node_modules/onnxruntime-node/package.json ]]; then
    have=$(node -p "require('$dir/node_modules/onnxruntime-node/package.json').version" 2>/dev/null || true)
  fi
  if [[ $have == "$want" ]]; then
    return 0
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup_ort: node and npm are needed (Node 20) to install onnxruntime-node" >&2
    return 1
  fi
  echo "setup_ort: installing onnxruntime-node@$want into $dir"
  mkdir -p "$dir"
  (cd "$dir" && { [[ -f package.json ]] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund "onnxruntime-node@$want" --onnxruntime-node-install=skip)
  node -e "require('$dir/node_modules/onnxruntime-node')" || {
    echo "setup_ort: onnxruntime-node installed in $dir but does not load" >&2
    return 1
  }
}

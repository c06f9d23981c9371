#!/usr/bin/python3
"""ONNX Runtime side of tools/bench/compare_ort.py through the Python package `onnxruntime`,
for machines that have it instead of npm onnxruntime-node (compare_ort.py --ort python).
Same protocol and session options as ort_bench.js:

  python3 ort_bench.py MODEL THREADS SHAPE_JSON
  stdin  "run W K"  -> stdout {"samples_ms": [...]}   (W untimed runs, then K timed ones)
  stdin  "quit"     -> stdout {"peak_rss_bytes": N}, exit
On start it prints {"load_ms": ..., "input": NAME} once the session exists.
"""
import json
import resource
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, threads, shape_json = sys.argv[1:4]
    shape = json.loads(shape_json)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    name = session.get_inputs()[0].name
    n = int(np.prod(shape))
    data = np.empty(n, dtype=np.float32)
    seed = 12345  # seeded uniform [-1, 1), the same sequence as ort_bench.js
    for i in range(n):
        seed = (seed * 1103515245 + 12345) % 2147483648
        data[i] = seed / 1073741824 - 1
    feeds = {name: data.reshape(shape)}
    print(json.dumps({"load_ms": load_ms, "input": name}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "run":
            warmup, iters = int(words[1]), int(words[2])
            for _ in range(warmup):
                session.run(None, feeds)
            samples = []
            for _ in range(iters):
                s = time.perf_counter()
                session.run(None, feeds)
                samples.append((time.perf_counter() - s) * 1e3)
            print(json.dumps({"samples_ms": samples}), flush=True)
        elif words[0] == "quit":
            print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)
            return


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - reported to the driver on stderr
        sys.exit(f"ort_bench.py: {e}")

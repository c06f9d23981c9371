#!/usr/bin/python3
"""Carry a model's structure to another machine without its weights, for timing only.

  model_skeleton.py strip MODEL.onnx SKEL.onnx   float initializers of more than 1024 values lose
                                                 their data; dims kept, mean/std in doc_string
  model_skeleton.py fill SKEL.onnx MODEL.onnx    refill them with seeded normal values of that
                                                 mean and std (numpy seed 7)

ResNet-50's 98 MB of weights do not fit the 64 MiB a `device` call carries; its skeleton is
105 kB. The refilled model computes different numbers (never compare outputs), with the same
graph, shapes and value ranges, so it runs at the same speed (checked: 37-40 ms either way at 2
threads on the AMD VM). Small initializers (shapes, biases of small layers) stay exact.
"""
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper

KEEP_BELOW = 1024


def strip(src, dst):
    m = onnx.load(src)
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) > KEEP_BELOW:
            a = numpy_helper.to_array(t)
            t.doc_string = json.dumps({"mean": float(a.mean()), "std": float(a.std())})
            t.ClearField("raw_data")
            t.ClearField("float_data")
    onnx.save(m, dst)


def fill(src, dst):
    m = onnx.load(src)
    rng = np.random.default_rng(7)
    for t in m.graph.initializer:
        if t.doc_string.startswith("{"):
            st = json.loads(t.doc_string)
            t.raw_data = rng.normal(st["mean"], st["std"], size=tuple(t.dims)).astype(np.float32).tobytes()
            t.doc_string = ""
    onnx.save(m, dst)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("strip", "fill"):
        sys.exit(__doc__)
    (strip if sys.argv[1] == "strip" else fill)(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Write a corpus of malformed ONNX models and bad inputs for tests/test_bad_input.cpp.

Usage: make_bad_models.py OUT_DIR

Every model takes input "input" [1,1,8,8] (float32), so that OUT_DIR/input.npy reaches the
planner whenever the importer lets a model through. OUT_DIR/good.onnx is a valid model (dynamic
batch, convoy.* metadata) that the bad inputs are fed to, and the control case: its output for
input.npy, computed here with numpy loops, is good_ref.npy.

OUT_DIR/expected.txt: one line per case, fields separated by two spaces:
    <file relative to OUT_DIR>  <substring>[  <substring>...]
`convoy run` on the case must fail (exit 1) with one line on stderr holding the file's name and
every substring. .onnx cases run with --input input.npy; .npy cases are fed to good.onnx with
--input; .png cases are given to good.onnx as images.
"""
import io
import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

OPSET = 13
INPUT_SHAPE = [1, 1, 8, 8]


def value_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(nodes, initializers=(), outputs=(("out", None),), opset=OPSET, input_shape=INPUT_SHAPE):
    graph = helper.make_graph(
        nodes, "bad", [value_info("input", input_shape)],
        [value_info(name, shape) for name, shape in outputs], initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_bad_models")
    m.ir_version = 7
    return m


def weights(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def conv_model(node_name="conv", w_shape=(2, 1, 3, 3), w=None, **attrs):
    """input -> Conv(W) -> out; `w` replaces the initializer (for broken tensors)."""
    node = helper.make_node("Conv", ["input", "W"], ["out"], name=node_name, **attrs)
    return model([node], [w if w is not None else weights("W", w_shape)])


def raw_tensor(name, dims, raw=b"", location=None):
    """A float TensorProto built field by field, so that nothing checks it."""
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    if location is None:
        t.raw_data = raw
    else:
        t.data_location = TensorProto.EXTERNAL
        for k, v in location.items():
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return t


def save(m, path):
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def parses(data):
    try:
        onnx.ModelProto().ParseFromString(data)
        return True
    except Exception:  # google.protobuf.message.DecodeError
        return False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    ext = os.path.join(out, "ext")
    os.makedirs(ext, exist_ok=True)
    cases = []  # (relative file, [substrings])

    def case(rel, *expect):
        cases.append((rel, list(expect)))

    # A valid model: Conv+Relu, GlobalAveragePool, Flatten, Gemm -> [N,3].
    good = model(
        [helper.make_node("Conv", ["input", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
         helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
         helper.make_node("Gemm", ["f", "B"], ["out"], name="fc", transB=1)],
        [weights("W", (4, 1, 3, 3), 1), weights("B", (3, 4), 2)],
        outputs=[("out", ["batch", 3])], input_shape=["batch", 1, 8, 8])
    for k, v in {"convoy.input_size": "8x8", "convoy.channels": "1", "convoy.color": "gray",
                 "convoy.mean": "0.5", "convoy.std": "0.25", "convoy.labels": "a\nb\nc"}.items():
        p = good.metadata_props.add()
        p.key, p.value = k, v
    save(good, os.path.join(out, "good.onnx"))
    rng = np.random.default_rng(7)
    x = rng.standard_normal(INPUT_SHAPE).astype(np.float32)
    np.save(os.path.join(out, "input.npy"), x)
    # good.onnx's output for input.npy by plain numpy loops: the control case's reference.
    w = numpy_helper.to_array(good.graph.initializer[0]).astype(np.float64)
    b = numpy_helper.to_array(good.graph.initializer[1]).astype(np.float64)
    xp = np.pad(x[0, 0].astype(np.float64), 1)
    conv = np.zeros((4, 8, 8))
    for o in range(4):
        for i in range(8):
            for j in range(8):
                conv[o, i, j] = (xp[i:i + 3, j:j + 3] * w[o, 0]).sum()
    pooled = np.maximum(conv, 0).mean(axis=(1, 2))
    np.save(os.path.join(out, "good_ref.npy"), (pooled @ b.T)[None].astype(np.float32))

    # --- not ONNX at all ---
    r = random.Random(1234)
    while True:  # random bytes that protobuf itself refuses (most do within a few bytes)
        junk = bytes(r.getrandbits(8) for _ in range(4096))
        if not parses(junk):
            break
    with open(os.path.join(out, "not_protobuf.onnx"), "wb") as f:
        f.write(junk)
    case("not_protobuf.onnx", "not a valid ONNX model")

    whole = conv_model(w_shape=(64, 1, 3, 3)).SerializeToString()
    cut = whole[: len(whole) // 2]
    assert not parses(cut)
    with open(os.path.join(out, "truncated.onnx"), "wb") as f:
        f.write(cut)
    case("truncated.onnx", "not a valid ONNX model")

    open(os.path.join(out, "empty.onnx"), "wb").close()
    case("empty.onnx", "empty")

    m = conv_model()
    m.opset_import[0].version = 99
    save(m, os.path.join(out, "opset99.onnx"))
    case("opset99.onnx", "opset 99")

    # --- graph structure ---
    save(model([helper.make_node("FrobnicateOp", ["input"], ["a"], name="frob_node"),
                helper.make_node("Relu", ["a"], ["b"], name="relu_between"),
                helper.make_node("WarpDrive", ["b"], ["out"], name="warp_node")]),
         os.path.join(out, "unknown_ops.onnx"))
    case("unknown_ops.onnx", "FrobnicateOp", "frob_node", "WarpDrive", "warp_node")

    save(model([helper.make_node("Add", ["input", "ghost"], ["out"], name="add_ghost")]),
         os.path.join(out, "dangling_edge.onnx"))
    case("dangling_edge.onnx", "node 'add_ghost'", "'ghost'")

    save(model([helper.make_node("Add", ["input", "t2"], ["t1"], name="cycle_a"),
                helper.make_node("Relu", ["t1"], ["t2"], name="cycle_b"),
                helper.make_node("Relu", ["t2"], ["out"], name="cycle_out")]),
         os.path.join(out, "cycle.onnx"))
    case("cycle.onnx", "cycle")

    # --- broken initializers ---
    save(conv_model(w=raw_tensor("W", [-2, 1, 3, 3])), os.path.join(out, "negative_dim.onnx"))
    case("negative_dim.onnx", "'W'", "negative")

    save(conv_model(w=raw_tensor("W", [2 ** 62, 2 ** 62], raw=b"\0" * 16)), os.path.join(out, "overflow_dims.onnx"))
    case("overflow_dims.onnx", "'W'", "too many elements")

    save(conv_model(w=raw_tensor("W", [2, 1, 3, 3], raw=b"\0" * 20)), os.path.join(out, "raw_data_mismatch.onnx"))
    case("raw_data_mismatch.onnx", "'W'", "raw_data")

    # --- external data: the model lives in ext/, outside.bin one level up (and it exists) ---
    w_bytes = np.ones((2, 1, 3, 3), np.float32).tobytes()
    with open(os.path.join(out, "outside.bin"), "wb") as f:
        f.write(w_bytes)
    with open(os.path.join(ext, "small.bin"), "wb") as f:
        f.write(w_bytes[:16])
    link = os.path.join(ext, "link.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.join("..", "outside.bin"), link)
    ext_cases = [
        ("dotdot.onnx", {"location": "../outside.bin"}, "leaves the model directory"),
        ("absolute.onnx", {"location": os.path.abspath(os.path.join(out, "outside.bin"))}, "absolute"),
        ("symlink.onnx", {"location": "link.bin"}, "outside the model directory"),
        ("past_end.onnx", {"location": "small.bin", "offset": 8, "length": len(w_bytes)}, "past the end"),
    ]
    for name, loc, expect in ext_cases:
        save(conv_model(w=raw_tensor("W", [2, 1, 3, 3], location=loc)), os.path.join(ext, name))
        case("ext/" + name, "'W'", expect)

    # --- operator attributes and shapes the planner must refuse ---
    save(conv_model("conv_zero_stride", strides=[0, 0]), os.path.join(out, "zero_stride.onnx"))
    case("zero_stride.onnx", "node 'conv_zero_stride'", "stride")

    save(conv_model("conv_bad_group", w_shape=(2, 1, 3, 3), group=2), os.path.join(out, "bad_group.onnx"))
    case("bad_group.onnx", "node 'conv_bad_group'", "group 2 does not divide")

    save(conv_model("conv_big_kernel", w_shape=(2, 1, 11, 11), pads=[1, 1, 1, 1]), os.path.join(out, "kernel_too_big.onnx"))
    case("kernel_too_big.onnx", "node 'conv_big_kernel'", "kernel")

    save(model([helper.make_node("Flatten", ["input"], ["f"], name="flatten"),
                helper.make_node("Gemm", ["f", "B"], ["out"], name="gemm_bad_k")],
               [weights("B", (60, 4))]),
         os.path.join(out, "gemm_k_mismatch.onnx"))
    case("gemm_k_mismatch.onnx", "node 'gemm_bad_k'", "64", "60")

    # --- bad inputs for good.onnx ---
    np.save(os.path.join(out, "wrong_shape.npy"), np.zeros((1, 3, 8, 8), np.float32))
    case("wrong_shape.npy", "good.onnx", "input 'input'", "[?,1,8,8]", "[1,3,8,8]")
    np.save(os.path.join(out, "wrong_dtype.npy"), np.zeros(INPUT_SHAPE, np.float64))
    case("wrong_dtype.npy", "good.onnx", "float64")
    with open(os.path.join(out, "not_an_image.png"), "w") as f:
        f.write("this is a text file, not a PNG\n")
    case("not_an_image.png", "cannot decode image")
    png = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(png, format="PNG")
    with open(os.path.join(out, "truncated.png"), "wb") as f:  # libpng complains on stderr itself
        f.write(png.getvalue()[: len(png.getvalue()) - 20])
    case("truncated.png", "cannot decode image")

    with open(os.path.join(out, "expected.txt"), "w") as f:
        for rel, expect in cases:
            f.write("  ".join([rel] + expect) + "\n")


if __name__ == "__main__":
    main()

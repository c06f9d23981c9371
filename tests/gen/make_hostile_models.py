#!/usr/bin/python3
"""Hostile models for tests/test_hostile_models.cpp, and the fuzz seed corpus.

Usage: make_hostile_models.py -o OUT_DIR      hostile cases + OUT_DIR/expected.txt + .stamp
       make_hostile_models.py --seeds DIR     fuzz/corpus seeds (small valid and broken models)

Extends tests/gen/make_bad_models.py (which covers junk bytes, truncation, cycles, dangling
edges, bad initializers, ../ and absolute external paths, a symlinked file, bad attributes)
with the cases of issue 6: external data reached through a symlinked directory, a symlink
chain and a hard link; huge declared lengths (protobuf field, external data, raw data);
shape-product overflow; a 1x3x100000x100000 input; Reshape with two -1; Gather out of range
in a shape chain; opset 99; rank over the limit.

OUT_DIR/expected.txt: one line per case, fields separated by two spaces:
    <file relative to OUT_DIR>  <substring>[  <substring>...]
Loading the model, then planning it for its declared input shape (dynamic dimensions = 1) in a
default Session, must throw convoy::Error whose message holds every substring.
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, initializers=(), input_shape=(1, 1, 8, 8), outputs=(("out", None),), opset=OPSET, inputs=None):
    ins = inputs if inputs is not None else [vi("input", list(input_shape))]
    graph = helper.make_graph(nodes, "hostile", ins, [vi(n, s) for n, s in outputs], initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_hostile_models")
    m.ir_version = 7
    return m


def weights(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def ext_tensor(name, dims, location):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in location.items():
        e = t.external_data.add()
        e.key, e.value = k, str(v)
    return t


def conv_on(w):
    return model([helper.make_node("Conv", ["input", "W"], ["out"], name="conv")], [w])


def save(m, path):
    data = m if isinstance(m, bytes) else m.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def shape_chain_reshape(gather_index):
    """input [N,4,8,8] -> Shape -> Gather(index) -> Unsqueeze -> Concat([idx, -1]) -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["input"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "idx"], ["n"], name="gather_dim", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["input", "target"], ["out"], name="reshape"),
    ]
    return model(nodes, [numpy_helper.from_array(np.array(gather_index, np.int64), "idx"), ints("axes", [0]),
                         ints("minus1", [-1])], input_shape=("batch", 4, 8, 8))


def hostile(out):
    ext = os.path.join(out, "ext")
    os.makedirs(ext, exist_ok=True)
    cases = []

    def case(rel, m, *expect):
        save(m, os.path.join(out, rel))
        cases.append((rel, list(expect)))

    # --- external data escaping the model directory (the model lives in ext/) ---
    w_bytes = np.ones((2, 1, 3, 3), np.float32).tobytes()
    with open(os.path.join(out, "outside.bin"), "wb") as f:
        f.write(w_bytes)
    links = {"dirlink": os.path.join("..", "."),          # a symlinked directory pointing up
             "chain1.bin": "chain2.bin",                  # a chain ending outside
             "chain2.bin": os.path.join("..", "outside.bin")}
    for name, target in links.items():
        p = os.path.join(ext, name)
        if os.path.lexists(p):
            os.remove(p)
        os.symlink(target, p)
    hard = os.path.join(ext, "hardlink.bin")
    if os.path.lexists(hard):
        os.remove(hard)
    os.link(os.path.join(out, "outside.bin"), hard)      # same inode as ../outside.bin
    loc = lambda location, **kw: dict(location=location, **kw)  # noqa: E731
    case("ext/symlink_dir.onnx", conv_on(ext_tensor("W", [2, 1, 3, 3], loc("dirlink/outside.bin"))),
         "'W'", "outside the model directory")
    case("ext/symlink_chain.onnx", conv_on(ext_tensor("W", [2, 1, 3, 3], loc("chain1.bin"))),
         "'W'", "outside the model directory")
    case("ext/hardlink.onnx", conv_on(ext_tensor("W", [2, 1, 3, 3], loc("hardlink.bin"))), "'W'", "hard link")
    with open(os.path.join(ext, "inside.bin"), "wb") as f:
        f.write(w_bytes)
    case("ext/huge_length.onnx", conv_on(ext_tensor("W", [2, 1, 3, 3], loc("inside.bin", length=2 ** 62))),
         "'W'", "length")
    case("ext/huge_offset.onnx", conv_on(ext_tensor("W", [2, 1, 3, 3], loc("inside.bin", offset=2 ** 63 - 8))),
         "'W'", "past the end")

    # --- huge declared lengths ---
    # A graph field (ModelProto.graph = 7, length-delimited) claiming 2 GB in a 20-byte file.
    case("huge_field_length.onnx", b"\x08\x07" + b"\x3a" + varint(2 ** 31 - 1) + b"\x0a\x04conv", "not a valid ONNX model")
    t = TensorProto()
    t.name, t.data_type = "W", TensorProto.FLOAT
    t.dims.extend([2 ** 20, 2 ** 20])  # 4 TiB declared, 16 bytes present
    t.raw_data = b"\0" * 16
    case("huge_raw_dims.onnx", conv_on(t), "'W'")

    # --- shape-product overflow ---
    t = TensorProto()
    t.name, t.data_type = "W", TensorProto.FLOAT
    t.dims.extend([2 ** 31, 2 ** 31, 2 ** 31, 8])  # product wraps int64 to 0
    case("dims_product_wraps.onnx", conv_on(t), "'W'")
    case("input_overflow.onnx", model([helper.make_node("Relu", ["input"], ["out"], name="relu")],
                                      input_shape=(2 ** 32, 2 ** 32, 2 ** 32, 1)), "too many elements")
    case("reshape_overflow.onnx",
         model([helper.make_node("Reshape", ["input", "shape"], ["out"], name="reshape_big")],
               [ints("shape", [2 ** 40, 2 ** 40, 0, 1])]), "node 'reshape_big'")

    # --- a 1x3x100000x100000 input (120 GB of floats): refused at plan time, not allocated ---
    case("input_1x3x100000x100000.onnx",
         model([helper.make_node("Conv", ["input", "W"], ["out"], name="conv", pads=[1, 1, 1, 1])],
               [weights("W", (4, 3, 3, 3))], input_shape=(1, 3, 100000, 100000)), "memory")

    # --- shape logic ---
    case("reshape_two_minus1.onnx",
         model([helper.make_node("Reshape", ["input", "shape"], ["out"], name="reshape_two")],
               [ints("shape", [-1, -1, 8])]), "node 'reshape_two'", "-1")
    case("gather_out_of_range_shape_chain.onnx", shape_chain_reshape(7), "node 'gather_dim'", "7")
    case("gather_negative_out_of_range.onnx", shape_chain_reshape(-9), "node 'gather_dim'", "-9")

    m = conv_on(weights("W", (2, 1, 3, 3)))
    m.opset_import[0].version = 99
    case("opset99.onnx", m, "opset 99")

    # --- rank over the limit ---
    case("rank_40.onnx", model([helper.make_node("Transpose", ["input"], ["out"], name="transpose_deep")],
                               input_shape=[1] * 40), "rank")

    with open(os.path.join(out, "expected.txt"), "w") as f:
        for rel, expect in cases:
            f.write("  ".join([rel] + expect) + "\n")


def seeds(out):
    """Small models covering every supported op family, plus broken ones; a few KB each."""
    os.makedirs(out, exist_ok=True)
    n = helper.make_node
    x = ("batch", 2, 6, 6)
    w = lambda name, shape, s=0: weights(name, shape, s)  # noqa: E731
    corpus = {
        "conv_relu_pool_gemm": model(
            [n("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"), n("Relu", ["c"], ["r"], name="relu"),
             n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             n("GlobalAveragePool", ["p"], ["g"], name="gap"), n("Flatten", ["g"], ["f"], name="flat"),
             n("Gemm", ["f", "B", "C"], ["out"], transB=1, name="fc")],
            [w("W", (3, 2, 3, 3)), w("B", (4, 3), 1), w("C", (4,), 2)], input_shape=x),
        "conv_group_dilation_bn": model(
            [n("Conv", ["input", "W", "b"], ["c"], group=2, dilations=[2, 2], pads=[2, 2, 2, 2], name="conv"),
             n("BatchNormalization", ["c", "s", "bb", "m", "v"], ["bn"], name="bn"),
             n("LeakyRelu", ["bn"], ["out"], alpha=0.1, name="lrelu")],
            [w("W", (4, 1, 3, 3)), w("b", (4,), 1), w("s", (4,), 2), w("bb", (4,), 3), w("m", (4,), 4),
             numpy_helper.from_array(np.ones(4, np.float32), "v")], input_shape=x),
        "residual_add_pool": model(
            [n("Conv", ["input", "W"], ["c"], pads=[1, 1, 1, 1], name="conv"), n("Add", ["c", "input"], ["a"], name="add"),
             n("Relu", ["a"], ["r"], name="relu"),
             n("AveragePool", ["r"], ["out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0, name="avg")],
            [w("W", (2, 2, 3, 3))], input_shape=x),
        "shape_chain_reshape": shape_chain_reshape(0),
        "movement": model(
            [n("Transpose", ["input"], ["t"], perm=[0, 2, 3, 1], name="tr"),
             n("Slice", ["t", "st", "en", "ax"], ["s"], name="slice"),
             n("Pad", ["s", "pads"], ["p"], mode="constant", name="pad"),
             n("Concat", ["p", "p"], ["c"], axis=3, name="concat"),
             n("Squeeze", ["c", "sq"], ["out"], name="squeeze")],
            [ints("st", [1]), ints("en", [5]), ints("ax", [1]), ints("pads", [0, 0, 0, 0, 0, 1, 1, 0]), ints("sq", [0])],
            input_shape=(1, 2, 6, 6)),
        "softmax_reduce_math": model(
            [n("Flatten", ["input"], ["f"], name="flat"), n("MatMul", ["f", "M"], ["mm"], name="mm"),
             n("Sigmoid", ["mm"], ["sg"], name="sig"), n("Mul", ["sg", "mm"], ["mu"], name="mul"),
             n("Sub", ["mu", "k"], ["su"], name="sub"), n("Div", ["su", "k"], ["dv"], name="div"),
             n("Tanh", ["dv"], ["th"], name="tanh"), n("Clip", ["th", "lo", "hi"], ["cl"], name="clip"),
             n("Softmax", ["cl"], ["sm"], axis=-1, name="softmax"), n("LogSoftmax", ["sm"], ["ls"], name="logsoftmax"),
             n("ReduceMean", ["ls"], ["out"], axes=[1], keepdims=1, name="mean")],
            [w("M", (72, 5)), numpy_helper.from_array(np.array(2.0, np.float32), "k"),
             numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
             numpy_helper.from_array(np.array(0.5, np.float32), "hi")], input_shape=x),
        "lrn_gmp_sum": model(
            [n("LRN", ["input"], ["l"], size=3, name="lrn"), n("GlobalMaxPool", ["l"], ["g"], name="gmp"),
             n("Sum", ["g", "g", "g"], ["out"], name="sum")], input_shape=x),
        "constants_cast_unsqueeze": model(
            [n("Constant", [], ["k"], value=numpy_helper.from_array(np.array([1.5], np.float32)), name="const"),
             n("ConstantOfShape", ["cs"], ["z"], value=numpy_helper.from_array(np.array([0.25], np.float32)), name="cos"),
             n("Add", ["input", "k"], ["a"], name="add"), n("Add", ["a", "z"], ["a2"], name="add2"),
             n("Dropout", ["a2"], ["d"], name="drop"), n("Identity", ["d"], ["i"], name="id"),
             n("Unsqueeze", ["i", "ax"], ["out"], name="unsq")],
            [ints("cs", [1, 2, 6, 6]), ints("ax", [0])], input_shape=(1, 2, 6, 6)),
        "reshape_two_minus1": model([n("Reshape", ["input", "shape"], ["out"], name="reshape")], [ints("shape", [-1, -1])],
                                    input_shape=x),
        "gather_oob": shape_chain_reshape(7),
    }
    m = conv_on(weights("W", (2, 1, 3, 3)))
    m.opset_import[0].version = 99
    corpus["opset99"] = m
    for name, mm in corpus.items():
        save(mm, os.path.join(out, name + ".onnx"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", dest="out")
    ap.add_argument("--seeds")
    a = ap.parse_args()
    if not a.out and not a.seeds:
        sys.exit(__doc__)
    if a.seeds:
        seeds(a.seeds)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        hostile(a.out)
        with open(__file__, "rb") as f:
            stamp = hashlib.sha256(f.read()).hexdigest()
        with open(os.path.join(a.out, ".stamp"), "w") as f:  # last: generate_all.sh's "done" marker
            f.write(stamp + "\n")


if __name__ == "__main__":
    main()

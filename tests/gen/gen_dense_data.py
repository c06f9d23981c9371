#!/usr/bin/python3
"""Reference data for dense scoring (convoy dense / convert --fc-to-conv), from PyTorch and
ONNX Runtime only (never from convoy).

Writes into OUT (default $CONVOY_TEST_DATA/dense):
  unpadded_op13.onnx         AlexNet-style net, 227x227, no padding anywhere (conv 11/4, pools
                             3/2, convs 5 and 3, head Flatten-Dropout-Gemm-ReLU-Gemm-ReLU-Gemm-
                             Softmax); total stride 32, last map 3x3. Dynamic batch.
  unpadded.in_227.npy / .ref_227.npy           one 227x227 input, PyTorch output [1,10]
  unpadded.in_<H>x<W>.npy                      inputs at 355x355 and 291x387
  unpadded.crops_<H>x<W>.npy                   [1,10,Ho,Wo]: cell (i,j) = PyTorch score of the
                                               227x227 crop with top-left (32i, 32j) alone
  unpadded.crops16_355x355.npy                 same at stride 16 (crop top-left (16i, 16j))
  <net>.in_384.npy                             alexnet, resnet18, vgg16: a 384x384 input
  <net>.torch_384.npy                          PyTorch dense map [1,1000,6,6] of the net with its
                                               head converted by hand (this script's own FC-to-
                                               conv: Linear -> Conv2d, adaptive pool -> identity
                                               or a 7x7 stride-1 AvgPool)
  <net>.ort_384.npy                            ONNX Runtime on that hand-converted net, exported
                                               with dynamic H, W (checked equal to PyTorch)
  <net>.crops_384.npy                          [1,1000,6,6]: the ORIGINAL net scoring each of
                                               the 36 224x224 crops (top-left (32i, 32j)) alone
  alexnet.ort_s16_384.npy                      [1,1000,11,11]: ONNX Runtime dense maps of the
                                               shifted inputs x[:, :, 16a:, 16b:] (a, b in 0, 1)
                                               interleaved: cell (2i+a, 2j+b) = pass (a,b) cell (i,j)
  demo.in.npy / demo.ort.npy                   [2,1,28,28] seeded input and ONNX Runtime's output
                                               of models/demo/fashion_cnn.onnx (unconverted)
  bad_head_op13.onnx                           conv trunk + a head FC-to-conv must refuse
                                               (Flatten -> Gemm -> ReduceMean -> Sub)
  .stamp                                       sha256 of this script, written last

The torchvision nets are rebuilt with tests/gen/export_torchvision.py's seeds (same weights as
models/<net>_op*.onnx; checked against models/<net>.ref_b1.npy when present). ONNX Runtime runs
through tests/gen/ort_run.js (onnxruntime-node, see tools/setup_ort.sh).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_torchvision  # noqa: E402  (same seeds -> same weights as the exported models)

ROOT = os.path.dirname(os.path.dirname(HERE))
DENSE_SIZES = [(355, 355), (291, 387)]


class Unpadded(nn.Module):
    """227 -> conv11/4 55 -> pool3/2 27 -> conv5 23 -> pool3/2 11 -> conv3 9 -> conv3 7 -> pool3/2 3."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 48, 3), nn.ReLU(),
            nn.Conv2d(48, 32, 3), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(32 * 3 * 3, 64), nn.ReLU(),
            nn.Dropout(0.5), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class BadHead(nn.Module):
    """A head that is not per-position: scores minus their mean over classes, computed on the
    flat vector (ReduceMean + Sub after the Gemm; ops convoy runs, but FC-to-conv must refuse)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        y = self.fc(torch.flatten(self.features(x), 1))
        return y - y.mean(dim=1, keepdim=True)


def linear_to_conv(lin, c, k):
    conv = nn.Conv2d(c, lin.out_features, k)
    with torch.no_grad():
        conv.weight.copy_(lin.weight.view(lin.out_features, c, k, k))
        conv.bias.copy_(lin.bias)
    return conv


def hand_converted(name, model):
    """The net with its FC head as convolutions, written independently of convoy's pass."""
    if name in ("alexnet", "vgg16"):
        c, k = (256, 6) if name == "alexnet" else (512, 7)
        head = []
        first = True
        for m in model.classifier:
            if isinstance(m, nn.Linear):
                head.append(linear_to_conv(m, c, k) if first else linear_to_conv(m, m.in_features, 1))
                first = False
            elif isinstance(m, nn.ReLU):
                head.append(nn.ReLU())
        # AdaptiveAvgPool2d((k, k)) is the identity at the training size: dropped.
        return nn.Sequential(model.features, *head).eval()
    if name == "resnet18":
        trunk = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                              model.layer1, model.layer2, model.layer3, model.layer4)
        return nn.Sequential(trunk, nn.AvgPool2d(7, stride=1), linear_to_conv(model.fc, 512, 1)).eval()
    raise ValueError(name)


def crops(model, x, size, stride, rows, cols):
    """[1,K,rows,cols]: model applied to each size x size crop of x with top-left (stride*i, stride*j)."""
    out = None
    with torch.no_grad():
        for i in range(rows):
            batch = torch.cat([x[:, :, stride * i:stride * i + size, stride * j:stride * j + size]
                               for j in range(cols)])
            y = model(batch).numpy()
            if out is None:
                out = np.zeros((1, y.shape[1], rows, cols), np.float32)
            out[0, :, i, :] = y.T
    return out


def ort_run(model_path, pairs):
    cmd = ["node", os.path.join(HERE, "ort_run.js"), model_path]
    for i, o in pairs:
        cmd += [i, o]
    subprocess.run(cmd, check=True)


def check_close(what, got, ref, tol=1e-4):
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(got - ref).max()) / scale
    print(f"  {what}: max|diff|/max|ref| = {err:.2e}", flush=True)
    if got.shape != ref.shape or err > tol:
        sys.exit(f"gen_dense_data: {what}: shapes {got.shape} vs {ref.shape}, rel err {err:.3g}")


def export_dynamic_hw(model, path, size, opset=13):
    torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=opset,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                    "output": {0: "batch", 2: "rows", 3: "cols"}})


def unpadded(out):
    torch.manual_seed(301)
    model = Unpadded().eval()
    # He init keeps activations at unit scale through the stack, so cell scores differ clearly
    # (PyTorch's default init shrinks them to near-uniform softmax outputs).
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.normal_(m.bias, std=0.1)
    path = os.path.join(out, "unpadded_op13.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 227, 227), path, opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    onnx.checker.check_model(path)
    rng = np.random.default_rng(301)
    x = rng.standard_normal((1, 3, 227, 227), dtype=np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    np.save(os.path.join(out, "unpadded.in_227.npy"), x)
    np.save(os.path.join(out, "unpadded.ref_227.npy"), y)
    for h, w in DENSE_SIZES:
        x = rng.standard_normal((1, 3, h, w), dtype=np.float32)
        np.save(os.path.join(out, f"unpadded.in_{h}x{w}.npy"), x)
        t = torch.from_numpy(x)
        ref = crops(model, t, 227, 32, (h - 227) // 32 + 1, (w - 227) // 32 + 1)
        np.save(os.path.join(out, f"unpadded.crops_{h}x{w}.npy"), ref)
        print(f"  unpadded {h}x{w}: crop grid {ref.shape[2]}x{ref.shape[3]}", flush=True)
        if (h, w) == (355, 355):
            ref16 = crops(model, t, 227, 16, (h - 227) // 16 + 1, (w - 227) // 16 + 1)
            np.save(os.path.join(out, f"unpadded.crops16_{h}x{w}.npy"), ref16)


def padded(out, name):
    t0 = time.time()
    model, seed = export_torchvision.build(name)
    data = os.path.dirname(out.rstrip("/"))
    ref_b1 = os.path.join(data, "models", f"{name}.ref_b1.npy")
    if os.path.exists(ref_b1):  # same weights as the exported models
        x224 = np.load(os.path.join(data, "models", f"{name}.in_b1.npy"))
        with torch.no_grad():
            check_close(f"{name} rebuilt vs models/{name}.ref_b1", model(torch.from_numpy(x224)).numpy(), np.load(ref_b1))
    dense = hand_converted(name, model)
    rng = np.random.default_rng(seed + 500)
    x = rng.standard_normal((1, 3, 384, 384), dtype=np.float32)
    t = torch.from_numpy(x)
    with torch.no_grad():
        x224 = t[:, :, :224, :224]
        check_close(f"{name} hand-converted 1x1 at 224", dense(x224).numpy().reshape(1, -1), model(x224).numpy())
        y = dense(t).numpy()
    np.save(os.path.join(out, f"{name}.in_384.npy"), x)
    np.save(os.path.join(out, f"{name}.torch_384.npy"), y)
    np.save(os.path.join(out, f"{name}.crops_384.npy"), crops(model, t, 224, 32, 6, 6))

    onnx_path = os.path.join(out, f"{name}.hand_dense.onnx")
    export_dynamic_hw(dense, onnx_path, 224)
    pairs = [(os.path.join(out, f"{name}.in_384.npy"), os.path.join(out, f"{name}.ort_384.npy"))]
    if name == "alexnet":
        for a in (0, 1):
            for b in (0, 1):
                np.save(os.path.join(out, f"alexnet.shift{a}{b}.npy"), np.ascontiguousarray(x[:, :, 16 * a:, 16 * b:]))
                pairs.append((os.path.join(out, f"alexnet.shift{a}{b}.npy"), os.path.join(out, f"alexnet.shift{a}{b}_ort.npy")))
    ort_run(onnx_path, pairs)
    check_close(f"{name} ORT vs PyTorch dense 384", np.load(pairs[0][1]), y)
    if name == "alexnet":
        maps = {(a, b): np.load(os.path.join(out, f"alexnet.shift{a}{b}_ort.npy")) for a in (0, 1) for b in (0, 1)}
        rows = min(maps[(a, 0)].shape[2] * 2 + a for a in (0, 1))
        cols = min(maps[(0, b)].shape[3] * 2 + b for b in (0, 1))
        s16 = np.zeros((1, y.shape[1], rows, cols), np.float32)
        for r in range(rows):
            for c in range(cols):
                s16[0, :, r, c] = maps[(r % 2, c % 2)][0, :, r // 2, c // 2]
        np.save(os.path.join(out, "alexnet.ort_s16_384.npy"), s16)
        print(f"  alexnet stride 16 at 384: {rows}x{cols}", flush=True)
        for a in (0, 1):
            for b in (0, 1):
                os.remove(os.path.join(out, f"alexnet.shift{a}{b}.npy"))
                os.remove(os.path.join(out, f"alexnet.shift{a}{b}_ort.npy"))
    os.remove(onnx_path)
    print(f"{name}: {time.time() - t0:.1f} s", flush=True)


def demo(out):
    model = os.path.join(ROOT, "models", "demo", "fashion_cnn.onnx")
    rng = np.random.default_rng(401)
    x = rng.standard_normal((2, 1, 28, 28), dtype=np.float32)
    np.save(os.path.join(out, "demo.in.npy"), x)
    ort_run(model, [(os.path.join(out, "demo.in.npy"), os.path.join(out, "demo.ort.npy"))])


def bad_head(out):
    torch.manual_seed(302)
    path = os.path.join(out, "bad_head_op13.onnx")
    torch.onnx.export(BadHead().eval(), torch.zeros(1, 3, 32, 32), path, opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    ops = [n.op_type for n in onnx.load(path).graph.node]
    if "ReduceMean" not in ops:
        sys.exit(f"gen_dense_data: bad_head exported without ReduceMean: {ops}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = os.path.join(os.environ.get("CONVOY_TEST_DATA",
                                              os.path.expanduser("~/.cache/convoy-testdata")), "dense")
    ap.add_argument("-o", "--out", default=default_out)
    args = ap.parse_args()

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    stamp = os.path.join(args.out, ".stamp")
    if os.path.exists(stamp):
        os.remove(stamp)
    t0 = time.time()
    unpadded(args.out)
    bad_head(args.out)
    demo(args.out)
    for name in ("alexnet", "resnet18", "vgg16"):
        padded(args.out, name)

    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    print(f"gen_dense_data: done in {time.time() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()

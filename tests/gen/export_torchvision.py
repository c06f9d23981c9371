#!/usr/bin/python3
"""Export seeded torchvision CNNs to ONNX with PyTorch reference outputs (convoy test data).

Writes into OUT (default $CONVOY_TEST_DATA/models, see the cache layout in docs):
  <name>_op<opset>.onnx          dynamic batch: input "input" / output "output", dim 0 "batch"
  <name>.in_b1.npy, .in_b3.npy   float32 seeded inputs [B,3,224,224]
  <name>.ref_b1.npy, .ref_b3.npy PyTorch eval-mode outputs for those inputs (shared by opsets)
  list.txt                       "<name> <opset> <file>" per exported file
  .stamp                         sha256 of this script, written last (only after success)

Models: alexnet, vgg16, resnet18, resnet50 at opsets 9, 11, 13, 17 (torch 1.13 exports up to
17); vgg16_bn, matmul_head and bn_kept at opset 13. Weights are torchvision's random init
(weights=None) under torch.manual_seed(<fixed per model>); BatchNorm running statistics and
affine parameters are then randomised too (seeded), so BN folding is actually exercised instead
of folding an identity.

bn_kept is exported with training=PRESERVE and do_constant_folding=False from an eval-mode
model: torch skips its eval-mode Conv+BN fusion, so BatchNormalization nodes stay in the
ONNX (checked below).
"""
import argparse
import hashlib
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision

OPSETS = (9, 11, 13, 17)
TORCHVISION = {  # name -> (constructor, seed)
    "alexnet": (torchvision.models.alexnet, 101),
    "vgg16": (torchvision.models.vgg16, 102),
    "resnet18": (torchvision.models.resnet18, 103),
    "resnet50": (torchvision.models.resnet50, 104),
    "vgg16_bn": (torchvision.models.vgg16_bn, 105),
}


class MatMulHead(nn.Module):
    """Conv trunk whose head is view(N, -1) then torch.matmul + bias: exports as the dynamic
    Shape/Gather/Unsqueeze/Concat/Reshape chain followed by MatMul and Add (no Gemm)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 56x56
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(4),   # 7x7
        )
        self.w = nn.Parameter(torch.randn(16 * 7 * 7, 10) * 0.05)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return torch.matmul(x, self.w) + self.b


class BnKept(nn.Module):
    """Conv/BN/ReLU blocks, one BN straight after a pool (no Conv to fold into), GAP + Linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(16),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


CUSTOM = {  # name -> (constructor, seed)
    "matmul_head": (MatMulHead, 201),
    "bn_kept": (BnKept, 202),
}


def randomise_batchnorm(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def build(name):
    ctor, seed = TORCHVISION[name] if name in TORCHVISION else CUSTOM[name]
    torch.manual_seed(seed)
    model = ctor(weights=None) if name in TORCHVISION else ctor()
    randomise_batchnorm(model, seed + 1000)
    return model.eval(), seed


def export(model, path, opset, keep_bn=False):
    extra = {}
    if keep_bn:
        extra = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path, opset_version=opset,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **extra)
    m = onnx.load(path)
    # Large models are checked by path (the checker refuses in-memory protos over 2 GB).
    onnx.checker.check_model(path)
    ops = {n.op_type for n in m.graph.node}
    if keep_bn and "BatchNormalization" not in ops:
        sys.exit(f"{path}: BatchNormalization was folded away; expected it kept")
    dims = m.graph.input[0].type.tensor_type.shape.dim
    if dims[0].dim_param != "batch":
        sys.exit(f"{path}: input dim 0 is not the dynamic 'batch'")
    return sorted(ops)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = os.path.join(os.environ.get("CONVOY_TEST_DATA",
                                              os.path.expanduser("~/.cache/convoy-testdata")), "models")
    ap.add_argument("-o", "--out", default=default_out)
    args = ap.parse_args()

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    stamp = os.path.join(args.out, ".stamp")
    if os.path.exists(stamp):
        os.remove(stamp)

    plan = [(n, OPSETS) for n in ("alexnet", "vgg16", "resnet18", "resnet50")]
    plan += [("vgg16_bn", (13,)), ("matmul_head", (13,)), ("bn_kept", (13,))]
    lines = []
    t_all = time.time()
    for name, opsets in plan:
        t0 = time.time()
        model, seed = build(name)
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for b in (1, 3):
                x = rng.standard_normal((b, 3, 224, 224), dtype=np.float32)
                y = model(torch.from_numpy(x)).numpy().astype(np.float32)
                np.save(os.path.join(args.out, f"{name}.in_b{b}.npy"), x)
                np.save(os.path.join(args.out, f"{name}.ref_b{b}.npy"), y)
        for opset in opsets:
            file = f"{name}_op{opset}.onnx"
            ops = export(model, os.path.join(args.out, file), opset, keep_bn=(name == "bn_kept"))
            lines.append(f"{name} {opset} {file}")
            print(f"  {file}: {' '.join(ops)}", flush=True)
        print(f"{name}: {time.time() - t0:.1f} s, max|ref| {np.abs(y).max():.4g}", flush=True)

    with open(os.path.join(args.out, "list.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    print(f"export_torchvision: {len(lines)} models in {time.time() - t_all:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()

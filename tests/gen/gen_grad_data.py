#!/usr/bin/python3
"""PyTorch autograd gradients for the backward kernels (tests/test_grad_torch.cpp).

Writes into OUT (default $CONVOY_TEST_DATA/grad), every array float32 .npy:
  <case>.params.npy    the case's parameters (layout per family below)
  <case>.<name>.npy    inputs (x, w, dy, ...) and PyTorch's results (y, dx, dw, db, ...)
  cases.txt            one line per case: "<family> <case>"
  .stamp               sha256 of this script, written last

Families and their params:
  conv     [N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw]; x, w, b, dy -> dx, dw, db
           (asymmetric pads through F.pad, so the gradient of the padding is PyTorch's too)
  linear   [N, IN, OUT]; x, w [OUT, IN], b, dy -> dx, dw, db
  maxpool  [N, C, H, W, KH, KW, sh, sw, pt, pl, ceil_mode]; x, dy -> y, dx   (output shape from y)
  avgpool  [N, C, H, W, KH, KW, sh, sw, pt, pl, ceil_mode, count_include_pad]; x, dy -> y, dx
  gap      [N, C, H, W] (AdaptiveAvgPool2d(1)); x, dy -> dx
  lrn      [N, C, H, W, size, alpha, beta, k] (nn.LocalResponseNorm, odd size: the same window
           as ONNX LRN; for even sizes PyTorch puts the longer half before c, ONNX after); x, dy -> dx
  relu     [count, alpha] (alpha < 0: Relu, else LeakyRelu(alpha)); x, dy -> y, dx
  dropout  [count, p]; x, mask (0 or 1/(1-p)), dy -> dx   (y = x * mask)
  xent     [N, K]; logits, labels -> loss [1], dlogits   (nn.CrossEntropyLoss, mean)
  sgd      [count, lr, momentum, weight_decay]; w0, g1, g2 -> w2, v2   (torch.optim.SGD, two steps)

Gradients are computed in float64 from the float32 inputs (a reference, not a float32 rerun),
except SGD, which runs on float32 parameters as in training.
"""
import argparse
import hashlib
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT_DEFAULT = os.path.join(os.environ.get("CONVOY_TEST_DATA", os.path.expanduser("~/.cache/convoy-testdata")), "grad")


class Writer:
    def __init__(self, out):
        self.out = out
        self.cases = []

    def case(self, family, name, params, arrays):
        self.cases.append((family, name))
        np.save(os.path.join(self.out, f"{name}.params.npy"), np.asarray(params, dtype=np.float32))
        for key, value in arrays.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            np.save(os.path.join(self.out, f"{name}.{key}.npy"), np.ascontiguousarray(np.asarray(value, dtype=np.float32)))

    def finish(self):
        with open(os.path.join(self.out, "cases.txt"), "w") as f:
            for family, name in self.cases:
                f.write(f"{family} {name}\n")


def rand(*shape, lo=-1.0, hi=1.0):
    """Seeded float32 uniform values, returned as a float64 tensor holding exactly those values."""
    return (torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo).double()


def leaf(t):
    return t.clone().requires_grad_(True)


def conv_case(wr, name, N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw):
    x, w, b = leaf(rand(N, C, H, W)), leaf(rand(M, C // group, KH, KW)), leaf(rand(M))
    y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=(sh, sw), dilation=(dh, dw), groups=group)
    dy = rand(*y.shape)
    y.backward(dy)
    wr.case("conv", name, [N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw],
            dict(x=x, w=w, b=b, dy=dy, dx=x.grad, dw=w.grad, db=b.grad))


def pool_case(wr, name, kind, N, C, H, W, KH, KW, sh, sw, pt, pl, ceil_mode, cip=False, ties=False):
    x0 = rand(N, C, H, W, lo=-4, hi=4)
    if ties:
        x0 = torch.floor(x0 * 0.5)  # few distinct values: PyTorch's first-maximum rule decides
    x = leaf(x0)
    if kind == "maxpool":
        y = F.max_pool2d(x, (KH, KW), (sh, sw), (pt, pl), ceil_mode=ceil_mode)
        params = [N, C, H, W, KH, KW, sh, sw, pt, pl, int(ceil_mode)]
    else:
        y = F.avg_pool2d(x, (KH, KW), (sh, sw), (pt, pl), ceil_mode=ceil_mode, count_include_pad=cip)
        params = [N, C, H, W, KH, KW, sh, sw, pt, pl, int(ceil_mode), int(cip)]
    dy = rand(*y.shape)
    y.backward(dy)
    wr.case(kind, name, params, dict(x=x, dy=dy, y=y, dx=x.grad))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default=OUT_DEFAULT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    stamp = os.path.join(args.out, ".stamp")
    if os.path.exists(stamp):
        os.remove(stamp)
    torch.manual_seed(20240611)
    wr = Writer(args.out)

    # Convolutions: N, C, H, W, M, KH, KW, group, sh, sw, pt, pl, pb, pr, dh, dw
    conv_case(wr, "conv_3x3", 2, 3, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    conv_case(wr, "conv_groups_stride_asym", 2, 4, 11, 10, 6, 3, 3, 2, 2, 2, 1, 0, 2, 1, 1, 1)
    conv_case(wr, "conv_depthwise_s2", 2, 8, 13, 13, 8, 3, 3, 8, 2, 2, 1, 1, 1, 1, 1, 1)
    conv_case(wr, "conv_dilation2", 1, 5, 14, 15, 7, 3, 3, 1, 1, 1, 2, 2, 2, 2, 2, 2)
    conv_case(wr, "conv_1x1", 2, 16, 7, 7, 8, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1)
    conv_case(wr, "conv_stem_11x11_s4", 2, 3, 35, 35, 16, 11, 11, 1, 4, 4, 2, 2, 2, 2, 1, 1)
    conv_case(wr, "conv_tiled", 1, 24, 20, 20, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)

    # Linear (nn.Linear: y = x w^T + b)
    for name, (N, IN, OUT) in {"linear_small": (4, 9, 5), "linear_fc": (8, 256, 10)}.items():
        x, w, b = leaf(rand(N, IN)), leaf(rand(OUT, IN)), leaf(rand(OUT))
        y = F.linear(x, w, b)
        dy = rand(N, OUT)
        y.backward(dy)
        wr.case("linear", name, [N, IN, OUT], dict(x=x, w=w, b=b, dy=dy, dx=x.grad, dw=w.grad, db=b.grad))

    # Pooling: N, C, H, W, KH, KW, sh, sw, pt, pl, ceil_mode[, count_include_pad]
    pool_case(wr, "maxpool_3x3s2", "maxpool", 2, 3, 13, 13, 3, 3, 2, 2, 0, 0, False)
    pool_case(wr, "maxpool_3x3s2_pad_ceil", "maxpool", 2, 3, 14, 15, 3, 3, 2, 2, 1, 1, True)
    pool_case(wr, "maxpool_2x2_ceil", "maxpool", 1, 4, 9, 11, 2, 2, 2, 2, 0, 0, True)
    pool_case(wr, "maxpool_3x3s2_ties", "maxpool", 2, 3, 13, 12, 3, 3, 2, 2, 1, 1, False, ties=True)
    pool_case(wr, "avgpool_3x3s2_pad_ceil_cip", "avgpool", 2, 3, 14, 15, 3, 3, 2, 2, 1, 1, True, cip=True)
    pool_case(wr, "avgpool_3x3s2_pad_ceil_nocip", "avgpool", 2, 3, 14, 15, 3, 3, 2, 2, 1, 1, True, cip=False)
    pool_case(wr, "avgpool_2x2", "avgpool", 1, 4, 8, 10, 2, 2, 2, 2, 0, 0, False)
    pool_case(wr, "avgpool_3x3s1_pad_nocip", "avgpool", 1, 2, 7, 9, 3, 3, 1, 1, 1, 1, False, cip=False)
    pool_case(wr, "avgpool_3x2s2_ceil_cip", "avgpool", 1, 2, 11, 12, 3, 2, 2, 3, 1, 0, True, cip=True)

    # Adaptive average pool to 1x1 (ResNet's head)
    x = leaf(rand(3, 7, 5, 6))
    y = F.adaptive_avg_pool2d(x, 1)
    dy = rand(*y.shape)
    y.backward(dy)
    wr.case("gap", "gap_5x6", [3, 7, 5, 6], dict(x=x, dy=dy, dx=x.grad))

    # LRN (AlexNet constants, and a large alpha where the cross-channel terms matter)
    for name, (N, C, H, W, size, alpha, beta, k) in {
        "lrn_alexnet": (2, 16, 5, 7, 5, 1e-4, 0.75, 2.0),
        "lrn_strong": (2, 9, 4, 5, 3, 2.0, 0.75, 1.0),
    }.items():
        x = leaf(rand(N, C, H, W))
        y = nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
        dy = rand(*y.shape)
        y.backward(dy)
        wr.case("lrn", name, [N, C, H, W, size, alpha, beta, k], dict(x=x, dy=dy, dx=x.grad))

    # Relu / LeakyRelu (the kernel reads the derivative from y)
    for name, alpha in {"relu": -1.0, "leaky_relu": 0.01}.items():
        x0 = rand(1000, lo=-2, hi=2)
        x0[::17] = 0.0  # the derivative at 0: 0 for Relu, alpha for LeakyRelu (PyTorch's choice)
        x = leaf(x0)
        y = F.relu(x) if alpha < 0 else F.leaky_relu(x, alpha)
        dy = rand(1000)
        y.backward(dy)
        wr.case("relu", name, [1000, alpha], dict(x=x, dy=dy, y=y, dx=x.grad))

    # Dropout backward with a given mask
    p = 0.3
    x = leaf(rand(777))
    mask = (torch.rand(777) >= p).double() / (1 - p)
    y = x * mask
    dy = rand(777)
    y.backward(dy)
    wr.case("dropout", "dropout_p03", [777, p], dict(x=x, mask=mask, dy=dy, dx=x.grad))

    # Cross-entropy (mean over the batch)
    for name, (N, K, scale) in {"xent_10": (16, 10, 3.0), "xent_1000": (4, 1000, 8.0)}.items():
        logits = leaf(rand(N, K, lo=-scale, hi=scale))
        labels = torch.randint(0, K, (N,))
        loss = nn.CrossEntropyLoss()(logits, labels)
        loss.backward()
        wr.case("xent", name, [N, K], dict(logits=logits, labels=labels.double(), loss=loss.reshape(1),
                                           dlogits=logits.grad))

    # SGD, two steps, float32 parameters as in training
    n = 1001
    w0 = torch.rand(n, dtype=torch.float32) * 2 - 1
    g1 = torch.rand(n, dtype=torch.float32) * 2 - 1
    g2 = torch.rand(n, dtype=torch.float32) * 2 - 1
    param = nn.Parameter(w0.clone())
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, weight_decay=5e-4)
    for g in (g1, g2):
        param.grad = g.clone()
        opt.step()
    v2 = opt.state[param]["momentum_buffer"]
    wr.case("sgd", "sgd_two_steps", [n, 0.1, 0.9, 5e-4], dict(w0=w0, g1=g1, g2=g2, w2=param, v2=v2))

    wr.finish()
    with open(os.path.abspath(__file__), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(stamp, "w") as f:
        f.write(digest + "\n")


if __name__ == "__main__":
    main()

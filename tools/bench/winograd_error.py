#!/usr/bin/python3
"""fp32 error of 2-D Winograd F(m x m, 3 x 3) for a choice of interpolation points.

Builds A^T, G and B^T exactly (rational arithmetic, Toom-Cook with the given finite points and
the point at infinity), then for random tiles (input ~ N(0, 1), weights ~ N(0, 0.05^2), C input
channels) compares Y = A^T [sum_c (G g G^T) . (B^T d B)] A computed in float32 (numpy, no special
summation order) with the float64 direct convolution. Prints, per point set, the median and the
largest of max|Y - direct| / max|direct| over the trials.

This is how docs/PERFORMANCE.md judges larger tiles: F(7x7, 3x3) would tile ResNet's 56/28/14/7
maps exactly, but its error per layer is far above F(4x4, 3x3)'s (the one convoy runs) next to
the 1e-4 * max|ref| bound that tests/test_models.cpp puts on whole-model outputs.

  tools/bench/winograd_error.py [--channels 256] [--trials 20]
"""
import argparse
from fractions import Fraction

import numpy as np


def polymul(a, b):
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for k, y in enumerate(b):
            out[i + k] += x * y
    return out


def transforms(points, m, r=3):
    """A^T (m x n), G (n x r), B^T (n x n) for F(m, r), n = m + r - 1 = len(points) + 1."""
    pts = [Fraction(p) for p in points]
    n = m + r - 1
    if len(pts) + 1 != n:
        raise ValueError(f"F({m},{r}) needs {n - 1} finite points, got {len(pts)}")
    at = [[p**i for p in pts] + [Fraction(1 if i == m - 1 else 0)] for i in range(m)]

    def norm(j):
        v = Fraction(1)
        for k, q in enumerate(pts):
            if k != j:
                v *= pts[j] - q
        return v

    g = [[pts[j] ** k / norm(j) for k in range(r)] for j in range(len(pts))]
    g.append([Fraction(0)] * (r - 1) + [Fraction(1)])
    bt = []
    for j in range(len(pts)):
        poly = [Fraction(1)]
        for k, q in enumerate(pts):
            if k != j:
                poly = polymul(poly, [-q, Fraction(1)])
        bt.append((poly + [Fraction(0)])[:n])
    full = [Fraction(1)]
    for q in pts:
        full = polymul(full, [-q, Fraction(1)])
    bt.append(full[:n])
    as_np = lambda mat: np.array([[float(x) for x in row] for row in mat])  # noqa: E731
    return as_np(at), as_np(g), as_np(bt)


def tile_error(points, m, channels, trials, seed=0):
    at, g, bt = (x.astype(np.float32) for x in transforms(points, m))
    n = m + 2
    rng = np.random.default_rng(seed)
    errs = []
    for _ in range(trials):
        d = rng.standard_normal((channels, n, n))
        w = rng.standard_normal((channels, 3, 3)) * 0.05
        ref = np.array([[np.sum(d[:, i:i + 3, j:j + 3] * w) for j in range(m)] for i in range(m)])
        u = np.einsum("ik,ckl,jl->cij", g, w.astype(np.float32), g).astype(np.float32)
        v = np.einsum("ik,ckl,jl->cij", bt, d.astype(np.float32), bt).astype(np.float32)
        y = at @ np.sum(u * v, axis=0, dtype=np.float32) @ at.T
        errs.append(float(np.max(np.abs(y - ref)) / np.max(np.abs(ref))))
    return float(np.median(errs)), max(errs)


CASES = [
    (4, [0, 1, -1, 2, -2]),
    (6, [0, 1, -1, 2, -2, 0.5, -0.5]),
    (7, [0, 1, -1, 2, -2, 0.5, -0.5, 3]),
    (7, [0, 1, -1, 2, -2, 0.5, -0.5, 0.25]),
    (7, [0, 1, -1, 2, -2, 0.5, -0.5, -1.5]),
    (7, [0, 1, -1, 2, -2, 0.5, -0.5, 0.75]),
    (7, [1, -1, 2, -2, 0.5, -0.5, 0.25, -0.25]),
    (7, [1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    print(f"{'F(m,3)':8} {'points (+ inf)':42} {'median':>10} {'max':>10}   (max|err| / max|y|, C = {args.channels})")
    for m, pts in CASES:
        med, worst = tile_error(pts, m, args.channels, args.trials)
        print(f"F({m},3)   {str(pts):42} {med:10.2e} {worst:10.2e}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Image folders for the `convoy finetune` tests (tests/test_finetune.cpp, tests/test_train_data.cpp).

  make_finetune_data.py -o OUTDIR

writes
  OUTDIR/fashion_kaggle/train/<class>.<n>.jpg  Kaggle layout: the Fashion-MNIST *test* images of
      "sneaker" (label 7) and "bag" (label 8), 1000 each, upscaled to 56x56 (bilinear), JPEG
      quality 95; plus two corrupt files: sneaker.corrupt.jpg (garbage bytes) and bag.empty.png
      (0 bytes).
  OUTDIR/pets_folders/<class>/<n>.png  one folder per class: 24 "horizontal" and 24 "vertical"
      224x224 RGB images of noisy sine stripes (random period 12-40 px, phase, two random
      colours, Gaussian noise sigma 40/255, a random slant of up to +-20 degrees), so the
      orientation is learnable but not a single-pixel rule.
  OUTDIR/.stamp  sha256 of this script, written last.
Deterministic (numpy seed 1234).
"""
import argparse
import gzip
import hashlib
import os
import sys

import numpy as np
from PIL import Image

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = {7: "sneaker", 8: "bag"}


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def make_fashion(out):
    images = read_idx(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    labels = read_idx(os.path.join(FASHION_DIR, "t10k-labels-idx1-ubyte.gz"), 8)
    d = os.path.join(out, "fashion_kaggle", "train")
    os.makedirs(d, exist_ok=True)
    for label, name in FASHION_CLASSES.items():
        idx = np.nonzero(labels == label)[0][:1000]
        for n, i in enumerate(idx):
            img = Image.fromarray(images[i], mode="L").resize((56, 56), Image.BILINEAR)
            img.save(os.path.join(d, f"{name}.{n}.jpg"), quality=95)
    with open(os.path.join(d, "sneaker.corrupt.jpg"), "wb") as f:
        f.write(np.random.RandomState(7).randint(0, 256, 3000, dtype=np.uint8).tobytes())
    open(os.path.join(d, "bag.empty.png"), "wb").close()


def make_pets(out, rng):
    size = 224
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    for cls in ("horizontal", "vertical"):
        d = os.path.join(out, "pets_folders", cls)
        os.makedirs(d, exist_ok=True)
        for n in range(24):
            period = rng.uniform(12, 40)
            phase = rng.uniform(0, 2 * np.pi)
            slant = np.deg2rad(rng.uniform(-20, 20))
            # Coordinate across the stripes: y for horizontal stripes, x for vertical ones.
            if cls == "horizontal":
                t = yy * np.cos(slant) + xx * np.sin(slant)
            else:
                t = xx * np.cos(slant) + yy * np.sin(slant)
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * t / period + phase)
            c0 = rng.uniform(0, 255, 3)
            c1 = rng.uniform(0, 255, 3)
            img = c0[None, None, :] * (1 - wave[..., None]) + c1[None, None, :] * wave[..., None]
            img += rng.normal(0, 40, img.shape)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB").save(os.path.join(d, f"{n:03d}.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.RandomState(1234)
    make_fashion(args.out)
    make_pets(args.out, rng)
    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(args.out, ".stamp"), "w") as f:
        f.write(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Make the dense-scoring demo image: Fashion-MNIST test items on a larger black canvas.

Writes into models/demo/ (or --out):
  collage.png    168x168 gray: a 4x4 grid of 28x28 t10k items, item (r, c) with its top-left
                 pixel at (8 + 40r, 8 + 40c) -- multiples of 8, the demo model's network stride,
                 so each item is exactly the crop behind one score-map cell -- and black gaps
  collage.json   {"size": [168, 168], "cell_stride": 40, "items": [{"row", "col", "x", "y",
                 "w", "h", "label", "class", "t10k_index"}, ...]}  (x, y: top-left pixel)

The items are the first t10k images of their class, placed by a fixed layout: four trousers
(the class the README's heat-map command shows) and one or two items of every other class but
Shirt (the class the model confuses most), so the image never changes.

  convoy dense models/demo/fashion_cnn.onnx models/demo/collage.png --class Trouser \
      --heatmap trouser_heat.png --json trouser.json

Run: /usr/bin/python3 models/make_collage.py   (a second; deterministic)
"""
import argparse
import gzip
import json
import os

import numpy as np
from PIL import Image

DATA_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
GRID = 4
PITCH = 40   # item pitch in pixels
MARGIN = 8
# Class of the item at each grid place, row by row (1 = Trouser).
LAYOUT = [
    [1, 0, 5, 9],
    [7, 1, 3, 8],
    [2, 4, 1, 7],
    [8, 9, 0, 1],
]


def read_idx(name, offset):
    with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo"))
    args = ap.parse_args()

    images = read_idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx("t10k-labels-idx1-ubyte.gz", 8)
    size = MARGIN + GRID * PITCH
    canvas = np.zeros((size, size), np.uint8)
    used = {c: 0 for c in range(10)}
    items = []
    for r in range(GRID):
        for c in range(GRID):
            cls = LAYOUT[r][c]
            index = int(np.flatnonzero(labels == cls)[used[cls]])  # the next unused item of the class
            used[cls] += 1
            y, x = MARGIN + PITCH * r, MARGIN + PITCH * c
            canvas[y:y + 28, x:x + 28] = images[index]
            items.append({"row": r, "col": c, "x": x, "y": y, "w": 28, "h": 28,
                          "label": LABELS[cls], "class": cls, "t10k_index": index})
    os.makedirs(args.out, exist_ok=True)
    Image.fromarray(canvas, mode="L").save(os.path.join(args.out, "collage.png"))
    with open(os.path.join(args.out, "collage.json"), "w") as f:
        json.dump({"size": [size, size], "cell_stride": PITCH, "items": items}, f, indent=1)
        f.write("\n")
    print(f"make_collage: {len(items)} items on a {size}x{size} canvas -> {args.out}/collage.png")


if __name__ == "__main__":
    main()

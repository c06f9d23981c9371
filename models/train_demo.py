#!/usr/bin/python3
"""Train convoy's demo model: a small AlexNet-style CNN on Fashion-MNIST.

Reads the IDX files of Debian's dataset-fashion-mnist directly, trains on the CPU (seeded,
deterministic), and writes into models/demo/:
  fashion_cnn.onnx   opset 13, input "input" [batch,1,28,28], output "logits" [batch,10],
                     convoy.* preprocessing metadata (docs: metadata keys in ARCHITECTURE.md)
  labels.txt         one class name per line, in output order
  samples/*.png      a few 28x28 test-set images named "<index>_<true label>.png"
  README.md          the test accuracy PyTorch measured

Run: /usr/bin/python3 models/train_demo.py   (about 5 minutes on 2 cores)
"""
import argparse
import gzip
import os
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

DATA_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN = 0.2860
STD = 0.3530
SEED = 1234


def read_idx(name, offset):
    with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_split(split):
    images = read_idx(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(f"{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    assert images.shape[0] == labels.shape[0]
    return images, labels


def normalise(images):
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return ((x - MEAN) / STD).unsqueeze(1)  # [N,1,28,28]


class FashionCNN(nn.Module):
    """AlexNet in miniature: conv blocks (Conv, BatchNorm, ReLU, MaxPool), then a dropout MLP."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                            # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                            # 7x7
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                            # 3x3
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 3 * 3, 128), nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def export(model, out_dir):
    path = os.path.join(out_dir, "fashion_cnn.onnx")
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, dummy, path, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(path)
    meta = {
        "convoy.input_size": "28x28",
        "convoy.channels": "1",
        "convoy.color": "gray",
        "convoy.scale": "255",
        "convoy.mean": f"{MEAN:.4f}",
        "convoy.std": f"{STD:.4f}",
        "convoy.labels": "\n".join(LABELS),
        "convoy.resize": "stretch",
    }
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.doc_string = "convoy demo: Fashion-MNIST classifier (models/train_demo.py)"
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo"))
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    train_img, train_lab = load_split("train")
    test_img, test_lab = load_split("t10k")
    x_train, y_train = normalise(train_img), torch.from_numpy(train_lab)
    x_test, y_test = normalise(test_img), torch.from_numpy(test_lab)

    model = FashionCNN()
    batch = 128
    steps_per_epoch = (x_train.shape[0] + batch - 1) // batch
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(x_train.shape[0], generator=gen)
        total = 0.0
        for i in range(0, x_train.shape[0], batch):
            idx = perm[i:i + batch]
            xb = x_train[idx]
            # Horizontal flips: Fashion-MNIST classes are mirror-symmetric (shoes point both ways).
            flip = torch.rand(xb.shape[0], generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), y_train[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.shape[0]
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / x_train.shape[0]:.4f} "
              f"test acc {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)

    acc = evaluate(model, x_test, y_test)
    os.makedirs(args.out, exist_ok=True)
    path = export(model, args.out)
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")

    # A few test images, one per class where possible, named so a human sees the truth.
    sample_dir = os.path.join(args.out, "samples")
    os.makedirs(sample_dir, exist_ok=True)
    for name in os.listdir(sample_dir):
        if name.endswith(".png"):
            os.remove(os.path.join(sample_dir, name))
    picks = [int(np.flatnonzero(test_lab == c)[0]) for c in (9, 1, 2, 3, 4, 5, 7, 8)]
    for n, i in enumerate(picks):
        label = LABELS[test_lab[i]].lower().replace("/", "_").replace(" ", "_")
        Image.fromarray(test_img[i], mode="L").save(os.path.join(sample_dir, f"{n:02d}_{label}.png"))

    n_params = sum(p.numel() for p in model.parameters())
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(f"""# convoy demo model: Fashion-MNIST CNN

`fashion_cnn.onnx` is produced by `models/train_demo.py` (seeded, deterministic, CPU; about
5 minutes on 2 otherwise idle cores): a small AlexNet-style CNN (3 x Conv+BatchNorm+ReLU
+MaxPool, Dropout, 2 Linear layers; {n_params} parameters) trained {args.epochs} epochs with
AdamW on the 60000 Fashion-MNIST training images from Debian's `dataset-fashion-mnist`.

- **Test accuracy measured by PyTorch** (10000 t10k images): **{acc * 100:.2f}%**
- Exported with torch {torch.__version__}, ONNX opset 13, input `input` [batch,1,28,28],
  output `logits` [batch,10] (unnormalised scores; softmax gives probabilities).
- Preprocessing lives in the model's `convoy.*` metadata: gray, 28x28 stretch,
  x = (pixel/255 - {MEAN:.4f}) / {STD:.4f}.
- `labels.txt`: the class names in output order. `samples/`: test-set images named
  `<n>_<true label>.png`.

Try it: `build/convoy run models/demo/fashion_cnn.onnx models/demo/samples/*.png --top 3`
""")
    print(f"test accuracy {acc:.4f}; wrote {path} ({os.path.getsize(path)} bytes), "
          f"{n_params} parameters, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

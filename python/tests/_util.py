"""Shared helpers for the Python tests (run by ctest: PYTHONPATH holds <build>/python, CONVOY_BIN
the CLI). References come from PyTorch and from the `convoy` CLI, never from the package itself."""

import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CONVOY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))


def convoy_bin():
    path = os.environ.get("CONVOY_BIN")
    if not path:
        raise RuntimeError("CONVOY_BIN is not set (ctest sets it to the built `convoy` CLI)")
    return path


def run_cli(*args, check=True):
    """Runs the `convoy` CLI; returns the CompletedProcess (text)."""
    p = subprocess.run([convoy_bin(), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("convoy %s failed (%d): %s" % (" ".join(map(str, args)), p.returncode, p.stderr))
    return p


def cli_error(*args):
    """The message `convoy` prints for a failing command (its "convoy: " prefix removed)."""
    p = run_cli(*args, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("convoy: "), line
    return line[len("convoy: "):]


def cli_logits(model, *inputs_or_images, tmp, npy=None):
    """The CLI's first output as an array: `convoy run MODEL (--input X.npy | IMAGE...) --output`."""
    out = os.path.join(tmp, "cli_out_%d.npy" % time.monotonic_ns())
    if npy is not None:
        run_cli("run", model, "--input", npy, "--output", out)
    else:
        run_cli("run", model, *inputs_or_images, "--output", out)
    return np.load(out)


def bits(a):
    """Bit patterns, so equality means bit-for-bit (and -0.0 != 0.0)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def demo_model(wait_s=600):
    """models/demo/fashion_cnn.onnx (trained by models/train_demo.py); waits for it while the
    tree is being put together."""
    path = os.path.join(SOURCE_DIR, "models", "demo", "fashion_cnn.onnx")
    deadline = time.monotonic() + wait_s
    while not os.path.isfile(path):
        if time.monotonic() > deadline:
            raise AssertionError("%s is missing (run models/train_demo.py)" % path)
        time.sleep(5)
    return path


def export_torchvision(name, path, seed=0):
    """Exports torchvision `name` with seeded random weights and a dynamic batch; returns the
    eval-mode torch model (for references)."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    model = getattr(torchvision.models, name)(weights=None).eval()
    dummy = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, dummy, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return model


def torch_forward(model, x):
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def fashion_images(n, seed=0):
    """n 28x28 uint8 images: the Fashion-MNIST test set (Debian's dataset-fashion-mnist) when
    present, else seeded noise with structure."""
    import gzip

    path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    if os.path.isfile(path):
        with gzip.open(path, "rb") as f:
            data = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
        idx = np.random.default_rng(seed).permutation(data.shape[0])[:n] if n <= data.shape[0] else \
            np.random.default_rng(seed).integers(0, data.shape[0], n)
        return data[idx]
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def write_pngs(directory, images, prefix="img"):
    """Writes gray PNGs (PIL) and returns their paths in order."""
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p = os.path.join(directory, "%s_%05d.png" % (prefix, i))
        Image.fromarray(img, mode="L").save(p)
        paths.append(p)
    return paths


def write_corrupt(directory, names):
    """Files that are not decodable images: truncated PNG, text, empty."""
    paths = []
    for i, name in enumerate(names):
        p = os.path.join(directory, name)
        with open(p, "wb") as f:
            f.write([b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", b"not an image\n", b""][i % 3])
        paths.append(p)
    return paths


def python():
    return sys.executable

#!/usr/bin/python3
"""convoy vs PyTorch (CPU) training-step throughput, alternating rounds in one process tree.

For each model, every round runs (a) `convoy bench MODEL --train-last N --json` (a fresh process:
load, plan, first step, W warm-up steps, K timed steps) and then (b) K timed steps of the same
training step in one long-lived PyTorch worker (this script with --torch-worker), so that load on
the machine hits both sides alike. Both sides train the same layers of the same architecture:

  - the last N Conv/Linear layers are trainable (requires_grad False everywhere else, so PyTorch
    builds no autograd graph for the frozen prefix, as convoy runs it through inference);
  - the whole model in eval mode (BatchNorm uses its running statistics; the ONNX exports carry
    no Dropout), mean softmax cross-entropy, torch.optim.SGD(lr 0.01, momentum 0.9,
    weight_decay 5e-4) on the trainable parameters (convoy's defaults);
  - one seeded random batch of the size convoy ran (uniform [-1, 1) images, uniform labels),
    torch.set_num_threads(T) and convoy --threads T.

Models (name: ONNX file for convoy / PyTorch module, trainable layers, batch):
  demo      models/demo/fashion_cnn.onnx / FashionCNN of models/train_demo.py, last 1, batch 64
  resnet18  $CONVOY_TEST_DATA/models/resnet18_op13.onnx / tests/gen/export_torchvision.py build()
            (torchvision resnet18, fixed seed), last 2 (layer4.1.conv2, fc), batch 32
  alexnet   $CONVOY_TEST_DATA/models/alexnet_op13.onnx / likewise, last 3 (classifier.1/.4/.6),
            batch 32
The ONNX exports fold BatchNorm into the preceding Conv (see /work/shared/ENVIRONMENT.md), so
convoy's trainable layer4.1.conv2 of resnet18 has the folded bias (512 values more than PyTorch's
bias-free conv followed by a frozen eval-mode BatchNorm); the demo model's BatchNorms likewise.

Debian's torch 1.13 runs convolutions with oneDNN but Linear layers through the system's generic
BLAS, which is netlib's reference BLAS unless an optimised one is installed (~1 GFLOP/s: AlexNet's
classifier dominates its step). --torch-blas DIR adds a second PyTorch worker per round with
DIR (holding libblas.so.3, e.g. OpenBLAS unpacked from its .deb without installing it) first on
LD_LIBRARY_PATH and OPENBLAS_NUM_THREADS = threads; each worker reports the libblas it loaded.

Images/s = batch / median step time over all rounds' samples; RSS = peak of each process
(convoy: the bench process; PyTorch: the worker, including the torch import and the model).

  tools/bench/train_vs_torch.py --convoy build/convoy [--models demo,resnet18,alexnet]
                                [--threads 1] [--rounds 3] [--iters 5] [--warmup 2]
                                [--torch-blas DIR] [--json]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODELS = {  # name -> (train_last, batch)
    "demo": (1, 64),
    "resnet18": (2, 32),
    "alexnet": (3, 32),
}


def onnx_path(args, name):
    if name == "demo":
        return os.path.join(ROOT, "models", "demo", "fashion_cnn.onnx")
    return os.path.join(args.data, "models", f"{name}_op13.onnx")


# ---- the PyTorch side (runs in its own process: --torch-worker) ----

def build_torch_model(name):
    import torch
    if name == "demo":
        sys.path.insert(0, os.path.join(ROOT, "models"))
        from train_demo import FashionCNN, SEED
        torch.manual_seed(SEED)
        return FashionCNN()
    # The generator of the ONNX files convoy runs: same constructor, seed and BN statistics.
    sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
    from export_torchvision import build
    return build(name)[0]


def torch_worker(name, train_last, threads, shape, classes):
    """Line protocol on stdin/stdout (one JSON object per answer): first the setup report, then
    `run W K` -> K step times after W untimed steps, `quit` -> peak RSS."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = build_torch_model(name).eval()
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    trainable = layers[-train_last:]
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    for _, m in trainable:
        for p in m.parameters():
            p.requires_grad_(True)
            params.append(p)
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g) * 2 - 1
    y = torch.randint(0, classes, (shape[0],), generator=g)
    with torch.no_grad():
        out_classes = model(x[:1]).shape[1]
    if out_classes != classes:
        raise SystemExit(f"torch {name}: {out_classes} outputs, convoy trained {classes} classes")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    load_ms = (time.perf_counter() - t0) * 1e3
    step()  # loads the BLAS library (a Linear layer's first call), so the report below can name it
    with open("/proc/self/maps") as f:
        blas = sorted({line.split()[-1] for line in f if "blas" in os.path.basename(line.split()[-1])})
    print(json.dumps({"load_ms": load_ms, "trainable": [n for n, _ in trainable], "blas": blas,
                      "trainable_values": sum(p.numel() for p in params), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "run":
            warmup, iters = int(cmd[1]), int(cmd[2])
            for _ in range(warmup):
                step()
            samples = []
            for _ in range(iters):
                t = time.perf_counter()
                loss = step()
                samples.append((time.perf_counter() - t) * 1e3)
            print(json.dumps({"samples_ms": samples, "loss": loss}), flush=True)
        elif cmd and cmd[0] == "quit":
            print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)
            return
        else:
            raise SystemExit(f"torch worker: unknown request {line!r}")


# ---- the driver ----

def convoy_round(args, model, train_last, batch, threads):
    cmd = [args.convoy, "bench", model, "--train-last", str(train_last), "--json", "--batch", str(batch),
           "--threads", str(threads), "--warmup", str(args.warmup), "--iters", str(args.iters)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"train_vs_torch: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def machine_peak(args, threads):
    """`convoy bench --peak` now: what the cores deliver at this moment (shared machines vary)."""
    r = subprocess.run([args.convoy, "bench", "--peak", "--threads", str(threads), "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"train_vs_torch: convoy bench --peak failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def torch_request(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    out = proc.stdout.readline()
    if not out:
        sys.exit(f"train_vs_torch: the PyTorch worker died: {proc.stderr.read().strip()}")
    return json.loads(out)


class TorchWorker:
    """One long-lived PyTorch process (this script with --torch-worker)."""

    def __init__(self, label, env, name, train_last, threads, shape, classes):
        self.label, self.samples, self.rounds = label, [], []
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-worker", name, str(train_last),
                                      str(threads), json.dumps(shape), str(classes)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        if not first:
            sys.exit(f"train_vs_torch: the PyTorch worker failed: {self.proc.stderr.read().strip()}")
        self.setup = json.loads(first)

    def run(self, warmup, iters):
        t = torch_request(self.proc, f"run {warmup} {iters}")
        self.samples += t["samples_ms"]
        self.rounds.append(statistics.median(t["samples_ms"]))

    def finish(self):
        rss = torch_request(self.proc, "quit")["peak_rss_bytes"]
        self.proc.wait()
        return rss


def compare(args, name, train_last, batch, threads):
    model = onnx_path(args, name)
    if not os.path.exists(model):
        sys.exit(f"train_vs_torch: {model} missing (tools/test.sh generates it)")
    c_samples, c_rounds, c_rss = [], [], 0
    workers = []
    for r in range(args.rounds):
        c = convoy_round(args, model, train_last, batch, threads)
        c_samples += c["samples_ms"]
        c_rounds.append(c["latency_ms"]["median"])
        c_rss = max(c_rss, c["peak_rss_bytes"])
        if not workers:  # the input shape and class count convoy trained, so both sides match
            shape = c["inputs"][0]["shape"]
            envs = [("torch", None)]
            if args.torch_blas:
                env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
                env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [args.torch_blas, env.get("LD_LIBRARY_PATH")]))
                envs.append(("torch+blas", env))
            workers = [TorchWorker(label, env, name, train_last, threads, shape, c["classes"]) for label, env in envs]
        # PyTorch's first round gets convoy's first step + warm-up as untimed steps.
        for w in workers:
            w.run(args.warmup + 1 if r == 0 else 1, args.iters)
    cm = statistics.median(c_samples)
    row = {"model": name, "train_last": train_last, "batch": batch, "threads": threads,
           "convoy_step_ms": cm, "convoy_images_per_s": batch / cm * 1e3, "convoy_rss": c_rss, "convoy_rounds": c_rounds,
           "convoy_trainable": [p["name"] for p in c["trainable"]], "convoy_trainable_values": c["trainable_values"],
           "convoy_memory": c["memory"], "torch": {}}
    for w in workers:
        tm = statistics.median(w.samples)
        row["torch"][w.label] = {"step_ms": tm, "images_per_s": batch / tm * 1e3, "ratio": tm / cm, "rss": w.finish(),
                                 "rounds": w.rounds, "trainable": w.setup["trainable"],
                                 "trainable_values": w.setup["trainable_values"], "blas": w.setup["blas"],
                                 "version": w.setup["torch"]}
    return row


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-worker":
        name, train_last, threads, shape, classes = sys.argv[2:7]
        torch_worker(name, int(train_last), int(threads), json.loads(shape), int(classes))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--convoy", default=os.path.join(ROOT, "build", "convoy"), help="the convoy CLI")
    p.add_argument("--data", default=os.environ.get("CONVOY_TEST_DATA", os.path.expanduser("~/.cache/convoy-testdata")))
    p.add_argument("--models", default="demo,resnet18,alexnet", help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--batch", type=int, help="override every model's batch size")
    p.add_argument("--train-last", type=int, help="override every model's trainable layer count")
    p.add_argument("--threads", default="1", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=5, help="timed steps per side per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--torch-blas", metavar="DIR", help="also run PyTorch with DIR/libblas.so.3 (e.g. OpenBLAS) preloaded")
    p.add_argument("--no-peak", action="store_true", help="skip the FMA peak probes before and after")
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = p.parse_args()
    for m in args.models.split(","):
        if m not in MODELS:
            p.error(f"unknown model '{m}' (choose from {','.join(MODELS)})")
    if args.rounds < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--rounds and --iters must be >= 1, --warmup >= 0")
    if (args.batch is not None and args.batch < 1) or (args.train_last is not None and args.train_last < 1):
        p.error("--batch and --train-last must be >= 1")

    if args.torch_blas and not os.path.exists(os.path.join(args.torch_blas, "libblas.so.3")):
        p.error(f"--torch-blas: no libblas.so.3 in {args.torch_blas}")

    labels = ["torch"] + (["torch+blas"] if args.torch_blas else [])
    max_threads = max(int(x) for x in args.threads.split(","))
    peaks = [] if args.no_peak else [machine_peak(args, max_threads)]
    rows = []
    hdr = f"{'model':<9} {'last':>4} {'batch':>5} {'thr':>3}  {'convoy img/s':>12}"
    for t in labels:
        hdr += f" {t + ' img/s':>16} {'ratio':>7}"
    hdr += f"  {'convoy RSS':>10}" + "".join(f" {t + ' RSS':>14}" for t in labels)
    print(hdr)
    print("-" * len(hdr))
    for m in args.models.split(","):
        last, batch = MODELS[m]
        last = args.train_last or last
        batch = args.batch or batch
        for t in (int(x) for x in args.threads.split(",")):
            r = compare(args, m, last, batch, t)
            rows.append(r)
            line = f"{m:<9} {last:>4} {batch:>5} {t:>3}  {r['convoy_images_per_s']:>12.1f}"
            for label in labels:
                line += f" {r['torch'][label]['images_per_s']:>16.1f} {r['torch'][label]['ratio']:>6.2f}x"
            line += f"  {r['convoy_rss'] / 2**20:>6.0f} MiB" + "".join(
                f" {r['torch'][label]['rss'] / 2**20:>10.0f} MiB" for label in labels)
            print(line, flush=True)
    print("\nper-round median step times (ms), convoy | " + " | ".join(labels) + ":")
    for r in rows:
        print(f"  {r['model']} b{r['batch']} t{r['threads']}: " + " | ".join(
            " ".join(f"{x:.1f}" for x in xs) for xs in [r["convoy_rounds"]] + [r["torch"][l]["rounds"] for l in labels]))
    print("\ntrainable parameters (values), convoy | torch:")
    for r in {r["model"]: r for r in rows}.values():
        t = r["torch"]["torch"]
        print(f"  {r['model']}: {r['convoy_trainable_values']} {r['convoy_trainable']} | "
              f"{t['trainable_values']} {t['trainable']}")
    print("\nconvoy memory report (MiB): frozen arena, train arena, trainable, grads, momentum, all weights:")
    for r in rows:
        mem = r["convoy_memory"]
        print(f"  {r['model']} b{r['batch']} t{r['threads']}: " + ", ".join(
            f"{mem[k] / 2**20:.3f}" for k in ("frozen_arena_bytes", "train_arena_bytes", "param_bytes", "grad_bytes",
                                              "optimizer_bytes", "weight_bytes")))
    if rows:
        for label in labels:
            t = rows[0]["torch"][label]
            print(f"{label}: torch {t['version']}, BLAS {', '.join(t['blas']) or '?'}")
    if not args.no_peak:
        peaks.append(machine_peak(args, max_threads))
        for when, pk in zip(("before", "after"), peaks):
            print(f"FMA peak {when}: {pk['fma_gflops_1thread']:.0f} GFLOP/s on 1 thread, {pk['fma_gflops_all']:.0f} on "
                  f"{pk['threads']} threads ({pk['target']})")
    print("images/s = batch / median step over all rounds' samples; ratio = torch step / convoy step (> 1: convoy "
          "faster); RSS = peak of each process")
    if args.json:
        print(json.dumps(rows, indent=1))

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Throughput of convoy.distributed against plain single-process scoring (docs/SCALING.md).

    PYTHONPATH=build/python /usr/bin/python3 python/bench/scaling.py MODEL [--images N] [--size HxW]
        [--batch 32] [--rounds 2]

Generates N PNGs (gray for 1-channel models, color otherwise), then alternates, `rounds` times:
  single  two processes at once, each `InferenceSession(threads=1)` decoding + running every
          image in chunks of `batch` (the no-Dask baseline: their images/s are summed);
  dask    score() on a LocalCluster of 2 worker processes x 1 thread (model loaded beforehand).
and measures Dask's bare per-task cost with empty tasks. Prints one JSON object. Not a test.

Wall-clock figures drift with whatever else the machine runs, so CPU time is recorded too:
the single runs' process CPU, and for Dask the CPU of both worker processes plus this process
(client and scheduler). `cpu_ratio` = (single CPU s per image) / (Dask CPU s per image) is what
the wall ratio would be on two otherwise idle cores.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import resource

import numpy as np


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_images(directory, n, h, w, channels, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    base = rng.integers(0, 256, size=(64, h, w, channels), dtype=np.uint8)
    paths = []
    for i in range(n):
        img = base[i % 64] if channels == 3 else base[i % 64, :, :, 0]
        img = np.roll(img, i // 64, axis=1)  # distinct files, same cost
        p = os.path.join(directory, "img_%06d.png" % i)
        Image.fromarray(img, mode="RGB" if channels == 3 else "L").save(p)
        paths.append(p)
    return paths


def single(model, list_file, batch):
    """Child process: score every path in list_file on one thread; prints images/s."""
    import convoy

    with open(list_file) as f:
        paths = f.read().split("\n")
    sess = convoy.InferenceSession(model, threads=1)
    name = sess.get_inputs()[0].name
    x = convoy.preprocess(sess, paths[:batch])
    sess.run(None, {name: x})  # plan built outside the clock
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i in range(0, len(paths), batch):
        x = convoy.preprocess(sess, paths[i:i + batch])
        sess.run(None, {name: x})
    dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(json.dumps({"images": len(paths), "seconds": dt, "cpu_seconds": cpu, "images_per_s": len(paths) / dt}))


def run_singles(model, list_file, batch, procs=2):
    cmd = [sys.executable, os.path.abspath(__file__), "--single", model, list_file, "--batch", str(batch)]
    ps = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    return [json.loads(p.communicate(timeout=900)[0]) for p in ps]


def noop(i):
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("list_file", nargs="?")
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", default=None, help="image HxW (default: the model's input size)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if a.single:
        return single(a.model, a.list_file, a.batch)

    import convoy
    import convoy.distributed as cd

    sess = convoy.InferenceSession(a.model, threads=1)
    shape = sess.get_inputs()[0].shape
    channels = shape[1] or 3
    if a.size:
        h, w = map(int, a.size.split("x"))
    else:
        h, w = (shape[2] or 224, shape[3] or 224)
    tmp = tempfile.mkdtemp(prefix="convoy-scaling-")
    try:
        paths = make_images(os.path.join(tmp, "img"), a.images, h, w, channels)
        list_file = os.path.join(tmp, "paths.txt")
        with open(list_file, "w") as f:
            f.write("\n".join(paths))
        client = cd.local_cluster(workers=2, threads_per_worker=1)
        try:
            cd.score(a.model, paths[:4 * a.batch], client=client, batch=a.batch)  # load on both workers
            rounds = []
            for _ in range(a.rounds):
                singles = run_singles(a.model, list_file, a.batch)
                single_sum = sum(s["images_per_s"] for s in singles)
                single_cpu = sum(s["cpu_seconds"] for s in singles) / sum(s["images"] for s in singles)
                w0, c0 = client.run(cpu_seconds), cpu_seconds()
                r = cd.score(a.model, paths, client=client, batch=a.batch)
                w1, c1 = client.run(cpu_seconds), cpu_seconds()
                worker_cpu = sum(w1[k] - w0[k] for k in w1)
                dask_cpu = (worker_cpu + c1 - c0) / len(paths)
                rounds.append({
                    "single_each": [s["images_per_s"] for s in singles], "single_sum": single_sum,
                    "dask": r.images_per_second, "ratio": r.images_per_second / single_sum,
                    "single_cpu_us_per_image": single_cpu * 1e6, "dask_cpu_us_per_image": dask_cpu * 1e6,
                    "dask_worker_cpu_us_per_image": worker_cpu / len(paths) * 1e6,
                    "cpu_ratio": single_cpu / dask_cpu, "tasks": r.tasks,
                    "task_cpu_us_per_image": r.task_cpu_seconds / len(paths) * 1e6,
                    "worker_overhead_cpu_per_task_s": (worker_cpu - r.task_cpu_seconds) / r.tasks,
                    "driver_cpu_per_task_s": (c1 - c0) / r.tasks,
                    "task_s_mean": r.task_seconds / r.tasks,
                    # per task: CPU the job spent beyond what the same images cost a single process
                    "overhead_cpu_per_task_s": (dask_cpu - single_cpu) * len(paths) / r.tasks,
                    "overhead_wall_per_task_s": (2 * r.seconds - r.task_seconds) / r.tasks})
            # Dask's own cost per task: empty tasks through the same scheduler.
            n = 2000
            t0 = time.perf_counter()
            client.gather(client.map(noop, range(n), pure=False))
            empty = (time.perf_counter() - t0) / n
        finally:
            cluster = client.cluster
            client.close()
            cluster.close()
        print(json.dumps({"model": os.path.basename(a.model), "images": len(paths), "image_hw": [h, w],
                          "batch": a.batch, "rounds": rounds, "empty_task_s": empty}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""convoy vs ONNX Runtime on the same models, alternating runs in one process tree.

Each round runs `convoy bench --json` (a fresh process: load, plan, W warm-up, K timed runs)
and then K timed runs of one long-lived ONNX Runtime session (tools/bench/ort_bench.js,
npm onnxruntime-node from ~/.cache/convoy-ort, or with --ort python tools/bench/ort_bench.py and
the Python package onnxruntime: graph optimisation 'all', intra-op threads = --threads,
inter-op 1), so that load on the machine hits both sides alike. Medians are over
all rounds' samples; peak RSS is each process's maximum; convoy's load is load + plan
(median over rounds), ORT's is session creation. With several threads each round also records
the CPU hand-off round trip that `convoy bench` measures before and after its timed runs
(tools/cli_handoff.h): ~50 ns when the threads' CPUs share a last-level cache, 300+ ns when they
do not. A VM's vCPUs can move between the two; the column shows the range over the rounds and
the per-round lines show each round's, so rows measured in different placements are not
compared as if they were alike.

  tools/bench/compare_ort.py --convoy build/convoy [--models alexnet,resnet18] [--batch 1]
                             [--threads 1] [--rounds 5] [--iters 10] [--warmup 3] [--ort node|python]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_MODELS = ["alexnet", "vgg16", "resnet18", "resnet50"]


def convoy_round(args, model, batch, threads):
    cmd = [args.convoy, "bench", model, "--json", "--batch", str(batch), "--threads", str(threads),
           "--warmup", str(args.warmup), "--iters", str(args.iters)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_ort: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def ort_request(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    out = proc.stdout.readline()
    if not out:
        sys.exit(f"compare_ort: ort_bench.js died: {proc.stderr.read().strip()}")
    return json.loads(out)


def compare(args, name, batch, threads):
    model = os.path.join(args.data, "models", f"{name}_op13.onnx")
    if not os.path.exists(model):
        sys.exit(f"compare_ort: {model} missing (tools/test.sh generates it)")
    c_samples, c_load, c_rss, c_rounds, o_samples, o_rounds, handoff = [], [], 0, [], [], [], []
    proc = None
    for r in range(args.rounds):
        c = convoy_round(args, model, batch, threads)
        c_samples += c["samples_ms"]
        c_rounds.append(c["latency_ms"]["median"])
        c_load.append(c["load_ms"] + c["plan_ms"])
        c_rss = max(c_rss, c["peak_rss_bytes"])
        h = c.get("handoff_ns") or {}
        if h.get("before") and h.get("after"):
            handoff.append((h["before"]["max"], h["after"]["max"]))
        if proc is None:  # the input shape convoy ran at, so both sides see the same tensor
            shape = json.dumps(c["inputs"][0]["shape"])
            runner = ["node", os.path.join(HERE, "ort_bench.js")] if args.ort == "node" else \
                [sys.executable, os.path.join(HERE, "ort_bench.py")]
            proc = subprocess.Popen(runner + [model, str(threads), shape],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = proc.stdout.readline()
            if not first:
                sys.exit(f"compare_ort: ort_bench.js failed: {proc.stderr.read().strip()}")
            o_load = json.loads(first)["load_ms"]
        o = ort_request(proc, f"run {args.warmup if r == 0 else 1} {args.iters}")
        o_samples += o["samples_ms"]
        o_rounds.append(statistics.median(o["samples_ms"]))
    o_rss = ort_request(proc, "quit")["peak_rss_bytes"]
    proc.wait()
    cm, om = statistics.median(c_samples), statistics.median(o_samples)
    return {"model": name, "batch": batch, "threads": threads, "convoy_ms": cm, "ort_ms": om, "ratio": om / cm,
            "convoy_rss": c_rss, "ort_rss": o_rss, "convoy_load": statistics.median(c_load), "ort_load": o_load,
            "convoy_rounds": c_rounds, "ort_rounds": o_rounds, "handoff_ns": handoff}


def handoff_range(r):
    """'52-61' (ns, the rounds' slowest CPU pair before or after their timed runs), '-' for 1 thread."""
    values = [x for pair in r["handoff_ns"] for x in pair]
    return f"{min(values):.0f}-{max(values):.0f}" if values else "-"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--convoy", default=os.path.join(HERE, "..", "..", "build", "convoy"), help="the convoy CLI")
    p.add_argument("--data", default=os.environ.get("CONVOY_TEST_DATA", os.path.expanduser("~/.cache/convoy-testdata")))
    p.add_argument("--models", default="alexnet,vgg16,resnet18,resnet50", help="comma-separated subset of " + ",".join(ALL_MODELS))
    p.add_argument("--batch", default="1", help="comma-separated batch sizes")
    p.add_argument("--threads", default="1", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=10, help="timed runs per side per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print the rows as JSON too")
    p.add_argument("--ort", choices=["node", "python"], default="node",
                   help="ORT side: npm onnxruntime-node (default) or the Python package onnxruntime "
                        "(tools/bench/ort_bench.py, run by this interpreter)")
    args = p.parse_args()
    for m in args.models.split(","):
        if m not in ALL_MODELS:
            p.error(f"unknown model '{m}' (choose from {','.join(ALL_MODELS)})")
    if args.rounds < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--rounds and --iters must be >= 1, --warmup >= 0")

    rows = []
    hdr = (f"{'model':<9} {'batch':>5} {'thr':>3}  {'convoy ms':>10} {'ORT ms':>10} {'ORT/convoy':>10}  "
           f"{'convoy RSS':>10} {'ORT RSS':>10}  {'convoy load':>11} {'ORT load':>10}  {'hand-off ns':>11}")
    print(hdr)
    print("-" * len(hdr))
    for m in args.models.split(","):
        for b in (int(x) for x in args.batch.split(",")):
            for t in (int(x) for x in args.threads.split(",")):
                r = compare(args, m, b, t)
                rows.append(r)
                print(f"{m:<9} {b:>5} {t:>3}  {r['convoy_ms']:>10.2f} {r['ort_ms']:>10.2f} {r['ratio']:>9.2f}x  "
                      f"{r['convoy_rss'] / 2**20:>7.0f} MiB {r['ort_rss'] / 2**20:>6.0f} MiB  "
                      f"{r['convoy_load']:>8.0f} ms {r['ort_load']:>7.0f} ms  {handoff_range(r):>11}", flush=True)
    print("\nper-round medians (ms), convoy | ORT:")
    for r in rows:
        print(f"  {r['model']} b{r['batch']} t{r['threads']}: "
              f"{' '.join(f'{x:.1f}' for x in r['convoy_rounds'])} | {' '.join(f'{x:.1f}' for x in r['ort_rounds'])}"
              + (f" | hand-off ns {' '.join(f'{b:.0f}/{a:.0f}' for b, a in r['handoff_ns'])}" if r["handoff_ns"] else ""))
    print("medians over all rounds' samples; RSS = peak of each process; load: convoy load+plan, ORT session creation;\n"
          "hand-off: CPU round trip before/after each convoy round's timed runs (~50 ns: shared cache, 300+: not)")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

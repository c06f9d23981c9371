"""Batch scoring of image files over a Dask cluster.

    from convoy.distributed import score
    r = score("resnet18.onnx", paths)                              # LocalCluster on this machine
    r = score("resnet18.onnx", paths, client=Client("tcp://sched:8786"))   # an existing cluster

The paths are cut into chunks of ``batch`` files; each chunk is one Dask task that decodes
its images on the worker (OpenCV, the same C++ preprocessing as ``convoy run``) and runs them
through an InferenceSession that the worker process loads once and keeps (a per-process cache
keyed by model path and file stamp). Only file names go out and logits come back. Dask
recomputes the tasks of a worker that dies; a file that cannot be read or decoded becomes an
error entry in the result, never a failed job. Model and image paths must be readable by
every worker under the same names (a shared filesystem); relative paths are made absolute
here first.

Command line::

    python3 -m convoy.distributed score MODEL IMAGE_DIR_OR_GLOB [--scheduler tcp://HOST:8786]
        [--batch 32] [--out results.csv] [--logits logits.npy] [--top K]

writes ``path,top1,top1_score,error`` per file (sorted by path) and a summary line with
images/s on stderr. Dense scoring (``convoy.dense`` per file: score maps of every crop
position) goes the same way::

    r = dense("fashion_cnn.onnx", paths, size=(336, 336))        # r.results[i]: convoy.DenseResult
    python3 -m convoy.distributed dense MODEL IMAGE_DIR_OR_GLOB --outdir DIR [--scheduler ...]
        [--size HxW | --scales a,b] [--stride S] [--batch 4]

writes one ``.npy`` score map per image under DIR (``NAME.npy``; several scales
``NAME_s0.npy``, ...) and ``DIR/summary.json`` (geometry, and per file its maps or error).
"""

import argparse
import dataclasses
import glob
import logging
import math
import os
import sys
import threading
import time
import uuid

import numpy as np

import convoy

__all__ = ["DenseJobResult", "ScoreResult", "dense", "score", "local_cluster", "main"]

# ---------------------------------------------------------------- worker side

# (real path, mtime_ns, size, threads, fc_to_conv) -> InferenceSession, one per worker process. A Dask worker
# with several threads runs tasks concurrently on the same session (InferenceSession.run is
# safe for that); the lock makes the first tasks wait for one load instead of loading twice.
_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()
_LOADS = []  # paths loaded by this process, in order (cache_info() reports it)


def _session(model_path, threads, fc_to_conv=False):
    st = os.stat(model_path)
    key = (os.path.realpath(model_path), st.st_mtime_ns, st.st_size, threads, bool(fc_to_conv))
    with _SESSIONS_LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            # A rewritten model file replaces the old session instead of piling up next to it.
            for old in [k for k in _SESSIONS if k[0] == key[0] and k[3:] == key[3:]]:
                del _SESSIONS[old]
            sess = convoy.InferenceSession(model_path, threads=threads, fc_to_conv=fc_to_conv)
            _SESSIONS[key] = sess
            _LOADS.append(key[0])
        return sess


def cache_info():
    """What this process's model cache holds: {"loads": [model paths, one per load], "pid": pid}."""
    return {"loads": list(_LOADS), "pid": os.getpid()}


def _worker_name():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "pid %d" % os.getpid()


def _model_info(model_path, threads):
    sess = _session(model_path, threads)
    labels = sess.get_modelmeta().custom_metadata_map.get("convoy.labels")
    labels = [l.rstrip("\r") for l in labels.split("\n")] if labels else None
    if labels and labels[-1] == "":
        labels.pop()
    return {"labels": labels, "inputs": len(sess.get_inputs())}


def _run_rows(sess, x):
    """The first output for a batch x, as (rows, K); a model whose batch is fixed at 1 runs row by
    row, as `convoy run` does."""
    inp = sess.get_inputs()[0]
    out = sess.get_outputs()[0].name
    if inp.shape and inp.shape[0] == 1 and x.shape[0] > 1:
        ys = [sess.run([out], {inp.name: x[i:i + 1]})[0] for i in range(x.shape[0])]
        y = np.concatenate(ys, axis=0)
    else:
        (y,) = sess.run([out], {inp.name: x})
    return y.reshape(x.shape[0], -1)


def _load_with(preprocess, sess, paths):
    """(x, errors) for one chunk: the C++ path with optional flag overrides (a dict), or a
    user callable path -> (C, H, W) float32 array."""
    if preprocess is None or isinstance(preprocess, dict):
        return convoy.preprocess(sess, paths, return_errors=True, **(preprocess or {}))
    rows, errors = [], []
    for p in paths:
        try:
            rows.append(np.asarray(preprocess(p), dtype=np.float32))
            errors.append(None)
        except Exception as e:  # a bad file is a result entry, not a failed task
            rows.append(None)
            errors.append("%s: %s" % (p, e))
    shape = next((r.shape for r in rows if r is not None), None)
    if shape is None:
        return None, errors
    x = np.zeros((len(paths),) + shape, dtype=np.float32)
    for i, r in enumerate(rows):
        if r is not None:
            if r.shape != shape:
                errors[i] = "%s: preprocess gave shape %s, other images %s" % (paths[i], r.shape, shape)
            else:
                x[i] = r
    return x, errors


def _score_chunk(paths, model_path, preprocess, threads):
    """One task: decode, run, return logits (NaN rows for failed files) and the errors."""
    t0, c0 = time.perf_counter(), time.thread_time()
    sess = _session(model_path, threads)
    x, errors = _load_with(preprocess, sess, paths)
    logits = None
    if x is not None and any(e is None for e in errors):
        # Failed rows stay in the batch as zeros (so every chunk runs the same batch shape as a
        # single-process run over the same chunk) and are blanked afterwards.
        logits = _run_rows(sess, x)
        bad = [i for i, e in enumerate(errors) if e is not None]
        if bad:
            logits[bad] = np.nan
    return {"logits": logits, "errors": errors, "worker": _worker_name(), "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.thread_time() - c0}


def _dense_info(model_path, threads, stride):
    """Loads the converted model on a worker and checks the stride (one error for a bad model)."""
    sess = _session(model_path, threads, fc_to_conv=True)
    crop_h, crop_w, net, s, k = convoy._dense_geometry(sess._model, stride)
    return {"labels": convoy._labels(sess._model), "crop_size": (crop_h, crop_w), "network_stride": net, "stride": s,
            "passes": k * k}


def _dense_chunk(paths, model_path, size, scales, stride, threads):
    """One task: convoy.dense on each file with the worker's cached converted model; a file
    that cannot be read, decoded or is smaller than a crop is an error entry."""
    t0, c0 = time.perf_counter(), time.thread_time()
    sess = _session(model_path, threads, fc_to_conv=True)
    results, errors = [], []
    for p in paths:
        try:
            results.append(convoy.dense(sess, p, size=size, scales=scales, stride=stride))
            errors.append(None)
        except convoy.Error as e:
            results.append(None)
            errors.append(str(e))
    return {"results": results, "errors": errors, "worker": _worker_name(), "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.thread_time() - c0}


# ---------------------------------------------------------------- driver side


@dataclasses.dataclass
class ScoreResult:
    """Results in the order of the paths given to score(). Rows of files that failed hold NaN
    logits, top index -1 and the message in ``errors[i]``."""

    paths: list
    logits: np.ndarray      # (N, K) float32
    top_index: np.ndarray   # (N, k) int64, best first; ties go to the lower index
    top_score: np.ndarray   # (N, k) float32
    errors: list            # str or None per path
    labels: list            # class names from the model's convoy.labels, or None
    seconds: float          # wall time of the job (from the model load on a worker to the last result)
    tasks: int
    task_seconds: float     # summed wall time inside tasks (decode + run), for overhead figures
    task_cpu_seconds: float  # summed CPU time of the task threads (with threads=1: all of it)
    worker_tasks: dict      # worker address -> tasks it returned

    @property
    def images_per_second(self):
        return len(self.paths) / self.seconds if self.seconds > 0 else float("inf")

    def top1_label(self, i):
        c = int(self.top_index[i, 0])
        if c < 0:
            return ""
        return self.labels[c] if self.labels and c < len(self.labels) else str(c)


def _top_k(logits, k):
    n, classes = logits.shape
    k = min(k, classes)
    idx = np.full((n, k), -1, dtype=np.int64)
    val = np.full((n, k), np.nan, dtype=np.float32)
    ok = ~np.isnan(logits).any(axis=1)
    if ok.any():
        order = np.argsort(-logits[ok], axis=1, kind="stable")[:, :k]
        idx[ok] = order
        val[ok] = np.take_along_axis(logits[ok], order, axis=1)
    return idx, val


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def local_cluster(workers=None, threads_per_worker=1, profile=False, **kwargs):
    """A Client on a LocalCluster fitted to this machine: one single-threaded worker process per
    core (each runs its sessions with one thread, so cores are not oversubscribed). Without a
    dashboard there is no use for the workers' statistical profiler (a stack sample every 10 ms,
    several percent of a small model's CPU), so it is off unless ``profile`` is set. Other
    keyword arguments go to LocalCluster."""
    import dask
    from distributed import Client, LocalCluster

    kwargs.setdefault("dashboard_address", None)
    kwargs.setdefault("silence_logs", logging.ERROR)
    n = workers or max(1, _cores() // threads_per_worker)
    with dask.config.set({"distributed.worker.profile.enabled": bool(profile)}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True, **kwargs)
    return Client(cluster)


class _Progress:
    """A tqdm-style bar on a stream: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, total, stream=sys.stderr, label="score"):
        self.total, self.stream, self.t0, self.label = total, stream, time.perf_counter(), label
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_line = -1

    def update(self, done):
        el = time.perf_counter() - self.t0
        rate = done / el if el > 0 else 0.0
        frac = done / self.total if self.total else 1.0
        if self.tty:
            bar = "#" * int(frac * 30)
            eta = (self.total - done) / rate if rate > 0 else 0.0
            self.stream.write("\r%s %3d%% |%-30s| %d/%d [%.0fs<%.0fs, %.0f img/s]" %
                              (self.label, frac * 100, bar, done, self.total, el, eta, rate))
            if done >= self.total:
                self.stream.write("\n")
        elif int(frac * 10) > self.last_line:
            self.last_line = int(frac * 10)
            self.stream.write("%s %3d%% %d/%d [%.1fs, %.0f img/s]\n" % (self.label, frac * 100, done, self.total, el,
                                                                          rate))
        self.stream.flush()


def _run_chunks(client, func, chunks, progress, label, **kwargs):
    """func(chunk, **kwargs) for every chunk as one Dask task each; the results in chunk order."""
    from distributed import as_completed

    tag = uuid.uuid4().hex
    keys = ["convoy-%s-%s-%d" % (label, tag, i) for i in range(len(chunks))]
    index = {k: i for i, k in enumerate(keys)}
    futures = client.map(func, chunks, key=keys, pure=False, **kwargs)
    total = sum(len(c) for c in chunks)
    bar = _Progress(total, label=label) if progress is True else None
    results = [None] * len(chunks)
    done = 0
    # Results are gathered by as_completed's own thread, several per round trip.
    for fut, res in as_completed(futures, with_results=True):
        i = index[fut.key]
        fut.release()
        if results[i] is not None:  # recomputed after a worker was lost: the first copy stands
            continue
        results[i] = res
        done += len(chunks[i])
        if bar:
            bar.update(done)
        elif callable(progress):
            progress(done, total)
    if bar and not total:
        bar.update(0)
    return results


def _prepare_job(job, model, paths, batch):
    """Checks batch and the model file; returns (paths, absolute model path, chunks of absolute
    paths, one per task)."""
    if batch < 1:
        raise convoy.Error("%s: batch must be >= 1, got %r" % (job, batch))
    paths = [os.fsdecode(p) for p in paths]
    model_path = os.path.abspath(os.fsdecode(model))
    if not os.path.isfile(model_path):
        raise convoy.Error("%s: cannot open model: No such file or directory" % os.fsdecode(model))
    abs_paths = [os.path.abspath(p) for p in paths]
    return paths, model_path, [abs_paths[i:i + batch] for i in range(0, len(abs_paths), batch)]


def score(model, paths, client=None, batch=32, preprocess=None, top=5, threads=1, progress=None):
    """Score image files on a Dask cluster; returns a ScoreResult in the order of ``paths``.

    model       path of the ONNX model (readable by every worker)
    paths       image files
    client      a distributed.Client; None starts a LocalCluster (see local_cluster) for this call
    batch       files per task (amortises the per-task scheduling cost)
    preprocess  None (the model's convoy.* metadata, as `convoy run`), a dict of overrides
                {size, mean, std, scale, bgr} (as convoy.preprocess), or a picklable callable
                path -> (C, H, W) float32 array
    top         classes kept per image in top_index/top_score
    threads     threads per session on the workers (1: parallelism comes from Dask's workers)
    progress    True for a bar on stderr, or a callable(done_images, total_images)
    """
    paths, model_path, chunks = _prepare_job("score", model, paths, batch)

    own = client is None
    if own:
        client = local_cluster()
    t0 = time.perf_counter()  # the job, not the start of an own LocalCluster
    try:
        # One small task first: it loads the model on a worker (surfacing a bad model as one
        # error) and brings back the labels.
        info = client.submit(_model_info, model_path, threads, key="convoy-info-" + uuid.uuid4().hex).result()
        if info["inputs"] != 1:
            raise convoy.Error("%s: the model has %d inputs; images feed single-input models"
                               % (os.path.basename(model_path), info["inputs"]))
        results = _run_chunks(client, _score_chunk, chunks, progress, "score", model_path=model_path,
                              preprocess=preprocess, threads=threads)
    finally:
        if own:
            cluster = client.cluster
            client.close()
            cluster.close()

    errors = [e for r in results for e in r["errors"]]
    k_classes = next((r["logits"].shape[1] for r in results if r["logits"] is not None), 0)
    logits = np.full((len(paths), k_classes), np.nan, dtype=np.float32)
    row = 0
    worker_tasks = {}
    for r, chunk in zip(results, chunks):
        if r["logits"] is not None:
            logits[row:row + len(chunk)] = r["logits"]
        row += len(chunk)
        worker_tasks[r["worker"]] = worker_tasks.get(r["worker"], 0) + 1
    top_index, top_score = _top_k(logits, top)
    return ScoreResult(paths=paths, logits=logits, top_index=top_index, top_score=top_score, errors=errors,
                       labels=info["labels"], seconds=time.perf_counter() - t0, tasks=len(chunks),
                       task_seconds=sum(r["seconds"] for r in results),
                       task_cpu_seconds=sum(r["cpu_seconds"] for r in results), worker_tasks=worker_tasks)


@dataclasses.dataclass
class DenseJobResult:
    """dense() results in the order of the paths: ``results[i]`` is the convoy.DenseResult of
    paths[i] (its ``maps``: one float32 [1, K, rows, cols] per scale), or None with the message
    in ``errors[i]`` for a file that could not be read, decoded, or is smaller than a crop."""

    paths: list
    results: list
    errors: list
    labels: list
    crop_size: tuple
    network_stride: int
    stride: int
    passes: int
    seconds: float
    tasks: int
    task_seconds: float
    task_cpu_seconds: float
    worker_tasks: dict

    @property
    def images_per_second(self):
        return len(self.paths) / self.seconds if self.seconds > 0 else float("inf")


def dense(model, paths, client=None, size=None, scales=None, stride=None, batch=4, threads=1, progress=None):
    """Dense score maps of image files on a Dask cluster (convoy.dense per file); returns a
    DenseJobResult in the order of ``paths``. Each worker loads the converted model
    (fc_to_conv) once and keeps it, as score() does.

    model     path of the ONNX model (readable by every worker)
    paths     image files
    client    a distributed.Client; None starts a LocalCluster (see local_cluster) for this call
    size, scales, stride   as convoy.dense
    batch     files per task
    threads   threads per session on the workers
    progress  True for a bar on stderr, or a callable(done_images, total_images)
    """
    paths, model_path, chunks = _prepare_job("dense", model, paths, batch)

    own = client is None
    if own:
        client = local_cluster()
    t0 = time.perf_counter()
    try:
        info = client.submit(_dense_info, model_path, threads, stride, key="convoy-dense-info-" + uuid.uuid4().hex).result()
        results = _run_chunks(client, _dense_chunk, chunks, progress, "dense", model_path=model_path, size=size,
                              scales=scales, stride=stride, threads=threads)
    finally:
        if own:
            cluster = client.cluster
            client.close()
            cluster.close()
    worker_tasks = {}
    for r in results:
        worker_tasks[r["worker"]] = worker_tasks.get(r["worker"], 0) + 1
    return DenseJobResult(paths=paths, results=[d for r in results for d in r["results"]],
                          errors=[e for r in results for e in r["errors"]], labels=info["labels"],
                          crop_size=info["crop_size"], network_stride=info["network_stride"], stride=info["stride"],
                          passes=info["passes"], seconds=time.perf_counter() - t0, tasks=len(chunks),
                          task_seconds=sum(r["seconds"] for r in results),
                          task_cpu_seconds=sum(r["cpu_seconds"] for r in results), worker_tasks=worker_tasks)


# ---------------------------------------------------------------- command line

_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm",
                     ".jp2", ".exr", ".hdr", ".pic", ".ras", ".sr"}


def find_images(spec):
    """A directory (searched recursively for image extensions), a glob pattern (every matching
    file; ** recurses), or one file. Sorted."""
    if os.path.isdir(spec):
        found = []
        for root, dirs, files in os.walk(spec):
            dirs.sort()
            found += [os.path.join(root, f) for f in files if os.path.splitext(f)[1].lower() in _IMAGE_EXTENSIONS]
        return sorted(found)
    if os.path.isfile(spec):
        return [spec]
    return sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))


def _csv_field(s):
    s = str(s)
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _write_atomic(path, write):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _cmd_score(args):
    paths = find_images(args.images)
    if not paths:
        raise convoy.Error("%s: no image files found" % args.images)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler, timeout=args.connect_timeout)
    try:
        r = score(args.model, paths, client=client, batch=args.batch, top=1, threads=args.threads,
                  progress=not args.quiet)
    finally:
        if client is not None:
            client.close()

    lines = ["path,top1,top1_score,error\n"]
    for i, p in enumerate(r.paths):
        if r.errors[i] is None:
            lines.append("%s,%s,%.9g,\n" % (_csv_field(p), _csv_field(r.top1_label(i)), float(r.top_score[i, 0])))
        else:
            lines.append("%s,,,%s\n" % (_csv_field(p), _csv_field(r.errors[i])))
    if args.out:
        _write_atomic(args.out, lambda t: open(t, "w", encoding="utf-8").writelines(lines))
    else:
        sys.stdout.writelines(lines)
    if args.logits:
        def save(t):
            with open(t, "wb") as f:
                np.save(f, r.logits)
        _write_atomic(args.logits, save)
    failed = sum(e is not None for e in r.errors)
    print("convoy.distributed: %d images (%d failed) in %.2f s: %.1f images/s, %d tasks on %d workers"
          % (len(r.paths), failed, r.seconds, r.images_per_second, r.tasks, len(r.worker_tasks)), file=sys.stderr)
    return 0


def _output_names(paths, spec):
    """Output base names (no extension) under --outdir: the path relative to IMAGE_DIR (or to
    the files' common directory) without its extension; where two files would share one
    (a.png, a.jpg) they keep their extension (a.png, a.jpg -> a.png.npy, a.jpg.npy)."""
    base = spec if os.path.isdir(spec) else os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    rel = [os.path.relpath(os.path.abspath(p), os.path.abspath(base)) for p in paths]
    stems = [os.path.splitext(r)[0] for r in rel]
    count = {}
    for st in stems:
        count[st] = count.get(st, 0) + 1
    return [st if count[st] == 1 else r for st, r in zip(stems, rel)]


def _cmd_dense(args):
    paths = find_images(args.images)
    if not paths:
        raise convoy.Error("%s: no image files found" % args.images)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler, timeout=args.connect_timeout)
    try:
        r = dense(args.model, paths, client=client, size=args.size, scales=args.scales, stride=args.stride,
                  batch=args.batch, threads=args.threads, progress=not args.quiet)
    finally:
        if client is not None:
            client.close()

    import json

    names = _output_names(paths, args.images)
    os.makedirs(args.outdir, exist_ok=True)
    files = []
    for p, name, res, err in zip(r.paths, names, r.results, r.errors):
        entry = {"path": p, "error": err}
        if res is not None:
            outs = []
            for s, m in enumerate(res.maps):
                out = os.path.join(args.outdir, name + ("_s%d" % s if len(res.maps) > 1 else "") + ".npy")
                os.makedirs(os.path.dirname(out) or ".", exist_ok=True)

                def save(t, m=m):
                    with open(t, "wb") as f:
                        np.save(f, m)
                _write_atomic(out, save)
                outs.append(out)
            top = [(int(np.argmax(m[0].max(axis=(1, 2)))), float(m[0].max())) for m in res.maps]
            best = max(range(len(top)), key=lambda s: top[s][1])
            entry.update({"outputs": outs, "image_size": list(res.image_size),
                          "input_sizes": [list(g["input_size"]) for g in res.scales],
                          "map_sizes": [list(g["map_size"]) for g in res.scales],
                          "best_class": top[best][0], "best_score": top[best][1], "best_scale": best})
            if r.labels and top[best][0] < len(r.labels):
                entry["best_label"] = r.labels[top[best][0]]
        files.append(entry)
    failed = sum(e is not None for e in r.errors)
    summary = {"model": args.model, "crop_size": list(r.crop_size), "network_stride": r.network_stride,
               "stride": r.stride, "passes": r.passes, "labels": r.labels, "images": len(r.paths), "failed": failed,
               "seconds": r.seconds, "images_per_second": r.images_per_second, "files": files}
    _write_atomic(os.path.join(args.outdir, "summary.json"),
                  lambda t: open(t, "w", encoding="utf-8").write(json.dumps(summary, indent=1) + "\n"))
    print("convoy.distributed: %d images (%d failed) in %.2f s: %.1f images/s, %d tasks on %d workers; maps in %s"
          % (len(r.paths), failed, r.seconds, r.images_per_second, r.tasks, len(r.worker_tasks), args.outdir),
          file=sys.stderr)
    return 0


def _parse_size(text):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError("'%s' is not HxW (e.g. 384x384)" % text)
    return int(parts[0]), int(parts[1])


def _parse_scales(text):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a list of numbers (e.g. 1,1.5,2)" % text) from None
    if not all(0 < x <= 64 for x in v):
        raise argparse.ArgumentTypeError("scales must lie in (0, 64]")
    return v


def _parse_stride(text):
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("'%s' is neither auto nor a positive integer" % text)
    return int(text)


def _cluster_flags(p, batch):
    p.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler, e.g. tcp://HOST:8786 (default: a LocalCluster)")
    p.add_argument("--batch", type=int, default=batch, help="images per task (default %d)" % batch)
    p.add_argument("--threads", type=int, default=1, help="threads per session on each worker (default 1)")
    p.add_argument("--connect-timeout", type=float, default=30, help="seconds to wait for the scheduler (default 30)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m convoy.distributed",
                                     description="Score image files with a convoy model on a Dask cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="classify images; one CSV row per file",
                       description="Classify every image and write path,top1,top1_score,error per file, sorted by "
                                   "path. Files that cannot be decoded get an error entry; the job goes on.")
    p.add_argument("model", metavar="MODEL", help="ONNX model (readable by every worker under this path)")
    p.add_argument("images", metavar="IMAGE_DIR_OR_GLOB", help="a directory (recursive), a glob pattern, or a file")
    _cluster_flags(p, 32)
    p.add_argument("--out", metavar="FILE", help="write the CSV here (default: stdout)")
    p.add_argument("--logits", metavar="FILE", help="write the N x K float32 logits (.npy), rows in CSV order")
    d = sub.add_parser("dense", help="dense score maps (every crop position); one .npy per file",
                       description="Score every crop position of each image in one pass per scale (the model's "
                                   "fully-connected head as convolutions, as `convoy dense`) and write one float32 "
                                   ".npy [1, K, rows, cols] per image under --outdir (NAME.npy, or NAME_s0.npy, ... "
                                   "per scale) plus summary.json. Files that cannot be decoded get an error entry; "
                                   "the job goes on.")
    d.add_argument("model", metavar="MODEL", help="ONNX model (readable by every worker under this path)")
    d.add_argument("images", metavar="IMAGE_DIR_OR_GLOB", help="a directory (recursive), a glob pattern, or a file")
    d.add_argument("--outdir", metavar="DIR", required=True, help="where the .npy maps and summary.json go")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--size", type=_parse_size, metavar="HxW", help="stretch every image to HxW first")
    g.add_argument("--scales", type=_parse_scales, metavar="A,B,...", help="one pass per scale factor")
    d.add_argument("--stride", type=_parse_stride, default=None, metavar="auto|S",
                   help="output stride: auto (the network's) or a divisor of it (shifted passes)")
    _cluster_flags(d, 4)
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error("--batch must be >= 1")
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    try:
        args.images = os.fsdecode(args.images)
        return _cmd_score(args) if args.command == "score" else _cmd_dense(args)
    except (convoy.Error, OSError) as e:
        print("convoy.distributed: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run through the package module, so tasks pickle as convoy.distributed.* (not __main__.*)
    # and the workers' cache lives in one module.
    from convoy import distributed as _self

    sys.exit(_self.main())

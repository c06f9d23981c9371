"""convoy.distributed on a LocalCluster: score() against single-process InferenceSession output,
per-file error entries, one model load per worker, preprocessing overrides, and the
`python3 -m convoy.distributed score` command line. The demo model's images are also checked
against `convoy run MODEL IMAGE...`."""

import csv
import functools
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

import _util
import convoy
import convoy.distributed as cd


def pil_gray(path, mean, std):
    """A user preprocess callable (path -> (1, 28, 28)), for score(preprocess=callable)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("L").resize((28, 28)), dtype=np.float32)
    return ((a / np.float32(255) - np.float32(mean)) / np.float32(std))[None]


def single_process(model, paths, batch, load):
    """Logits and errors from one InferenceSession, chunk by chunk as score() cuts the paths."""
    sess = convoy.InferenceSession(model, threads=1)
    name = sess.get_inputs()[0].name
    rows, errors = [], []
    for i in range(0, len(paths), batch):
        x, errs = load(sess, paths[i:i + batch])
        (y,) = sess.run(None, {name: x})
        y[[j for j, e in enumerate(errs) if e is not None]] = np.nan
        rows.append(y)
        errors += errs
    return np.concatenate(rows), errors


def cpp_load(sess, chunk):
    return convoy.preprocess(sess, chunk, return_errors=True)


class LocalClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = _util.demo_model()
        cls.tmp = tempfile.mkdtemp(prefix="convoy-pydist-")
        cls.dir = os.path.join(cls.tmp, "images")
        good = _util.write_pngs(cls.dir, _util.fashion_images(300, seed=5))
        bad = _util.write_corrupt(cls.dir, ["img_00010_bad.png", "img_00123_bad.png", "img_00299_bad.png"])
        cls.paths = sorted(good + bad)
        cls.bad = set(bad)
        cls.client = cd.local_cluster(workers=2)

    @classmethod
    def tearDownClass(cls):
        cluster = cls.client.cluster
        cls.client.close()
        cluster.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_errors(self, paths, errors):
        for p, e in zip(paths, errors):
            if p in self.bad:
                self.assertIsNotNone(e, p)
                self.assertIn(os.path.basename(p), e)
            else:
                self.assertIsNone(e, p)

    def test_score_matches_single_process(self):
        batch = 16
        r = cd.score(self.model, self.paths, client=self.client, batch=batch, top=3)
        ref, ref_errors = single_process(self.model, self.paths, batch, cpp_load)
        self.assertEqual(r.paths, self.paths)
        self.assertEqual(r.logits.shape, (len(self.paths), 10))
        np.testing.assert_array_equal(_util.bits(r.logits), _util.bits(ref))
        self.assertEqual(r.errors, ref_errors)
        self.check_errors(r.paths, r.errors)
        # top-k: the CLI's order (score descending, lower index first on ties)
        for i, p in enumerate(r.paths):
            if p in self.bad:
                self.assertEqual(list(r.top_index[i]), [-1, -1, -1])
                continue
            order = sorted(range(10), key=lambda c: (-ref[i, c], c))[:3]
            self.assertEqual(list(r.top_index[i]), order)
            self.assertEqual(list(r.top_score[i]), [ref[i, c] for c in order])
        self.assertEqual(len(r.labels), 10)
        self.assertEqual(r.tasks, (len(self.paths) + batch - 1) // batch)
        # A second job reuses the sessions: each worker process loaded the model once.
        cd.score(self.model, self.paths[:50], client=self.client, batch=batch)
        loads = self.client.run(cd.cache_info)
        self.assertEqual(len(loads), 2)
        for info in loads.values():
            self.assertLessEqual(len(info["loads"]), 1, info)
        self.assertEqual(sum(len(i["loads"]) for i in loads.values()), len(r.worker_tasks))

    def test_preprocess_overrides(self):
        paths = self.paths[:40]
        over = {"mean": [0.5], "std": [0.25]}
        r = cd.score(self.model, paths, client=self.client, batch=7, preprocess=over)
        ref, _ = single_process(self.model, paths, 7, lambda s, c: convoy.preprocess(s, c, return_errors=True, **over))
        np.testing.assert_array_equal(_util.bits(r.logits), _util.bits(ref))

        fn = functools.partial(pil_gray, mean=0.3, std=0.35)

        def load(sess, chunk):
            errs = [None if p not in self.bad else "bad" for p in chunk]
            x = np.zeros((len(chunk), 1, 28, 28), np.float32)
            for j, p in enumerate(chunk):
                if errs[j] is None:
                    x[j] = fn(p)
            return x, errs

        r = cd.score(self.model, paths, client=self.client, batch=7, preprocess=fn)
        ref, _ = single_process(self.model, paths, 7, load)
        np.testing.assert_array_equal(_util.bits(r.logits), _util.bits(ref))
        self.check_errors(r.paths, r.errors)

    def test_bad_model_is_one_error(self):
        with self.assertRaises(convoy.Error):
            cd.score(os.path.join(self.tmp, "missing.onnx"), self.paths[:3], client=self.client)
        garbage = os.path.join(self.tmp, "garbage.onnx")
        with open(garbage, "wb") as f:
            f.write(b"not a model")
        with self.assertRaises(convoy.Error) as cm:
            cd.score(garbage, self.paths[:3], client=self.client)
        self.assertIn("garbage.onnx", str(cm.exception))

    def test_demo_images_match_cli(self):
        paths = [p for p in self.paths if p not in self.bad][:20]
        sess = convoy.InferenceSession(self.model)
        (y,) = sess.run(None, {"input": convoy.preprocess(sess, paths)})
        cli = _util.cli_logits(self.model, *paths, tmp=self.tmp)
        np.testing.assert_array_equal(_util.bits(y), _util.bits(cli))

    def run_cli(self, *args):
        env = dict(os.environ)
        p = subprocess.run([_util.python(), "-m", "convoy.distributed", *args], capture_output=True, text=True,
                           timeout=240, env=env)
        return p

    def check_cli_outputs(self, out_csv, logits_npy, stderr, batch):
        with open(out_csv, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["path", "top1", "top1_score", "error"])
        rows = rows[1:]
        self.assertEqual([r[0] for r in rows], self.paths)  # sorted by path, each file once
        ref, _ = single_process(self.model, self.paths, batch, cpp_load)
        np.testing.assert_array_equal(_util.bits(np.load(logits_npy)), _util.bits(ref))
        labels = convoy.InferenceSession(self.model).get_modelmeta().custom_metadata_map["convoy.labels"].split("\n")
        for i, (path, top1, score, error) in enumerate(rows):
            if path in self.bad:
                self.assertEqual((top1, score), ("", ""))
                self.assertIn(os.path.basename(path), error)
            else:
                c = sorted(range(10), key=lambda k: (-ref[i, k], k))[0]
                self.assertEqual((top1, error), (labels[c], ""))
                self.assertEqual(np.float32(float(score)), ref[i, c])
        self.assertIn("images/s", stderr)
        self.assertIn("%d images (3 failed)" % len(self.paths), stderr)

    def test_cli_with_scheduler(self):
        out, logits = os.path.join(self.tmp, "a.csv"), os.path.join(self.tmp, "a.npy")
        p = self.run_cli("score", self.model, self.dir, "--scheduler", self.client.scheduler.address, "--batch", "24",
                         "--out", out, "--logits", logits)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_cli_outputs(out, logits, p.stderr, 24)

    def test_cli_local_cluster_and_glob(self):
        out, logits = os.path.join(self.tmp, "b.csv"), os.path.join(self.tmp, "b.npy")
        p = self.run_cli("score", self.model, os.path.join(self.dir, "*.png"), "--out", out, "--logits", logits)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_cli_outputs(out, logits, p.stderr, 32)

    def test_cli_errors(self):
        p = self.run_cli("score", self.model, os.path.join(self.tmp, "nothing-*.png"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no image files found", p.stderr)
        p = self.run_cli("score", self.model, self.dir, "--batch", "0")
        self.assertEqual(p.returncode, 2)
        p = self.run_cli("score")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()

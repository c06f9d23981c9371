"""Dense scoring from Python: convoy.dense against `convoy dense ... --output/--json` (bit for bit,
same geometry), convoy.distributed.dense on a LocalCluster against single-process convoy.dense,
per-file error entries, and `python3 -m convoy.distributed dense ... --outdir`. The demo model on
the demo collage (models/demo/collage.png, 168x168: crop 28, network stride 8)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

import _util
import convoy
import convoy.distributed as cd


def cli_dense(model, image, tmp, *flags):
    """`convoy dense MODEL IMAGE FLAGS --output x.npy --json x.json`: (maps, json)."""
    out = os.path.join(tmp, "cli_%d.npy" % len(os.listdir(tmp)))
    js = out[:-4] + ".json"
    _util.run_cli("dense", model, image, *flags, "--output", out, "--json", js, "--top", "0")
    with open(js) as f:
        geometry = json.load(f)
    return [np.load(s["output"]) for s in geometry["scales"]], geometry


class DenseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = _util.demo_model()
        cls.collage = os.path.join(_util.SOURCE_DIR, "models", "demo", "collage.png")
        cls.tmp = tempfile.mkdtemp(prefix="convoy-pydense-")
        cls.sess = convoy.InferenceSession(cls.model, fc_to_conv=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_same(self, r, maps, geometry):
        self.assertEqual(len(r.maps), len(maps))
        for got, ref in zip(r.maps, maps):
            self.assertEqual(got.dtype, np.float32)
            self.assertEqual(got.shape, ref.shape)
            np.testing.assert_array_equal(_util.bits(got), _util.bits(ref))
        self.assertEqual(list(r.crop_size), geometry["crop_size"])
        self.assertEqual(r.network_stride, geometry["network_stride"])
        self.assertEqual(r.stride, geometry["stride"])
        self.assertEqual(r.passes, geometry["passes"])
        for g, ref in zip(r.scales, geometry["scales"]):
            self.assertEqual(list(g["input_size"]), ref["input_size"])
            self.assertEqual(list(g["map_size"]), ref["map_size"])
            self.assertEqual(g["row_origins"], ref["row_origins"])
            self.assertEqual(g["col_origins"], ref["col_origins"])
            np.testing.assert_allclose(g["scale"], ref["scale"], rtol=1e-8)
            np.testing.assert_allclose(g["image_row_origins"], ref["image_row_origins"], rtol=1e-8)
            np.testing.assert_allclose(g["image_col_origins"], ref["image_col_origins"], rtol=1e-8)
            np.testing.assert_allclose(g["image_crop_size"], ref["image_crop_size"], rtol=1e-8)

    def test_matches_cli_at_image_size(self):
        maps, geometry = cli_dense(self.model, self.collage, self.tmp)
        r = convoy.dense(self.model, self.collage)
        self.check_same(r, maps, geometry)
        # The documented demo geometry (docs/DENSE.md): 19x19 cells, crops 28x28 every 8 pixels.
        self.assertEqual(r.scores.shape, (1, 10, 19, 19))
        self.assertEqual(r.crop_size, (28, 28))
        self.assertEqual(r.scales[0]["row_origins"], list(range(0, 19 * 8, 8)))
        self.assertEqual(r.image_size, (168, 168))
        self.assertEqual(len(r.labels), 10)

    def test_matches_cli_size_scales_stride(self):
        for flags, kwargs in [(("--size", "150x200"), {"size": (150, 200)}),
                              (("--size", "61x90"), {"size": "61x90"}),
                              (("--scales", "1,0.7,1.3"), {"scales": [1, 0.7, 1.3]}),
                              (("--stride", "4"), {"stride": 4}),
                              (("--scales", "1.1,0.5", "--stride", "2"), {"scales": (1.1, 0.5), "stride": 2})]:
            with self.subTest(flags=flags):
                maps, geometry = cli_dense(self.model, self.collage, self.tmp, *flags)
                self.check_same(convoy.dense(self.sess, self.collage, **kwargs), maps, geometry)

    def test_array_input_matches_cli_input(self):
        x = np.random.default_rng(3).standard_normal((2, 1, 45, 70)).astype(np.float32)
        npy = os.path.join(self.tmp, "x.npy")
        np.save(npy, x)
        out = os.path.join(self.tmp, "x_out.npy")
        _util.run_cli("dense", self.model, "--input", npy, "--output", out, "--stride", "2", "--top", "0")
        r = convoy.dense(self.sess, x, stride=2)
        np.testing.assert_array_equal(_util.bits(r.scores), _util.bits(np.load(out)))
        self.assertIsNone(r.image_size)

    def test_errors(self):
        bad = _util.write_corrupt(self.tmp, ["broken.png"])[0]
        with self.assertRaises(convoy.Error) as e:
            convoy.dense(self.sess, bad)
        self.assertIn("broken.png", str(e.exception))
        self.assertEqual(str(e.exception), _util.cli_error("dense", self.model, bad))
        # Messages as the CLI's.
        for flags, kwargs in [(("--stride", "3"), {"stride": 3}), (("--size", "20x100"), {"size": (20, 100)})]:
            with self.subTest(flags=flags):
                with self.assertRaises(convoy.Error) as e:
                    convoy.dense(self.sess, self.collage, **kwargs)
                self.assertEqual(str(e.exception), _util.cli_error("dense", self.model, self.collage, *flags))
        with self.assertRaisesRegex(convoy.Error, "not both"):
            convoy.dense(self.sess, self.collage, size=(100, 100), scales=[1])
        with self.assertRaisesRegex(convoy.Error, "float32"):
            convoy.dense(self.sess, np.zeros((1, 1, 40, 40)))
        # A session without the conversion gives no score map.
        with self.assertRaisesRegex(convoy.Error, "fc_to_conv=True"):
            convoy.dense(convoy.InferenceSession(self.model), np.zeros((1, 1, 28, 28), np.float32))


class DistributedDenseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from PIL import Image

        cls.model = _util.demo_model()
        collage = os.path.join(_util.SOURCE_DIR, "models", "demo", "collage.png")
        cls.tmp = tempfile.mkdtemp(prefix="convoy-pydense-dist-")
        cls.dir = os.path.join(cls.tmp, "images")
        os.makedirs(os.path.join(cls.dir, "sub"))
        with Image.open(collage) as im:
            im = im.convert("L")
            variants = [im, im.crop((0, 0, 120, 168)), im.crop((40, 30, 168, 100)), im.resize((100, 130)),
                        im.crop((10, 10, 30, 30))]  # the last is smaller than one crop: an error entry
        cls.paths = []
        for i, v in enumerate(variants):
            p = os.path.join(cls.dir, "sub" if i == 2 else "", "v%d.png" % i)
            v.save(p)
            cls.paths.append(p)
        cls.paths += _util.write_corrupt(cls.dir, ["broken.png"])
        cls.paths.sort()
        cls.bad = {os.path.join(cls.dir, "v4.png"), os.path.join(cls.dir, "broken.png")}
        cls.client = cd.local_cluster(workers=2)

    @classmethod
    def tearDownClass(cls):
        cluster = cls.client.cluster
        cls.client.close()
        cluster.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def reference(self, path, **kwargs):
        sess = convoy.InferenceSession(self.model, threads=1, fc_to_conv=True)
        return convoy.dense(sess, path, **kwargs)

    def test_matches_single_process(self):
        for kwargs in [{}, {"scales": [1, 1.5], "stride": 4}]:
            with self.subTest(**kwargs):
                r = cd.dense(self.model, self.paths, client=self.client, batch=2, **kwargs)
                self.assertEqual(r.paths, self.paths)
                self.assertEqual(len(r.results), len(self.paths))
                self.assertEqual(r.crop_size, (28, 28))
                self.assertEqual(r.network_stride, 8)
                for p, res, err in zip(self.paths, r.results, r.errors):
                    if p in self.bad:
                        self.assertIsNone(res, p)
                        self.assertIn(os.path.basename(p), err)
                        continue
                    self.assertIsNone(err, p)
                    ref = self.reference(p, **kwargs)
                    self.assertEqual(len(res.maps), len(ref.maps))
                    for got, want in zip(res.maps, ref.maps):
                        np.testing.assert_array_equal(_util.bits(got), _util.bits(want))
                    self.assertEqual(res.scales, ref.scales)
        self.assertIn("smaller than the 28x28 crop", r.errors[self.paths.index(os.path.join(self.dir, "v4.png"))])
        # One converted-model load per worker process, whatever the number of tasks.
        loads = [info["loads"].count(os.path.realpath(self.model)) for info in self.client.run(cd.cache_info).values()]
        self.assertLessEqual(max(loads), 1, loads)
        self.assertGreaterEqual(sum(loads), 1, loads)

    def test_cli_writes_npy(self):
        outdir = os.path.join(self.tmp, "out")
        p = subprocess.run([_util.python(), "-m", "convoy.distributed", "dense", self.model, self.dir, "--outdir", outdir,
                            "--size", "64x80", "--quiet"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("6 images (1 failed)", p.stderr)
        with open(os.path.join(outdir, "summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["crop_size"], [28, 28])
        self.assertEqual([e["path"] for e in summary["files"]], self.paths)
        for e in summary["files"]:
            rel = os.path.splitext(os.path.relpath(e["path"], self.dir))[0]
            out = os.path.join(outdir, rel + ".npy")
            if e["path"].endswith("broken.png"):
                self.assertIn("broken.png", e["error"])
                self.assertFalse(os.path.exists(out))
                continue
            self.assertIsNone(e["error"])
            self.assertEqual(e["outputs"], [out])
            ref = self.reference(e["path"], size=(64, 80))
            np.testing.assert_array_equal(_util.bits(np.load(out)), _util.bits(ref.scores))
        self.assertFalse([f for _, _, fs in os.walk(outdir) for f in fs if ".tmp-" in f])


if __name__ == "__main__":
    unittest.main()

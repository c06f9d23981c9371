"""convoy.InferenceSession on torchvision exports: bit-for-bit equal to the `convoy` CLI, within
1e-4 * max|ref| of PyTorch, safe from several Python threads, strict about bad inputs; and
convoy.preprocess equal to `convoy run MODEL IMAGE`."""

import os
import shutil
import tempfile
import threading
import unittest

import numpy as np

import _util
import convoy


class TorchvisionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="convoy-pytest-")
        cls.resnet = os.path.join(cls.tmp, "resnet18.onnx")
        cls.alexnet = os.path.join(cls.tmp, "alexnet.onnx")
        cls.torch_resnet = _util.export_torchvision("resnet18", cls.resnet, seed=1)
        cls.torch_alexnet = _util.export_torchvision("alexnet", cls.alexnet, seed=2)
        seed = 1234
        print("input seed", seed)
        cls.x = np.random.default_rng(seed).standard_normal((2, 3, 224, 224), dtype=np.float32)
        cls.x_npy = os.path.join(cls.tmp, "x.npy")
        np.save(cls.x_npy, cls.x)
        cls.sess = convoy.InferenceSession(cls.resnet)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_model(self, path, torch_model):
        sess = convoy.InferenceSession(path)
        (y,) = sess.run(None, {"input": self.x})
        self.assertEqual(y.dtype, np.float32)
        self.assertEqual(y.shape, (2, 1000))
        cli = _util.cli_logits(path, tmp=self.tmp, npy=self.x_npy)
        np.testing.assert_array_equal(_util.bits(y), _util.bits(cli))
        ref = _util.torch_forward(torch_model, self.x)
        err = float(np.max(np.abs(y - ref)))
        bound = 1e-4 * float(np.max(np.abs(ref)))
        print("%s: max |convoy - torch| = %.3g (bound %.3g)" % (os.path.basename(path), err, bound))
        self.assertLessEqual(err, bound)

    def test_resnet18_matches_cli_and_pytorch(self):
        self.check_model(self.resnet, self.torch_resnet)

    def test_alexnet_matches_cli_and_pytorch(self):
        self.check_model(self.alexnet, self.torch_alexnet)

    def test_node_args(self):
        (i,) = self.sess.get_inputs()
        (o,) = self.sess.get_outputs()
        self.assertEqual((i.name, i.shape, i.type), ("input", [None, 3, 224, 224], "tensor(float)"))
        self.assertEqual((o.name, o.type), ("logits", "tensor(float)"))
        self.assertEqual(o.shape[1], 1000)
        self.assertEqual(self.sess.get_providers(), ["CPUExecutionProvider"])

    def test_output_names_and_bytes_model(self):
        (a,) = self.sess.run(["logits"], {"input": self.x[:1]})
        with open(self.resnet, "rb") as f:
            other = convoy.InferenceSession(f.read(), threads=1)
        (b,) = other.run(None, {"input": self.x[:1]})
        np.testing.assert_array_equal(_util.bits(a), _util.bits(b))

    def _expected_rows(self, inputs):
        sess = convoy.InferenceSession(self.resnet, threads=1)
        return [sess.run(None, {"input": x})[0] for x in inputs]

    def _run_threads(self, sessions, inputs, rounds=3):
        results = [[None] * rounds for _ in inputs]
        failures = []

        def work(t):
            try:
                for r in range(rounds):
                    results[t][r] = sessions[t].run(None, {"input": inputs[t]})[0]
            except Exception as e:  # reported below, not swallowed
                failures.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        self.assertFalse(any(t.is_alive() for t in threads), "a thread hung")
        self.assertEqual(failures, [])
        return results

    def test_four_threads_one_session(self):
        rng = np.random.default_rng(7)
        inputs = [rng.standard_normal((1, 3, 224, 224), dtype=np.float32) for _ in range(4)]
        expected = self._expected_rows(inputs)
        sess = convoy.InferenceSession(self.resnet, threads=1)
        results = self._run_threads([sess] * 4, inputs)
        for t in range(4):
            for y in results[t]:
                np.testing.assert_array_equal(_util.bits(y), _util.bits(expected[t]))

    def test_four_sessions_concurrently(self):
        rng = np.random.default_rng(8)
        inputs = [rng.standard_normal((1, 3, 224, 224), dtype=np.float32) for _ in range(4)]
        expected = self._expected_rows(inputs)
        model = convoy.load_model(self.resnet)  # one model, four sessions
        sessions = [convoy.InferenceSession(model, threads=1) for _ in range(4)]
        results = self._run_threads(sessions, inputs)
        for t in range(4):
            for y in results[t]:
                np.testing.assert_array_equal(_util.bits(y), _util.bits(expected[t]))

    def test_contiguous_input_is_not_copied(self):
        sess = convoy.InferenceSession(self.resnet, threads=1)
        sess.run(None, {"input": self.x})
        self.assertEqual(sess._session.input_copies, 0)

    def test_noncontiguous_views_match_contiguous(self):
        sess = convoy.InferenceSession(self.resnet, threads=1)
        (ref,) = sess.run(None, {"input": self.x})
        # A transposed view (W and H swapped back), a batch-strided slice, a Fortran-order copy and
        # big-endian float32: each copied once, each the same result.
        t = np.ascontiguousarray(self.x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        self.assertFalse(t.flags.c_contiguous)
        doubled = np.repeat(self.x, 2, axis=0)[::2]
        self.assertFalse(doubled.flags.c_contiguous)
        fortran = np.asfortranarray(self.x)
        swapped = self.x.astype(">f4")
        for view in (t, doubled, fortran, swapped):
            (y,) = sess.run(None, {"input": view})
            np.testing.assert_array_equal(_util.bits(y), _util.bits(ref))
        self.assertEqual(sess._session.input_copies, 4)

    def assertConvoyError(self, fn, *fragments):
        with self.assertRaises(convoy.Error) as cm:
            fn()
        self.assertIsInstance(cm.exception, RuntimeError)
        for f in fragments:
            self.assertIn(f, str(cm.exception))
        return str(cm.exception)

    def test_bad_inputs_raise(self):
        run = self.sess.run
        x = self.x
        self.assertConvoyError(lambda: run(None, {"input": x.astype(np.float64)}), "'input'", "float32", "float64")
        self.assertConvoyError(lambda: run(None, {"input": x.astype(np.int64)}), "'input'", "float32", "int64")
        self.assertConvoyError(lambda: run(None, {"input": (x * 100).astype(np.int32)}), "int32")
        self.assertConvoyError(lambda: run(None, {"input": x.astype(np.float16)}), "float16")
        self.assertConvoyError(lambda: run(None, {"input": x[0]}), "'input'", "[?,3,224,224]", "[3,224,224]")
        self.assertConvoyError(lambda: run(None, {"input": x[:, :2]}), "'input'", "[?,3,224,224]", "[2,2,224,224]")
        self.assertConvoyError(lambda: run(None, {"input": x[:, :, :100]}), "[2,3,100,224]")
        self.assertConvoyError(lambda: run(None, {"image": x}), "unknown input 'image'", "'input'")
        self.assertConvoyError(lambda: run(None, {}), "input 'input' is missing")
        self.assertConvoyError(lambda: run(["probs"], {"input": x}), "unknown output 'probs'", "'logits'")
        self.assertConvoyError(lambda: run(None, {"input": x.tolist()}), "numpy.ndarray", "list")
        self.assertConvoyError(lambda: run(None, [x]), "dict")

    def test_bad_model_files_raise_the_cli_message(self):
        missing = os.path.join(self.tmp, "missing.onnx")
        msg = self.assertConvoyError(lambda: convoy.InferenceSession(missing), "missing.onnx")
        self.assertEqual(msg, _util.cli_error("run", missing, "--input", self.x_npy))

        truncated = os.path.join(self.tmp, "truncated.onnx")
        with open(self.resnet, "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        msg = self.assertConvoyError(lambda: convoy.InferenceSession(truncated), "truncated.onnx")
        self.assertEqual(msg, _util.cli_error("run", truncated, "--input", self.x_npy))

        garbage = os.path.join(self.tmp, "garbage.onnx")
        with open(garbage, "wb") as f:
            f.write(b"this is not a protobuf" * 10)
        msg = self.assertConvoyError(lambda: convoy.InferenceSession(garbage), "garbage.onnx")
        self.assertEqual(msg, _util.cli_error("run", garbage, "--input", self.x_npy))
        self.assertConvoyError(lambda: convoy.InferenceSession(self.resnet, threads=-1), "threads")

    def test_images_match_cli(self):
        from PIL import Image

        rng = np.random.default_rng(3)
        # Odd sizes and aspect ratios exercise resize + centre crop; one JPEG, one PNG.
        paths = []
        for i, (h, w, ext) in enumerate([(300, 200, "jpg"), (181, 263, "png"), (224, 224, "png")]):
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            img[: h // 2] //= 2  # some structure, so the crop position matters
            p = os.path.join(self.tmp, "color_%d.%s" % (i, ext))
            Image.fromarray(img, mode="RGB").save(p)
            paths.append(p)
        x = convoy.preprocess(self.sess, paths)
        self.assertEqual((x.dtype, x.shape), (np.float32, (3, 3, 224, 224)))
        (y,) = self.sess.run(None, {"input": x})
        cli = _util.cli_logits(self.resnet, *paths, tmp=self.tmp)
        np.testing.assert_array_equal(_util.bits(y), _util.bits(cli))
        # Flag overrides follow the CLI's flags.
        x2 = convoy.preprocess(self.resnet, paths[:1], mean=[0.5, 0.5, 0.5], std=[0.25], scale=255.0, bgr=True)
        (y2,) = self.sess.run(None, {"input": x2})
        out = os.path.join(self.tmp, "flags.npy")
        _util.run_cli("run", self.resnet, paths[0], "--mean", "0.5,0.5,0.5", "--std", "0.25", "--scale", "255", "--bgr",
                      "--output", out)
        np.testing.assert_array_equal(_util.bits(y2), _util.bits(np.load(out)))

    def test_image_errors(self):
        missing = os.path.join(self.tmp, "nope.png")
        msg = self.assertConvoyError(lambda: convoy.preprocess(self.sess, [missing]), "nope.png")
        self.assertEqual(msg, _util.cli_error("run", self.resnet, missing))
        bad = _util.write_corrupt(self.tmp, ["trunc.png", "text.png", "empty.png"])
        for p in bad:
            msg = self.assertConvoyError(lambda: convoy.preprocess(self.sess, [p]), os.path.basename(p))
            self.assertEqual(msg, _util.cli_error("run", self.resnet, p))
        good = os.path.join(self.tmp, "good.png")
        from PIL import Image

        Image.fromarray(np.full((50, 60, 3), 128, np.uint8), mode="RGB").save(good)
        x, errors = convoy.preprocess(self.sess, [good, bad[0], missing], return_errors=True)
        self.assertEqual(x.shape, (3, 3, 224, 224))
        self.assertIsNone(errors[0])
        self.assertIn("trunc.png", errors[1])
        self.assertIn("nope.png", errors[2])
        self.assertFalse(x[1:].any())
        np.testing.assert_array_equal(_util.bits(x[:1]), _util.bits(convoy.preprocess(self.sess, [good])))


if __name__ == "__main__":
    unittest.main()

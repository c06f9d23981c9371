"""A real Dask cluster on 127.0.0.1: `dask scheduler` + two `dask worker` processes score 2,000+
generated images with the demo model; one worker is killed with SIGKILL mid-run and a
replacement started. Every file must get exactly one result, equal bit for bit to a
single-process InferenceSession over the same chunks, and the job must finish. Every process is
bounded by timeouts and killed at the end."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import numpy as np

import _util
import convoy
import convoy.distributed as cd

N_IMAGES = 2000
BATCH = 8
JOB_TIMEOUT_S = 150


class RealClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="convoy-pycluster-")
        self.procs = {}
        self.logs = []

    def tearDown(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.kill()
        for name, p in self.procs.items():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print("process %s (pid %d) did not exit" % (name, p.pid))
        for f in self.logs:
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, name, *args):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(["dask", *args], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=dict(os.environ))
        return self.procs[name]

    def start_worker(self, name):
        # No nanny: the killed process is the worker itself, not restarted behind our back.
        return self.start(name, "worker", "--scheduler-file", self.scheduler_file, "--host", "127.0.0.1",
                          "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name, "--death-timeout", "60")

    def log_tail(self, name):
        with open(os.path.join(self.tmp, name + ".log")) as f:
            return "".join(f.readlines()[-20:])

    def test_kill_worker_mid_run(self):
        from distributed import Client

        model = _util.demo_model()
        images = os.path.join(self.tmp, "images")
        paths = _util.write_pngs(images, _util.fashion_images(N_IMAGES, seed=11))
        bad = _util.write_corrupt(images, ["img_00500_bad.png", "img_01500_bad.png"])
        paths = sorted(paths + bad)
        print("%d images, %d undecodable, batch %d" % (len(paths), len(bad), BATCH))

        self.scheduler_file = os.path.join(self.tmp, "scheduler.json")
        self.start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", self.scheduler_file)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.scheduler_file):
            self.assertLess(time.monotonic(), deadline, "scheduler did not start:\n" + self.log_tail("scheduler"))
            self.assertIsNone(self.procs["scheduler"].poll(), self.log_tail("scheduler"))
            time.sleep(0.2)
        self.start_worker("w1")
        self.start_worker("w2")
        client = Client(scheduler_file=self.scheduler_file, timeout=60)
        try:
            client.wait_for_workers(2, timeout=90)
            # Load the model on both workers before the clock matters (not required for correctness).
            victim = self.procs["w1"]
            state = {"killed_at": None}

            def on_progress(done, total):
                if state["killed_at"] is None and done >= total // 4:
                    victim.send_signal(signal.SIGKILL)
                    state["killed_at"] = done
                    self.start_worker("w3")

            outcome = {}

            def job():
                try:
                    outcome["result"] = cd.score(model, paths, client=client, batch=BATCH, progress=on_progress)
                except BaseException as e:  # reported by the main thread
                    outcome["error"] = e

            t = threading.Thread(target=job, daemon=True)
            t.start()
            t.join(JOB_TIMEOUT_S)
            self.assertFalse(t.is_alive(), "the job did not finish within %d s" % JOB_TIMEOUT_S)
            self.assertNotIn("error", outcome)
            r = outcome["result"]

            print("killed w1 after %s of %d images; job %.1f s, %.0f images/s; tasks per worker: %s"
                  % (state["killed_at"], len(paths), r.seconds, r.images_per_second, r.worker_tasks))
            self.assertIsNotNone(state["killed_at"])
            self.assertLess(state["killed_at"], len(paths))
            self.assertEqual(victim.wait(timeout=30), -signal.SIGKILL)

            # Exactly one result per file, in the order given, equal to a single process.
            self.assertEqual(r.paths, paths)
            self.assertEqual(r.logits.shape, (len(paths), 10))
            self.assertEqual(sum(r.worker_tasks.values()), r.tasks)
            sess = convoy.InferenceSession(model, threads=1)
            for i in range(0, len(paths), BATCH):
                x, errs = convoy.preprocess(sess, paths[i:i + BATCH], return_errors=True)
                (y,) = sess.run(None, {"input": x})
                for j, e in enumerate(errs):
                    self.assertEqual(r.errors[i + j], e)
                    if e is None:
                        np.testing.assert_array_equal(_util.bits(r.logits[i + j]), _util.bits(y[j]))
                    else:
                        self.assertTrue(np.isnan(r.logits[i + j]).all())
            self.assertEqual([p for p, e in zip(paths, r.errors) if e is not None], sorted(bad))

            # The replacement joins the cluster; each live worker loaded the model at most once.
            client.wait_for_workers(2, timeout=90)
            for addr, info in client.run(cd.cache_info).items():
                self.assertLessEqual(len(info["loads"]), 1, (addr, info))
        finally:
            client.close()


if __name__ == "__main__":
    unittest.main()

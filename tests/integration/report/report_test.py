#!/usr/bin/python3
"""sy-report end to end: a real sy-local cluster run (2 hosts x 2 trainers, checkpoints,
one expert host SIGKILLed so the run recovers) and a sy-trainer --standalone run,
reported one by one and together. The pictures must be real PNG images with content
(decoded by matplotlib, not one colour), the page must show every one of them, and a
missing or corrupt run directory must exit 2 and write nothing. Also checks the series
the pictures need: per-layer dropped fractions, host load, checkpoints and rollbacks.

Run by ctest (tests/integration/report/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 report_test.py ReportTest.test_x
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

import matplotlib.image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster_harness import BIN_DIR, TINY, ClusterCase  # noqa: E402

SY_REPORT = os.path.join(BIN_DIR, "sy-report")
SY_TRAINER = os.path.join(BIN_DIR, "sy-trainer")
# The kill leaves 28 steps after it: sy-local sees the step count by polling a log, and on a
# loaded machine it may act several steps late; the new placement must still show in a step.
STEPS = 36
CLUSTER_FLAGS = ["--checkpoint_every=6", "--kill_host_at_step=8",
                 "--coordinator_args=--auto_rebalance=false"]


def report(*args):
    return subprocess.run([SY_REPORT] + list(args), capture_output=True, text=True, timeout=120)


class ReportCase(ClusterCase):
    def standalone(self, name):
        workdir = os.path.join(self.root, name)
        proc = subprocess.run([SY_TRAINER, "--standalone", "--steps=%d" % STEPS, "--data=" + self.corpus,
                               "--workdir=" + workdir] + TINY, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        return workdir

    def assert_report(self, out_dir, page, prefix, proc):
        """The page printed is `page` in `out_dir`; every PNG of `prefix` is a picture it shows."""
        self.assertEqual(proc.returncode, 0, proc.stderr)
        path = os.path.join(out_dir, page)
        self.assertEqual(proc.stdout.strip(), path)
        with open(path) as f:
            text = f.read()
        shown = set(re.findall(r'<img src="([^"]+)"', text))
        pictures = {os.path.basename(p) for p in glob.glob(os.path.join(out_dir, prefix + "*.png"))}
        self.assertTrue(pictures)
        self.assertEqual(shown, pictures, "the page must show exactly the pictures written")
        for name in pictures:
            self.assert_picture(os.path.join(out_dir, name))
        return text, pictures

    def assert_picture(self, path):
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
        self.assertGreater(os.path.getsize(path), 5000, path)
        pixels = matplotlib.image.imread(path)
        self.assertGreaterEqual(pixels.shape[0], 200, path)
        self.assertGreaterEqual(pixels.shape[1], 400, path)
        colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::7].tolist()}
        self.assertGreater(len(colours), 10, "%s is (nearly) one colour" % path)


class ReportTest(ReportCase):
    def test_cluster_standalone_and_comparison_reports(self):
        cluster = self.ok("cluster", 2, 2, CLUSTER_FLAGS, steps=STEPS)
        standalone = self.standalone("standalone")

        # The series behind the pictures.
        summary = cluster.summary()
        for step in cluster.steps():
            layers = step["switch_layer_dropped_frac"]
            self.assertEqual(len(layers), 2)  # two Switch layers
            self.assertAlmostEqual(sum(layers) / 2, step["dropped_frac"], places=9)
        self.assertIn(STEPS, summary["checkpoint_steps"])
        self.assertEqual([s["step"] for s in summary["host_load_per_step"]][-1], STEPS)
        self.assertEqual(len(summary["rollbacks"]), summary["recoveries"])
        self.assertGreaterEqual(summary["rollbacks"][0]["reached_step"], summary["rollbacks"][0]["to_step"])

        text, pictures = self.assert_report(cluster.workdir, "report.html", "report_", report(cluster.workdir))
        self.assertTrue({"report_loss.png", "report_throughput.png", "report_dropped.png", "report_host_load.png",
                         "report_expert_load_layer0.png", "report_expert_load_layer1.png"} <= pictures)
        self.assertIn(summary["param_checksum"], text)
        self.assertIn("rollback to step", text)
        self.assertIn("placement epoch", text)

        text, pictures = self.assert_report(standalone, "report.html", "report_", report(standalone))
        self.assertNotIn("report_host_load.png", pictures)
        self.assertIn("standalone", text)

        out = os.path.join(self.root, "compared")
        text, pictures = self.assert_report(out, "comparison.html", "compare_",
                                            report(cluster.workdir, standalone, "--out=" + out))
        self.assertIn("compare_loss.png", pictures)
        self.assertIn("cluster", text)
        self.assertIn("standalone", text)

    def test_missing_or_corrupt_run_dir_exits_2_and_writes_nothing(self):
        missing = os.path.join(self.root, "no_such_run")
        proc = report(missing)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("no_such_run is not a directory", proc.stderr)
        self.assertFalse(os.path.exists(missing))

        run = os.path.join(self.root, "corrupt")
        os.makedirs(run)
        with open(os.path.join(run, "summary.json"), "w") as f:
            f.write('{"steps":1,"final_loss":2.5,"param_checksum":"00","median_tokens_per_s":10}\n')
        cases = [("", "metrics.jsonl holds no step"),
                 ('{"step":1,"loss":2.5,"tokens_per_s":10,"dropped_frac":0,"expert_tokens":[[1,', "not JSON"),
                 ('{"step":1,"loss":2.5,"tokens_per_s":10,"dropped_frac":0}\n', 'missing field "expert_tokens"'),
                 ('{"step":1,"loss":"low","tokens_per_s":10,"dropped_frac":0,"expert_tokens":[]}\n', '"loss"')]
        for metrics, error in cases:
            with open(os.path.join(run, "metrics.jsonl"), "w") as f:
                f.write(metrics)
            proc = report(run)
            self.assertEqual(proc.returncode, 2, metrics)
            self.assertIn(error, proc.stderr)
            self.assertEqual(sorted(os.listdir(run)), ["metrics.jsonl", "summary.json"])
        os.remove(os.path.join(run, "summary.json"))
        with open(os.path.join(run, "metrics.jsonl"), "w") as f:
            f.write('{"step":1,"loss":2.5,"tokens_per_s":10,"dropped_frac":0,"expert_tokens":[[1,3]]}\n')
        proc = report(run)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("summary.json", proc.stderr)
        self.assertEqual(report().returncode, 2)  # no run at all: usage

    def test_headless_browser_shows_the_page(self):
        chromium = shutil.which("chromium")
        if chromium is None:
            self.skipTest("chromium not on PATH: no headless screenshot of the page")
        run = self.standalone("browsed")
        self.assertEqual(report(run).returncode, 0)
        shot = os.path.join(self.root, "screenshot.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1000,1400", "--screenshot=" + shot,
                        "file://" + os.path.join(run, "report.html")], capture_output=True, timeout=120)
        self.assert_picture(shot)


if __name__ == "__main__":
    unittest.main(verbosity=2)

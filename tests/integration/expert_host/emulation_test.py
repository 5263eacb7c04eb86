#!/usr/bin/env python3
"""Integration tests of sy-expert-host's device emulation (--emulate_device_gflops): a bad
rate exits 2 naming the flag before the host listens (no ready file), and emulation only
delays replies: a small sy-local cluster whose hosts emulate a 1 GFLOP/s device ends with
the weights and per-step losses of the same run without it.

Run by ctest (tests/integration/expert_host/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 emulation_test.py EmulationTest.test_x
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster_harness import BIN_DIR, ClusterCase  # noqa: E402

SY_EXPERT_HOST = os.path.join(BIN_DIR, "sy-expert-host")
STEPS = 12


class EmulationTest(ClusterCase):
    def test_bad_gflops_exit_2_before_listening(self):
        ready = os.path.join(self.root, "ready")
        for value in ["-1", "nan", "inf", "-inf", "fast"]:
            proc = subprocess.run([SY_EXPERT_HOST, "--insecure", "--ready_file=" + ready,
                                   "--emulate_device_gflops=" + value], capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 2, value + ": " + proc.stderr)
            self.assertIn("--emulate_device_gflops", proc.stderr, value)
            self.assertFalse(os.path.exists(ready), value + ": the host must not have started")

    def test_emulated_device_keeps_the_weights(self):
        plain = self.ok("plain", 2, 2, steps=STEPS)
        emulated = self.ok("emulated", 2, 2, ["--host_args=--emulate_device_gflops=1"], steps=STEPS)
        self.assertEqual(emulated.summary()["param_checksum"], plain.summary()["param_checksum"])
        self.assertEqual([s["loss"] for s in emulated.steps()], [s["loss"] for s in plain.steps()])


if __name__ == "__main__":
    unittest.main()

"""The live view of a real sy-local cluster (2 hosts, 2 trainers, the coordinator, all
with /metrics on loopback), one run for every test: the Grafana dashboard uses only
metric names the processes export, and `syctl top` in a pty shows the hosts and
experts tables and refreshes (q quits, --iterations stops)."""
import glob
import json
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

import live_processes as lp

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DASHBOARD = os.path.join(SOURCE_ROOT, "orchestration", "grafana", "switchyard.json")
METRIC_NAME = re.compile(r"\bsy_[a-z0-9_]+\b")
CLEAR_SCREEN = "\033[H\033[2J"


class ClusterLiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sy-liveview-")
        cls.workdir = os.path.join(cls.dir, "run")
        corpus = os.path.join(cls.dir, "corpus.txt")
        lp.write_corpus(corpus)
        on_loopback = "--metrics_port=0 --metrics_address=127.0.0.1"
        # Far more steps than the tests need: the run is stopped when they are done.
        cls.cluster = lp.start([os.path.join(lp.BIN_DIR, "sy-local"), "--hosts=2", "--trainers=2", "--steps=1000000",
                                "--checkpoint_every=5", "--data=" + corpus, "--workdir=" + cls.workdir,
                                "--host_args=--metrics_port=0", "--trainer_args=" + on_loopback,
                                "--coordinator_args=" + on_loopback] + lp.TINY,
                               os.path.join(cls.dir, "sy-local.err"))
        try:
            cls.coordinator = lp.wait_for("the coordinator's ready file", cls.coordinator_endpoint, cls.cluster)
            cls.ports = lp.wait_for("5 /metrics endpoints", cls.metrics_ports, cls.cluster)
            lp.wait_for("a recorded step", cls.leader_recorded_a_step, cls.cluster)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        lp.stop(cls.cluster)
        shutil.rmtree(cls.dir, True)

    @classmethod
    def coordinator_endpoint(cls):
        lines = lp.read(os.path.join(cls.workdir, "coordinator.ready")).splitlines()
        return lines[0] if lines else None

    @classmethod
    def metrics_ports(cls):
        ports = [port for log in sorted(glob.glob(os.path.join(cls.workdir, "*.log")))
                 for port in lp.metrics_ports(lp.read(log))]
        return ports if len(ports) == 5 else None  # 2 hosts, 2 trainers, the coordinator

    @classmethod
    def leader_recorded_a_step(cls):
        return any(lp.scrape(port)[0].get(("sy_trainer_step", frozenset()), 0) >= 1 for port in cls.ports)

    def test_the_dashboard_queries_only_exported_metrics(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        exported = set()
        for port in self.ports:
            samples, types = lp.scrape(port)
            exported |= set(types)
            exported |= {name for name, _ in samples}  # histograms' _bucket, _sum and _count
        exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
        self.assertGreaterEqual(len(exprs), 10)
        used = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
        self.assertEqual(sorted(used - exported), [], "queried but exported by no process")
        for wanted in ["sy_trainer_tokens_per_second", "sy_trainer_loss", "sy_trainer_dropped_fraction",
                       "sy_trainer_expert_tokens_total", "sy_trainer_step_seconds_bucket",
                       "sy_coordinator_checkpoints_total", "sy_coordinator_recoveries_total"]:
            self.assertIn(wanted, used)
        joined = "\n".join(exprs)
        for quantile in ["0.5", "0.99"]:
            self.assertIn("histogram_quantile(%s, sum by (le) (rate(sy_trainer_step_seconds_bucket" % quantile, joined)
        ids = [panel["id"] for panel in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")
        self.assertTrue(dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] > 0)

    def run_top(self, extra, keys=b""):
        """syctl top in a pty: (exit code, everything it drew). `keys` are typed after 2 refreshes."""
        master, slave = pty.openpty()
        top = subprocess.Popen([os.path.join(lp.BIN_DIR, "syctl"), "--coordinator=" + self.coordinator,
                                "--keys=" + os.path.join(self.workdir, "keys"), "top"] + extra,
                               stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.addCleanup(lambda: top.poll() is None and (top.kill(), top.wait()))
        screen = b""
        deadline = time.monotonic() + lp.DEADLINE_S
        typed = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the pty closes when syctl exits
                    break
                if not chunk:
                    break
                screen += chunk
            if keys and not typed and screen.count(CLEAR_SCREEN.encode()) >= 2 and b"refresh 2" in screen:
                os.write(master, keys)
                typed = True
            if top.poll() is not None and not ready:
                break
        os.close(master)
        return top.wait(timeout=lp.DEADLINE_S), screen.decode(errors="replace")

    def assert_frames(self, screen, at_least):
        frames = [frame for frame in screen.split(CLEAR_SCREEN)[1:]]
        self.assertGreaterEqual(len(frames), at_least, screen)
        for number, frame in enumerate(frames, 1):
            self.assertIn("refresh %d" % number, frame)
            self.assertIn("FIELD", frame)  # the status summary
            self.assertRegex(frame, r"NODE\s+ROLE\s+STATE\s+ACTORS\s+LOAD")
            for host in ["host-0", "host-1"]:
                self.assertIn(host, frame)
            self.assertRegex(frame, r"EXPERT\s+HOSTS\s+TOKENS")
            for expert in ["L0E0", "L1E3"]:
                self.assertIn(expert, frame)
        return frames

    def test_top_redraws_until_q(self):
        code, screen = self.run_top([], keys=b"q")
        self.assertEqual(code, 0, screen)
        self.assert_frames(screen, 2)

    def test_top_stops_after_its_iterations(self):
        code, screen = self.run_top(["--iterations=3"])
        self.assertEqual(code, 0, screen)
        self.assertEqual(len(self.assert_frames(screen, 3)), 3)

    def test_top_refuses_bad_iterations(self):
        result = subprocess.run([os.path.join(lp.BIN_DIR, "syctl"), "--coordinator=" + self.coordinator,
                                 "top", "--iterations=-1"], capture_output=True, text=True, timeout=lp.DEADLINE_S)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--iterations", result.stderr)


if __name__ == "__main__":
    unittest.main()

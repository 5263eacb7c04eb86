#!/usr/bin/env python3
"""Fault tests of elasticity: a real sy-local cluster (2 hosts x 2 trainers, 40
steps, a checkpoint every 10) that grows or shrinks while it trains, with live moves
off (--live_moves=false: the coordinator's fallback, moves through a checkpoint;
live moves are tested in live_moves_test.py).

Join (--add_host_at_step=15): a third sy-expert-host starts and registers; the
coordinator moves actors to it through the latest checkpoint and the trainers,
which did not know the host when they started, replay on it. Drain
(--drain_host_at_step=15, the admin API's `drain host-1` as syctl sends it):
host-1's actors move to host-0, then sy-local stops host-1, which must exit 0.
Either run must end with exactly the weights and per-step losses of the run
without the change (training is deterministic).

Run by ctest (tests/fault/elastic/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 elastic_test.py ElasticTest.test_x
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "cluster"))
from cluster_harness import ClusterCase  # noqa: E402

STEPS = 40
CHECKPOINTS = ["--checkpoint_every=10", "--coordinator_args=--retain=10 --live_moves=false"]


class ElasticCase(ClusterCase):
    """Runs with and without a change of hosts (also used by live_moves_test.py)."""
    CHECKPOINTS = CHECKPOINTS
    HOSTS = 2
    STEPS = STEPS

    def same_training_as_without(self, name, *change):
        plain = self.ok("plain_" + name, self.HOSTS, 2, self.CHECKPOINTS, steps=self.STEPS)
        changed = self.ok(name, self.HOSTS, 2, self.CHECKPOINTS + list(change), steps=self.STEPS)
        self.assertEqual(changed.summary()["param_checksum"], plain.summary()["param_checksum"])
        # Replayed steps replace their records: one line per step, the unchanged run's losses.
        self.assertEqual([s["step"] for s in changed.steps()], list(range(1, self.STEPS + 1)))
        self.assertEqual([s["loss"] for s in changed.steps()], [s["loss"] for s in plain.steps()])
        # (The coordinator may also rebalance hot experts in either run: only "more" is certain.)
        self.assertGreater(changed.summary()["migrations"], 0)
        self.assertEqual(plain.summary()["hosts"], self.HOSTS)
        return changed


class ElasticTest(ElasticCase):
    def test_host_joins_and_takes_actors(self):
        joined = self.same_training_as_without("join", "--add_host_at_step=15")
        self.assertRegex(joined.stdout, r"--add_host_at_step: starting host-2 after step 1[5-9]")
        self.assertEqual(joined.summary()["hosts"], 3)
        coordinator = joined.read("coordinator.log")
        moved = re.search(r"host host-2 joined: ([0-9]+) actors move to it", coordinator)
        self.assertIsNotNone(moved, coordinator[-3000:])
        self.assertGreater(int(moved.group(1)), 0)
        # Whatever step the trainers had reached when host-2 registered, the move went
        # through a checkpoint taken before it.
        restored = re.search(r"restoring checkpoint [0-9]+ \(step ([1-3]0)\)", coordinator[moved.end():])
        self.assertIsNotNone(restored, coordinator[-3000:])
        self.assertRegex(joined.read("trainer-0.log"), "host-2 joined at tcp://")
        # host-2 took its actors from the checkpoint and served every later step: the run's
        # last checkpoint (which needs each host's actors at step 40) came after the join.
        host = joined.read("host-2.log")
        self.assertRegex(host, r"placement epoch [0-9]+: [1-9][0-9]* actors added")
        self.assertIn("rolled back to step " + restored.group(1), host)
        self.assertRegex(coordinator[moved.end():], r"committed at step %d" % STEPS)

    def test_drained_host_hands_off_and_stops_cleanly(self):
        drained = self.same_training_as_without("drain", "--drain_host_at_step=15")
        self.assertRegex(drained.stdout, r"--drain_host_at_step: draining host-1 after step 1[5-9]")
        self.assertIn("sy-local: host-1 holds no actors: stopping it", drained.stdout)
        coordinator = drained.read("coordinator.log")
        moved = re.search(r"draining host-1: ([0-9]+) actors move away", coordinator)
        self.assertIsNotNone(moved, coordinator[-3000:])
        self.assertGreater(int(moved.group(1)), 0)
        # host-1 let go of every actor when the drained table reached it, then stopped on SIGTERM.
        host = drained.read("host-1.log")
        # (The last table change it saw: an automatic rebalance may have moved actors before.)
        dropped = list(re.finditer(r"placement epoch [0-9]+: 0 actors added \(waiting for a restore\), ([0-9]+) removed",
                                   host))
        self.assertTrue(dropped, host[-3000:])
        dropped = dropped[-1]
        self.assertEqual(int(dropped.group(1)), int(moved.group(1)))
        self.assertIn("expert host 1: signal 15, shutting down", host[dropped.end():])
        # Nothing had to be recovered: the host left on purpose, holding nothing.
        self.assertEqual(drained.summary()["recoveries"], 0)
        self.assertEqual(drained.summary()["hosts"], 2)


if __name__ == "__main__":
    unittest.main()

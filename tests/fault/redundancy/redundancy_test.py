#!/usr/bin/env python3
"""Fault tests of redundancy: a real sy-local cluster (3 hosts x 2 trainers, 40 steps, a
checkpoint every 10) with --redundancy=2, so every expert and dense shard has two holders
on distinct hosts and they split its micro-batches.

Without a fault it trains exactly the weights of the run without redundancy. A host
SIGKILLed after step 25 is detected from its connection; everything it held lives on
elsewhere, so the coordinator fails over: the survivors drop the open step, the trainers
redo it (at most one step computed twice), nothing is restored from a checkpoint, and the
lost copies are made again live on the other hosts. A host that dies as a step's apply
reaches it leaves that step to the survivors, which applied it: the failover keeps it. With two hosts, the survivor holds
every actor alone and the run still ends with the unchanged weights.

Run by ctest (tests/fault/redundancy/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 redundancy_test.py RedundancyTest.test_x
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "cluster"))
from cluster_harness import ClusterCase  # noqa: E402

STEPS = 40
# Automatic rebalancing off: each test isolates the failover (a rebalance moves actors too).
CHECKPOINTS = ["--checkpoint_every=10", "--coordinator_args=--retain=10 --auto_rebalance=false"]


class RedundancyTest(ClusterCase):

    def plain(self, hosts):
        return self.ok("plain_%d" % hosts, hosts, 2, CHECKPOINTS, steps=STEPS)

    def same_weights(self, run, plain):
        self.assertEqual(run.summary()["param_checksum"], plain.summary()["param_checksum"])
        self.assertEqual([s["step"] for s in run.steps()], list(range(1, STEPS + 1)))
        self.assertEqual([s["loss"] for s in run.steps()], [s["loss"] for s in plain.steps()])

    def killed(self, hosts, fault="--kill_host_at_step=25"):
        run = self.ok("killed_%d" % hosts, hosts, 2, CHECKPOINTS + ["--redundancy=2", fault], steps=STEPS)
        self.same_weights(run, self.plain(hosts))
        summary = run.summary()
        self.assertEqual(summary["recoveries"], 1)
        self.assertLessEqual(summary["replayed_steps"], 1)
        self.assertEqual(len(summary["recovery_seconds"]), 1)
        coordinator = run.read("coordinator.log")
        dead = "host-%d" % (hosts - 1)
        self.assertRegex(coordinator, r"host %s failed \(disconnected, probe unanswered\)" % dead)
        self.assertRegex(coordinator, r"failover \(host %s failed\): every actor lives on another host" % dead)
        done = re.search(r"failover done: every survivor is at step ([0-9]+)", coordinator)
        self.assertIsNotNone(done, coordinator[-3000:])
        self.assertGreaterEqual(int(done.group(1)), 25)
        self.assertNotIn("restoring checkpoint", coordinator)
        for h in range(hosts - 1):
            self.assertIn("fails over a dead host: dropping the open step", run.read("host-%d.log" % h))
        self.assertRegex(run.read("trainer-0.log"), "rollback to step %s" % done.group(1))
        return run, coordinator

    def test_redundancy_trains_the_same_weights(self):
        run = self.ok("redundant", 3, 2, CHECKPOINTS + ["--redundancy=2"], steps=STEPS)
        self.same_weights(run, self.plain(3))
        self.assertEqual(run.summary()["recoveries"], 0)
        # Every host holds its static share and a copy of its neighbour's: the replicas exchange gradients.
        self.assertRegex(run.read("host-0.log"), r"is replicated: its gradient contributions are exchanged")

    def test_killed_host_fails_over_without_a_restore(self):
        _, coordinator = self.killed(3)
        # The copies lost with the dead host are made again on the survivors, live.
        rebuilt = re.search(r"rebuilding redundancy: ([0-9]+) actors move live after step ([0-9]+)", coordinator)
        self.assertIsNotNone(rebuilt, coordinator[-3000:])
        self.assertGreater(int(rebuilt.group(1)), 0)
        self.assertRegex(coordinator[rebuilt.end():], r"live moves after step %s done" % rebuilt.group(2))

    def test_a_host_dying_at_an_apply_leaves_the_step_to_the_others(self):
        # host-2 dies as the apply of step 25 reaches it; the survivors apply step 25, so the
        # failover keeps it: nothing is redone, and the leader records the step it had
        # computed (its apply failed only on the dead host).
        run, coordinator = self.killed(3, "--kill_host_at_apply_of_step=25")
        self.assertIn("--kill_host_at_apply_of_step: host-2 SIGKILLed itself at the apply of step 25", run.stdout)
        self.assertIn("failover done: every survivor is at step 25", coordinator)
        self.assertEqual(run.summary()["replayed_steps"], 0)

    def test_replica_gradients_refused_by_a_busy_host_are_sent_again(self):
        # Experts of 128 x 512 and 6 micro-batches: at each step's end every host sends its
        # peers about twenty messages of 1.6 MB (three contributions of each expert it
        # shares), more than a host's 8 MiB request budget holds at once. The receiver
        # refuses some (ResourceExhausted); the sender sends them again, and the run trains
        # the weights of the run without redundancy (it used to stall at step 1).
        wide = ["--d_model=128", "--heads=4", "--d_ff=512", "--experts=16", "--micro_batches=6"]
        plain = self.ok("wide_plain", 3, 2, wide, steps=6)
        run = self.ok("wide_redundant", 3, 2, wide + ["--redundancy=2"], steps=6)
        self.assertEqual(run.summary()["param_checksum"], plain.summary()["param_checksum"])
        self.assertEqual([s["loss"] for s in run.steps()], [s["loss"] for s in plain.steps()])
        refusals = sum(run.read("host-%d.log" % h).count("refused (requests_held)") for h in range(3))
        self.assertGreater(refusals, 0, "the burst no longer exceeds a host's request budget: widen the model")

    def test_two_hosts_keep_going_on_one(self):
        _, coordinator = self.killed(2)
        self.assertIn("cannot be rebuilt: too few live hosts", coordinator)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Fault tests of live moves: a real sy-local cluster (3 hosts x 2 trainers, 80 steps, a
checkpoint every 10) moves actors at a step boundary without restoring or replaying
anything: the old host streams each actor's state straight to the new one.

Drain (--drain_host_at_step=15) and join (--add_host_at_step=10, the first checkpoint) move
live and end with exactly the weights and per-step losses of the run without the change, and with
replayed_steps 0, and so does a hot expert replicated live (the copy is made at a step
boundary; the replicas then split its micro-batches). A host killed in the middle of a live move, the one the actors leave
(--kill_host_in_live_move=source) or one they go to (destination), makes the coordinator
fall back to checkpoint recovery: the run still ends with the unchanged weights. A move
ordered for a boundary training never reaches leaves the actors where they were, and the
run's last checkpoint takes them from there.

Run by ctest (tests/fault/elastic/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 live_moves_test.py LiveMovesTest.test_x
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from elastic_test import ElasticCase  # noqa: E402


class LiveMovesTest(ElasticCase):
    # Without automatic rebalancing: its own live moves would come first, and the drain's
    # or join's wait for them to finish. And 80 steps: a step of the tiny model takes
    # about 15 ms, and on a loaded machine the drain or the new host reached the
    # coordinator 11 to 18 steps after it was asked for, its moves after the last of 40.
    CHECKPOINTS = ["--checkpoint_every=10",
                   "--coordinator_args=--retain=10 --live_moves=true --auto_rebalance=false"]
    STEPS = 80
    HOSTS = 3

    def moved_live(self, run, why):
        coordinator = run.read("coordinator.log")
        moved = re.search(why + r": ([0-9]+) actors move live after step ([0-9]+)", coordinator)
        self.assertIsNotNone(moved, coordinator[-3000:])
        self.assertGreater(int(moved.group(1)), 0)
        self.assertRegex(coordinator[moved.end():], r"live moves after step %s done" % moved.group(2))
        return int(moved.group(1)), int(moved.group(2))

    def arrivals(self, run, hosts):
        return sum(len(re.findall(r"moved here live from host-[0-9]+ at version", run.read(h + ".log")))
                   for h in hosts)

    def test_drain_moves_live_without_replay(self):
        drained = self.same_training_as_without("drain", "--drain_host_at_step=15")
        self.assertIn("sy-local: host-2 holds no actors: stopping it", drained.stdout)
        count, step = self.moved_live(drained, "draining host-2")
        self.assertGreaterEqual(step, 15)
        self.assertIn("leave live after step %d" % step, drained.read("host-2.log"))
        self.assertGreaterEqual(self.arrivals(drained, ["host-0", "host-1"]), count)
        self.assertEqual(drained.summary()["replayed_steps"], 0)
        self.assertEqual(drained.summary()["recoveries"], 0)

    def test_join_moves_live_without_replay(self):
        joined = self.same_training_as_without("join", "--add_host_at_step=10")
        self.assertEqual(joined.summary()["hosts"], self.HOSTS + 1)
        count, step = self.moved_live(joined, "host host-3 joined")
        self.assertGreaterEqual(step, 10)
        self.assertGreaterEqual(self.arrivals(joined, ["host-3"]), count)
        self.assertEqual(joined.summary()["replayed_steps"], 0)
        self.assertEqual(joined.summary()["recoveries"], 0)

    def test_hot_expert_is_replicated_live(self):
        # One Switch layer of 4 experts over 4 hosts, routers skewed onto expert 0: no
        # migration evens the load, a replica does (tests/integration/rebalance has the
        # same cluster with live moves off).
        skewed = ["--checkpoint_every=10", "--coordinator_args=--retain=10 --heartbeat_interval_ms=100 --live_moves=true", "--skew=30",
                  "--lr=1e-3", "--lb_alpha=0.01", "--moe_every=2"]
        fixed = self.ok("fixed_4", 4, 2, skewed[:1] + [skewed[1] + " --auto_rebalance=false"] + skewed[2:], steps=60)
        replicated = self.ok("replicated_live", 4, 2, skewed, steps=60)
        summary = replicated.summary()
        self.assertGreater(summary["replications"], 0, replicated.describe())
        self.assertEqual(summary["replayed_steps"], 0)
        self.assertEqual(summary["recoveries"], 0)
        self.assertGreater(summary["replicated_actors"], 0)
        self.assertEqual(summary["replica_mismatches"], 0)
        self.assertEqual(summary["param_checksum"], fixed.summary()["param_checksum"])
        self.assertEqual([s["loss"] for s in replicated.steps()], [s["loss"] for s in fixed.steps()])
        self.assertRegex(replicated.read("coordinator.log"),
                         r"automatic rebalance at step [0-9]+: .* moves \([1-9][0-9]* of them replicas\)")
        hosts = "".join(replicated.read("host-%d.log" % h) for h in range(4))
        self.assertRegex(hosts, r"is replicated from step [0-9]+: its gradient contributions are exchanged")

    def test_moves_training_ends_before_are_checkpointed_from_their_old_hosts(self):
        # A rebalance whose boundary lies past the run's end (lead of 100 steps): training
        # ends with the move ordered but not made, and the run's last checkpoint must take
        # the moved actors from the hosts that still hold them (it used to wait in vain).
        skewed = ["--checkpoint_every=10", "--skew=30", "--lr=1e-3"]
        coordinator = "--coordinator_args=--retain=10 --rebalance_threshold=1.01 --live_moves=true"
        fixed = self.ok("fixed_3", self.HOSTS, 2, skewed + [coordinator + " --auto_rebalance=false"], steps=30)
        late = self.ok("late_move", self.HOSTS, 2, skewed + [coordinator + " --live_move_lead_steps=100"], steps=30)
        log = late.read("coordinator.log")
        self.assertRegex(log, r"automatic rebalance at step [0-9]+: [1-9][0-9]* actors move live after step 1[0-9][0-9]")
        self.assertRegex(log, r"live moves after step [0-9]+ are no longer followed: training is over")
        self.assertRegex(log, r"checkpoint [0-9]+ committed at step 30")
        self.assertEqual(late.summary()["param_checksum"], fixed.summary()["param_checksum"])

    def killed_in_live_move(self, role):
        run = self.same_training_as_without("kill_" + role, "--drain_host_at_step=15",
                                            "--kill_host_in_live_move=" + role)
        victim = "host-2" if role == "source" else "host-0"
        self.assertIn("sy-local: --kill_host_in_live_move: %s SIGKILLed itself as the %s" % (victim, role), run.stdout)
        coordinator = run.read("coordinator.log")
        self.assertRegex(coordinator, r"draining host-2: [0-9]+ actors move live after step")
        self.assertRegex(coordinator, r"host %s failed \(.*\): [0-9]+ actors re-placed, during a live move" % victim)
        # (The recovery restores the newest checkpoint: a move at a checkpoint's step replays nothing.)
        self.assertGreater(run.summary()["recoveries"], 0)

    def test_source_killed_in_a_live_move_falls_back_to_the_checkpoint(self):
        self.killed_in_live_move("source")

    def test_destination_killed_in_a_live_move_falls_back_to_the_checkpoint(self):
        self.killed_in_live_move("destination")


if __name__ == "__main__":
    unittest.main()

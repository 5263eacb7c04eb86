#!/usr/bin/env python3
"""Fault tests of failure recovery: a real sy-local cluster (2 hosts x 2 trainers,
a checkpoint every 10 steps) in which one process is SIGKILLed after step 25.

Host: the coordinator re-places its actors on the survivor, restores the latest
checkpoint everywhere and rolls the trainers back. Trainer: the survivor replays
the dead trainer's micro-batches from the latest checkpoint; when the dead one was
the leader (trainer 0), the survivor also takes over metrics.jsonl and summary.json. Coordinator: it is
restarted on the same database and endpoint and the run goes on. Each run must end
with exactly the weights of the fault-free run (training is deterministic), one
line per step in metrics.jsonl, and one recovery in summary.json.

Run by ctest (tests/fault/recovery/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 recovery_test.py RecoveryTest.test_x
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "cluster"))
from cluster_harness import ClusterCase  # noqa: E402

STEPS = 40
# Automatic rebalancing off: each test isolates one fault (a rebalance also restores and replays).
CHECKPOINTS = ["--checkpoint_every=10", "--coordinator_args=--retain=10 --auto_rebalance=false"]


class RecoveryTest(ClusterCase):
    def fault_free_and_killed(self, what, extra=()):
        plain = self.ok("plain_" + what, 2, 2, CHECKPOINTS, steps=STEPS)
        killed = self.ok("kill_" + what + "".join(extra), 2, 2,
                         CHECKPOINTS + ["--kill_%s_at_step=25" % what] + list(extra), steps=STEPS)
        # (After step 25, or later when the first checkpoint was still being taken.)
        self.assertRegex(killed.stdout, "--kill_%s_at_step: SIGKILL %s.* after step ([2-3][0-9])" % (what, what))
        self.assertEqual(killed.summary()["param_checksum"], plain.summary()["param_checksum"])
        self.assertEqual(killed.summary()["recoveries"], 1)
        self.assertEqual(plain.summary()["recoveries"], 0)
        self.assertEqual(plain.summary()["replayed_steps"], 0)
        self.assertEqual(plain.summary()["recovery_seconds"], [])
        # Replayed steps replace their records: one line per step, the fault-free losses.
        self.assertEqual([s["step"] for s in killed.steps()], list(range(1, STEPS + 1)))
        self.assertEqual([s["loss"] for s in killed.steps()], [s["loss"] for s in plain.steps()])
        # The run's last checkpoint was taken after the recovery.
        self.assertIn(STEPS, self.committed_checkpoint_steps(killed))
        return killed

    def committed_checkpoint_steps(self, run):
        with open(os.path.join(run.workdir, "coordinator.log")) as log:
            return [int(line.rsplit(" ", 1)[1]) for line in log if "committed at step" in line]

    def assert_replayed_since_the_kill(self, run, what):
        """replayed_steps sums each rollback's reached - restored steps, and covers at least the
        steps from the restored checkpoint to the step sy-local saw before its SIGKILL (none
        when, on a loaded machine, the kill came right after a checkpoint it then restores)."""
        summary = run.summary()
        self.assertEqual(summary["replayed_steps"],
                         sum(r["reached_step"] - r["to_step"] for r in summary["rollbacks"]))
        killed_after = re.search(r"--kill_%s_at_step: SIGKILL [a-z]+-[0-9]+ \(pid [0-9]+\) after step ([0-9]+)" % what,
                                 run.stdout)
        self.assertIsNotNone(killed_after, run.stdout[-2000:])
        restored = summary["rollbacks"][0]["to_step"]
        self.assertGreaterEqual(summary["replayed_steps"], int(killed_after.group(1)) - restored)

    def test_host_sigkill_replaces_restores_and_replays(self):
        killed = self.fault_free_and_killed("host")
        # Steps computed more than once: those between the restored checkpoint and the kill.
        self.assert_replayed_since_the_kill(killed, "host")
        recovery_seconds = killed.summary()["recovery_seconds"]
        self.assertEqual(len(recovery_seconds), 1)
        self.assertGreater(recovery_seconds[0], 0)
        log = killed.read("coordinator.log")
        self.assertIn("host host-1 failed", log)
        self.assertRegex(log, r"restoring checkpoint [0-9]+ \(step [1-3]0\)")
        with open(os.path.join(killed.workdir, "trainer-0.log")) as trainer_log:
            self.assertRegex(trainer_log.read(), "rollback to step [1-3]0")

    def test_trainer_sigkill_survivor_replays_its_micro_batches(self):
        killed = self.fault_free_and_killed("trainer")
        self.assert_replayed_since_the_kill(killed, "trainer")
        log = killed.read("coordinator.log")
        self.assertIn("trainer trainer-1 missed heartbeats: failed", log)
        self.assertNotIn("trainer trainer-0 missed heartbeats", log, "trainer 0 finished and said so")

    def test_leader_sigkill_next_trainer_takes_over_and_keeps_the_records(self):
        killed = self.fault_free_and_killed("trainer", ["--kill_trainer_index=0"])
        self.assertRegex(killed.stdout, "SIGKILL trainer-0")
        self.assertIn("trainer trainer-0 missed heartbeats: failed", killed.read("coordinator.log"))
        with open(os.path.join(killed.workdir, "trainer-1.log")) as survivor:
            self.assertRegex(survivor.read(), r"now the leader: metrics.jsonl continues after step [1-3]0")
        self.assertEqual(killed.summary()["trainers"], 2)
        # sy-local echoes the new leader's progress to the end.
        self.assertIn("step %d/%d" % (STEPS, STEPS), killed.stdout)

    def test_coordinator_sigkill_restarts_on_its_database(self):
        killed = self.fault_free_and_killed("coordinator")
        self.assertEqual(killed.summary()["replayed_steps"], 0)  # the hosts kept their state: no rollback
        self.assertIn("sy-local: coordinator restarted at", killed.stdout)
        log = killed.read("coordinator.log")
        self.assertIn("restored placement epoch", log)
        # The hosts re-registered with their actors: nothing was lost, so nothing was restored.
        self.assertNotIn("came back without its actors", log)
        self.assertNotIn("restoring checkpoint", log)


if __name__ == "__main__":
    unittest.main()

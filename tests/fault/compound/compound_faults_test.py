#!/usr/bin/env python3
"""Fault tests beyond one SIGKILL at a step boundary: deaths at an exact point of a
checkpoint, several processes at once, and a host frozen past its heartbeat timeout.
Each is a real sy-local cluster (a checkpoint every 10 steps) with real signals:

  host mid-checkpoint   the last host SIGKILLs itself at the checkpoint of step 20 once a
                        dense shard's state went out, its experts' not
                        (--kill_host_while_streaming_at_step);
  coordinator before    the coordinator SIGKILLs itself once checkpoint 2's chunks are
  the manifest          stored, before its manifest; sy-local restarts it on the same
                        database, which must not use the half-written checkpoint;
  two hosts of four     --kill_host_at_step=25 --kill_hosts=2;
  host and coordinator  --kill_host_at_step=25 --kill_coordinator_at_step=25;
  host SIGSTOP          --stop_host_at_step=25 for twice the coordinator's heartbeat
                        timeout, then SIGCONT: the host is failed and fenced meanwhile;
  coordinator SIGSTOP   --stop_coordinator_at_step=15 for three heartbeat timeouts:
                        training goes on meanwhile, and the silence was the coordinator's
                        own, so nobody is failed.

Every run must end with the weights of the fault-free run (a standalone run of the same
model: training is deterministic) and one metrics line per step.

Run by ctest (tests/fault/compound/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 compound_faults_test.py CompoundFaultsTest.test_x
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "integration", "cluster"))
from cluster_harness import ClusterCase  # noqa: E402

STEPS = 40
HEARTBEAT_TIMEOUT_S = 3
# Automatic rebalancing off: each test isolates its faults (a rebalance also restores and replays).
CHECKPOINTS = ["--checkpoint_every=10", "--coordinator_args=--retain=10 --auto_rebalance=false "
               "--heartbeat_timeout_ms=%d" % (HEARTBEAT_TIMEOUT_S * 1000)]


class CompoundFaultsTest(ClusterCase):
    def fault_free_checksum(self, steps):
        return self.ok("fault_free", 0, 1, steps=steps).summary()["param_checksum"]

    def faulted(self, name, hosts, extra, steps=STEPS, checkpoints=CHECKPOINTS):
        run = self.ok(name, hosts, 2, checkpoints + extra, steps=steps, timeout=240)
        self.assertEqual(run.summary()["param_checksum"], self.fault_free_checksum(steps), run.describe())
        # Replayed steps replace their records: one line per step.
        self.assertEqual([s["step"] for s in run.steps()], list(range(1, steps + 1)))
        return run

    def log(self, run, name):
        with open(os.path.join(run.workdir, name)) as f:
            return f.read()

    def committed(self, coordinator_log):
        return [(int(m.group(1)), int(m.group(2)))
                for m in re.finditer(r"checkpoint ([0-9]+) committed at step ([0-9]+)", coordinator_log)]

    def test_host_sigkill_while_streaming_a_checkpoint(self):
        run = self.faulted("host_mid_checkpoint", 2, ["--kill_host_while_streaming_at_step=20"])
        self.assertIn("host-1 SIGKILLed itself while streaming the checkpoint at step 20", run.stdout)
        log = self.log(run, "coordinator.log")
        self.assertIn("host host-1 failed", log)
        # Its experts never streamed: checkpoint 2 is abandoned, recovery goes through checkpoint 1.
        self.assertIn("checkpoint 2 abandoned", log)
        self.assertIn("restoring checkpoint 1 (step 10)", log)
        self.assertNotIn("checkpoint 2 committed", log)

    def test_coordinator_sigkill_before_the_manifest(self):
        run = self.faulted("coordinator_before_manifest", 2, ["--kill_coordinator_before_manifest_of_checkpoint=2"])
        self.assertIn("the coordinator SIGKILLed itself before the manifest of checkpoint 2", run.stdout)
        self.assertIn("sy-local: coordinator restarted at", run.stdout)
        log = self.log(run, "coordinator.log")
        self.assertIn("restored placement epoch", log)
        # The first coordinator committed checkpoint 1 only; checkpoint 2 never got its manifest then.
        before_restart = log.split("restored placement epoch")[0]
        self.assertEqual([c for c in self.committed(before_restart)], [(1, 10)])
        # The restarted one went on from checkpoint 1: the run's last checkpoint is at its last step.
        self.assertIn(STEPS, [step for _, step in self.committed(log)])

    def test_two_hosts_of_four_sigkilled_at_once(self):
        run = self.faulted("two_hosts", 4, ["--kill_host_at_step=25", "--kill_hosts=2"])
        self.assertRegex(run.stdout, r"SIGKILL host-2 .*\n+.*SIGKILL host-3 ")
        log = self.log(run, "coordinator.log")
        self.assertIn("host host-2 failed", log)
        self.assertIn("host host-3 failed", log)

    def test_host_and_coordinator_sigkilled_together(self):
        run = self.faulted("host_and_coordinator", 2, ["--kill_host_at_step=25", "--kill_coordinator_at_step=25"])
        self.assertRegex(run.stdout, r"SIGKILL host-1 .*\n+.*SIGKILL coordinator ")
        self.assertIn("sy-local: coordinator restarted at", run.stdout)
        # The restarted coordinator finds host-1 gone and recovers from its database's checkpoint.
        log = self.log(run, "coordinator.log").split("restored placement epoch", 1)[1]
        self.assertIn("host host-1 failed", log)
        self.assertRegex(log, r"restoring checkpoint [0-9]+ \(step [1-3]0\)")

    def test_host_sigstop_past_the_heartbeat_timeout_is_fenced(self):
        # A 1 s heartbeat timeout and a longer run, so that the host usually wakes up before the end.
        steps = 100
        checkpoints = ["--checkpoint_every=10",
                       "--coordinator_args=--retain=20 --auto_rebalance=false --heartbeat_timeout_ms=1000"]
        run = self.faulted("host_stopped", 2, ["--stop_host_at_step=25", "--stop_host_seconds=2"],
                           steps=steps, checkpoints=checkpoints)
        self.assertIn("--stop_host_at_step: SIGSTOP host-1", run.stdout)
        resumed_after = int(re.search(r"--stop_host_at_step: SIGCONT host-1 after step ([0-9]+)", run.stdout).group(1))
        log = self.log(run, "coordinator.log")
        failed = log.index("host host-1 failed")
        # Fenced while stopped; woken up before the run's end, it registers again and rejoins.
        if resumed_after < steps:
            self.assertIn("host host-1 registered", log[failed:])

    def test_coordinator_sigstop_past_the_heartbeat_timeout_fails_nobody(self):
        # Stopped for 3 heartbeat timeouts: when it runs again, every node looks silent, but
        # the silence was the coordinator's own. Nobody is failed, nothing is restored.
        checkpoints = ["--checkpoint_every=10",
                       "--coordinator_args=--retain=10 --auto_rebalance=false --heartbeat_timeout_ms=1000"]
        run = self.faulted("coordinator_stopped", 2, ["--stop_coordinator_at_step=15", "--stop_coordinator_seconds=3"],
                           checkpoints=checkpoints)
        self.assertIn("--stop_coordinator_at_step: SIGSTOP coordinator", run.stdout)
        # Training went on meanwhile: nothing a trainer does each step waits for the coordinator.
        resumed_after = int(re.search(r"--stop_coordinator_at_step: SIGCONT coordinator after step ([0-9]+)",
                                      run.stdout).group(1))
        self.assertGreaterEqual(resumed_after, 20, run.describe())
        log = self.log(run, "coordinator.log")
        self.assertRegex(log, r"the coordinator did not run for [0-9]+ ms .*the silence was its own")
        self.assertNotIn("missed heartbeats", log)
        self.assertNotRegex(log, r"(host|trainer) \S+ failed")
        self.assertNotIn("restoring checkpoint", log)

    def test_bad_fault_flags_exit_2_and_start_nothing(self):
        refused = {
            "--kill_hosts=2": "--kill_hosts needs --kill_host_at_step",
            "--kill_host_at_step=25 --kill_hosts=2": "--kill_host_at_step needs --hosts >= 3",
            "--kill_host_while_streaming_at_step=10": "must be a checkpoint step after the first",
            "--kill_host_while_streaming_at_step=25": "must be a checkpoint step after the first",
            "--kill_coordinator_before_manifest_of_checkpoint=4": "before the last step (--steps=40)",
            "--kill_coordinator_before_manifest_of_checkpoint=1 --kill_coordinator_at_step=5": "use one",
            "--stop_host_at_step=25": "--stop_host_at_step and --stop_host_seconds (> 0) go together",
            "--stop_host_at_step=25 --stop_host_seconds=601": "--stop_host_seconds=601",
            "--stop_host_at_step=25 --stop_host_seconds=6 --kill_host_at_step=25": "all pick the last host",
            "--stop_coordinator_at_step=25": "--stop_coordinator_at_step and --stop_coordinator_seconds (> 0) go together",
            "--stop_coordinator_at_step=25 --stop_coordinator_seconds=601": "--stop_coordinator_seconds=601",
        }
        for flags, expected in refused.items():
            run = self.local("refused", 2, 2, CHECKPOINTS + flags.split(), steps=STEPS)
            self.assertEqual(run.rc, 2, flags)
            self.assertIn(expected, run.stderr, flags)
            self.assertFalse(os.path.exists(run.workdir), flags)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Integration tests of the local cluster: real sy-local, sy-expert-host and
sy-trainer processes talking over loopback sockets.

The key property: the trained weights (param_checksum) depend only on the seed,
data and config, not on how many hosts and trainers share the work; checked for
f32 and bf16 activations on the wire, with dropout and router jitter on. Also:
loss falls, the run record has every field of the contract, failures name the
culprit, bad flags exit 2, Ctrl-C stops everything.

The harness (sy-local runs, corpus, tiny model) is cluster_harness.py.
Run by ctest (tests/integration/cluster/CMakeLists.txt) as
  SY_BIN_DIR=build/bin /usr/bin/python3 cluster_test.py ClusterTest.test_x
"""
import os
import re
import signal
import subprocess
import time
import unittest

from cluster_harness import (BIN_DIR, SUMMARY_FIELDS, SY_LOCAL, STEP_FIELDS, STEPS, TINY, ClusterCase,
                             child_pids)


class ClusterTest(ClusterCase):
    def check_record(self, run, hosts, trainers):
        steps = run.steps()
        self.assertEqual([s["step"] for s in steps], list(range(1, STEPS + 1)))
        for s in steps:
            for field in STEP_FIELDS + (["bytes_sent"] if hosts else []):
                self.assertIn(field, s, "metrics.jsonl step %d" % s["step"])
            self.assertEqual(len(s["expert_tokens"]), 2)  # two Switch layers
            self.assertEqual(sum(s["expert_tokens"][0]), 4 * 4 * 32)  # every token of the step is routed
            if hosts:
                self.assertGreater(s["bytes_sent"], 0)
        self.assertIn("val_loss", steps[-1])  # validation always runs after the last step
        summary = run.summary()
        for field in SUMMARY_FIELDS + (["hosts", "trainers"] if hosts else []):
            self.assertIn(field, summary)
        self.assertEqual(summary["steps"], STEPS)
        self.assertRegex(summary["param_checksum"], "^[0-9a-f]{16}$")
        if hosts:
            self.assertEqual((summary["hosts"], summary["trainers"]), (hosts, trainers))
        first = sum(s["loss"] for s in steps[:5]) / 5
        last = sum(s["loss"] for s in steps[-5:]) / 5
        self.assertLess(last, first - 0.5, "loss must fall: first 5 steps %.4f, last 5 %.4f" % (first, last))

    def check_same_weights(self, wire):
        extra = ["--wire_dtype=" + wire]
        reference = self.ok("ref_" + wire, 0, 1, extra)
        self.check_record(reference, 0, 1)
        two_by_two = self.ok("h2t2_" + wire, 2, 2, extra)
        self.check_record(two_by_two, 2, 2)
        one_by_three = self.ok("h1t3_" + wire, 1, 3, extra)
        checksums = {name: run.summary()["param_checksum"] for name, run in
                     [("--hosts=0", reference), ("2 hosts x 2 trainers", two_by_two),
                      ("1 host x 3 trainers", one_by_three)]}
        self.assertEqual(len(set(checksums.values())), 1, checksums)
        # Same losses step by step, too (the checksum covers the end only).
        self.assertEqual([s["loss"] for s in reference.steps()], [s["loss"] for s in two_by_two.steps()])
        return reference.summary()["param_checksum"]

    def test_same_weights_f32_wire(self):
        checksum = self.check_same_weights("f32")
        # The comparison can fail: another seed gives other weights.
        other = self.ok("ref_seed2", 0, 1, ["--seed=2"])
        self.assertNotEqual(other.summary()["param_checksum"], checksum)

    def test_same_weights_bf16_wire(self):
        checksum = self.check_same_weights("bf16")
        # bf16 rounding really happens: the weights differ from the f32 reference.
        f32 = self.ok("ref_f32_for_bf16", 0, 1, ["--wire_dtype=f32"])
        self.assertNotEqual(f32.summary()["param_checksum"], checksum)

    def test_same_weights_bf16_dense_wire(self):
        # Dense gradients pushed and parameters pulled in bf16 (router excepted), f32 master weights
        # on the hosts: the standalone trainer, 2x2, 1x3 and replicated hosts train the same weights.
        extra = ["--dense_wire_dtype=bf16"]
        runs = {"--hosts=0": self.ok("dense_bf16_ref", 0, 1, extra),
                "2 hosts x 2 trainers": self.ok("dense_bf16_h2t2", 2, 2, extra),
                "1 host x 3 trainers": self.ok("dense_bf16_h1t3", 1, 3, extra),
                "3 hosts x 2 trainers, redundancy 2": self.ok("dense_bf16_h3t2_r2", 3, 2, extra + ["--redundancy=2"])}
        self.check_record(runs["2 hosts x 2 trainers"], 2, 2)
        checksums = {name: run.summary()["param_checksum"] for name, run in runs.items()}
        self.assertEqual(len(set(checksums.values())), 1, checksums)
        self.assertEqual([s["loss"] for s in runs["--hosts=0"].steps()],
                         [s["loss"] for s in runs["2 hosts x 2 trainers"].steps()])
        # The rounding really happens, and the trainers send fewer bytes.
        f32 = self.ok("dense_f32_h2t2", 2, 2)
        self.assertNotEqual(f32.summary()["param_checksum"], checksums["--hosts=0"])
        sent = {name: sum(s["bytes_sent"] for s in run.steps())
                for name, run in [("f32", f32), ("bf16", runs["2 hosts x 2 trainers"])]}
        self.assertLess(sent["bf16"], 0.9 * sent["f32"], sent)

    def test_same_weights_odd_shapes(self):
        # 5 micro-batches (an uneven tree), 3 hosts for 4 experts of 2 Switch layers out of 3, 2 trainers.
        extra = ["--layers=3", "--moe_every=2", "--micro_batches=5"]
        runs = [self.ok("odd_%d_%d" % (h, t), h, t, extra, steps=12) for h, t in [(0, 1), (3, 2), (2, 3)]]
        checksums = [run.summary()["param_checksum"] for run in runs]
        self.assertEqual(len(set(checksums)), 1, checksums)

    def test_coordinator_placement_same_weights(self):
        # Hosts and trainers register with sy-coordinator and take the placement from its table:
        # the same weights as the static placement and the standalone reference.
        steps = 12
        runs = {"standalone": self.ok("coord_ref", 0, 1, steps=steps),
                "static 2x2": self.ok("coord_static", 2, 2, ["--coordinator=false"], steps=steps),
                "coordinator 2x2": self.ok("coord_on", 2, 2, steps=steps),
                "coordinator 3x1": self.ok("coord_on_3x1", 3, 1, steps=steps)}
        checksums = {name: run.summary()["param_checksum"] for name, run in runs.items()}
        self.assertEqual(len(set(checksums.values())), 1, checksums)
        for name in ["coordinator 2x2", "coordinator 3x1"]:
            workdir = runs[name].workdir
            self.assertIn("coordinator ready at tcp://", runs[name].stdout)
            with open(os.path.join(workdir, "trainer-0.log")) as log:
                self.assertIn("placement epoch", log.read())
            self.assertTrue(os.path.isdir(os.path.join(workdir, "coordinator.db")))
        self.assertNotIn("coordinator", runs["static 2x2"].stdout)
        self.assertFalse(os.path.exists(os.path.join(runs["static 2x2"].workdir, "coordinator.db")))

    def committed_checkpoints(self, run):
        """Steps of the checkpoints the coordinator committed, from its log."""
        with open(os.path.join(run.workdir, "coordinator.log")) as log:
            return [int(line.rsplit(" ", 1)[1]) for line in log if "committed at step" in line]

    def checkpoints_not_committed(self, run):
        """Steps the coordinator's log says it abandoned or skipped a checkpoint at."""
        started, steps = {}, set()
        with open(os.path.join(run.workdir, "coordinator.log")) as log:
            for line in log:
                started_at = re.search(r"checkpoint (\d+) at step (\d+) started", line)
                if started_at:
                    started[started_at.group(1)] = int(started_at.group(2))
                abandoned = re.search(r"checkpoint (\d+) abandoned", line)
                if abandoned and abandoned.group(1) in started:
                    steps.add(started[abandoned.group(1)])
                skipped = re.search(r"checkpoints at steps (\d+)\.\.(\d+) skipped", line)
                if skipped:
                    steps.update(range(int(skipped.group(1)), int(skipped.group(2)) + 1))
        return steps

    def test_checkpoints_do_not_change_the_weights(self):
        # Hosts stream their actors' state at every 10th step boundary while training goes on;
        # the coordinator commits each checkpoint (manifest last) and the weights are untouched.
        # (Automatic rebalancing off: it would move actors at a checkpoint, counted below.)
        plain = self.ok("ckpt_none", 2, 2, steps=40)
        checkpointed = self.ok("ckpt_every10", 2, 2, ["--checkpoint_every=10",
                                                      "--coordinator_args=--retain=10 --auto_rebalance=false"],
                               steps=40)
        self.assertEqual(plain.summary()["param_checksum"], checkpointed.summary()["param_checksum"])
        # Every 10th step is committed, or the coordinator said why not (on a loaded machine it
        # may abandon one, or skip one the hosts no longer keep); most are committed.
        steps = self.committed_checkpoints(checkpointed)
        accounted = self.checkpoints_not_committed(checkpointed)
        for step in (10, 20, 30):
            self.assertTrue(step in steps or step in accounted,
                            "checkpoint at step %d neither committed nor logged as abandoned or skipped" % step)
        self.assertGreaterEqual(len([step for step in steps if step in (10, 20, 30)]), 2, steps)
        self.assertEqual(self.committed_checkpoints(plain), [])
        # summary.json carries what the coordinator saw.
        summary = checkpointed.summary()
        self.assertEqual((summary["recoveries"], summary["migrations"], summary["replications"]), (0, 0, 0))
        self.assertGreaterEqual(summary["checkpoints"], 2)
        self.assertEqual(plain.summary()["checkpoints"], 0)
        for window in ("first_10_steps", "last_10_steps"):
            self.assertGreaterEqual(summary["max_over_mean_host_load"][window], 1.0)
        self.assertNotIn("recoveries", self.ok("ckpt_static", 2, 2, ["--coordinator=false"], steps=5).summary())

    def checkpoint_id_at(self, run, step):
        with open(os.path.join(run.workdir, "coordinator.log")) as log:
            for line in log:
                if line.rstrip().endswith("committed at step %d" % step):
                    return int(line.split("checkpoint ")[1].split()[0])
        self.fail("no checkpoint committed at step %d in %s" % (step, run.workdir))

    def test_restore_from_checkpoint_resumes_bit_exact(self):
        # 40 steps with a checkpoint every 10; a new cluster restored from a checkpoint in the
        # middle (step 20, or another the coordinator committed: on a loaded machine it may
        # skip one the hosts no longer keep) and trained to 40 ends with the same weights as
        # the uninterrupted run.
        full = self.ok("restore_src", 2, 2, ["--checkpoint_every=10", "--coordinator_args=--retain=10"], steps=40)
        middle = [step for step in self.committed_checkpoints(full) if 0 < step < 40]
        self.assertTrue(middle, "no checkpoint before step 40 committed in %s" % full.workdir)
        step = 20 if 20 in middle else middle[0]
        checkpoint = self.checkpoint_id_at(full, step)
        resumed = self.ok("restore_dst", 2, 2, ["--restore_from=" + full.workdir,
                                                "--restore_checkpoint=%d" % checkpoint], steps=40)
        self.assertIn("restored checkpoint %d (after step %d)" % (checkpoint, step), resumed.stdout)
        self.assertEqual([s["step"] for s in resumed.steps()], list(range(step + 1, 41)))
        self.assertEqual(resumed.summary()["param_checksum"], full.summary()["param_checksum"])
        # The same losses as the uninterrupted run's from there: the data cursor came back too.
        self.assertEqual([s["loss"] for s in resumed.steps()], [s["loss"] for s in full.steps()[step:]])
        # A checkpoint that does not exist is a clear error, not a run from scratch.
        missing = self.local("restore_missing", 2, 1, ["--restore_from=" + full.workdir,
                                                       "--restore_checkpoint=99"], steps=40)
        self.assertEqual(missing.rc, 1, missing.describe())
        self.assertIn("no committed checkpoint 99", missing.stderr)

    def test_interrupted_checkpoint_is_never_used(self):
        # The experts refuse to stream the checkpoint at step 30 while the dense shards stream
        # theirs: it is left half-written, without a manifest. A restore of the newest
        # checkpoint takes the one at step 20 and still ends with the fault-free weights.
        extra = ["--checkpoint_every=10", "--coordinator_args=--retain=10"]
        faulty = self.ok("interrupted_src", 2, 1, extra + ["--host_args=--fail_checkpoint_at_step=30"], steps=35)
        committed = self.committed_checkpoints(faulty)
        self.assertIn(20, committed)
        self.assertNotIn(30, committed)
        with open(os.path.join(faulty.workdir, "coordinator.log")) as log:
            self.assertRegex(log.read(), "checkpoint [0-9]+ (abandoned|failed).*fail_checkpoint_at_step")
        plain = self.ok("interrupted_plain", 2, 1, steps=35)
        self.assertEqual(faulty.summary()["param_checksum"], plain.summary()["param_checksum"])
        resumed = self.ok("interrupted_dst", 2, 1, ["--restore_from=" + faulty.workdir], steps=35)
        self.assertIn("(after step 20)", resumed.stdout)
        self.assertEqual(resumed.summary()["param_checksum"], plain.summary()["param_checksum"])

    def test_standalone_record_and_loss(self):
        self.check_record(self.ok("standalone", 0, 1), 0, 1)

    def test_bad_data_names_the_trainer(self):
        for hosts in ([0, 1] if self.have_hosts() else [0]):
            run = self.local("bad_data_%d" % hosts, hosts, 1, data=os.path.join(self.root, "no_such_corpus.txt"))
            self.assertEqual(run.rc, 1, run.describe())
            self.assertIn("trainer-0", run.stderr)
            self.assertIn("exit status", run.stderr)
            self.assertIn("no_such_corpus.txt", run.stderr, "the log tail shows the trainer's own error")

    def test_host_with_impossible_flag_is_named(self):
        run = self.local("bad_host", 2, 1, ["--host_args=--no_such_host_flag=1"])
        self.assertEqual(run.rc, 1, run.describe())
        self.assertRegex(run.stderr, "host-[01] ")  # both fail; either may be noticed first
        self.assertIn("exit status 2", run.stderr)
        self.assertIn("no_such_host_flag", run.stderr, "the log tail shows the host's own error")

    def test_bad_flags_exit_2(self):
        for flag, named in [("--no_such_flag=3", "--no_such_flag"), ("--d_model=abc", "--d_model=abc"),
                            ("--wire_dtype=f16", "--wire_dtype=f16"), ("--hosts=-2", "--hosts=-2"),
                            ("--dense_wire_dtype=f16", "--dense_wire_dtype=f16"),
                            ("--trainer_index=1", "--trainer_index")]:
            proc = subprocess.run([SY_LOCAL, "--steps=3", "--data=x", "--workdir=" + self.root, flag],
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 2, flag + ": " + proc.stderr)
            self.assertIn(named, proc.stderr)
        proc = subprocess.run([SY_LOCAL, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--hosts", proc.stdout)

    def test_interrupt_stops_every_process(self):
        workdir = os.path.join(self.root, "interrupted")
        hosts = 2 if self.have_hosts() else 0
        proc = subprocess.Popen([SY_LOCAL, "--hosts=%d" % hosts, "--trainers=%d" % (2 if hosts else 1),
                                 "--steps=100000", "--data=" + self.corpus, "--workdir=" + workdir] + TINY,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_for_progress(workdir)
        children = child_pids(proc.pid)
        coordinator = 1 if hosts else 0  # sy-coordinator runs by default with hosts
        self.assertEqual(len(children), coordinator + hosts + (2 if hosts else 1), "processes started by sy-local")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130, stderr)
        self.assertIn("interrupted", stderr)
        for pid in children:
            self.assertFalse(os.path.exists("/proc/%s" % pid), "process %s outlived sy-local" % pid)

    def test_killed_trainer_is_named_and_hosts_stop(self):
        workdir = os.path.join(self.root, "killed_trainer")
        proc = subprocess.Popen([SY_LOCAL, "--hosts=2", "--trainers=2", "--steps=100000", "--data=" + self.corpus,
                                 "--workdir=" + workdir] + TINY,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_for_progress(workdir)
        children = child_pids(proc.pid)
        victim = [pid for pid in children if "--trainer_index=1" in open("/proc/%s/cmdline" % pid).read()]
        self.assertEqual(len(victim), 1, children)
        os.kill(int(victim[0]), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 1, stderr)
        self.assertIn("trainer-1 (pid %s) failed: killed by signal 9" % victim[0], stderr)
        for pid in children:
            self.assertFalse(os.path.exists("/proc/%s" % pid), "process %s outlived sy-local" % pid)

    @staticmethod
    def wait_for_progress(workdir):
        log = os.path.join(workdir, "trainer-0.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (os.path.exists(log) and "step " in open(log).read()):
            time.sleep(0.1)

    @staticmethod
    def have_hosts():
        return os.path.exists(os.path.join(BIN_DIR, "sy-expert-host"))


if __name__ == "__main__":
    unittest.main()

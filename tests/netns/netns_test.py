#!/usr/bin/env python3
"""Multi-machine tests: the docker-compose cluster (coordinator, 3 hosts, 2 trainers,
CurveZMQ keys) with every process in its own network namespace on a private bridge,
under a clean network, a host or a trainer cut off past the heartbeat timeout, a lossy
network, and outsiders without an allowlisted key. Each run must end with the
param_checksum of a one-process `sy-trainer --standalone` run of the same seed, model,
data and steps.

Run by ctest (tests/netns/CMakeLists.txt) as root:
  SY_BIN_DIR=build/bin /usr/bin/python3 netns_test.py NetnsTest.test_x
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns_cluster as nc  # noqa: E402
from netns_network import Network, NetnsUnavailable, require_netns  # noqa: E402

STEPS = 20
# Failure detection in about 1.5 s instead of the default 3 s at 500 ms heartbeats.
FAST_FAILURE = ["--heartbeat_timeout_ms=1500", "--heartbeat_interval_ms=200"]
# Every lost message costs the sender a retry after its attempt timeout (up to a second
# once backed off), so the loss rate is low and the run short; duplicates, delays and
# reordering are cheap.
LOSSY = "drop=0.01,dup=0.05,delay=0.05,delay_ms=20,reorder=0.05,reorder_ms=5"
LOSSY_STEPS = 10
# The partition tests cut a link once the first checkpoint (step 5) is committed: the run
# must still be training then. 20 steps of the tiny model can end within the 0.1 s that
# the test takes to see the commit (it happened), so these runs are ten times longer.
PARTITION_STEPS = 200
FENCED = "the coordinator declared this node failed"
WAIT_S = 30


class NetnsTest(unittest.TestCase):
    def setUp(self):
        try:
            require_netns()
        except NetnsUnavailable as e:
            self.skipTest(str(e))
        self.bin_dir = os.environ.get("SY_BIN_DIR", "build/bin")
        self.dir = tempfile.mkdtemp(prefix="sy-netns-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.data = nc.write_corpus(os.path.join(self.dir, "corpus.txt"))
        self.network = Network()
        self.addCleanup(self.network.close)

    def cluster(self, steps=STEPS, coordinator_flags=(), faults=""):
        c = nc.NetnsCluster(self.network, self.bin_dir, os.path.join(self.dir, "run"), self.data, steps,
                            coordinator_flags, faults)
        self.addCleanup(c.stop)  # runs before the network goes
        return c

    def reference(self, steps=STEPS):
        return nc.standalone_checksum(self.bin_dir, self.data, steps, os.path.join(self.dir, "standalone"))

    def partition(self, c, machine, declared_failed):
        """Cuts MACHINE's link once a checkpoint is committed, until the coordinator logs
        `declared_failed` (so for longer than the heartbeat timeout), then restores it and
        waits until the machine's node says it was fenced."""
        c.wait_for_log("coordinator", "committed at step", WAIT_S)
        self.network.set_link(machine, up=False)
        c.wait_for_log("coordinator", declared_failed, WAIT_S)
        self.network.set_link(machine, up=True)
        c.wait_for_log(machine, FENCED, WAIT_S)

    def test_clean_run_matches_standalone(self):
        c = self.cluster()
        c.start_all()
        self.assertEqual(c.finish(), self.reference(), c.tails())

    def test_partitioned_host_is_fenced_rejoins_and_run_matches(self):
        c = self.cluster(steps=PARTITION_STEPS, coordinator_flags=FAST_FAILURE)
        c.start_all()
        self.partition(c, "host-2", "host host-2 failed (missed heartbeats)")
        # A new host to the coordinator: it drops its old actors and registers a second time.
        c.wait_for_log("host-2", "was declared failed", WAIT_S)
        c.wait_for_log("coordinator", "host host-2 registered", WAIT_S, times=2)
        self.assertEqual(c.finish(), self.reference(PARTITION_STEPS), c.tails())
        self.assertIn("recovery: host host-2 failed", c.processes["coordinator"].log())

    def test_partitioned_trainer_is_fenced_and_run_matches(self):
        c = self.cluster(steps=PARTITION_STEPS, coordinator_flags=FAST_FAILURE)
        c.start_all()
        self.partition(c, "trainer-1", "trainer trainer-1 missed heartbeats: failed")
        # Trainer 0 replays trainer 1's micro-batches from the checkpoint; trainer 1 may
        # return before or after the run's end, so only the leader must finish.
        self.assertEqual(c.finish(trainers=[0]), self.reference(PARTITION_STEPS), c.tails())
        self.assertIn("recovery: trainer trainer-1 failed", c.processes["coordinator"].log())
        c.wait_for_log("coordinator", "trainer trainer-1 registered", WAIT_S, times=2)

    def test_lossy_network_matches_standalone(self):
        c = self.cluster(steps=LOSSY_STEPS, faults=LOSSY)
        c.start_all()
        self.assertEqual(c.finish(), self.reference(LOSSY_STEPS), c.tails())
        self.assertIn("committed at step %d" % LOSSY_STEPS, c.processes["coordinator"].log())

    def test_outsiders_without_allowlisted_keys_are_refused(self):
        c = self.cluster()
        c.start_servers()
        outsider = self.network.add_machine("outsider")
        foreign = os.path.join(self.dir, "foreign")
        nc.run_to_end("keygen", [c.bin("syctl"), "keygen", "--cluster=" + foreign, "--hosts=4", "--trainers=3",
                                 "--operators=1"], foreign + ".log", 30)
        on_outsider = self.network.exec_prefix("outsider")
        # A plain ZeroMQ client (no keys): every server speaks CURVE and drops it.
        for endpoint in [c.coordinator_endpoint] + c.host_endpoints:
            host, port = endpoint[len("tcp://"):].rsplit(":", 1)
            probe = subprocess.run(on_outsider + [sys.executable, os.path.join(HERE, "zmtp_probe.py"), host, port],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=WAIT_S)
            self.assertEqual(json.loads(probe.stdout), {"mechanism": "CURVE", "admitted": False}, endpoint)
        # An operator of another cluster gets no answer; this cluster's operator, from the same machine, does.
        def syctl(keys):
            return subprocess.run(on_outsider + [c.bin("syctl"), "--coordinator=" + c.coordinator_endpoint,
                                                 "--keys=" + keys, "--timeout_ms=2000", "--json", "status"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=WAIT_S)
        refused = syctl(foreign)
        self.assertEqual(refused.returncode, 3, refused.stdout + refused.stderr)
        self.assertIn("did not answer", refused.stderr)
        self.assertEqual(syctl(c.keys).returncode, 0)
        # A host and a trainer with foreign keys try to join while the cluster trains.
        c.start("outsider-host", "outsider", [
            c.bin("sy-expert-host"), "--listen=tcp://0.0.0.0:%d" % nc.HOST_PORT, "--advertise_host=" + outsider,
            "--ready_file=" + c.path("outsider-host.ready"), "--host_index=3", "--num_hosts=4",
            "--coordinator=" + c.coordinator_endpoint, "--keys=" + foreign] + nc.MODEL_FLAGS)
        c.start("outsider-trainer", "outsider", [
            c.bin("sy-trainer"), "--hosts=" + ",".join(c.host_endpoints), "--coordinator=" + c.coordinator_endpoint,
            "--keys=" + foreign, "--trainer_index=2", "--num_trainers=3", "--steps=%d" % STEPS, "--data=" + self.data,
            "--workdir=" + c.path("outsider-trainer")] + nc.MODEL_FLAGS)
        c.start_trainers()
        self.assertEqual(c.finish(), self.reference(), c.tails())
        status = json.loads(syctl(c.keys).stdout)
        self.assertEqual((status["hosts_total"], status["hosts_alive"]), (3, 3), status)
        for name in ["coordinator", "host-0", "host-1", "host-2"]:
            self.assertNotRegex(c.processes[name].log(), "host-3|trainer-2", name + " heard from an outsider")
        self.assertFalse(os.path.exists(c.path("outsider-trainer/metrics.jsonl")), "the outsider trained")


if __name__ == "__main__":
    unittest.main(verbosity=2)  # prints why a case is skipped (ctest matches it)

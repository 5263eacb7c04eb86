"""The docker-compose cluster (a coordinator, 3 expert hosts, 2 trainers) started
process by process, each process on its own "machine" of a Network (netns_network.py)
with the compose file's flags and a cluster key directory from `syctl keygen`, plus
the one-process reference run it must match. Every wait is bounded; a process that
overstays is killed, and failures carry the tail of its log.
"""
import json
import os
import signal
import subprocess
import time

HOSTS = 3
TRAINERS = 2
SEED = 5
CHECKPOINT_EVERY = 5
COORDINATOR_PORT = 7000
HOST_PORT = 5555
MODEL_FLAGS = ["--layers=2", "--d_model=32", "--heads=2", "--d_ff=64", "--experts=4", "--moe_every=1",
               "--context=32", "--micro_batch=2", "--micro_batches=2", "--eval_every=0", "--eval_batches=1",
               "--seed=%d" % SEED, "--threads=1"]
READY_TIMEOUT_S = 60
RUN_TIMEOUT_S = 150


class ClusterFailure(AssertionError):
    pass


def write_corpus(path, size=24000):
    """A deterministic text of made-up words (an LCG picks them), at least `size` bytes."""
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "el", "an", "or", "u"]
    x, words = 12345, []
    while sum(len(w) + 1 for w in words) < size:
        x = (x * 1103515245 + 12345) % (1 << 31)
        words.append("".join(syllables[(x >> s) % len(syllables)] for s in range(4, 4 + 4 * (1 + x % 3), 4)))
        if x % 11 == 0:
            words[-1] += ".\n"
    with open(path, "w") as f:
        f.write(" ".join(words))
    return path


class Process:
    """One binary on one machine, its output in LOG."""

    def __init__(self, name, argv, log_path, prefix=()):
        self.name, self.log_path = name, log_path
        with open(log_path, "w") as log:
            self.popen = subprocess.Popen(list(prefix) + argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def tail(self, lines=25):
        return "--- %s (%s) ---\n%s" % (self.name, self.log_path, "\n".join(self.log().splitlines()[-lines:]))

    def wait(self, timeout_s):
        """The exit status, or None after timeout_s."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL when it has not exited within 10 s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            if self.wait(10) is None:
                self.popen.kill()
                self.popen.wait(timeout=10)


def run_to_end(name, argv, log_path, timeout_s, prefix=()):
    """Runs a command to its end (killed after timeout_s); returns the Process."""
    p = Process(name, argv, log_path, prefix)
    if p.wait(timeout_s) is None:
        p.stop()
        raise ClusterFailure("%s did not finish within %d s\n%s" % (name, timeout_s, p.tail()))
    return p


def checksum_of(summary_path):
    with open(summary_path) as f:
        return json.load(f)["param_checksum"]


def standalone_checksum(bin_dir, data, steps, workdir):
    """The one-process reference: every expert in-process, same seed, model, data and steps."""
    os.makedirs(workdir, exist_ok=True)
    argv = [os.path.join(bin_dir, "sy-trainer"), "--standalone", "--data=" + data, "--steps=%d" % steps,
            "--workdir=" + workdir] + MODEL_FLAGS
    p = run_to_end("standalone", argv, os.path.join(workdir, "standalone.log"), RUN_TIMEOUT_S)
    if p.popen.returncode != 0:
        raise ClusterFailure("standalone trainer exited %d\n%s" % (p.popen.returncode, p.tail()))
    return checksum_of(os.path.join(workdir, "summary.json"))


class NetnsCluster:
    """The cluster on `network`: machines coordinator, host-0..2, trainer-0..1."""

    def __init__(self, network, bin_dir, workdir, data, steps, coordinator_flags=(), faults=""):
        """faults: a --faults spec without its seed (every process gets its own seed), or ""."""
        self.network, self.bin_dir, self.workdir, self.data, self.steps = network, bin_dir, workdir, data, steps
        self.coordinator_flags, self.faults = list(coordinator_flags), faults
        self.keys = os.path.join(workdir, "keys")
        self.processes = {}
        for name in ["coordinator"] + ["host-%d" % h for h in range(HOSTS)] + ["trainer-%d" % t for t in range(TRAINERS)]:
            network.add_machine(name)
        self.coordinator_endpoint = "tcp://%s:%d" % (network.address("coordinator"), COORDINATOR_PORT)
        self.host_endpoints = ["tcp://%s:%d" % (network.address("host-%d" % h), HOST_PORT) for h in range(HOSTS)]

    def bin(self, name):
        return os.path.join(self.bin_dir, name)

    def path(self, name):
        return os.path.join(self.workdir, name)

    def keygen(self, directory):
        """A cluster key directory for this topology (one operator) from `syctl keygen`."""
        run_to_end("keygen", [self.bin("syctl"), "keygen", "--cluster=" + directory, "--hosts=%d" % HOSTS,
                              "--trainers=%d" % TRAINERS, "--operators=1"],
                   directory + ".keygen.log", 30)
        return directory

    def start(self, name, machine, argv):
        if self.faults:
            argv = argv + ["--faults=%s,seed=%d" % (self.faults, 1 + list(self.network.machines).index(machine))]
        p = Process(name, argv, self.path(name + ".log"), self.network.exec_prefix(machine))
        self.processes[name] = p
        return p

    def await_ready(self, name, ready_file):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (os.path.exists(ready_file) and os.path.getsize(ready_file) > 0):
            p = self.processes[name]
            if p.popen.poll() is not None:
                raise ClusterFailure("%s exited %d before writing %s\n%s" % (name, p.popen.returncode, ready_file,
                                                                            p.tail()))
            if time.monotonic() > deadline:
                raise ClusterFailure("%s wrote no %s within %d s\n%s" % (name, ready_file, READY_TIMEOUT_S, p.tail()))
            time.sleep(0.1)
        with open(ready_file) as f:
            return f.read().split()[0]

    def start_all(self):
        self.start_servers()
        self.start_trainers()

    def start_servers(self):
        """Keys, then the coordinator, then the hosts once it is ready; returns when the hosts are ready."""
        os.makedirs(self.workdir, exist_ok=True)
        self.keygen(self.keys)
        self.start("coordinator", "coordinator", [
            self.bin("sy-coordinator"), "--listen=tcp://0.0.0.0:%d" % COORDINATOR_PORT,
            "--ready_file=" + self.path("coordinator.ready"), "--db=" + self.path("coordinator.db"),
            "--expected_hosts=%d" % HOSTS, "--seed=%d" % SEED, "--checkpoint_every=%d" % CHECKPOINT_EVERY,
            "--keys=" + self.keys] + self.coordinator_flags)
        self.await_ready("coordinator", self.path("coordinator.ready"))
        for h in range(HOSTS):
            name = "host-%d" % h
            self.start(name, name, [
                self.bin("sy-expert-host"), "--listen=tcp://0.0.0.0:%d" % HOST_PORT,
                "--advertise_host=" + self.network.address(name), "--ready_file=" + self.path(name + ".ready"),
                "--host_index=%d" % h, "--num_hosts=%d" % HOSTS, "--coordinator=" + self.coordinator_endpoint,
                "--keys=" + self.keys, "--checkpoint_every=%d" % CHECKPOINT_EVERY] + MODEL_FLAGS)
        for h in range(HOSTS):
            self.await_ready("host-%d" % h, self.path("host-%d.ready" % h))

    def start_trainers(self):
        """The trainers, each with a run directory of its own (as on separate machines)."""
        for t in range(TRAINERS):
            name = "trainer-%d" % t
            os.makedirs(self.path(name), exist_ok=True)
            self.start(name, name, [
                self.bin("sy-trainer"), "--hosts=" + ",".join(self.host_endpoints),
                "--coordinator=" + self.coordinator_endpoint, "--keys=" + self.keys, "--trainer_index=%d" % t,
                "--num_trainers=%d" % TRAINERS, "--steps=%d" % self.steps, "--data=" + self.data,
                "--workdir=" + self.path(name)] + MODEL_FLAGS)

    def tails(self):
        return "\n".join(p.tail() for p in self.processes.values())

    def wait_for_log(self, name, text, timeout_s, times=1):
        """Waits (bounded) until process NAME's log holds `text` at least `times` times."""
        deadline = time.monotonic() + timeout_s
        while self.processes[name].log().count(text) < times:
            if time.monotonic() > deadline:
                raise ClusterFailure("%s's log did not show %r %d time(s) within %d s\n%s" % (
                    name, text, times, timeout_s, self.tails()))
            time.sleep(0.1)

    def finish(self, trainers=range(TRAINERS)):
        """Waits for the given trainers to exit 0; returns the final param_checksum of trainer 0, the leader."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for t in trainers:
            p = self.processes["trainer-%d" % t]
            rc = p.wait(max(1, deadline - time.monotonic()))
            if rc is None:
                raise ClusterFailure("trainer-%d did not finish within %d s\n%s" % (t, RUN_TIMEOUT_S, self.tails()))
            if rc != 0:
                raise ClusterFailure("trainer-%d exited %d\n%s" % (t, rc, self.tails()))
        return checksum_of(self.path("trainer-0/summary.json"))

    def stop(self):
        for p in self.processes.values():
            p.stop()

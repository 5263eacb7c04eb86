"""A private network of Linux network namespaces for multi-machine tests: one
namespace per "machine", each with its own address on one bridge, joined by a veth
pair (iproute2 only). The bridge carries no address in the test's own namespace, so
the tests reach nothing but these addresses, and two runs with the same subnet on
different bridges do not see each other. Names carry the test process's pid so
parallel runs do not collide; close() removes every namespace, veth and bridge, and
an atexit hook calls it when a test forgets to (or dies on an exception or SIGTERM).
A run killed outright (a ctest timeout) cannot clean up: the next Network removes what
runs whose pid is gone left behind, and stops the processes still in their namespaces.
"""
import atexit
import os
import re
import signal
import subprocess

SUBNET = "10.77.0"  # /24: machine i gets SUBNET.(10 + i)


class NetnsUnavailable(Exception):
    """Not root, or namespaces cannot be made here: the caller skips."""


def _ip(*args, check=True):
    done = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), done.stdout.strip()))
    return done


def require_netns():
    """Raises NetnsUnavailable with the reason when namespaces cannot be made."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespace tests need root (ip netns add)")
    probe = "sy%dprobe" % os.getpid()
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable("ip netns add is not permitted here: " + done.stdout.strip())
    _ip("netns", "del", probe, check=False)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def reap_dead_runs():
    """Removes the namespaces (stopping what runs in them), veths and bridges of dead test processes."""
    for line in _ip("netns", "list").stdout.splitlines():
        match = re.match(r"sy(\d+)-\S+", line)
        if match and not _alive(int(match.group(1))):
            namespace = match.group(0)
            for pid in _ip("netns", "pids", namespace, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", namespace, check=False)
    for line in _ip("-o", "link", "show").stdout.splitlines():
        match = re.match(r"\d+: (sy(?:br|v)(\d+)(?:x\d+)?)[@:]", line)
        if match and not _alive(int(match.group(2))):
            _ip("link", "del", match.group(1), check=False)


def _exit_on_sigterm(signum, frame):
    raise SystemExit("terminated by signal %d" % signum)


class Network:
    """A bridge plus one namespace per machine name; machine(name) gives its address."""

    def __init__(self):
        self.prefix = "sy%d" % os.getpid()  # unique per test process (one network each)
        self.bridge = "sybr%d" % os.getpid()
        self.machines = {}  # name -> (namespace, host-side veth, address)
        self.closed = False
        reap_dead_runs()
        atexit.register(self.close)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that atexit runs
        _ip("link", "add", "name", self.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0",
            "nf_call_iptables", "0")
        _ip("link", "set", self.bridge, "up")

    def add_machine(self, name):
        """A namespace NAME with lo up and eth0 at the next address; returns the address."""
        index = len(self.machines)
        namespace = "%s-%s" % (self.prefix, name)
        outer = "syv%dx%d" % (os.getpid(), index)
        address = "%s.%d" % (SUBNET, 10 + index)
        _ip("netns", "add", namespace)
        self.machines[name] = (namespace, outer, address)
        _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", outer, "master", self.bridge, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "addr", "add", address + "/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        return address

    def address(self, name):
        return self.machines[name][2]

    def namespace(self, name):
        return self.machines[name][0]

    def exec_prefix(self, name):
        """The argv prefix that runs a command on machine NAME."""
        return ["ip", "netns", "exec", self.namespace(name)]

    def set_link(self, name, up):
        """Cuts (up=False) or restores machine NAME's cable at the bridge."""
        _ip("link", "set", self.machines[name][1], "up" if up else "down")

    def close(self):
        """Removes every namespace (its eth0 goes with it and takes the outer veth) and the bridge."""
        if self.closed:
            return
        self.closed = True
        for namespace, outer, _ in self.machines.values():
            _ip("netns", "del", namespace, check=False)
            _ip("link", "del", outer, check=False)  # gone already unless the namespace was not
        _ip("link", "del", self.bridge, check=False)

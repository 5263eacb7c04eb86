"""What the live-view tests share: a tiny model and corpus, a process whose stderr
(or log file) is watched for the /metrics endpoint it serves, and a scraper that
parses the Prometheus text format. Python 3 standard library only; loopback only.
"""
import os
import random
import re
import signal
import subprocess
import time
import urllib.request

BIN_DIR = os.environ.get("SY_BIN_DIR", "build/bin")
DEADLINE_S = 120  # every wait in these tests is bounded by this

# Every layer a Switch layer of 4 experts; 4 x 4 x 32 = 512 tokens a step.
TINY = ["--layers=2", "--d_model=32", "--heads=2", "--d_ff=64", "--experts=4", "--moe_every=1",
        "--context=32", "--micro_batch=4", "--micro_batches=4", "--warmup=5", "--eval_every=0",
        "--eval_batches=2"]
TOKENS_PER_STEP = 4 * 4 * 32
SWITCH_LAYERS = 2
EXPERTS = 4

SERVING = re.compile(r"metrics: serving http://([0-9.]+):([0-9]+)/metrics")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def write_corpus(path, size=60_000):
    """Deterministic English-like text."""
    words = ("the of and to in is that it was for on are as with his they at be this from have or by "
             "expert router token switch layer capacity gradient").split()
    rng = random.Random(99)
    with open(path, "w") as f:
        n = 0
        while n < size:
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + ". "
            f.write(sentence)
            n += len(sentence)


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} and {family: type} of a /metrics text."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            types[family] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if match is None:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        name, labels, value = match.groups()
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples, types


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as reply:
        return parse_metrics(reply.read().decode())


def metrics_ports(text):
    """The ports of every 'metrics: serving' line in a log."""
    return [int(port) for _, port in SERVING.findall(text)]


def wait_for(what, probe, process=None):
    """Polls probe() (every 0.1 s, up to DEADLINE_S) until it returns something true."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError("%s: the process exited (%s) first" % (what, process.returncode))
        time.sleep(0.1)
    raise AssertionError("%s: not within %d s" % (what, DEADLINE_S))


def start(argv, stderr_path):
    """A process in its own session (so stop() ends it and its children), stderr to a file."""
    with open(stderr_path, "w") as err:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def stop(process):
    """SIGTERM to the process group start() made, then SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""

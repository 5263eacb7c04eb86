"""What the cluster tests share: the sy-local binary, a deterministic corpus, a
tiny model, and ClusterCase, a TestCase that runs sy-local and reads its record
(metrics.jsonl, summary.json). Python 3 standard library only.
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import unittest

BIN_DIR = os.environ.get("SY_BIN_DIR", "build/bin")
SY_LOCAL = os.path.join(BIN_DIR, "sy-local")

# A tiny model: every layer a Switch layer, so both hosts own experts of both layers.
TINY = ["--layers=2", "--d_model=32", "--heads=2", "--d_ff=64", "--experts=4", "--moe_every=1",
        "--context=32", "--micro_batch=4", "--micro_batches=4", "--warmup=5", "--lr=1e-2",
        "--dropout=0.1", "--expert_dropout=0.2", "--jitter=0.01", "--eval_every=0", "--eval_batches=2"]
STEPS = 30
STEP_FIELDS = ["step", "loss", "lb_loss", "z_loss", "tokens_per_s", "dropped_frac", "expert_tokens"]
SUMMARY_FIELDS = ["steps", "final_loss", "final_val_loss", "param_checksum", "median_tokens_per_s"]


def write_corpus(path, size=120_000):
    """Deterministic English-like text: sentences of words drawn with a fixed seed."""
    words = ("the of and to in is that it was for on are as with his they at be this from have or by one "
             "had not but what all were when we there can an your which their said if do will each about "
             "how up out them then she many some so these would other into has more her two like him see "
             "time could no make than first been its who now people my made over did down only way find "
             "use may water long little very after words called just where most know expert router token "
             "switch layer capacity gradient").split()
    rng = random.Random(1234)
    out = []
    n = 0
    while n < size:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([". ", ". ", "? ", "!\n"])
        out.append(sentence)
        n += len(sentence)
    with open(path, "w") as f:
        f.write("".join(out))


def child_pids(parent):
    """Pids of the live processes whose parent is `parent` (from /proc; procps may be absent)."""
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == parent:
            children.append(entry)
    return children


class Run:
    """One finished sy-local run."""

    def __init__(self, workdir, proc):
        self.workdir = workdir
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def summary(self):
        with open(os.path.join(self.workdir, "summary.json")) as f:
            return json.load(f)

    def steps(self):
        with open(os.path.join(self.workdir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]

    def read(self, name):
        """The text of the file `name` in the run's workdir (e.g. a process log)."""
        with open(os.path.join(self.workdir, name)) as f:
            return f.read()

    def describe(self):
        """sy-local's output and the tail of every process log (what CI shows of a failed run)."""
        text = "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.stdout[-3000:], self.stderr[-3000:])
        logs = sorted(name for name in os.listdir(self.workdir) if name.endswith(".log")) \
            if os.path.isdir(self.workdir) else []
        for name in logs:
            with open(os.path.join(self.workdir, name), errors="replace") as f:
                tail = [line for line in f if not line.startswith("step ")][-12:]
            text += "\n--- %s (last lines) ---\n%s" % (name, "".join(tail))
        return text


def _text(output):
    """What a timed-out subprocess had printed, as text."""
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


class ClusterCase(unittest.TestCase):
    """Runs sy-local in a fresh directory per run, under one temporary root per class."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="sy_cluster_test_")
        cls.corpus = os.path.join(cls.root, "corpus.txt")
        write_corpus(cls.corpus)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def local(self, name, hosts, trainers, extra=(), steps=STEPS, data=None, timeout=120):
        workdir = os.path.join(self.root, name)
        args = [SY_LOCAL, "--hosts=%d" % hosts, "--trainers=%d" % trainers, "--steps=%d" % steps,
                "--data=" + (data or self.corpus), "--workdir=" + workdir, "--timeout_s=%d" % (timeout - 10)]
        args += TINY + list(extra)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            # sy-local is killed (its processes follow: they die with their parent); the run
            # fails with every log's tail rather than a bare traceback.
            proc = subprocess.CompletedProcess(args, -9, _text(expired.stdout),
                                               _text(expired.stderr) + "\n(test: sy-local ran past %d s)" % timeout)
        return Run(workdir, proc)

    def ok(self, *args, **kwargs):
        run = self.local(*args, **kwargs)
        self.assertEqual(run.rc, 0, run.describe())
        return run

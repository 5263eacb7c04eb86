# The runs behind `make experiment`: which training runs there are, how each is
# started (sy-trainer --standalone, or sy-local for the wire-dtype comparison), and
# reading back what each wrote (metrics.jsonl, summary.json). Runs that already
# finished (their summary.json exists with the same command) are not run again.
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

EXPERT_COUNTS = (4, 8, 16, 32)
CAPACITY_FACTORS = (1.0, 1.25, 2.0)
LB_ALPHAS = (0.001, 0.01, 0.1)
WIRE_DTYPES = ("f32", "bf16")
BASE_CAPACITY = 1.25
BASE_LB_ALPHA = 0.1
WIDE_DENSE_FF = 2048  # 4x the default d_ff: as many FFN parameters as Switch-4, and 4x its FFN FLOPs
SHORT_SCHEDULE_FRACTIONS = (0.5, 0.75)  # the best Switch-N again, trained for these fractions of the steps


class Run:
    """One training run: a name, its flags, and (after it ran) its records."""

    def __init__(self, name, flags, distributed=False):
        self.name, self.flags, self.distributed = name, flags, distributed
        self.metrics, self.summary = [], {}

    def command(self, build, common, workdir):
        # A run's own flags replace the common ones of the same name (e.g. --steps).
        own = {f.split("=", 1)[0] for f in self.flags}
        flags = [f for f in common if f.split("=", 1)[0] not in own] + self.flags
        if self.distributed:
            return [os.path.join(build, "bin", "sy-local"), "--hosts=2", "--trainers=2",
                    f"--workdir={workdir}"] + flags
        return [os.path.join(build, "bin", "sy-trainer"), "--standalone", "--threads=1",
                f"--workdir={workdir}"] + flags

    def train_records(self):
        return [r for r in self.metrics if "loss" in r]

    def val_curve(self):
        return [(r["step"], r["val_loss"]) for r in self.metrics if r.get("val_loss") is not None]

    def final_val(self):
        return self.summary.get("final_val_loss")

    def final_step(self):
        return max((r["step"] for r in self.train_records()), default=0)

    def mean_dropped(self, last_fraction=0.5):
        rows = self.train_records()
        tail = rows[int(len(rows) * (1 - last_fraction)):]
        return sum(r["dropped_frac"] for r in tail) / len(tail) if tail else float("nan")

    def step_seconds(self, tokens_per_step):
        tps = self.summary.get("median_tokens_per_s")
        return tokens_per_step / tps if tps else float("nan")


def plan():
    """Every run of the experiment, each named once (shared runs are reused by name)."""
    runs = [Run("dense", ["--experts=0"]), Run("dense_wide", ["--experts=0", f"--d_ff={WIDE_DENSE_FF}"])]
    runs += [Run(f"switch{e}", [f"--experts={e}"]) for e in EXPERT_COUNTS]
    runs += [Run(f"switch8_cf{cf}", ["--experts=8", f"--capacity_factor={cf}"])
             for cf in CAPACITY_FACTORS if cf != BASE_CAPACITY]
    runs += [Run(f"switch8_lb{a}", ["--experts=8", f"--lb_alpha={a}"])
             for a in LB_ALPHAS if a != BASE_LB_ALPHA]
    runs += [Run(f"local_{d}", ["--experts=8", f"--wire_dtype={d}"], distributed=True) for d in WIRE_DTYPES]
    # Selective precision: bf16 dense gradients and parameters (router excepted) on the wire,
    # alone and with bf16 expert activations. Standalone: it trains what any cluster shape does.
    runs += [Run("switch8_dense_bf16", ["--experts=8", "--dense_wire_dtype=bf16"]),
             Run("switch8_all_bf16", ["--experts=8", "--wire_dtype=bf16", "--dense_wire_dtype=bf16"]),
             Run("switch8_seed4", ["--experts=8", "--seed=4"])]  # how far another seed moves the loss
    return runs


def short_schedule_plan(best, steps):
    """The best Switch run again, each trained (warm-up, cosine decay and all) for a fraction of the steps."""
    runs = []
    for fraction in SHORT_SCHEDULE_FRACTIONS:
        short = int(steps * fraction)
        runs.append(Run(f"{best.name}_steps{short}", best.flags + [
            f"--steps={short}", f"--warmup={min(50, short // 8)}", f"--eval_every={max(1, short // 8)}"]))
    return runs


def by_name(runs):
    table = {r.name: r for r in runs}
    alias = {f"switch8_cf{BASE_CAPACITY}": "switch8", f"switch8_lb{BASE_LB_ALPHA}": "switch8"}
    return lambda name: table[alias.get(name, name)]


def _read(run, workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        run.metrics = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(workdir, "summary.json")) as f:
        run.summary = json.load(f)


def _execute(run, build, common, root, log):
    workdir = os.path.join(root, run.name)
    cmd = run.command(build, common, workdir)
    stamp = os.path.join(root, run.name + ".cmd")
    if os.path.exists(os.path.join(workdir, "summary.json")) and os.path.exists(stamp) \
            and open(stamp).read() == " ".join(cmd):
        log(f"{run.name}: reusing {workdir}")
    else:
        subprocess.run(["rm", "-rf", workdir], check=True)
        log(f"{run.name}: {' '.join(cmd)}")
        with open(os.path.join(root, run.name + ".log"), "w") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise SystemExit(f"experiment: run {run.name} failed (exit {done.returncode}); "
                             f"see {os.path.join(root, run.name + '.log')}")
        with open(stamp, "w") as f:
            f.write(" ".join(cmd))
    _read(run, workdir)
    log(f"{run.name}: final val loss {run.final_val():.4f}")


def execute_all(runs, build, common, distributed_steps, root, jobs, log):
    """Standalone runs `jobs` at a time, then the sy-local runs one at a time."""
    os.makedirs(root, exist_ok=True)
    standalone = [r for r in runs if not r.distributed]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(_execute, r, build, common, root, log) for r in standalone]:
            future.result()
    wire_common = [f if not f.startswith("--steps=") else f"--steps={distributed_steps}" for f in common]
    for r in runs:
        if r.distributed:
            _execute(r, build, wire_common, root, log)

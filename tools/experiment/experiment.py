#!/usr/bin/python3
# `make experiment`: trains dense vs Switch-{4,8,16,32} at equal FLOPs per token (and a
# dense model with a 4x wider FFN, the best Switch model on shorter schedules),
# Switch-8 at capacity factors 1.0/1.25/2.0 and load-balancing weights
# 0.001/0.01/0.1 (standalone), and Switch-8 with f32 vs bf16 activations on the
# wire (sy-local, 2 hosts x 2 trainers); then writes EXPERIMENTS.md and the plots in
# docs/experiments/. Needs /usr/bin/python3 with matplotlib (python3-matplotlib).
#
#   /usr/bin/python3 tools/experiment/experiment.py --build=build --data=CORPUS \
#       --steps=400 --workdir=build/experiment [--jobs=2]
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import runs  # noqa: E402
from runs import Run  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLAPSE_NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "router_collapse.md")
SCALE_NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scale_notes.md")


def fortunes_corpus(path, fortunes="/usr/share/games/fortunes"):
    """Every plain-text fortune file (no .dat index, no .u8 link) in byte order of names, into path."""
    if not os.path.isdir(fortunes):
        raise SystemExit(f"experiment: no corpus: {fortunes} is missing (install the 'fortunes' package)")
    with open(path, "wb") as out:
        for name in sorted(os.listdir(fortunes)):
            full = os.path.join(fortunes, name)
            if not name.endswith((".dat", ".u8")) and os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    out.write(f.read())
    return path


def main():
    ap = argparse.ArgumentParser(description="dense vs Switch-N experiments; writes EXPERIMENTS.md")
    ap.add_argument("--build", required=True, help="build directory holding bin/sy-trainer and bin/sy-local")
    ap.add_argument("--data", default="", help="corpus file (empty: the texts of Debian's fortunes package)")
    ap.add_argument("--steps", type=int, default=400, help="steps of every standalone run")
    ap.add_argument("--distributed_steps", type=int, default=0, help="steps of the sy-local runs (0: steps/4)")
    ap.add_argument("--micro_batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workdir", required=True, help="where the runs write (reused when rerun)")
    ap.add_argument("--jobs", type=int, default=2, help="standalone runs at a time (1 thread each)")
    ap.add_argument("--repo", default=REPO, help="where EXPERIMENTS.md and docs/experiments/ go")
    args = ap.parse_args()
    if args.steps < 10 or args.jobs < 1:
        raise SystemExit("experiment: --steps must be >= 10 and --jobs >= 1")
    os.makedirs(args.workdir, exist_ok=True)
    args.data = args.data or fortunes_corpus(os.path.join(args.workdir, "fortunes.txt"))
    if not os.path.isfile(args.data) or os.path.getsize(args.data) < 10000:
        raise SystemExit(f"experiment: corpus {args.data} is missing or smaller than 10000 bytes")
    for binary in ("sy-trainer", "sy-local"):
        if not os.access(os.path.join(args.build, "bin", binary), os.X_OK):
            raise SystemExit(f"experiment: {args.build}/bin/{binary} is missing: build first (make build)")
    eval_every = max(1, args.steps // 8)
    distributed_steps = args.distributed_steps or max(10, args.steps // 4)
    common = [f"--data={os.path.abspath(args.data)}", f"--steps={args.steps}", f"--micro_batch={args.micro_batch}",
              f"--seed={args.seed}", f"--warmup={min(50, args.steps // 8)}", f"--eval_every={eval_every}",
              "--eval_batches=16"]
    started = time.time()

    def log(text):
        print(f"[{time.time() - started:6.0f}s] {text}", flush=True)

    plan = runs.plan()
    runs.execute_all(plan, args.build, common, distributed_steps, os.path.abspath(args.workdir), args.jobs, log)
    # The cosine schedule anneals every run at its own last step, so "the step where a
    # Switch run passes the dense final" undersells it; the fair question is how short a
    # schedule of the best Switch model still ends at or below the dense final.
    best = min((r for r in plan if r.name in {f"switch{e}" for e in runs.EXPERT_COUNTS}), key=Run.final_val)
    short = runs.short_schedule_plan(best, args.steps)
    runs.execute_all(short, args.build, common, distributed_steps, os.path.abspath(args.workdir), args.jobs, log)
    with open(COLLAPSE_NOTES) as f:
        collapse_text = f.read()
    with open(SCALE_NOTES) as f:
        scale_text = f.read()
    cfg = {"steps": args.steps, "distributed_steps": distributed_steps, "data": args.data,
           "tokens_per_step": args.micro_batch * 2 * 128, "command": " ".join(["make experiment"] + [
               f"EXPERIMENT_STEPS={args.steps}"])}
    report.write(runs.by_name(plan + short), cfg, args.repo, (scale_text, collapse_text), best.name, short)
    log(f"wrote {os.path.join(args.repo, 'EXPERIMENTS.md')} and docs/experiments/*.png")


if __name__ == "__main__":
    main()

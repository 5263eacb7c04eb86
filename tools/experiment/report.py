# Turns the finished runs of `make experiment` into EXPERIMENTS.md (generated
# tables, the headline, the command and the machine) and the PNG plots under
# docs/experiments/. Reads only the Run objects of runs.py.
import math
import os
import platform
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from runs import (BASE_CAPACITY, BASE_LB_ALPHA, CAPACITY_FACTORS, EXPERT_COUNTS,  # noqa: E402
                  LB_ALPHAS, WIDE_DENSE_FF, WIRE_DTYPES)


def machine():
    model, cores = platform.processor() or "unknown CPU", os.cpu_count()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {cores} cores"


def first_step_at_or_below(curve, target):
    """Step (linearly interpolated between evaluations) where a val curve first reaches target."""
    prev = None
    for step, loss in curve:
        if loss <= target:
            if prev is None:
                return float(step)
            (s0, l0) = prev
            return s0 + (step - s0) * (l0 - target) / (l0 - loss)
        prev = (step, loss)
    return None


def headline(get, steps, best_name, short):
    dense_final = get("dense").final_val()
    best = get(best_name)
    reached = first_step_at_or_below(best.val_curve(), dense_final)
    lines = [f"- Dense final validation loss after {steps} steps: **{dense_final:.4f}**."]
    if reached is None:
        lines.append(f"- The best Switch model ({best.name}, final {best.final_val():.4f}) never reaches it "
                     f"within {steps} steps: the speed-up target (at most 1/2 of the steps) is **not met**.")
    else:
        ratio = reached / steps
        verdict = "met" if ratio <= 0.5 else "not met"
        lines.append(f"- The best Switch model, **{best.name}** (final {best.final_val():.4f}), reaches the dense "
                     f"model's final validation loss at step **{reached:.0f}** of {steps}: a step ratio of "
                     f"**{ratio:.2f}** (target at most 0.50: **{verdict}**).")
    below = [r for r in short if r.final_val() <= dense_final]
    lines.append(f"- Trained on shorter schedules of its own (warm-up and cosine decay ending at the last step), "
                 f"{best.name} ends at " + ", ".join(f"{r.final_val():.4f} after {r.final_step()} steps"
                                                     for r in short) + ": " +
                 (f"at or below the dense final from **{min(r.final_step() for r in below)}** steps, a step ratio "
                  f"of at most **{min(r.final_step() for r in below) / steps:.2f}**." if below else
                  f"above the dense final each time, so the step ratio is above "
                  f"**{max(r.final_step() for r in short) / steps:.2f}** on this measure too."))
    wide = get("dense_wide")
    wide_reached = first_step_at_or_below(wide.val_curve(), dense_final)
    lines.append(f"- A dense model with a {WIDE_DENSE_FF // 512}x wider FFN (d_ff {WIDE_DENSE_FF}: as many FFN "
                 f"parameters as Switch-4, and {WIDE_DENSE_FF // 512}x its FFN FLOPs) ends at "
                 f"**{wide.final_val():.4f}**, {dense_final - wide.final_val():.4f} below the dense model: what more "
                 f"FFN parameters can buy at this scale, with FLOPs to spare" +
                 (f"; it reaches the dense final at step {wide_reached:.0f}." if wide_reached is not None else "."))
    losses = [(e, get(f"switch{e}").final_val()) for e in EXPERT_COUNTS]
    monotone = all(b[1] < a[1] for a, b in zip(losses, losses[1:]))
    best_e = min(losses, key=lambda x: x[1])[0]
    lines.append("- Final validation loss by number of experts: " + ", ".join(f"{e}: {v:.4f}" for e, v in losses)
                 + f" ({'falls with every doubling' if monotone else f'lowest at {best_e} experts'}).")
    return "\n".join(lines)


def plot_curves(get, short, path):
    plt.figure(figsize=(7, 4.5))
    for name in ["dense"] + [f"switch{e}" for e in EXPERT_COUNTS]:
        curve = get(name).val_curve()
        plt.plot([s for s, _ in curve], [v for _, v in curve], marker="o", ms=3, label=name)
    for run, style in [(get("dense_wide"), "--")] + [(r, ":") for r in short]:
        curve = run.val_curve()
        plt.plot([s for s, _ in curve], [v for _, v in curve], ls=style, marker=".", ms=3, label=run.name)
    plt.axhline(get("dense").final_val(), color="gray", lw=0.8, ls="--", label="dense final")
    plt.xlabel("step")
    plt.ylabel("validation loss (nats/byte)")
    plt.title("Validation loss: dense vs Switch-N (equal FLOPs per token)")
    plt.legend()
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close()


def plot_bars(xs, ys, xlabel, title, path, logx=False):
    plt.figure(figsize=(6, 4))
    plt.plot(xs, ys, marker="o")
    if logx:
        plt.xscale("log", base=2 if xs[0] >= 1 else 10)
    plt.xlabel(xlabel)
    plt.ylabel("final validation loss (nats/byte)")
    plt.title(title)
    plt.grid(alpha=0.3)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close()


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def write(get, cfg, repo, notes, best_name, short):
    """cfg: steps, distributed_steps, tokens_per_step, data, command; notes: the hand-written scale and
    collapse notes; best_name: the Switch run with the lowest final loss; short: its shorter-schedule
    runs. Writes EXPERIMENTS.md and the PNGs."""
    scale_text, collapse_text = notes
    pics = os.path.join(repo, "docs", "experiments")
    os.makedirs(pics, exist_ok=True)
    plot_curves(get, short, os.path.join(pics, "val_loss_vs_step.png"))
    plot_bars([0] + list(EXPERT_COUNTS), [get("dense").final_val()] +
              [get(f"switch{e}").final_val() for e in EXPERT_COUNTS],
              "experts (0 = dense)", "Final validation loss vs number of experts",
              os.path.join(pics, "loss_vs_experts.png"))
    cf_names = {cf: ("switch8" if cf == BASE_CAPACITY else f"switch8_cf{cf}") for cf in CAPACITY_FACTORS}
    lb_names = {a: ("switch8" if a == BASE_LB_ALPHA else f"switch8_lb{a}") for a in LB_ALPHAS}
    plot_bars(list(LB_ALPHAS), [get(lb_names[a]).final_val() for a in LB_ALPHAS], "lb_alpha",
              "Load-balancing weight sweep (Switch-8)", os.path.join(pics, "lb_sweep.png"), logx=True)
    tps = cfg["tokens_per_step"]

    def row(name, label):
        r = get(name)
        return [label, f"{r.final_val():.4f}", f"{100 * r.mean_dropped():.2f}", f"{r.step_seconds(tps):.3f}"]

    header = ["run", "final val loss", "dropped % (2nd half)", "step time s (median)"]
    sections = [
        "# Experiments",
        "Generated by `make experiment` (tools/experiment/experiment.py); do not edit by hand.",
        f"Command: `{cfg['command']}`  \nCorpus: `{os.path.basename(cfg['data'])}` ({os.path.getsize(cfg['data'])} bytes)  \nMachine: {machine()}. The machine is "
        "shared with other builds and tests, so step times are noisy; losses are deterministic.",
        f"Every standalone run: {cfg['steps']} steps, {tps} tokens per step, the default model (4 layers, "
        "d_model 128, Switch FFN in layers 1 and 3, expert d_ff = dense d_ff = 512, so FLOPs per token are "
        "equal), the same seed and data order.",
        "## Headline\n\n" + headline(get, cfg["steps"], best_name, short),
        "## Dense vs Switch-N\n\n![val loss vs step](docs/experiments/val_loss_vs_step.png)\n"
        "![loss vs experts](docs/experiments/loss_vs_experts.png)\n\n" +
        table(header, [row("dense", "dense"), row("dense_wide", f"dense, d_ff {WIDE_DENSE_FF}")] +
              [row(f"switch{e}", f"Switch-{e}") for e in EXPERT_COUNTS] +
              [row(r.name, f"{best_name}, {r.final_step()} steps") for r in short]),
        scale_text.strip(),
        "## Capacity factor (Switch-8; the paper's Table 1 at our scale)\n\n" +
        table(header, [row(cf_names[cf], f"capacity {cf}") for cf in CAPACITY_FACTORS]),
        "## Load-balancing weight (Switch-8)\n\n![lb sweep](docs/experiments/lb_sweep.png)\n\n" +
        table(header, [row(lb_names[a], f"lb_alpha {a}") for a in LB_ALPHAS]),
        f"## Wire dtype (sy-local, 2 hosts x 2 trainers, Switch-8, {cfg['distributed_steps']} steps)\n\n" +
        table(["wire", "final val loss", "param checksum", "tokens/s (median)"],
              [[d, f"{get('local_' + d).final_val():.4f}", get("local_" + d).summary.get("param_checksum", "?"),
                f"{get('local_' + d).summary.get('median_tokens_per_s', math.nan):.0f}"] for d in WIRE_DTYPES]),
        f"## bf16 dense wire (Switch-8, {cfg['steps']} steps, standalone: any cluster shape trains the same "
        "weights)\n\n"
        "`--dense_wire_dtype=bf16` pushes dense gradients and pulls dense parameters in bf16, the router's "
        "excepted; the hosts keep f32 master weights and moments, and every gradient sum is rounded to bf16.\n\n" +
        table(["expert activations", "dense gradients and parameters", "final val loss", "param checksum"],
              [[w, d, f"{get(name).final_val():.4f}", get(name).summary.get("param_checksum", "?")]
               for name, w, d in [("switch8", "f32", "f32"), ("switch8_dense_bf16", "f32", "bf16"),
                                  ("switch8_all_bf16", "bf16", "bf16"), ("switch8_seed4", "f32, seed 4", "f32")]]) +
        "\n\nThe last row is the f32 run again with another seed (data order, init, dropout), for scale: "
        "how far the final loss moves for reasons that have nothing to do with precision.",
        collapse_text.strip(),
    ]
    with open(os.path.join(repo, "EXPERIMENTS.md"), "w") as f:
        f.write("\n\n".join(sections) + "\n")

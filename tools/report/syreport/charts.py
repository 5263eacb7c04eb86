"""The pictures of a run report, drawn with matplotlib (Agg, no display) into PNG files:
one run's loss, throughput, dropped tokens per Switch layer, expert-load heatmaps and
host load, each with the run's checkpoints, rollbacks and placement changes marked on
the step axis; and the overlays that compare several runs. Each function returns the
(file name, caption) pairs it wrote.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

# How each kind of timeline event is drawn: colour, line style, legend label.
EVENT_STYLES = {
    "checkpoint": ("#7f7f7f", ":", "checkpoint"),
    "rollback": ("#d62728", "--", "rollback (recovery or move)"),
    "placement": ("#ff7f0e", "-.", "placement change"),
}
WIDTH, HEIGHT, DPI = 9.0, 3.6, 100


def _mark_events(ax, events):
    seen = set()
    for step, kind, _ in events:
        colour, style, label = EVENT_STYLES[kind]
        ax.axvline(step, color=colour, linestyle=style, linewidth=1.2,
                   label=None if kind in seen else label)
        seen.add(kind)


def _save(fig, out_dir, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=DPI)
    plt.close(fig)
    return name


def _step_axes(title, ylabel):
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _finish_legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def run_charts(run, out_dir, prefix):
    """Every picture of one run; file names start with `prefix`."""
    events = run.events()
    written = []

    fig, ax = _step_axes("Loss", "loss (nats/byte)")
    ax.plot(*run.series("loss"), label="training loss", color="#1f77b4")
    val_steps, val = run.series("val_loss")
    if val:
        ax.plot(val_steps, val, "o-", label="validation loss", color="#2ca02c")
    _mark_events(ax, events)
    _finish_legend(ax)
    written.append((_save(fig, out_dir, prefix + "loss.png"), "Training and validation loss"))

    fig, ax = _step_axes("Throughput", "tokens/s")
    ax.plot(*run.series("tokens_per_s"), color="#9467bd", label="tokens/s")
    ax.axhline(run.summary["median_tokens_per_s"], color="#9467bd", alpha=0.5, linestyle="--", label="median")
    _mark_events(ax, events)
    _finish_legend(ax)
    written.append((_save(fig, out_dir, prefix + "throughput.png"), "Tokens per second at each step"))

    fig, ax = _step_axes("Tokens dropped by capacity", "dropped fraction")
    per_layer = [run.switch_layer_dropped(layer) for layer in range(run.switch_layers())]
    if any(values for _, values in per_layer):
        for layer, (steps, values) in enumerate(per_layer):
            ax.plot(steps, values, label="Switch layer %d" % layer)
    else:  # a run written before the per-layer series: the fraction over every Switch layer
        ax.plot(*run.series("dropped_frac"), label="all Switch layers")
    _mark_events(ax, events)
    _finish_legend(ax)
    written.append((_save(fig, out_dir, prefix + "dropped.png"), "Fraction of tokens dropped per Switch layer"))

    for layer in range(run.switch_layers()):
        steps, rows = run.expert_load(layer)
        fig, ax = _step_axes("Expert load, Switch layer %d" % layer, "expert")
        image = ax.imshow(rows, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0,
                          extent=(steps[0] - 0.5, steps[-1] + 0.5, len(rows) - 0.5, -0.5))
        ax.set_yticks(range(len(rows)))
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="share of the layer's tokens")
        _mark_events(ax, events)
        _finish_legend(ax)
        written.append((_save(fig, out_dir, "%sexpert_load_layer%d.png" % (prefix, layer)),
                        "Tokens routed to each expert of Switch layer %d (share per step)" % layer))

    steps, hosts = run.host_load()
    if hosts:
        fig, ax = _step_axes("Host load", "tokens routed to the host's experts")
        for host, tokens in hosts.items():
            ax.plot(steps, tokens, label=host)
        _mark_events(ax, events)
        _finish_legend(ax)
        written.append((_save(fig, out_dir, prefix + "host_load.png"),
                        "Tokens per expert host at each step, as the coordinator counted them"))
    return written


def comparison_charts(runs, out_dir, prefix):
    """Overlays of several runs' loss, validation loss, throughput and dropped fraction."""
    written = []
    overlays = [("loss", "Training loss", "loss (nats/byte)", "-"),
                ("val_loss", "Validation loss", "loss (nats/byte)", "o-"),
                ("tokens_per_s", "Throughput", "tokens/s", "-"),
                ("dropped_frac", "Tokens dropped by capacity (all Switch layers)", "dropped fraction", "-")]
    for field, title, ylabel, style in overlays:
        fig, ax = _step_axes(title, ylabel)
        drawn = False
        for run in runs:
            steps, values = run.series(field)
            if values:
                ax.plot(steps, values, style, label="%s (%s)" % (run.name, run.shape()))
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        _finish_legend(ax)
        written.append((_save(fig, out_dir, "%s%s.png" % (prefix, field)), title + ", every run"))
    return written

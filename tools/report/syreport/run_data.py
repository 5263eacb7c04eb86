"""A finished run as sy-report reads it: the per-step records of metrics.jsonl and the
figures of summary.json (as written by sy-trainer and completed by sy-local), checked
field by field so a missing or corrupt run directory is refused with a clear reason
before anything is drawn.
"""
import json
import os


class RunDirError(Exception):
    """A run directory that cannot be reported: missing, or holding unusable records."""


# Fields every metrics.jsonl line and summary.json must hold (the rest is optional).
STEP_FIELDS = ("step", "loss", "tokens_per_s", "dropped_frac", "expert_tokens")
SUMMARY_FIELDS = ("steps", "final_loss", "param_checksum", "median_tokens_per_s")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_null(value):
    return value is None or _number(value)


def _check_step(record, where):
    if not isinstance(record, dict):
        raise RunDirError("%s: not a JSON object" % where)
    for field in STEP_FIELDS:
        if field not in record:
            raise RunDirError('%s: missing field "%s"' % (where, field))
    if not isinstance(record["step"], int):
        raise RunDirError('%s: "step" is not an integer' % where)
    for field in ("loss", "tokens_per_s", "dropped_frac", "val_loss"):
        if not _number_or_null(record.get(field)):
            raise RunDirError('%s: "%s" is not a number' % (where, field))
    rows = record["expert_tokens"]
    if not isinstance(rows, list) or not all(isinstance(r, list) and all(map(_number, r)) for r in rows):
        raise RunDirError('%s: "expert_tokens" is not an array of integer arrays' % where)
    layers = record.get("switch_layer_dropped_frac", [])
    if not isinstance(layers, list) or not all(map(_number_or_null, layers)):
        raise RunDirError('%s: "switch_layer_dropped_frac" is not an array of numbers' % where)


def _read_steps(path):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise RunDirError("cannot read %s: %s" % (path, e.strerror))
    steps = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = "%s:%d" % (path, number)
        try:
            record = json.loads(line)
        except ValueError as e:
            raise RunDirError("%s: not JSON: %s" % (where, e))
        _check_step(record, where)
        steps.append(record)
    if not steps:
        raise RunDirError("%s holds no step" % path)
    return steps


def _read_summary(path):
    try:
        with open(path) as f:
            summary = json.load(f)
    except OSError as e:
        raise RunDirError("cannot read %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise RunDirError("%s: not JSON: %s" % (path, e))
    if not isinstance(summary, dict):
        raise RunDirError("%s: not a JSON object" % path)
    for field in SUMMARY_FIELDS:
        if field not in summary:
            raise RunDirError('%s: missing field "%s"' % (path, field))
    for field in ("final_loss", "median_tokens_per_s", "final_val_loss"):
        if not _number_or_null(summary.get(field)):
            raise RunDirError('%s: "%s" is not a number' % (path, field))
    _check_timeline(summary, path)
    return summary


def _check_timeline(summary, path):
    """The optional series sy-trainer and sy-local add for the timeline and the host load."""
    def fail(field, what):
        raise RunDirError('%s: "%s" is not %s' % (path, field, what))

    def integers(value):
        return isinstance(value, list) and all(isinstance(v, int) for v in value)

    if not integers(summary.get("checkpoint_steps", [])):
        fail("checkpoint_steps", "an array of steps")
    rollbacks = summary.get("rollbacks", [])
    if not isinstance(rollbacks, list) or not all(
            isinstance(r, dict) and integers([r.get("reached_step"), r.get("to_step")]) for r in rollbacks):
        fail("rollbacks", "an array of {reached_step, to_step}")
    series = summary.get("host_load_per_step", [])
    if not isinstance(series, list) or not all(
            isinstance(e, dict) and integers([e.get("step"), e.get("epoch")]) and isinstance(e.get("tokens"), dict)
            and all(_number(t) for t in e["tokens"].values()) for e in series):
        fail("host_load_per_step", "an array of {step, epoch, tokens {host: tokens}}")


class Run:
    """One run directory's records, with the series the pictures need."""

    def __init__(self, directory):
        if not os.path.isdir(directory):
            raise RunDirError("%s is not a directory (give the --workdir of a finished run)" % directory)
        self.directory = directory
        self.name = os.path.basename(os.path.normpath(os.path.abspath(directory)))
        self.steps = _read_steps(os.path.join(directory, "metrics.jsonl"))
        self.summary = _read_summary(os.path.join(directory, "summary.json"))

    def shape(self):
        """"2 hosts x 2 trainers", or "standalone"."""
        if "hosts" in self.summary and "trainers" in self.summary:
            return "%d hosts x %d trainers" % (self.summary["hosts"], self.summary["trainers"])
        return "standalone"

    def series(self, field):
        """(steps, values) of a per-step number, skipping steps without it."""
        pairs = [(s["step"], s[field]) for s in self.steps if s.get(field) is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def switch_layers(self):
        return max(len(s["expert_tokens"]) for s in self.steps)

    def switch_layer_dropped(self, layer):
        """(steps, dropped fraction of Switch layer `layer`); empty for runs written before the series existed."""
        pairs = [(s["step"], s["switch_layer_dropped_frac"][layer]) for s in self.steps
                 if layer < len(s.get("switch_layer_dropped_frac", [])) and s["switch_layer_dropped_frac"][layer] is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def expert_load(self, layer):
        """(steps, rows): rows[e][i] is the share of layer `layer`'s tokens routed to expert e at steps[i]."""
        experts = max(len(s["expert_tokens"][layer]) for s in self.steps if layer < len(s["expert_tokens"]))
        steps, rows = [], [[] for _ in range(experts)]
        for s in self.steps:
            if layer >= len(s["expert_tokens"]):
                continue
            counts = s["expert_tokens"][layer] + [0] * (experts - len(s["expert_tokens"][layer]))
            total = float(sum(counts)) or 1.0
            steps.append(s["step"])
            for e, c in enumerate(counts):
                rows[e].append(c / total)
        return steps, rows

    def host_load(self):
        """(steps, {host: tokens at each step}) as the coordinator counted it; empty without a coordinator."""
        series = self.summary.get("host_load_per_step", [])
        hosts = sorted({h for entry in series for h in entry["tokens"]})
        steps = [entry["step"] for entry in series]
        return steps, {h: [entry["tokens"].get(h, 0.0) for entry in series] for h in hosts}

    def events(self):
        """[(step, kind, label)] to mark on the timeline: checkpoints, rollbacks (recoveries
        and moves replay from a checkpoint) and placement changes (a new epoch)."""
        out = [(step, "checkpoint", "checkpoint") for step in self.summary.get("checkpoint_steps", [])]
        for r in self.summary.get("rollbacks", []):
            out.append((r["reached_step"], "rollback",
                        "rollback to step %d (recovery or move)" % r["to_step"]))
        previous = None
        for entry in self.summary.get("host_load_per_step", []):
            if previous is not None and entry["epoch"] != previous:
                out.append((entry["step"], "placement", "placement epoch %d" % entry["epoch"]))
            previous = entry["epoch"]
        return sorted(out)

    def headline(self):
        """The figures of the table at the top of the page, in display order."""
        s = self.summary
        dropped = [step["dropped_frac"] or 0.0 for step in self.steps]
        rows = [("run", self.name), ("shape", self.shape()), ("steps", str(s["steps"])),
                ("final loss", "%.4f" % s["final_loss"]),
                ("final val loss", "-" if s.get("final_val_loss") is None else "%.4f" % s["final_val_loss"]),
                ("tokens/s (median)", "%.0f" % s["median_tokens_per_s"]),
                ("dropped (mean)", "%.1f%%" % (100.0 * sum(dropped) / len(dropped))),
                ("param checksum", s["param_checksum"])]
        for field in ("recoveries", "checkpoints", "migrations", "replications", "replayed_steps"):
            if field in s:
                rows.append((field.replace("_", " "), str(s[field])))
        if s.get("recovery_seconds"):
            rows.append(("recovery time", ", ".join("%.2f s" % seconds for seconds in s["recovery_seconds"])))
        return rows

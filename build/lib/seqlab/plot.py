"""Learning curves of finished (or running) runs: ``seqlab plot RUN_DIR [RUN_DIR ...] [output=PATH]``.

A run folder is what `seqlab.train.run` writes: ``csv/metrics.csv`` (Lightning's CSVLogger), ``summary.json``
(the monitored metric, its best value and checkpoint) and, for command-line runs, ``.hydra/``. The figure has two
panels: train and validation loss, and the monitored metric with the best checkpoint's point starred.

The x axis is *epochs trained*: a metric logged at the end of Lightning's epoch 0 sits at 1.0, and a mid-epoch
validation (``trainer.val_check_interval=0.5``) at the fraction of its epoch's steps done, so runs that validate
at different rates still line up.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.cli import UsageError

Points = list[tuple[float, float]]  # (epochs trained, value)

USAGE = "usage: seqlab plot RUN_DIR [RUN_DIR ...] [output=PATH]"
HELP = f"""{USAGE}

Draws train / val loss and the monitored metric per epoch (the best checkpoint starred) to a PNG.
  RUN_DIR      a run folder (outputs/<date>/<time>), or a multirun folder (multirun/<date>/<time>): its jobs
  output=PATH  the PNG to write (default: RUN_DIR/curves.png; for several runs, curves.png in their common folder)
"""

# Metrics where lower is better; anything else monitored (acc, f1, precision, ...) is maximised.
MIN_SUFFIXES = ("loss", "ppl", "perplexity", "error", "err", "wer", "cer", "mse", "mae")


@dataclass
class RunCurves:
    """One run's curves, read from its folder; x values are epochs trained."""

    path: Path
    monitor: str | None
    mode: str
    best_score: float | None
    best_model_path: str | None
    overrides: list[str] = field(default_factory=list)
    train_loss: Points = field(default_factory=list)
    val_loss: Points = field(default_factory=list)
    monitored: Points = field(default_factory=list)


# ---------------------------------------------------------------- reading metrics.csv


def read_metrics(metrics_csv: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger file, each with only the cells that hold a value.

    Lightning writes one row per logging call with every column ever seen, so most cells are empty: a train-step
    row has ``train/loss_step``, a validation row ``val/*``, an LR row no epoch at all."""
    rows = []
    with open(metrics_csv, newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row = {}
            for key, text in raw.items():
                if key and text not in (None, ""):
                    try:
                        row[key] = float(text)
                    except ValueError:
                        continue
            rows.append(row)
    return rows


def epoch_bounds(rows: Sequence[dict[str, float]]) -> dict[int, tuple[float, float]]:
    """Epoch -> (first step, last step), from the train / val rows (test rows come after fit with an epoch of
    their own; LR rows have none). An epoch starts one step after the previous one ended."""
    last: dict[int, float] = {}
    first: dict[int, float] = {}
    for row in rows:
        if "epoch" not in row or "step" not in row or not any(k.startswith(("train/", "val/")) for k in row):
            continue
        epoch, step = int(row["epoch"]), row["step"]
        last[epoch] = max(step, last.get(epoch, step))
        first[epoch] = min(step, first.get(epoch, step))
    bounds = {}
    for epoch in sorted(last):
        start = last[epoch - 1] + 1 if epoch - 1 in last else (0.0 if epoch == 0 else first[epoch])
        bounds[epoch] = (start, last[epoch])
    return bounds


def epochs_trained(epoch: int, step: float, bounds: dict[int, tuple[float, float]]) -> float:
    """Where a row logged at (`epoch`, `step`) sits on the x axis: `epoch` plus the fraction of its steps done
    (1.0 at the epoch's last step, where end-of-epoch metrics are logged)."""
    start, end = bounds.get(epoch, (step, step))
    return epoch + (step - start + 1) / (end - start + 1)


def series(rows: Sequence[dict[str, float]], column: str) -> Points:
    """(epochs trained, value) for every row that logged `column`, in row order."""
    bounds = epoch_bounds(rows)
    points = []
    for row in rows:
        if column in row and "epoch" in row:
            epoch = int(row["epoch"])
            x = epochs_trained(epoch, row["step"], bounds) if "step" in row else epoch + 1.0
            points.append((x, row[column]))
    return points


def train_loss(rows: Sequence[dict[str, float]]) -> Points:
    """Train loss per epoch: ``train/loss_epoch`` (logged on step and epoch), else ``train/loss`` (epoch only),
    else the mean of ``train/loss_step`` over each epoch's logged steps."""
    for column in ("train/loss_epoch", "train/loss"):
        points = series(rows, column)
        if points:
            return points
    per_epoch: dict[int, list[float]] = {}
    for row in rows:
        if "train/loss_step" in row and "epoch" in row:
            per_epoch.setdefault(int(row["epoch"]), []).append(row["train/loss_step"])
    return [(epoch + 1.0, sum(v) / len(v)) for epoch, v in sorted(per_epoch.items())]


# ---------------------------------------------------------------- the best point


def infer_mode(monitor: str | None) -> str:
    """``min`` for losses and perplexities, ``max`` otherwise: what ``mode`` would be for this metric."""
    name = (monitor or "").rsplit("/", 1)[-1].lower()
    return "min" if name.endswith(MIN_SUFFIXES) else "max"


def best_index(values: Sequence[float], mode: str) -> int | None:
    """Index of the best value (NaN ignored); the first on a tie, as ModelCheckpoint keeps the first of equals."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}: choose min or max")
    best = None
    for i, v in enumerate(values):
        if math.isnan(v):
            continue
        if best is None or (v < values[best] if mode == "min" else v > values[best]):
            best = i
    return best


def best_point(points: Points, mode: str, best_score: float | None = None) -> tuple[float, float] | None:
    """The point the best checkpoint was saved at: the first whose value is the summary's ``best_score`` (exactly
    the checkpoint's choice), else the best by `mode` (a run without summary, e.g. one still training)."""
    if best_score is not None and not math.isnan(best_score):
        for x, v in points:
            if math.isclose(v, best_score, rel_tol=1e-6, abs_tol=1e-9):
                return x, v
    i = best_index([v for _, v in points], mode)
    return None if i is None else points[i]


# ---------------------------------------------------------------- run folders


def metrics_file(run_dir: Path) -> Path:
    path = Path(run_dir) / "csv" / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no csv/metrics.csv; is it a seqlab run folder (outputs/<date>/<time>)?"
        )
    return path


def read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def load_run(run_dir: Path) -> RunCurves:
    """Curves and selection of one run. ``summary.json`` names the monitored metric and the best value; a run that
    has none yet (still training, or crashed) falls back to ``.hydra/config.yaml``, then to no monitored metric."""
    run_dir = Path(run_dir)
    rows = read_metrics(metrics_file(run_dir))
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    config = read_yaml(run_dir / ".hydra" / "config.yaml") or {}
    overrides = read_yaml(run_dir / ".hydra" / "overrides.yaml") or []
    monitor = summary.get("monitor") or config.get("monitor")
    mode = summary.get("mode") or config.get("mode")
    mode = mode if mode in ("min", "max") else infer_mode(monitor)  # absent, or an unresolved interpolation
    best = summary.get("best_score")
    return RunCurves(
        path=run_dir,
        monitor=monitor,
        mode=mode,
        best_score=float(best) if best is not None else None,
        best_model_path=summary.get("best_model_path"),
        overrides=[str(o) for o in overrides],
        train_loss=train_loss(rows),
        val_loss=series(rows, "val/loss"),
        monitored=series(rows, monitor) if monitor else [],
    )


def run_labels(runs: Sequence[RunCurves]) -> list[str]:
    """A legend label per run: the overrides that tell it apart from the others (all of them for one run),
    else its folder relative to the runs' common folder."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if len(runs) > 1 else set()
    parent = common_parent([r.path for r in runs])
    labels = []
    for run in runs:
        own = [o for o in run.overrides if o not in common and not o.startswith("hydra.")]
        if own:
            labels.append(" ".join(own))
        else:
            # one run: outputs/<date>/<time> -> "<date>/<time>"
            rel = (
                os.path.relpath(run.path.resolve(), parent)
                if len(runs) > 1
                else "/".join(run.path.parts[-2:])
            )
            labels.append(rel if rel != "." else run.path.name)
    return labels


def common_parent(paths: Sequence[Path]) -> Path:
    resolved = [str(Path(p).resolve()) for p in paths]
    return Path(os.path.commonpath(resolved)) if len(resolved) > 1 else Path(resolved[0]).parent


def default_output(run_dirs: Sequence[Path]) -> Path:
    """``<run>/curves.png`` for one run; ``curves.png`` in the runs' common folder for several."""
    if len(run_dirs) == 1:
        return Path(run_dirs[0]) / "curves.png"
    return common_parent(run_dirs) / "curves.png"


def expand_runs(paths: Sequence[Path]) -> list[Path]:
    """Run folders as given, a multirun folder (``multirun/<date>/<time>``: no csv/ of its own, numbered job
    folders) replaced by its jobs in job order. Jobs without metrics (failed before logging) are skipped."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise UsageError(f"{path}: no such folder")
        if (path / "csv" / "metrics.csv").is_file():
            runs.append(path)
            continue
        jobs = sorted(
            (p for p in path.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
        )
        done = [j for j in jobs if (j / "csv" / "metrics.csv").is_file()]
        if not done:
            raise UsageError(
                f"{path}: no csv/metrics.csv; is it a seqlab run folder (outputs/<date>/<time>)?"
            )
        for job in jobs:
            if job not in done:
                print(f"seqlab plot: skipping {job}: no csv/metrics.csv", file=sys.stderr)
        runs.extend(done)
    return runs


# ---------------------------------------------------------------- drawing


def draw_curves(run_dirs: Sequence[Path], output: Path | None = None) -> Path:
    """Draw the learning curves of `run_dirs` (overlaid, one colour per run) to a PNG; return its path.

    Left: train loss (dashed) and val loss (solid). Right: each run's monitored metric, its best checkpoint's
    point starred. Uses matplotlib's Agg canvas directly, so it never needs a display or touches pyplot state."""
    if not run_dirs:
        raise ValueError("draw_curves: no run folder given")
    runs = [load_run(Path(d)) for d in run_dirs]
    if not any(r.train_loss or r.val_loss or r.monitored for r in runs):
        raise ValueError(
            f"{', '.join(str(d) for d in run_dirs)}: metrics.csv has no train/ or val/ metrics yet"
        )
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("seqlab plot needs matplotlib: pip install matplotlib") from None

    labels = run_labels(runs)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for run, label, color in zip(runs, labels, colors, strict=True):
        prefix = f"{label}: " if len(runs) > 1 else ""
        plot_points(ax_loss, run.train_loss, color=color, linestyle="--", label=f"{prefix}train loss")
        plot_points(ax_loss, run.val_loss, color=color, linestyle="-", label=f"{prefix}val loss")
        draw_monitored(ax_metric, run, prefix, color)
    style_loss_axis(ax_loss, runs)
    style_metric_axis(ax_metric, runs)
    if len(runs) == 1:
        fig.suptitle(labels[0], fontsize=10)

    path = Path(output) if output is not None else default_output([r.path for r in runs])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def plot_points(ax, points: Points, **kwargs) -> None:
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, **kwargs)


def draw_monitored(ax, run: RunCurves, prefix: str, color: str) -> None:
    """The monitored metric and, starred with a dotted vertical line, the point of the best checkpoint."""
    plot_points(ax, run.monitored, color=color, linestyle="-", label=f"{prefix}{run.monitor}")
    best = best_point(run.monitored, run.mode, run.best_score)
    if best is None:
        return
    x, value = best
    ckpt = f", {Path(run.best_model_path).name}" if run.best_model_path else ""
    ax.axvline(x, color=color, linestyle=":", linewidth=1)
    ax.plot(
        [x],
        [value],
        marker="*",
        markersize=14,
        color=color,
        markeredgecolor="black",
        linestyle="none",
        label=f"{prefix}best {value:.4g} after {x:.3g} epochs{ckpt}",
    )


def style_loss_axis(ax, runs: Sequence[RunCurves]) -> None:
    """Log scale when the loss spans more than two decades: a converged run would otherwise look flat at 0."""
    values = [v for r in runs for _, v in (*r.train_loss, *r.val_loss) if not math.isnan(v)]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.set(title="loss", xlabel="epochs trained", ylabel="loss")
    finish_axis(ax)


def style_metric_axis(ax, runs: Sequence[RunCurves]) -> None:
    monitors = sorted({f"{r.monitor} ({r.mode})" for r in runs if r.monitor})
    if not any(r.monitored for r in runs):
        ax.text(
            0.5, 0.5, "no monitored metric in metrics.csv", ha="center", va="center", transform=ax.transAxes
        )
    names = " / ".join(sorted({r.monitor for r in runs if r.monitor}))
    ax.set(title=", ".join(monitors) or "monitored metric", xlabel="epochs trained", ylabel=names)
    finish_axis(ax)


def finish_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs; mid-epoch points fall between ticks
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


# ---------------------------------------------------------------- command line


def split_args(argv: Sequence[str]) -> tuple[list[Path], dict[str, str]]:
    """Run folders and ``output=PATH``; an argument with ``=`` that is not an existing path is an option."""
    from seqlab.cli import parse_options

    dirs, options = [], []
    for arg in argv:
        (options if "=" in arg and not Path(arg).exists() else dirs).append(arg)
    return [Path(d) for d in dirs], parse_options(options, {"output": "the PNG to write"}, "plot")


def main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return
    dirs, options = split_args(argv)
    if not dirs:
        raise UsageError(f"no run folder given; {USAGE}")
    runs = expand_runs(dirs)
    try:
        path = draw_curves(runs, Path(options["output"]) if "output" in options else None)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print(path)

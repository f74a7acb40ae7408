"""Sweeps (``train -m ...``, ``train +hparams_search=...``): what a job returns to the sweeper, what a failed job
does, and the summary of a finished sweep.

- `objective`: the value a job returns, the best checkpoint's monitored value (``best_score`` of
  ``summary.json``, Lightning's ``best_model_score``). Optuna minimises or maximises it (``direction`` from
  ``mode`` in ``conf/hparams_search/*.yaml``).
- `TrialFailed`: a job that fails inside a sweep raises it instead of exiting, so Hydra records the job as
  failed and the sweep goes on: a grid sweep runs its other jobs and then exits 1 naming the failed one; an
  Optuna search records a FAIL trial in its study and samples the next (``max_failure_rate: 1.0``).
- `SweepSummary`: a Hydra callback (``conf/hydra/default.yaml``) that writes ``sweep_summary.csv`` in the sweep
  folder (after every job, so a sweep that stops on a failed job still has one) and, at the end, prints it as a
  table (best first, with the best job's checkpoint) and draws every job's curves into one ``curves.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

SUMMARY_CSV = "sweep_summary.csv"
SQLITE = "sqlite:///"


class TrialFailed(RuntimeError):
    """A sweep job failed; the message is the one line `seqlab train` prints (``seqlab: error: ...``)."""


def objective(summary: Mapping[str, Any]) -> float | None:
    """What a job returns to the sweeper: the best monitored value, or None when the run has none (no checkpoint,
    a NaN metric). None, not NaN: hydra-optuna-sweeper 1.3.0 records a None as a failed trial ("Return value must
    be float-castable"), but crashes the whole study on NaN (it tells Optuna a FAIL state *with* the value)."""
    value = summary.get("best_score")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass
class Job:
    """One job of a sweep, read from its folder."""

    path: Path
    overrides: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def value(self) -> float | None:
        return objective(self.summary) if self.summary is not None else None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if self.summary is None:
            return "no summary"  # still running, or killed
        return "ok" if self.value is not None else "no value"


def read_job(path: Path) -> Job:
    """A job folder: ``.hydra/overrides.yaml``, ``summary.json`` (a finished run), ``error.log`` (a failed one,
    whose last line is the exception)."""
    job = Job(path)
    overrides = path / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        job.overrides = [str(o) for o in OmegaConf.load(overrides)]
    if (path / "summary.json").is_file():
        job.summary = json.loads((path / "summary.json").read_text())
    if (path / "error.log").is_file():
        job.error = error_line(path)
    return job


def error_line(path: Path) -> str:
    """Why a job failed: the ``seqlab: error: ...`` line that ends its log (``<job name>.log``), else the last
    line of its ``error.log`` trace."""
    prefix = "seqlab: error: "
    for log_file in sorted(path.glob("*.log")):
        if log_file.name != "error.log":
            lines = [x for x in log_file.read_text(errors="replace").splitlines() if x.startswith(prefix)]
            if lines:
                return lines[-1][len(prefix) :]
    lines = [x for x in (path / "error.log").read_text(errors="replace").splitlines() if x.strip()]
    return lines[-1] if lines else "failed"


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder below `sweep_dir` (any ``hydra.sweep.subdir``), in job order, as absolute paths."""
    sweep_dir = sweep_dir.resolve()
    dirs = {p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")}
    dirs |= {p.parent for name in ("summary.json", "error.log") for p in sweep_dir.glob(f"**/{name}")}
    dirs.discard(sweep_dir)

    def order(path: Path) -> tuple:
        rel = path.relative_to(sweep_dir)
        return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in rel.parts)

    return [read_job(d) for d in sorted(dirs, key=order)]


def ranked(jobs: Sequence[Job], mode: str) -> list[Job]:
    """Best first by `mode` (max / min); jobs without a value after them, in job order."""
    with_value = [j for j in jobs if j.value is not None]
    with_value.sort(key=lambda j: j.value, reverse=mode == "max")  # type: ignore[arg-type,return-value]
    return with_value + [j for j in jobs if j.value is None]


def swept_keys(jobs: Sequence[Job]) -> list[str]:
    """The override keys whose values differ between jobs (what the sweep varied), in first-seen order."""
    per_job = [dict(o.partition("=")[::2] for o in j.overrides) for j in jobs]
    keys = list(dict.fromkeys(k for overrides in per_job for k in overrides))
    return [k for k in keys if len({overrides.get(k) for overrides in per_job}) > 1]


def summary_rows(jobs: Sequence[Job], mode: str) -> list[dict[str, Any]]:
    """The rows of ``sweep_summary.csv``: rank, job folder, status, value, one column per swept key, every override,
    the job's best checkpoint and its error."""
    keys = swept_keys(jobs)
    rows = []
    for rank, job in enumerate(ranked(jobs, mode), 1):
        overrides = dict(o.partition("=")[::2] for o in job.overrides)
        rows.append(
            {
                "rank": rank,
                "job": str(job.path),
                "status": job.status,
                "value": job.value,
                **{k: overrides.get(k) for k in keys},
                "overrides": " ".join(job.overrides),
                "best_model_path": (job.summary or {}).get("best_model_path"),
                "error": job.error,
            }
        )
    return rows


def write_summary(sweep_dir: Path, mode: str) -> tuple[Path, list[Job]] | None:
    """Write ``<sweep_dir>/sweep_summary.csv`` from the job folders (atomically: jobs may finish at once)."""
    jobs = find_jobs(sweep_dir)
    if not jobs:
        return None
    mode = next((j.summary["mode"] for j in jobs if j.summary and j.summary.get("mode")), mode)
    rows = summary_rows(jobs, mode)
    path = sweep_dir / SUMMARY_CSV
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path, ranked(jobs, mode)


def format_table(jobs: Sequence[Job], monitor: str, sweep_dir: Path) -> str:
    """The summary as a text table: rank, job, monitored value, the swept overrides, status."""
    keys = swept_keys(jobs)
    header = ["#", "job", monitor, *keys, "status"]
    body = []
    for rank, job in enumerate(jobs, 1):
        overrides = dict(o.partition("=")[::2] for o in job.overrides)
        value = f"{job.value:.4f}" if job.value is not None else "-"
        status = job.status if job.error is None else f"failed: {job.error}"
        rel = str(job.path.relative_to(sweep_dir.resolve()))
        body.append([str(rank), rel, value, *(short(overrides.get(k, "")) for k in keys), status])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def offset_seed_by_trials(config: DictConfig) -> None:
    """A continued study gets sampler seed + its number of trials: with the seed alone, the sampler would draw
    the same random start-up trials as the first invocation did (Optuna seeds it afresh in every process), so
    ``n_startup_trials`` trials would be repeated. The same commands in the same order still give the same trials."""
    import optuna

    sweeper = config.hydra.sweeper
    seed = OmegaConf.select(sweeper, "sampler.seed")
    if seed is None:
        return
    try:
        done = len(optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage).trials)
    except KeyError:  # a new study
        return
    if done:
        log.info(
            "continuing study %s (%d trials): sampler seed %d + %d", sweeper.study_name, done, seed, done
        )
        with open_dict(sweeper.sampler), read_write(sweeper.sampler):
            sweeper.sampler.seed = seed + done


def short(value: str) -> str:
    """An override value for the table: Optuna's floats (0.0007247031607588866) to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if "." in value and len(value) > 8 else value


class SweepSummary(Callback):
    """Hydra callback: ``sweep_summary.csv`` in the sweep folder after every job, and at the end of the sweep a
    table on stdout (best first, by the runs' ``mode``) with the best job's checkpoint and ``curves.png`` of every
    job (``seqlab plot <sweep folder>`` redraws it). Also creates the folder of an Optuna SQLite storage before
    the study opens it, and refuses a ``mode`` that is not min or max before any trial runs."""

    def __init__(self, plot: bool = True) -> None:
        self.plot = plot

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = OmegaConf.select(config, "hydra.sweeper") or {}
        direction = sweeper.get("direction")
        if isinstance(direction, str) and direction not in ("minimize", "maximize"):
            print(
                f"seqlab: error: mode={config.get('mode')!r}: the search's direction is {direction!r}; "
                "set mode=min or mode=max",
                file=sys.stderr,
            )
            sys.exit(2)
        storage = sweeper.get("storage")
        if isinstance(storage, str) and storage.startswith(SQLITE):  # sqlite does not create folders
            Path(storage[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
        if storage and "optuna" in str(sweeper.get("_target_", "")):
            offset_seed_by_trials(config)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN:
            return
        try:
            write_summary(Path(config.hydra.sweep.dir), str(config.get("mode") or "max"))
        except Exception as e:  # noqa: BLE001  (a summary must never fail a job)
            log.warning("could not write %s: %s", SUMMARY_CSV, e)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        written = write_summary(sweep_dir, str(config.get("mode") or "max"))
        if written is None:
            return
        path, jobs = written
        monitor = next((j.summary["monitor"] for j in jobs if j.summary and j.summary.get("monitor")), None)
        print(f"\nsweep summary ({len(jobs)} jobs, best first): {path}")
        print(format_table(jobs, str(monitor or config.get("monitor") or "value"), sweep_dir))
        best = jobs[0]
        if best.value is not None:
            print(
                f"best: {best.path} ({monitor} {best.value:.4f}) checkpoint {best.summary['best_model_path']}"
            )
        done = [j.path for j in jobs if j.summary is not None]
        if self.plot and done:
            try:
                from seqlab.plot import draw_curves

                print(f"curves of every job: {draw_curves(done, sweep_dir / 'curves.png')}")
            except Exception as e:  # noqa: BLE001  (a plot is a convenience)
                log.warning("could not draw the sweep's curves: %s", e)
        print(f"overlay the curves: python -m seqlab plot {sweep_dir}")

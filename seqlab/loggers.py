"""CSVLogger: Lightning's, except that a resumed run continues its metrics.csv instead of deleting it."""

from __future__ import annotations

import csv
import logging
import os

import torch
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

log = logging.getLogger(__name__)


class CSVLogger(LightningCSVLogger):
    """``<save_dir>/<name>/<version>/metrics.csv``, written after every logging call, so that a killed run
    leaves its history on disk up to its last logged step.

    ``resume_from`` (the checkpoint being resumed, ``${ckpt_path}``): the existing metrics.csv is kept, less
    its rows from the checkpoint's global step on: the resumed run logs those steps again. (A checkpoint
    saved at validation end is written before Lightning logs that epoch's ``train/*_epoch`` row, at the
    step before; the resumed run does not log that row again, so it is kept.) Without ``resume_from``
    an existing metrics.csv is replaced, as Lightning does: a new run in a used folder starts a new history.
    """

    def __init__(self, *args, resume_from: str | None = None, flush_logs_every_n_steps: int = 1, **kwargs):
        super().__init__(*args, flush_logs_every_n_steps=flush_logs_every_n_steps, **kwargs)
        self.resume_from = resume_from

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            keep_before = checkpoint_step(self.resume_from) if self.resume_from else None
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingWriter(self.log_dir, keep_before)
        return self._experiment

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        self.save()  # the history on disk reaches at least as far as the checkpoint

    def finalize(self, status: str) -> None:
        """A run that failed before logging any metric leaves no csv/ behind (its hparams.yaml only)."""
        super().finalize(status)
        if (
            status != "failed"
            or self._experiment is None
            or os.path.exists(self.experiment.metrics_file_path)
        ):
            return
        hparams = os.path.join(self.log_dir, "hparams.yaml")
        if os.path.isfile(hparams):
            os.remove(hparams)
        if os.path.isdir(self.log_dir) and not os.listdir(self.log_dir):
            os.rmdir(self.log_dir)


def checkpoint_step(path: str) -> int:
    """The global step a checkpoint was saved at (memory-mapped: the weights are not read)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return int(ckpt["global_step"])


class ContinuingWriter(ExperimentWriter):
    """Lightning's writer, except at start: with `keep_before` an existing metrics.csv keeps its rows whose step
    is below it (and its columns); without, the file is removed (Lightning's behaviour)."""

    def __init__(self, log_dir: str, keep_before: int | None):
        self.keep_before = keep_before
        self._header_read = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        if self.keep_before is None:
            log.warning("%s exists: a new run replaces it", self.metrics_file_path)
            self._fs.rm_file(self.metrics_file_path)
            return
        kept, dropped = trim_rows(self.metrics_file_path, self.keep_before)
        self.metrics_keys = kept
        log.info(
            "continuing %s (%d rows from step %d on dropped: they are logged again)",
            self.metrics_file_path,
            dropped,
            self.keep_before,
        )

    def _record_new_keys(self) -> set[str]:
        # Under ddp_spawn each stage (fit, then test) runs in new worker processes with a copy of the main
        # process's writer, which never saw the columns an earlier stage wrote: take them from the file first,
        # or the rewrite for the new columns drops (and fails on) the earlier rows.
        if not self._header_read and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys.extend(k for k in header if k not in self.metrics_keys)
        self._header_read = True
        return super()._record_new_keys()


def trim_rows(path: str | os.PathLike, keep_before: int) -> tuple[list[str], int]:
    """Rewrite the CSV at `path` without its rows whose ``step`` is >= `keep_before`; return its columns and how
    many rows went. Rows without a step are kept."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < keep_before]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(kept)
    return columns, len(rows) - len(kept)

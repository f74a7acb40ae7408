"""StopOnNonFiniteLoss: a NaN or infinite training loss ends the run, with the step and what to change.

Without it a diverged run trains every remaining epoch on NaN weights, keeps a NaN checkpoint and reports test
metrics as if nothing happened. Reading the loss on the host is free on a CPU, so there it is read after every
step and the run stops at the step that diverged. On a GPU a read makes the host wait for the device at every step
(the next step's kernels are not queued meanwhile), so the check stays on the device and is read at each logging
step (``trainer.log_every_n_steps``, when Lightning reads the logged values anyway), before validation and before
any checkpoint is written: the run stops within one logging interval, and no checkpoint of NaN weights is kept
(except a weights-only one, ``save_weights_only=true``, saved mid-epoch: Lightning calls no callback for those).
Under DDP the ranks agree at every read, so all of them stop together.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class DivergenceError(ValueError):
    """The training loss stopped being a finite number."""


class StopOnNonFiniteLoss(Callback):
    """Args:
    every_step: read the loss after every step (stop at the exact step). Default (None): on a CPU; on other
        devices at logging steps, before validation and before checkpoints (see the module's doc).
    """

    def __init__(self, every_step: bool | None = None):
        self.every_step = every_step
        # on the device: whether a loss since the last read was not finite
        self._nonfinite: torch.Tensor | None = None
        self._read_at = 0  # the global step of the last read
        self._diverged: str | None = None  # what was raised: every later read (a checkpoint) raises it again

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._nonfinite, self._read_at, self._diverged = None, trainer.global_step, None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        every_step = self.every_step if self.every_step is not None else loss.device.type == "cpu"
        if every_step:
            value = float(loss)
            if not math.isfinite(value):
                where = f"at step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx})"
                self._stop(trainer, f"is {value} {where}")
            self._read_at = trainer.global_step
            return
        nonfinite = ~torch.isfinite(loss)
        self._nonfinite = nonfinite if self._nonfinite is None else self._nonfinite | nonfinite
        every, step = trainer.log_every_n_steps, trainer.global_step
        # (step != the last read: once per optimizer step under gradient accumulation)
        if every and step % every == 0 and step != self._read_at:
            self._read(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._read(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._read(trainer)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._read(trainer)  # (raising here leaves the checkpoint unwritten)

    def _read(self, trainer: Trainer) -> None:
        if self._diverged is not None:
            raise DivergenceError(self._diverged)
        nonfinite, self._nonfinite = self._nonfinite, None
        since, self._read_at = self._read_at, trainer.global_step
        local = nonfinite is not None and bool(nonfinite)
        # Every rank reads at the same points; one rank's NaN stops them all (no rank waits in a collective).
        if trainer.strategy.reduce_boolean_decision(local, all=False):
            where = f"after step {since} and by step {trainer.global_step} (epoch {trainer.current_epoch})"
            self._stop(trainer, f"became NaN or infinite {where}")

    def _stop(self, trainer: Trainer, what: str) -> None:
        lr = f", now {trainer.optimizers[0].param_groups[0]['lr']:g}" if trainer.optimizers else ""
        clip = "" if trainer.gradient_clip_val else " or clip gradients (trainer.gradient_clip_val=1.0)"
        self._diverged = (
            f"the training loss {what}: the run diverged and was stopped, keeping only checkpoints from before. "
            f"Lower the learning rate (model.optimizer.lr{lr}){clip}"
        )
        raise DivergenceError(self._diverged)

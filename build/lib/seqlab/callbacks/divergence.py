"""StopOnNonFiniteLoss: a NaN or infinite training loss ends the run at once, with the step and what to change.

Without it a diverged run trains every remaining epoch on NaN weights, keeps a NaN checkpoint and reports test
metrics as if nothing happened. The check runs after each training step (one host sync of a scalar), before
any checkpoint of the poisoned weights can be written.
"""

from __future__ import annotations

import math
from typing import Any

from lightning import Callback, LightningModule, Trainer


class DivergenceError(ValueError):
    """The training loss stopped being a finite number."""


class StopOnNonFiniteLoss(Callback):
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach())
        if math.isfinite(value):
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        clip = trainer.gradient_clip_val
        raise DivergenceError(
            f"the training loss is {value} at step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{batch_idx}): the run diverged and was stopped, keeping only checkpoints from before. Lower the learning "
            f"rate (model.optimizer.lr, now {lr:g})"
            + ("" if clip else " or clip gradients (trainer.gradient_clip_val=1.0)")
        )

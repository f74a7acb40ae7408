"""Turning the optimizer / scheduler partials from config into what `configure_optimizers` returns."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from lightning import LightningModule


def build_optimizers(
    module: LightningModule,
    optimizer: Callable[..., Any],
    scheduler: Callable[..., Any] | None = None,
    interval: str = "epoch",
    monitor: str | None = "val/loss",
) -> Any:
    """`optimizer(params=...)`, then `scheduler(optimizer=...)` when given.

    A scheduler whose signature has ``num_training_steps`` (the HF warmup schedules) gets the total from
    ``trainer.estimated_stepping_batches``. `monitor` is used by schedulers that step on a metric (ReduceLROnPlateau).
    """
    opt = optimizer(params=[p for p in module.parameters() if p.requires_grad])
    if scheduler is None:
        return opt
    extra = {}
    target = getattr(scheduler, "func", scheduler)
    if "num_training_steps" in inspect.signature(target).parameters:
        extra["num_training_steps"] = int(module.trainer.estimated_stepping_batches)
    sched = scheduler(optimizer=opt, **extra)
    if interval not in ("epoch", "step"):
        raise ValueError(f"model.scheduler_interval={interval!r}: choose 'epoch' or 'step'")
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval, "monitor": monitor}}

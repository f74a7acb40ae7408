"""StageLoss: each stage's loss, accumulated on the device and logged the way the tasks report it.

Lightning's ``self.log(loss, on_step=True, on_epoch=True)`` at every step costs about a millisecond of Python
(its result collection, forked names, progress-bar and logger bookkeeping): 3-10% of a small model's step on a
CPU. The loss only needs to be read when something shows or writes it, so it is kept as running sums on the
device (no host sync) and logged

- ``train/loss_step``: the mean since the previous logging step (or the epoch's start), at every ``trainer.log_every_n_steps``
  optimizer steps (when Lightning writes to the loggers; the progress bar shows it), as HF's Trainer logs
  ``loss`` every ``logging_steps``;
- ``train/loss_epoch`` (loggers, progress bar) and ``train/loss`` (callbacks: what ``monitor`` may name): the
  epoch's mean;
- ``val/loss`` and ``test/loss``: the epoch's mean.

Epoch means are weighted by what each task's loss averages over (examples, words or tokens) and taken over all
processes (torchmetrics syncs them under DDP), so they equal the loss of the whole epoch at once.
"""

from __future__ import annotations

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import Metric

STAGES = ("train", "val", "test")


class WeightedMean(Metric):
    """sum(value * weight) / sum(weight), the sums added up across DDP ranks. (torchmetrics' MeanMetric drops the
    weights when its NaN check is disabled, torchmetrics 1.9, and the check costs a host sync per update.)
    float32 sums: Apple's MPS has no float64."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: Tensor, weight: Tensor | int) -> None:
        self.total.add_(value.float() * weight)  # in place: no module attribute set per step
        self.weight.add_(weight)

    def compute(self) -> Tensor:
        return self.total / self.weight


class StageLoss(nn.Module):
    def __init__(self):
        super().__init__()
        # (keys: "train" would clash with nn.Module.train)
        self.epoch = nn.ModuleDict({f"{s}_loss": WeightedMean() for s in STAGES})
        # The training batches since the last logged step: this process's own, as a step value is (no sync).
        self.window = WeightedMean(sync_on_compute=False)
        self._logged_at: int | None = None  # the optimizer step at which `window` was last logged
        self._epoch: int | None = None  # the epoch `window` belongs to

    def update(self, module: LightningModule, stage: str, loss: Tensor, weight: Tensor | int) -> None:
        """Add one batch's mean `loss` with its `weight` (how many examples / words / tokens it averages)."""
        loss = loss.detach()
        self.epoch[f"{stage}_loss"].update(loss, weight)
        if stage != "train":
            return
        trainer = module._trainer
        step, epoch = (module.global_step, module.current_epoch) if trainer is not None else (0, 0)
        # A new window after each logged step (the batches accumulated into that one optimizer step share it) and
        # at each epoch's start, so that a run resumed from an epoch's last.ckpt logs what an uninterrupted one does.
        if (self._logged_at is not None and step != self._logged_at) or epoch != self._epoch:
            self.window.reset()
            self._logged_at, self._epoch = None, epoch
        self.window.update(loss, weight)
        every = trainer.log_every_n_steps if trainer is not None else 0
        if trainer is not None and (not every or (step + 1) % every == 0):
            module.log("train/loss_step", self.window.compute(), on_step=True, on_epoch=False, prog_bar=True)
            self._logged_at = step

    def log_epoch(self, module: LightningModule, stage: str) -> None:
        """Log the epoch's mean (synced across processes) and start the next epoch's."""
        metric = self.epoch[f"{stage}_loss"]
        if metric.update_count == 0:  # no batch in this stage (e.g. limit_val_batches=0)
            return
        value = metric.compute()  # the same on every rank
        metric.reset()
        # sync_dist=True: Lightning would warn that an unsynced epoch value is logged under DDP (the mean of equal
        # values, one all-reduce an epoch)
        if stage == "train":
            module.log("train/loss_epoch", value, prog_bar=True, sync_dist=True)
            module.log("train/loss", value, logger=False, sync_dist=True)
        else:
            module.log(f"{stage}/loss", value, prog_bar=True, sync_dist=True)

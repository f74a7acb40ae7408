"""PaddingShare: how much of each epoch's batches is padding, logged as ``train/padding_share`` and
``val/padding_share`` (padded positions / all positions, from the attention masks).

Every padded position costs as much compute as a real one, so the share says what batching costs: random
batches of mixed lengths (``data.bucketing=false``) pad a lot, bucketed ones (similar lengths per batch, the
default) pad little. The counts stay on the device during the epoch; the share is read once, at its end.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class PaddingShare(Callback):
    def __init__(self):
        self.real: dict[str, torch.Tensor] = {}  # stage -> real positions seen this epoch (a device scalar)
        self.total: dict[str, int] = {}  # stage -> all positions seen this epoch (known on the host: B * T)

    def _reset(self, stage: str) -> None:
        self.real.pop(stage, None)
        self.total.pop(stage, None)

    def _count(self, stage: str, batch: Any) -> None:
        mask = batch.get("attention_mask") if isinstance(batch, dict) else None
        if mask is None:
            return
        self.real[stage] = self.real.get(stage, 0) + mask.sum()  # int64; no host sync: added up on the device
        self.total[stage] = self.total.get(stage, 0) + mask.numel()

    def _log(self, stage: str, trainer: Trainer, pl_module: LightningModule) -> None:
        real, total = self.real.get(stage), self.total.get(stage, 0)
        self._reset(stage)
        if real is None or trainer.sanity_checking:
            return
        # Summed over processes before dividing: the share of all ranks' positions, not a mean of ratios.
        counts = torch.stack(
            [real.to(pl_module.device, torch.long), torch.tensor(total, device=pl_module.device)]
        )
        real, total = trainer.strategy.reduce(counts, reduce_op="sum")
        pl_module.log(f"{stage}/padding_share", 1 - real.item() / total.item(), on_step=False, on_epoch=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._count("train", batch)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._count("val", batch)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._reset("train")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset("val")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._log("train", trainer, pl_module)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._log("val", trainer, pl_module)

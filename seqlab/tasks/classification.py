"""TextClassificationTask: encoder -> pooling -> dropout -> linear, trained with cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqlab.models.pooling import Pooler
from seqlab.tasks.optim import build_optimizers


class TextClassificationTask(LightningModule):
    """Args:
    encoder: any module following `seqlab.models.encoders.base` (RNN, CNN, HF).
    num_labels: from the data (``???`` in config). pooling: last | mean | max | first. dropout: before the head.
    optimizer / scheduler: partials from config, finished in `configure_optimizers`.
    scheduler_interval / scheduler_monitor: how Lightning steps the scheduler.
    """

    # Logged as train/<name>, val/<name> and test/<name>: what `monitor` may name.
    metric_names = ("loss", "acc", "f1")

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        optimizer: Callable[..., Any],
        scheduler: Callable[..., Any] | None = None,
        pooling: str = "max",
        dropout: float = 0.0,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = "val/loss",
    ):
        super().__init__()
        # Only plain values go into hparams; seqlab.train then stores the whole model config (seqlab.checkpoint).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.pooler = Pooler(pooling, num_directions=encoder.num_directions)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_labels)
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_labels, average="micro"),
                "f1": MulticlassF1Score(num_labels, average="macro"),
            }
        )
        # One metric object per stage: a shared one would mix train and validation counts.
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        return self.head(self.dropout(self.pooler(hidden, attention_mask)))  # (B, C)

    def _shared_step(self, batch: dict[str, Tensor], stage: str, metrics: MetricCollection) -> Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits, batch["labels"])
        metrics(logits.argmax(-1), batch["labels"])
        bs = batch["labels"].size(0)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=bs,
                 sync_dist=stage != "train")  # every DDP rank then checkpoints / schedules on the same value
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=bs)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train", self.train_metrics)

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test", self.test_metrics)

    def predict_step(self, batch, batch_idx):
        """Class probabilities (B, C); label names are in the DataModule's `label_vocab`."""
        return self(batch["input_ids"], batch["attention_mask"]).softmax(-1)

    def configure_optimizers(self):
        return build_optimizers(
            self, self.optimizer, self.scheduler, self.hparams.scheduler_interval, self.hparams.scheduler_monitor
        )

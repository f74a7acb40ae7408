"""TextClassificationTask: encoder -> pooling -> dropout -> linear, trained with cross-entropy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn

from seqlab.checkpoint import SelfRebuilding
from seqlab.data.collate import LENGTHS
from seqlab.metrics.classification import ClassificationScores
from seqlab.models.pooling import Pooler
from seqlab.tasks.optim import build_optimizers
from seqlab.tasks.plain_attributes import PlainAttributes
from seqlab.tasks.stage_loss import StageLoss


class TextClassificationTask(SelfRebuilding, PlainAttributes, LightningModule):
    """Args:
    encoder: any `seqlab.models.encoders.base.Encoder` (RNN, CNN, HF); it gets the batch entries it declares in
        ``extra_inputs`` (``token_type_ids`` of text pairs for HF encoders).
    num_labels, labels: from the data (``???`` in config): the number of classes and their names.
    pooling: last | mean | max | first | cls | pooler | attention.
    attention_heads: the number of learned queries of ``pooling=attention`` (the encoder's ``output_dim`` must
        divide by it); ignored by the other modes.
    dropout: before the head.
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
        labels: Sequence[str] | None = None,
        scheduler: Callable[..., Any] | None = None,
        pooling: str = "max",
        dropout: float = 0.0,
        attention_heads: int = 1,
        scheduler_interval: str | None = None,
        scheduler_monitor: str | None = "val/loss",
    ):
        super().__init__()
        if labels is not None and len(labels) != num_labels:
            raise ValueError(f"model.labels has {len(labels)} names but model.num_labels={num_labels}")
        # Only plain values go into hparams; seqlab.train then stores the whole model config (seqlab.checkpoint).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.pooler = Pooler(
            pooling, encoder.num_directions, encoder.has_pooler_output, encoder.output_dim, attention_heads
        )
        # pooling=attention: the weights (B, heads, T) of the latest forward pass, detached; else None.
        self.last_attention: Tensor | None = None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_labels)
        # One metric object per stage: a shared one would mix train and validation counts.
        self.train_metrics = ClassificationScores(num_labels)
        self.val_metrics = ClassificationScores(num_labels)
        self.test_metrics = ClassificationScores(num_labels)
        self.losses = StageLoss()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, lengths: Tensor | None = None, **extra_inputs: Tensor
    ) -> Tensor:
        """Logits (B, C). `lengths` (B,): the collator's real-token counts on the CPU, if known (the encoder
        contract); `extra_inputs`: what the encoder reads besides ids and mask (`Encoder.extra_inputs`)."""
        # return_state=False: nothing here carries the encoder's final state
        out = self.encoder(input_ids, attention_mask, lengths=lengths, return_state=False, **extra_inputs)
        pooled, weights = self.pooler.pool(out.last_hidden_state, attention_mask, out.pooler_output, lengths)
        self.last_attention = None if weights is None else weights.detach()  # (B, heads, T)
        return self.head(self.dropout(pooled))  # (B, C)

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        extra = self.encoder.extra_kwargs(batch)
        return self(batch["input_ids"], batch["attention_mask"], batch.get(LENGTHS), **extra)

    def _shared_step(self, batch: dict[str, Tensor], stage: str, metrics: ClassificationScores) -> Tensor:
        logits = self.logits(batch)
        loss = F.cross_entropy(logits, batch["labels"])
        metrics.update(logits.argmax(-1), batch["labels"])  # epoch values only: no per-batch compute
        self.losses.update(self, stage, loss, batch["labels"].size(0))
        return loss

    def _log_epoch(self, stage: str, metrics: ClassificationScores) -> None:
        # Computed (synced across processes by torchmetrics), logged and reset once an epoch: logging the metric
        # objects at every step (`self.log_dict(metrics)`) costs ~2 ms a step, 5% of an LSTM step on a CPU.
        # Every DDP rank then checkpoints / schedules on the same values.
        self.losses.log_epoch(self, stage)
        if metrics.update_count:
            scores = metrics.compute()
            self.log_dict({f"{stage}/{k}": v for k, v in scores.items()}, prog_bar=stage != "train")
        metrics.reset()

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train", self.train_metrics)

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test", self.test_metrics)

    def on_train_epoch_end(self):
        self._log_epoch("train", self.train_metrics)

    def on_validation_epoch_end(self):
        self._log_epoch("val", self.val_metrics)

    def on_test_epoch_end(self):
        self._log_epoch("test", self.test_metrics)

    def predict_step(self, batch, batch_idx):
        """Class probabilities (B, C); label names are in the DataModule's `label_vocab`. With
        ``pooling=attention``, `last_attention` then holds the batch's pooling weights (B, heads, T)."""
        return self.logits(batch).softmax(-1)

    def predict_with_attention(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Class probabilities (B, C) and the pooling weights (B, heads, T) (None unless pooling=attention)."""
        probs = self.predict_step(batch, 0)
        return probs, self.last_attention

    def configure_optimizers(self):
        return build_optimizers(
            self,
            self.optimizer,
            self.scheduler,
            self.hparams.scheduler_interval,
            self.hparams.scheduler_monitor,
        )

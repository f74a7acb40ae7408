"""SequenceTaggingTask: encoder -> dropout -> linear tag scores per token, then softmax or a CRF (NER, POS, chunking)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn

from seqlab.data.collate import IGNORE_INDEX
from seqlab.metrics.spans import SpanF1
from seqlab.models.crf import CRF
from seqlab.tasks.optim import build_optimizers


class SequenceTaggingTask(LightningModule):
    """Args:
    encoder: any module following `seqlab.models.encoders.base`. One that reads characters
        (`RNNEncoder` with a ``char_encoder``) gets the batch's ``char_ids`` too.
    num_labels, labels, tag_scheme: from the data (``???`` in config): the tag names of the ids, and the scheme
        they are in (IOB2 for converted IOB1 data; null for tags without spans such as POS).
    optimizer / scheduler: partials from config, finished in `configure_optimizers`.
    use_crf: decode with a linear-chain CRF (trained on its NLL) instead of an independent softmax per token.
    dropout: on the encoder output, before the tag scores.
    scheduler_interval / scheduler_monitor: how Lightning steps the scheduler.
    Metrics per stage: ``{stage}/loss``, entity ``f1`` / ``precision`` / ``recall`` (exact spans, seqeval strict
    mode) and ``token_acc`` over real tokens.
    """

    # Logged as train/<name>, val/<name> and test/<name>: what `monitor` may name.
    metric_names = ("loss", "f1", "precision", "recall", "token_acc")

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        labels: Sequence[str],
        optimizer: Callable[..., Any],
        scheduler: Callable[..., Any] | None = None,
        tag_scheme: str | None = "IOB2",
        use_crf: bool = False,
        dropout: float = 0.0,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = "val/loss",
    ):
        super().__init__()
        if len(labels) != num_labels:
            raise ValueError(f"model.labels has {len(labels)} tags but model.num_labels={num_labels}")
        # Only plain values go into hparams; seqlab.train then stores the whole model config (seqlab.checkpoint).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.reads_chars = getattr(encoder, "char_encoder", None) is not None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_labels)
        self.crf = CRF(num_labels) if use_crf else None
        # One metric object per stage: a shared one would mix train and validation counts.
        self.train_metrics = SpanF1(labels, tag_scheme)
        self.val_metrics = SpanF1(labels, tag_scheme)
        self.test_metrics = SpanF1(labels, tag_scheme)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, char_ids: Tensor | None = None) -> Tensor:
        """Tag scores (B, T, C): softmax logits, or the CRF's emissions."""
        if self.reads_chars:
            hidden = self.encoder(input_ids, attention_mask, char_ids=char_ids).last_hidden_state  # (B, T, H)
        elif char_ids is not None:
            raise ValueError(
                f"the batch has char_ids (data.use_chars=true) but model.encoder ({type(self.encoder).__name__}) "
                "reads no characters: add +model/encoder/char_encoder=cnn, or set data.use_chars=false"
            )
        else:
            hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, H)
        return self.head(self.dropout(hidden))  # (B, T, C)

    def loss(self, scores: Tensor, labels: Tensor, attention_mask: Tensor) -> Tensor:
        """Cross-entropy over tokens whose label is not -100, or the CRF's mean NLL over real tokens."""
        if self.crf is None:
            return F.cross_entropy(scores.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        mask = attention_mask.bool()  # (B, T)
        if bool((labels[mask] == IGNORE_INDEX).any()):
            raise ValueError("the CRF needs a label at every real token, but some are -100 (subword pieces?)")
        return self.crf(scores, labels, mask)

    def decode(self, scores: Tensor, attention_mask: Tensor) -> Tensor:
        """Tag ids (B, T): Viterbi with the CRF (-100 at padding), else the argmax (any tag at padding)."""
        if self.crf is None:
            return scores.argmax(-1)
        return self.crf.decode(scores, attention_mask.bool())

    def _shared_step(self, batch: dict[str, Tensor], stage: str, metrics: SpanF1) -> Tensor:
        scores = self(batch["input_ids"], batch["attention_mask"], batch.get("char_ids"))
        loss = self.loss(scores, batch["labels"], batch["attention_mask"])
        metrics.update(self.decode(scores.detach(), batch["attention_mask"]), batch["labels"])
        # The softmax loss is a mean over tokens, the CRF's a mean over sentences: weight the epoch mean alike.
        weight = batch["labels"].size(0) if self.crf is not None else int((batch["labels"] != IGNORE_INDEX).sum())
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True,
                 batch_size=weight, sync_dist=stage != "train")
        return loss

    def _log_epoch(self, stage: str, metrics: SpanF1) -> None:
        # SpanF1.compute returns a dict, which `self.log(metric_object)` cannot take: compute (synced across
        # processes by torchmetrics), log, reset.
        values = metrics.compute()
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, prog_bar=stage != "train")
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
        """Tag ids (B, T), -100 at padded positions; names are ``self.hparams.labels`` (also the DataModule's)."""
        scores = self(batch["input_ids"], batch["attention_mask"], batch.get("char_ids"))
        return self.decode(scores, batch["attention_mask"]).masked_fill(~batch["attention_mask"].bool(), IGNORE_INDEX)

    def configure_optimizers(self):
        return build_optimizers(
            self, self.optimizer, self.scheduler, self.hparams.scheduler_interval, self.hparams.scheduler_monitor
        )

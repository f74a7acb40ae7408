"""SequenceTaggingTask: encoder -> dropout -> linear tag scores per token, then softmax or a CRF (NER, POS, chunking).

Training, decoding and scoring happen per *word*: the scores of each word's first token (``word_starts``) are
gathered into a (B, W, C) tensor. With a word tokenizer every token is a word and this is the identity; with a
sub-word tokenizer the other pieces are never scored, so entity F1 is comparable with word-level taggers (HF's
``label_all_tokens`` scores pieces and inflates F1, transformers#14043), and a CRF runs over words, not pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn

from seqlab.checkpoint import SelfRebuilding
from seqlab.data.collate import LENGTHS
from seqlab.labels import IGNORE_INDEX
from seqlab.metrics.spans import SpanF1
from seqlab.models.crf import CRF
from seqlab.tasks.optim import build_optimizers
from seqlab.tasks.plain_attributes import PlainAttributes
from seqlab.tasks.stage_loss import StageLoss


def gather_words(x: Tensor, starts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The rows of `x` (B, T, ...) at the positions where `starts` (B, T) is true, moved to the left in order:
    (B, W, ...) with W the most words in a row, the word mask (B, W) and the words of each row (B,), which the
    CRF would otherwise sum from the mask again."""
    counts = starts.sum(1)  # (B,)
    W = int(counts.max()) if counts.numel() else 0
    # A stable sort of "not a start" puts each row's start positions first, in their original order.
    pos = torch.argsort((~starts).to(torch.int8), dim=1, stable=True)[:, :W]  # (B, W)
    index = pos.reshape(*pos.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index), torch.arange(W, device=x.device)[None, :] < counts[:, None], counts


class SequenceTaggingTask(SelfRebuilding, PlainAttributes, LightningModule):
    """Args:
    encoder: any `seqlab.models.encoders.base.Encoder`; it gets the batch entries it declares in ``extra_inputs``
        (``char_ids`` for an `RNNEncoder` with a ``char_encoder``, ``token_type_ids`` for HF encoders).
    num_labels, labels, tag_scheme: from the data (``???`` in config): how many tags the model predicts, the tag
        names of the ids, and the scheme they are in (IOB2 for converted IOB1 data; null for tags without spans such
        as POS). Names past ``num_labels`` are gold-only: entity types of validation / test that train never had;
        they are never predicted, not trained on, and their gold spans count as misses.
    optimizer / scheduler: partials from config, finished in `configure_optimizers`.
    use_crf: decode with a linear-chain CRF (trained on its NLL) instead of an independent softmax per token.
    dropout: on the encoder output, before the tag scores.
    scheduler_interval / scheduler_monitor: how Lightning steps the scheduler.
    train_metrics: also score the training batches (``train/f1`` ...). Off by default: it decodes every
        training batch (Viterbi with a CRF, then span extraction) only to log a number its fit inflates.
    Metrics per stage: ``{stage}/loss``, entity ``f1`` / ``precision`` / ``recall`` (exact spans, seqeval strict
    mode) and ``token_acc`` over real tokens; training logs only ``train/loss`` unless ``train_metrics``.
    """

    # Logged as val/<name> and test/<name>, and as train/<name> with train_metrics (else train/loss only):
    # what `monitor` may name, with `train_metric_names`.
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
        scheduler_interval: str | None = None,
        scheduler_monitor: str | None = "val/loss",
        train_metrics: bool = False,
    ):
        super().__init__()
        if len(labels) < num_labels:
            raise ValueError(f"model.labels has {len(labels)} tags but model.num_labels={num_labels}")
        # Only plain values go into hparams; seqlab.train then stores the whole model config (seqlab.checkpoint).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.output_dim, num_labels)
        self.crf = CRF(num_labels) if use_crf else None
        # One metric object per stage: a shared one would mix train and validation counts. None: not computed.
        self.train_metrics = SpanF1(labels, tag_scheme) if train_metrics else None
        self.train_metric_names = self.metric_names if train_metrics else ("loss",)
        self.val_metrics = SpanF1(labels, tag_scheme)
        self.test_metrics = SpanF1(labels, tag_scheme)
        self.losses = StageLoss()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, lengths: Tensor | None = None, **extra_inputs: Tensor
    ) -> Tensor:
        """Tag scores of every token (B, T, C): softmax logits, or the CRF's emissions. `lengths` (B,): the
        collator's real-token counts on the CPU, if known (the encoder contract); `extra_inputs`: what the
        encoder reads besides ids and mask (`Encoder.extra_inputs`)."""
        # return_state=False: nothing here carries the encoder's final state
        out = self.encoder(input_ids, attention_mask, lengths=lengths, return_state=False, **extra_inputs)
        hidden = out.last_hidden_state
        # hidden: (B, T, H)
        return self.head(self.dropout(hidden))  # (B, T, C)

    def word_scores(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Scores of each word's first token (B, W, C), the word mask (B, W) and the words per row (B,)."""
        if "char_ids" in batch and "char_ids" not in self.encoder.extra_inputs:
            raise ValueError(
                f"the batch has char_ids (data.use_chars=true) but model.encoder ({type(self.encoder).__name__}) "
                "reads no characters: add +model/encoder/char_encoder=cnn, or set data.use_chars=false"
            )
        extra = self.encoder.extra_kwargs(batch)
        scores = self(batch["input_ids"], batch["attention_mask"], batch.get(LENGTHS), **extra)  # (B, T, C)
        return gather_words(scores, batch.get("word_starts", batch["attention_mask"].bool()))

    def word_labels(self, batch: dict[str, Tensor], word_mask: Tensor) -> Tensor:
        """Each word's tag id (B, W), -100 past the row's last word."""
        labels, _, _ = gather_words(batch["labels"], batch.get("word_starts", batch["attention_mask"].bool()))
        return labels.masked_fill(~word_mask, IGNORE_INDEX)

    def loss(self, scores: Tensor, labels: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Cross-entropy over words whose label is not -100, or the CRF's mean NLL over real words. Gold-only tags
        (ids >= num_labels) are left out of the cross-entropy and read as ``O`` by the CRF. `lengths` (B,):
        words per row (``mask.sum(1)``), when known."""
        gold_only = labels >= self.hparams.num_labels
        if bool(gold_only.any()):
            fill = (
                self.hparams.labels.index("O")
                if self.crf is not None and "O" in self.hparams.labels
                else IGNORE_INDEX
            )
            labels = labels.masked_fill(gold_only, fill)
        if self.crf is None:
            return F.cross_entropy(scores.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        mask = mask.bool()  # (B, W)
        if bool((labels[mask] == IGNORE_INDEX).any()):
            raise ValueError("the CRF needs a tag for every word, but some words have label -100")
        return self.crf(scores, labels, mask, lengths)

    def decode(self, scores: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Tag ids (B, W): Viterbi with the CRF (-100 at padding), else the argmax (any tag at padding)."""
        if self.crf is None:
            return scores.argmax(-1)
        return self.crf.decode(scores, mask.bool(), lengths)

    def _shared_step(self, batch: dict[str, Tensor], stage: str, metrics: SpanF1 | None) -> Tensor:
        """The loss, logged; `metrics` (None: not scored, training without train_metrics) get decoded tags."""
        scores, mask, lengths = self.word_scores(batch)  # (B, W, C), (B, W), (B,)
        labels = self.word_labels(batch, mask)  # (B, W)
        loss = self.loss(scores, labels, mask, lengths)
        if metrics is not None:
            metrics.update(self.decode(scores.detach(), mask, lengths), labels)
        # The softmax loss is a mean over words, the CRF's a mean over sentences: weight the epoch mean alike.
        weight = labels.size(0) if self.crf is not None else (labels != IGNORE_INDEX).sum()
        self.losses.update(self, stage, loss, weight)
        return loss

    def _log_epoch(self, stage: str, metrics: SpanF1 | None) -> None:
        self.losses.log_epoch(self, stage)
        if metrics is None:  # training without train_metrics: the loss only
            return
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
        """Tag ids per word (B, W), -100 past each row's last word; names are ``self.hparams.labels``."""
        scores, mask, lengths = self.word_scores(batch)
        return self.decode(scores, mask, lengths).masked_fill(~mask, IGNORE_INDEX)

    def configure_optimizers(self):
        return build_optimizers(
            self,
            self.optimizer,
            self.scheduler,
            self.hparams.scheduler_interval,
            self.hparams.scheduler_monitor,
        )

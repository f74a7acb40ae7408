"""LanguageModelTask: encoder -> dropout -> next-word distribution, trained with truncated BPTT.

The recurrent state is carried from one batch to the next (`LanguageModelDataModule` makes row r of batch i + 1
continue row r of batch i), detached every step so gradients stop at the window boundary, and reset at the start
of every train / validation / test epoch. Each stage keeps its own state: validation in the middle of a training
epoch does not disturb the training state, and the stages may use different batch sizes.

Perplexity is exp(mean token loss over the whole split), from summed loss and token counts (`TokenPerplexity`),
not a mean of per-batch perplexities.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn

from seqlab.checkpoint import SelfRebuilding
from seqlab.labels import IGNORE_INDEX
from seqlab.metrics.perplexity import TokenPerplexity
from seqlab.tasks.optim import build_optimizers
from seqlab.tasks.plain_attributes import PlainAttributes
from seqlab.tasks.stage_loss import StageLoss

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")


def detach_state(state: Any) -> Any:
    """h_n, or (h_n, c_n) for an LSTM, cut from the graph of the batch that made it."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(detach_state(s) for s in state)


def state_batch_size(state: Any) -> int:
    h = state if isinstance(state, Tensor) else state[0]
    return h.size(1)  # (layers * directions, B, H): nn.RNN keeps B second even with batch_first


class LanguageModelTask(SelfRebuilding, PlainAttributes, LightningModule):
    """Args:
    encoder: a left-to-right encoder following `seqlab.models.encoders.base` that returns its state (RNNEncoder).
    vocab_size: from the data (``???`` in config): the number of classes of the output layer.
    optimizer / scheduler: partials from config, finished in `configure_optimizers`.
    tie_weights: the output layer reuses the encoder's ``embedding.weight`` (Press & Wolf 2017; fewer parameters,
        better perplexity). Needs ``model.encoder.hidden_size == model.encoder.embed_dim``; there is no hidden
        projection, so a mismatch is an error rather than an extra layer nobody asked for.
    dropout: on the encoder's outputs, before the output layer.
    adaptive_softmax_cutoffs: e.g. ``[2000, 10000]``: `nn.AdaptiveLogSoftmaxWithLoss` instead of a full softmax
        (ids must be in frequency order, which `LanguageModelDataModule` gives). Cutoffs not below
        ``vocab_size - 1`` (a vocabulary fitted on a slice) are dropped with a warning. Its tail clusters have their own
        projections, so it cannot be tied: set ``tie_weights=false`` with it.
    adaptive_softmax_div_value: how much smaller each tail cluster's projection is than the previous one.
    scheduler_interval / scheduler_monitor: how Lightning steps the scheduler.
    """

    # Logged as train/<name>, val/<name> and test/<name>: what `monitor` may name.
    metric_names = ("loss", "ppl")

    def __init__(
        self,
        encoder: nn.Module,
        vocab_size: int,
        optimizer: Callable[..., Any],
        scheduler: Callable[..., Any] | None = None,
        tie_weights: bool = True,
        dropout: float = 0.0,
        adaptive_softmax_cutoffs: list[int] | None = None,
        adaptive_softmax_div_value: float = 4.0,
        scheduler_interval: str | None = None,
        scheduler_monitor: str | None = "val/loss",
    ):
        super().__init__()
        # Only plain values go into hparams; seqlab.train then stores the whole model config (seqlab.checkpoint).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        if not encoder.causal:
            raise ValueError(
                f"model.encoder ({type(encoder).__name__}) is not causal: its output at word t has read words after t, "
                "which a language model predicts (a unidirectional RNN: model.encoder.bidirectional=false; a Transformer: "
                "model.encoder.causal=true)"
            )
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        H = encoder.output_dim
        if adaptive_softmax_cutoffs:
            if tie_weights:
                raise ValueError(
                    "model.tie_weights=true and model.adaptive_softmax_cutoffs are both set: the adaptive softmax "
                    "has its own cluster projections and cannot share the embedding; set model.tie_weights=false"
                )
            cutoffs = list(adaptive_softmax_cutoffs)
            if cutoffs != sorted(set(cutoffs)) or cutoffs[0] <= 0:
                raise ValueError(
                    f"model.adaptive_softmax_cutoffs={cutoffs}: must be positive and increase strictly"
                )
            kept = [c for c in cutoffs if c < vocab_size - 1]
            if not kept:
                raise ValueError(
                    f"model.adaptive_softmax_cutoffs={cutoffs}: all >= vocab_size - 1 = {vocab_size - 1}; "
                    "use smaller cutoffs or null (full softmax)"
                )
            if (
                kept != cutoffs
            ):  # a vocabulary fitted on a slice (data.max_train_samples) is smaller than the recipe's
                log.warning(
                    "model.adaptive_softmax_cutoffs=%s: dropped %s, not below vocab_size - 1 = %d",
                    cutoffs,
                    cutoffs[len(kept) :],
                    vocab_size - 1,
                )
            cutoffs = kept
            self.head = None
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                H, vocab_size, cutoffs, div_value=adaptive_softmax_div_value
            )
        else:
            self.adaptive = None
            self.head = nn.Linear(H, vocab_size)
            if tie_weights:
                embedding = getattr(encoder, "embedding", None)
                if not isinstance(embedding, nn.Embedding):
                    raise ValueError(
                        f"model.tie_weights=true needs an encoder with an `embedding` ({type(encoder).__name__} has none)"
                    )
                if embedding.embedding_dim != H or embedding.num_embeddings != vocab_size:
                    raise ValueError(
                        f"model.tie_weights=true needs model.encoder.hidden_size (output_dim {H}) == "
                        f"model.encoder.embed_dim ({embedding.embedding_dim}) and the same vocabulary "
                        f"({embedding.num_embeddings} vs {vocab_size}); change the sizes or set model.tie_weights=false"
                    )
                self.head.weight = embedding.weight  # one Parameter, (V, H), used twice
        # One metric object per stage: a shared one would mix train and validation counts.
        self.train_ppl, self.val_ppl, self.test_ppl = TokenPerplexity(), TokenPerplexity(), TokenPerplexity()
        self.losses = StageLoss()
        self._states: dict[str, Any] = dict.fromkeys(STAGES)

    # ---- model ---------------------------------------------------------------------------------------
    def forward(self, input_ids: Tensor, attention_mask: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Next-word log-probabilities (B, T, V) and the state to carry into the next window."""
        out = self.encoder(input_ids, attention_mask, state)
        hidden = self.dropout(out.last_hidden_state)  # (B, T, H)
        if self.adaptive is not None:
            log_probs = self.adaptive.log_prob(hidden.flatten(0, 1)).view(*hidden.shape[:2], -1)  # (B, T, V)
        else:
            log_probs = self.head(hidden).log_softmax(-1)  # (B, T, V)
        return log_probs, out.state

    def token_loss(self, hidden: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy over the positions whose label is not -100, and how many there are."""
        keep = labels.flatten() != IGNORE_INDEX  # (B*T,)
        hidden, labels = hidden.flatten(0, 1)[keep], labels.flatten()[keep]  # (N, H), (N,)
        if self.adaptive is not None:
            # .loss is the mean; the full V-way softmax is never formed (the point of the adaptive softmax)
            loss_sum = self.adaptive(hidden, labels).loss * labels.numel()
        else:
            loss_sum = F.cross_entropy(self.head(hidden), labels, reduction="sum")  # head: (N, V)
        return loss_sum, keep.sum()

    # ---- truncated BPTT ------------------------------------------------------------------------------
    def _carried_state(self, stage: str, batch_size: int) -> Any:
        state = self._states[stage]
        # Within a stage B is fixed; a different B (a loader swapped by hand, overfit_batches) starts afresh.
        if state is not None and state_batch_size(state) != batch_size:
            state = None
        return state

    def reset_state(self, stage: str) -> None:
        self._states[stage] = None

    def on_train_epoch_start(self) -> None:
        self.reset_state("train")

    def on_validation_epoch_start(self) -> None:
        self.reset_state("val")

    def on_test_epoch_start(self) -> None:
        self.reset_state("test")

    def on_predict_epoch_start(self) -> None:
        self.reset_state("predict")

    # ---- steps ---------------------------------------------------------------------------------------
    def _shared_step(self, batch: dict[str, Tensor], stage: str, ppl: TokenPerplexity) -> Tensor:
        input_ids = batch["input_ids"]  # (B, T); the last window of a split may have a smaller T
        out = self.encoder(input_ids, batch["attention_mask"], self._carried_state(stage, input_ids.size(0)))
        self._states[stage] = detach_state(out.state)  # carried on, but gradients stop at this window
        loss_sum, count = self.token_loss(self.dropout(out.last_hidden_state), batch["labels"])
        loss = loss_sum / count.clamp(min=1)
        ppl.update(loss_sum, count)
        # weighted by tokens: windows of unequal size average right
        self.losses.update(self, stage, loss, count)
        return loss

    def _log_epoch(self, stage: str, ppl: TokenPerplexity) -> None:
        # Computed (synced across processes by torchmetrics), logged and reset once an epoch.
        self.losses.log_epoch(self, stage)
        if ppl.update_count:
            self.log(f"{stage}/ppl", ppl.compute(), prog_bar=stage != "train")
            ppl.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train", self.train_ppl)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_ppl)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_ppl)

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train", self.train_ppl)

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val", self.val_ppl)

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test", self.test_ppl)

    def predict_step(self, batch, batch_idx):
        """Log-probability of each label token (B, T), the state carried across the predict batches."""
        input_ids = batch["input_ids"]
        log_probs, state = self(
            input_ids, batch["attention_mask"], self._carried_state("predict", input_ids.size(0))
        )
        self._states["predict"] = detach_state(state)
        labels = batch["labels"]
        return (
            log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1))
            .squeeze(-1)
            .masked_fill(labels == IGNORE_INDEX, 0.0)
        )

    def configure_optimizers(self):
        return build_optimizers(
            self,
            self.optimizer,
            self.scheduler,
            self.hparams.scheduler_interval,
            self.hparams.scheduler_monitor,
        )

"""`SpanF1`: micro precision / recall / F1 over exact spans (CoNLL scoring), with the span rules of
`seqlab.labels` (IOB1 / IOB2 / IOBES, seqeval's strict mode)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from seqlab.labels import IGNORE_INDEX, check_tags, extract_spans


class SpanF1(Metric):
    """Micro span precision / recall / F1 plus token accuracy, for tag ids (B, T) with -100 at padded targets.

    Counts are summed states, so under DDP every process adds its sentences and `compute` sees them all.
    Positions where the target is -100 are skipped before spans are read, so padding (or subword pieces
    labelled -100) never splits or creates an entity.

    Args:
        id2tag: tag name of each id (the DataModule's label list).
        scheme: IOB1 | IOB2 | IOBES, or None for tags without spans (POS); see `extract_spans`.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, id2tag: Sequence[str], scheme: str | None = "IOB2"):
        super().__init__()
        check_tags(id2tag, scheme)
        self.id2tag = list(id2tag)
        self.scheme = scheme
        for name in ("tp", "n_pred", "n_gold", "correct", "total"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """preds, target: (B, T) tag ids; target is -100 where there is nothing to score."""
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != IGNORE_INDEX  # (B, T)
        if bool((preds[valid] < 0).any()):
            raise ValueError(
                "a prediction is negative (-100?) where the target is scored: preds and target masks differ"
            )
        self.correct += (preds[valid] == target[valid]).sum()
        self.total += valid.sum()
        tp = n_pred = n_gold = 0
        for p_row, t_row, v_row in zip(preds.tolist(), target.tolist(), valid.tolist(), strict=True):
            gold = extract_spans(
                [self.id2tag[t] for t, v in zip(t_row, v_row, strict=True) if v], self.scheme
            )
            pred = extract_spans(
                [self.id2tag[p] for p, v in zip(p_row, v_row, strict=True) if v], self.scheme
            )
            tp += len(gold & pred)
            n_pred += len(pred)
            n_gold += len(gold)
        self.tp += tp
        self.n_pred += n_pred
        self.n_gold += n_gold

    def compute(self) -> dict[str, Tensor]:
        """{"precision", "recall", "f1", "token_acc"}; a ratio with nothing to count is 0 (seqeval's zero_division)."""
        tp, n_pred, n_gold = self.tp.double(), self.n_pred.double(), self.n_gold.double()
        precision = tp / n_pred if n_pred > 0 else tp * 0
        recall = tp / n_gold if n_gold > 0 else tp * 0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else tp * 0
        token_acc = self.correct.double() / self.total if self.total > 0 else tp * 0
        return {
            k: v.float()
            for k, v in {"precision": precision, "recall": recall, "f1": f1, "token_acc": token_acc}.items()
        }

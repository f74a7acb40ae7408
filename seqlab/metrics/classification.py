"""ClassificationScores: accuracy and macro F1 of single-label classification, from one confusion matrix.

torchmetrics' ``MulticlassAccuracy`` and ``MulticlassF1Score`` in a ``MetricCollection`` keep separate stat
scores (their micro and macro states cannot share a compute group): two updates of ~0.15 ms each per training
step on a CPU. One C x C count matrix gives both, for one ``index_put_`` per step; its counts add up across DDP
ranks, so the epoch values are those of all ranks' examples.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class ClassificationScores(Metric):
    full_state_update = False

    def __init__(self, num_labels: int, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        counts = torch.zeros(num_labels, num_labels, dtype=torch.long)  # [gold, predicted]
        self.add_state("confmat", default=counts, dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """preds, target: class ids of the same shape (argmax ids and gold ids, all in range)."""
        index = (target * self.num_labels + preds).flatten()
        # in place (no module attribute set); accumulate=True has a deterministic CUDA kernel, unlike bincount
        self.confmat.view(-1).index_put_((index,), torch.ones_like(index), accumulate=True)

    def compute(self) -> dict[str, Tensor]:
        """``acc``: correct / all. ``f1``: the mean of per-class F1 over the classes that occur as gold or
        prediction (torchmetrics' macro average: a class with no true positive, false positive or false negative
        is left out; 0 when there is none)."""
        counts = self.confmat.double()
        tp = counts.diagonal()
        acc = tp.sum() / counts.sum().clamp(min=1)
        denom = 2 * tp + (counts.sum(0) - tp) + (counts.sum(1) - tp)  # 2tp + fp + fn
        present = denom > 0
        f1 = (
            (2 * tp[present] / denom[present]).mean()
            if bool(present.any())
            else torch.zeros((), dtype=torch.double)
        )
        return {"acc": acc.float(), "f1": f1.float()}

"""ClassificationScores equals torchmetrics' micro accuracy and macro F1, from one confusion matrix."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqlab.metrics.classification import ClassificationScores


def test_hand_computed_counts():
    m = ClassificationScores(3)
    m.update(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1]))  # preds, gold
    m.update(torch.tensor([2]), torch.tensor([2]))
    assert m.confmat.tolist() == [[1, 0, 0], [1, 1, 1], [0, 0, 1]]  # [gold, predicted]
    scores = m.compute()
    assert scores["acc"].item() == pytest.approx(3 / 5)
    # F1 per class: 0: 2*1/(2+1+0) = 2/3; 1: 2*1/(2+0+2) = 1/2; 2: 2*1/(2+1+0) = 2/3
    assert scores["f1"].item() == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)


@pytest.mark.parametrize("num_labels,absent", [(2, []), (5, []), (6, [4]), (6, [0, 5])])
def test_equals_torchmetrics_over_many_batches(num_labels, absent):
    g = torch.Generator().manual_seed(num_labels + len(absent))
    ours = ClassificationScores(num_labels)
    acc = MulticlassAccuracy(num_labels, average="micro")
    f1 = MulticlassF1Score(num_labels, average="macro")
    classes = torch.tensor([c for c in range(num_labels) if c not in absent])  # never gold, never predicted
    for size in (7, 64, 1, 33):
        preds = classes[torch.randint(len(classes), (size,), generator=g)]
        gold = classes[torch.randint(len(classes), (size,), generator=g)]
        for metric in (ours, acc, f1):
            metric.update(preds, gold)
    scores = ours.compute()
    torch.testing.assert_close(scores["acc"], acc.compute())
    torch.testing.assert_close(scores["f1"], f1.compute())


def test_no_class_ever_seen_scores_zero_and_reset_clears():
    m = ClassificationScores(3)
    m.update(torch.tensor([1]), torch.tensor([1]))
    m.reset()
    assert int(m.confmat.sum()) == 0
    assert m.compute()["f1"].item() == 0.0 and m.compute()["acc"].item() == 0.0

"""TextClassificationTask: learns a tiny batch, ignores padding in every pooling mode, predicts probabilities."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from seqlab.models.encoders.cnn import CNNEncoder
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask


def task(encoder, pooling="max", num_labels=3):
    torch.manual_seed(0)
    return TextClassificationTask(
        encoder, num_labels=num_labels, optimizer=partial(torch.optim.Adam, lr=0.05), pooling=pooling
    )


def batch():
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0], [4, 9, 8, 7]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": torch.tensor([0, 1, 2, 1])}


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "first"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNEncoder(12, embed_dim=8, hidden_size=8, bidirectional=True),
        lambda: CNNEncoder(12, embed_dim=8, hidden_size=4, kernel_sizes=(3,)),
    ],
)
def test_logits_ignore_padding_values(make, pooling):
    model = task(make(), pooling).eval()
    b = batch()
    noisy = b["input_ids"].masked_fill(b["attention_mask"] == 0, 11)  # a real word id in every padded slot
    with torch.no_grad():
        assert torch.equal(model(b["input_ids"], b["attention_mask"]), model(noisy, b["attention_mask"]))


def test_overfits_a_tiny_batch_and_predicts_probabilities():
    model = task(RNNEncoder(12, embed_dim=8, hidden_size=16))
    opt = model.optimizer(params=model.parameters())
    b = batch()
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(b["input_ids"], b["attention_mask"]), b["labels"])
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    probs = model.predict_step(b, 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
    assert probs.argmax(-1).tolist() == b["labels"].tolist()

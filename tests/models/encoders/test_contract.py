"""The encoder contract's `lengths`: every encoder's forward takes it, and outputs do not change with it."""

from __future__ import annotations

import inspect

import pytest
import torch

from seqlab.data.collate import LENGTHS, keep_lengths_on_cpu
from seqlab.models.encoders.cnn import CNNEncoder
from seqlab.models.encoders.embedding import EmbeddingEncoder
from seqlab.models.encoders.hf import HFEncoder
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.models.encoders.transformer import TransformerEncoder


@pytest.mark.parametrize("cls", [RNNEncoder, CNNEncoder, EmbeddingEncoder, HFEncoder, TransformerEncoder])
def test_every_encoder_takes_optional_lengths(cls):
    param = inspect.signature(cls.forward).parameters.get("lengths")
    assert param is not None and param.default is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNEncoder(20, embed_dim=8, hidden_size=8, bidirectional=True),
        lambda: CNNEncoder(20, embed_dim=8, hidden_size=4),
        lambda: EmbeddingEncoder(20, embed_dim=8),
        lambda: TransformerEncoder(20, d_model=8, num_heads=2, num_layers=1, ffn_dim=16),
    ],
)
def test_outputs_are_the_same_with_and_without_lengths(make):
    torch.manual_seed(0)
    enc = make().eval()
    lengths = torch.tensor([5, 2, 1])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1, 20, (3, 5)) * mask
    with torch.no_grad():
        assert torch.equal(
            enc(ids, mask, lengths=lengths).last_hidden_state, enc(ids, mask).last_hidden_state
        )


def test_batch_transfer_keeps_lengths_on_the_cpu():
    batch = {"input_ids": torch.ones(2, 3), LENGTHS: torch.tensor([3, 1])}
    moved = keep_lengths_on_cpu(batch, lambda b, device: {k: v.to(device) for k, v in b.items()}, "meta")
    assert moved["input_ids"].device.type == "meta" and moved[LENGTHS] is batch[LENGTHS]
    assert keep_lengths_on_cpu([1], lambda b, device: b, "meta") == [1]  # not a dict: moved as it is

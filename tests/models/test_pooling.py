from __future__ import annotations

import pytest
import torch

from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.models.pooling import Pooler

HIDDEN = torch.tensor(
    [  # (B=2, T=3, H=2); row 1 has length 2, its last position is padding (zeros, as encoders emit)
        [[1.0, -1.0], [3.0, 5.0], [2.0, 0.0]],
        [[-4.0, 2.0], [0.0, -6.0], [0.0, 0.0]],
    ]
)
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def test_mean_max_first_last_by_hand():
    assert torch.equal(Pooler("mean")(HIDDEN, MASK), torch.tensor([[2.0, 4 / 3], [-2.0, -2.0]]))
    # max must ignore the padded zeros, which exceed row 1's real values in column 1
    assert torch.equal(Pooler("max")(HIDDEN, MASK), torch.tensor([[3.0, 5.0], [0.0, 2.0]]))
    assert torch.equal(Pooler("first")(HIDDEN, MASK), torch.tensor([[1.0, -1.0], [-4.0, 2.0]]))
    assert torch.equal(Pooler("last")(HIDDEN, MASK), torch.tensor([[2.0, 0.0], [0.0, -6.0]]))
    # bidirectional: forward half at the last real token, backward half at position 0
    assert torch.equal(
        Pooler("last", num_directions=2)(HIDDEN, MASK), torch.tensor([[2.0, -1.0], [0.0, 2.0]])
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bi", [False, True])
def test_last_pooling_is_the_final_state_of_each_direction(cell, bi):
    torch.manual_seed(0)
    enc = RNNEncoder(
        vocab_size=20, embed_dim=4, hidden_size=3, num_layers=2, cell=cell, bidirectional=bi
    ).eval()
    ids = torch.randint(1, 20, (3, 6))
    mask = torch.tensor([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        out = enc(ids, mask)
    h_n = out.state[0] if cell == "lstm" else out.state  # (layers * directions, B, H)
    top = torch.cat(list(h_n[-enc.num_directions :]), dim=-1)  # (B, H * directions)
    torch.testing.assert_close(
        Pooler("last", enc.num_directions)(out.last_hidden_state, mask), top, atol=1e-6, rtol=0
    )


def test_unknown_mode_names_the_key():
    with pytest.raises(ValueError, match="model.pooling='avg'"):
        Pooler("avg")


def test_cls_and_pooler_modes():
    hidden = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(Pooler("cls")(hidden, mask), hidden[:, 0])
    pooled = torch.randn(2, 2)
    assert torch.equal(Pooler("pooler", has_pooler_output=True)(hidden, mask, pooled), pooled)
    with pytest.raises(ValueError, match="model.pooling=pooler needs an encoder with a pretrained pooler"):
        Pooler("pooler")


@pytest.mark.parametrize("mode", ["mean", "max", "first", "last"])
@pytest.mark.parametrize("directions", [1, 2])
def test_given_lengths_pool_exactly_as_the_mask(mode, directions):
    pooler = Pooler(mode, num_directions=directions)
    assert torch.equal(pooler(HIDDEN, MASK, lengths=MASK.sum(1)), pooler(HIDDEN, MASK))

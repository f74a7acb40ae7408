from __future__ import annotations

import pytest
import torch

from seqlab.models.char import CharEncoder
from seqlab.models.encoders.rnn import RNNEncoder


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_char_features_ignore_padding(kind):
    torch.manual_seed(0)
    enc = CharEncoder(num_chars=12, char_embed_dim=6, hidden_size=5, kind=kind).eval()
    assert enc.output_dim == (5 if kind == "cnn" else 10)
    char_ids = torch.tensor(
        [[[3, 4, 5, 0], [6, 0, 0, 0], [0, 0, 0, 0]]]
    )  # (B=1, T=3, L=4); word 3 is padding
    out = enc(char_ids)
    assert out.shape == (1, 3, enc.output_dim)
    assert (out[0, 2] == 0).all()  # a padded word position is a zero vector
    # more pad chars (a longer word elsewhere in the batch) and more padded words change nothing
    wider = torch.zeros(2, 5, 7, dtype=torch.long)
    wider[0, :3, :4] = char_ids[0]
    wider[1, 0, :7] = torch.arange(2, 9)
    out_wide = enc(wider)
    assert torch.allclose(out_wide[0, :3], out[0], atol=1e-6)
    assert (out_wide[0, 3:] == 0).all()
    # the features do depend on the characters
    assert not torch.allclose(enc(torch.tensor([[[3, 4]]])), enc(torch.tensor([[[4, 3]]])))


def test_word_char_encoder_shapes_and_padding():
    torch.manual_seed(0)
    enc = RNNEncoder(
        20, char_encoder=CharEncoder(10, 4, 3), embed_dim=8, hidden_size=6, bidirectional=True
    ).eval()
    ids = torch.tensor([[5, 6, 7], [8, 9, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    chars = torch.randint(2, 10, (2, 3, 4))
    chars[1, 2] = 0  # the padded word
    chars[:, :, 3] = 0  # every word has 3 chars, then a pad char
    out = enc(ids, mask, char_ids=chars).last_hidden_state
    assert out.shape == (2, 3, 12) and enc.output_dim == 12
    assert (out[1, 2] == 0).all()
    alone = enc(ids[1:, :2], mask[1:, :2], char_ids=chars[1:, :2, :3]).last_hidden_state
    assert torch.allclose(alone[0], out[1, :2], atol=1e-6)
    with pytest.raises(ValueError, match="use_chars"):
        enc(ids, mask)
    with pytest.raises(ValueError, match="kernel_size"):
        CharEncoder(10, kernel_size=4)

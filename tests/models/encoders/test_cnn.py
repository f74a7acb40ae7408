from __future__ import annotations

import pytest
import torch

from seqlab.models.encoders.cnn import CNNEncoder


@pytest.mark.parametrize("kernel_sizes", [(3,), (2, 3, 5)])
def test_each_row_equals_the_sequence_alone_and_padding_never_leaks(kernel_sizes):
    torch.manual_seed(0)
    enc = CNNEncoder(vocab_size=30, embed_dim=6, hidden_size=4, kernel_sizes=kernel_sizes).eval()
    lengths = [5, 1, 7, 2]
    T = max(lengths)
    mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(1, 30, (4, T)).masked_fill(mask == 0, 0)
    noisy = torch.where(mask.bool(), ids, torch.randint(1, 30, ids.shape))
    with torch.no_grad():
        out = enc(ids, mask).last_hidden_state
        assert out.shape == (4, T, 4 * len(kernel_sizes))
        assert torch.equal(out, enc(noisy, mask).last_hidden_state)
        for i, n in enumerate(lengths):
            alone = enc(ids[i : i + 1, :n], mask[i : i + 1, :n]).last_hidden_state[0]
            torch.testing.assert_close(out[i, :n], alone, atol=1e-6, rtol=0)
            assert torch.equal(out[i, n:], torch.zeros_like(out[i, n:]))


def test_bad_kernel_sizes():
    with pytest.raises(ValueError, match=r"model.encoder.kernel_sizes=\[\]"):
        CNNEncoder(vocab_size=5, kernel_sizes=())


def test_sizes_that_cannot_work_fail_at_construction_naming_the_key():
    from seqlab.data.classification import TextClassificationDataModule
    from seqlab.data.synthetic import NegationSentimentSource
    from seqlab.models.encoders.rnn import RNNEncoder

    with pytest.raises(ValueError, match=r"model.encoder.hidden_size=0: must be >= 1"):
        CNNEncoder(10, hidden_size=0)
    with pytest.raises(ValueError, match=r"model.encoder.num_layers=0: must be >= 1"):
        RNNEncoder(10, num_layers=0)
    with pytest.raises(ValueError, match=r"data.batch_size=0: must be >= 1"):
        TextClassificationDataModule(NegationSentimentSource(), batch_size=0)

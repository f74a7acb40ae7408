"""RNNEncoder reads packed sequences: each row of a padded batch gives exactly what it gives alone."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.models.encoders.rnn import RNNEncoder

CASES = list(itertools.product(["lstm", "gru", "rnn"], [1, 2], [False, True]))


def make_batch(lengths, vocab=30, pad=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.randint(1, vocab, (len(lengths), T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, pad), mask


def encoder(cell, layers, bi, **kw):
    torch.manual_seed(0)
    return RNNEncoder(
        vocab_size=30,
        pad_token_id=0,
        embed_dim=8,
        hidden_size=6,
        num_layers=layers,
        cell=cell,
        bidirectional=bi,
        dropout=0.0,
        **kw,
    ).eval()


@pytest.mark.parametrize("cell,layers,bi", CASES)
def test_packed_batch_equals_each_sequence_alone(cell, layers, bi):
    lengths = [5, 1, 7, 3, 7, 2]
    ids, mask = make_batch(lengths)
    enc = encoder(cell, layers, bi)
    with torch.no_grad():
        out = enc(ids, mask)
        for i, n in enumerate(lengths):
            alone = enc(ids[i : i + 1, :n], mask[i : i + 1, :n])  # no padding at all: the unpacked fast path
            torch.testing.assert_close(
                out.last_hidden_state[i, :n], alone.last_hidden_state[0], atol=1e-6, rtol=0
            )
            assert torch.equal(out.last_hidden_state[i, n:], torch.zeros_like(out.last_hidden_state[i, n:]))
            states = out.state if cell == "lstm" else (out.state,)
            alone_states = alone.state if cell == "lstm" else (alone.state,)
            for s, a in zip(states, alone_states, strict=True):  # h_n (and c_n): (layers * directions, B, H)
                torch.testing.assert_close(s[:, i], a[:, 0], atol=1e-6, rtol=0)
    assert out.last_hidden_state.shape == (len(lengths), max(lengths), enc.output_dim)
    assert enc.output_dim == 6 * (2 if bi else 1)


@pytest.mark.parametrize("cell,layers,bi", CASES)
def test_padding_values_never_change_outputs(cell, layers, bi):
    lengths = [4, 1, 6, 2]
    ids, mask = make_batch(lengths)
    noisy = torch.where(mask.bool(), ids, torch.randint(1, 30, ids.shape))  # real tokens in padded slots
    enc = encoder(cell, layers, bi)
    with torch.no_grad():
        a, b = enc(ids, mask), enc(noisy, mask)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)
    for s, t in zip(
        a.state if cell == "lstm" else (a.state,), b.state if cell == "lstm" else (b.state,), strict=True
    ):
        assert torch.equal(s, t)


def test_padding_row_gets_zero_gradient():
    ids, mask = make_batch([3, 1, 5])
    enc = encoder("lstm", 2, True).train()
    enc(ids, mask).last_hidden_state.sum().backward()
    grad = enc.embedding.weight.grad
    assert torch.equal(grad[0], torch.zeros_like(grad[0]))
    assert grad[ids[0, 0]].abs().sum() > 0  # a real token does get gradient


def test_final_state_is_carried_between_calls():
    """Feeding a sequence in two halves with the state carried equals one pass (what truncated BPTT relies on)."""
    ids, mask = make_batch([8, 8])
    enc = encoder("lstm", 2, False)
    with torch.no_grad():
        whole = enc(ids, mask).last_hidden_state
        first = enc(ids[:, :5], mask[:, :5])
        second = enc(ids[:, 5:], mask[:, 5:], state=first.state)
    torch.testing.assert_close(
        torch.cat([first.last_hidden_state, second.last_hidden_state], 1), whole, atol=1e-6, rtol=0
    )


def test_bad_arguments_are_refused_with_the_key_to_fix():
    with pytest.raises(ValueError, match="model.encoder.cell='transformer'"):
        RNNEncoder(vocab_size=10, cell="transformer")
    with pytest.raises(ValueError, match="num_layers=1"):
        RNNEncoder(vocab_size=10, num_layers=1, dropout=0.3)
    enc = encoder("gru", 1, False)
    with pytest.raises(ValueError, match="length 0"):
        enc(torch.zeros(2, 3, dtype=torch.long), torch.tensor([[1, 1, 0], [0, 0, 0]]))


@pytest.mark.parametrize("cell,layers,bi", CASES)
def test_given_lengths_give_exactly_the_same_outputs(cell, layers, bi):
    """The collator's CPU `lengths` replace the mask sum: same outputs and states, bit for bit."""
    lengths = [5, 1, 7, 3, 7, 2]
    ids, mask = make_batch(lengths)
    enc = encoder(cell, layers, bi)
    with torch.no_grad():
        a, b = enc(ids, mask), enc(ids, mask, lengths=torch.tensor(lengths))
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)
    states = zip(*(x.state if cell == "lstm" else (x.state,) for x in (a, b)), strict=True)
    assert all(torch.equal(s, t) for s, t in states)


def test_given_lengths_spare_the_mask_sum():
    """With `lengths` the encoder never sums the mask: on an accelerator those sums would have to be read
    back to the CPU for packing (a host sync every batch)."""

    class UnsummableMask(torch.Tensor):
        def sum(self, *args, **kwargs):
            raise AssertionError("the mask was summed")

    ids, mask = make_batch([4, 1, 6])
    mask = mask.as_subclass(UnsummableMask)
    enc = encoder("lstm", 1, True)
    with torch.no_grad():
        enc(ids, mask, lengths=torch.tensor([4, 1, 6]))
        with pytest.raises(AssertionError, match="summed"):  # the fallback
            enc(ids, mask)

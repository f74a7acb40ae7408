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
        **{"dropout": 0.0, **kw},
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


# ---- unpacked on the CPU (return_state=False) ------------------------------------------------------------------
@pytest.mark.parametrize("cell,layers,bi", CASES)
def test_unpacked_batch_equals_the_packed_one_with_its_gradients(cell, layers, bi):
    """Without a state to return, a ragged CPU batch skips packing: the same outputs, zeros at padding, and the
    same gradients for every parameter (float rounding apart)."""
    lengths = [5, 1, 7, 3, 7, 2]
    ids, mask = make_batch(lengths)
    enc = encoder(cell, layers, bi).train()  # dropout=0: training mode, deterministic
    outs, grads = {}, {}
    for return_state in (True, False):
        enc.zero_grad()
        out = enc(ids, mask, return_state=return_state)
        assert (out.state is None) == (not return_state)
        (out.last_hidden_state * torch.arange(1.0, 1 + out.last_hidden_state.size(-1))).sum().backward()
        outs[return_state] = out.last_hidden_state
        grads[return_state] = {n: p.grad.clone() for n, p in enc.named_parameters()}
    torch.testing.assert_close(outs[False], outs[True], atol=1e-6, rtol=0)
    padded = mask == 0
    assert torch.equal(outs[False][padded], torch.zeros_like(outs[False][padded]))
    for name, grad in grads[True].items():
        torch.testing.assert_close(grads[False][name], grad, atol=1e-5, rtol=1e-5, msg=name)


def test_unpacked_path_ignores_padding_values_and_keeps_states_where_asked():
    lengths = [4, 1, 6, 2]
    ids, mask = make_batch(lengths)
    noisy = torch.where(mask.bool(), ids, torch.randint(1, 30, ids.shape))
    enc = encoder("lstm", 2, True)
    with torch.no_grad():
        a, b = enc(ids, mask, return_state=False), enc(noisy, mask, return_state=False)
        assert torch.equal(a.last_hidden_state, b.last_hidden_state)
        full, _ = make_batch([6, 6])
        assert enc(full, torch.ones_like(full), return_state=False).state is not None  # nothing to unpack
        carried = enc(ids, mask).state
        assert enc(ids, mask, state=carried, return_state=False).state is not None  # a carried state: packed
        sparse, sparse_mask = make_batch([8, 1, 1, 1])  # 66% padding: packed is faster there
        assert enc(sparse, sparse_mask, return_state=False).state is not None


def test_unpacked_cells_share_the_parameters_and_stay_out_of_the_module_tree():
    import copy

    ids, mask = make_batch([5, 2, 3])
    enc = encoder("gru", 2, True)
    names = set(enc.state_dict())
    with torch.no_grad():
        before = enc(ids, mask, return_state=False).last_hidden_state
    assert set(enc.state_dict()) == names and "_unpacked_rnn" not in dict(enc.named_modules())
    assert len(list(enc.parameters())) == len(names)
    twin = copy.deepcopy(enc)  # the copy's cells follow the copy's weights, not the original's
    with torch.no_grad():
        for p in twin.rnn.parameters():
            p.add_(0.5)
        assert not torch.allclose(twin(ids, mask, return_state=False).last_hidden_state, before)
        torch.testing.assert_close(
            twin(ids, mask, return_state=False).last_hidden_state, twin(ids, mask).last_hidden_state
        )
        # parameters replaced outright (assign=True) are picked up too
        enc.load_state_dict(
            {k: v + 0.5 if k.startswith("rnn.") else v for k, v in enc.state_dict().items()}, assign=True
        )
        torch.testing.assert_close(
            enc(ids, mask, return_state=False).last_hidden_state, enc(ids, mask).last_hidden_state
        )


def test_unpacked_path_applies_dropout_between_layers_in_training_only():
    ids, mask = make_batch([5, 2, 3])
    enc = encoder("lstm", 2, True, dropout=0.5)
    with torch.no_grad():
        torch.testing.assert_close(
            enc(ids, mask, return_state=False).last_hidden_state, enc(ids, mask).last_hidden_state
        )  # eval: no dropout
        enc.train()
        a = enc(ids, mask, return_state=False).last_hidden_state
        b = enc(ids, mask, return_state=False).last_hidden_state
    assert not torch.equal(a, b)


@pytest.mark.parametrize("lengths", [[5, 5, 5], [5, 4, 3], [5, 1, 1]])  # uniform, unpacked, packed
def test_cpu_bf16_autocast_runs_the_recurrence_in_float32(lengths):
    """oneDNN has no bf16-autocast kernel for the padded CPU LSTM: every path runs (trainer.precision=bf16-mixed)
    and gives the float32 outputs."""
    ids, mask = make_batch(lengths)
    enc = encoder("lstm", 2, True)
    with torch.no_grad():
        plain = enc(ids, mask, return_state=False).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = enc(ids, mask, return_state=False).last_hidden_state
    assert mixed.dtype == torch.float32 and torch.equal(mixed, plain)

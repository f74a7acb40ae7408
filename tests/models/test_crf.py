from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.models.crf import CRF


def path_score(crf, emissions, path):
    """Brute-force score of one path over one unpadded sequence: emissions (T, C)."""
    s = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
    s = s + sum(emissions[t, y] for t, y in enumerate(path))
    return s + sum(crf.transitions[a, b] for a, b in itertools.pairwise(path))


def brute_force(crf, emissions, length):
    """log Z and the best path of one sequence, enumerating all C**length paths."""
    paths = list(itertools.product(range(crf.num_tags), repeat=length))
    scores = torch.stack([path_score(crf, emissions[:length], p) for p in paths])
    return torch.logsumexp(scores, 0), list(paths[int(scores.argmax())])


@pytest.fixture
def crf_batch():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():  # larger than the init, so paths differ clearly
        for p in crf.parameters():
            p.normal_()
    lengths = [4, 1, 3, 2]
    B, T = len(lengths), max(lengths)
    emissions = torch.randn(B, T, 3, dtype=torch.float64)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T) prefix mask
    tags = torch.randint(0, 3, (B, T)).masked_fill(~mask, -100)
    return crf.double(), emissions, mask, tags, lengths


def test_nll_equals_brute_force(crf_batch):
    crf, emissions, mask, tags, lengths = crf_batch
    expected = []
    for b, n in enumerate(lengths):
        log_z, _ = brute_force(crf, emissions[b], n)
        expected.append(log_z - path_score(crf, emissions[b], tags[b, :n].tolist()))
    assert crf(emissions, tags, mask).item() == pytest.approx(torch.stack(expected).mean().item(), abs=1e-5)
    # per row as well: a batch of one gives that row's NLL, whatever padding the others bring
    for b, n in enumerate(lengths):
        one = crf(emissions[b : b + 1, :n], tags[b : b + 1, :n], mask[b : b + 1, :n])
        assert one.item() == pytest.approx(expected[b].item(), abs=1e-5)


def test_viterbi_equals_brute_force_argmax(crf_batch):
    crf, emissions, mask, _, lengths = crf_batch
    decoded = crf.decode(emissions, mask)
    assert decoded.shape == mask.shape and decoded.dtype == torch.long
    for b, n in enumerate(lengths):
        assert decoded[b, :n].tolist() == brute_force(crf, emissions[b], n)[1]
        assert (decoded[b, n:] == -100).all()  # padded positions


def test_padding_values_do_not_matter(crf_batch):
    crf, emissions, mask, tags, _ = crf_batch
    noisy = emissions.masked_fill(~mask.unsqueeze(-1), 1e3)
    assert torch.allclose(crf(noisy, tags, mask), crf(emissions, tags, mask))
    assert torch.equal(crf.decode(noisy, mask), crf.decode(emissions, mask))


def test_gradients_flow_and_bad_masks_fail(crf_batch):
    crf, emissions, mask, tags, _ = crf_batch
    emissions.requires_grad_(True)
    crf(emissions, tags, mask).backward()
    assert crf.transitions.grad is not None and emissions.grad.abs().sum() > 0
    assert (emissions.grad[~mask] == 0).all()
    with pytest.raises(ValueError, match="length >= 1"):
        crf(emissions, tags, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="emissions must be"):
        crf.decode(emissions[..., :2], mask)


def test_given_lengths_give_exactly_the_same_nll_and_paths(crf_batch):
    crf, emissions, mask, tags, lengths = crf_batch
    given = torch.tensor(lengths)
    assert torch.equal(crf(emissions, tags, mask, given), crf(emissions, tags, mask))
    assert torch.equal(crf.decode(emissions, mask, given), crf.decode(emissions, mask))

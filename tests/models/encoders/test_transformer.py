"""TransformerEncoder: padding is never attended, causal means causal, positions work, sizes are checked."""

from __future__ import annotations

import pytest
import torch

from seqlab.models.encoders.transformer import TransformerEncoder
from seqlab.tasks.language_modeling import LanguageModelTask

V = 30
POSITIONS = ["learned", "sinusoidal"]

# Measured on 2 cores: 0.995 test accuracy, 1.13 validation perplexity; the bounds leave a margin for other seeds.
TRANSFORMER_SST2_RECIPE_FLOOR = 0.9
TRANSFORMER_LM_PPL_CEILING = 2.0


def make_batch(lengths, vocab=V, pad=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.randint(1, vocab, (len(lengths), T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, pad), mask


def encoder(positions="learned", causal=False, **kw):
    torch.manual_seed(0)
    sizes = {"d_model": 16, "num_heads": 4, "num_layers": 2, "ffn_dim": 32, "max_length": 12, **kw}
    return TransformerEncoder(V, 0, dropout=0.0, positions=positions, causal=causal, **sizes).eval()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("positions", POSITIONS)
def test_padding_changes_nothing_and_padded_outputs_are_zero(positions, causal):
    lengths = [5, 1, 7, 3, 7, 2]
    ids, mask = make_batch(lengths)
    noisy = torch.where(mask.bool(), ids, torch.randint(1, V, ids.shape))  # real tokens in the padded slots
    enc = encoder(positions, causal)
    with torch.no_grad():
        out = enc(ids, mask).last_hidden_state
        assert torch.equal(out, enc(noisy, mask).last_hidden_state)  # exactly: padded keys are never attended
        for i, n in enumerate(lengths):
            alone = enc(ids[i : i + 1, :n], mask[i : i + 1, :n]).last_hidden_state  # no padding at all
            torch.testing.assert_close(out[i, :n], alone[0], atol=1e-5, rtol=0)
            assert torch.equal(out[i, n:], torch.zeros_like(out[i, n:]))
    assert out.shape == (len(lengths), max(lengths), enc.output_dim) and enc.output_dim == 16


def test_a_row_of_padding_gives_zeros_not_nan():
    """A padded query whose only keys are padding would make the softmax NaN, and NaN * 0 is still NaN."""
    ids, mask = make_batch([4, 1])
    mask[1] = 0
    enc = encoder(causal=True).train()
    out = enc(ids, mask).last_hidden_state
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


def test_causal_output_at_t_ignores_every_later_token():
    ids, mask = make_batch([9, 9, 9])
    causal, bidirectional = encoder(causal=True), encoder(causal=False)
    with torch.no_grad():
        before_c, before_b = causal(ids, mask).last_hidden_state, bidirectional(ids, mask).last_hidden_state
        for t in range(ids.size(1) - 1):
            changed = ids.clone()
            changed[:, t + 1 :] = (
                changed[:, t + 1 :] % (V - 1)
            ) + 1  # every token after t, still never padding
            after_c = causal(changed, mask).last_hidden_state
            torch.testing.assert_close(after_c[:, : t + 1], before_c[:, : t + 1], atol=1e-6, rtol=0)
            after_b = bidirectional(changed, mask).last_hidden_state
            assert (after_b[:, : t + 1] - before_b[:, : t + 1]).abs().max() > 1e-3, (
                t
            )  # bidirectional reads ahead
    assert causal.causal and not bidirectional.causal


def test_the_language_model_accepts_it_only_when_causal():
    with pytest.raises(ValueError, match=r"model.encoder \(TransformerEncoder\) is not causal"):
        LanguageModelTask(encoder(causal=False), V, optimizer=torch.optim.Adam, tie_weights=False)
    task = LanguageModelTask(encoder(causal=True), V, optimizer=torch.optim.Adam, tie_weights=False)
    ids, mask = make_batch([6, 6])
    log_probs, state = task(ids, mask)
    assert log_probs.shape == (2, 6, V) and state is None  # stateless: nothing is carried between windows
    tied = LanguageModelTask(encoder(causal=True), V, optimizer=torch.optim.Adam, tie_weights=True)
    assert tied.head.weight is tied.encoder.embedding.weight  # output_dim == embedding size: always tieable


@pytest.mark.parametrize("positions", POSITIONS)
def test_positions_make_word_order_matter(positions):
    enc = encoder(positions)
    ids = torch.tensor([[3, 4, 5, 6]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        out = enc(ids, mask).last_hidden_state
        swapped = enc(ids[:, [1, 0, 2, 3]], mask).last_hidden_state
    assert (out.mean(1) - swapped.mean(1)).abs().max() > 1e-4  # not a bag of words
    learned = [n for n, _ in enc.named_parameters() if n.startswith("position")]
    assert learned == (["position.weight"] if positions == "learned" else [])
    assert "position_table" not in enc.state_dict()  # the fixed table is rebuilt, not saved


def test_longer_than_max_length_is_refused_naming_the_key():
    enc = encoder(max_length=12)
    enc(*make_batch([12]))  # exactly max_length is fine
    with pytest.raises(ValueError, match=r"13 tokens but model.encoder.max_length=12"):
        enc(*make_batch([13, 2]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"d_model": 10, "num_heads": 4},
            r"model.encoder.d_model=10 is not divisible by model.encoder.num_heads=4",
        ),
        ({"d_model": 0}, r"model.encoder.d_model=0: must be >= 1"),
        ({"num_heads": 0}, r"model.encoder.num_heads=0: must be >= 1"),
        ({"num_layers": 0}, r"model.encoder.num_layers=0: must be >= 1"),
        ({"ffn_dim": 0}, r"model.encoder.ffn_dim=0: must be >= 1"),
        ({"max_length": 0}, r"model.encoder.max_length=0: must be >= 1"),
        ({"positions": "rotary"}, r"model.encoder.positions='rotary'"),
        ({"dropout": 1.0}, r"model.encoder.dropout=1.0"),
    ],
)
def test_bad_sizes_are_refused_naming_the_key(kwargs, match):
    args = {"d_model": 16, "num_heads": 4, "num_layers": 1, "ffn_dim": 32, **kwargs}
    with pytest.raises(ValueError, match=match):
        TransformerEncoder(V, 0, **args)


def test_lengths_are_accepted_and_change_nothing():
    """The encoder contract: every forward takes the collator's CPU `lengths`; this one only needs the mask."""
    lengths = torch.tensor([5, 2, 1])
    ids, mask = make_batch(lengths.tolist())
    enc = encoder()
    with torch.no_grad():
        assert torch.equal(
            enc(ids, mask, lengths=lengths).last_hidden_state, enc(ids, mask).last_hidden_state
        )


@pytest.mark.slow  # a real training (about a minute on 2 cores)
def test_transformer_experiment_solves_the_embedded_data(tmp_path):
    from seqlab.train import run
    from tests.conftest import compose_cfg

    summary = run(
        compose_cfg("+experiment=transformer", "callbacks.rich_progress_bar=null", output_dir=tmp_path)
    )
    assert summary["test"]["test/acc"] >= 0.95, summary


@pytest.mark.slow  # a real training
def test_transformer_sst2_recipe_trains_on_the_embedded_data(tmp_path):
    """The SST-2 recipe's model and optimizer, on the embedded data instead of the SST-2 files."""
    from seqlab.train import run
    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        "+experiment=transformer_sst2",
        "data=negation",
        "trainer.max_epochs=3",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    assert cfg.data._target_.endswith("TextClassificationDataModule") and cfg.model.encoder.d_model == 128
    summary = run(cfg)
    assert summary["test"]["test/acc"] >= TRANSFORMER_SST2_RECIPE_FLOOR, summary


@pytest.mark.slow  # a real training
def test_transformer_wikitext2_recipe_learns_a_predictable_corpus(tmp_path):
    """The WikiText-2 recipe (causal Transformer, adaptive softmax off for a 9-word vocabulary) on a corpus of two
    alternating sentences: a causal model that reads its window learns it, so the perplexity falls far below
    the 9 of a uniform guess."""
    from seqlab.train import run
    from tests.conftest import compose_cfg

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the rug\n" * 60)
    cfg = compose_cfg(
        "+experiment=transformer_wikitext2",
        f"data.source.data_files.train={corpus}",
        "data.source.data_files.validation=null",
        "data.source.data_files.test=null",
        "test=false",
        "data.bptt=8",
        "data.batch_size=4",
        "data.eval_batch_size=2",
        "model.adaptive_softmax_cutoffs=null",
        "model.encoder.d_model=32",
        "model.encoder.ffn_dim=64",
        "model.encoder.dropout=0.0",
        "model.dropout=0.0",
        "trainer.max_epochs=15",
        "model.optimizer.lr=0.003",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path / "run",
    )
    assert cfg.model.encoder.causal is True
    summary = run(cfg)  # (no test files: the validation split is carved from the corpus)
    assert summary["monitor"] == "val/ppl" and summary["best_score"] < TRANSFORMER_LM_PPL_CEILING, summary

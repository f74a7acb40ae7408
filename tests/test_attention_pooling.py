"""Attention pooling (``model.pooling=attention``): masking, padding invariance, heads, empty rows, the task,
predictions with per-token weights (`seqlab.load`, `seqlab predict`), checkpoints, export, the experiment."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

import seqlab
from seqlab.cli import main as cli_main
from seqlab.models.attention_pooling import AttentionPooling
from seqlab.models.encoders.cnn import CNNEncoder
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.models.encoders.transformer import TransformerEncoder
from seqlab.models.pooling import Pooler
from seqlab.tasks.classification import TextClassificationTask
from tests.conftest import compose_cfg

OPT = functools.partial(torch.optim.Adam)
# Stated in README: `train +experiment=lstm_attention` reaches this test accuracy on the embedded data
# (measured: 0.999 test accuracy; 2 epochs here).
LSTM_ATTENTION_ACC_FLOOR = 0.95
LENGTHS = torch.tensor([5, 2, 7, 1])
T = 7


def mask_of(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)


def pooler(hidden_size: int = 8, heads: int = 1, seed: int = 0) -> Pooler:
    """An attention Pooler with random (not zero) queries and keys: weights far from uniform."""
    torch.manual_seed(seed)
    p = Pooler("attention", hidden_size=hidden_size, attention_heads=heads)
    torch.nn.init.normal_(p.attention.query, std=3.0)
    return p


# ---- the module ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_padded_weights_are_exactly_zero_and_real_weights_sum_to_one(heads):
    p = pooler(8, heads)
    mask = mask_of(LENGTHS, T)
    hidden = torch.randn(len(LENGTHS), T, 8) * 5  # padding holds large values, not the zeros encoders emit
    with torch.no_grad():
        _, weights = p.pool(hidden, mask)
    assert weights.shape == (len(LENGTHS), heads, T)
    pad = (mask == 0).unsqueeze(1).expand_as(weights)
    assert pad.any() and (weights[pad] == 0.0).all()  # exactly, not approximately
    assert (weights[~pad] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(LENGTHS), heads), atol=1e-6, rtol=0)
    # Not a trivially uniform weighting: the rows of length 5 and 7 put clearly more weight on some tokens.
    assert weights[0, :, :5].max() > 0.3 and weights[2, :, :7].max() > 0.3


@pytest.mark.parametrize("garbage", ["random", "inf", "nan"])
def test_pooled_row_is_the_same_padded_to_t_or_t_plus_5_with_garbage(garbage):
    p = pooler(8, heads=2)
    mask = mask_of(LENGTHS, T)
    hidden = torch.randn(len(LENGTHS), T, 8) * mask.unsqueeze(-1)  # zeros at padding, as encoders emit
    fill = {"random": torch.randn(len(LENGTHS), 5, 8) * 1e3, "inf": torch.full((4, 5, 8), float("inf"))}
    fill["nan"] = torch.full((4, 5, 8), float("nan"))
    longer = torch.cat([hidden, fill[garbage]], dim=1)  # (B, T + 5, H)
    # ... and garbage in every row's own padding too (the positions after each row's length)
    longer[:, :T] = torch.where(mask.unsqueeze(-1).bool(), hidden, fill[garbage][:, :1].expand(-1, T, -1))
    with torch.no_grad():
        pooled, weights = p.pool(hidden, mask)
        pooled5, weights5 = p.pool(longer, mask_of(LENGTHS, T + 5))
    assert not pooled5.isnan().any()
    torch.testing.assert_close(pooled5, pooled, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights5[..., :T], weights, atol=1e-6, rtol=0)
    assert (weights5[..., T:] == 0.0).all()


def test_heads_pool_their_own_slice_and_concatenate():
    B, H, heads = len(LENGTHS), 12, 3
    p = pooler(H, heads)
    mask = mask_of(LENGTHS, T)
    hidden = torch.randn(B, T, H) * mask.unsqueeze(-1)
    with torch.no_grad():
        pooled, weights = p.pool(hidden, mask)
    assert pooled.shape == (B, H) and weights.shape == (B, heads, T)
    d = H // heads
    by_hand = torch.cat(
        [torch.einsum("bt,btd->bd", weights[:, h], hidden[..., h * d : (h + 1) * d]) for h in range(heads)],
        -1,
    )
    torch.testing.assert_close(pooled, by_hand, atol=1e-6, rtol=0)
    assert not torch.allclose(weights[:, 0], weights[:, 1])  # each head has its own query
    assert torch.equal(p(hidden, mask), pooled)  # forward is pool's vector


@pytest.mark.parametrize(
    "heads,message", [(3, "model.attention_heads=3: must divide"), (0, "model.attention_heads=0")]
)
def test_heads_that_do_not_divide_the_size_are_refused_naming_the_key(heads, message):
    with pytest.raises(ValueError, match=message) as info:
        Pooler("attention", hidden_size=8, attention_heads=heads)
    assert "\n" not in str(info.value)
    # Through the task: the encoder's output size (a BiLSTM of 2 x 5) is what must divide.
    with pytest.raises(
        ValueError, match=r"model.attention_heads=4: must divide the encoder's output size 10"
    ):
        TextClassificationTask(
            RNNEncoder(20, 0, 4, 5, bidirectional=True), 2, OPT, pooling="attention", attention_heads=4
        )


def test_a_row_of_length_zero_pools_to_zeros_without_nan():
    """Decided: a row with no real position gets zero weights and a zero vector, and no NaN gradient."""
    p = pooler(8, heads=2)
    lengths = torch.tensor([3, 0, 5])
    mask = mask_of(lengths, 5)
    hidden = torch.randn(3, 5, 8, requires_grad=True)
    with torch.autograd.detect_anomaly():  # no NaN anywhere, not even one masked away afterwards
        pooled, weights = p.pool(hidden, mask)
        assert torch.equal(pooled[1], torch.zeros(8)) and torch.equal(weights[1], torch.zeros(2, 5))
        pooled.pow(2).sum().backward()
    grads = [hidden.grad, *(q.grad for q in p.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # The other rows are what they are without the empty one.
    with torch.no_grad():
        alone, _ = p.pool(hidden[[0, 2]], mask[[0, 2]])
    torch.testing.assert_close(pooled[[0, 2]].detach(), alone, atol=1e-6, rtol=0)


def test_fresh_queries_start_as_mean_pooling():
    torch.manual_seed(0)
    p = Pooler("attention", hidden_size=6, attention_heads=2)  # zero queries, as built
    mask = mask_of(LENGTHS, T)
    hidden = torch.randn(len(LENGTHS), T, 6) * mask.unsqueeze(-1)
    with torch.no_grad():
        torch.testing.assert_close(p(hidden, mask), Pooler("mean")(hidden, mask), atol=1e-6, rtol=0)
    assert isinstance(p.attention, AttentionPooling) and Pooler("mean").attention is None


# ---- the task --------------------------------------------------------------------------------------------

ENCODERS = {
    "bilstm": lambda: RNNEncoder(20, 0, embed_dim=6, hidden_size=4, bidirectional=True),
    "cnn": lambda: CNNEncoder(20, 0, embed_dim=6, hidden_size=4, kernel_sizes=(3,)),
    "transformer": lambda: TransformerEncoder(
        20, 0, d_model=8, num_heads=2, num_layers=1, ffn_dim=16, max_length=32
    ),
}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_task_logits_ignore_padding_length_and_values(name):
    torch.manual_seed(0)
    task = TextClassificationTask(ENCODERS[name](), 3, OPT, pooling="attention", attention_heads=2).eval()
    torch.nn.init.normal_(task.pooler.attention.query, std=3.0)
    mask = mask_of(LENGTHS, T)
    ids = torch.randint(1, 20, (len(LENGTHS), T)).masked_fill(mask == 0, 0)
    longer = torch.cat(
        [ids.masked_fill(mask == 0, 7), torch.full((len(LENGTHS), 5), 9)], 1
    )  # real ids at padding
    with torch.no_grad():
        logits = task(ids, mask, lengths=LENGTHS)
        weights = task.last_attention
        logits5 = task(longer, mask_of(LENGTHS, T + 5), lengths=LENGTHS)
    torch.testing.assert_close(logits5, logits, atol=1e-6, rtol=0)
    assert weights.shape == (len(LENGTHS), 2, T) and (task.last_attention[..., T:] == 0.0).all()
    torch.testing.assert_close(task.last_attention[..., :T], weights, atol=1e-6, rtol=0)
    probs, attention = task.predict_with_attention({"input_ids": ids, "attention_mask": mask})
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(LENGTHS)))
    assert torch.equal(attention, weights)


def test_other_poolings_have_no_attention():
    task = TextClassificationTask(ENCODERS["cnn"](), 3, OPT, pooling="max").eval()
    mask = mask_of(LENGTHS, T)
    _, attention = task.predict_with_attention(
        {"input_ids": torch.ones(4, T, dtype=torch.long), "attention_mask": mask}
    )
    assert attention is None and "pooler.attention.query" not in task.state_dict()


def test_hf_encoder_with_attention_pooling(tiny_bert):
    from seqlab.models.encoders.hf import HFEncoder

    task = TextClassificationTask(
        HFEncoder(str(tiny_bert)), 2, OPT, pooling="attention", attention_heads=4
    ).eval()
    mask = mask_of(torch.tensor([6, 3]), 6)
    ids = torch.randint(5, 100, (2, 6)).masked_fill(mask == 0, 0)
    with torch.no_grad():
        logits = task(ids, mask)
    assert logits.shape == (2, 2) and task.last_attention.shape == (2, 4, 6)
    assert (task.last_attention[1, :, 3:] == 0.0).all()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_with_attention_pooling_equals_eager_on_unseen_shapes(fmt, tmp_path):
    from seqlab.export.onnx import eager_outputs, example_inputs, max_abs_diff

    torch.manual_seed(0)
    task = TextClassificationTask(
        RNNEncoder(40, 0, embed_dim=8, hidden_size=6, num_layers=2, bidirectional=True),
        3,
        OPT,
        pooling="attention",
        attention_heads=3,
    ).eval()
    torch.nn.init.normal_(task.pooler.attention.query, std=3.0)
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
        from seqlab.export.onnx import export_onnx, run_onnx

        path = tmp_path / "model.onnx"
        assert export_onnx(task, path) <= 1e-6
        exported = functools.partial(run_onnx, path)
    else:
        from seqlab.export.torchscript import export_torchscript

        path = tmp_path / "model.pt"
        assert export_torchscript(task, path) <= 1e-6
        loaded = torch.jit.load(str(path))
        exported = lambda inputs: loaded(*inputs.values())  # noqa: E731
    for seed, lengths in enumerate([(9, 4, 1, 2), (1,), (3, 3)]):
        inputs = example_inputs(task, lengths, seed=seed)
        with torch.no_grad():
            got = exported(inputs)
        assert got.shape == (len(lengths), 3)
        assert max_abs_diff(got, eager_outputs(task, inputs)) <= 1e-5, lengths


def test_finetune_pooling_flag_accepts_attention(tmp_path):
    from seqlab.finetune import to_overrides

    (tmp_path / "train.csv").write_text("sentence,label\ngood,1\nbad,0\n")
    argv = ["--model_name_or_path", "some/bert", "--train_file", str(tmp_path / "train.csv")]
    argv += ["--output_dir", str(tmp_path / "out"), "--do_train", "--pooling", "attention"]
    assert "model.pooling=attention" in to_overrides(argv)


# ---- trained: the experiment, predictions, checkpoints ------------------------------------------------


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory) -> dict:
    """The lstm_attention experiment on the embedded NegationSentiment data, 2 epochs (about 10 s)."""
    from seqlab.train import run

    out = tmp_path_factory.mktemp("lstm_attention")
    cfg = compose_cfg(
        "+experiment=lstm_attention",
        "trainer.max_epochs=2",
        "callbacks.rich_progress_bar=null",
        output_dir=out,
    )
    assert cfg.model.pooling == "attention" and cfg.model.attention_heads == 1
    return run(cfg)


def test_lstm_attention_experiment_trains_past_its_floor(attention_run):
    assert attention_run["test"]["test/acc"] >= LSTM_ATTENTION_ACC_FLOOR, attention_run["test"]


def test_experiment_with_heads_that_do_not_divide_is_one_clear_error(tmp_path):
    from hydra.utils import instantiate

    cfg = compose_cfg("+experiment=lstm_attention", "model.attention_heads=3", output_dir=tmp_path)
    cfg.model.num_labels, cfg.model.labels = 2, ["negative", "positive"]
    cfg.model.encoder.vocab_size, cfg.model.encoder.pad_token_id = 10, 0
    with pytest.raises(Exception, match="model.attention_heads=3: must divide the encoder's output size 64"):
        instantiate(cfg.model)


def test_predictor_returns_per_token_weights_aligned_with_the_text(attention_run):
    p = seqlab.load(attention_run["best_model_path"])
    texts = [
        "the plot was not good but the cast was superb",
        "the film was bad",
        "xyzzy the ending felt good",
    ]
    out = p.predict(texts)
    assert [r["label"] for r in out] == ["positive", "negative", "positive"]
    for text, r in zip(texts, out, strict=True):
        tokens = [t for t, _ in r["attention"]]
        expected = ["<unk>" if w == "xyzzy" else w for w in text.split()]  # what the model read
        assert tokens == expected
        weights = [w for _, w in r["attention"]]
        assert all(w > 0 for w in weights) and abs(sum(weights) - 1) < 1e-5
    # The deciding sentiment word gets the most weight.
    assert max(out[1]["attention"], key=lambda tw: tw[1])[0] == "bad"
    # One at a time (no padding) gives the same weights as in a length-sorted padded batch.
    p.batch_size = 1
    for a, b in zip(out, p.predict(texts), strict=True):
        assert [t for t, _ in a["attention"]] == [t for t, _ in b["attention"]]
        assert [w for _, w in a["attention"]] == pytest.approx([w for _, w in b["attention"]], abs=1e-6)


def test_predict_command_writes_the_weights(attention_run, tmp_path):
    texts = ["the film was bad", "the plot was not good but the cast was superb"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    cli_main(
        [
            "predict",
            f"ckpt_path={attention_run['best_model_path']}",
            f"input={tmp_path / 'in.txt'}",
            f"output={out}",
        ]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    for text, r in zip(texts, rows, strict=True):
        assert [t for t, _ in r["attention"]] == text.split()
        assert abs(sum(w for _, w in r["attention"]) - 1) < 1e-5


def test_checkpoint_round_trip_under_weights_only(attention_run):
    from seqlab.checkpoint import load_task

    path = Path(attention_run["best_model_path"])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["pooling"] == "attention"
    query = ckpt["state_dict"]["pooler.attention.query"]
    assert query.shape == (1, 64) and query.abs().sum() > 0  # trained away from its zero start
    for task in (load_task(path), TextClassificationTask.load_from_checkpoint(path)):
        assert task.pooler.mode == "attention"
        state = task.state_dict()
        assert set(state) == set(ckpt["state_dict"])
        assert all(torch.equal(state[k], v) for k, v in ckpt["state_dict"].items())

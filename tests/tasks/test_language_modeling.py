"""LanguageModelTask: truncated BPTT state handling, whole-split perplexity, tied weights, learning."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from seqlab.data.language_modeling import LanguageModelDataModule
from seqlab.data.sources import HFSource
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.language_modeling import LanguageModelTask
from tests.conftest import SHARED_DATA, compose_cfg

V = 30
# Measured for test_lstm_wikitext2_experiment_on_a_slice; the ceilings leave a margin for other seeds/machines.
# Measured: best val/ppl 378.9, test/ppl 420.9 (seed 42, ~30 s on 2 shared cores); unigram level is ~1000.
VAL_PPL_CEILING = 500
TEST_PPL_CEILING = 550


@pytest.fixture(autouse=True)
def one_thread():
    """Small models on a shared 2-core machine: a second thread only adds contention (10-30x slower seen)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_task(
    vocab_size: int = V, *, cell: str = "lstm", hidden: int = 16, lr: float = 0.01, **kwargs
) -> LanguageModelTask:
    encoder = RNNEncoder(vocab_size, 0, embed_dim=hidden, hidden_size=hidden, num_layers=2, cell=cell)
    return LanguageModelTask(encoder, vocab_size, partial(torch.optim.Adam, lr=lr), **kwargs)


def window(ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T + 1) ids -> a batch predicting columns 1..T from 0..T-1."""
    return {"input_ids": ids[:, :-1], "attention_mask": torch.ones_like(ids[:, :-1]), "labels": ids[:, 1:]}


def text_datamodule(tmp_path: Path, text: str, **kwargs) -> LanguageModelDataModule:
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.txt").write_text(text, encoding="utf-8")
        files[split] = str(tmp_path / f"{split}.txt")
    dm = LanguageModelDataModule(
        HFSource("text", data_files=files, cache_dir=str(tmp_path / "cache")), **kwargs
    )
    dm.setup("fit")
    return dm


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


# ---- truncated BPTT -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_equals_one_pass_over_the_joined_windows(cell):
    torch.manual_seed(0)
    task = make_task(cell=cell).eval()
    ids = torch.randint(1, V, (3, 12))
    mask = torch.ones_like(ids)
    whole, _ = task(ids, mask)  # (B, 12, V)
    first, state = task(ids[:, :7], mask[:, :7])
    second, _ = task(ids[:, 7:], mask[:, 7:], state)  # a shorter window, as the last one of a split
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_training_steps_carry_a_detached_state():
    torch.manual_seed(0)
    task = make_task()
    ids = torch.randint(1, V, (4, 16))
    loss1 = task.training_step(window(ids[:, :9]), 0)
    state = task._states["train"]
    assert all(s.grad_fn is None and not s.requires_grad for s in state)
    loss1.backward()  # frees batch 1's graph: batch 2 must not reach into it
    loss2 = task.training_step(window(ids[:, 8:]), 1)
    loss2.backward()  # would raise "backward through the graph a second time" if the state were not detached

    # batch 2's loss is the loss of the joined sequence's second half: the state really was carried
    with torch.no_grad():
        log_probs, _ = task(ids[:, :-1], torch.ones_like(ids[:, :-1]))
        expected = F.nll_loss(log_probs[:, 8:].flatten(0, 1), ids[:, 9:].flatten())
    torch.testing.assert_close(loss2.detach(), expected, atol=1e-6, rtol=0)


class RecordState(L.Callback):
    def __init__(self):
        self.seen: list[tuple[str, int, int, bool]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen.append(("train", trainer.current_epoch, batch_idx, module._states["train"] is None))

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self.seen.append(("val", trainer.current_epoch, batch_idx, module._states["val"] is None))


def test_state_is_reset_at_every_epoch_start_and_kept_per_stage(tmp_path):
    dm = text_datamodule(tmp_path, " a b c d e f g \n" * 30, batch_size=4, eval_batch_size=2, bptt=5)
    task = make_task(dm.dims["vocab_size"])
    record = RecordState()
    quiet_trainer(max_epochs=2, callbacks=[record]).fit(task, datamodule=dm)
    for stage, epoch, batch_idx, fresh in record.seen:
        assert fresh == (batch_idx == 0), (stage, epoch, batch_idx)
    assert {(s, e) for s, e, _, _ in record.seen} == {("train", 0), ("train", 1), ("val", 0), ("val", 1)}
    assert (
        task._states["train"][0].size(1) == 4 and task._states["val"][0].size(1) == 2
    )  # one state per stage


# ---- perplexity ------------------------------------------------------------------------------------------
def test_perplexity_is_exp_of_the_mean_token_loss_over_the_whole_split(tmp_path):
    text = "".join(f" w{i % 7} w{i % 11} w{i % 3} \n" for i in range(120))
    dm = text_datamodule(tmp_path, text, batch_size=4, eval_batch_size=3, bptt=10)
    torch.manual_seed(0)
    task = make_task(dm.dims["vocab_size"])
    windows = list(dm.val_dataloader())
    assert len({w["input_ids"].size(1) for w in windows}) == 2  # unequal batches: the last window is shorter

    loss_sum, count, state = 0.0, 0, None
    with torch.no_grad():
        for w in windows:
            log_probs, state = task(w["input_ids"], w["attention_mask"], state)
            loss_sum += F.nll_loss(log_probs.flatten(0, 1), w["labels"].flatten(), reduction="sum").item()
            count += w["labels"].numel()
    row_len = dm.streams["validation"].numel() // 3
    assert count == 3 * (row_len - 1)  # every token but each row's first is predicted once

    metrics = quiet_trainer().validate(task, datamodule=dm, verbose=False)[0]
    assert metrics["val/ppl"] == pytest.approx(math.exp(loss_sum / count), rel=1e-5)
    assert metrics["val/loss"] == pytest.approx(loss_sum / count, rel=1e-5)  # token-weighted, not per batch


# ---- output layer ----------------------------------------------------------------------------------------
def test_tied_output_layer_shares_the_embedding():
    task = make_task()
    assert task.head.weight is task.encoder.embedding.weight
    assert task.head.weight.data_ptr() == task.encoder.embedding.weight.data_ptr()
    untied = make_task(tie_weights=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(task) == V * 16


def test_invalid_output_layers_name_the_config_key():
    encoder = RNNEncoder(V, 0, embed_dim=8, hidden_size=16)
    opt = partial(torch.optim.Adam, lr=0.01)
    with pytest.raises(ValueError, match="model.encoder.hidden_size"):
        LanguageModelTask(encoder, V, opt, tie_weights=True)
    with pytest.raises(ValueError, match="model.tie_weights=false"):
        LanguageModelTask(encoder, V, opt, tie_weights=True, adaptive_softmax_cutoffs=[10])
    with pytest.raises(ValueError, match="model.adaptive_softmax_cutoffs"):
        LanguageModelTask(encoder, V, opt, tie_weights=False, adaptive_softmax_cutoffs=[20, 10])
    with pytest.raises(ValueError, match="model.adaptive_softmax_cutoffs"):
        LanguageModelTask(encoder, V, opt, tie_weights=False, adaptive_softmax_cutoffs=[V - 1])
    small = LanguageModelTask(
        encoder, V, opt, tie_weights=False, adaptive_softmax_cutoffs=[10, 2000]
    )  # a sliced vocab
    assert small.adaptive.cutoffs == [10, V]
    with pytest.raises(ValueError, match="bidirectional"):
        LanguageModelTask(RNNEncoder(V, 0, 8, 8, bidirectional=True), V, opt, tie_weights=False)


def test_loss_ignores_minus_100_labels():
    torch.manual_seed(0)
    for task in (make_task().eval(), make_task(tie_weights=False, adaptive_softmax_cutoffs=[5, 15]).eval()):
        ids = torch.randint(1, V, (2, 9))
        batch = window(ids)
        hidden = task.encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        labels = batch["labels"].clone()
        labels[:, 4:] = -100
        loss_sum, count = task.token_loss(hidden, labels)
        ref_sum, ref_count = task.token_loss(hidden[:, :4], batch["labels"][:, :4])
        assert int(count) == int(ref_count) == 8
        torch.testing.assert_close(loss_sum, ref_sum)


# ---- learning --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("adaptive", [False, True])
def test_overfits_a_repetitive_corpus(tmp_path, adaptive):
    text = " the cat sat on the mat . \n the dog lay on the rug . \n" * 40
    dm = text_datamodule(tmp_path, text, batch_size=4, eval_batch_size=4, bptt=8)
    torch.manual_seed(0)
    extra = {"tie_weights": False, "adaptive_softmax_cutoffs": [4, 8]} if adaptive else {}
    task = make_task(dm.dims["vocab_size"], hidden=32, lr=0.02, **extra)
    trainer = quiet_trainer(max_epochs=8, gradient_clip_val=1.0)
    trainer.fit(task, datamodule=dm)
    ppl = trainer.callback_metrics["val/ppl"].item()
    # the carried state knows which of the two sentences comes next, so the text is fully predictable
    # (measured: 1.004 full softmax, 1.007 adaptive); without carried state "the" would stay ambiguous
    assert ppl < 1.2, ppl


# ---- real data, through the experiment config -------------------------------------------------------------
@pytest.mark.skipif(
    not (SHARED_DATA / "wikitext-2" / "train.txt").is_file(), reason=f"no WikiText-2 under {SHARED_DATA}"
)
@pytest.mark.filterwarnings("ignore:.*LearningRateMonitor.*")
@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_lstm_wikitext2_experiment_on_a_slice(tmp_path):
    """The real recipe on ~200k train tokens (3500 lines), 1 epoch; eval on the first 800 lines (~40k tokens)."""
    from seqlab.train import run

    cfg = compose_cfg(
        "+experiment=lstm_wikitext2",
        "data.max_train_samples=3500",
        "data.max_eval_samples=800",
        "trainer.max_epochs=1",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    summary = run(cfg)
    assert summary["monitor"] == "val/ppl"
    assert summary["best_score"] < VAL_PPL_CEILING, summary
    assert summary["test"]["test/ppl"] < TEST_PPL_CEILING, summary


def test_a_non_causal_encoder_is_refused():
    """A CNN's output at t has read the words after t (padding='same'): it would see the word it predicts."""
    from seqlab.models.encoders.cnn import CNNEncoder

    with pytest.raises(ValueError, match=r"model.encoder \(CNNEncoder\) is not causal"):
        LanguageModelTask(CNNEncoder(30, embed_dim=8, hidden_size=8), 30, torch.optim.Adam, tie_weights=False)

"""`seqlab.train.run` in-process on the real configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqlab.train import run
from tests.conftest import compose_cfg

# Stated in README: word order matters on NegationSentiment, an order-blind model stays near chance.
BOW_ACC_CEILING = 0.65


@pytest.mark.filterwarnings("ignore:.*LearningRateMonitor.*")
def test_bag_of_words_cannot_solve_the_embedded_data(tmp_path):
    cfg = compose_cfg(
        "+experiment=bow", "trainer.max_epochs=4", "callbacks.rich_progress_bar=null", output_dir=tmp_path
    )
    summary = run(cfg)
    assert summary["test"]["test/acc"] < BOW_ACC_CEILING, summary
    assert (tmp_path / "summary.json").is_file()


def test_clipping_options_are_accepted_and_test_can_be_skipped(tmp_path):
    cfg = compose_cfg(
        "+experiment=gru",
        "debug=limit",
        "trainer.max_epochs=1",
        "trainer.gradient_clip_val=0.5",
        "trainer.gradient_clip_algorithm=value",
        "test=false",
        output_dir=tmp_path,
    )
    summary = run(cfg)
    assert summary["test"] == {}


def test_train_false_with_ckpt_path_evaluates_that_checkpoint(tmp_path):
    """Evaluating a saved model with train=false must use its weights, never freshly initialised ones."""
    quick = ["+experiment=lstm", "trainer.max_epochs=2", "callbacks.rich_progress_bar=null"]
    first = run(compose_cfg(*quick, output_dir=tmp_path / "first"))
    again = run(
        compose_cfg(
            *quick, "train=false", f"ckpt_path={first['best_model_path']}", output_dir=tmp_path / "again"
        )
    )
    assert again["eval_ckpt_path"] == first["best_model_path"]
    assert again["test"] == first["test"] and first["test"]["test/acc"] > 0.9


def test_monitor_of_train_span_metrics_needs_them_on(tmp_path):
    import pytest

    cfg = compose_cfg("+experiment=bilstm_conll", "monitor=train/f1", output_dir=tmp_path)
    import torch

    from seqlab.models.encoders.rnn import RNNEncoder
    from seqlab.tasks.tagging import SequenceTaggingTask
    from seqlab.train import check_monitor

    task = SequenceTaggingTask(
        RNNEncoder(10), num_labels=3, labels=["B-X", "I-X", "O"], optimizer=torch.optim.Adam
    )
    with pytest.raises(
        ValueError, match=r"monitor='train/f1': .* \(train span metrics need model.train_metrics=true\)"
    ):
        check_monitor(cfg.monitor, task)
    on = SequenceTaggingTask(
        RNNEncoder(10),
        num_labels=3,
        labels=["B-X", "I-X", "O"],
        optimizer=torch.optim.Adam,
        train_metrics=True,
    )
    check_monitor("train/f1", on)


def test_a_run_that_fails_before_any_metric_leaves_no_csv(tmp_path):
    """Nothing half-written: a failure in the first step (chars in the batch, none read) leaves no csv/ folder."""
    import pytest

    tiny = str(Path(__file__).parent / "fixtures" / "tiny.conll")
    cfg = compose_cfg(
        "+experiment=bilstm_conll",
        "model.encoder.char_encoder=null",
        *(f"data.source.data_files.{s}={tiny}" for s in ("train", "validation", "test")),
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    with pytest.raises(ValueError, match="reads no characters"):
        run(cfg)
    assert not (tmp_path / "csv").exists() and not list(tmp_path.glob("checkpoints/*.ckpt"))


@pytest.mark.parametrize("bucketing", ["true", "false"])
def test_bucketed_and_random_batches_both_reach_the_lstm_floor(bucketing, tmp_path):
    quick = ["+experiment=lstm", "trainer.max_epochs=2", "callbacks.rich_progress_bar=null"]
    summary = run(compose_cfg(*quick, f"data.bucketing={bucketing}", output_dir=tmp_path))
    assert summary["test"]["test/acc"] > 0.9, summary["test"]


def test_debug_overfit_runs_on_the_bucketed_loader(tmp_path):
    # Lightning rebuilds the train loader with a sequential sampler for trainer.overfit_batches.
    summary = run(
        compose_cfg("+experiment=lstm", "debug=overfit", "trainer.max_epochs=2", output_dir=tmp_path)
    )
    assert summary["train"]["global_step"] == 6  # 3 batches an epoch

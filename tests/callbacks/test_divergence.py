"""A diverging run stops at once with one line naming the step and the fix, and keeps no NaN checkpoint."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from seqlab.callbacks.divergence import DivergenceError, StopOnNonFiniteLoss
from seqlab.train import json_safe, run
from tests.conftest import compose_cfg


def test_non_finite_loss_stops_the_run_before_any_checkpoint(tmp_path):
    cfg = compose_cfg(
        "+experiment=bow",
        "model.optimizer.lr=1e20",
        "trainer.max_epochs=3",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    with pytest.raises(
        DivergenceError, match=r"the training loss is (nan|inf) at step \d+ .*model.optimizer.lr, now 1e\+20"
    ):
        run(cfg)
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))  # nothing of the poisoned weights was kept
    assert not (tmp_path / "summary.json").exists()


def test_summary_is_strict_json():
    summary = {"best_score": math.nan, "test": {"test/loss": math.inf, "test/acc": 0.5}, "x": [float("-inf")]}
    text = json.dumps(json_safe(summary), allow_nan=False)
    assert json.loads(text) == {"best_score": None, "test": {"test/loss": None, "test/acc": 0.5}, "x": [None]}


def fake_trainer(**kwargs):
    single = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)  # one process
    return SimpleNamespace(
        global_step=0,
        current_epoch=0,
        log_every_n_steps=5,
        optimizers=[],
        gradient_clip_val=None,
        strategy=single,
        **kwargs,
    )


def feed(callback, trainer, losses):
    """Steps 1, 2, ... with these losses; the step the run stopped at and the error, or (None, None)."""
    for i, value in enumerate(losses):
        trainer.global_step = i + 1
        try:
            callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(value)}, None, i)
        except DivergenceError as e:
            return trainer.global_step, str(e)
    return None, None


LOSSES = [1.0] * 6 + [math.nan] + [1.0] * 5  # NaN at step 7


def test_read_every_step_stops_at_the_step_that_diverged():
    step, message = feed(StopOnNonFiniteLoss(every_step=True), fake_trainer(), LOSSES)
    assert step == 7 and message.startswith("the training loss is nan at step 7 (epoch 0, batch 6)")
    assert "trainer.gradient_clip_val=1.0" in message


def test_device_side_check_is_read_at_logging_steps_only(monkeypatch):
    reads = []
    original = torch.Tensor.__bool__
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: reads.append(1) or original(t))
    callback = StopOnNonFiniteLoss(every_step=False)  # what a GPU run does
    step, message = feed(callback, fake_trainer(), LOSSES)
    assert step == 10 and reads == [1, 1]  # read at steps 5 and 10 only, no host read at the other steps
    assert message.startswith(
        "the training loss became NaN or infinite after step 5 and by step 10 (epoch 0)"
    )


def test_device_side_check_is_read_before_a_checkpoint_is_written():
    callback, trainer = StopOnNonFiniteLoss(every_step=False), fake_trainer()
    assert feed(callback, trainer, [1.0, math.inf, 1.0]) == (None, None)  # no logging step yet
    with pytest.raises(DivergenceError, match="after step 0 and by step 3"):
        callback.on_save_checkpoint(trainer, None, {})
    with pytest.raises(DivergenceError, match="after step 0 and by step 3"):
        callback.on_save_checkpoint(trainer, None, {})  # every later checkpoint is refused too
    callback.on_fit_start(trainer, None)  # a new fit starts clean
    callback.on_save_checkpoint(trainer, None, {})


def test_device_side_check_reads_once_per_step_under_gradient_accumulation(monkeypatch):
    reads = []
    original = torch.Tensor.__bool__
    callback, trainer = StopOnNonFiniteLoss(every_step=False), fake_trainer()
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: reads.append(trainer.global_step) or original(t))
    # 2 batches per optimizer step: global_step is 0, 1, 1, 2, 2, ... at each batch's end
    for batch in range(24):
        trainer.global_step = (batch + 1) // 2
        callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, None, batch)
    assert reads == [5, 10]


def test_ranks_agree_before_stopping():
    """Another rank's NaN stops this one at the same read (no rank left waiting in a collective)."""
    others_diverged = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: True)
    callback, trainer = StopOnNonFiniteLoss(every_step=False), fake_trainer()
    trainer.strategy = others_diverged
    step, message = feed(callback, trainer, [1.0] * 8)  # this rank's losses are all finite
    assert step == 5 and "became NaN or infinite after step 0 and by step 5" in message


def test_device_side_check_stops_a_real_run_before_any_checkpoint(tmp_path):
    cfg = compose_cfg(
        "+experiment=bow",
        "model.optimizer.lr=1e20",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=1000",  # read only before validation and checkpoints
        "callbacks.stop_on_non_finite_loss.every_step=false",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    with pytest.raises(
        DivergenceError, match=r"became NaN or infinite after step 0 and by step \d+ \(epoch 0\)"
    ):
        run(cfg)
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))

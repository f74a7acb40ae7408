"""A diverging run stops at once with one line naming the step and the fix, and keeps no NaN checkpoint."""

from __future__ import annotations

import json
import math

import pytest

from seqlab.callbacks.divergence import DivergenceError
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

"""A checkpoint alone rebuilds its task and its data vocabularies, for every task (weights_only loading)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from seqlab.checkpoint import data_state, load_task, read
from seqlab.train import run
from tests.conftest import compose_cfg

QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data.max_train_samples=200",
    "data.max_eval_samples=40",
    "callbacks.rich_progress_bar=null",
]


@pytest.mark.parametrize("experiment", ["lstm", "cnn", "bilstm_conll", "lstm_wikitext2"])
def test_checkpoint_rebuilds_task_and_data(experiment, request, tmp_path):
    if experiment in ("bilstm_conll", "lstm_wikitext2"):
        request.getfixturevalue("shared_data")  # skips when the real data is absent
    cfg = compose_cfg(f"+experiment={experiment}", *QUICK, output_dir=tmp_path)
    summary = run(cfg)
    ckpt = Path(summary["best_model_path"])
    model = load_task(ckpt)
    saved = read(ckpt)["state_dict"]
    assert model.state_dict().keys() == saved.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())

    # The restored DataModule encodes the data exactly as the one that trained, and the model reads its batches.
    dm = instantiate(cfg.data)
    dm.load_state_dict(data_state(ckpt))
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        loss = model.training_step(batch, 0)
    assert torch.isfinite(loss)

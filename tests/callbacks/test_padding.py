"""PaddingShare logs the share of padded positions of each epoch's batches."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from seqlab.callbacks.padding import PaddingShare
from seqlab.data.collate import PadCollator
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask


def test_padding_share_per_epoch(tmp_path):
    collate = PadCollator()
    batches = [  # 4 real of 6 positions, then 4 of 4: 2 padded of 10 (and 3 of 3 for validation: none padded)
        collate([{"input_ids": [3, 4, 5], "labels": 0}, {"input_ids": [6], "labels": 1}]),
        collate([{"input_ids": [7, 8], "labels": 1}, {"input_ids": [9, 3], "labels": 0}]),
    ]
    val = [collate([{"input_ids": [3, 4, 5], "labels": 0}])]
    torch.manual_seed(0)
    model = TextClassificationTask(
        RNNEncoder(12, embed_dim=4, hidden_size=4),
        num_labels=2,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[PaddingShare()],
        num_sanity_val_steps=1,
    )
    trainer.fit(model, DataLoader(batches, batch_size=None), DataLoader(val, batch_size=None))
    logged = trainer.callback_metrics
    assert logged["train/padding_share"].item() == pytest.approx(
        0.2
    )  # the second epoch alone, not 0.2 summed
    assert logged["val/padding_share"].item() == 0.0


def test_yaml_builds_the_callback():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    conf = OmegaConf.load("conf/callbacks/padding_share.yaml")
    assert isinstance(instantiate(conf.padding_share), PaddingShare)

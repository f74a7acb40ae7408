"""StageLoss: the logged losses are the weighted means of the batch losses over each logging window and epoch."""

from __future__ import annotations

import csv
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.stage_loss import WeightedMean


class Loader:
    """Fixed batches as one loader (Lightning reads a plain list as a list of loaders)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        lengths = torch.randint(1, 6, (n,), generator=g)
        mask = (torch.arange(5)[None, :] < lengths[:, None]).long()
        ids = torch.randint(1, 12, (n, 5), generator=g) * mask
        out.append(
            {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (n,), generator=g)}
        )
    return out


class BatchLosses(L.Callback):
    def __init__(self):
        self.train, self.val = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        # Lightning hands callbacks the loss divided by accumulate_grad_batches (what it back-propagates)
        self.train.append((loss.item() * trainer.accumulate_grad_batches, len(batch["labels"])))


def mean(pairs):
    return sum(loss * n for loss, n in pairs) / sum(n for _, n in pairs)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_step_and_epoch_losses_are_weighted_means_of_the_batch_losses(tmp_path, accumulate):
    torch.manual_seed(0)
    task = TextClassificationTask(
        RNNEncoder(12, embed_dim=8, hidden_size=8), num_labels=3, optimizer=partial(torch.optim.SGD, lr=0.1)
    )
    train, val = batches([4, 1, 3, 4, 2, 4, 3, 1]), batches([4, 4, 1], seed=1)
    seen = BatchLosses()
    trainer = L.Trainer(
        max_epochs=1,
        log_every_n_steps=2,
        accumulate_grad_batches=accumulate,
        logger=CSVLogger(tmp_path, name="", version=""),
        callbacks=[seen],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, train_dataloaders=Loader(train), val_dataloaders=Loader(val))
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    steps = [float(r["train/loss_step"]) for r in rows if r.get("train/loss_step")]
    window = 2 * accumulate  # batches per logging window: 2 optimizer steps of `accumulate` batches
    expected = [mean(seen.train[i : i + window]) for i in range(0, len(train), window)]
    assert steps == pytest.approx(expected, rel=1e-6)
    epoch = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert epoch == pytest.approx([mean(seen.train)], rel=1e-6)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(mean(seen.train), rel=1e-6)

    task.eval()
    with torch.no_grad():  # the trained weights, as validation saw them
        val_losses = [(F.cross_entropy(task.logits(b), b["labels"]).item(), len(b["labels"])) for b in val]
    logged = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert logged == pytest.approx(
        [mean(val_losses)], rel=1e-5
    )  # 4, 4, 1 rows: not the mean of 3 batch means


def test_weighted_mean_keeps_its_weights():
    m = WeightedMean()
    m.update(torch.tensor(1.0), 3)
    m.update(torch.tensor(2.0), torch.tensor(1))
    assert m.compute().item() == pytest.approx(1.25)

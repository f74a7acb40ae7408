"""Evaluation loaders go longest first (less padding); metrics are those of the row order, and
predictions.jsonl comes back in the rows' order."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from seqlab.data.classification import TextClassificationDataModule
from seqlab.data.sources import HFSource
from seqlab.data.synthetic import NegationSentimentSource
from seqlab.data.tagging import TokenClassificationDataModule
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.tagging import SequenceTaggingTask
from seqlab.train import write_predictions

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny.conll")  # IOB1, invented sentences


def classification():
    dm = TextClassificationDataModule(
        NegationSentimentSource(64, 40, 40, seed=0), batch_size=8, eval_batch_size=8
    )
    dm.setup("fit")
    torch.manual_seed(0)
    encoder = RNNEncoder(dm.dims["vocab_size"], embed_dim=8, hidden_size=8, bidirectional=True)
    model = TextClassificationTask(encoder, dm.dims["num_labels"], optimizer=torch.optim.Adam, pooling="last")
    return dm, model


def tagging():
    files = {"train": TINY, "validation": TINY, "test": TINY}
    source = HFSource(
        "conll", data_files=files, reader_kwargs={"columns": ["tokens", "pos", "chunk", "tags"]}
    )
    dm = TokenClassificationDataModule(source, tag_scheme="IOB1", batch_size=2, eval_batch_size=2)
    dm.setup("fit")
    torch.manual_seed(0)
    encoder = RNNEncoder(dm.dims["vocab_size"], embed_dim=8, hidden_size=8, bidirectional=True)
    model = SequenceTaggingTask(
        encoder,
        dm.dims["num_labels"],
        dm.dims["labels"],
        optimizer=torch.optim.Adam,
        tag_scheme=dm.dims["tag_scheme"],
        use_crf=True,
    )
    return dm, model


def trainer(tmp_path) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )


def in_row_order(dm, split: str) -> DataLoader:
    return DataLoader(dm.split(split), batch_size=dm.eval_batch_size, collate_fn=dm.collate)


@pytest.mark.parametrize("make", [classification, tagging])
def test_sorted_evaluation_gives_the_metrics_of_the_row_order(make, tmp_path):
    dm, model = make()
    for split in ("validation", "test"):
        order = dm.eval_order(split)
        lengths = [len(dm.split(split)[i]["input_ids"]) for i in order]
        assert lengths == sorted(lengths, reverse=True) and order != sorted(order)  # sorted, and not already
    t = trainer(tmp_path)
    for run, loader, split in (
        (t.validate, dm.val_dataloader, "validation"),
        (t.test, dm.test_dataloader, "test"),
    ):
        (sorted_,), (plain,) = run(model, loader()), run(model, in_row_order(dm, split))
        assert sorted_.keys() == plain.keys()
        for k in sorted_:
            assert sorted_[k] == pytest.approx(plain[k], rel=1e-6, abs=1e-7), k


@pytest.mark.parametrize("make", [classification, tagging])
def test_predictions_come_back_in_row_order(make, tmp_path):
    dm, model = make()
    t = trainer(tmp_path)
    path = write_predictions(t, model, dm, str(tmp_path))
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    outputs = t.predict(model, in_row_order(dm, "test"))
    labels = dm.label_vocab.labels
    if make is classification:
        expected = [labels[i] for probs in outputs for i in probs.argmax(-1).tolist()]
    else:
        expected = [[labels[i] for i in row if i != -100] for ids in outputs for row in ids.tolist()]
    assert [r["prediction"] for r in rows] == expected
    assert len(rows) == len(dm.split("test"))

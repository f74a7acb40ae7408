from __future__ import annotations

import lightning as L
import pytest
import torch

from seqlab.callbacks.vectors import PretrainedVectors
from seqlab.data.classification import TextClassificationDataModule
from seqlab.data.synthetic import NEGATIVE, POSITIVE, NegationSentimentSource
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask


@pytest.mark.parametrize("freeze", [True, False])
def test_vectors_loaded_at_fit_start_and_frozen_on_request(freeze, tmp_path):
    words = POSITIVE + NEGATIVE
    path = tmp_path / "vec.txt"
    path.write_text(
        "".join(f"{w} {' '.join(str(float(i + j)) for j in range(8))}\n" for i, w in enumerate(words))
    )
    dm = TextClassificationDataModule(NegationSentimentSource(200, 50, 50), batch_size=32)
    dm.setup("fit")
    model = TextClassificationTask(
        RNNEncoder(vocab_size=dm.dims["vocab_size"], embed_dim=8, hidden_size=8),
        num_labels=2,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
    )
    cb = PretrainedVectors(str(path), freeze=freeze)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    assert cb.coverage.found == len(words)
    row = model.encoder.embedding.weight[dm.tokenizer.token_to_id("good")].detach()
    expected = torch.arange(8.0) + words.index("good")
    assert torch.equal(row, expected) == freeze  # unchanged only when frozen
    assert model.encoder.embedding.weight.requires_grad is not freeze

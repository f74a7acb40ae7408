"""PretrainedVectors: fill the encoder's word embedding from a GloVe / word2vec file when fitting starts."""

from __future__ import annotations

import logging

from lightning import Callback, LightningModule, Trainer

from seqlab.models.vectors import load_vectors

log = logging.getLogger(__name__)


class PretrainedVectors(Callback):
    """Runs in `setup("fit")`, after the data has its vocabulary and before the optimizer exists, so a frozen
    embedding is left out of the optimizer. When fitting resumes from a checkpoint, the checkpoint's weights
    are restored afterwards and win.

    Needs ``trainer.datamodule.tokenizer.get_vocab()`` and ``pl_module.encoder.embedding`` (every seqlab
    word-level DataModule and encoder has them).
    Args: path: a .txt / .vec file, optionally .gz. freeze: keep the vectors fixed during training.
    """

    def __init__(self, path: str, freeze: bool = False):
        self.path = path
        self.freeze = freeze
        self.coverage = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or self.coverage is not None:
            return
        tokenizer = getattr(trainer.datamodule, "tokenizer", None)
        embedding = getattr(getattr(pl_module, "encoder", None), "embedding", None)
        if tokenizer is None or embedding is None:
            raise ValueError(
                "callbacks.pretrained_vectors needs a word-level tokenizer and an encoder with an `embedding`"
            )
        self.coverage = load_vectors(self.path, tokenizer.get_vocab(), embedding)
        embedding.weight.requires_grad_(not self.freeze)
        log.info("word embedding %s", "frozen" if self.freeze else "fine-tuned")

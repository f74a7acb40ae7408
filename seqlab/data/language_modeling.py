"""LanguageModelDataModule: a corpus -> one token stream per split -> contiguous BPTT windows.

Each split is read as lines (``HFSource(path="text")`` gives one row a line, empty lines as ``" "``), every line
is tokenized and gets an ``<eos>``, and the lines are joined into one stream of ids. The stream is cut into
``batch_size`` contiguous rows (`batchify`, as in pytorch/examples' word_language_model), and batch ``i`` is the
``i``-th window of ``bptt`` columns, so row ``r`` of batch ``i + 1`` continues row ``r`` of batch ``i``: the
task carries its recurrent state from one batch to the next. Batches are never shuffled.

On WikiText-2 (``pre_tokenizer=whitespace_split``, ``lowercase=false``, ``add_eos=true``) the streams have the
official sizes: 2,088,628 / 217,646 / 245,569 tokens. Ids are in frequency order (the `tokenizers` WordLevel
trainer sorts by count, after ``<pad>`` and ``<eos>``), which is what adaptive-softmax cutoffs assume.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seqlab.data.base import SeqDataModule, column, require_columns
from seqlab.data.encoding import tokenize_split
from seqlab.data.tokenizers import FitWordTokenizer, WordTokenizer, tokenizer_from_state

log = logging.getLogger(__name__)

EOS = "<eos>"


def _encode(batch, *, tokenizer: WordTokenizer, text_column: str, eos_id: int | None):
    ids = tokenizer.encode_batch(batch[text_column])
    if (
        eos_id is not None
    ):  # every line, empty ones included: that is how the official WikiText counts are made
        ids = [s + [eos_id] for s in ids]
    return {"input_ids": ids}


def batchify(stream: Tensor, batch_size: int) -> Tensor:
    """(N,) -> (B, N // B): row r is the r-th contiguous chunk of the stream; the last N % B tokens are dropped."""
    n = stream.numel() // batch_size
    if n < 2:
        raise ValueError(
            f"a stream of {stream.numel()} tokens is too short for {batch_size} rows of at least 2 tokens"
        )
    return stream[: n * batch_size].view(batch_size, n)  # (B, N)


class BPTTWindows(Dataset):
    """Window ``i`` of a batchified stream: ``input_ids`` = columns ``[i*bptt, i*bptt + T)``, ``labels`` = the same
    shifted by one, ``T = bptt`` except in the last window (shorter, so that every token but the first of each row
    is predicted exactly once). Every item is already a whole batch: load it with ``DataLoader(batch_size=None)``.
    """

    def __init__(self, data: Tensor, bptt: int):
        if bptt < 1:
            raise ValueError(f"data.bptt={bptt}: must be >= 1")
        self.data = data  # (B, N)
        self.bptt = bptt

    def __len__(self) -> int:
        return math.ceil((self.data.size(1) - 1) / self.bptt)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.bptt
        T = min(self.bptt, self.data.size(1) - 1 - start)
        input_ids = self.data[:, start : start + T]  # (B, T)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "labels": self.data[:, start + 1 : start + 1 + T],  # (B, T): the next token of each input
        }


def bptt_windows(
    stream: Tensor, batch_size: int, bptt: int, rank: int = 0, world_size: int = 1
) -> BPTTWindows:
    """This rank's windows: the stream is cut into ``world_size * batch_size`` rows and each rank reads its own
    ``batch_size`` of them, so every rank has the same number of windows and no token is read twice."""
    rows = batchify(stream, batch_size * world_size)  # (W*B, N)
    return BPTTWindows(rows[rank * batch_size : (rank + 1) * batch_size], bptt)


class LanguageModelDataModule(SeqDataModule):
    """Word-level language-modelling data: one token stream per split, read in contiguous BPTT windows.

    Args:
        source: anything with ``load() -> DatasetDict``, one row a line (``HFSource(path="text")``).
        text_column: the column holding the text.
        tokenizer: a `FitWordTokenizer` (``data/tokenizer=word``) fitted on train; its ``pre_tokenizer=whitespace_split``
            keeps an already tokenized corpus (WikiText) exactly as written. Default: case kept, whitespace_split.
        add_eos: append ``<eos>`` to every line, empty lines included (the official WikiText token counts).
        bptt: window length T (truncated back-propagation through time).
        batch_size / eval_batch_size: rows B of the train / validation and test streams.
        val_fraction: when the source has no validation split, the last fraction of train's lines (in order:
            shuffled lines would break the documents a language model reads across).
        max_train_samples, max_eval_samples: keep only the first N lines (quick runs, tests).
        num_proc: processes for tokenization (`datasets.map`, cached by the datasets library).
        num_workers, pin_memory, persistent_workers: DataLoader options.
    """

    def __init__(
        self,
        source: Any,
        text_column: str = "text",
        tokenizer: FitWordTokenizer | None = None,
        add_eos: bool = True,
        bptt: int = 35,
        val_fraction: float = 0.1,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        num_proc: int | None = None,
        batch_size: int = 20,
        eval_batch_size: int | None = 10,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ):
        super().__init__(
            batch_size,
            eval_batch_size,
            bucketing=False,  # the train stream is cut into bptt windows in order: nothing to bucket
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            drop_last=False,
        )
        if bptt < 1:
            raise ValueError(f"data.bptt={bptt}: must be >= 1")
        if tokenizer is not None and not isinstance(tokenizer, FitWordTokenizer):
            raise ValueError(
                f"data.tokenizer: a language model's data needs a word-level vocabulary fitted on train "
                f"(data/tokenizer=word), not {type(tokenizer).__name__}"
            )
        self.save_hyperparameters(logger=False, ignore=["source", "tokenizer"])
        self.source = source
        self.make_tokenizer = tokenizer or FitWordTokenizer(lowercase=False, pre_tokenizer="whitespace_split")
        self.tokenizer: WordTokenizer | None = None
        self.datasets: dict[str, Tensor] | None = None  # split -> (N,) token ids

    @property
    def streams(self) -> dict[str, Tensor] | None:
        """Each split as one token stream (N,)."""
        return self.datasets

    # ---- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:
            return
        hp = self.hparams
        raw = self.load_splits(split_seed=None)  # a missing validation split: the tail of train, in order
        for split, ds in raw.items():
            require_columns(ds, split, {"text_column": hp.text_column})
        if self.tokenizer is None:  # not restored from a checkpoint: fit on train only
            self.tokenizer = self.make_tokenizer(
                lambda: column(raw["train"], hp.text_column), special_tokens=[EOS] if hp.add_eos else []
            )
        self.datasets = {split: self._stream(ds, split) for split, ds in raw.items()}
        log.info(
            "data: %s tokens | vocab %d",
            ", ".join(f"{k} {v.numel():,}" for k, v in self.streams.items()),
            self.tokenizer.vocab_size,
        )

    def _stream(self, ds, split: str) -> Tensor:
        hp = self.hparams
        encoded = tokenize_split(
            ds,
            _encode,
            split,
            hp.num_proc,
            tokenizer=self.tokenizer,
            text_column=hp.text_column,
            eos_id=self.eos_token_id,
        )
        ids = (
            encoded.data.column("input_ids").combine_chunks().flatten()
        )  # one flat Arrow array: no Python lists
        return torch.from_numpy(ids.to_numpy(zero_copy_only=False).astype("int64"))  # (N,)

    def _windows(self, split: str, batch_size: int) -> DataLoader:
        # Under DDP each rank reads its own rows (see `bptt_windows`). The sampler is a one-replica
        # DistributedSampler, in order, only so that Lightning does not inject its own, which would deal
        # windows out to ranks in turn and break the continuity the recurrent state relies on.
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        windows = bptt_windows(self.split(split), batch_size, self.hparams.bptt, rank, world)
        return DataLoader(
            windows,
            batch_size=None,  # each item is already a (B, T) batch
            sampler=DistributedSampler(windows, num_replicas=1, rank=0, shuffle=False),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self):
        return self._windows("train", self.batch_size)

    def val_dataloader(self):
        return self._windows("validation", self.eval_batch_size)

    def test_dataloader(self):
        return self._windows("test", self.eval_batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: the tokenizer, so a checkpoint alone can encode new text."""
        return {"tokenizer": self.tokenizer.state(), "hparams": dict(self.hparams)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokenizer = tokenizer_from_state(state["tokenizer"])

    # ---- what the model needs to know about the data -----------------------------------------------
    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.token_to_id(EOS) if self.hparams.add_eos else None

    @property
    def dims(self) -> dict[str, int]:
        """Sizes only known once the data is built; `seqlab.train` fills the model config's ``???`` with them.
        The LM's output layer has ``vocab_size`` classes, so there is no ``num_labels``."""
        return {"vocab_size": self.tokenizer.vocab_size, "pad_token_id": self.tokenizer.pad_token_id}

"""TextClassificationDataModule: one text (or a text pair) -> one label."""

from __future__ import annotations

import logging
from typing import Any

from datasets import ClassLabel, DatasetDict

from seqlab.data.base import SeqDataModule, column, drop_empty_rows, require_columns, tokenize_split
from seqlab.data.collate import PadCollator
from seqlab.data.tokenizers import WordTokenizer
from seqlab.data.vocab import LabelVocab

log = logging.getLogger(__name__)

SEP = "<sep>"  # joins the two texts of a pair, so an RNN reads "premise <sep> hypothesis"


def _texts(values) -> list[str]:
    return [v or "" for v in values]  # a null cell (empty CSV field) is an empty text, reported by drop_empty_rows


def truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Shorten the longer of the two until both fit in `budget` tokens (HF's ``longest_first``)."""
    la, lb = len(a), len(b)
    while la + lb > budget:
        if la >= lb:
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


def _encode(batch, *, tokenizer, vocab, text_column, text_pair_column, label_column, label_names, max_seq_length, split):
    ids = tokenizer.encode_batch(_texts(batch[text_column]))
    if text_pair_column is not None:
        sep = tokenizer.token_to_id(SEP)
        pairs = tokenizer.encode_batch(_texts(batch[text_pair_column]))
        budget = max_seq_length - 1 if max_seq_length else None  # one slot for <sep>
        joined = []
        for a, b in zip(ids, pairs, strict=True):
            if budget is not None:
                a, b = truncate_pair(a, b, budget)
            joined.append(a + [sep] + b)
        ids = joined
    elif max_seq_length:
        ids = [s[:max_seq_length] for s in ids]
    values = batch[label_column]
    if label_names is not None:  # a ClassLabel column holds ids into its names; -1 means "no label"
        values = [label_names[v] if v is not None and 0 <= v < len(label_names) else v for v in values]
    where = f"split '{split}', column '{label_column}': "
    return {"input_ids": ids, "labels": [vocab.encode(v, where=where) for v in values]}


def _class_names(feature) -> list | None:
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _is_labelled(ds, split: str, label_column: str) -> bool:
    """False for an evaluation split whose labels are all -1 (the hidden test labels of GLUE on the hub)."""
    if split == "train" or _class_names(ds.features[label_column]) is None:
        return True
    if len(ds) and all(v == -1 for v in column(ds, label_column)):
        log.warning("split '%s' has no labels (all -1): it is not used for evaluation", split)
        return False
    return True


class TextClassificationDataModule(SeqDataModule):
    """Loads splits from a source, fits a word-level tokenizer and a label vocabulary on train, pads batches.

    Args:
        source: anything with ``load() -> DatasetDict`` (`HFSource`, `NegationSentimentSource`).
        text_column / text_pair_column / label_column: column names in the source.
        lowercase, min_freq, max_size, pre_tokenizer: tokenizer fitting (see `WordTokenizer.fit`).
        max_seq_length: truncate longer inputs (None: keep all tokens).
        val_fraction, split_seed: carve a validation split from train when the source has none.
        max_train_samples, max_eval_samples: keep only the first N rows (quick runs, tests).
        drop_empty: drop rows with no tokens (with a warning) instead of failing on them.
        num_proc: processes for tokenization (`datasets.map`); results are cached by the datasets library.
    """

    def __init__(
        self,
        source: Any,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str = "label",
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        pre_tokenizer: str = "whitespace",
        max_seq_length: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        drop_empty: bool = False,
        num_proc: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
    ):
        super().__init__(batch_size, eval_batch_size, num_workers, pin_memory, persistent_workers, drop_last)
        self.save_hyperparameters(logger=False, ignore=["source"])
        self.source = source
        self.tokenizer: WordTokenizer | None = None
        self.label_vocab: LabelVocab | None = None
        self.datasets: DatasetDict | None = None

    # ---- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:
            return
        hp = self.hparams
        raw = self.load_splits(split_seed=hp.split_seed)
        columns = {"text_column": hp.text_column, "text_pair_column": hp.text_pair_column, "label_column": hp.label_column}
        for split, ds in raw.items():
            require_columns(ds, split, columns)
        train = raw["train"]
        if self.tokenizer is None:  # not restored from a checkpoint: fit on train only
            texts = _texts(column(train, hp.text_column))
            if hp.text_pair_column:
                texts += _texts(column(train, hp.text_pair_column))
            self.tokenizer = WordTokenizer.fit(
                texts, lowercase=hp.lowercase, min_freq=hp.min_freq, max_size=hp.max_size,
                pre_tokenizer=hp.pre_tokenizer, special_tokens=[SEP] if hp.text_pair_column else [],
            )
        if self.label_vocab is None:
            self.label_vocab = LabelVocab.from_values(
                column(train, hp.label_column), names=_class_names(train.features[hp.label_column])
            )
        self.datasets = DatasetDict({split: self._encode(ds, split) for split, ds in raw.items() if _is_labelled(ds, split, hp.label_column)})
        log.info(
            "data: %s | vocab %d | labels %s",
            ", ".join(f"{k} {len(v)}" for k, v in self.datasets.items()), self.tokenizer.vocab_size, self.label_vocab.labels,
        )

    def _encode(self, ds, split: str):
        hp = self.hparams
        encoded = tokenize_split(
            ds, _encode, split, hp.num_proc,
            tokenizer=self.tokenizer, vocab=self.label_vocab, text_column=hp.text_column,
            text_pair_column=hp.text_pair_column, label_column=hp.label_column,
            label_names=_class_names(ds.features[hp.label_column]), max_seq_length=hp.max_seq_length, split=split,
        )
        return drop_empty_rows(encoded, split, f"column '{hp.text_column}'", hp.drop_empty)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what a checkpoint needs to encode new text and name its predictions."""
        return {"tokenizer": self.tokenizer.to_str(), "labels": self.label_vocab.labels}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokenizer = WordTokenizer.from_str(state["tokenizer"])
        self.label_vocab = LabelVocab(state["labels"])

    # ---- what the model needs to know about the data -----------------------------------------------
    @property
    def collate(self) -> PadCollator:
        return PadCollator(pad_token_id=self.tokenizer.pad_token_id)

    @property
    def dims(self) -> dict[str, int]:
        """Sizes only known once the data is built; `seqlab.train` fills the model config's ``???`` with them."""
        return {
            "vocab_size": self.tokenizer.vocab_size,
            "pad_token_id": self.tokenizer.pad_token_id,
            "num_labels": len(self.label_vocab),
        }

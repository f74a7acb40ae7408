"""TextClassificationDataModule: one text (or a text pair) -> one label."""

from __future__ import annotations

import logging
from typing import Any

from datasets import ClassLabel, DatasetDict

from seqlab.data.base import SeqDataModule, column, prepare_splits, require_columns
from seqlab.data.collate import PadCollator
from seqlab.data.tokenizers import WordTokenizer
from seqlab.data.vocab import LabelVocab

log = logging.getLogger(__name__)

SEP = "<sep>"  # joins the two texts of a pair, so an RNN reads "premise <sep> hypothesis"


def _encode(batch, *, tokenizer, vocab, text_column, text_pair_column, label_column, max_seq_length, split):
    ids = tokenizer.encode_batch(batch[text_column])
    if text_pair_column is not None:
        sep = tokenizer.token_to_id(SEP)
        ids = [a + [sep] + b for a, b in zip(ids, tokenizer.encode_batch(batch[text_pair_column]), strict=True)]
    if max_seq_length:
        ids = [s[:max_seq_length] for s in ids]
    out = {"input_ids": ids}
    if label_column is not None:
        out["labels"] = [vocab.encode(v, where=f"split '{split}', column '{label_column}': ") for v in batch[label_column]]
    return out


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
    def prepare_data(self) -> None:
        self.source.load()  # download / build the datasets cache once, on one process

    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:
            return
        hp = self.hparams
        raw = prepare_splits(
            self.source.load(),
            val_fraction=hp.val_fraction,
            split_seed=hp.split_seed,
            max_train_samples=hp.max_train_samples,
            max_eval_samples=hp.max_eval_samples,
        )
        columns = {"text_column": hp.text_column, "text_pair_column": hp.text_pair_column, "label_column": hp.label_column}
        for split, ds in raw.items():
            require_columns(ds, split, columns)
        train = raw["train"]
        if self.tokenizer is None:  # not restored from a checkpoint: fit on train only
            texts = column(train, hp.text_column) + (column(train, hp.text_pair_column) if hp.text_pair_column else [])
            self.tokenizer = WordTokenizer.fit(
                texts, lowercase=hp.lowercase, min_freq=hp.min_freq, max_size=hp.max_size,
                pre_tokenizer=hp.pre_tokenizer, special_tokens=[SEP] if hp.text_pair_column else [],
            )
        if self.label_vocab is None:
            feature = train.features[hp.label_column]
            self.label_vocab = LabelVocab.from_values(
                column(train, hp.label_column), names=feature.names if isinstance(feature, ClassLabel) else None
            )
        self.datasets = DatasetDict({split: self._encode(ds, split) for split, ds in raw.items()})
        log.info(
            "data: %s | vocab %d | labels %s",
            ", ".join(f"{k} {len(v)}" for k, v in self.datasets.items()), self.tokenizer.vocab_size, self.label_vocab.labels,
        )

    def _encode(self, ds, split: str):
        hp = self.hparams
        encoded = ds.map(
            _encode,
            batched=True,
            num_proc=hp.num_proc,
            remove_columns=ds.column_names,
            desc=f"Tokenizing {split}",
            fn_kwargs=dict(
                tokenizer=self.tokenizer, vocab=self.label_vocab, text_column=hp.text_column,
                text_pair_column=hp.text_pair_column, label_column=hp.label_column,
                max_seq_length=hp.max_seq_length, split=split,
            ),
        )
        empty = [i for i, n in enumerate(map(len, column(encoded, "input_ids"))) if n == 0]
        if empty:
            if not hp.drop_empty:
                raise ValueError(
                    f"split '{split}' row {empty[0]} (and {len(empty) - 1} more): column '{hp.text_column}' has no tokens; "
                    "an RNN cannot read an empty sequence. Clean the data or set data.drop_empty=true"
                )
            log.warning("split '%s': dropped %d rows with no tokens (data.drop_empty=true)", split, len(empty))
            drop = set(empty)
            encoded = encoded.select(i for i in range(len(encoded)) if i not in drop)
        return encoded

    def train_dataloader(self):
        return self._loader(self.split("train"), train=True, collate_fn=self.collate)

    def val_dataloader(self):
        return self._loader(self.split("validation"), train=False, collate_fn=self.collate)

    def test_dataloader(self):
        return self._loader(self.split("test"), train=False, collate_fn=self.collate)

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

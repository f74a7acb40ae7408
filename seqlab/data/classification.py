"""TextClassificationDataModule: one text (or a text pair) -> one label."""

from __future__ import annotations

import logging
from typing import Any

from datasets import ClassLabel, DatasetDict

from seqlab.data.base import (
    ROW,
    SOURCE,
    TRUNCATED,
    SeqDataModule,
    column,
    count_truncated,
    drop_empty_rows,
    require_columns,
    where,
)
from seqlab.data.collate import PadCollator
from seqlab.data.encoding import tokenize_split
from seqlab.data.tokenizers import SEP, FitWordTokenizer, tokenizer_from_state
from seqlab.data.vocab import LabelVocab

log = logging.getLogger(__name__)


def _texts(values) -> list[str]:
    return [
        v or "" for v in values
    ]  # a null cell (empty CSV field) is an empty text, reported by drop_empty_rows


def _encode(
    batch,
    *,
    tokenizer,
    vocab,
    text_column,
    text_pair_column,
    label_column,
    label_names,
    max_seq_length,
    split,
):
    pairs = _texts(batch[text_pair_column]) if text_pair_column is not None else None
    out, cut = tokenizer.encode_texts(_texts(batch[text_column]), pairs, max_seq_length)
    values = batch[label_column]
    if label_names is not None:  # a ClassLabel column holds ids into its names; -1 means "no label"
        values = [label_names[v] if v is not None and 0 <= v < len(label_names) else v for v in values]
    labels = vocab.encode_many(
        values, lambda i: f"{where(split, batch[SOURCE][i], batch[ROW][i])}, column '{label_column}': "
    )
    return {**out, "labels": labels, TRUNCATED: cut}


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
    """Loads splits from a source, builds the tokenizer and a label vocabulary from train, pads batches.

    Args:
        source: anything with ``load() -> DatasetDict`` (`HFSource`, `NegationSentimentSource`).
        text_column / text_pair_column / label_column: column names in the source. A pair is read as
            ``text <sep> pair`` by a word tokenizer, as ``[CLS] text [SEP] pair [SEP]`` (with token_type_ids) by an HF one.
        tokenizer: builds the tokenizer: `FitWordTokenizer` (``data/tokenizer=word``, fitted on train) or
            `LoadHFTokenizer` (``data/tokenizer=hf``, pretrained). Default: a word tokenizer with its defaults.
        max_seq_length: truncate longer inputs, counted and logged once per split (None: no cap for word
            tokenizers, the model's maximum for HF ones). A 100k-word row would otherwise cost minutes and GBs.
        val_fraction, split_seed: carve a validation split from train when the source has none.
        max_train_samples, max_eval_samples: keep only the first N rows (quick runs, tests).
        drop_empty: drop rows with no tokens (with a warning) instead of failing on them.
        num_proc: processes for tokenization (`datasets.map`); results are cached by the datasets library.
        bucketing: training batches of rows of similar lengths (`BucketSampler`: shuffled, sorted within pools
            of `bucket_pool` batches, batches shuffled), so little is padding; false: random batches.
    """

    def __init__(
        self,
        source: Any,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str = "label",
        tokenizer: Any = None,
        max_seq_length: int | None = 512,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        max_predict_samples: int | None = None,
        drop_empty: bool = False,
        num_proc: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        bucketing: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
        bucket_pool: int = 100,
    ):
        super().__init__(
            batch_size,
            eval_batch_size,
            bucketing,
            num_workers,
            pin_memory,
            persistent_workers,
            drop_last,
            bucket_pool,
        )
        self.save_hyperparameters(logger=False, ignore=["source", "tokenizer"])
        self.source = source
        self.make_tokenizer = tokenizer if tokenizer is not None else FitWordTokenizer()
        self.tokenizer = None  # built in setup(), or restored from a checkpoint (load_state_dict)
        self.label_vocab: LabelVocab | None = None
        self.datasets: DatasetDict | None = None

    # ---- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:
            return
        hp = self.hparams
        raw = self.load_splits(split_seed=hp.split_seed)
        columns = {
            "text_column": hp.text_column,
            "text_pair_column": hp.text_pair_column,
            "label_column": hp.label_column,
        }
        for split, ds in raw.items():
            require_columns(ds, split, columns)
        train = raw["train"]
        if self.tokenizer is None:  # not restored from a checkpoint: fitted on train only (or pretrained)

            def corpus():
                texts = _texts(column(train, hp.text_column))
                return texts + _texts(column(train, hp.text_pair_column)) if hp.text_pair_column else texts

            self.tokenizer = self.make_tokenizer(corpus, special_tokens=[SEP] if hp.text_pair_column else [])
        if self.label_vocab is None:
            values = column(train, hp.label_column)
            if None in values:
                i = values.index(None)
                raise ValueError(
                    f"{where('train', train[i][SOURCE], train[i][ROW])}, column '{hp.label_column}': no label "
                    "(null); every training row needs one"
                )
            self.label_vocab = LabelVocab.from_values(
                values, names=_class_names(train.features[hp.label_column])
            )
        self.datasets = DatasetDict(
            {
                split: self._encode(ds, split)
                for split, ds in raw.items()
                if _is_labelled(ds, split, hp.label_column)
            }
        )
        log.info(
            "data: %s | vocab %d | labels %s",
            ", ".join(f"{k} {len(v)}" for k, v in self.datasets.items()),
            self.tokenizer.vocab_size,
            self.label_vocab.labels,
        )

    def _encode(self, ds, split: str):
        hp = self.hparams
        encoded = tokenize_split(
            ds,
            _encode,
            split,
            hp.num_proc,
            tokenizer=self.tokenizer,
            vocab=self.label_vocab,
            text_column=hp.text_column,
            text_pair_column=hp.text_pair_column,
            label_column=hp.label_column,
            label_names=_class_names(ds.features[hp.label_column]),
            max_seq_length=hp.max_seq_length,
            split=split,
        )
        encoded = count_truncated(encoded, split, "data.max_seq_length", hp.max_seq_length)
        return drop_empty_rows(encoded, ds, split, f"column '{hp.text_column}'", hp.drop_empty)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what a checkpoint needs to encode new text and name its predictions."""
        return {
            "tokenizer": self.tokenizer.state(),
            "labels": self.label_vocab.labels,
            "hparams": dict(self.hparams),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokenizer = tokenizer_from_state(state["tokenizer"])
        if "labels" not in state:
            raise ValueError("the checkpoint (ckpt_path) has no label vocabulary: it belongs to another task")
        self.label_vocab = LabelVocab(state["labels"], origin="the checkpoint's labels (ckpt_path)")

    def predictions(self, outputs) -> list[dict[str, Any]]:
        """`trainer.predict` outputs over ``test_dataloader()`` (class probabilities (B, C) per batch, rows in
        length order) as one record per test row, in the split's row order:
        ``{"prediction": label, "probs": {label: p}}``."""
        labels = self.label_vocab.labels
        rows = []
        for probs in outputs:
            for p in probs.float().tolist():
                best = max(range(len(p)), key=p.__getitem__)
                rows.append(
                    {
                        "prediction": labels[best],
                        "probs": {str(lab): round(x, 6) for lab, x in zip(labels, p, strict=True)},
                    }
                )
        return self.in_row_order(rows, "test")

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
            "labels": [str(x) for x in self.label_vocab.labels],
        }

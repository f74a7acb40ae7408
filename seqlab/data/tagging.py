"""TokenClassificationDataModule: one tag per word (NER, POS, chunking), from pre-tokenized sentences."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict
from torch import Tensor

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
from seqlab.data.collate import IGNORE_INDEX, PadCollator, pad_sequences
from seqlab.data.encoding import tokenize_split
from seqlab.data.tokenizers import FitWordTokenizer, tokenizer_from_state
from seqlab.data.vocab import LabelVocab
from seqlab.labels import check_tags, close_tags, iob1_to_iob2

log = logging.getLogger(__name__)

CHAR_PAD, CHAR_UNK = (
    0,
    1,
)  # char ids; the char vocabulary is ["<pad>", "<unk>", then every char seen in train]
CHAR_SPECIALS = ["<pad>", "<unk>"]


def build_char_vocab(sentences: Sequence[Sequence[str]]) -> list[str]:
    """Every character of the training words, sorted, after the two specials. Case is kept on purpose:
    it is the signal char features add to lowercased word embeddings (capitalised words are often entities)."""
    return CHAR_SPECIALS + sorted({c for words in sentences for w in words for c in w})


def _tag_names(feature) -> list[str] | None:
    """The ClassLabel names of a ``Sequence(ClassLabel)`` tags column (HF hub conll2003), else None (string tags)."""
    inner = getattr(feature, "feature", None)
    return list(inner.names) if isinstance(inner, ClassLabel) else None


def _read_tags(tags: list, names: list[str] | None, iob1: bool) -> list[str]:
    tags = [names[t] for t in tags] if names is not None else tags
    return iob1_to_iob2(tags) if iob1 else tags


def align_labels(word_ids: list[int | None], word_labels: list[int]) -> tuple[list[int], list[int]]:
    """Sub-token labels and word starts: each word's label on its first sub-token, -100 on its other pieces and on
    special tokens (they are neither trained on nor scored); ``starts[t] = 1`` where a word begins. Words that
    truncation cut off have no sub-token, hence no label."""
    labels, starts, prev = [], [], None
    for w in word_ids:
        first = w is not None and w != prev
        labels.append(word_labels[w] if first else IGNORE_INDEX)
        starts.append(int(first))
        prev = w
    return labels, starts


def _encode(
    batch,
    *,
    tokenizer,
    vocab,
    char_index,
    tokens_column,
    tags_column,
    names,
    iob1,
    max_seq_length,
    max_word_length,
    split,
):
    words = batch[tokens_column]
    labels = []
    for row, source, sent, tags in zip(batch[ROW], batch[SOURCE], words, batch[tags_column], strict=True):
        if len(sent) != len(tags):
            raise ValueError(f"{where(split, source, row)}: {len(sent)} tokens but {len(tags)} tags")
        at = f"{where(split, source, row)}, column '{tags_column}': "  # noqa: B023 (used at once)
        labels.append(vocab.encode_many(_read_tags(tags, names, iob1), lambda i: at))  # noqa: B023
    out, word_ids, cut = tokenizer.encode_words(words, max_seq_length)
    if tokenizer.splits_words:  # sub-words: labels move to each word's first piece, `word_starts` marks them
        aligned = [align_labels(w, lab) for w, lab in zip(word_ids, labels, strict=True)]
        out["labels"], out["word_starts"] = [a[0] for a in aligned], [a[1] for a in aligned]
    else:  # one id per word: labels as they are (cut like the ids)
        out["labels"] = [lab[: len(ids)] for lab, ids in zip(labels, out["input_ids"], strict=True)]
    if char_index is not None:
        out["char_ids"] = [
            [[char_index.get(c, CHAR_UNK) for c in w[:max_word_length]] for w in sent[: len(ids)]]
            for sent, ids in zip(words, out["input_ids"], strict=True)
        ]
    out[TRUNCATED] = cut
    return out


class TaggingCollator(PadCollator):
    """`PadCollator` plus ``word_starts`` (B, T) bool, where each word's first sub-token is (the attention mask when
    every token is a word), and ``char_ids`` (B, T, L) when the examples carry them: L = longest word in the batch,
    padded chars and padded words are `CHAR_PAD` (0)."""

    def __call__(self, examples: Sequence[dict]) -> dict[str, Tensor]:
        batch = super().__call__(examples)
        if "word_starts" in examples[0]:
            batch["word_starts"] = pad_sequences([e["word_starts"] for e in examples], 0).bool()
        else:
            batch["word_starts"] = batch["attention_mask"].bool()
        if "char_ids" in examples[0]:
            T = batch["input_ids"].size(1)
            L = max(len(w) for e in examples for w in e["char_ids"])
            rows = [w for e in examples for w in e["char_ids"] + [[]] * (T - len(e["char_ids"]))]  # B*T words
            rows = [w + [CHAR_PAD] * (L - len(w)) for w in rows]
            batch["char_ids"] = pad_sequences(rows, CHAR_PAD).reshape(len(examples), T, L)  # (B, T, L)
        return batch


class TokenClassificationDataModule(SeqDataModule):
    """Loads tagged sentences, fits a word tokenizer, a tag vocabulary (and a char vocabulary) on train, pads batches.

    Args:
        source: anything with ``load() -> DatasetDict`` (`HFSource` with ``path: conll`` for CoNLL column files).
        tokens_column / tags_column: a list of words and a list of tags (strings, or ints of a ``Sequence(ClassLabel)``
            feature, whose names are then the tags) per row.
        tag_scheme: the scheme of the tags *in the source*: IOB1 | IOB2 | IOBES, or null for tags without spans
            (POS). IOB1 (the original CoNLL-2003 files) is converted to IOB2 at load time, so the model learns and
            is scored in IOB2 (``dims["tag_scheme"]``).
        tokenizer: `FitWordTokenizer` (``data/tokenizer=word``: one id per word, fitted on train) or `LoadHFTokenizer`
            (``data/tokenizer=hf``: words split into sub-tokens; each word's tag sits on its first piece and the
            model is trained and scored per word). Default: a word tokenizer with its defaults.
        max_seq_length: truncate longer sentences, counted and logged (cut-off words are neither trained on nor
            scored; None: no cap for word tokenizers, the model's maximum for HF ones).
        use_chars: add ``char_ids`` (B, T, L) to each batch for a char-aware encoder (word tokenizers only);
            max_word_length: chars kept per word.
        val_fraction, split_seed: carve a validation split from train when the source has none.
        max_train_samples, max_eval_samples: keep only the first N sentences (quick runs, tests).
        drop_empty: drop sentences with no tokens (with a warning) instead of failing on them.
        num_proc: processes for `datasets.map`.
        bucketing: training batches of sentences of similar lengths (`BucketSampler`: shuffled, sorted within
            pools of `bucket_pool` batches, batches shuffled), so little is padding; false: random batches.
    """

    def __init__(
        self,
        source: Any,
        tokens_column: str = "tokens",
        tags_column: str = "tags",
        tag_scheme: str | None = "IOB2",
        tokenizer: Any = None,
        max_seq_length: int | None = 512,
        use_chars: bool = False,
        max_word_length: int = 20,
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
        check_tags([], tag_scheme, key="data.tag_scheme")  # the scheme name itself, before any data is read
        if max_word_length < 1:
            raise ValueError(f"data.max_word_length={max_word_length}: must be >= 1")
        self.save_hyperparameters(logger=False, ignore=["source", "tokenizer"])
        self.source = source
        self.make_tokenizer = tokenizer if tokenizer is not None else FitWordTokenizer()
        self.tokenizer = None  # built in setup(), or restored from a checkpoint (load_state_dict)
        self.label_vocab: LabelVocab | None = None
        self.char_vocab: list[str] | None = None
        self.num_predictable: int | None = None  # tags of train; the vocabulary may go on with gold-only tags
        self.datasets: DatasetDict | None = None

    # ---- Lightning hooks ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets is not None:
            return
        hp = self.hparams
        raw = self.load_splits(split_seed=hp.split_seed)
        for split, ds in raw.items():
            require_columns(ds, split, {"tokens_column": hp.tokens_column, "tags_column": hp.tags_column})
        if hp.tag_scheme == "IOB1":
            log.info(
                "data.tag_scheme=IOB1: tags are converted to IOB2 at load time; the model predicts and is scored in IOB2"
            )
        train = raw["train"]
        words = column(train, hp.tokens_column)
        if self.tokenizer is None:  # not restored from a checkpoint: fit on train only
            self.tokenizer = self.make_tokenizer(lambda: words, is_pretokenized=True)
        if hp.use_chars and self.tokenizer.splits_words:
            raise ValueError(
                "data.use_chars=true needs one id per word (data/tokenizer=word): this tokenizer splits words"
            )
        if self.label_vocab is None:
            names = _tag_names(train.features[hp.tags_column])
            if names is not None and hp.tag_scheme != "IOB1":  # keep the source's ids (and its full tag list)
                self.label_vocab = LabelVocab(names)
            else:
                tags = [
                    t
                    for row in column(train, hp.tags_column)
                    for t in _read_tags(row, names, hp.tag_scheme == "IOB1")
                ]
                check_tags(tags, self.model_tag_scheme, key="data.tag_scheme")
                self.label_vocab = LabelVocab(close_tags(tags, self.model_tag_scheme))
            check_tags(self.label_vocab.labels, self.model_tag_scheme, key="data.tag_scheme")
            self.num_predictable = len(self.label_vocab)
            if self.model_tag_scheme is not None and names is None:
                self._add_gold_only_tags(raw)
        if hp.use_chars and self.char_vocab is None:
            self.char_vocab = build_char_vocab(words)
        self.datasets = DatasetDict({split: self._encode(ds, split) for split, ds in raw.items()})
        log.info(
            "data: %s | vocab %d | %d tags %s%s",
            ", ".join(f"{k} {len(v)}" for k, v in self.datasets.items()),
            self.tokenizer.vocab_size,
            len(self.label_vocab),
            self.label_vocab.labels,
            f" | {len(self.char_vocab)} chars" if self.char_vocab is not None else "",
        )

    def _add_gold_only_tags(self, raw: DatasetDict) -> None:
        """Entity types that validation / test have and train never saw: their tags join the vocabulary after the
        ones the model predicts (``num_labels`` counts those only). They are never predicted, and their gold spans
        count as misses in span F1, as conlleval scores them: evaluation goes on, with a warning."""
        hp, known = self.hparams, set(self.label_vocab.labels)
        new: dict[str, int] = {}
        for split, ds in raw.items():
            if split == "train":
                continue
            names = _tag_names(ds.features[hp.tags_column])
            for row in column(ds, hp.tags_column):
                for tag in _read_tags(row, names, hp.tag_scheme == "IOB1"):
                    if tag not in known:
                        new[tag] = new.get(tag, 0) + 1
        if not new:
            return
        check_tags(list(new), self.model_tag_scheme, key="data.tag_scheme")
        extra = [t for t in close_tags(list(new), self.model_tag_scheme) if t not in known]
        self.label_vocab = LabelVocab(self.label_vocab.labels + extra)
        log.warning(
            "validation/test hold %d tags of entity types train never saw (%s): they are never predicted and their "
            "spans count as misses",
            sum(new.values()),
            ", ".join(f"{t} x{n}" for t, n in sorted(new.items())),
        )

    def _encode(self, ds: Dataset, split: str) -> Dataset:
        hp = self.hparams
        if hp.use_chars and self.char_vocab is None:
            raise ValueError("data.use_chars=true but the restored state has no char vocabulary")
        encoded = tokenize_split(
            ds,
            _encode,
            split,
            hp.num_proc,
            tokenizer=self.tokenizer,
            vocab=self.label_vocab,
            char_index={c: i for i, c in enumerate(self.char_vocab)} if hp.use_chars else None,
            tokens_column=hp.tokens_column,
            tags_column=hp.tags_column,
            names=_tag_names(ds.features[hp.tags_column]),
            iob1=hp.tag_scheme == "IOB1",
            max_seq_length=hp.max_seq_length,
            max_word_length=hp.max_word_length,
            split=split,
        )
        encoded = count_truncated(encoded, split, "data.max_seq_length", hp.max_seq_length)
        return drop_empty_rows(encoded, ds, split, f"column '{hp.tokens_column}'", hp.drop_empty)

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint: what a checkpoint needs to encode new sentences and name its tags."""
        return {
            "tokenizer": self.tokenizer.state(),
            "labels": self.label_vocab.labels,
            "chars": self.char_vocab,
            "num_predictable": self.num_predictable,
            "hparams": dict(self.hparams),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokenizer = tokenizer_from_state(state["tokenizer"])
        if "labels" not in state:
            raise ValueError("the checkpoint (ckpt_path) has no label vocabulary: it belongs to another task")
        self.label_vocab = LabelVocab(state["labels"], origin="the checkpoint's labels (ckpt_path)")
        self.num_predictable = state.get("num_predictable", len(self.label_vocab))
        self.char_vocab = state.get("chars")

    def predictions(self, outputs) -> list[dict[str, Any]]:
        """`trainer.predict` outputs over ``test_dataloader()`` (tag ids per word (B, W), -100 past the end;
        rows in length order) as one record per test sentence, in the split's row order:
        ``{"prediction": [tag per word]}`` (words cut by max_seq_length get no tag)."""
        tags = self.label_vocab.labels
        ids = [row for batch in outputs for row in batch.tolist()]  # (rows, W) in loader order
        rows = [{"prediction": [tags[i] for i in row if i != IGNORE_INDEX]} for row in ids]
        return self.in_row_order(rows, "test")

    # ---- what the model needs to know about the data -----------------------------------------------
    @property
    def model_tag_scheme(self) -> str | None:
        """The scheme of the label ids the model sees: IOB1 sources are converted to IOB2."""
        return "IOB2" if self.hparams.tag_scheme == "IOB1" else self.hparams.tag_scheme

    @property
    def collate(self) -> TaggingCollator:
        return TaggingCollator(pad_token_id=self.tokenizer.pad_token_id)

    @property
    def dims(self) -> dict[str, Any]:
        """What the model config's ``???`` are filled with (`seqlab.utils.fill_from_data`), by key name."""
        dims = {
            "vocab_size": self.tokenizer.vocab_size,
            "pad_token_id": self.tokenizer.pad_token_id,
            "num_labels": self.num_predictable,  # the tags the model predicts: those of train (closed)
            "labels": list(self.label_vocab.labels),  # then the gold-only ones of validation / test, if any
            "tag_scheme": self.model_tag_scheme,
        }
        if self.hparams.use_chars:
            dims["num_chars"] = len(self.char_vocab)
        return dims

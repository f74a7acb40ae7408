from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from seqlab.data.sources import HFSource
from seqlab.data.tagging import TaggingCollator, TokenClassificationDataModule
from seqlab.data.tokenizers import FitWordTokenizer

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny.conll"  # IOB1, invented sentences
COLUMNS = ["tokens", "pos", "chunk", "tags"]


def conll_source(train=TINY, validation=TINY, test=None):
    files = {"train": str(train), "validation": str(validation)} | ({"test": str(test)} if test else {})
    return HFSource("conll", data_files=files, reader_kwargs={"columns": COLUMNS})


class MemorySource:
    """A source is anything with load(): here, splits built in memory."""

    def __init__(self, splits: DatasetDict):
        self.splits = splits

    def load(self) -> DatasetDict:
        return self.splits


def test_iob1_is_converted_and_padding_is_minus_100():
    dm = TokenClassificationDataModule(conll_source(), tag_scheme="IOB1", batch_size=8)
    dm.setup("fit")
    labels = dm.label_vocab.labels
    # IOB2 after conversion, closed under the scheme: every type seen gets B- and I- (I-LOC, I-MISC never occur)
    assert labels == ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]
    second = dm.datasets["train"][1]  # Jane visited Lima Quito and Oslo .
    assert [labels[i] for i in second["labels"]] == ["B-PER", "O", "B-LOC", "B-LOC", "O", "B-LOC", "O"]
    assert second["input_ids"] == dm.tokenizer.encode(
        ["Jane", "visited", "Lima", "Quito", "and", "Oslo", "."]
    )
    assert dm.dims == {
        "vocab_size": dm.tokenizer.vocab_size,
        "pad_token_id": 0,
        "num_labels": 9,
        "labels": labels,
        "tag_scheme": "IOB2",
    }
    batch = next(iter(dm.val_dataloader()))
    lengths = batch["lengths"]
    assert lengths.tolist() == [8, 7, 4, 3, 1]  # rows 0, 1, 4, 2, 3: evaluation batches go longest first
    assert dm.eval_order("validation") == [0, 1, 4, 2, 3]
    assert batch["labels"].shape == batch["input_ids"].shape == (5, 8)
    padded = batch["attention_mask"] == 0
    assert (batch["labels"][padded] == -100).all() and (batch["labels"][~padded] >= 0).all()


def test_tag_unseen_in_train_names_split_and_tag(tmp_path):
    """Tags without spans (POS): a tag train never saw has no meaning to score, and is an error naming the row."""
    dev = tmp_path / "dev.conll"
    dev.write_text("Mars XYZ I-NP O\n\n")
    dm = TokenClassificationDataModule(conll_source(validation=dev), tags_column="pos", tag_scheme=None)
    with pytest.raises(ValueError, match=r"split 'validation' row 0, column 'pos': label 'XYZ'"):
        dm.setup("fit")


def test_wrong_scheme_and_empty_sentences_fail_clearly():
    with pytest.raises(ValueError, match=r"data.tag_scheme=IOB2: tag 'NNP' is neither 'O' nor B\|I-TYPE"):
        TokenClassificationDataModule(conll_source(), tags_column="pos").setup("fit")
    pos = TokenClassificationDataModule(conll_source(), tags_column="pos", tag_scheme=None)
    pos.setup("fit")
    assert pos.dims["tag_scheme"] is None and "NNP" in pos.label_vocab.labels
    rows = {"tokens": [["a", "b"], [], ["c"]], "tags": [["O", "B-X"], [], ["O"]]}
    splits = DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation")})
    with pytest.raises(ValueError, match="split 'train' row 1 .* no tokens.*drop_empty"):
        TokenClassificationDataModule(MemorySource(splits)).setup("fit")
    dm = TokenClassificationDataModule(MemorySource(splits), drop_empty=True)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 2
    bad = DatasetDict(
        {s: Dataset.from_dict({"tokens": [["a", "b"]], "tags": [["O"]]}) for s in ("train", "validation")}
    )
    with pytest.raises(ValueError, match="split 'train' row 0: 2 tokens but 1 tags"):
        TokenClassificationDataModule(MemorySource(bad)).setup("fit")


def test_class_label_tags_use_their_names():
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=names))})
    ds = Dataset.from_dict(
        {"tokens": [["Ann", "Lee", "ran"], ["Rome"]], "tags": [[1, 2, 0], [3]]}, features=features
    )
    dm = TokenClassificationDataModule(MemorySource(DatasetDict(train=ds, validation=ds)))
    dm.setup("fit")
    assert dm.label_vocab.labels == names  # the source's order, so ids stay those of the hub data set
    assert dm.datasets["train"][0]["labels"] == [1, 2, 0]


def test_chars_truncation_and_collate():
    dm = TokenClassificationDataModule(
        conll_source(), tag_scheme="IOB1", use_chars=True, max_word_length=4, max_seq_length=5, batch_size=2
    )
    dm.setup("fit")
    assert (
        dm.char_vocab[:2] == ["<pad>", "<unk>"] and "A" in dm.char_vocab and "a" in dm.char_vocab
    )  # case kept
    assert dm.dims["num_chars"] == len(dm.char_vocab)
    first = dm.datasets["train"][0]
    assert len(first["input_ids"]) == len(first["labels"]) == len(first["char_ids"]) == 5
    assert [dm.char_vocab[c] for c in first["char_ids"][1]] == list("Widg")
    batch = TaggingCollator()([first, dm.datasets["train"][3]])  # 5 words and 1 word ("Rain")
    assert batch["char_ids"].shape == (2, 5, 4)
    assert (batch["char_ids"][1, 1:] == 0).all() and batch["char_ids"][1, 0].tolist() == [
        dm.char_vocab.index(c) for c in "Rain"
    ]


def test_state_round_trip_restores_vocabularies():
    dm = TokenClassificationDataModule(conll_source(), tag_scheme="IOB1", use_chars=True)
    dm.setup("fit")
    other = TokenClassificationDataModule(
        conll_source(), tag_scheme="IOB1", use_chars=True, tokenizer=FitWordTokenizer(min_freq=5)
    )
    other.load_state_dict(dm.state_dict())
    other.setup("fit")  # restored vocabularies are kept, not refitted with min_freq=5
    assert other.tokenizer.get_vocab() == dm.tokenizer.get_vocab()
    assert other.label_vocab.labels == dm.label_vocab.labels and other.char_vocab == dm.char_vocab
    assert other.datasets["train"][:]["input_ids"] == dm.datasets["train"][:]["input_ids"]
    assert torch.equal(
        next(iter(other.val_dataloader()))["char_ids"], next(iter(dm.val_dataloader()))["char_ids"]
    )


def test_tag_vocabulary_is_closed_under_the_scheme(tmp_path):
    """Train has only B-LST, test has I-LST (a standard chunking benchmark does): no error, I-LST is a known tag."""
    (tmp_path / "train.conll").write_text("a B-LST\nb O\n\nc B-NP\nd I-NP\n\n")
    (tmp_path / "test.conll").write_text("a B-LST\nb I-LST\n\n")
    files = {
        "train": str(tmp_path / "train.conll"),
        "validation": str(tmp_path / "train.conll"),
        "test": str(tmp_path / "test.conll"),
    }
    dm = TokenClassificationDataModule(HFSource("conll", data_files=files), tag_scheme="IOB2")
    dm.setup("fit")
    assert dm.label_vocab.labels == ["B-LST", "B-NP", "I-LST", "I-NP", "O"]
    assert [dm.label_vocab.labels[i] for i in dm.datasets["test"][0]["labels"]] == ["B-LST", "I-LST"]
    iobes = TokenClassificationDataModule(
        MemorySource(
            DatasetDict(
                {
                    s: Dataset.from_dict({"tokens": [["a", "b"]], "tags": [["S-X", "O"]]})
                    for s in ("train", "validation")
                }
            )
        ),
        tag_scheme="IOBES",
    )
    iobes.setup("fit")
    assert iobes.label_vocab.labels == ["B-X", "E-X", "I-X", "O", "S-X"]


def test_entity_types_train_never_saw_are_gold_only(tmp_path, caplog):
    """A type only in test does not stop evaluation: its tags follow the predicted ones, and its spans are misses."""
    import torch

    from seqlab.metrics.spans import SpanF1

    (tmp_path / "train.conll").write_text("a B-PER\nb O\n\n")
    (tmp_path / "test.conll").write_text("a B-PER\nb B-LST\nc I-LST\n\n")
    files = {
        "train": str(tmp_path / "train.conll"),
        "validation": str(tmp_path / "train.conll"),
        "test": str(tmp_path / "test.conll"),
    }
    dm = TokenClassificationDataModule(HFSource("conll", data_files=files), tag_scheme="IOB2")
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert "2 tags of entity types train never saw (B-LST x1, I-LST x1)" in caplog.text
    assert dm.dims["num_labels"] == 3 and dm.dims["labels"] == ["B-PER", "I-PER", "O", "B-LST", "I-LST"]
    gold = torch.tensor([dm.datasets["test"][0]["labels"]])
    perfect_on_known = torch.tensor([[0, 2, 2]])  # B-PER O O: the LST span cannot be predicted
    metric = SpanF1(dm.dims["labels"], "IOB2")
    metric.update(perfect_on_known, gold)
    out = metric.compute()
    assert (
        out["precision"] == 1.0 and out["recall"] == 0.5
    )  # 1 of 2 gold spans found: the unseen one is a miss

from __future__ import annotations

import json

import pytest
import torch

from seqlab.data.classification import TextClassificationDataModule
from seqlab.data.collate import PadCollator
from seqlab.data.sources import HFSource
from seqlab.data.synthetic import NegationSentimentSource
from seqlab.data.tokenizers import FitWordTokenizer


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def pair_files(tmp_path):
    train = [
        {"premise": f"a man walks {i}", "hypothesis": "a man moves", "gold": "yes" if i % 2 else "no"}
        for i in range(20)
    ]
    dev = [{"premise": "a dog walks", "hypothesis": "a cat sleeps", "gold": "no"}]
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", train),
        "validation": write_jsonl(tmp_path / "dev.jsonl", dev),
    }


def test_collate_pads_to_batch_max_and_masks():
    batch = PadCollator(pad_token_id=0)(
        [{"input_ids": [5, 6, 7], "labels": 1}, {"input_ids": [8], "labels": 0}]
    )
    assert torch.equal(batch["input_ids"], torch.tensor([[5, 6, 7], [8, 0, 0]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1], [1, 0, 0]]))
    assert torch.equal(batch["lengths"], torch.tensor([3, 1]))
    assert torch.equal(batch["labels"], torch.tensor([1, 0]))
    tagged = PadCollator()([{"input_ids": [5, 6], "labels": [2, 3]}, {"input_ids": [8], "labels": [1]}])
    assert torch.equal(tagged["labels"], torch.tensor([[2, 3], [1, -100]]))


def test_negation_source_is_deterministic_and_needs_order():
    a, b = (
        NegationSentimentSource(50, 10, 10, seed=3).load(),
        NegationSentimentSource(50, 10, 10, seed=3).load(),
    )
    assert a["train"]["text"][:] == b["train"]["text"][:]
    assert NegationSentimentSource(50, 10, 10, seed=4).load()["train"]["text"][:] != a["train"]["text"][:]
    # growing the training split leaves the test split unchanged
    assert NegationSentimentSource(80, 10, 10, seed=3).load()["test"]["text"][:] == a["test"]["text"][:]


def test_text_pairs_label_vocab_and_loader_options(pair_files):
    dm = TextClassificationDataModule(
        HFSource("jsonl", data_files=pair_files),
        text_column="premise",
        text_pair_column="hypothesis",
        label_column="gold",
        batch_size=4,
        drop_last=True,
    )
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"no 'test' split .*add data_files.test \(or run with test=false\)"):
        dm.test_dataloader()
    assert dm.label_vocab.labels == ["no", "yes"]
    assert dm.dims == {
        "vocab_size": dm.tokenizer.vocab_size,
        "pad_token_id": 0,
        "num_labels": 2,
        "labels": ["no", "yes"],
    }
    first = dm.datasets["train"][0]
    sep = dm.tokenizer.token_to_id("<sep>")
    assert first["input_ids"] == dm.tokenizer.encode("a man walks 0") + [sep] + dm.tokenizer.encode(
        "a man moves"
    )
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and all(b["input_ids"].shape[0] == 4 for b in batches)
    assert len(list(dm.val_dataloader())) == 1


def test_state_round_trip_restores_tokenizer_and_labels(pair_files):
    dm = TextClassificationDataModule(
        HFSource("jsonl", data_files=pair_files),
        text_column="premise",
        text_pair_column="hypothesis",
        label_column="gold",
    )
    dm.setup("fit")
    other = TextClassificationDataModule(
        HFSource("jsonl", data_files=pair_files),
        text_column="premise",
        text_pair_column="hypothesis",
        label_column="gold",
        tokenizer=FitWordTokenizer(min_freq=5),
    )
    other.load_state_dict(dm.state_dict())
    other.setup("fit")  # restored vocab is kept, not refitted with min_freq=5
    assert other.tokenizer.get_vocab() == dm.tokenizer.get_vocab()
    assert other.datasets["train"]["input_ids"][:] == dm.datasets["train"]["input_ids"][:]


def test_validation_is_carved_from_train_with_a_seed(tmp_path):
    rows = [{"text": f"w{i} x", "label": i % 3} for i in range(100)]
    files = {"train": write_jsonl(tmp_path / "t.jsonl", rows)}
    splits = []
    for _ in range(2):
        dm = TextClassificationDataModule(HFSource("json", data_files=files), val_fraction=0.2, split_seed=7)
        dm.setup("fit")
        splits.append(dm.datasets["validation"]["input_ids"][:])
        assert len(dm.datasets["train"]) == 80 and len(dm.datasets["validation"]) == 20
    assert splits[0] == splits[1]
    assert dm.label_vocab.labels == [0, 1, 2]  # ints stay ints, sorted


def test_max_samples_and_truncation(tmp_path):
    rows = [{"text": "one two three four five", "label": "a"}] * 30
    files = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows),
    }
    dm = TextClassificationDataModule(
        HFSource("json", data_files=files), max_train_samples=10, max_eval_samples=4, max_seq_length=3
    )
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 10 and len(dm.datasets["validation"]) == 4
    assert all(len(x) == 3 for x in dm.datasets["train"]["input_ids"][:])


# ---- bad input: one clear error naming what to fix ---------------------------------------------------
def test_unknown_column_lists_the_available_ones(pair_files):
    dm = TextClassificationDataModule(HFSource("jsonl", data_files=pair_files), text_column="sentence")
    with pytest.raises(
        ValueError,
        match=r"data.text_column='sentence'.*available columns: \['premise', 'hypothesis', 'gold'\]",
    ):
        dm.setup("fit")


def test_label_unseen_in_train_is_an_error(tmp_path):
    files = {
        "train": write_jsonl(
            tmp_path / "t.jsonl", [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]
        ),
        "validation": write_jsonl(tmp_path / "v.jsonl", [{"text": "meh", "label": "neutral"}]),
    }
    dm = TextClassificationDataModule(HFSource("jsonl", data_files=files))
    with pytest.raises(
        ValueError,
        match=r"split 'validation' row 0, column 'label': label 'neutral' does not occur in the training split",
    ):
        dm.setup("fit")


@pytest.mark.parametrize(
    "fmt,content",
    [
        ("jsonl", '{"text": "fine", "label": 1}\n{"text": "   ", "label": 0}\n{"text": "ok", "label": 0}\n'),
        ("csv", "text,label\nfine,1\n,0\nok,0\n"),  # an empty CSV field reads as null: an empty text too
    ],
)
def test_empty_text_fails_or_is_dropped(fmt, content, tmp_path):
    path = tmp_path / f"t.{fmt}"
    path.write_text(content)
    files = {"train": str(path), "validation": str(path)}
    with pytest.raises(ValueError, match=r"split 'train' row 1 .*no tokens.*data.drop_empty=true"):
        TextClassificationDataModule(HFSource(fmt, data_files=files)).setup("fit")
    dm = TextClassificationDataModule(HFSource(fmt, data_files=files), drop_empty=True)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 2


def test_persistent_workers_without_workers_is_refused():
    with pytest.raises(ValueError, match="data.persistent_workers=true needs data.num_workers > 0"):
        TextClassificationDataModule(NegationSentimentSource(), persistent_workers=True)


def test_tokenized_splits_are_cached_and_num_proc_gives_the_same_result(tmp_path):
    rows = [{"text": f"word{i % 17} and word{i % 5}", "label": i % 2} for i in range(400)]
    files = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows[:50]),
    }

    def build(num_proc=None):
        dm = TextClassificationDataModule(
            HFSource("jsonl", data_files=files, cache_dir=str(tmp_path / "cache")), num_proc=num_proc
        )
        dm.setup("fit")
        return dm

    first = build()
    cached = [
        f["filename"] for f in first.datasets["train"].cache_files if "seqlab-tokenized-" in f["filename"]
    ]
    assert cached, "tokenized train split was not written to the datasets cache"
    mtimes = {f: (tmp_path / f).stat().st_mtime_ns for f in cached}
    second = build()  # same data, same tokenizer: the datasets fingerprint matches, nothing is re-tokenized
    assert [
        f["filename"] for f in second.datasets["train"].cache_files if "seqlab-tokenized-" in f["filename"]
    ] == cached
    assert {f: (tmp_path / f).stat().st_mtime_ns for f in cached} == mtimes
    parallel = build(num_proc=2)
    assert parallel.datasets["train"]["input_ids"][:] == first.datasets["train"]["input_ids"][:]


class ListSource:
    """A source built in memory: what a hub data set with ClassLabel labels looks like once loaded."""

    def __init__(self, splits):
        self.splits = splits

    def load(self):
        from datasets import DatasetDict

        return DatasetDict(self.splits)


def test_class_label_columns_use_their_names_and_unlabelled_test_splits_are_skipped():
    from datasets import ClassLabel, Dataset, Features, Value

    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    source = ListSource(
        {
            "train": Dataset.from_dict(
                {"sentence": ["good", "bad", "fine"], "label": [1, 0, 1]}, features=features
            ),
            "validation": Dataset.from_dict({"sentence": ["great"], "label": [1]}, features=features),
            "test": Dataset.from_dict(
                {"sentence": ["hidden", "labels"], "label": [-1, -1]}, features=features
            ),
        }
    )
    dm = TextClassificationDataModule(source, text_column="sentence")
    dm.setup("fit")
    assert dm.label_vocab.labels == ["negative", "positive"]
    assert dm.datasets["train"]["labels"][:] == [1, 0, 1] and dm.datasets["validation"]["labels"][:] == [1]
    assert not dm.has_split("test")  # GLUE's hidden test labels: nothing to evaluate on


def test_pairs_are_truncated_longest_first_and_keep_the_separator():
    from seqlab.data.tokenizers import truncate_pair

    assert truncate_pair([1, 2, 3, 4, 5, 6], [7, 8], 5) == ([1, 2, 3], [7, 8])
    assert truncate_pair([1, 2, 3], [4, 5, 6], 4) == ([1, 2], [4, 5])
    assert truncate_pair([1], [2], 5) == ([1], [2])


def test_long_pairs_keep_both_texts_and_the_separator(pair_files):
    dm = TextClassificationDataModule(
        HFSource("jsonl", data_files=pair_files),
        text_column="premise",
        text_pair_column="hypothesis",
        label_column="gold",
        max_seq_length=5,
    )
    dm.setup("fit")
    tok = dm.tokenizer
    # "a man walks 0" + "a man moves": 4 slots for words, the longer side shortened first
    assert dm.datasets["train"][0]["input_ids"] == tok.encode("a man") + [
        tok.token_to_id("<sep>")
    ] + tok.encode("a man")


def test_errors_name_the_row_in_the_source_file_when_validation_is_carved(tmp_path):
    """Validation carved from train (shuffled): an empty text is reported at its row in the user's file."""
    rows = [{"text": f"word{i} word", "label": i % 2} for i in range(50)]
    rows[37]["text"] = "   "
    files = {"train": write_jsonl(tmp_path / "t.jsonl", rows)}
    dm = TextClassificationDataModule(HFSource("jsonl", data_files=files), val_fraction=0.5, split_seed=1)
    with pytest.raises(
        ValueError, match=r"split '(train' row 37|validation', row 37 of the source's 'train' split) "
    ):
        dm.setup("fit")


def test_very_long_texts_are_cut_at_the_default_cap_and_counted(tmp_path, caplog):
    rows = [{"text": "word " * 5000, "label": 0}] + [{"text": "a b", "label": i % 2} for i in range(20)]
    files = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows[1:5]),
    }
    dm = TextClassificationDataModule(HFSource("jsonl", data_files=files))
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert len(dm.datasets["train"][0]["input_ids"]) == 512
    assert "split 'train': 1 of 21 rows were longer than data.max_seq_length=512 tokens" in caplog.text


def test_null_label_and_foreign_checkpoint_labels_are_named(tmp_path):
    rows = [{"text": "a b", "label": "x"}, {"text": "c d", "label": None}, {"text": "e", "label": "y"}]
    files = {
        "train": write_jsonl(tmp_path / "t.jsonl", rows),
        "validation": write_jsonl(tmp_path / "v.jsonl", rows[:1]),
    }
    with pytest.raises(ValueError, match=r"split 'train' row 1, column 'label': no label \(null\)"):
        TextClassificationDataModule(HFSource("jsonl", data_files=files)).setup("fit")
    rows[1]["label"] = "x"
    write_jsonl(tmp_path / "t.jsonl", rows)
    dm = TextClassificationDataModule(HFSource("jsonl", data_files=files))
    dm.load_state_dict({"tokenizer": FitWordTokenizer()(lambda: ["a b"]).state(), "labels": ["neg", "pos"]})
    with pytest.raises(
        ValueError,
        match=r"label 'x' does not occur in the checkpoint's labels \(ckpt_path\), whose labels "
        r"are \['neg', 'pos'\] \(does the checkpoint belong to another task",
    ):
        dm.setup("fit")
    with pytest.raises(ValueError, match="has no label vocabulary: it belongs to another task"):
        dm.load_state_dict({"tokenizer": FitWordTokenizer()(lambda: ["a b"]).state()})


def test_files_that_disagree_name_the_split_and_row(tmp_path):
    """A column missing from validation's file, and a text label in validation where train's labels are ints."""
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": "a b", "label": i % 2} for i in range(10)])
    no_label = write_jsonl(tmp_path / "v.jsonl", [{"text": "a b"}])
    with pytest.raises(ValueError, match=r"data.label_column='label': no such column in split 'validation'"):
        TextClassificationDataModule(
            HFSource("jsonl", data_files={"train": train, "validation": no_label})
        ).setup("fit")
    text_label = write_jsonl(
        tmp_path / "v2.jsonl", [{"text": "a b", "label": 1}, {"text": "c", "label": "pos"}]
    )
    with pytest.raises(
        ValueError,
        match=r"split 'validation' row 1, column 'label': label 'pos' does not occur in the "
        r"training split, whose labels are \[0, 1\]",
    ):
        TextClassificationDataModule(
            HFSource("jsonl", data_files={"train": train, "validation": text_label})
        ).setup("fit")

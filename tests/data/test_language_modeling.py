"""LanguageModelDataModule: official WikiText-2 token counts, contiguous BPTT windows, labels = next token."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlab.data.language_modeling import EOS, BPTTWindows, LanguageModelDataModule, batchify, bptt_windows
from seqlab.data.sources import HFSource
from tests.conftest import SHARED_DATA

WIKITEXT = SHARED_DATA / "wikitext-2"
needs_wikitext = pytest.mark.skipif(
    not (WIKITEXT / "train.txt").is_file(), reason=f"no WikiText-2 under {SHARED_DATA}"
)


def text_source(tmp_path: Path, splits: dict[str, str]) -> HFSource:
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, text in splits.items():
        path = tmp_path / f"{split}.txt"
        path.write_text(text, encoding="utf-8")
        files[split] = str(path)
    return HFSource("text", data_files=files, cache_dir=str(tmp_path / "cache"))


# ---- the real corpus ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wikitext2():
    files = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
    dm = LanguageModelDataModule(
        HFSource("text", data_files={k: str(WIKITEXT / v) for k, v in files.items()})
    )
    dm.setup("fit")
    return dm


@needs_wikitext
def test_wikitext2_official_token_counts(wikitext2):
    # whitespace_split + <eos> after every line, the empty lines (" ") included: Merity et al.'s counts
    assert {k: v.numel() for k, v in wikitext2.streams.items()} == {
        "train": 2_088_628,
        "validation": 217_646,
        "test": 245_569,
    }
    vocab = wikitext2.tokenizer.get_vocab()
    words = set(vocab) - {"<pad>"}
    assert len(words) == 33_278  # the official vocabulary, <eos> and <unk> included, fitted on train alone
    assert (
        int(wikitext2.streams["validation"].eq(wikitext2.tokenizer.unk_token_id).sum()) == 11_718
    )  # every <unk> is the corpus's own
    assert wikitext2.dims["vocab_size"] == max(vocab.values()) + 1 == len(vocab)  # no holes in the ids


@needs_wikitext
def test_wikitext2_ids_in_frequency_order(wikitext2):
    counts = torch.bincount(wikitext2.streams["train"], minlength=wikitext2.dims["vocab_size"])
    eos = wikitext2.eos_token_id
    words = counts[eos + 1 :]
    assert bool((words > 0).all())  # ids are contiguous: every id after <eos> is a word seen in train
    assert bool((words[:-1] >= words[1:]).all()), "adaptive-softmax cutoffs assume ids sorted by frequency"


@needs_wikitext
def test_wikitext2_first_window(wikitext2):
    batch = next(iter(wikitext2.train_dataloader()))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (20, 35)
    assert wikitext2.tokenizer.decode(batch["input_ids"][0, :6]) == [
        EOS,
        "=",
        "Valkyria",
        "Chronicles",
        "III",
        "=",
    ]


# ---- batchify and windows on a synthetic stream ---------------------------------------------------------
def test_batchify_drops_remainder_and_keeps_rows_contiguous():
    data = batchify(torch.arange(103), 4)  # (4, 25): 3 tokens dropped
    assert data.shape == (4, 25)
    assert torch.equal(data[1], torch.arange(25, 50))


def test_windows_continue_each_row_and_labels_are_next_tokens():
    data = batchify(torch.arange(103), 4)
    windows = BPTTWindows(data, bptt=5)
    batches = [windows[i] for i in range(len(windows))]
    assert len(batches) == 5  # ceil((25 - 1) / 5): the last window is shorter
    assert [b["input_ids"].size(1) for b in batches] == [5, 5, 5, 5, 4]
    for prev, nxt in zip(batches, batches[1:], strict=False):
        # row r of batch i+1 starts exactly where row r of batch i ended
        assert torch.equal(nxt["input_ids"][:, 0], prev["input_ids"][:, -1] + 1)
        assert torch.equal(
            prev["labels"][:, -1], nxt["input_ids"][:, 0]
        )  # the shift crosses window boundaries
    # the windows tile the rows exactly: inputs are all but the last column, labels all but the first
    assert torch.equal(torch.cat([b["input_ids"] for b in batches], 1), data[:, :-1])
    assert torch.equal(torch.cat([b["labels"] for b in batches], 1), data[:, 1:])
    assert all(bool(b["attention_mask"].eq(1).all()) for b in batches)
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_ranks_read_disjoint_rows_with_equal_window_counts():
    stream = torch.arange(1000)
    parts = [bptt_windows(stream, batch_size=3, bptt=7, rank=r, world_size=2) for r in range(2)]
    assert len(parts[0]) == len(parts[1])
    assert torch.equal(torch.cat([p.data for p in parts]), batchify(stream, 6))


def test_too_short_stream_is_an_error():
    with pytest.raises(ValueError, match="too short"):
        batchify(torch.arange(5), 4)


# ---- the DataModule on tiny files ------------------------------------------------------------------------
CORPUS = " = Title = \n \n a b c a \n \n b c d \n"  # WikiText layout: empty lines are " "


def test_stream_has_eos_after_every_line_including_empty_ones(tmp_path):
    dm = LanguageModelDataModule(
        text_source(tmp_path, {"train": CORPUS, "validation": CORPUS, "test": CORPUS}),
        batch_size=2,
        eval_batch_size=1,
        bptt=3,
    )
    dm.setup("fit")
    words = dm.tokenizer.decode(dm.streams["train"])
    assert words == ["=", "Title", "=", EOS, EOS, "a", "b", "c", "a", EOS, EOS, "b", "c", "d", EOS]
    off = LanguageModelDataModule(
        text_source(tmp_path / "off", {"train": CORPUS, "validation": CORPUS}), add_eos=False
    )
    off.setup("fit")
    assert off.streams["train"].numel() == 10 and off.eos_token_id is None


def test_loaders_yield_windows_in_order_every_time(tmp_path):
    text = "".join(f" w{i % 7} w{i % 5} w{i % 3} \n" for i in range(200))
    dm = LanguageModelDataModule(
        text_source(tmp_path, {"train": text, "validation": text, "test": text}),
        batch_size=4,
        eval_batch_size=2,
        bptt=6,
    )
    dm.setup("fit")
    for loader, rows in ((dm.train_dataloader, 4), (dm.val_dataloader, 2), (dm.test_dataloader, 2)):
        first, second = list(loader()), list(loader())
        expected = batchify(dm.streams["train"], rows)  # the three files are the same text
        assert torch.equal(torch.cat([b["input_ids"] for b in first], 1), expected[:, :-1])
        assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, second, strict=True))


def test_checkpoint_state_restores_the_tokenizer(tmp_path):
    dm = LanguageModelDataModule(text_source(tmp_path, {"train": CORPUS, "validation": CORPUS}))
    dm.setup("fit")
    other = LanguageModelDataModule(text_source(tmp_path, {"train": "x y z \n", "validation": CORPUS}))
    other.load_state_dict(dm.state_dict())
    other.setup("fit")  # a restored tokenizer is not fitted again
    assert torch.equal(other.streams["validation"], dm.streams["validation"])
    assert other.dims == dm.dims == {"vocab_size": dm.tokenizer.vocab_size, "pad_token_id": 0}


def test_missing_validation_is_the_tail_of_train_in_order(tmp_path):
    text = "".join(" " + " ".join(["a"] * (i + 1)) + " \n" for i in range(20))  # line i has i + 1 words
    dm = LanguageModelDataModule(text_source(tmp_path, {"train": text}), val_fraction=0.25)
    dm.setup("fit")

    def line_lengths(stream):
        ends = torch.nonzero(stream == dm.eos_token_id).flatten()
        return torch.diff(ends, prepend=torch.tensor([-1])).sub(1).tolist()

    assert line_lengths(dm.streams["validation"]) == [16, 17, 18, 19, 20]
    assert line_lengths(dm.streams["train"]) == list(range(1, 16))


def test_bad_column_names_the_key(tmp_path):
    dm = LanguageModelDataModule(
        text_source(tmp_path, {"train": CORPUS, "validation": CORPUS}), text_column="sentence"
    )
    with pytest.raises(ValueError, match="data.text_column='sentence'"):
        dm.setup("fit")

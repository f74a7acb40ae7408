"""The HF tokenizer path of the DataModules: pairs with token_type_ids, truncation counted, sub-word label alignment."""

from __future__ import annotations

import logging

import pytest

from seqlab.data.classification import TextClassificationDataModule
from seqlab.data.collate import IGNORE_INDEX
from seqlab.data.hf_tokenizer import HFTokenizer, LoadHFTokenizer
from seqlab.data.sources import HFSource
from seqlab.data.tagging import TokenClassificationDataModule, align_labels
from seqlab.data.tokenizers import tokenizer_from_state
from tests.helpers.tiny_data import write_classification, write_tagging

X = IGNORE_INDEX


def test_align_labels_first_piece_only():
    # [CLS] Acme (3 pieces) hired (1) Jane (2) [SEP]
    word_ids = [None, 0, 0, 0, 1, 2, 2, None]
    labels, starts = align_labels(word_ids, [5, 0, 7])
    assert labels == [X, 5, X, X, 0, 7, X, X]
    assert starts == [0, 1, 0, 0, 1, 1, 0, 0]
    # truncation cut the last word off entirely: it has no piece, hence no label
    labels, starts = align_labels([None, 0, 0, 1, None], [5, 0, 7])
    assert labels == [X, 5, X, 0, X] and starts == [0, 1, 0, 1, 0]


def test_encode_words_with_real_pieces_and_truncation(tiny_bert):
    tok = HFTokenizer.from_pretrained(str(tiny_bert))
    words = [["Acme", "Widgets", "hired", "Jane"]]
    out, word_ids, cut = tok.encode_words(words)
    pieces = tok.decode(out["input_ids"][0])
    assert (
        pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and word_ids[0][0] is None and word_ids[0][-1] is None
    )
    assert len(pieces) > len(words[0]) + 2 and cut == [False]  # some words were split into several pieces
    # every piece maps back to its word: the pieces of word i spell it (lowercased)
    for i, word in enumerate(words[0]):
        spelled = "".join(p.removeprefix("##") for p, w in zip(pieces, word_ids[0], strict=True) if w == i)
        assert spelled == word.lower()
    short, short_ids, cut = tok.encode_words(words, max_length=5)
    assert len(short["input_ids"][0]) == 5 and cut == [True] and short_ids[0][-1] is None
    assert short_ids[0][1:-1] == word_ids[0][1:4]  # the first pieces kept, in order


def test_pairs_and_state_round_trip(tiny_bert):
    tok = HFTokenizer.from_pretrained(str(tiny_bert))
    out, cut = tok.encode_texts(["the plot was good"], ["the cast was bad"])
    ids, types = out["input_ids"][0], out["token_type_ids"][0]
    sep = ids.index(tok.hf.sep_token_id)
    assert types == [0] * (sep + 1) + [1] * (len(ids) - sep - 1) and cut == [False]
    again = tokenizer_from_state(tok.state())
    assert again.encode_texts(["the plot was good"], ["the cast was bad"])[0] == out


def test_classification_datamodule_with_pairs(tiny_bert, tmp_path, caplog):
    files = write_classification(tmp_path, pairs=True, n_train=40, n_eval=8)
    dm = TextClassificationDataModule(
        HFSource("csv", data_files=files),
        text_column="premise",
        text_pair_column="hypothesis",
        tokenizer=LoadHFTokenizer(str(tiny_bert)),
        max_seq_length=8,
        batch_size=4,
    )
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "rows were longer than data.max_seq_length=8 tokens and were truncated" in caplog.text
    assert dm.dims["vocab_size"] == 200 and dm.dims["pad_token_id"] == 0
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["token_type_ids"].shape and batch["input_ids"].size(1) <= 8
    assert (batch["token_type_ids"][batch["attention_mask"] == 0] == 0).all()
    assert (batch["token_type_ids"].sum(1) > 0).all()  # every row has a second segment


def test_tagging_datamodule_labels_first_pieces_and_marks_word_starts(tiny_bert, tmp_path):
    files = write_tagging(tmp_path, n_train=20, n_eval=4)
    dm = TokenClassificationDataModule(
        HFSource("jsonl", data_files=files), tokenizer=LoadHFTokenizer(str(tiny_bert)), batch_size=4
    )
    dm.setup("fit")
    raw = dm.source.load()["validation"][dm.eval_order("validation")[0]]  # the loader: longest row first
    batch = next(iter(dm.val_dataloader()))
    starts, labels = batch["word_starts"][0], batch["labels"][0]
    assert int(starts.sum()) == len(raw["tokens"])  # one start per word
    assert (labels[~starts] == X).all()  # continuation pieces, special tokens and padding are not labelled
    assert [dm.label_vocab.labels[i] for i in labels[starts].tolist()] == raw["tags"]
    with pytest.raises(ValueError, match="use_chars=true needs one id per word"):
        TokenClassificationDataModule(
            HFSource("jsonl", data_files=files), tokenizer=LoadHFTokenizer(str(tiny_bert)), use_chars=True
        ).setup("fit")

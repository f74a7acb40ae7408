from __future__ import annotations

import pickle

import pytest

from seqlab.data.tokenizers import WordTokenizer

TEXTS = ["The cat sat", "the cat ran", "a dog ran , the end"]


def test_special_ids_and_unknown_words():
    tok = WordTokenizer.fit(TEXTS)
    vocab = tok.get_vocab()
    assert vocab["<pad>"] == 0 and vocab["<unk>"] == 1 == tok.unk_token_id
    assert tok.encode("the zebra sat") == [vocab["the"], 1, vocab["sat"]]
    assert tok.encode(["THE", "Zebra"]) == [vocab["the"], 1]  # pre-tokenized: one id per word, normalised


def test_min_freq_and_max_size():
    tok = WordTokenizer.fit(TEXTS, min_freq=2)
    assert set(tok.get_vocab()) == {"<pad>", "<unk>", "the", "cat", "ran"}  # the x4, cat x2, ran x2
    tok = WordTokenizer.fit(TEXTS, max_size=3)  # specials count towards max_size
    assert set(tok.get_vocab()) == {"<pad>", "<unk>", "the"}
    tok = WordTokenizer.fit(TEXTS, lowercase=False, min_freq=2)
    assert "The" not in tok.get_vocab() and tok.encode("The the") == [1, tok.get_vocab()["the"]]


def test_pre_tokenizers():
    assert WordTokenizer.fit(["don't stop"]).decode(WordTokenizer.fit(["don't stop"]).encode("don't")) == [
        "don",
        "'",
        "t",
    ]
    tok = WordTokenizer.fit(["@-@ keeps <unk> as is"], pre_tokenizer="whitespace_split", lowercase=False)
    assert tok.decode(tok.encode("@-@ <unk>")) == ["@-@", "<unk>"]
    with pytest.raises(ValueError, match="pre_tokenizer='bpe'"):
        WordTokenizer.fit(TEXTS, pre_tokenizer="bpe")


def test_round_trips(tmp_path):
    tok = WordTokenizer.fit(TEXTS, special_tokens=["<sep>"])
    sample = ["the dog sat <sep> quietly", "a"]
    path = tmp_path / "tok.json"
    tok.save(path)
    for other in (
        WordTokenizer.from_file(path),
        WordTokenizer.from_str(tok.to_str()),
        pickle.loads(pickle.dumps(tok)),
    ):
        assert other.get_vocab() == tok.get_vocab()
        assert other.encode_batch(sample) == tok.encode_batch(sample)


def test_a_special_token_inside_the_corpus_keeps_ids_contiguous():
    tok = WordTokenizer.fit(["a <unk> b <unk> <unk> a a"], pre_tokenizer="whitespace_split", lowercase=False)
    ids = sorted(tok.get_vocab().values())
    assert ids == list(range(tok.vocab_size)) and tok.get_vocab()["<unk>"] == 1
    assert tok.encode("a <unk> zzz") == [tok.get_vocab()["a"], 1, 1]

from __future__ import annotations

import gzip

import pytest
import torch
from torch import nn

from seqlab.models.vectors import load_vectors

VOCAB = {"<pad>": 0, "<unk>": 1, "the": 2, "Paris": 3, "zyx": 4, "paris": 5}


def embedding():
    torch.manual_seed(0)
    return nn.Embedding(len(VOCAB), 3, padding_idx=0)


@pytest.mark.parametrize("fmt", ["glove", "word2vec", "gz"])
def test_vectors_are_copied_for_known_words(fmt, tmp_path):
    lines = ["the 1 2 3", "paris 4 5 6", "london 7 8 9"]
    if fmt == "word2vec":
        lines.insert(0, "3 3")
    path = tmp_path / ("v.txt.gz" if fmt == "gz" else "v.txt")
    text = "\n".join(lines) + "\n"
    if fmt == "gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    emb = embedding()
    before = emb.weight.detach().clone()
    cov = load_vectors(path, VOCAB, emb)
    w = emb.weight.detach()
    assert torch.equal(w[2], torch.tensor([1.0, 2, 3]))
    assert torch.equal(w[5], torch.tensor([4.0, 5, 6])) and torch.equal(
        w[3], torch.tensor([4.0, 5, 6])
    )  # lowercased match
    assert torch.equal(w[4], before[4]) and torch.equal(
        w[0], torch.zeros(3)
    )  # unknown word, padding untouched
    assert (cov.found, cov.total) == (3, 4) and str(cov).startswith("3 / 4")


def test_exact_match_beats_lowercase(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("paris 4 5 6\nParis 9 9 9\n")
    emb = embedding()
    load_vectors(path, VOCAB, emb)
    assert torch.equal(emb.weight[3].detach(), torch.tensor([9.0, 9, 9]))


def test_wrong_dimension_and_missing_file(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 2\n")
    with pytest.raises(ValueError, match=r"v.txt:1: vectors have 2 dimensions but model.encoder.embed_dim=3"):
        load_vectors(path, VOCAB, embedding())
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_vectors(tmp_path / "nope.txt", VOCAB, embedding())

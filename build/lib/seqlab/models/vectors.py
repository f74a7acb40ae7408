"""Pretrained word vectors (GloVe or word2vec text format, optionally .gz) copied into an nn.Embedding."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class Coverage:
    found: int  # vocabulary words that got a pretrained vector
    total: int  # vocabulary words, special tokens excluded

    @property
    def ratio(self) -> float:
        return self.found / max(self.total, 1)

    def __str__(self) -> str:
        return f"{self.found:,} / {self.total:,} vocabulary words ({self.ratio:.1%})"


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def load_vectors(
    path: str | Path,
    vocab: Mapping[str, int],
    embedding: nn.Embedding,
    skip: tuple[str, ...] = ("<pad>", "<unk>"),
) -> Coverage:
    """Copy the vector of every vocabulary word found in `path` into its row of `embedding`.

    GloVe files have no header; word2vec text files start with ``<count> <dim>``, which is skipped. A word
    missing as written is looked up lowercased as well. Rows without a vector keep their initialisation; the
    padding row is never touched. Raises ValueError when the file's dimension differs from the embedding's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained vectors: no such file: {path}")
    exact_rows: dict[str, list[int]] = {}  # word as written -> ids
    lower_rows: dict[str, list[int]] = {}  # lowercased form -> ids of cased words ("Paris" <- "paris")
    for word, idx in vocab.items():
        if word in skip:
            continue
        exact_rows.setdefault(word, []).append(idx)
        if word.lower() != word:
            lower_rows.setdefault(word.lower(), []).append(idx)
    dim = embedding.embedding_dim
    exact: set[int] = set()
    found: set[int] = set()
    with _open(path) as f, torch.no_grad():
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "<count> <dim>"
            word, values = parts[0], parts[1:]
            if len(values) != dim:
                raise ValueError(
                    f"{path}:{lineno}: vectors have {len(values)} dimensions but model.encoder.embed_dim={dim}"
                )
            rows = exact_rows.get(word, [])
            fallback = [i for i in lower_rows.get(word, ()) if i not in exact]  # an exact match always wins
            if rows or fallback:
                vec = torch.tensor([float(v) for v in values], dtype=embedding.weight.dtype)
                embedding.weight[rows + fallback] = vec
                exact.update(rows)
                found.update(rows + fallback)
    cov = Coverage(found=len(found), total=sum(len(ids) for ids in exact_rows.values()))
    log.info("pretrained vectors from %s: %s", path.name, cov)
    return cov

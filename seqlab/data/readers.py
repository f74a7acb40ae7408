"""Readers for file formats HF `datasets` has no builder for (datasets 5 dropped loading scripts).

CoNLL column files: one token a line, whitespace-separated columns, blank line between sentences,
``-DOCSTART-`` lines skipped. Columns are named by the caller, so POS, chunk and NER files all read the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets import Sequence as SequenceFeature
from datasets.exceptions import DatasetGenerationError


def iter_conll(path: str | Path, columns: Sequence[str]) -> Iterator[dict[str, list[str]]]:
    """Yield one sentence at a time as ``{column: [value per token]}``.

    Raises ValueError naming the file and line when a line has the wrong number of columns.
    """
    sentence: dict[str, list[str]] = {c: [] for c in columns}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                if sentence[columns[0]]:
                    yield sentence
                    sentence = {c: [] for c in columns}
                continue
            if parts[0] == "-DOCSTART-":
                continue
            if len(parts) != len(columns):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(columns)} columns {list(columns)}, found {len(parts)}: {line.rstrip()!r}"
                )
            for c, value in zip(columns, parts, strict=True):
                sentence[c].append(value)
    if sentence[columns[0]]:
        yield sentence


def _generate(path: str, columns: tuple[str, ...], stamp: str) -> Iterator[dict[str, list[str]]]:
    # `stamp` is unused here: it is part of gen_kwargs only so that the datasets cache (keyed on the
    # generator and its kwargs) is invalidated when the file at `path` changes.
    yield from iter_conll(path, columns)


def read_conll(path: str | Path, columns: Sequence[str]) -> Dataset:
    """A CoNLL file as a `datasets.Dataset` with one list-of-strings column per CoNLL column (cached on disk)."""
    st = os.stat(path)
    features = Features({c: SequenceFeature(Value("string")) for c in columns})
    try:
        return Dataset.from_generator(
            _generate,
            features=features,
            # columns as a tuple: datasets shards list-valued gen_kwargs across workers
            gen_kwargs={"path": str(path), "columns": tuple(columns), "stamp": f"{st.st_size}-{st.st_mtime_ns}"},
        )
    except DatasetGenerationError as e:  # unwrap our own "file:line" error from the builder's wrapper
        cause = e.__cause__
        raise (cause if isinstance(cause, ValueError) else e) from None

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


def decoded_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(line number, text) of each line; a byte the encoding cannot read is an error naming file:line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{path}:{lineno}: not valid {encoding} (byte {raw[e.start]:#04x} at column {e.start + 1}); if the "
                    "file is in another encoding, set data.source.encoding (e.g. latin-1)"
                ) from None


def check_encoding(path: str | Path, encoding: str = "utf-8") -> None:
    """Read the whole file once: an error names the first line the encoding cannot decode."""
    for _ in decoded_lines(path, encoding):
        pass


def iter_conll(
    path: str | Path, columns: Sequence[str], encoding: str = "utf-8"
) -> Iterator[dict[str, list[str]]]:
    """Yield one sentence at a time as ``{column: [value per token]}``.

    Raises ValueError naming the file and line when a line has the wrong number of columns or cannot be decoded.
    """
    sentence: dict[str, list[str]] = {c: [] for c in columns}
    for lineno, line in decoded_lines(path, encoding):
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


def _generate(
    path: str, columns: tuple[str, ...], stamp: str, encoding: str
) -> Iterator[dict[str, list[str]]]:
    # `stamp` is unused here: it is part of gen_kwargs only so that the datasets cache (keyed on the
    # generator and its kwargs) is invalidated when the file at `path` changes.
    yield from iter_conll(path, columns, encoding)


def read_conll(path: str | Path, columns: Sequence[str], encoding: str = "utf-8") -> Dataset:
    """A CoNLL file as a `datasets.Dataset` with one list-of-strings column per CoNLL column (cached on disk)."""
    st = os.stat(path)
    features = Features({c: SequenceFeature(Value("string")) for c in columns})
    try:
        return Dataset.from_generator(
            _generate,
            features=features,
            # columns as a tuple: datasets shards list-valued gen_kwargs across workers
            gen_kwargs={
                "path": str(path),
                "columns": tuple(columns),
                "stamp": f"{st.st_size}-{st.st_mtime_ns}",
                "encoding": encoding,
            },
        )
    except DatasetGenerationError as e:  # unwrap our own "file:line" error from the builder's wrapper
        cause = e.__cause__
        raise (cause if isinstance(cause, ValueError) else e) from None

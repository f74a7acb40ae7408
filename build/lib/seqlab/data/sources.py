"""Where raw splits come from. A *source* is any object with ``load() -> datasets.DatasetDict``.

`HFSource` mirrors ``datasets.load_dataset(path, name, data_files=...)``: `path` is a hub name
(``stanfordnlp/sst2``, ``eriktks/conll2003``, ``Salesforce/wikitext``) or a local format
(csv, tsv, json, jsonl, parquet, text, conll). The embedded default data set has its own source
(`seqlab.data.synthetic.NegationSentimentSource`); any other class with ``load()`` plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import DatasetDict, load_dataset

from seqlab.data.readers import check_encoding, read_conll

# Local formats: seqlab's name -> (datasets builder, default builder kwargs).
# `quoting=3` (csv.QUOTE_NONE) for TSV: with default quoting a stray `"` silently merges rows.
FILE_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "csv": ("csv", {}),
    "tsv": ("csv", {"delimiter": "\t", "quoting": 3}),
    "json": ("json", {}),
    "jsonl": ("json", {}),
    "parquet": ("parquet", {}),
    "text": ("text", {}),
}
CONLL = "conll"
DEFAULT_CONLL_COLUMNS = ("tokens", "tags")


class HFSource:
    """Splits from the HF hub or from local files.

    Args:
        path: hub data set name, or one of csv, tsv, json, jsonl, parquet, text, conll.
        name: hub configuration name (``sst2`` of ``nyu-mll/glue``).
        data_files: ``{split: file or [files]}`` (a single file means ``train``). Required for local formats.
        split_names: ``{seqlab split: source split}``, e.g. ``{validation: dev}``; seqlab uses train/validation/test.
        reader_kwargs: passed to the builder (``delimiter``, ``column_names``, ``sample_by`` ...); for conll,
            ``columns`` names the file's columns in order (default: tokens, tags).
        cache_dir: datasets cache directory (None: the HF default).
        encoding: of local text files (csv, tsv, json, jsonl, text, conll); many classic corpora are latin-1.
    Each split's files are read on their own, so an error names the split and file at fault.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
        split_names: Mapping[str, str] | None = None,
        reader_kwargs: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
        encoding: str = "utf-8",
    ):
        self.path = path
        self.name = name
        self.data_files = _normalise_files(data_files)
        self.split_names = dict(split_names or {})
        self.reader_kwargs = dict(reader_kwargs or {})
        self.cache_dir = cache_dir
        self.encoding = encoding
        if self.is_local and not self.data_files:
            raise ValueError(
                f"data source path={path!r} reads local files: set data_files (e.g. data_files.train=...)"
            )

    @property
    def is_local(self) -> bool:
        return self.path in FILE_FORMATS or self.path == CONLL

    def load(self) -> DatasetDict:
        for split, files in self.data_files.items():
            for f in files:
                if not Path(f).is_file():
                    raise FileNotFoundError(f"data_files.{split}: no such file: {f}")
                if Path(f).stat().st_size == 0:
                    raise ValueError(f"data_files.{split}: {f} is empty (0 bytes)")
                if self.path != "parquet":
                    check_encoding(f, self.encoding)
                if self.path in ("csv", "tsv") and _data_lines(f, self.encoding) == 0:
                    raise ValueError(f"data_files.{split}: {f} holds no rows (a header only?)")
        if self.path == CONLL:
            columns = tuple(self.reader_kwargs.get("columns", DEFAULT_CONLL_COLUMNS))
            unknown = set(self.reader_kwargs) - {"columns"}
            if unknown:
                raise ValueError(
                    f"reader_kwargs {sorted(unknown)} do not apply to conll files (only: columns)"
                )
            raw = DatasetDict(
                {
                    split: _concat([read_conll(f, columns, self.encoding) for f in files])
                    for split, files in self.data_files.items()
                }
            )
        elif self.path in FILE_FORMATS:
            raw = DatasetDict({split: self._read(split, files) for split, files in self.data_files.items()})
        else:  # a hub data set
            raw = load_dataset(
                self.path,
                self.name,
                data_files=self.data_files or None,
                cache_dir=self.cache_dir,
                **self.reader_kwargs,
            )
        raw = _rename_splits(raw, self.split_names, source=self)
        for split, ds in raw.items():
            if self.is_local and len(ds) == 0:
                raise ValueError(
                    f"data_files.{split}: {self.data_files.get(split)} holds no rows (a header only?)"
                )
        return raw

    def _read(self, split: str, files: list[str]):
        """One split's local files with the datasets builder; its errors name the split and files."""
        builder, defaults = FILE_FORMATS[self.path]
        kwargs = {
            **defaults,
            **({"encoding": self.encoding} if self.path != "parquet" else {}),
            **self.reader_kwargs,
        }
        try:
            return load_dataset(builder, data_files={split: files}, cache_dir=self.cache_dir, **kwargs)[split]
        except Exception as e:  # datasets wraps the reader's error in DatasetGenerationError: show the cause
            cause = e.__cause__ or e
            text = " ".join(str(cause).split())[:300]
            raise ValueError(
                f"data_files.{split}: could not read {', '.join(files)} as {self.path} ({type(cause).__name__}: {text}); "
                "check the format (data.source.path), its options (data.source.reader_kwargs) and the file"
            ) from None

    def __repr__(self) -> str:
        return f"HFSource(path={self.path!r}, name={self.name!r}, data_files={self.data_files})"


def _data_lines(path: str, encoding: str) -> int:
    """Non-empty lines after the header (at most 1 counted: enough to tell an empty table)."""
    with open(path, encoding=encoding) as f:
        next(f, None)
        return next((1 for line in f if line.strip()), 0)


def _normalise_files(data_files) -> dict[str, list[str]]:
    if data_files is None:
        return {}
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, Mapping):
        return {k: [v] if isinstance(v, str) else list(v) for k, v in data_files.items() if v is not None}
    return {"train": list(data_files)}


def _concat(parts):
    from datasets import concatenate_datasets

    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def _rename_splits(raw: DatasetDict, split_names: Mapping[str, str], source) -> DatasetDict:
    out = DatasetDict({k: v for k, v in raw.items() if k not in split_names.values()})
    for ours, theirs in split_names.items():
        if theirs not in raw:
            raise ValueError(
                f"{source}: split_names.{ours}={theirs!r} but the source has splits {sorted(raw)}"
            )
        out[ours] = raw[theirs]
    return out

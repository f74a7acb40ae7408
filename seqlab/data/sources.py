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

from seqlab.data.readers import read_conll

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
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        data_files: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
        split_names: Mapping[str, str] | None = None,
        reader_kwargs: Mapping[str, Any] | None = None,
        cache_dir: str | None = None,
    ):
        self.path = path
        self.name = name
        self.data_files = _normalise_files(data_files)
        self.split_names = dict(split_names or {})
        self.reader_kwargs = dict(reader_kwargs or {})
        self.cache_dir = cache_dir
        if self.is_local and not self.data_files:
            raise ValueError(f"data source path={path!r} reads local files: set data_files (e.g. data_files.train=...)")

    @property
    def is_local(self) -> bool:
        return self.path in FILE_FORMATS or self.path == CONLL

    def load(self) -> DatasetDict:
        for split, files in self.data_files.items():
            for f in files:
                if not Path(f).is_file():
                    raise FileNotFoundError(f"data_files.{split}: no such file: {f}")
        if self.path == CONLL:
            columns = tuple(self.reader_kwargs.get("columns", DEFAULT_CONLL_COLUMNS))
            unknown = set(self.reader_kwargs) - {"columns"}
            if unknown:
                raise ValueError(f"reader_kwargs {sorted(unknown)} do not apply to conll files (only: columns)")
            raw = DatasetDict({split: _concat([read_conll(f, columns) for f in files]) for split, files in self.data_files.items()})
        elif self.path in FILE_FORMATS:
            builder, defaults = FILE_FORMATS[self.path]
            raw = load_dataset(builder, data_files=self.data_files, cache_dir=self.cache_dir, **{**defaults, **self.reader_kwargs})
        else:  # a hub data set
            raw = load_dataset(self.path, self.name, data_files=self.data_files or None, cache_dir=self.cache_dir, **self.reader_kwargs)
        return _rename_splits(raw, self.split_names, source=self)

    def __repr__(self) -> str:
        return f"HFSource(path={self.path!r}, name={self.name!r}, data_files={self.data_files})"


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
            raise ValueError(f"{source}: split_names.{ours}={theirs!r} but the source has splits {sorted(raw)}")
        out[ours] = raw[theirs]
    return out

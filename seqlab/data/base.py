"""What every seqlab DataModule shares: split preparation and DataLoader options.

Subclasses implement Lightning's hooks themselves (`setup`, `state_dict`, ...); this module only holds
helpers they would otherwise copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict
from datasets.fingerprint import Hasher
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from seqlab.data.collate import keep_lengths_on_cpu
from seqlab.data.sampling import BucketSampler, ResumableDataLoader

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
TRUNCATED = "_truncated"  # a temporary column: which rows max_seq_length cut (counted, logged, then dropped)
# Where each row sits in the source (its split and index there), kept through carving, slicing and encoding so
# that an error names the row in the user's file, not its position after a shuffle. Dropped after encoding.
ROW, SOURCE = "_row", "_source_split"


def where(split: str, source: str, row: int) -> str:
    """``split 'train' row 4``, or for a split carved from another: ``split 'validation', row 4 of the source's
    'train' split`` (rows count from 0, in the source's order)."""
    return (
        f"split '{split}' row {row}"
        if source == split
        else f"split '{split}', row {row} of the source's '{source}' split"
    )


def prepare_splits(
    raw: DatasetDict,
    *,
    val_fraction: float,
    split_seed: int | None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    max_predict_samples: int | None = None,
) -> DatasetDict:
    """train/validation/test from what the source has: carve validation out of train when missing, then cut
    each split to `max_*_samples` rows (the first rows, so a slice is reproducible). `max_eval_samples` cuts
    validation, and test too unless `max_predict_samples` is given.

    The carve draws rows at random with `split_seed`; ``split_seed=None`` takes the last rows in order instead,
    for data whose row order matters (the lines of a language-modelling corpus).
    """
    if "train" not in raw:
        raise ValueError(
            f"the data source has no 'train' split (it has {sorted(raw)}); map one with split_names"
        )
    splits = {name: with_row_columns(ds, name) for name, ds in raw.items()}
    if "validation" not in splits:
        if not 0 < val_fraction < 1:
            raise ValueError(
                f"the source has no validation split and val_fraction={val_fraction}: set 0 < val_fraction < 1"
            )
        train = splits["train"]
        if split_seed is None:
            cut = len(train) - max(1, int(len(train) * val_fraction))
            splits["train"], splits["validation"] = (
                train.select(range(cut)),
                train.select(range(cut, len(train))),
            )
        else:
            parts = train.train_test_split(test_size=val_fraction, seed=split_seed, shuffle=True)
            splits["train"], splits["validation"] = parts["train"], parts["test"]
        log.warning(
            "no validation split in the source: carved %d rows from train (val_fraction=%s, %s)",
            len(splits["validation"]),
            val_fraction,
            "the last rows, in order" if split_seed is None else f"seed={split_seed}",
        )
    test_limit = max_predict_samples if max_predict_samples is not None else max_eval_samples
    for split, limit in (
        ("train", max_train_samples),
        ("validation", max_eval_samples),
        ("test", test_limit),
    ):
        if limit is not None and split in splits and len(splits[split]) > limit:
            splits[split] = splits[split].select(range(limit))
    return DatasetDict({k: v for k, v in splits.items() if k in SPLITS})


def with_row_columns(ds: Dataset, split: str) -> Dataset:
    """`ds` with the ROW and SOURCE columns. Their fingerprints are derived from `ds`'s, not hashed from the new
    columns' contents (which datasets would pickle and hash, a second per 100k rows on every load)."""
    n = len(ds)
    key = Hasher.hash([ds._fingerprint, split, n])
    ds = ds.add_column(ROW, pa.array(range(n), pa.int64()), new_fingerprint=f"{key}-row")
    return ds.add_column(SOURCE, pa.repeat(pa.scalar(split), n), new_fingerprint=f"{key}-source")


def count_truncated(encoded: Dataset, split: str, key: str, value) -> Dataset:
    """Log how many rows `key` cut (once per split), and drop the `TRUNCATED` column that says which."""
    if TRUNCATED not in encoded.column_names:
        return encoded
    n = pc.sum(arrow_column(encoded, TRUNCATED)).as_py() or 0
    if n:
        log.warning(
            "split '%s': %d of %d rows were longer than %s=%s tokens and were truncated (raise %s to keep more)",
            split,
            n,
            len(encoded),
            key,
            value,
            key,
        )
    return encoded.remove_columns(TRUNCATED)


def drop_empty_rows(encoded: Dataset, source: Dataset, split: str, what: str, drop: bool) -> Dataset:
    """Rows whose ``input_ids`` are empty: an error naming the first one in the source (`source`: what `encoded`
    was tokenized from, row for row), or (``drop``) removed with a warning. An RNN cannot read a sequence of
    length 0."""
    sizes = pc.list_value_length(arrow_column(encoded, "input_ids"))
    empty = pc.indices_nonzero(pc.equal(sizes, 0)).to_pylist()
    if empty and not drop:
        first = source[empty[0]]
        raise ValueError(
            f"{where(split, first.get(SOURCE, split), first.get(ROW, empty[0]))} (and {len(empty) - 1} more): {what} "
            "has no tokens; an RNN cannot read an empty sequence. Clean the data or set data.drop_empty=true"
        )
    if empty:
        log.warning("split '%s': dropped %d rows with no tokens (data.drop_empty=true)", split, len(empty))
        gone = set(empty)
        encoded = encoded.select(i for i in range(len(encoded)) if i not in gone)
    return encoded


def column(ds: Dataset, name: str) -> list:
    """One column as a Python list (datasets 5 returns a lazy `Column` object from ``ds[name]``), through the
    indices mapping of a `select` / carved split: ``ds.data`` is the whole table under it (a carved train split
    read that way would also hold the validation rows)."""
    return ds.features.decode_column(arrow_column(ds, name).to_pylist(), name)  # e.g. a Json column's values


def row_lengths(ds: Dataset) -> list[int]:
    """Each row's number of ``input_ids``, from the Arrow list offsets (the ids are never read into Python)."""
    return pc.list_value_length(arrow_column(ds, "input_ids")).to_pylist()


def arrow_column(ds: Dataset, name: str) -> pa.ChunkedArray:
    """One column as Arrow, through the indices mapping: pyarrow's ``take`` over datasets' (private) ``_indices``
    table; datasets' own gather (``ds.with_format("arrow")[name]``) loops in Python, ~0.3 s per 65k rows, and is
    the fallback should that attribute change."""
    if not hasattr(ds, "_indices"):
        return ds.with_format("arrow")[name]
    values = ds.data.column(name)
    return values if ds._indices is None else values.take(ds._indices.column(0))


def require_columns(ds: Dataset, split: str, columns: dict[str, str | None]) -> None:
    """Fail with the override to fix and the columns that exist, e.g. ``data.text_column='sentence'``."""
    for arg, col in columns.items():
        if col is not None and col not in ds.column_names:
            available = [c for c in ds.column_names if c not in (ROW, SOURCE)]
            raise ValueError(
                f"data.{arg}={col!r}: no such column in split '{split}'; available columns: {available}"
            )


class SeqDataModule(LightningDataModule):
    """What seqlab DataModules share: a `source`, prepared splits in `self.datasets`, DataLoader options
    (`eval_batch_size` defaults to `batch_size`; `bucketing` batches training rows of similar lengths, drawn from
    pools of `bucket_pool` batches: `BucketSampler`). Subclasses implement `setup`, `collate`, `dims` and the state.
    """

    source: Any
    datasets: Mapping[str, Any] | None = None

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        bucketing: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
        bucket_pool: int = 100,
    ):
        super().__init__()
        sizes = (
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("bucket_pool", bucket_pool),
        )
        for key, value in sizes:
            if value is not None and value < 1:
                raise ValueError(f"data.{key}={value}: must be >= 1")
        if persistent_workers and num_workers == 0:
            raise ValueError("data.persistent_workers=true needs data.num_workers > 0")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.bucketing = bucketing
        self.bucket_pool = bucket_pool
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.drop_last = drop_last

    def prepare_data(self) -> None:
        self.source.load()  # download / build the datasets cache once, on one process

    def load_splits(self, split_seed: int | None) -> DatasetDict:
        """The source's splits, prepared with this DataModule's val_fraction and max_*_samples (`prepare_splits`)."""
        hp = self.hparams
        return prepare_splits(
            self.source.load(),
            val_fraction=hp.val_fraction,
            split_seed=split_seed,
            max_train_samples=hp.max_train_samples,
            max_eval_samples=hp.max_eval_samples,
            max_predict_samples=hp.get("max_predict_samples"),
        )

    def has_split(self, name: str) -> bool:
        return self.datasets is not None and name in self.datasets

    def split(self, name: str):
        """The prepared split `name`; a clear error when the source has none (e.g. no test files)."""
        if self.datasets is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not run yet")
        if name not in self.datasets:
            hint = " (or run with test=false)" if name == "test" else ""
            raise ValueError(
                f"the data has no '{name}' split (it has {sorted(self.datasets)}): add data_files.{name}{hint}"
            )
        return self.datasets[name]

    def train_dataloader(self):
        train = self.split("train")
        if not self.bucketing:
            return self._loader(train, train=True, collate_fn=self.collate)
        trainer = self.trainer  # None outside a Trainer
        sampler = BucketSampler(
            row_lengths(train),
            self.batch_size,
            seed=int(torch.randint(0, 2**31 - 1, ()).item()),  # from the run's seed (seed_everything)
            pool_batches=self.bucket_pool,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            drop_last=self.drop_last,
        )
        return ResumableDataLoader(
            train,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=self.collate,
            **self._loader_options(),
        )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return keep_lengths_on_cpu(batch, super().transfer_batch_to_device, device, dataloader_idx)

    def val_dataloader(self):
        return self._eval_loader("validation")

    def test_dataloader(self):
        return self._eval_loader("test")

    def eval_order(self, split: str) -> list[int]:
        """The rows of `split` longest first, as its evaluation loader yields them: batches of similar lengths
        waste little on padding, and the longest batch comes first, so a too-large `eval_batch_size` fails at
        once. Ties keep the row order (a stable sort), so the order is the same on every call."""
        lengths = row_lengths(self.split(split))
        return sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def in_row_order(self, rows: list, split: str = "test") -> list:
        """Per-row results in the order `eval_order` yields them (`trainer.predict` over
        ``test_dataloader()``, what `seqlab.train.write_predictions` runs), back in the split's row order."""
        order = self.eval_order(split)
        if len(rows) != len(order):
            raise ValueError(f"{len(rows)} results for the {len(order)} rows of split '{split}'")
        out = [None] * len(rows)
        for position, row in enumerate(order):
            out[row] = rows[position]
        return out

    def _eval_loader(self, split: str) -> DataLoader:
        order = self.eval_order(split)
        return self._loader(self.split(split), train=False, collate_fn=self.collate, sampler=order)

    def _loader_options(self) -> dict[str, Any]:
        return dict(
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def _loader(
        self, dataset, *, train: bool, collate_fn=None, sampler=None, batch_sampler=None
    ) -> DataLoader:
        kwargs = {**self._loader_options(), "collate_fn": collate_fn}
        if batch_sampler is not None:
            return DataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=self.drop_last and train,
            **kwargs,
        )

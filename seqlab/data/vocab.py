"""Label vocabularies built from the training split and saved with the checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


class LabelVocab:
    """Label value <-> id. Values keep their type (the ints 0/1 of SST-2, the strings of CoNLL tags).

    Built from train only: a label that appears only in validation or test is an error, because the model
    could never predict it (see `encode`).
    """

    def __init__(self, labels: Sequence[Any], origin: str = "the training split"):
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate labels in {list(labels)}")
        self.labels = list(labels)
        self.origin = origin  # where the labels came from, for the error on a label outside them
        self._index = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_values(cls, values: Iterable[Any], names: Sequence[Any] | None = None) -> LabelVocab:
        """`names` (a ClassLabel's names) fixes the order; otherwise the sorted set of values, for determinism."""
        if names is not None:
            return cls(list(names))
        seen = set(values)
        if None in seen:
            raise ValueError(f"training row {list(values).index(None)} has no label (null)")
        return cls(sorted(seen, key=lambda v: (str(type(v)), v)))

    def encode(self, value: Any, where: str = "") -> int:
        try:
            return self._index[value]
        except KeyError:
            hint = (
                ""
                if self.origin == "the training split"
                else " (does the checkpoint belong to another task or data set?)"
            )
            raise ValueError(
                f"{where}label {value!r} does not occur in {self.origin}, whose labels are {self.labels[:20]}"
                + (" ..." if len(self.labels) > 20 else "")
                + hint
            ) from None

    def encode_many(self, values: Sequence[Any], where: Callable[[int], str] = lambda i: "") -> list[int]:
        """`encode` for many values; `where(i)` names value i's place in the data, built only for a bad one."""
        index = self._index
        try:
            return [index[v] for v in values]
        except (KeyError, TypeError):
            for i, v in enumerate(values):
                self.encode(v, where(i))
            raise

    def decode(self, idx: int) -> Any:
        return self.labels[idx]

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, value: Any) -> bool:
        return value in self._index

    def __repr__(self) -> str:
        return f"LabelVocab({self.labels[:10]}{' ...' if len(self) > 10 else ''})"

"""Length-bucketed training batches that shard across DDP ranks and resume mid-epoch.

`BucketSampler` orders one epoch; `ResumableDataLoader` remembers how far into it training got, so that a
checkpoint saved mid-epoch (``val_check_interval < 1``, ``every_n_train_steps``) resumes at the next batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler


class BucketSampler(DistributedSampler):
    """Random batches of similar lengths: shuffle the rows, cut them into pools of `pool_batches` batches, sort
    each pool by length, cut it into batches, shuffle the full batches, and put the one short batch last (so the
    DataLoader's batches are exactly these). Deterministic for a (`seed`, epoch) pair (``set_epoch``).

    DDP: all ranks draw the same batches; rank r takes batches r, r + W, r + 2W, ... of them. When the batch count
    does not divide by W, the first full batches are repeated (as `DistributedSampler` repeats rows) so every rank
    gets the same number; with ``drop_last`` the extra batches are dropped instead. It subclasses
    `DistributedSampler` because that is what Lightning checks before wrapping a sampler in its own
    (which would deal single rows, not batches, to the ranks).

    Resuming: ``state_dict()`` / ``load_state_dict()`` carry the seed, epoch and the number of batches this rank
    already trained on; the next iteration of that epoch starts after them.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        seed: int = 0,
        pool_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ):
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size={batch_size}, pool_batches={pool_batches}: both must be >= 1")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        # DistributedSampler.__init__ would ask torch.distributed for the world: set its fields directly.
        self.dataset = lengths
        self.lengths, self.batch_size, self.pool_batches = lengths, batch_size, pool_batches
        self.num_replicas, self.rank, self.seed, self.drop_last = num_replicas, rank, seed, drop_last
        self.shuffle = True
        self.epoch = 0
        self.skip_batches = 0  # set by load_state_dict, used by the next __iter__ only
        self._cache: tuple[tuple[int, int], list[list[int]]] | None = None

    def batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch, in training order."""
        key = (self.seed, self.epoch)
        if self._cache is None or self._cache[0] != key:
            self._cache = key, self._draw()
        return self._cache[1]

    def _draw(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: -self.lengths[i])
            batches += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        full = [full[k] for k in torch.randperm(len(full), generator=g).tolist()]
        if self.drop_last:
            short = []
            full = full[: len(full) - len(full) % self.num_replicas]
        else:
            missing = -(len(full) + len(short)) % self.num_replicas
            full += (full * math.ceil(missing / max(len(full), 1)))[:missing]
        return (full + short)[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        skip, self.skip_batches = self.skip_batches, 0
        return (i for batch in self.batches()[skip:] for i in batch)

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches())

    def state_dict(self, batches_done: int = 0) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore the seed and epoch; the next iteration starts after the batches done (none when the saved
        epoch was complete: Lightning then moves on to the next epoch and calls ``set_epoch``)."""
        self.seed, self.epoch = state["seed"], state["epoch"]
        done = state["batches_done"]
        self.skip_batches = done if done < len(self.batches()) else 0


class ResumableDataLoader(DataLoader):
    """A DataLoader that counts the batches it hands out in the current epoch; over a `BucketSampler` its
    ``state_dict()`` is the sampler's position, which Lightning saves in every checkpoint (as it does for any
    loader with that interface) and gives back through ``load_state_dict()`` on resume, before the epoch's
    iterator draws its first batch. Over another sampler (Lightning swaps in a sequential one for
    ``trainer.overfit_batches``) the state is empty."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._batches_done = 0

    def __iter__(self):
        # Made now, as DataLoader.__iter__ would (its base seed is drawn here), not at the first batch.
        return _Counting(super().__iter__(), self, done=getattr(self.sampler, "skip_batches", 0))

    def state_dict(self) -> dict[str, int]:
        if not isinstance(self.sampler, BucketSampler):
            return {}
        return self.sampler.state_dict(self._batches_done)

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state and isinstance(self.sampler, BucketSampler):
            self.sampler.load_state_dict(state)


class _Counting:
    """The loader's iterator, counting the batches it yields into ``loader._batches_done``."""

    def __init__(self, iterator, loader: ResumableDataLoader, done: int):
        self.iterator, self.loader = iterator, loader
        loader._batches_done = done

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.iterator)
        self.loader._batches_done += 1
        return batch

    def __len__(self) -> int:
        return len(self.iterator)

"""ReseedEachEpoch: every training epoch starts from random state derived from (seed, epoch) alone.

Why: a run resumed from ``last.ckpt`` must see the same batches and dropout masks as the uninterrupted run.
Lightning does not save the RNG state, and the resumed process reaches epoch e with whatever state its own
start-up left (the same as a fresh epoch 0), so without reseeding it would replay epoch 0's shuffle.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 32-bit seed for `epoch` of a run seeded `seed`, well mixed (numpy's SeedSequence), so that nearby
    seeds and epochs do not give overlapping streams."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def reseed(seed: int) -> None:
    """Seed the generators a training step may draw from: torch (CPU and every GPU), numpy, Python's random."""
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed)
    random.seed(seed)


class ReseedEachEpoch(Callback):
    """At each ``on_train_epoch_start``, seed torch / numpy / random from (`seed`, epoch).

    The epoch's shuffle must be drawn after that. A DataLoader iterator draws from the global generator when it
    is created (its base seed) and when the first batch is taken (`RandomSampler`'s seed). Lightning creates the
    iterator after this hook for every epoch but the first one of a ``fit`` call (fresh or resumed), whose
    iterator exists before the hook: that one is created again here, so every epoch sees the same draws
    whether it was reached by training or by resuming. (`BucketSampler` depends on its own seed and
    ``set_epoch`` only.)

    A checkpoint saved mid-epoch (``val_check_interval < 1``, ``every_n_train_steps``) also holds torch's
    generator states (``state_dict``), restored at ``on_train_start`` of the resumed fit: Lightning starts no new
    epoch there, and the rest of the epoch draws the same dropout masks; the bucketed train loader
    (`ResumableDataLoader`) skips the batches already done. A run killed between checkpoints resumes from its
    ``last.ckpt`` and does the steps after it again, with the same result.
    Workers' generators (``num_workers > 0``) are seeded from the iterator, hence from this reseed too.

    Args: seed: the run's seed (``${seed}``); None turns the callback off.
    """

    def __init__(self, seed: int | None):
        self.seed = seed
        self._first_epoch_of_fit = False
        self._rng_to_restore: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        if self.seed is None:
            return {}
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict or None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._first_epoch_of_fit = True

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        state, self._rng_to_restore = self._rng_to_restore, None
        if state is None or self.seed is None:
            return  # (at an epoch start, on_train_epoch_start reseeds anyway)
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.seed is None:
            return
        reseed(epoch_seed(self.seed, trainer.current_epoch))
        if self._first_epoch_of_fit:
            self._first_epoch_of_fit = False
            recreate_train_iterator(trainer)


def recreate_train_iterator(trainer: Trainer) -> None:
    """Make the fit loop's train iterator again (Lightning made it in ``FitLoop.setup_data``, before the epoch's
    hooks). Uses Lightning's private ``_data_fetcher``: when it is missing (another Lightning version) the run
    goes on with a warning, reproducible but not equal to an uninterrupted run."""
    fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
    if fetcher is None:
        log.warning("ReseedEachEpoch: cannot reach the train iterator; a resumed run may see other batches")
        return
    iter(fetcher)

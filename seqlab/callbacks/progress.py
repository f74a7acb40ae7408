"""RichProgressBar: Lightning's rich progress bar, reading the logged metrics only as often as it redraws.

Lightning's bar gathers the progress-bar metrics (the logger connector's dicts, forked names, tensors turned
into floats) after every training batch, ~0.2 ms, though the screen shows them only ``refresh_rate`` times a
second: ~1% of a small LSTM's step on a CPU. This one reuses the last gathered metrics within a training epoch
until a redraw is due; epoch ends, validation and tests read them fresh, so what stays on screen is exact.
"""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import RichProgressBar as LightningRichProgressBar


class RichProgressBar(LightningRichProgressBar):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._in_train_batch = False
        self._metrics: dict[str, Any] | None = None
        self._read_at = float("-inf")  # time.monotonic() when `_metrics` was gathered

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._in_train_batch = True
        try:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        finally:
            self._in_train_batch = False

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        now = time.monotonic()
        if self._in_train_batch and self._metrics is not None and now - self._read_at < 1 / self.refresh_rate:
            return self._metrics
        self._metrics, self._read_at = super().get_metrics(trainer, pl_module), now
        return self._metrics

"""RichProgressBar: Lightning's rich progress bar, redrawing only where it is seen and reading the logged
metrics only as often as it redraws.

Each redraw builds and renders the bar in a thread that holds Python's lock: ~3 ms in a terminal, ~1 ms where
the output is a file or a pipe (measured on the 2-core CPU machine). At 10 redraws a second that is ~3% of the
run in a terminal, and ~1% in a log file, where rich draws nothing until the end anyway. So the bar redraws
``refresh_rate`` times a second (4 in seqlab's config: rich's own default for live displays) in a terminal or a
notebook, and once a second elsewhere.

Lightning's bar also gathers the progress-bar metrics (the logger connector's dicts, forked names, tensors turned
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
        self._seen_on: Any = None  # the console `_seen` was found for
        self._seen = True  # whether that console shows the bar as it goes (a terminal or a notebook)

    @property
    def refresh_rate(self) -> float:
        """Redraws per second: the configured rate where the bar is seen, once a second where it is not drawn
        until the end (output to a file or a pipe)."""
        console = self._console  # (set by Lightning before it builds the bar with this rate)
        if console is None:
            return self._refresh_rate
        if (
            self._seen_on is not console
        ):  # (read several times a batch; the check costs ~6 µs: once per console)
            self._seen_on = console
            self._seen = console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal)
        return self._refresh_rate if self._seen else min(self._refresh_rate, 1)  # (0 still disables the bar)

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

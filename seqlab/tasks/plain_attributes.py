"""PlainAttributes: plain values (str, bool, int, float, None) are set on a task without nn.Module's checks.

Lightning names the hook it runs on the module (``module._current_fx_name = "training_step"``) before and after
each of the ~20 hooks of a training step, and ``nn.Module.__setattr__`` checks every value against parameters,
submodules and buffers (three isinstance checks through Parameter's metaclass): ~2 µs each on a CPU, ~0.1 ms a
step, half a percent of a small LSTM's step. A plain value under a name that is no parameter, submodule or
buffer ends up as an ordinary attribute either way, so it is set as one; everything else (tensors, modules,
None for a registered parameter or buffer) goes through nn.Module as before.
"""

from __future__ import annotations

from typing import Any

_PLAIN = frozenset({str, bool, int, float, type(None)})


class PlainAttributes:
    """Mixin before ``LightningModule`` in a task's bases."""

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) in _PLAIN:
            d = self.__dict__  # (empty before nn.Module.__init__: plain values are plain attributes then too)
            if (
                name not in d.get("_parameters", ())
                and name not in d.get("_buffers", ())
                and name not in d.get("_modules", ())
            ):
                # (a property's setter still runs: object.__setattr__ honours descriptors)
                object.__setattr__(self, name, value)
                return
        super().__setattr__(name, value)

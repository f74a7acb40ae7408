"""The encoder contract every task relies on.

An encoder is an ``nn.Module`` with
- ``output_dim``: H, the size of each position's output,
- ``num_directions``: 2 when the second half of H reads right-to-left (pooling ``last`` needs it), else 1,
- ``forward(input_ids (B, T), attention_mask (B, T), state=None) -> EncoderOutput``.
Outputs at padded positions are zero, and no output at a real position depends on padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass
class EncoderOutput:
    last_hidden_state: Tensor  # (B, T, H)
    state: Any = None  # recurrent state to carry on (h_n, or (h_n, c_n) for an LSTM); None for stateless encoders

"""The encoder contract every task relies on.

An encoder is an `Encoder` (an ``nn.Module``) that declares what a task needs to know about it:

- ``output_dim``: H, the size of each position's output;
- ``num_directions``: 2 when the second half of H reads right-to-left (pooling ``last`` needs it), else 1;
- ``causal``: True when position t never sees a token after t (a language model needs it);
- ``extra_inputs``: the batch keys it reads besides ``input_ids`` and ``attention_mask`` (``char_ids``,
  ``token_type_ids``); a task passes exactly these, when the batch has them, and never inspects the encoder;
- ``has_pooler_output``: whether `EncoderOutput.pooler_output` is filled (the pretrained pooler of BERT).

``forward(input_ids (B, T), attention_mask (B, T), state=None, lengths=None, return_state=True, **extra_inputs)
-> EncoderOutput``. Outputs at padded positions are zero, and no output at a real position depends on padding.
``state`` is what a recurrent encoder carries on from the previous call (truncated BPTT); ``return_state=False``
says the caller will not carry ``EncoderOutput.state`` on, so the encoder may skip computing it (None): the
classification and tagging tasks pass it, which lets `RNNEncoder` run a CPU batch of unequal lengths unpacked.

``lengths`` (B,) int64 *on the CPU* is the number of real tokens of each row, ``attention_mask.sum(1)``, as
the collator computed it; the tasks pass it when the batch has it, and seqlab's DataModules keep it on the CPU
when they move a batch to the accelerator (`seqlab.data.collate.keep_lengths_on_cpu`). Every encoder's
``forward`` takes it; one that needs lengths (a packed RNN reads them on the CPU) uses it instead of summing
the mask, which on an accelerator would be a host sync every step, and falls back to the mask sum when it is
None; the others ignore it. Outputs are exactly the same with and without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass
class EncoderOutput:
    last_hidden_state: Tensor  # (B, T, H)
    state: Any = (
        None  # recurrent state to carry on (h_n, or (h_n, c_n) for an LSTM); None for stateless encoders
    )
    pooler_output: Tensor | None = (
        None  # (B, H): a pretrained sentence vector (BERT's pooler), when the encoder has one
    )


def require_positive(prefix: str, **sizes: int) -> None:
    """Sizes that cannot work fail when the module is built, naming the config key, not in the first forward pass."""
    for name, value in sizes.items():
        if value is None or value < 1:
            raise ValueError(f"{prefix}.{name}={value}: must be >= 1")


class Encoder(nn.Module):
    """Base class of seqlab encoders: the contract's attributes with their usual values; subclasses set
    ``output_dim`` in ``__init__`` and override the rest where they differ."""

    output_dim: int
    num_directions: int = 1
    causal: bool = False
    extra_inputs: tuple[str, ...] = ()
    has_pooler_output: bool = False

    def extra_kwargs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The batch entries this encoder reads besides ids and mask (the ones the batch has)."""
        return {k: batch[k] for k in self.extra_inputs if k in batch}

"""Sequence pooling over real tokens only: (B, T, H) + mask (B, T) -> (B, H)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlab.models.attention_pooling import AttentionPooling

MODES = ("last", "mean", "max", "first", "cls", "pooler", "attention")


class Pooler(nn.Module):
    """``last``: the final state of each direction (forward half at the last real token, backward half at
    position 0: for a packed RNN these equal the top layer's ``h_n``). ``mean`` / ``max``: over real tokens.
    ``first`` / ``cls``: position 0 (the ``[CLS]`` of BERT-family encoders). ``pooler``: the encoder's own
    pretrained sentence vector (BERT's pooler, what ``*ForSequenceClassification`` uses); needs an encoder with
    ``has_pooler_output``. ``attention``: a learned weighted sum over real tokens (`AttentionPooling`, with
    `attention_heads` queries over `hidden_size`, the encoder's ``output_dim``); `pool` also returns its weights.
    """

    def __init__(
        self,
        mode: str = "max",
        num_directions: int = 1,
        has_pooler_output: bool = False,
        hidden_size: int | None = None,
        attention_heads: int = 1,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"model.pooling={mode!r}: choose one of {list(MODES)}")
        if mode == "pooler" and not has_pooler_output:
            raise ValueError(
                "model.pooling=pooler needs an encoder with a pretrained pooler (model/encoder=hf of a BERT-style "
                "model, with add_pooling_layer not false): use cls, mean or max"
            )
        if mode == "attention" and hidden_size is None:
            raise ValueError("model.pooling=attention: Pooler needs hidden_size (the encoder's output_dim)")
        self.mode = mode
        self.num_directions = num_directions
        # Only attention pooling has weights (old checkpoints of the other modes load as they are).
        self.attention = AttentionPooling(hidden_size, attention_heads) if mode == "attention" else None

    def forward(
        self,
        hidden: Tensor,
        attention_mask: Tensor,
        pooler_output: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> Tensor:
        """`lengths` (B,): the collator's ``attention_mask.sum(1)`` (on any device), so that ``mean`` and
        ``last`` need not sum the mask again; the result is the same without it."""
        return self.pool(hidden, attention_mask, pooler_output, lengths)[0]

    def pool(
        self,
        hidden: Tensor,
        attention_mask: Tensor,
        pooler_output: Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The pooled vector (B, H) and, for ``attention``, its weights (B, heads, T) (else None): 0 at padding,
        summing to 1 over each row's real tokens per head."""
        if self.attention is not None:
            return self.attention(hidden, attention_mask)
        return self._pool(hidden, attention_mask, pooler_output, lengths), None

    def _pool(
        self,
        hidden: Tensor,
        attention_mask: Tensor,
        pooler_output: Tensor | None,
        lengths: Tensor | None,
    ) -> Tensor:
        mask = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
        if self.mode in ("mean", "last"):
            # (B,); a CPU -> device copy of the collator's lengths needs no sync
            given = lengths is not None
            counts = lengths.to(hidden.device, non_blocking=True) if given else attention_mask.sum(1)
        if self.mode == "mean":
            return (hidden * mask).sum(1) / counts.unsqueeze(1).clamp(min=1)
        if self.mode == "max":
            return hidden.masked_fill(~mask, torch.finfo(hidden.dtype).min).max(dim=1).values
        if self.mode in ("first", "cls"):
            return hidden[:, 0]
        if self.mode == "pooler":
            if pooler_output is None:
                raise ValueError("model.pooling=pooler: the encoder returned no pooler_output")
            return pooler_output
        last = counts - 1  # (B,) index of the last real token
        rows = torch.arange(hidden.size(0), device=hidden.device)
        if self.num_directions == 1:
            return hidden[rows, last]
        fwd, bwd = hidden.chunk(2, dim=-1)  # (B, T, H/2) each
        return torch.cat([fwd[rows, last], bwd[:, 0]], dim=-1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

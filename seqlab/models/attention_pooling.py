"""Attention pooling: a learned query per head scores every position of (B, T, H); the pooled vector is the
softmax-weighted sum of the positions, so the weights say which tokens the classifier read.

For head h (of ``heads``; H = heads * d), with ``k_t = tanh(W x_t + b)`` split into heads:
``score[h, t] = <q_h, k_t[h]>``, padding set to ``-inf`` with ``masked_fill`` *before* the softmax (so its weight
is exactly 0, whatever the encoder left there), ``w[h] = softmax_t(score[h])`` and ``pooled[h] = sum_t w[h, t]
x_t[h]`` over the head's slice of H. The heads are concatenated: the output is H wide, as every other pooling.
The queries start at zero, i.e. as ``mean`` pooling, and learn from there.

A row with no real position (possible for a padded word in a char encoder, or an empty input) would be all
``-inf`` and softmax to NaN; it gets zero weights and a zero vector instead, and no NaN reaches the gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AttentionPooling(nn.Module):
    """(B, T, H) + mask (B, T) -> pooled (B, H) and weights (B, heads, T).

    Args:
        hidden_size: H, the encoder's ``output_dim``.
        heads: the number of queries; H must divide by it (each head pools its own H / heads slice).
    """

    def __init__(self, hidden_size: int, heads: int = 1):
        super().__init__()
        if heads is None or heads < 1:
            raise ValueError(f"model.attention_heads={heads}: must be >= 1")
        if hidden_size % heads:
            raise ValueError(
                f"model.attention_heads={heads}: must divide the encoder's output size {hidden_size}"
            )
        self.heads, self.head_dim = heads, hidden_size // heads
        self.key = nn.Linear(hidden_size, hidden_size)
        self.query = nn.Parameter(torch.zeros(heads, self.head_dim))  # zero: uniform weights (mean) at first

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        B, T, H = hidden.shape
        mask = attention_mask.bool()  # (B, T)
        # Padding may hold anything (inf, NaN): it never reaches the keys' softmax nor the sum.
        values = hidden.masked_fill(~mask.unsqueeze(-1), 0.0).view(B, T, self.heads, self.head_dim)
        keys = torch.tanh(self.key(values.view(B, T, H))).view(B, T, self.heads, self.head_dim)
        scores = torch.einsum("bthd,hd->bht", keys, self.query)  # (B, heads, T)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        # A row without real positions: finite scores (so no NaN), and zero weights below.
        empty = (attention_mask.sum(-1) == 0).view(B, 1, 1)  # (B, 1, 1)
        scores = scores.masked_fill(empty, 0.0)
        weights = scores.softmax(-1).masked_fill(~mask.unsqueeze(1), 0.0)  # (B, heads, T)
        pooled = torch.einsum("bht,bthd->bhd", weights, values).reshape(B, H)  # heads concatenated
        return pooled, weights

    def extra_repr(self) -> str:
        return f"heads={self.heads}, head_dim={self.head_dim}"

"""CNNEncoder: Conv1d filters of several widths over word embeddings (Kim, 2014).

With ``model.pooling=max`` the task takes max-over-time over real tokens, which is the classic text CNN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqlab.models.encoders.base import Encoder, EncoderOutput, require_positive


class CNNEncoder(Encoder):
    """Args: vocab_size, pad_token_id: from the data. embed_dim: word vectors. hidden_size: filters per width,
    so ``output_dim = hidden_size * len(kernel_sizes)``. kernel_sizes: filter widths (an even width sees one more word on the right).
    dropout: on the word vectors."""

    def __init__(
        self,
        vocab_size: int,
        pad_token_id: int = 0,
        embed_dim: int = 100,
        hidden_size: int = 100,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        dropout: float = 0.0,
    ):
        super().__init__()
        require_positive("model.encoder", embed_dim=embed_dim, hidden_size=hidden_size)
        if not kernel_sizes or any(k < 1 for k in kernel_sizes):
            raise ValueError(f"model.encoder.kernel_sizes={list(kernel_sizes)}: give one or more widths >= 1")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.dropout = nn.Dropout(dropout)
        # padding="same": position t sees the window around t; beyond the sequence it sees zeros, exactly as
        # the zeroed padding positions of a shorter row in the batch, so padding never changes an output.
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, hidden_size, k, padding="same") for k in kernel_sizes)
        self.output_dim = hidden_size * len(kernel_sizes)  # not causal: a window sees words on both sides

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        state=None,
        lengths: Tensor | None = None,
        return_state: bool = True,
    ) -> EncoderOutput:
        # `lengths` is ignored: the mask zeroes padding, nothing here needs a count; stateless (the encoder contract).
        mask = attention_mask.unsqueeze(-1).to(self.embedding.weight.dtype)  # (B, T, 1)
        x = self.dropout(self.embedding(input_ids)) * mask  # (B, T, E), zero at padding
        x = x.transpose(1, 2)  # (B, E, T): Conv1d wants channels first
        h = torch.cat([torch.relu(conv(x)) for conv in self.convs], dim=1)  # (B, H * K, T)
        return EncoderOutput(h.transpose(1, 2) * mask, None)  # (B, T, H * K), zero at padding

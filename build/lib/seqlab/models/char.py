"""Character-level word features (Lample et al. 2016; Ma & Hovy 2016).

`CharEncoder` maps the characters of each word to one vector: (B, T, L) char ids -> (B, T, D). It is an argument
of `RNNEncoder` (``char_encoder``), not of the task, because the concatenation ``[word embedding ; chars]``
happens before the recurrence: only the encoder knows its RNN input size (embed_dim + output_dim) when built.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

KINDS = ("cnn", "lstm")


class CharEncoder(nn.Module):
    """Args:
    num_chars, pad_id: from the data's char vocabulary (``num_chars`` is ``???`` in config; pad is id 0).
    char_embed_dim: size of each char vector.
    hidden_size: ``cnn``: number of filters = ``output_dim``; ``lstm``: per direction, ``output_dim = 2 * hidden_size``.
    kind: ``cnn`` (Conv1d, then max over the word's real chars) | ``lstm`` (BiLSTM final states over packed chars).
    kernel_size: odd CNN window, so each output position stays centred on its char.
    Words with no chars (padded word positions) get a zero vector, and pad chars never change a word's vector.
    """

    def __init__(
        self,
        num_chars: int,
        char_embed_dim: int = 25,
        hidden_size: int = 25,
        kind: str = "cnn",
        kernel_size: int = 3,
        pad_id: int = 0,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"model.encoder.char_encoder.kind={kind!r}: choose one of {list(KINDS)}")
        if kind == "cnn" and kernel_size % 2 == 0:
            raise ValueError(f"model.encoder.char_encoder.kernel_size={kernel_size}: must be odd")
        self.kind = kind
        self.pad_id = pad_id
        self.embedding = nn.Embedding(num_chars, char_embed_dim, padding_idx=pad_id)
        if kind == "cnn":
            # Zero padding at the word's edges equals reading pad chars, whose embedding is the zero vector.
            self.conv = nn.Conv1d(char_embed_dim, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_dim = hidden_size
        else:
            self.lstm = nn.LSTM(char_embed_dim, hidden_size, batch_first=True, bidirectional=True)
            self.output_dim = 2 * hidden_size

    def forward(self, char_ids: Tensor) -> Tensor:
        B, T, L = char_ids.shape
        flat = char_ids.reshape(B * T, L)  # (N, L), N = B*T words
        real = flat != self.pad_id  # (N, L) chars are a prefix of each row
        lengths = real.sum(1)  # (N,)
        x = self.embedding(flat)  # (N, L, E)
        if self.kind == "cnn":
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (N, L, H)
            h = h.masked_fill(~real.unsqueeze(-1), float("-inf")).max(dim=1).values  # (N, H), over real chars
            out = torch.where(lengths.unsqueeze(1) > 0, h, torch.zeros_like(h))  # no chars: -inf -> 0
        else:
            out = x.new_zeros(B * T, self.output_dim)  # (N, 2H)
            words = lengths > 0  # only real words go through the LSTM (packing refuses length 0)
            if bool(words.any()):
                packed = pack_padded_sequence(
                    x[words], lengths[words].cpu(), batch_first=True, enforce_sorted=False
                )
                _, (h_n, _) = self.lstm(packed)  # h_n (2, N', H): last forward state, first backward state
                out[words] = torch.cat([h_n[0], h_n[1]], dim=-1)  # (N', 2H)
        return out.reshape(B, T, self.output_dim)  # (B, T, D)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, output_dim={self.output_dim}"

"""RNNEncoder: Embedding -> RNN | LSTM | GRU; no output at a real position ever depends on padding.

A batch of unequal lengths runs packed (``pack_padded_sequence``), or, on a CPU when the caller carries no state
(``return_state=False``: classification and tagging) and at most half of the batch is padding (bucketed batches
pad ~3%), as `UnpackedRNN`: padded, each direction reading a row's real tokens before its padding. The two give
the same outputs (to float rounding); there the padded kernels are ~1.5x faster, the packed ones running every
time step at its own batch size. Packing stays where it pays:
on GPUs (cuDNN runs packed batches natively) and whenever the final state is wanted, which only packing gives
for rows shorter than the batch.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.models.encoders.base import Encoder, EncoderOutput, require_positive
from seqlab.models.encoders.unpacked import UnpackedRNN

# A CPU batch runs unpacked when at most this share of its positions is padding: the padded kernels then beat
# the packed ones (by ~1.5x at 3-40% padding, break-even near 50%, ~0.8x at 65%: BiLSTM 100/128, batch 64).
UNPACKED_MAX_PADDING = 0.5
# The three cells share one constructor signature, so `cell` picks the class (no registry needed).
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _float32_recurrence_under_cpu_autocast(x: Tensor) -> contextlib.AbstractContextManager:
    """oneDNN's padded CPU kernels have no bfloat16 autocast variant ("could not create a primitive descriptor
    for the LSTM forward propagation primitive"): under CPU autocast (``trainer.precision=bf16-mixed``) the
    recurrence runs in float32, as the packed kernels already do there."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", enabled=False)
    return contextlib.nullcontext()


class RNNEncoder(Encoder):
    """Args:
    vocab_size, pad_token_id: from the data (``???`` in config, filled by `seqlab.train`).
    embed_dim: word embedding size. hidden_size: per direction, so ``output_dim = hidden_size * directions``.
    num_layers, bidirectional, cell: the recurrence (``lstm`` | ``gru`` | ``rnn``).
    dropout: between stacked layers (needs ``num_layers > 1``). embedding_dropout: on the word vectors.
    char_encoder: optional `seqlab.models.char.CharEncoder`; its (B, T, D) word features are concatenated to the
        word embeddings, and ``forward`` then needs ``char_ids`` (B, T, L) (``data.use_chars=true``).
    """

    def __init__(
        self,
        vocab_size: int,
        pad_token_id: int = 0,
        embed_dim: int = 100,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        char_encoder: nn.Module | None = None,
    ):
        super().__init__()
        require_positive("model.encoder", embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers)
        if cell not in CELLS:
            raise ValueError(f"model.encoder.cell={cell!r}: choose one of {sorted(CELLS)}")
        if dropout and num_layers == 1:
            raise ValueError(
                "model.encoder.dropout acts between stacked RNN layers and num_layers=1: set it to 0 "
                "(the task's own `dropout` regularises the output)"
            )
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.char_encoder = char_encoder
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        input_size = embed_dim + (char_encoder.output_dim if char_encoder is not None else 0)
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        self.num_directions = 2 if bidirectional else 1
        self.output_dim = hidden_size * self.num_directions
        self.causal = not bidirectional
        self.extra_inputs = ("char_ids",) if char_encoder is not None else ()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        state=None,
        lengths: Tensor | None = None,
        char_ids: Tensor | None = None,
        return_state: bool = True,
    ) -> EncoderOutput:
        """`lengths` (B,) on the CPU (the collator's) spares the host sync of reading the mask's sums back:
        the checks below and ``pack_padded_sequence`` all read lengths on the CPU. `return_state=False`: the
        caller does not carry the final state (``EncoderOutput.state`` may then be None), which lets a CPU batch
        of unequal lengths skip packing."""
        B, T = input_ids.shape
        # (B,) on the CPU: the one host sync of a batch without them (a no-op for the collator's own lengths)
        lengths = attention_mask.sum(dim=1).cpu() if lengths is None else lengths.cpu()
        if bool((lengths == 0).any()):
            raise ValueError("RNNEncoder got a sequence of length 0; drop empty rows before batching")
        x = self.embedding(input_ids)  # (B, T, E)
        if self.char_encoder is not None:
            if char_ids is None:
                raise ValueError(
                    "model.encoder.char_encoder is set but the batch has no char_ids: set data.use_chars=true"
                )
            x = torch.cat([x, self.char_encoder(char_ids)], dim=-1)  # (B, T, E + D)
        x = self.embedding_dropout(x)
        with _float32_recurrence_under_cpu_autocast(x):
            return self._recur(x, attention_mask, lengths, state, return_state)

    def _recur(
        self, x: Tensor, attention_mask: Tensor, lengths: Tensor, state, return_state: bool
    ) -> EncoderOutput:
        B, T, _ = x.shape
        if bool(
            (lengths == T).all()
        ):  # nothing to skip (language modelling windows): packing would only cost time
            out, state = self.rnn(x, state)  # (B, T, H*D)
            return EncoderOutput(out, state)
        if (
            state is None
            and not return_state
            and x.device.type == "cpu"
            and int(lengths.sum()) >= (1 - UNPACKED_MAX_PADDING) * B * T
        ):
            # (B, T, H*D); `lengths` is on the CPU, as x is here: the collator's counts, not summed again
            return EncoderOutput(self._unpacked()(x, attention_mask, self.training, lengths), None)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, H*D), zeros at padding
        return EncoderOutput(out, state)

    def _unpacked(self) -> UnpackedRNN:
        """`UnpackedRNN` over ``self.rnn``'s own parameters, built once. Kept outside the module tree (a plain
        attribute) so that the shared parameters appear once in ``parameters()`` and ``state_dict()``."""
        unpacked = self.__dict__.get("_unpacked_rnn")
        if unpacked is None or not unpacked.shares(self.rnn):
            unpacked = self.__dict__["_unpacked_rnn"] = UnpackedRNN(self.rnn)
        return unpacked

    def extra_repr(self) -> str:
        return f"output_dim={self.output_dim}"

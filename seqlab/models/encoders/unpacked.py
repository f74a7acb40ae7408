"""UnpackedRNN: a batch_first nn.LSTM / GRU / RNN over a padded batch, equal at every real position to the same
module over the packed batch, without packing.

Used where packing cannot go or costs more than the padding it skips: ONNX export (no exporter traces
``pack_padded_sequence``) and `RNNEncoder` on a CPU, where the packed kernels run each time step at its own batch
size and are ~1.5x slower than the padded ones even at 40% padding (bucketed batches pad ~3%).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# nn.RNNBase.mode -> the one-layer module computing one direction of one layer.
_SINGLE = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN_TANH": nn.RNN, "RNN_RELU": nn.RNN}


def reverse_index(attention_mask: Tensor, lengths: Tensor | None = None) -> Tensor:
    """(B, T) index that reverses each row within its length and keeps padded positions in place:
    ``len-1-t`` for ``t < len``, else ``t``. Its own inverse, so one gather reverses and another restores.
    `lengths` (B,) on the mask's device: the mask's row sums when already known (the collator's)."""
    pos = (
        torch.ones_like(attention_mask, dtype=torch.long).cumsum(1) - 1
    )  # (B, T): 0..T-1, traced with dynamic T
    lengths = attention_mask.long().sum(1) if lengths is None else lengths
    rev = lengths.unsqueeze(1) - 1 - pos  # (B, T)
    return torch.where(rev >= 0, rev, pos)


def gather_time(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b, t]]`` for x (B, T, H) and index (B, T)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def _single_direction(rnn: nn.RNNBase, layer: int, reverse: bool) -> nn.RNNBase:
    """A one-layer, one-direction copy of `rnn`'s `layer` whose parameters *are* `rnn`'s (shared, not copied)."""
    directions = 2 if rnn.bidirectional else 1
    input_size = rnn.input_size if layer == 0 else rnn.hidden_size * directions
    kwargs = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    single = _SINGLE[rnn.mode](
        input_size, rnn.hidden_size, num_layers=1, bias=rnn.bias, batch_first=True, **kwargs
    )
    suffix = "_reverse" if reverse else ""
    for name in single._flat_weights_names:  # weight_ih_l0, weight_hh_l0[, bias_ih_l0, bias_hh_l0]
        # RNNBase.__setattr__ keeps its _flat_weights in step with the attribute.
        setattr(single, name, getattr(rnn, f"{name[:-1]}{layer}{suffix}"))
    return single


class UnpackedRNN(nn.Module):
    """``rnn`` (batch_first nn.LSTM / GRU / RNN) over a padded batch, equal at every real position to running it
    over the packed batch, with zeros at padding.

    The forward direction of a layer may run over padding: padding comes after a row's real positions, so no real
    output reads it. The backward direction runs forward over each row reversed within its length (padding still
    last), and its outputs are put back in place. Between layers the padded outputs are zeroed, as packing gives,
    and in training ``rnn.dropout`` applies there, as in ``rnn``.
    """

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        if not rnn.batch_first:
            raise ValueError("UnpackedRNN expects a batch_first RNN")
        if getattr(rnn, "proj_size", 0):
            raise ValueError("UnpackedRNN does not support an LSTM with proj_size")
        self.num_layers = rnn.num_layers
        self.num_directions = 2 if rnn.bidirectional else 1
        self.dropout = rnn.dropout
        self.cells = nn.ModuleList(
            _single_direction(rnn, layer, bool(d))
            for layer in range(rnn.num_layers)
            for d in range(self.num_directions)
        )

    def shares(self, rnn: nn.RNNBase) -> bool:
        """Whether the cells still hold `rnn`'s parameters (not replaced since, e.g. by ``load_state_dict(assign=True)``)."""
        return self.cells[0].weight_ih_l0 is rnn.weight_ih_l0

    def forward(
        self, x: Tensor, attention_mask: Tensor, training: bool = False, lengths: Tensor | None = None
    ) -> Tensor:
        """x (B, T, I), attention_mask (B, T) with each row's real positions first -> (B, T, H * D). `training`:
        dropout between layers (the owner's mode: the cells are not in its module tree). `lengths` (B,) on x's
        device: the mask's row sums, when known."""
        keep = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        index = reverse_index(attention_mask, lengths) if self.num_directions == 2 else None  # (B, T)
        for layer in range(self.num_layers):
            fwd, _ = self.cells[layer * self.num_directions](x)  # (B, T, H)
            outs = [fwd]
            if index is not None:
                bwd, _ = self.cells[layer * 2 + 1](gather_time(x, index))  # (B, T, H) in reversed order
                outs.append(gather_time(bwd, index))  # back in place
            x = torch.cat(outs, dim=-1) * keep  # (B, T, H * D), zero at padding
            if training and self.dropout and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x

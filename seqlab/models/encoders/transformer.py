"""TransformerEncoder: token + position embeddings -> pre-LayerNorm self-attention blocks -> LayerNorm.

Bidirectional (``causal=false``) for classification and tagging, or left-to-right (``causal=true``) for a language
model. Padding is handled by the attention mask alone: no query at a real position ever attends a key at a padded
position, so padding cannot reach a real output; outputs at padded positions are then set to zero (the contract of
`seqlab.models.encoders.base`).

It is stateless: ``state`` is accepted and ignored, and ``EncoderOutput.state`` is None. A language model built on it
sees only its current window (``data.bptt`` tokens), not the windows before it, unlike the carried RNN state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.models.encoders.base import Encoder, EncoderOutput, require_positive

POSITIONS = ("learned", "sinusoidal")


def sinusoids(max_length: int, dim: int) -> Tensor:
    """The fixed position table of Vaswani et al. (2017), (max_length, dim): sin on even features, cos on odd ones,
    wavelengths from 2*pi to 10000*2*pi, so nearby positions get similar vectors and any offset is a linear map."""
    position = torch.arange(max_length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )  # (ceil(dim/2),)
    table = torch.zeros(max_length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])  # an odd dim has one sin more than cos
    return table


class TransformerBlock(nn.Module):
    """x + Attention(LN(x)), then x + MLP(LN(x)): pre-LayerNorm (Xiong et al., 2020), which trains stably without
    the learning-rate warm-up a post-LN Transformer needs, so the usual Adam recipes of the other encoders work."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.attn_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)  # one matmul for queries, keys and values
        self.attn_out = nn.Linear(d_model, d_model)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d_model))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        """x (B, T, H); attend (B, 1, T, T) bool, True where query t may read key s."""
        B, T, H = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(
            B, T, 3, self.num_heads, H // self.num_heads
        )  # (B, T, 3, nh, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, nh, T, Dh)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, nh, T, Dh)
        x = x + self.dropout(self.attn_out(a.transpose(1, 2).reshape(B, T, H)))  # (B, T, H)
        return x + self.dropout(self.mlp(self.mlp_norm(x)))  # (B, T, H)


class TransformerEncoder(Encoder):
    """Args:
    vocab_size, pad_token_id: from the data (``???`` in config, filled by `seqlab.train`).
    d_model: H, the width of every layer; ``output_dim = d_model``, and the word embedding has the same size, so a
        language model can always tie its output layer to it (``model.tie_weights=true``).
    num_heads: attention heads; must divide d_model. num_layers: blocks. ffn_dim: the MLP's hidden size.
    dropout: on the embeddings, the attention weights and each block's residual branches.
    positions: ``learned`` (a trained table, started from the sinusoids) or ``sinusoidal`` (fixed).
    max_length: the longest sequence it accepts (the size of the position table); longer input is an error
        rather than silently reusing or extrapolating positions. For a language model, at least ``data.bptt``.
    causal: position t attends only positions <= t (a language model needs it; ``causal`` is then declared True).
    """

    def __init__(
        self,
        vocab_size: int,
        pad_token_id: int = 0,
        d_model: int = 128,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_dim: int = 256,
        dropout: float = 0.1,
        positions: str = "learned",
        max_length: int = 512,
        causal: bool = False,
    ):
        super().__init__()
        require_positive(
            "model.encoder",
            vocab_size=vocab_size,
            d_model=d_model,
            num_heads=num_heads,
            num_layers=num_layers,
            ffn_dim=ffn_dim,
            max_length=max_length,
        )
        if d_model % num_heads:
            raise ValueError(
                f"model.encoder.d_model={d_model} is not divisible by model.encoder.num_heads={num_heads}: "
                "each head reads d_model / num_heads features"
            )
        if positions not in POSITIONS:
            raise ValueError(f"model.encoder.positions={positions!r}: choose one of {list(POSITIONS)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.encoder.dropout={dropout}: must be in [0, 1)")
        self.d_model, self.max_length, self.positions = d_model, max_length, positions
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        # std d^-1/2 and a sqrt(d) scale in forward (Vaswani et al.): unit-size inputs, comparable to the position
        # vectors, while the weight itself is small enough to serve as a tied output layer (logits of unit size).
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_token_id].zero_()
        table = sinusoids(max_length, d_model)  # (L, H)
        if positions == "learned":
            # Started from the sinusoids rather than noise: every position is distinct (word order is usable) from
            # the first step, and training only has to adapt the table.
            self.position = nn.Embedding.from_pretrained(table, freeze=False)
        else:
            self.register_buffer(
                "position_table", table, persistent=False
            )  # rebuilt from the config, not saved
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, num_heads, ffn_dim, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(
            d_model
        )  # pre-LN blocks leave the residual stream unnormalised: normalise once here
        self.output_dim = d_model
        self.causal = bool(causal)

    def attend(self, attention_mask: Tensor) -> Tensor:
        """(B, 1, T, T) bool, True where query t may read key s: s is a real token (and s <= t when causal).

        Each position may also always read itself. For a real query that changes nothing (it is a real key, and
        t <= t); a padded query would otherwise have no key at all in a row of padding (or before the first real
        token), and an all-False row makes the softmax NaN, which multiplying by a zero mask does not remove."""
        T = attention_mask.size(1)
        keys = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): the key is a real token
        eye = torch.eye(T, dtype=torch.bool, device=attention_mask.device)  # (T, T)
        if self.causal:
            keys = (
                keys & torch.ones(T, T, dtype=torch.bool, device=attention_mask.device).tril()
            )  # (B, 1, T, T)
        return keys | eye  # (B, 1, T, T)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        state=None,
        lengths: Tensor | None = None,
        return_state: bool = True,
    ) -> EncoderOutput:
        # `state` and `return_state` are ignored (stateless: each call sees only its input) and `lengths` too: the
        # mask is all it needs.
        B, T = input_ids.shape
        if T > self.max_length:
            raise ValueError(
                f"TransformerEncoder got a sequence of {T} tokens but model.encoder.max_length={self.max_length}: "
                "raise model.encoder.max_length, or cut the input (data.max_seq_length; data.bptt for a language model)"
            )
        # Position = index among the real tokens, so a row's positions do not depend on how it was padded.
        position_ids = (attention_mask.long().cumsum(1) - 1).clamp(min=0)  # (B, T)
        table = self.position.weight if self.positions == "learned" else self.position_table  # (L, H)
        x = self.embedding(input_ids) * math.sqrt(self.d_model) + table[position_ids]  # (B, T, H)
        x = self.dropout(x)
        attend = self.attend(attention_mask)  # (B, 1, T, T)
        for layer in self.layers:
            x = layer(x, attend)  # (B, T, H)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        return EncoderOutput(self.norm(x) * mask, None)  # (B, T, H), zero at padding

    def extra_repr(self) -> str:
        return f"output_dim={self.output_dim}, positions={self.positions!r}, causal={self.causal}"

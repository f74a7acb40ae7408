"""EmbeddingEncoder: word vectors with no context. Mean-pooled, it is the bag-of-words baseline."""

from __future__ import annotations

from torch import Tensor, nn

from seqlab.models.encoders.base import Encoder, EncoderOutput, require_positive


class EmbeddingEncoder(Encoder):
    causal = True  # each position sees only its own word

    def __init__(
        self, vocab_size: int, pad_token_id: int = 0, embed_dim: int = 100, embedding_dropout: float = 0.0
    ):
        super().__init__()
        require_positive("model.encoder", embed_dim=embed_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.output_dim = embed_dim

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        state=None,
        lengths: Tensor | None = None,
        return_state: bool = True,
    ) -> EncoderOutput:
        # `lengths` is ignored: the mask zeroes padding, nothing here needs a count; stateless (the encoder contract).
        x = self.embedding_dropout(self.embedding(input_ids))  # (B, T, E)
        return EncoderOutput(x * attention_mask.unsqueeze(-1), None)  # zero at padding, as the contract says

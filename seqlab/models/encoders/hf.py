"""HFEncoder: a pretrained transformers encoder (BERT, RoBERTa, DeBERTa, ELECTRA, MiniLM ...) behind seqlab's
encoder contract, so every task uses it as it uses an RNN: the tasks never branch on the encoder family."""

from __future__ import annotations

import logging

from torch import Tensor, nn

from seqlab.models.encoders.base import Encoder, EncoderOutput

log = logging.getLogger(__name__)


def _layers(model: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks: the first ModuleList holding ``num_hidden_layers`` modules
    (``encoder.layer`` in BERT, ``transformer.layer`` in DistilBERT ...)."""
    n = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    return None


class HFEncoder(Encoder):
    """``transformers.AutoModel.from_pretrained(model_name_or_path)``.

    Args:
        model_name_or_path: a hub name or a local directory written by ``save_pretrained``.
        vocab_size, pad_token_id: from the data (the tokenizer); the embeddings grow when the tokenizer has more
            tokens than the model (tokens added to it), and a smaller tokenizer is fine (unused rows stay).
        freeze_embeddings: keep the embedding layer (words, positions, token types, its LayerNorm) fixed.
        freeze_layers: keep the first k transformer blocks fixed as well.
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        add_pooling_layer: build the pretrained pooler (BERT-style models); null keeps the model's default.
            Pooling ``pooler`` needs it; a tagger does not use it.
    """

    extra_inputs = ("token_type_ids",)

    def __init__(
        self,
        model_name_or_path: str,
        vocab_size: int | None = None,
        pad_token_id: int | None = None,
        freeze_embeddings: bool = False,
        freeze_layers: int = 0,
        gradient_checkpointing: bool = False,
        add_pooling_layer: bool | None = None,
    ):
        super().__init__()
        from transformers import AutoModel

        kwargs = {} if add_pooling_layer is None else {"add_pooling_layer": add_pooling_layer}
        try:
            self.model = AutoModel.from_pretrained(model_name_or_path, **kwargs)
        except OSError as e:
            raise ValueError(
                f"model.encoder.model_name_or_path={model_name_or_path!r}: {str(e).splitlines()[0]}"
            ) from None
        config = self.model.config
        if vocab_size is not None and vocab_size > self.model.get_input_embeddings().num_embeddings:
            log.info(
                "resizing the embeddings of %s to the tokenizer's %d tokens", model_name_or_path, vocab_size
            )
            self.model.resize_token_embeddings(vocab_size)
        if pad_token_id is not None and getattr(config, "pad_token_id", None) not in (None, pad_token_id):
            raise ValueError(
                f"the tokenizer pads with id {pad_token_id} but {model_name_or_path} was trained with pad_token_id="
                f"{config.pad_token_id}: use the model's own tokenizer (data.tokenizer.name_or_path)"
            )
        self.output_dim = config.hidden_size
        self.causal = bool(getattr(config, "is_decoder", False))
        self.has_pooler_output = getattr(self.model, "pooler", None) is not None
        if freeze_embeddings or freeze_layers:
            embeddings = getattr(self.model, "embeddings", None) or self.model.get_input_embeddings()
            embeddings.requires_grad_(False)
        if freeze_layers:
            layers = _layers(self.model)
            if layers is None or not 0 <= freeze_layers <= len(layers):
                raise ValueError(
                    f"model.encoder.freeze_layers={freeze_layers}: {model_name_or_path} has "
                    f"{len(layers) if layers is not None else 'no recognisable'} layers"
                )
            for block in layers[:freeze_layers]:
                block.requires_grad_(False)
        if gradient_checkpointing:  # transformers 5 renamed it activation checkpointing
            enable = (
                getattr(self.model, "activation_checkpointing_enable", None)
                or self.model.gradient_checkpointing_enable
            )
            enable()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        state=None,
        lengths: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        return_state: bool = True,
    ) -> EncoderOutput:
        # `lengths` and `return_state` are ignored: the model reads the attention mask itself, and has no state.
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state * attention_mask.unsqueeze(-1).to(
            out.last_hidden_state.dtype
        )  # (B, T, H)
        return EncoderOutput(hidden, None, getattr(out, "pooler_output", None))

    def extra_repr(self) -> str:
        return f"output_dim={self.output_dim}"

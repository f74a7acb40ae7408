"""HFEncoder follows the encoder contract: padding never changes a real position, padded outputs are zero."""

from __future__ import annotations

import pytest
import torch

from seqlab.models.encoders.hf import HFEncoder


def encoder(tiny_bert, **kwargs) -> HFEncoder:
    return HFEncoder(str(tiny_bert), **kwargs).eval()


def test_contract_attributes(tiny_bert):
    enc = encoder(tiny_bert)
    assert enc.output_dim == 32 and enc.num_directions == 1 and not enc.causal
    assert enc.extra_inputs == ("token_type_ids",) and enc.has_pooler_output
    assert not encoder(tiny_bert, add_pooling_layer=False).has_pooler_output


def test_padding_never_changes_a_real_position(tiny_bert):
    enc = encoder(tiny_bert)
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    mask = (torch.arange(5)[None] < torch.tensor([[5], [3]])).long()
    with torch.no_grad():
        out = enc(ids, mask).last_hidden_state  # (2, 5, 32)
        noisy = enc(ids.masked_fill(mask == 0, 50), mask).last_hidden_state  # other ids in the padded slots
        alone = enc(ids[1:, :3], mask[1:, :3]).last_hidden_state  # the short row without padding
    assert torch.equal(out, noisy)
    assert (out[1, 3:] == 0).all()  # padded positions are zero
    torch.testing.assert_close(out[1, :3], alone[0], atol=1e-5, rtol=0)


def test_token_type_ids_are_read(tiny_bert):
    enc = encoder(tiny_bert)
    ids, mask = torch.tensor([[2, 10, 3, 11, 3]]), torch.ones(1, 5, dtype=torch.long)
    with torch.no_grad():
        a = enc(ids, mask).last_hidden_state
        b = enc(ids, mask, token_type_ids=torch.tensor([[0, 0, 0, 1, 1]])).last_hidden_state
    assert not torch.allclose(a, b)


def test_freezing_embeddings_and_layers(tiny_bert):
    enc = encoder(tiny_bert, freeze_layers=1)
    frozen = {n for n, p in enc.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("model.embeddings.", "model.encoder.layer.0.")) for n in frozen)
    assert any(n.startswith("model.embeddings.") for n in frozen) and any(".layer.0." in n for n in frozen)
    assert all(p.requires_grad for n, p in enc.named_parameters() if ".layer.1." in n)
    only_emb = encoder(tiny_bert, freeze_embeddings=True)
    assert {n for n, p in only_emb.named_parameters() if not p.requires_grad} == {
        n for n, _ in only_emb.named_parameters() if n.startswith("model.embeddings.")
    }
    with pytest.raises(ValueError, match="freeze_layers=3: .* has 2 layers"):
        encoder(tiny_bert, freeze_layers=3)


def test_embeddings_grow_for_added_tokens_and_bad_paths_are_named(tiny_bert, tmp_path):
    enc = encoder(tiny_bert, vocab_size=205, pad_token_id=0)
    assert enc.model.get_input_embeddings().num_embeddings == 205
    with pytest.raises(ValueError, match="pads with id 1"):
        encoder(tiny_bert, pad_token_id=1)
    with pytest.raises(ValueError, match="model.encoder.model_name_or_path="):
        HFEncoder(str(tmp_path / "nowhere"))


def test_gradient_checkpointing_trains(tiny_bert):
    enc = encoder(tiny_bert, gradient_checkpointing=True).train()
    ids = torch.tensor([[2, 10, 11, 3]])
    enc(ids, torch.ones_like(ids)).last_hidden_state.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None

"""Batching: pad to the longest sequence of the batch, never to a global maximum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from seqlab.labels import IGNORE_INDEX  # padded label positions (re-exported for the DataModules)

LENGTHS = "lengths"  # the key of the (B,) real-token counts, which stay on the CPU (`keep_lengths_on_cpu`)


def pad_sequences(seqs: Sequence[Sequence[int]], pad_value: int) -> Tensor:
    """(B,) ragged lists -> (B, T) LongTensor, T = longest in the batch."""
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


class PadCollator:
    """Examples ``{"input_ids": [...], "labels": int | [...]}`` -> a batch dict with HF key names.

    Returns ``input_ids`` (B, T), ``attention_mask`` (B, T) with 1 on real tokens, ``lengths`` (B,) and, when
    the examples carry them, ``token_type_ids`` (B, T) padded with 0 (HF tokenizers' pairs) and ``labels``:
    (B,) for one label a sequence, (B, T) padded with -100 for one a token.
    Other keys holding per-token lists (``char_ids``) are left to the DataModule that adds them.
    """

    def __init__(self, pad_token_id: int = 0, label_pad_id: int = IGNORE_INDEX):
        self.pad_token_id = pad_token_id
        self.label_pad_id = label_pad_id

    def __call__(self, examples: Sequence[dict]) -> dict[str, Tensor]:
        ids = [e["input_ids"] for e in examples]
        input_ids = pad_sequences(ids, self.pad_token_id)
        lengths = torch.tensor([len(s) for s in ids], dtype=torch.long)
        batch = {
            "input_ids": input_ids,
            "attention_mask": (torch.arange(input_ids.size(1))[None, :] < lengths[:, None]).long(),
            LENGTHS: lengths,  # (B,) int64, on the CPU: the encoder contract's `lengths`
        }
        if "token_type_ids" in examples[0]:
            batch["token_type_ids"] = pad_sequences([e["token_type_ids"] for e in examples], 0)
        if "labels" in examples[0]:
            labels = [e["labels"] for e in examples]
            if isinstance(labels[0], int):
                batch["labels"] = torch.tensor(labels, dtype=torch.long)
            else:
                batch["labels"] = pad_sequences(labels, self.label_pad_id)
        return batch


def keep_lengths_on_cpu(batch: Any, move, *args: Any) -> Any:
    """``move(batch, *args)`` (Lightning's ``transfer_batch_to_device``) for every entry but ``lengths``,
    which stays on the CPU where the encoder contract (and ``pack_padded_sequence``) wants it: moved to the
    accelerator, the packed RNN would have to read it back, a host sync every batch."""
    if not isinstance(batch, Mapping) or LENGTHS not in batch:
        return move(batch, *args)
    moved = move({k: v for k, v in batch.items() if k != LENGTHS}, *args)
    return {**moved, LENGTHS: batch[LENGTHS]}

"""Pretrained sub-word tokenizers from transformers (``data/tokenizer=hf``), behind the same methods as
`WordTokenizer`, so every DataModule works with either: a tokenizer choice in config, not another DataModule.

Texts and pairs are encoded as the model was trained (``[CLS] a [SEP] b [SEP]`` with ``token_type_ids`` for
BERT); pre-split words (tagging) keep, for each sub-token, the index of the word it came from (``word_ids()``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Tokenizers whose model_max_length is a placeholder (1e30) get this cap.
FALLBACK_MAX_LENGTH = 512


class HFTokenizer:
    """A fast `transformers` tokenizer. Its files travel inside the checkpoint (`state` / `from_state`)."""

    def __init__(self, tokenizer):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"{type(tokenizer).__name__} is not a fast tokenizer: seqlab needs word_ids() (tokenizers backend)"
            )
        if tokenizer.pad_token_id is None:
            raise ValueError(f"{tokenizer.name_or_path}: the tokenizer has no pad token")
        self._tok = tokenizer
        self.pad_token_id = tokenizer.pad_token_id

    splits_words = True  # words become sub-tokens (word_ids() says which word each came from)

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> HFTokenizer:
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(name_or_path, **kwargs))
        except OSError as e:
            raise ValueError(
                f"data.tokenizer.name_or_path={name_or_path!r}: {str(e).splitlines()[0]}"
            ) from None

    @property
    def hf(self):
        """The wrapped `transformers` tokenizer."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        return len(self._tok)  # added tokens included

    @property
    def max_length(self) -> int:
        n = self._tok.model_max_length
        return n if n and n < 1_000_000 else FALLBACK_MAX_LENGTH

    def _encode(self, max_length: int | None, *args, **kwargs):
        """Encode without truncation, then again, truncated, only the rows that were too long."""
        limit = min(max_length or self.max_length, self.max_length)
        full = self._tok(*args, truncation=False, verbose=False, **kwargs)
        long = [i for i, ids in enumerate(full["input_ids"]) if len(ids) > limit]
        cut = [False] * len(full["input_ids"])
        if not long:
            return full, [full.encodings[i] for i in range(len(cut))], cut
        short = self._tok(*[[a[i] for i in long] for a in args], truncation=True, max_length=limit, **kwargs)
        encodings = list(full.encodings)
        out = {k: list(v) for k, v in full.items()}
        for j, i in enumerate(long):
            cut[i] = True
            encodings[i] = short.encodings[j]
            for k in out:
                out[k][i] = short[k][j]
        return out, encodings, cut

    def encode_texts(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, max_length: int | None = None
    ) -> tuple[dict[str, list[list[int]]], list[bool]]:
        """``input_ids`` (and ``token_type_ids`` when the model uses them) with the model's special tokens, pairs
        truncated longest-first to `max_length` (None: the model's maximum); and which rows were cut."""
        args = (list(texts),) if pairs is None else (list(texts), list(pairs))
        enc, _, cut = self._encode(max_length, *args)
        out = {"input_ids": enc["input_ids"]}
        if "token_type_ids" in enc:
            out["token_type_ids"] = enc["token_type_ids"]
        return out, cut

    def encode_words(
        self, sentences: Sequence[Sequence[str]], max_length: int | None = None
    ) -> tuple[dict[str, list[list[int]]], list[list[int | None]], list[bool]]:
        """Sub-token ids of pre-split words, the word index of each id (None for special tokens), which rows were cut."""
        enc, encodings, cut = self._encode(max_length, [list(s) for s in sentences], is_split_into_words=True)
        return {"input_ids": enc["input_ids"]}, [e.word_ids for e in encodings], cut

    def decode(self, ids) -> list[str]:
        return self._tok.convert_ids_to_tokens([int(i) for i in ids])

    # ---- persistence ---------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        self._tok.save_pretrained(str(directory))

    def state(self) -> dict[str, Any]:
        """The tokenizer's files (``save_pretrained``) as text, so a checkpoint carries its own tokenizer."""
        with tempfile.TemporaryDirectory() as tmp:
            self._tok.save_pretrained(tmp)
            return {
                "kind": "hf",
                "files": {p.name: p.read_text(encoding="utf-8") for p in Path(tmp).iterdir() if p.is_file()},
            }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HFTokenizer:
        if state.get("kind") != "hf":
            raise ValueError(f"not an HF tokenizer state: {sorted(state)}")
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in state["files"].items():
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            return cls.from_pretrained(tmp)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"HFTokenizer({self._tok.name_or_path!r}, vocab_size={self.vocab_size})"


class LoadHFTokenizer:
    """``data/tokenizer=hf``: load a pretrained tokenizer (hub name or ``save_pretrained`` directory); nothing is
    fitted on the data. Use the tokenizer the encoder was trained with (the experiments interpolate
    ``${model.encoder.model_name_or_path}``)."""

    def __init__(self, name_or_path: str):
        self.name_or_path = name_or_path

    def __call__(
        self, corpus=None, *, is_pretokenized: bool = False, special_tokens: Sequence[str] = ()
    ) -> HFTokenizer:
        return HFTokenizer.from_pretrained(self.name_or_path)

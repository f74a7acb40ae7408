"""`seqlab.load(path)`: a trained model as a predictor for raw text, from its checkpoint (or exported directory) alone.

The checkpoint carries the model config, the weights, the tokenizer, the label names and the data settings that
shape an input (pairs, max_seq_length, characters, <eos>), so nothing else is needed: no training config, no data
files. Inputs are encoded as the DataModule encodes them and batched in length order (little padding); results
come back in input order. Inference runs in ``eval()`` mode without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqlab.checkpoint import data_state, load_task
from seqlab.data.collate import IGNORE_INDEX, LENGTHS, PadCollator
from seqlab.data.tokenizers import tokenizer_from_state
from seqlab.labels import extract_spans

TASKS = {
    "TextClassificationTask": "classification",
    "SequenceTaggingTask": "tagging",
    "LanguageModelTask": "language_modeling",
}


def load(path: str | Path, batch_size: int = 64, device: str | torch.device = "cpu") -> Predictor:
    """A `Predictor` for a seqlab checkpoint file or a directory written by ``save_pretrained`` / ``finetune``."""
    return Predictor(load_task(path), data_state(path), batch_size=batch_size, device=device)


class Predictor:
    """Predictions for raw text. `task` is ``classification``, ``tagging`` or ``language_modeling``; `labels`
    the label (tag) names. See `predict` for what each task returns, and `generate` for language models."""

    def __init__(
        self,
        model: torch.nn.Module,
        state: dict[str, Any],
        batch_size: int = 64,
        device: str | torch.device = "cpu",
    ):
        name = type(model).__name__
        if name not in TASKS:
            raise ValueError(f"{name}: not a seqlab task")
        self.task = TASKS[name]
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.tokenizer = tokenizer_from_state(state["tokenizer"])
        self.labels = list(state.get("labels") or [])
        self.chars = state.get("chars")
        self.hparams = dict(state.get("hparams") or {})
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"Predictor({self.task}, {type(self.model.encoder).__name__}, {len(self.labels)} labels)"

    # ---- the public API ------------------------------------------------------------------------------
    def predict(
        self, inputs: Sequence[str] | Sequence[Sequence[str]] | Sequence[tuple[str, str]]
    ) -> list[dict]:
        """One dict per input, in input order:

        - classification (a text, or a ``(text, pair)`` tuple for a pair model):
          ``{"text", "label", "probs": {label: p}}``, and with ``pooling=attention`` also
          ``"attention": [(token, weight), ...]`` over the tokens the model read (heads averaged; sums to 1)
        - tagging (a string, split at whitespace as CoNLL-style training data is, or a list of words):
          ``{"words", "tags", "spans": [{"type", "start", "end", "text"}]}`` (end exclusive, in words)
        - language model (a text): ``{"text", "ppl", "tokens"}`` (perplexity of the text's words and <eos>)
        """
        inputs = list(inputs)
        if isinstance(inputs, str) or not inputs:
            raise ValueError("predict takes a non-empty list of inputs")
        run = {"classification": self._classify, "tagging": self._tag, "language_modeling": self._perplexity}
        return run[self.task](inputs)

    @torch.no_grad()
    def generate(self, prompt: str, n: int = 20, temperature: float = 1.0, seed: int | None = None) -> str:
        """`prompt` followed by `n` sampled words (language models); ``temperature`` < 1 sharpens the distribution."""
        if self.task != "language_modeling":
            raise ValueError(f"generate needs a language model; this is a {self.task} model")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature}: must be > 0")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        ids = self._lm_ids(prompt)[:-1] if self._eos is not None else self._lm_ids(prompt)  # no closing <eos>
        if not ids:
            raise ValueError("generate needs a prompt with at least one word (or a model trained with <eos>)")
        # A recurrent encoder carries its state, so each step reads only the new word; a stateless one (a causal
        # Transformer) returns no state and reads the growing context, cut to its max_length.
        window = getattr(self.model.encoder, "max_length", None)
        context, words, state = list(ids), [], None
        x = torch.tensor([ids], device=self.device)
        for _ in range(n):
            log_probs, state = self.model(x, torch.ones_like(x), state)  # (1, T, V)
            probs = (log_probs[0, -1] / temperature).softmax(-1).cpu()
            nxt = int(torch.multinomial(probs, 1, generator=g))
            words.append(self.tokenizer.decode([nxt])[0])
            context.append(nxt)
            x = torch.tensor(
                [[nxt] if state is not None else context[-window:] if window else context], device=self.device
            )
        return " ".join([prompt.strip(), *words])

    # ---- classification ----------------------------------------------------------------------------
    def _classify(self, inputs: list) -> list[dict]:
        pair_model = self.hparams.get("text_pair_column") is not None
        if pair_model:
            if not all(isinstance(x, tuple | list) and len(x) == 2 for x in inputs):
                raise ValueError("this model reads text pairs: give (text, pair) tuples")
            texts, pairs = [str(a) for a, _ in inputs], [str(b) for _, b in inputs]
        else:
            if not all(isinstance(x, str) for x in inputs):
                raise ValueError("this model reads single texts: give strings")
            texts, pairs = list(inputs), None
        _empty(texts)
        encoded, _ = self.tokenizer.encode_texts(texts, pairs, self.hparams.get("max_seq_length"))
        rows = [dict(zip(encoded, values, strict=True)) for values in zip(*encoded.values(), strict=True)]
        attend = self.model.pooler.mode == "attention"
        step = self.model.predict_with_attention if attend else lambda b: self.model.logits(b).softmax(-1)
        results = self._batched(rows, PadCollator(self.tokenizer.pad_token_id), step)
        out = []
        for x, row, result in zip(inputs, rows, results, strict=True):
            p = (result[0] if attend else result).tolist()
            best = max(range(len(p)), key=p.__getitem__)
            pred = {
                "text": x if isinstance(x, str) else list(x),
                "label": self.labels[best],
                "probs": {str(label): v for label, v in zip(self.labels, p, strict=True)},
            }
            if attend:
                pred["attention"] = self._attention(row["input_ids"], result[1])
            out.append(pred)
        return out

    def _attention(self, ids: list[int], weights: Tensor) -> list[tuple[str, float]]:
        """``(token, weight)`` for each token the model read (as the tokenizer wrote it: ``<unk>`` for an unknown
        word, sub-word pieces and ``[CLS]`` / ``[SEP]`` for HF tokenizers), the heads' weights averaged: the
        weights sum to 1. `weights` (heads, T) is the row's slice of the padded batch."""
        mean = weights[:, : len(ids)].mean(0).tolist()
        return list(zip(self.tokenizer.decode(ids), mean, strict=True))

    # ---- tagging -------------------------------------------------------------------------------------
    def _tag(self, inputs: list) -> list[dict]:
        from seqlab.data.tagging import CHAR_UNK, TaggingCollator, align_labels

        sentences = [x.split() if isinstance(x, str) else [str(w) for w in x] for x in inputs]
        _empty([" ".join(s) for s in sentences])
        encoded, word_ids, _ = self.tokenizer.encode_words(sentences, self.hparams.get("max_seq_length"))
        rows = []
        for i, ids in enumerate(encoded["input_ids"]):
            row = {"input_ids": ids}
            if self.tokenizer.splits_words:
                row["word_starts"] = align_labels(word_ids[i], [0] * len(sentences[i]))[1]
            if self.hparams.get("use_chars"):
                index, L = {c: j for j, c in enumerate(self.chars)}, self.hparams.get("max_word_length", 20)
                row["char_ids"] = [[index.get(c, CHAR_UNK) for c in w[:L]] for w in sentences[i][: len(ids)]]
            rows.append(row)
        preds = self._batched(
            rows, TaggingCollator(self.tokenizer.pad_token_id), lambda b: self.model.predict_step(b, 0)
        )
        scheme = self.model.hparams.get("tag_scheme")
        out = []
        for words, ids in zip(sentences, preds, strict=True):
            tags = [
                self.labels[i] for i in ids.tolist() if i != IGNORE_INDEX
            ]  # words cut by max_seq_length: none
            spans = sorted(extract_spans(tags, scheme)) if scheme else []
            out.append(
                {
                    "words": words,
                    "tags": tags,
                    "spans": [
                        {"type": t, "start": s, "end": e, "text": " ".join(words[s:e])} for s, e, t in spans
                    ],
                }
            )
        return out

    # ---- language modelling --------------------------------------------------------------------------
    @property
    def _eos(self) -> int | None:
        from seqlab.data.language_modeling import EOS

        return self.tokenizer.token_to_id(EOS) if self.hparams.get("add_eos", True) else None

    def _lm_ids(self, text: str) -> list[int]:
        """<eos> text <eos> with <eos>: the stream the model was trained on has one before and after each line."""
        ids = self.tokenizer.encode(text)
        return [self._eos, *ids, self._eos] if self._eos is not None else ids

    def _perplexity(self, inputs: list) -> list[dict]:
        if not all(isinstance(x, str) for x in inputs):
            raise ValueError("a language model reads texts: give strings")
        seqs = [self._lm_ids(t) for t in inputs]
        if any(len(s) < 2 for s in seqs):
            raise ValueError("a text needs at least two tokens to have a perplexity")
        rows = [{"input_ids": s[:-1], "labels": s[1:]} for s in seqs]

        def nll(batch: dict[str, Tensor]) -> Tensor:
            log_probs, _ = self.model(batch["input_ids"], batch["attention_mask"])  # (B, T, V)
            labels = batch["labels"]
            token = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
            return -(token * (labels != IGNORE_INDEX)).sum(1)  # (B,)

        sums = self._batched(rows, PadCollator(self.tokenizer.pad_token_id), nll)
        return [
            {"text": t, "ppl": math.exp(float(s) / (len(q) - 1)), "tokens": len(q) - 1}
            for t, s, q in zip(inputs, sums, seqs, strict=True)
        ]

    # ---- batching ------------------------------------------------------------------------------------
    @torch.no_grad()
    def _batched(self, rows: list[dict], collate, step) -> list[Tensor]:
        """`step` over batches of `rows` sorted by length; each row's output (its slice of the batch output,
        trimmed to its own length on the time axis when the output has one) in the input order."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        out: list[Tensor | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            # `lengths` stays on the CPU (the encoder contract): the packed RNN reads it there, no host sync.
            batch = collate([rows[i] for i in idx])
            batch = {k: v if k == LENGTHS else v.to(self.device) for k, v in batch.items()}
            result = step(batch)
            if isinstance(result, tuple):  # several outputs: each row gets a tuple of its slices
                result = [r.cpu() for r in result]
                for j, i in enumerate(idx):
                    out[i] = tuple(r[j] for r in result)
                continue
            result = result.cpu()
            for j, i in enumerate(idx):
                out[i] = result[j]
        return out


def _empty(texts: Iterable[str]) -> None:
    for i, t in enumerate(texts):
        if not t or not t.strip():
            raise ValueError(f"input {i} is empty: there is nothing to predict")

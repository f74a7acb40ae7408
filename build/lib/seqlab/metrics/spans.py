"""Entity spans from tag sequences, and `SpanF1`: micro precision / recall / F1 over exact spans (CoNLL scoring).

Spans follow seqeval's strict mode (``classification_report(mode='strict', scheme=IOB2 | IOBES)``):
- IOB2: ``B-X (I-X)*`` is an entity; an ``I-X`` that does not continue a ``B-X``/``I-X`` is no entity at all.
- IOBES: ``S-X`` or ``B-X (I-X)* E-X``; a ``B-X`` that never reaches its ``E-X`` is no entity.
- IOB1 (the original CoNLL-2003 files): converted with `iob1_to_iob2` first. Scoring raw IOB1 as IOB2 would drop
  every entity that starts with ``I-``, in gold and predictions alike, and hide the errors.
- None: tags without a span scheme (POS): every token whose tag is not ``O`` is a one-token span, so F1 is accuracy
  over those tokens.
A span is ``(start, end, type)`` with `end` exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from seqlab.data.collate import IGNORE_INDEX  # padded target positions

SCHEMES = ("IOB1", "IOB2", "IOBES")
PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES"}  # besides the bare tag "O"

Span = tuple[int, int, str]


def check_tags(tags: Sequence[str], scheme: str | None, key: str = "tag_scheme") -> None:
    """Raise if a tag is not ``O`` or ``<prefix>-<TYPE>`` with a prefix the scheme allows; `key` names the setting."""
    if scheme is None:
        return
    if scheme not in SCHEMES:
        raise ValueError(f"{key}={scheme!r}: choose one of {list(SCHEMES)}, or null for tags without spans (POS)")
    for tag in tags:
        if tag != "O" and not (len(tag) > 2 and tag[1] == "-" and tag[0] in PREFIXES[scheme]):
            raise ValueError(
                f"{key}={scheme}: tag {tag!r} is neither 'O' nor {'|'.join(PREFIXES[scheme])}-TYPE; "
                f"tags without a span scheme (POS) need {key}=null"
            )


def close_tags(tags: Sequence[str], scheme: str | None) -> list[str]:
    """`tags` plus every prefix of each entity type they hold (B-/I- for IOB2, B-/I-/E-/S- for IOBES), sorted:
    a type seen in train only as ``B-LST`` can still be ``I-LST`` in test (a standard chunking benchmark is)."""
    if scheme is None:
        return sorted(set(tags))
    types = {t[2:] for t in tags if t != "O"}
    return sorted(set(tags) | {"O"} | {f"{p}-{t}" for t in types for p in PREFIXES[scheme]})


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (``I-X`` opens an entity; ``B-X`` only between two adjacent X entities) -> IOB2 (every entity opens with ``B-``)."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def extract_spans(tags: Sequence[str], scheme: str | None = "IOB2") -> set[Span]:
    """The entities of one sentence as ``{(start, end, type)}`` (strict mode, see the module docstring)."""
    if scheme is None:
        return {(i, i + 1, t) for i, t in enumerate(tags) if t != "O"}
    if scheme == "IOB1":
        tags, scheme = iob1_to_iob2(tags), "IOB2"
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: choose one of {list(SCHEMES)} or None")
    spans: set[Span] = set()
    n = len(tags)
    i = 0
    while i < n:
        prefix, kind = tags[i][0], tags[i][2:]
        if prefix == "S" and scheme == "IOBES":
            spans.add((i, i + 1, kind))
            i += 1
        elif prefix == "B":
            j = i + 1
            while j < n and tags[j] == "I-" + kind:  # I-X continues a B-X or I-X of the same type
                j += 1
            if scheme == "IOB2":
                spans.add((i, j, kind))
                i = j
            elif j < n and tags[j] == "E-" + kind:  # IOBES: only an E-X closes the entity
                spans.add((i, j + 1, kind))
                i = j + 1
            else:  # unclosed B-X (I-X)*: no entity; resume at the token that broke it
                i = j
        else:  # O, or an I-/E- that continues nothing
            i += 1
    return spans


class SpanF1(Metric):
    """Micro span precision / recall / F1 plus token accuracy, for tag ids (B, T) with -100 at padded targets.

    Counts are summed states, so under DDP every process adds its sentences and `compute` sees them all.
    Positions where the target is -100 are skipped before spans are read, so padding (or subword pieces
    labelled -100) never splits or creates an entity.

    Args:
        id2tag: tag name of each id (the DataModule's label list).
        scheme: IOB1 | IOB2 | IOBES, or None for tags without spans (POS); see `extract_spans`.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, id2tag: Sequence[str], scheme: str | None = "IOB2"):
        super().__init__()
        check_tags(id2tag, scheme)
        self.id2tag = list(id2tag)
        self.scheme = scheme
        for name in ("tp", "n_pred", "n_gold", "correct", "total"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """preds, target: (B, T) tag ids; target is -100 where there is nothing to score."""
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != IGNORE_INDEX  # (B, T)
        if bool((preds[valid] < 0).any()):
            raise ValueError("a prediction is negative (-100?) where the target is scored: preds and target masks differ")
        self.correct += (preds[valid] == target[valid]).sum()
        self.total += valid.sum()
        tp = n_pred = n_gold = 0
        for p_row, t_row, v_row in zip(preds.tolist(), target.tolist(), valid.tolist(), strict=True):
            gold = extract_spans([self.id2tag[t] for t, v in zip(t_row, v_row, strict=True) if v], self.scheme)
            pred = extract_spans([self.id2tag[p] for p, v in zip(p_row, v_row, strict=True) if v], self.scheme)
            tp += len(gold & pred)
            n_pred += len(pred)
            n_gold += len(gold)
        self.tp += tp
        self.n_pred += n_pred
        self.n_gold += n_gold

    def compute(self) -> dict[str, Tensor]:
        """{"precision", "recall", "f1", "token_acc"}; a ratio with nothing to count is 0 (seqeval's zero_division)."""
        tp, n_pred, n_gold = self.tp.double(), self.n_pred.double(), self.n_gold.double()
        precision = tp / n_pred if n_pred > 0 else tp * 0
        recall = tp / n_gold if n_gold > 0 else tp * 0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else tp * 0
        token_acc = self.correct.double() / self.total if self.total > 0 else tp * 0
        return {k: v.float() for k, v in
                {"precision": precision, "recall": recall, "f1": f1, "token_acc": token_acc}.items()}

"""Label conventions below data, models and metrics: the ignored label id, and tag schemes for spans.

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

IGNORE_INDEX = -100  # padded label positions: ignored by cross-entropy, the CRF and every metric

SCHEMES = ("IOB1", "IOB2", "IOBES")
PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES"}  # besides the bare tag "O"

Span = tuple[int, int, str]


def check_tags(tags: Sequence[str], scheme: str | None, key: str = "tag_scheme") -> None:
    """Raise if a tag is not ``O`` or ``<prefix>-<TYPE>`` with a prefix the scheme allows; `key` names the setting."""
    if scheme is None:
        return
    if scheme not in SCHEMES:
        raise ValueError(
            f"{key}={scheme!r}: choose one of {list(SCHEMES)}, or null for tags without spans (POS)"
        )
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

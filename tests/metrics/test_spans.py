from __future__ import annotations

import random

import pytest
import torch
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2, IOBES

from seqlab.labels import check_tags, extract_spans, iob1_to_iob2
from seqlab.metrics.spans import SpanF1

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def ids(tags):
    return [TAGS.index(t) for t in tags]


def test_iob2_spans_and_broken_entities():
    assert extract_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC")}
    # a stray I- opens nothing in strict mode; a type change ends the entity
    assert extract_spans(["O", "I-PER", "I-PER", "B-LOC", "I-PER"]) == {(3, 4, "LOC")}
    assert extract_spans(["B-PER", "B-PER", "I-PER"]) == {(0, 1, "PER"), (1, 3, "PER")}


def test_iob1_is_converted_before_reading_spans():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
    assert iob1_to_iob2(iob1) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    assert extract_spans(iob1, "IOB1") == {(0, 2, "PER"), (3, 4, "LOC"), (4, 5, "LOC"), (5, 6, "ORG")}
    # read as IOB2, the same tags lose every entity that opens with I-: the pitfall the conversion avoids
    assert extract_spans(iob1, "IOB2") == {(4, 5, "LOC")}


def test_iobes_needs_a_closing_tag():
    assert extract_spans(["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"], "IOBES") == {(0, 1, "PER"), (1, 4, "LOC")}
    assert extract_spans(["B-LOC", "I-LOC", "O", "B-PER", "E-LOC", "S-LOC"], "IOBES") == {(5, 6, "LOC")}
    assert extract_spans(["NN", "O", "VB"], None) == {(0, 1, "NN"), (2, 3, "VB")}


def test_hand_worked_precision_recall_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "I-LOC", "O"]]
    # sentence 1: PER right, LOC missed, an extra PER at 2; sentence 2: the LOC is broken by a wrong tag at 1
    pred = [["B-PER", "I-PER", "B-PER", "O"], ["B-LOC", "O", "I-LOC", "O"]]
    metric = SpanF1(TAGS)
    metric.update(torch.tensor([ids(p) for p in pred]), torch.tensor([ids(g) for g in gold]))
    out = metric.compute()
    # gold spans 3, predicted 3 (PER, PER, LOC[0:1]), correct 1
    assert out["precision"].item() == pytest.approx(1 / 3)
    assert out["recall"].item() == pytest.approx(1 / 3)
    assert out["f1"].item() == pytest.approx(1 / 3)
    assert out["token_acc"].item() == pytest.approx(5 / 8)
    assert out["f1"].item() == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))


def test_padding_is_skipped_and_states_add_up():
    metric = SpanF1(TAGS)
    # the -100 in the middle (a subword piece) is dropped before reading spans, so B-PER ... I-PER stays one entity
    target = torch.tensor([[1, -100, 2, 0, -100, -100]])
    preds = torch.tensor([[1, 0, 2, 0, 3, 4]])
    metric.update(preds, target)
    assert {k: round(v.item(), 4) for k, v in metric.compute().items()} == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "token_acc": 1.0,
    }
    assert (metric.tp.item(), metric.n_pred.item(), metric.n_gold.item(), metric.total.item()) == (1, 1, 1, 3)
    metric.reset()
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[0, 0]]))  # nothing to find, nothing found
    assert metric.compute()["f1"].item() == 0.0 and metric.compute()["token_acc"].item() == 1.0


def test_bad_tags_name_the_setting():
    with pytest.raises(ValueError, match="tag_scheme=IOB2: tag 'NN'"):
        check_tags(["O", "NN"], "IOB2")
    with pytest.raises(ValueError, match="E-PER"):
        SpanF1(["O", "B-PER", "E-PER"], "IOB2")
    with pytest.raises(ValueError, match="choose one of"):
        check_tags(["O"], "BIO")


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES", "IOB1"])
def test_matches_seqeval_on_random_sequences(scheme):
    rng = random.Random(0)
    prefixes = {"IOB2": "BI", "IOB1": "BI", "IOBES": "BIES"}[scheme]
    tags = ["O"] + [f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in prefixes]
    gold, pred = [], []
    for _ in range(300):
        n = rng.randint(1, 12)
        g = [rng.choice(tags) if rng.random() < 0.6 else "O" for _ in range(n)]
        p = [t if rng.random() < 0.7 else rng.choice(tags) for t in g]
        gold.append(g)
        pred.append(p)
    metric = SpanF1(tags, scheme)
    for g, p in zip(gold, pred, strict=True):
        metric.update(torch.tensor([[tags.index(t) for t in p]]), torch.tensor([[tags.index(t) for t in g]]))
    out = metric.compute()
    if scheme == "IOB1":  # seqeval scores IOB1 after the same conversion
        gold, pred = [iob1_to_iob2(s) for s in gold], [iob1_to_iob2(s) for s in pred]
    kw = dict(mode="strict", scheme=IOBES if scheme == "IOBES" else IOB2)
    assert out["precision"].item() == pytest.approx(precision_score(gold, pred, **kw), abs=1e-6)
    assert out["recall"].item() == pytest.approx(recall_score(gold, pred, **kw), abs=1e-6)
    assert out["f1"].item() == pytest.approx(f1_score(gold, pred, **kw), abs=1e-6)
    assert 0.1 < out["f1"].item() < 0.95  # the random data exercises both matches and misses

"""Small data files for fine-tuning tests: classification (single texts or pairs) and tagging, written to a folder."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

# The LSTM recipe on a slice of the embedded data, a few batches: seconds a run (sweep tests; add limits as needed).
TINY_LSTM = [
    "+experiment=lstm",
    "model.encoder.hidden_size=8",
    "model.encoder.embed_dim=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_test_batches=1",
    "data.source.num_train=400",
    "data.source.num_validation=100",
    "data.source.num_test=100",
    "callbacks.rich_progress_bar=null",
]

PEOPLE = ["Jane", "Omar", "Ines", "Kofi", "Mei", "Lars", "Ana", "Raj"]
PLACES = ["Oslo", "Lima", "Quito", "Accra", "Hanoi", "Porto", "Dakar", "Riga"]
VERBS = ["visited", "left", "loves", "reached", "saw"]


GOOD = ["great", "superb", "moving", "brilliant", "fun"]
BAD = ["awful", "boring", "bland", "tedious", "weak"]
SUBJECTS = ["the plot", "the cast", "its music", "the ending", "this film"]


def review(rng: random.Random) -> tuple[str, str]:
    """``<subject> was <adjective>``: positive or negative by the adjective (a lexical task a tiny model learns fast)."""
    label = rng.choice(["positive", "negative"])
    return f"{rng.choice(SUBJECTS)} was {rng.choice(GOOD if label == 'positive' else BAD)}", label


def write_classification(
    directory: Path, pairs: bool = False, n_train: int = 320, n_eval: int = 64
) -> dict[str, str]:
    """csv files: ``text,label``, or ``premise,hypothesis,label`` labelled with the polarity of the hypothesis
    (the second text of the pair)."""
    rng = random.Random(0)
    files = {}
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        path = directory / f"{split}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["premise", "hypothesis", "label"] if pairs else ["text", "label"])
            for _ in range(n):
                text, label = review(rng)
                w.writerow([review(rng)[0], text, label] if pairs else [text, label])
        files[split] = str(path)
    return files


def tagged_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """``<person> <verb> <place> .`` with optional ``and <person>``: IOB2 tags PER / LOC."""
    tokens, tags = [rng.choice(PEOPLE)], ["B-PER"]
    if rng.random() < 0.3:
        tokens += ["and", rng.choice(PEOPLE)]
        tags += ["O", "B-PER"]
    tokens += [rng.choice(VERBS), rng.choice(PLACES), "."]
    tags += ["O", "B-LOC", "O"]
    return tokens, tags


def write_tagging(directory: Path, n_train: int = 240, n_eval: int = 48) -> dict[str, str]:
    """jsonl files with ``tokens`` and ``tags`` lists (IOB2)."""
    rng = random.Random(0)
    files = {}
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        path = directory / f"{split}.jsonl"
        with open(path, "w") as f:
            for _ in range(n):
                tokens, tags = tagged_sentence(rng)
                f.write(json.dumps({"tokens": tokens, "tags": tags}) + "\n")
        files[split] = str(path)
    return files

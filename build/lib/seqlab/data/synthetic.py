"""NegationSentiment: the embedded default data set, generated here from a seed (no download, no files).

Each sentence has one or two clauses, ``the plot was (not|never)? (really)? good``, joined by ``but``.
A clause is positive when its adjective is positive XOR it is negated; the label is the polarity of the
*last* clause (what follows ``but`` wins). Solving it needs word order: which clause a ``not`` belongs to
and which clause comes after ``but``. A bag of words sees the same multiset for
``the plot was not good but the cast was bad`` (negative) and ``the plot was good but the cast was not bad``
(positive), so an order-blind model is capped well below an LSTM (README states the measured gap).
"""

from __future__ import annotations

import random

from datasets import Dataset, DatasetDict

NOUNS = [
    "movie",
    "film",
    "plot",
    "acting",
    "music",
    "story",
    "cast",
    "script",
    "ending",
    "dialogue",
    "score",
    "pacing",
]
POSITIVE = ["good", "great", "brilliant", "charming", "fun", "moving", "clever", "superb"]
NEGATIVE = ["bad", "boring", "awful", "dull", "weak", "clumsy", "bland", "tedious"]
DETERMINERS = ["the", "this", "its"]
VERBS = ["was", "is", "felt", "seemed"]
NEGATORS = ["not", "never"]
INTENSIFIERS = ["really", "very", "quite", "truly"]
PREFIXES = ["i think", "honestly ,", "overall ,", "to be fair ,"]
LABELS = ["negative", "positive"]


def _clause(rng: random.Random) -> tuple[list[str], int]:
    positive_adj = rng.random() < 0.5
    negated = rng.random() < 0.5
    words = [rng.choice(DETERMINERS), rng.choice(NOUNS), rng.choice(VERBS)]
    if negated:
        words.append(rng.choice(NEGATORS))
    if rng.random() < 0.3:
        words.append(rng.choice(INTENSIFIERS))
    words.append(rng.choice(POSITIVE if positive_adj else NEGATIVE))
    return words, int(positive_adj != negated)


def make_example(rng: random.Random) -> tuple[str, int]:
    words: list[str] = []
    if rng.random() < 0.2:
        words += rng.choice(PREFIXES).split()
    clause, label = _clause(rng)
    words += clause
    if rng.random() < 0.7:
        clause, label = _clause(rng)  # what follows "but" decides the label
        words += ["but"] + clause
    return " ".join(words), label


class NegationSentimentSource:
    """A data source (``load() -> DatasetDict``) with `text` / `label` columns and train/validation/test splits.

    Splits are drawn from independent streams of one seed, so growing one split never changes another.
    """

    def __init__(
        self, num_train: int = 8000, num_validation: int = 1000, num_test: int = 1000, seed: int = 13
    ):
        self.sizes = {"train": num_train, "validation": num_validation, "test": num_test}
        self.seed = seed

    def load(self) -> DatasetDict:
        splits = {}
        for offset, (split, n) in enumerate(self.sizes.items()):
            rng = random.Random(self.seed * 1000 + offset)
            texts, labels = zip(*(make_example(rng) for _ in range(n)), strict=True) if n else ((), ())
            splits[split] = Dataset.from_dict({"text": list(texts), "label": [LABELS[y] for y in labels]})
        return DatasetDict(splits)

    def __repr__(self) -> str:
        return f"NegationSentimentSource(sizes={self.sizes}, seed={self.seed})"

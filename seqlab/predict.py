"""``seqlab predict ckpt_path=CKPT input=FILE|text="..." [output=preds.jsonl]``: a trained model over new text.

Reads a .txt file (one text a line), a .csv / .tsv (a column), or a .jsonl (a field; a list of words for a tagger),
predicts with `seqlab.load`, and writes one JSON line per input, in input order, to `output` (default: stdout).
A line is what `seqlab.predictor.Predictor.predict` returns; for a classifier with ``model.pooling=attention``
it includes ``"attention": [[token, weight], ...]``, the weight the pooling gave each token the model read.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqlab.cli import UsageError, parse_options

OPTIONS = {
    "ckpt_path": "a seqlab checkpoint (.ckpt) or a directory written by save_pretrained / finetune (required)",
    "input": "a .txt (one text a line), .csv, .tsv or .jsonl file",
    "text": "one text to predict (instead of input=)",
    "output": "where to write the JSON lines (default: stdout)",
    "column": "the column (csv/tsv) or field (jsonl) holding the text; default: the one the model was trained on",
    "pair_column": "the second text of a pair model (default: the one the model was trained on)",
    "batch_size": "inputs per batch (default 64)",
}
CHUNK = 2048  # inputs read, predicted and written at a time: memory stays flat for large files


def read_inputs(path: Path, column: str | None, pair_column: str | None) -> Iterator[Any]:
    """The inputs of a file, one at a time, with errors naming the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"input={path}: no such file")
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8", newline="") as f:
        if suffix in (".csv", ".tsv"):
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            for name in (column, pair_column):
                if name is not None and name not in (reader.fieldnames or []):
                    raise ValueError(
                        f"{path}: no column {name!r}; columns: {reader.fieldnames} (set column=...)"
                    )
            for row in reader:
                yield (row[column], row[pair_column]) if pair_column else row[column]
        elif suffix in (".jsonl", ".json"):
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if column not in row or (pair_column and pair_column not in row):
                    raise ValueError(
                        f"{path}:{lineno}: no field {column!r}; fields: {sorted(row)} (set column=...)"
                    )
                yield (row[column], row[pair_column]) if pair_column else row[column]
        else:  # plain text: one input a line
            for lineno, line in enumerate(f, 1):
                text = line.rstrip("\n")
                if not text.strip():
                    raise ValueError(f"{path}:{lineno}: empty line (one text a line)")
                yield text


def main(argv: list[str]) -> None:
    import seqlab

    opts = parse_options(argv, OPTIONS, "predict")
    if "ckpt_path" not in opts:
        raise UsageError("ckpt_path=... is required")
    if ("input" in opts) == ("text" in opts):
        raise UsageError('give input=FILE or text="..." (one of them)')
    predictor = seqlab.load(opts["ckpt_path"], batch_size=int(opts.get("batch_size", 64)))
    hp = predictor.hparams
    column = opts.get("column") or hp.get("tokens_column") or hp.get("text_column") or "text"
    pair_column = opts.get("pair_column") or hp.get("text_pair_column")
    if "text" in opts:
        inputs: Iterator[Any] = iter([opts["text"]])
        if pair_column is not None:
            raise UsageError("this model reads text pairs: put them in a file (input=pairs.csv)")
    else:
        inputs = read_inputs(Path(opts["input"]), column, pair_column)
    out = open(opts["output"], "w", encoding="utf-8") if "output" in opts else sys.stdout
    try:
        n = write_predictions(predictor, inputs, out, show_progress="output" in opts)
    finally:
        if out is not sys.stdout:
            out.close()
    if n == 0:
        raise ValueError(f"input={opts['input']}: no inputs in the file")
    if "output" in opts:
        print(f"seqlab predict: {n} predictions written to {opts['output']}", file=sys.stderr)


def write_predictions(predictor, inputs: Iterator[Any], out, show_progress: bool) -> int:
    """Predict chunk by chunk, writing each result as a JSON line in input order; returns how many."""
    from rich.progress import Progress

    n = 0
    with Progress(transient=True, disable=not show_progress) as progress:
        bar = progress.add_task("predicting", total=None)

        def flush(chunk: list[Any]) -> None:
            nonlocal n
            for result in predictor.predict(chunk):
                out.write(json.dumps(result) + "\n")
            n += len(chunk)
            progress.update(bar, completed=n)

        chunk: list[Any] = []
        for item in inputs:
            chunk.append(item)
            if len(chunk) == CHUNK:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
    return n

"""HF's result files from a seqlab run's summary.json: what run_glue / run_ner leave in --output_dir
(train_results.json, eval_results.json, predict_results.json, all_results.json, predict_results.txt)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HF_NAMES = {"acc": "accuracy", "token_acc": "accuracy", "ppl": "perplexity"}  # run_ner's accuracy: per token


def _hf_metrics(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """``{"val/acc": x}`` -> ``{"eval_accuracy": x}``."""
    out = {}
    for key, value in metrics.items():
        name = key.split("/", 1)[-1]
        if name.endswith(("_step", "_epoch")):  # Lightning's per-step / per-epoch copies of a logged value
            continue
        out[f"{prefix}_{_HF_NAMES.get(name, name)}"] = value
    return out


def hf_results(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """run_glue's result files (name -> content) from seqlab's summary.json: train_results when trained,
    eval_results when validated, predict_results when tested, and all_results with all of them."""
    samples = summary.get("samples") or {}
    train = summary.get("train") or {}
    trained = "global_step" in train
    epoch = {"epoch": train["epoch"]} if trained and "epoch" in train else {}
    files: dict[str, dict[str, Any]] = {}
    if trained:
        metrics = _hf_metrics("train", {k: v for k, v in train.items() if k.startswith("train/")})
        files["train_results.json"] = {**epoch, **metrics, "train_samples": samples.get("train")}
    if summary.get("val"):
        metrics = _hf_metrics("eval", summary["val"])
        files["eval_results.json"] = {**epoch, **metrics, "eval_samples": samples.get("validation")}
    if summary.get("test"):
        metrics = _hf_metrics("predict", summary["test"])
        files["predict_results.json"] = {**metrics, "predict_samples": samples.get("test")}
    files["all_results.json"] = {k: v for content in files.values() for k, v in content.items()}
    return files


def predictions_text(rows: Sequence[dict[str, Any]]) -> str:
    """predictions.jsonl as HF writes predictions: run_glue's ``index<TAB>prediction`` table of labels, or
    run_ner's line of space-separated tags per sentence."""
    if rows and isinstance(rows[0]["prediction"], list):
        return "".join(" ".join(r["prediction"]) + "\n" for r in rows)
    return "index\tprediction\n" + "".join(f"{i}\t{r['prediction']}\n" for i, r in enumerate(rows))


def write_results(output_dir: Path) -> list[Path]:
    summary = json.loads((output_dir / "summary.json").read_text())
    written = []
    for name, content in hf_results(summary).items():
        path = output_dir / name
        path.write_text(json.dumps(content, indent=4, sort_keys=True) + "\n")
        written.append(path)
    if summary.get("predictions"):
        with open(summary["predictions"], encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        path = output_dir / "predict_results.txt"
        path.write_text(predictions_text(rows))
        written.append(path)
    return written

"""Fine-tuning a (tiny, offline) BERT through the finetune_* recipes: trains, picks the best checkpoint, predicts,
and exports a directory that HF's Auto classes (where the head allows) and seqlab reload with the same outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from seqlab.checkpoint import data_state, load_task
from seqlab.train import run
from tests.conftest import compose_cfg
from tests.helpers.tiny_data import write_classification, write_tagging

CASES = {
    "single": ("finetune_classification", ["data.text_column=text"]),
    "pair": ("finetune_classification", ["data.text_column=premise", "data.text_pair_column=hypothesis"]),
    "tagging": ("finetune_tagging", ["data.tag_scheme=IOB2"]),
    "tagging_crf": ("finetune_tagging", ["data.tag_scheme=IOB2", "model.use_crf=true"]),
}
TAGS = {"B-LOC", "B-PER", "I-LOC", "I-PER", "O"}  # the generated data's tags, closed under IOB2
AUTO = {
    "finetune_classification": "AutoModelForSequenceClassification",
    "finetune_tagging": "AutoModelForTokenClassification",
}


def epoch_metrics(run_dir: Path) -> dict[str, list[float]]:
    """metrics.csv -> {column: values of the rows that have it, in order}."""
    out: dict[str, list[float]] = {}
    with open(run_dir / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if v != "":
                    out.setdefault(k, []).append(float(v))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_finetune_recipe_end_to_end(case, tiny_bert, tmp_path):
    experiment, extra = CASES[case]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if experiment == "finetune_tagging":
        files, fmt = write_tagging(data_dir), "jsonl"
    else:
        files, fmt = write_classification(data_dir, pairs=case == "pair"), "csv"
    export = tmp_path / "export"
    cfg = compose_cfg(
        f"+experiment={experiment}",
        f"model.encoder.model_name_or_path={tiny_bert}",
        f"data.source.path={fmt}",
        *(f"data.source.data_files.{k}={v}" for k, v in files.items()),
        *extra,
        "model.optimizer.lr=1e-3",
        "data.batch_size=16",
        "trainer.max_epochs=4",
        "trainer.log_every_n_steps=5",
        "validate=true",
        "predict=true",
        f"save_pretrained={export}",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path / "run",
    )
    summary = run(cfg)

    # It learns: the epoch loss falls.
    metrics = epoch_metrics(tmp_path / "run")
    losses = metrics["train/loss_epoch"]
    assert losses[-1] < 0.8 * losses[0], losses
    # The evaluated checkpoint is the best by the monitored value (val/loss, min), and re-validating it gives that value.
    val_losses = metrics["val/loss"]
    best_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    assert summary["monitor"] == "val/loss" and summary["best_score"] == pytest.approx(
        min(val_losses), abs=1e-6
    )
    assert f"epoch{best_epoch:03d}" in Path(summary["eval_ckpt_path"]).name
    assert summary["val"]["val/loss"] == pytest.approx(min(val_losses), abs=1e-5)
    n_test = summary["samples"]["test"]
    assert len((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()) == n_test

    # The exported directory reloads through seqlab with the same outputs as the evaluated checkpoint.
    trained = load_task(summary["eval_ckpt_path"])
    reloaded = load_task(export)
    dm = instantiate(cfg.data)
    dm.load_state_dict(data_state(export))
    dm.setup("fit")
    batch = next(iter(dm.test_dataloader()))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    with torch.no_grad():
        expected = trained(**inputs)
        torch.testing.assert_close(reloaded(**inputs), expected, atol=1e-5, rtol=0)

    meta = json.loads((export / "seqlab_model.json").read_text())
    config = json.loads((export / "config.json").read_text())
    assert list(config["id2label"].values()) == [str(x) for x in dm.label_vocab.labels]
    if case == "tagging_crf":  # a CRF is not an HF head: the bare encoder is saved, seqlab reloads the rest
        assert meta["hf_class"] is None
        return
    assert meta["hf_class"] == AUTO[experiment]
    import transformers

    hf = getattr(transformers, AUTO[experiment]).from_pretrained(str(export)).eval()
    with torch.no_grad():
        logits = hf(**inputs).logits
    if experiment == "finetune_tagging":  # HF scores every piece; seqlab's scores agree at the real positions
        real = batch["attention_mask"].bool()
        torch.testing.assert_close(logits[real], expected[real], atol=1e-5, rtol=0)
    else:
        torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
@pytest.mark.parametrize("case", ["single", "pair", "tagging"])
def test_finetune_command_with_hf_flags_writes_hf_outputs(case, tiny_bert, tmp_path):
    """`seqlab finetune` as an HF user types it (run_glue / run_ner flags; the task inferred from the data), in a
    subprocess: HF's result files, the model in HF layout, loadable with the matching Auto class."""
    import os
    import subprocess
    import sys

    import transformers

    if case == "tagging":
        files, auto, columns = (
            write_tagging(tmp_path, n_train=64, n_eval=16),
            "AutoModelForTokenClassification",
            [],
        )
    else:
        files, auto = (
            write_classification(tmp_path, pairs=case == "pair", n_train=64, n_eval=16),
            AUTO["finetune_classification"],
        )
        columns = (
            ["--text_column_name", "premise", "--text_pair_column_name", "hypothesis"]
            if case == "pair"
            else []
        )
    metric = "f1" if case == "tagging" else "accuracy"
    out = tmp_path / "out"
    argv = [
        "--model_name_or_path",
        str(tiny_bert),
        "--train_file",
        files["train"],
        "--validation_file",
        files["validation"],
        "--test_file",
        files["test"],
        *columns,
        "--do_train",
        "--do_eval",
        "--do_predict",
        "--num_train_epochs",
        "2",
        "--per_device_train_batch_size",
        "16",
        "--learning_rate",
        "1e-3",
        "--eval_strategy",
        "epoch",
        "--save_strategy",
        "epoch",
        "--save_total_limit",
        "1",
        "--load_best_model_at_end",
        "--metric_for_best_model",
        metric,
        "--logging_steps",
        "2",
        "--output_dir",
        str(out),
        "callbacks.rich_progress_bar=null",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", "finetune", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert {f"eval_{metric}", "eval_loss", "eval_samples", f"predict_{metric}", "train_loss", "epoch"} <= set(
        results
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["monitor"] == f"val/{'f1' if case == 'tagging' else 'acc'}"
    assert results[f"eval_{metric}"] == pytest.approx(summary["best_score"], abs=1e-6)
    lines = (out / "predict_results.txt").read_text().splitlines()
    if case == "tagging":  # run_ner: one line of tags per sentence
        assert len(lines) == 16 and all(set(line.split()) <= TAGS for line in lines)
    else:  # run_glue: index <TAB> label
        assert lines[0] == "index\tprediction" and len(lines) == 1 + 16
    assert len(list((out / "checkpoints").glob("epoch*.ckpt"))) == 1  # --save_total_limit 1
    model = getattr(transformers, auto).from_pretrained(str(out))
    assert set(model.config.id2label.values()) == (TAGS if case == "tagging" else {"negative", "positive"})
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    assert tok("the plot was good")["input_ids"][0] == tok.cls_token_id

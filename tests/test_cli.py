"""The command line, run as a user runs it: `python -m seqlab ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqlab.checkpoint import data_state, load_task
from seqlab.data.tokenizers import WordTokenizer

# Stated in README: `train +experiment=lstm` reaches this test accuracy on the embedded NegationSentiment data.
LSTM_ACC_FLOOR = 0.95


def seqlab(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"seqlab {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def test_help_lists_commands(tmp_path):
    out = seqlab("--help", cwd=tmp_path).stdout
    assert "train" in out and "python -m seqlab train +experiment=lstm" in out
    train_help = seqlab("train", "--help", cwd=tmp_path).stdout
    for group in ("experiment", "model/encoder", "trainer", "callbacks", "logger", "debug"):
        assert group in train_help


def test_unknown_command_is_one_clear_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", "trian"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "unknown command 'trian'" in proc.stderr


def test_cfg_job_prints_the_composed_config(tmp_path):
    out = seqlab(
        "train", "+experiment=gru", "model.encoder.hidden_size=17", "--cfg", "job", cwd=tmp_path
    ).stdout
    assert "cell: gru" in out and "hidden_size: 17" in out and "NegationSentimentSource" in out


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_train_lstm_end_to_end(tmp_path):
    """The README's main command on the embedded data: trains, keeps the best checkpoint, tests it."""
    run_dir = tmp_path / "run"
    seqlab("train", "+experiment=lstm", "trainer.max_epochs=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    best = Path(summary["best_model_path"])
    assert (
        best.is_file()
        and best.parent == run_dir / "checkpoints"
        and (run_dir / "checkpoints" / "last.ckpt").is_file()
    )
    assert summary["monitor"] == "val/acc" and summary["best_score"] >= LSTM_ACC_FLOOR
    assert summary["test"]["test/acc"] >= LSTM_ACC_FLOOR, summary
    assert (run_dir / "csv" / "metrics.csv").is_file() and (run_dir / "train.log").is_file()

    # The checkpoint alone predicts: the model is rebuilt from its config, the text encoded by its own tokenizer.
    model = load_task(best)
    state = data_state(best)
    tok = WordTokenizer.from_str(state["tokenizer"])
    texts = [
        "the plot was not good",
        "the plot was bad but the music was not bad",
        "its cast was never boring",
    ]
    ids = [tok.encode(t) for t in texts]
    T = max(map(len, ids))
    input_ids = torch.tensor([s + [0] * (T - len(s)) for s in ids])
    mask = (input_ids != 0).long()
    with torch.no_grad():
        preds = model(input_ids, mask).argmax(-1).tolist()
    assert [state["labels"][p] for p in preds] == ["negative", "positive", "positive"]


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_multirun_sweeps_each_value(tmp_path):
    sweep_dir = tmp_path / "sweep"
    seqlab(
        "train",
        "-m",
        "+experiment=lstm",
        "debug=fdr",
        "model.encoder.hidden_size=8,16",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for i, h in (("0", 8), ("1", 16)):
        assert f"hidden_size: {h}" in (sweep_dir / i / ".hydra" / "config.yaml").read_text()
        assert "test/acc" in json.loads((sweep_dir / i / "summary.json").read_text())["test"]


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.pooling=avg", "model.pooling='avg'"),
        ("data.text_column=sentence", "data.text_column='sentence': no such column in split 'train'"),
        ("monitor=val/ppl", "monitor='val/ppl': TextClassificationTask logs ['val/loss', 'val/acc'"),
    ],
)
def test_bad_override_is_named_in_the_error(override, message, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqlab",
            "train",
            "+experiment=lstm",
            "debug=fdr",
            override,
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (tmp_path / "r" / "checkpoints").exists()  # nothing half-written


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_resume_uses_the_checkpoint_vocabulary(tmp_path):
    """Resuming with a data setting that would fit another vocabulary still restores the checkpoint's own."""
    first, second = tmp_path / "first", tmp_path / "second"
    quick = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
    ]
    seqlab("train", "+experiment=lstm", *quick, f"hydra.run.dir={first}", cwd=tmp_path)
    ckpt = first / "checkpoints" / "last.ckpt"
    seqlab(
        "train",
        "+experiment=lstm",
        *quick[1:],
        "trainer.max_epochs=2",
        "data.tokenizer.min_freq=50",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={second}",
        cwd=tmp_path,
    )
    assert data_state(second / "checkpoints" / "last.ckpt")["tokenizer"] == data_state(ckpt)["tokenizer"]
    assert torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_ddp_workers_relaunched_by_lightning_find_the_train_command(tmp_path):
    """trainer=ddp: Lightning restarts `python -m seqlab <overrides>` in each worker (here 2 CPU processes)."""
    run_dir = tmp_path / "ddp"
    seqlab(
        "train",
        "+experiment=lstm",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "callbacks.rich_progress_bar=null",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert Path(summary["best_model_path"]).is_file() and "test/acc" in summary["test"]


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_a_failing_run_prints_one_error_line_and_keeps_the_trace(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqlab",
            "train",
            "+experiment=lstm",
            "data.label_column=stars",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2  # the input is at fault
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("seqlab: error:")]
    message = "seqlab: error: data.label_column='stars': no such column in split 'train'; available columns: ['text', 'label']"
    assert errors == [message]
    assert "Traceback" in (tmp_path / "r" / "error.log").read_text()
    assert (tmp_path / "r" / "train.log").read_text().splitlines()[
        -1
    ] == message  # the run's log says why it stopped
    assert (
        not (tmp_path / "r" / "csv").exists() and not (tmp_path / "r" / "checkpoints").exists()
    )  # nothing half-written

"""Resuming a run (`seqlab train resume=<run_dir>`) and stopping one (SIGTERM): the resumed run ends exactly as an
uninterrupted one; a stopped run exits non-zero and says how to resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from seqlab.callbacks.reproducible import ReseedEachEpoch
from seqlab.cli import resume_overrides
from seqlab.data.sampling import BucketSampler, ResumableDataLoader
from seqlab.loggers import CSVLogger

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
# The embedded data's 8000 training rows: 125 steps an epoch, about 2 s on 2 CPU cores. Monitoring val/loss with
# mode=max makes the best checkpoint the worst epoch, epoch 0: a resumed run that forgot the best score would
# pick one of its own epochs. last.ckpt (callbacks.last_checkpoint) holds the weights of the last epoch.
BILSTM = [
    "+experiment=bilstm",
    "trainer.max_epochs=4",
    "monitor=val/loss",
    "mode=max",
    "callbacks.rich_progress_bar=null",
]
STEPS_PER_EPOCH = 125


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seqlab", "train", *args],
        cwd=cwd,
        env=ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def seqlab_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", "train", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"seqlab train {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def checkpoint_step(path: Path) -> int | None:
    """The global step of `path`, or None while it does not exist or is being written."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["global_step"]
    except Exception:  # noqa: BLE001 - missing, or half written
        return None


def wait_for_epoch(proc: subprocess.Popen, metrics: Path, epoch: int, timeout: float = 600) -> None:
    """Wait until metrics.csv (written at every logging call) has a row of `epoch`: a step of it has run."""
    deadline = time.monotonic() + timeout
    while not (
        metrics.exists() and any(r.get("epoch") == str(epoch) for r in csv.DictReader(metrics.open()))
    ):
        assert proc.poll() is None, f"the run ended before epoch {epoch}:\n{proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"no step of epoch {epoch} after {timeout} s"
        time.sleep(0.02)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_a_run_killed_mid_epoch_and_resumed_ends_as_an_uninterrupted_one(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    seqlab_train(*BILSTM, f"hydra.run.dir={full}", cwd=tmp_path)

    proc = start(*BILSTM, f"hydra.run.dir={killed}", cwd=tmp_path)
    try:
        wait_for_epoch(proc, killed / "csv" / "metrics.csv", 2)  # epochs 0 and 1 done, epoch 2 going on
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    # last.ckpt is from the end of epoch 1 (written after every validation): the partial epoch 2 is lost
    assert checkpoint_step(killed / "checkpoints" / "last.ckpt") == 2 * STEPS_PER_EPOCH, "killed in epoch 2"
    assert not (killed / "summary.json").exists()

    seqlab_train(f"resume={killed}", cwd=tmp_path)

    a, b = (json.loads((d / "summary.json").read_text()) for d in (full, killed))
    assert Path(b["best_model_path"]).parent == killed / "checkpoints"
    assert Path(a["best_model_path"]).name == Path(b["best_model_path"]).name == "epoch000-step000125.ckpt"
    assert a["best_score"] == b["best_score"]
    assert a["test"] == b["test"] and a["train"] == b["train"], (a, b)
    assert checkpoint_step(killed / "checkpoints" / "last.ckpt") == 4 * STEPS_PER_EPOCH
    wa, wb = weights(full / "checkpoints" / "last.ckpt"), weights(killed / "checkpoints" / "last.ckpt")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # The metrics history: the killed run's rows up to its checkpoint, then the resumed run's, each epoch once.
    history = (killed / "csv" / "metrics.csv").read_text()
    assert history == (full / "csv" / "metrics.csv").read_text()
    val_epochs = [r["epoch"] for r in csv.DictReader(history.splitlines()) if r.get("val/loss")]
    assert val_epochs == ["0", "1", "2", "3"]


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_sigterm_exits_non_zero_and_prints_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(*BILSTM, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    try:
        wait_for_epoch(proc, run_dir / "csv" / "metrics.csv", 1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("seqlab: interrupted")]
    assert len(lines) == 1 and lines[0].startswith("seqlab: interrupted (SIGTERM) at epoch 1, step "), stderr[
        -3000:
    ]
    assert lines[0].endswith(f"; resume with: python -m seqlab train resume={run_dir}")
    assert not (run_dir / "summary.json").exists()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: None, "no .hydra/overrides.yaml there"),
        (
            lambda d: (
                (d / ".hydra").mkdir() or (d / ".hydra" / "overrides.yaml").write_text("- +experiment=lstm\n")
            ),
            "no checkpoints/last.ckpt there",
        ),
    ],
)
def test_resume_from_a_folder_that_is_not_a_resumable_run_is_one_error_line(make, message, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    make(run_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", "train", f"resume={run_dir}"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2  # a usage error
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"seqlab: error: resume={run_dir}: {message}"), proc.stderr


def fake_run(run_dir: Path, overrides: str) -> Path:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(overrides)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    return run_dir


def test_resume_expands_to_the_run_overrides_its_folder_and_last_ckpt(tmp_path):
    run_dir = fake_run(
        tmp_path / "run", "- +experiment=bilstm\n- trainer.max_epochs=6\n- ckpt_path=/old.ckpt\n"
    )
    assert resume_overrides(["+x=1"]) == ["+x=1"]
    assert resume_overrides([f"resume={run_dir}", "trainer.max_epochs=10", "--cfg", "job"]) == [
        "+experiment=bilstm",
        "trainer.max_epochs=6",
        f"hydra.run.dir={run_dir}",
        f"ckpt_path={run_dir}/checkpoints/last.ckpt",
        "trainer.max_epochs=10",
        "--cfg",
        "job",
    ]
    odd = fake_run(tmp_path / "it's here", "[]\n")
    assert resume_overrides([f"resume={odd}"])[0] == f"hydra.run.dir='{tmp_path}/it\\'s here'"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-m", "resume=R"], "cannot be swept"),
        (["resume=R", "resume=R"], "more than once"),
        (["resume=R", "hydra.run.dir=x"], "resume= sets hydra.run.dir and ckpt_path itself"),
        (["resume=R", "ckpt_path=x"], "resume= sets hydra.run.dir and ckpt_path itself"),
    ],
)
def test_resume_rejects_what_it_cannot_do(argv, message, tmp_path):
    run_dir = fake_run(tmp_path / "run", "[]\n")
    with pytest.raises(ValueError, match=message):
        resume_overrides([a.replace("=R", f"={run_dir}") for a in argv])


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)


def test_csv_logger_continues_the_history_before_the_checkpoint_step(tmp_path):
    metrics = tmp_path / "csv" / "metrics.csv"
    write_csv(
        metrics,
        [
            {"step": 0, "lr": 0.1},
            {"step": 31, "val/acc": 0.5, "epoch": 0},
            {"step": 32, "lr": 0.1},
            {"step": 40, "train/loss": 0.3, "epoch": 1},
        ],
    )
    ckpt = tmp_path / "last.ckpt"
    torch.save({"global_step": 32, "state_dict": {}}, ckpt)

    logger = CSVLogger(save_dir=tmp_path, name="csv", version="", resume_from=str(ckpt))
    logger.log_metrics({"lr": 0.05}, step=32)
    logger.log_metrics({"test/acc": 1.0}, step=64)  # a new column: the file is rewritten with it
    rows = list(csv.DictReader(metrics.read_text().splitlines()))  # written at once: no flush needed
    assert [(r["step"], r["lr"], r["val/acc"], r["test/acc"]) for r in rows] == [
        ("0", "0.1", "", ""),
        ("31", "", "0.5", ""),
        ("32", "0.05", "", ""),
        ("64", "", "", "1.0"),
    ]

    CSVLogger(save_dir=tmp_path, name="csv", version="").log_metrics(
        {"lr": 1.0}, step=0
    )  # a new run: a new file
    assert [r["lr"] for r in csv.DictReader(metrics.read_text().splitlines())] == ["1.0"]


class Recorder(L.LightningModule):
    """Records each step's batch and a dropout mask: what must repeat when a fit is resumed."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: dict[int, list] = {}

    def training_step(self, batch, batch_idx):
        (x,) = batch
        mask = torch.nn.functional.dropout(torch.ones(4), 0.5)
        self.seen.setdefault(self.current_epoch, []).append((x.tolist(), mask.tolist()))
        return self.layer(x.float().unsqueeze(-1)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(epochs: int, root: Path, ckpt_path: str | None = None) -> Recorder:
    L.seed_everything(0, verbose=False)
    model = Recorder()
    loader = DataLoader(TensorDataset(torch.arange(24)), batch_size=8, shuffle=True)
    trainer = L.Trainer(
        max_epochs=epochs,
        default_root_dir=root,
        callbacks=[ReseedEachEpoch(seed=7)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader, ckpt_path=ckpt_path)
    return model


@pytest.mark.filterwarnings("ignore:.*(num_workers|log_every_n_steps).*")
def test_reseeding_makes_a_resumed_fit_see_the_same_batches_and_dropout(tmp_path):
    full = fit(3, tmp_path / "full")
    fit(1, tmp_path / "part")
    ckpt = next((tmp_path / "part").rglob("*.ckpt"))
    resumed = fit(3, tmp_path / "resumed", ckpt_path=str(ckpt))
    assert sorted(resumed.seen) == [1, 2]
    assert resumed.seen[1] == full.seen[1] and resumed.seen[2] == full.seen[2]
    assert full.seen[1] != full.seen[2]  # each epoch its own order and masks


def fit_bucketed(root: Path, max_steps: int = -1, ckpt_path: str | None = None) -> Recorder:
    """Two epochs of 6 bucketed batches; a checkpoint every 8 steps (mid-way through the second epoch)."""
    L.seed_everything(0, verbose=False)
    model = Recorder()
    rows = torch.arange(48)
    sampler = BucketSampler([int(i) % 7 + 1 for i in rows], 8, seed=3, pool_batches=2)
    trainer = L.Trainer(
        max_epochs=2,
        max_steps=max_steps,
        default_root_dir=root,
        callbacks=[
            ReseedEachEpoch(seed=7),
            ModelCheckpoint(dirpath=root, every_n_train_steps=8, save_top_k=-1),
        ],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = ResumableDataLoader(TensorDataset(rows), batch_size=8, sampler=sampler)
    trainer.fit(model, loader, ckpt_path=ckpt_path)
    return model


@pytest.mark.filterwarnings("ignore:.*(num_workers|log_every_n_steps).*")
def test_a_fit_resumed_mid_epoch_sees_the_rest_of_the_epochs_batches_and_dropout(tmp_path):
    full = fit_bucketed(tmp_path / "full")
    fit_bucketed(tmp_path / "part", max_steps=8)  # stops after 2 of the second epoch's 6 batches
    ckpt = tmp_path / "part" / "epoch=1-step=8.ckpt"
    resumed = fit_bucketed(tmp_path / "resumed", ckpt_path=str(ckpt))
    assert len(full.seen[1]) == 6 and sorted(resumed.seen) == [1]
    assert resumed.seen[1] == full.seen[1][2:]  # the same 4 batches, with the same dropout masks
    assert full.seen[0] != full.seen[1]

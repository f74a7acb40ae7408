"""DDP inside sweeps (trainer=ddp_spawn, 2 CPU processes a trial over gloo) and sweeps through submitit's local
executor (hydra/launcher=slurm_local). The sweeps run in subprocesses, which import `RecordRanks` from this file
(PYTHONPATH=tests/): keep its imports light."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning import Callback

TESTS = Path(__file__).resolve().parent

# As tests/test_sweep.py's TINY (not imported: this module is also imported by the sweep's processes).
TINY = [
    "+experiment=lstm",
    "model.encoder.hidden_size=8",
    "model.encoder.embed_dim=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_test_batches=1",
    "data.source.num_train=400",
    "data.source.num_validation=100",
    "data.source.num_test=100",
    "data.eval_batch_size=256",  # the 100 validation rows are one batch of 50 on each of 2 ranks
    "callbacks.rich_progress_bar=null",
]


class RecordRanks(Callback):
    """Writes, per rank, the training rows it trained on and its validation rows and correct predictions, to
    ``<run>/ranks/rank<r>.json`` after fitting: what each DDP process saw, for the test to compare."""

    def __init__(self) -> None:
        self.train_rows: list[list[int]] = []
        self.val_rows: list[list[int]] = []
        self.val_correct = 0
        self.processes: set[int] = set()

    @staticmethod
    def rows(batch) -> list[list[int]]:
        return [
            ids[mask.bool()].tolist()
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        ]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train_rows += self.rows(batch)
        self.processes.add(os.getpid())

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if trainer.sanity_checking:
            return
        with torch.no_grad():
            predicted = pl_module.logits(batch).argmax(-1)
        self.val_rows += self.rows(batch)
        self.val_correct += int((predicted == batch["labels"]).sum())

    def on_fit_end(self, trainer, pl_module):
        out = Path(trainer.default_root_dir) / "ranks"
        out.mkdir(exist_ok=True)
        record = {
            "world_size": trainer.world_size,
            "pid": os.getpid(),
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "val_correct": self.val_correct,
        }
        (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def seqlab_train(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", "train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # subprocess trainings, 2 processes a trial
def test_ddp_spawn_sweep_trains_each_trial_once_on_two_processes(tmp_path):
    sweep = tmp_path / "sweep"
    seqlab_train(
        "-m",
        *TINY,
        "trainer=ddp_spawn",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "+callbacks.record_ranks._target_=test_sweep_ddp.RecordRanks",
        "model.optimizer.lr=0.001,0.01",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    # 2 job folders, no second sweep anywhere (plain ddp under -m re-runs the sweep in the rank-1 child)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]
    assert len(list(sweep.glob("**/summary.json"))) == 2 and len(list(sweep.glob("**/metrics.csv"))) == 2
    rows = read_csv(sweep / "sweep_summary.csv")
    assert sorted(r["model.optimizer.lr"] for r in rows) == ["0.001", "0.01"]
    for row in rows:
        job = Path(row["job"])
        ranks = [json.loads((job / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
        assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["pid"] != ranks[1]["pid"]
        # each trial trained once: one epoch of 3 batches on each rank, recorded once per rank
        assert len(list((job / "ranks").iterdir())) == 2
        epochs = {r["epoch"] for r in read_csv(job / "csv" / "metrics.csv") if r.get("val/acc")}
        assert epochs == {"0"}
        # the ranks trained on different rows (sentences may repeat in the data, so allow a small overlap)
        train0, train1 = ({tuple(x) for x in r["train_rows"]} for r in ranks)
        assert train0 and train1 and len(train0 & train1) < 0.2 * min(len(train0), len(train1))
        # validation was split between them, and the returned value is over both halves (global, not rank 0's)
        assert len(ranks[0]["val_rows"]) == len(ranks[1]["val_rows"]) == 50
        assert ranks[0]["val_rows"] != ranks[1]["val_rows"]
        global_acc = (ranks[0]["val_correct"] + ranks[1]["val_correct"]) / 100
        summary = json.loads((job / "summary.json").read_text())
        assert summary["best_score"] == pytest.approx(global_acc, abs=1e-6), (
            ranks[0]["val_correct"],
            ranks[1]["val_correct"],
        )
        assert float(row["value"]) == pytest.approx(global_acc, abs=1e-6)
        assert Path(summary["best_model_path"]).is_file() and "test/acc" in summary["test"]


@pytest.mark.slow  # subprocess trainings
def test_sweep_through_submitit_local_executor(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    proc = seqlab_train(
        "-m",
        *TINY,
        "trainer.limit_val_batches=2",
        "hydra/launcher=slurm_local",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=900,
    )
    assert (sweep / ".submitit").is_dir()  # submitit ran the jobs, each in its own process
    logs = sorted(sweep.glob(".submitit/*/*_log.out"))
    assert len(logs) == 2
    rows = read_csv(sweep / "sweep_summary.csv")
    assert sorted(r["seed"] for r in rows) == ["1", "2"] and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        summary = json.loads((Path(row["job"]) / "summary.json").read_text())
        assert float(row["value"]) == pytest.approx(summary["best_score"])
    assert "sweep summary (2 jobs, best first)" in proc.stdout

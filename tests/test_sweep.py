"""Sweeps: the summary of a finished sweep (seqlab/sweep.py), the Optuna search configs (conf/hparams_search/),
the launcher configs (conf/hydra/launcher/), and mixed precision / gradient accumulation from config.
DDP inside sweeps and the submitit launcher: tests/test_sweep_ddp.py."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning import Callback
from omegaconf import OmegaConf

from seqlab.cli import CONF_DIR
from seqlab.sweep import SUMMARY_CSV, TrialFailed, find_jobs, objective, write_summary
from seqlab.train import run
from tests.conftest import compose_cfg
from tests.helpers.tiny_data import TINY_LSTM

TINY = [*TINY_LSTM, "trainer.limit_val_batches=2"]


def seqlab_train(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m seqlab train ...` in a subprocess, as a user runs a sweep."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "seqlab", "train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compose_hydra(*overrides: str):
    """The composed config with its ``hydra`` node (the sweeper and launcher settings)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- the summary, from job folders


def fake_job(sweep: Path, num: int, overrides: list[str], best: float | None, mode: str = "max") -> Path:
    """A job folder as `seqlab train` leaves it: .hydra/overrides.yaml and summary.json (best None: a failure)."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if best is None:
        (job / "error.log").write_text("Traceback (most recent call last):\nInstantiationException: ...\n")
        (job / "train.log").write_text(
            "[INFO] data: ...\nseqlab: error: model.pooling='avg': choose one of ...\n"
        )
    else:
        summary = {
            "monitor": "val/loss",
            "mode": mode,
            "best_score": best,
            "best_model_path": f"{job}/b.ckpt",
        }
        (job / "summary.json").write_text(json.dumps(summary))
    return job


@pytest.mark.parametrize("mode,order", [("min", ["1", "2", "0"]), ("max", ["0", "2", "1"])])
def test_summary_ranks_by_mode_and_lists_failures_last(tmp_path, mode, order):
    for num, lr, best in ((0, "0.1", 0.9), (1, "0.01", 0.2), (2, "0.001", 0.5)):
        fake_job(tmp_path, num, ["+experiment=lstm", f"model.optimizer.lr={lr}"], best, mode)
    fake_job(tmp_path, 3, ["+experiment=lstm", "model.optimizer.lr=1"], None)
    path, jobs = write_summary(tmp_path, mode="max")  # the runs' own mode (summary.json) wins
    rows = read_csv(path)
    assert [Path(r["job"]).name for r in rows] == [*order, "3"]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["best_model_path"] == f"{tmp_path / order[0]}/b.ckpt"
    # the swept key gets its own column; the constant override only appears in `overrides`
    assert "model.optimizer.lr" in rows[0] and "+experiment" not in rows[0]
    assert rows[-1]["status"] == "failed" and rows[-1]["error"] == "model.pooling='avg': choose one of ..."
    assert rows[-1]["value"] == "" and rows[-1]["overrides"] == "+experiment=lstm model.optimizer.lr=1"


def test_summary_callback_prints_the_table_and_the_plot_command(tmp_path, capsys):
    from seqlab.sweep import SweepSummary

    fake_job(tmp_path, 0, ["seed=1"], 0.5, mode="min")
    fake_job(tmp_path, 1, ["seed=2"], 0.25, mode="min")
    config = OmegaConf.create(
        {"mode": "min", "monitor": "val/loss", "hydra": {"sweep": {"dir": str(tmp_path)}}}
    )
    SweepSummary(plot=False).on_multirun_end(config)
    out = capsys.readouterr().out
    table = out[out.index("#  job") :].splitlines()
    assert table[0].split() == ["#", "job", "val/loss", "seed", "status"]
    assert table[2].split() == ["1", "1", "0.2500", "2", "ok"] and table[3].split()[:3] == [
        "2",
        "0",
        "0.5000",
    ]
    assert f"best: {tmp_path / '1'}" in out and f"checkpoint {tmp_path / '1'}/b.ckpt" in out
    assert f"python -m seqlab plot {tmp_path}" in out
    assert (tmp_path / SUMMARY_CSV).is_file()


def test_objective_is_the_best_score_and_none_without_one():
    assert objective({"best_score": 0.75}) == 0.75
    # NaN / missing: None, which hydra-optuna-sweeper records as a failed trial (NaN would crash the study)
    assert objective({"best_score": float("nan")}) is None and objective({"best_score": None}) is None
    assert issubclass(TrialFailed, Exception)  # not SystemExit: Hydra marks the job failed, the sweep goes on


def test_find_jobs_reads_nested_subdirs_in_job_order(tmp_path):
    for num in (10, 2, 1):
        fake_job(tmp_path / "a", num, [f"seed={num}"], 0.1)
    assert [j.path.name for j in find_jobs(tmp_path)] == ["1", "2", "10"]


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "experiment,search", [("lstm", "lstm_optuna"), ("bilstm_conll", "bilstm_conll_optuna")]
)
@pytest.mark.parametrize("mode,direction", [("max", "maximize"), ("min", "minimize")])
def test_search_configs_compose_with_direction_from_mode(experiment, search, mode, direction):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_hydra(f"+experiment={experiment}", f"+hparams_search={search}", f"mode={mode}")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler._target_.endswith("TPESampler")
    assert sweeper.direction == direction and isinstance(sweeper.sampler.seed, int)
    assert sweeper.storage == f"sqlite:///multirun/{search}/optuna.db" and sweeper.study_name == search
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and sweeper.max_failure_rate == 1.0
    for key in sweeper.params:  # every searched key exists in the composed config
        assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", key


@pytest.mark.parametrize("launcher,target", [("slurm", "SlurmLauncher"), ("slurm_local", "LocalLauncher")])
def test_launcher_configs_compose(launcher, target):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_hydra(
        "+experiment=lstm",
        f"hydra/launcher={launcher}",
        "trainer=ddp",
        "trainer.devices=4",
        "trainer.num_nodes=3",
    )
    launcher_cfg = cfg.hydra.launcher
    assert launcher_cfg._target_.endswith(target)
    if launcher == "slurm":  # one SLURM task per device, on num_nodes machines
        assert (launcher_cfg.nodes, launcher_cfg.tasks_per_node, launcher_cfg.gpus_per_node) == (3, 4, 4)


def test_every_trainer_config_has_num_nodes():
    for path in sorted((CONF_DIR / "trainer").glob("*.yaml")):
        cfg = compose_cfg(f"trainer={path.stem}")
        assert cfg.trainer.num_nodes == 1, path.name


# ---------------------------------------------------------------- mixed precision, gradient accumulation


class LinearDtypeProbe(Callback):
    """Writes the dtype of the first Linear layer's output in a training step to ``<root>/linear_dtype.txt``."""

    def on_train_start(self, trainer, pl_module):
        linear = next(m for m in pl_module.modules() if isinstance(m, torch.nn.Linear))
        out = Path(trainer.default_root_dir) / "linear_dtype.txt"

        def record(module, args, output) -> None:  # returns None: the output stays as it is
            out.write_text(str(output.dtype))

        linear.register_forward_hook(record)


def test_bf16_mixed_precision_and_gradient_accumulation_on_cpu(tmp_path):
    summary = run(
        compose_cfg(
            *TINY,
            "trainer.accelerator=cpu",
            "trainer.precision=bf16-mixed",
            "trainer.accumulate_grad_batches=2",
            "trainer.limit_train_batches=4",
            "+callbacks.dtype_probe._target_=tests.test_sweep.LinearDtypeProbe",
            output_dir=tmp_path,
        )
    )
    assert summary["train"]["global_step"] == 2  # 4 batches, an optimizer step every 2
    assert (tmp_path / "linear_dtype.txt").read_text() == "torch.bfloat16"  # ran under bf16 autocast
    assert 0.0 <= summary["best_score"] <= 1.0 and "test/acc" in summary["test"]


# ---------------------------------------------------------------- sweeps, run as a user runs them


@pytest.mark.slow  # subprocess trainings
def test_optuna_search_writes_its_summary_and_continues_its_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    command = [*TINY, "+hparams_search=lstm_optuna", "hydra.sweeper.n_trials=3"]
    first = seqlab_train(*command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    study_dir = tmp_path / "multirun" / "lstm_optuna"
    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    study = optuna.load_study(study_name="lstm_optuna", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3

    (sweep,) = [p for p in study_dir.iterdir() if p.is_dir()]
    rows = read_csv(sweep / SUMMARY_CSV)
    values = [float(r["value"]) for r in rows]
    assert len(rows) == 3 and values == sorted(values, reverse=True)  # val/acc: best (highest) first
    assert sorted(values) == sorted(t.value for t in study.trials)  # what each job returned to Optuna
    assert Path(rows[0]["best_model_path"]).is_file() and rows[0]["best_model_path"].startswith(
        rows[0]["job"]
    )
    assert (
        "sweep summary (3 jobs, best first)" in first.stdout
        and f"plot {sweep.relative_to(tmp_path)}" in first.stdout
    )
    assert {"model.optimizer.lr", "model.dropout"} <= set(rows[0])  # the searched keys have columns

    second = seqlab_train(*command, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    study = optuna.load_study(study_name="lstm_optuna", storage=storage)
    assert [t.number for t in study.trials] == list(range(6))  # continued, not restarted
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    first_lrs = [t.params["model.optimizer.lr"] for t in study.trials[:3]]
    assert not set(first_lrs) & {
        t.params["model.optimizer.lr"] for t in study.trials[3:]
    }  # no repeated trials
    assert len([p for p in study_dir.iterdir() if p.is_dir()]) == 2  # one folder per invocation


@pytest.mark.slow  # subprocess trainings
def test_a_failed_job_does_not_stop_a_grid_sweep_and_is_in_the_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = seqlab_train("-m", *TINY, "model.pooling=avg,last", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 1  # not silent: the sweep fails, after running every job
    errors = [line for line in proc.stderr.splitlines() if line.startswith("seqlab: error:")]
    assert errors == [
        "seqlab: error: model.pooling='avg': choose one of ['last', 'mean', 'max', 'first', 'cls', 'pooler', 'attention']"
    ]
    assert (sweep / "1" / "summary.json").is_file()  # the job after the failed one ran
    rows = read_csv(sweep / SUMMARY_CSV)
    assert [(Path(r["job"]).name, r["status"], r["model.pooling"]) for r in rows] == [
        ("1", "ok", "last"),
        ("0", "failed", "avg"),
    ]


@pytest.mark.slow  # subprocess trainings
def test_optuna_search_goes_on_after_a_failed_trial(tmp_path):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    # model.pooling is searched too: `avg` is no pooling, so those trials fail
    proc = seqlab_train(
        *TINY,
        "+hparams_search=lstm_optuna",
        "hydra.sweeper.n_trials=4",
        "model.pooling=choice(avg,last)",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(
        study_name="lstm_optuna", storage=f"sqlite:///{tmp_path}/multirun/lstm_optuna/optuna.db"
    )
    states = {t.params["model.pooling"]: t.state.name for t in study.trials}
    assert len(study.trials) == 4 and states == {"avg": "FAIL", "last": "COMPLETE"}, states
    (sweep,) = [p for p in (tmp_path / "multirun" / "lstm_optuna").iterdir() if p.is_dir()]
    rows = read_csv(sweep / SUMMARY_CSV)
    assert {r["status"] for r in rows if r["model.pooling"] == "avg"} == {"failed"}


def test_a_search_refuses_a_mode_that_is_not_min_or_max(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    proc = seqlab_train("+experiment=lstm", "+hparams_search=lstm_optuna", "mode=highest", cwd=tmp_path)
    assert proc.returncode == 2  # before any trial: nothing trained, no study created
    assert proc.stderr.strip().splitlines() == [
        "seqlab: error: mode='highest': the search's direction is 'highestimize'; set mode=min or mode=max"
    ]
    assert not (tmp_path / "multirun").exists()
